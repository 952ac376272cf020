"""Face biometrics: detection, an enrollment quality gate, templates, matching and 1:N search.

Install the ``face`` extra (``pip install "ektp-biometrics[face]"``: dlib-bin and the CC0
face_recognition_models) for the accurate ``dlib-resnet`` embedder; without it everything
works with the weak ``lbp`` fallback.  Nothing is downloaded at run time.

Examples
--------
>>> import numpy as np
>>> from ektp_biometrics import face
>>> photo = np.random.default_rng(2).integers(0, 256, (112, 92), dtype=np.uint8)
>>> template = face.extract(photo, embedder="lbp")
>>> face.FaceTemplate.from_bytes(template.to_bytes()) == template
True
>>> round(face.match(template, template), 4)
1.0
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach(
    __name__,
    submodules=["embedders", "params", "quality", "index", "detection", "alignment", "template", "extraction", "matching"],
    submod_attrs={
        "detection": ["FaceBox", "detect", "LANDMARK_NAMES"],
        "alignment": ["align"],
        "quality": ["assess", "FaceQuality", "QualityMeasure"],
        "template": ["FaceTemplate"],
        "extraction": ["extract"],
        "matching": ["match", "threshold", "false_match_rate", "fmr_table"],
        "index": ["FaceIndex", "Candidate"],
        "params": ["DetectionParameters", "QualityThresholds", "DEFAULT_DETECTION", "DEFAULT_QUALITY"],
        "embedders": ["get_embedder", "available_embedders"],
    },
)
