"""Image container detection from the first bytes (magic numbers), never from a file name."""

from __future__ import annotations

from typing import Optional

from ..errors import ImageError

__all__ = ["sniff_format", "wsq_ppi"]

# (signature, our format name); checked in order, first match wins.
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"BM", "BMP"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"\xff\xa0\xff", "WSQ"),  # SOI marker, then the next marker
    (b"P5", "PGM"),
    (b"P2", "PGM"),
    (b"P6", "PPM"),
    (b"P3", "PPM"),
)

# Containers we recognise but do not read, with what to do instead.
_UNSUPPORTED = (
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000 (JP2)"),
    (b"\xffO\xffQ", "a JPEG 2000 codestream"),
    (b"II+\x00", "BigTIFF"),
    (b"MM\x00+", "BigTIFF"),
    (b"P1", "a bilevel PBM"),
    (b"P4", "a bilevel PBM"),
    (b"%PDF", "a PDF document"),
)


def sniff_format(head: bytes) -> str:
    """Name the image container that ``head`` (the first bytes of a file) starts.

    Raises
    ------
    ImageError
        If the bytes start no supported container.

    Examples
    --------
    >>> sniff_format(b"II*\\x00\\x08\\x00")
    'TIFF'
    """
    for signature, name in _SIGNATURES:
        if head.startswith(signature):
            return name
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        unsupported: Optional[str] = "WebP"
    else:
        unsupported = next((name for signature, name in _UNSUPPORTED if head.startswith(signature)), None)
    if unsupported is not None:
        raise ImageError(
            f"the data is {unsupported}, which is not supported; convert it to PNG, TIFF or BMP "
            "(8-bit grey) first"
        )
    raise ImageError(
        "the data is not a PNG, TIFF, BMP, PGM/PPM, GIF, JPEG or WSQ image (its first bytes match "
        "none of their signatures); check that the file is an image and was not truncated or "
        "overwritten"
    )


def wsq_ppi(data: bytes) -> Optional[float]:
    """Resolution from the ``PPI`` line of a WSQ file's NISTCOM comment, or ``None``.

    WSQ (FBI IAFIS-IC-0110) marker segments before the frame header (``FFA2``) carry a 2-byte
    big-endian length; the NIST comment (``FFA8``) is text lines ``NAME value``.

    Examples
    --------
    >>> com = b"NIST_COM 2\\nPPI 500\\n"
    >>> wsq_ppi(b"\\xff\\xa0\\xff\\xa8" + (len(com) + 2).to_bytes(2, "big") + com + b"\\xff\\xa2")
    500.0
    """
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF or data[pos + 1] == 0xA2:  # not a marker, or start of frame: stop
            return None
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if length < 2:
            return None
        text = data[pos + 4 : pos + 2 + length]
        if data[pos + 1] == 0xA8 and text.startswith(b"NIST_COM"):
            for line in text.split(b"\n"):
                name, _, value = line.partition(b" ")
                if name == b"PPI":
                    try:
                        ppi = float(value)
                    except ValueError:
                        return None
                    return ppi if 0 < ppi < 1e5 else None  # NBIS writes -1 for "unknown"
        pos += 2 + length
    return None
