"""Image input: files and bytes to validated uint8 arrays, at the working resolution.

``read_image`` reads PNG, TIFF, BMP (8 to 32 bit), PGM/PPM, GIF, JPEG and WSQ (with the optional
``wsq`` package), recognising the container from its first bytes. ``as_image`` is the one
helper every library function uses to validate arrays passed in memory, and
``to_working_resolution`` brings a scan to 500 dpi. Policies: docs/io.md.

Importing this package is free; Pillow and OpenCV load on the first call that needs them.

Examples
--------
>>> import numpy as np
>>> from ektp_biometrics import io
>>> io.to_working_resolution(io.as_image(np.zeros((600, 400), np.uint8)), 1000).shape
(300, 200)
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach(
    __name__,
    submod_attrs={
        "_policy": ["ImageInfo", "ReadParameters", "DEFAULT_READ_PARAMETERS", "WORKING_DPI"],
        "_read": ["read_image", "read_image_with_info"],
        "_prepare": ["as_image"],
        "_resolution": ["to_working_resolution"],
    },
)
