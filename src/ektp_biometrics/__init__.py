"""ektp_biometrics: fingerprint and face biometrics for national-ID registries.

Subpackages are loaded on first use, so ``import ektp_biometrics`` stays fast::

    import ektp_biometrics as eb
    image = eb.io.read_image("101_1.tif")
    template = eb.fingerprint.extract(image, dpi=500)
"""

import lazy_loader as _lazy

__version__ = "0.1.0"

__getattr__, __dir__, __all__ = _lazy.attach(
    __name__,
    submodules=["errors", "io", "fingerprint", "synth", "face", "devices", "testing", "gallery", "packet", "cli"],
)
