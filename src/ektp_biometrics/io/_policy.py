"""What image input accepts: the tunables of reading, and what a read reports.

This module imports nothing heavy, so ``ektp_biometrics.io.ReadParameters`` and
``ImageInfo`` cost nothing to reach.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional, Tuple

__all__ = ["ReadParameters", "DEFAULT_READ_PARAMETERS", "WORKING_DPI", "ImageInfo"]

#: Resolution the fingerprint pipeline works at, in pixels per inch (ISO/IEC 19794-4 and the
#: FBI/NIST 500 ppi class; FVC, FCJ2020 and SOCOFing all hold ~500 dpi images).
WORKING_DPI = 500


@dataclass(frozen=True)
class ReadParameters:
    """Limits and policies of image input; pass your own to loosen or tighten them.

    Attributes
    ----------
    min_side : int
        Pixels. Smallest accepted width and height. The SOCOFing crops (96 x 103) and AT&T faces
        (92 x 112) must pass; below 64 px a 500-dpi print holds fewer than 4 x 4 blocks of
        16 px, too little for orientation or ridge-frequency estimation.
    max_side : int
        Pixels. Largest accepted width and height: 4096 px is 8.2 in at 500 dpi and 4.1 in at
        1000 dpi, larger than a four-finger slap (3.2 x 3.0 in, ANSI/NIST-ITL) at either.
    max_pixels : int
        Pixels. Largest accepted width x height (16 Mpixel = 16 MiB of uint8 grey, 48 MiB as RGB),
        checked from the file header before any pixel data is decoded (decompression bombs).
    max_file_bytes : int
        Bytes. Largest file read into memory: an uncompressed 16 Mpixel 32-bit BMP is 64 MiB.
    grey_tolerance : int
        Grey levels. A colour image whose channels differ by at most this much at every pixel
        counts as grey. Measured: grey saved as RGB JPEG by Pillow and OpenCV (quality 50-95,
        4:4:4 and 4:2:0) decodes with equal channels; the 3-level margin (not tuned on data) is
        for other encoders' chroma rounding and scanners' colour balance.
    min_dpi, max_dpi : float
        Pixels per inch. The range :func:`to_working_resolution` resamples from. Below 250 dpi the
        ridges (about 9 px apart at 500 dpi) are barely resolved; above 1000 dpi is beyond the
        ANSI/NIST-ITL 1000 ppi class and almost always a mis-stated resolution.
    """

    min_side: int = 64
    max_side: int = 4096
    max_pixels: int = 16_000_000
    max_file_bytes: int = 64 * 1024 * 1024
    grey_tolerance: int = 3
    min_dpi: float = 250.0
    max_dpi: float = 1000.0


#: The parameters every public function uses unless given others.
DEFAULT_READ_PARAMETERS = ReadParameters()


@dataclass(frozen=True)
class ImageInfo:
    """What a file said about an image, returned by :func:`read_image_with_info`.

    Attributes
    ----------
    format : str
        Container detected from the first bytes: ``"PNG"``, ``"TIFF"``, ``"BMP"``, ``"PGM"``,
        ``"PPM"``, ``"GIF"``, ``"JPEG"`` or ``"WSQ"``.
    width, height : int
        Size of the stored image in pixels (before any resampling).
    stored_mode : str
        Layout of the stored samples, in Pillow's mode names: ``"L"`` (8-bit grey), ``"RGB"``,
        ``"RGBA"``, ``"P"`` (palette), ``"LA"`` ...
    content : {"grey", "grey_as_colour", "colour"}
        ``"grey"``: one stored channel. ``"grey_as_colour"``: stored as colour, but all channels
        agree within :attr:`ReadParameters.grey_tolerance`. ``"colour"``: genuinely colour.
    dpi_xy : tuple of float or None
        (horizontal, vertical) pixels per inch stored in the file (TIFF XResolution/YResolution,
        PNG pHYs, BMP pixels-per-metre, JPEG JFIF density, WSQ NISTCOM ``PPI``), rounded to
        0.1; ``None`` when the file states none.
    """

    format: str
    width: int
    height: int
    stored_mode: str
    content: Literal["grey", "grey_as_colour", "colour"]
    dpi_xy: Optional[Tuple[float, float]] = None

    @property
    def dpi(self) -> Optional[float]:
        """Stored resolution when both axes agree within 0.5 %, else ``None``."""
        if self.dpi_xy is None:
            return None
        x, y = self.dpi_xy
        return x if abs(x - y) <= 0.005 * max(x, y) else None

    @property
    def scan_dpi(self) -> Optional[float]:
        """Stored resolution if it is a plausible scan resolution (250..1000 dpi), else ``None``.

        Many writers store a default of 72 or 96 dpi that says nothing about the sensor (the
        SOCOFing BMPs say 96); this property filters those out.
        """
        dpi = self.dpi
        if dpi is None:
            return None
        p = DEFAULT_READ_PARAMETERS
        return dpi if p.min_dpi <= dpi <= p.max_dpi else None
