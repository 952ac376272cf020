"""Fingerprint features: extraction, templates and standard formats.

Examples
--------
>>> import numpy as np
>>> from ektp_biometrics import fingerprint
>>> t = fingerprint.FingerprintTemplate(300, 300, fingerprint.make_minutiae([5.0], [6.0], [0.5]))
>>> fingerprint.FingerprintTemplate.from_bytes(t.to_bytes("ektp"), "ektp") == t
True
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach(
    __name__,
    submodules=["formats", "params", "quality", "debug", "render"],
    submod_attrs={
        "template": ["FingerprintTemplate", "MinutiaKind", "MINUTIA_DTYPE", "make_minutiae"],
        "extract": ["extract", "extract_file"],
        "params": ["ExtractionParameters", "DEFAULT_PARAMETERS"],
        "match": ["match", "match_many", "prepare", "threshold", "fmr_at", "MatchTemplate", "parameters_digest"],
        "match_params": ["MatchParameters", "DEFAULT_MATCH_PARAMETERS"],
        "index": ["FingerprintIndex", "Candidate", "PersonCandidate"],
        "index_params": ["IndexParameters", "DEFAULT_INDEX_PARAMETERS"],
    },
)
