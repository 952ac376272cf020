"""Synthetic fingerprints with ground truth, in the class of SFinGe (Cappelli, Maio & Maltoni).

Masters are drawn from a seed (pattern class, singular points, orientation and frequency maps,
ridges grown by contextual filtering); impressions place, distort, press and noise them at
500 dpi and carry the true minutiae along; a template-only path makes million-finger galleries.

Examples
--------
>>> from ektp_biometrics import synth
>>> item = next(synth.impressions(1, 1, seed=42, image_shape=(160, 160)))
>>> item.image.shape, item.image.dtype.name, item.truth.resolution
((160, 160), 'uint8', 500)
>>> gallery = synth.templates(2, 1, seed=42)
>>> len(gallery)
2
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach(
    __name__,
    submodules=["master", "impression", "fast", "evaluate", "generate", "params"],
    submod_attrs={
        "generate": ["impressions", "make_master", "Impression", "NOISE_LEVELS"],
        "fast": ["templates", "TemplateSet", "GALLERY_FORMAT_VERSION"],
        "evaluate": ["evaluate_extractor", "pair_minutiae"],
        "params": ["SynthParameters", "DEFAULT_PARAMETERS", "PATTERN_CLASSES"],
        "master": ["MasterFingerprint", "FingerIdentity"],
    },
)
