"""Reading image files and bytes into validated uint8 arrays.

Every container is decoded by Pillow (``formats=`` restricted to the one the first bytes name,
so no other plugin ever parses the data); WSQ pixels are decoded in a helper process
(``_wsq_worker``) because the NBIS decoder can crash on corrupt data. Pillow already has to read the header for the size
check that runs before decoding, and measured on this project's data it decodes TIFF, GIF and
BMP as fast as or faster than ``cv2.imdecode`` after that header read (docs/io.md has the
numbers), with one error path and no decoder chatter on stderr.
"""

from __future__ import annotations

import io
import math
import os
from typing import Any, BinaryIO, Literal, Optional, Tuple, Union

import numpy as np

from ..errors import DependencyError, ImageError
from ._policy import DEFAULT_READ_PARAMETERS, ImageInfo, ReadParameters
from ._prepare import check_size
from ._resolution import to_working_resolution
from ._sniff import sniff_format, wsq_ppi

__all__ = ["read_image", "read_image_with_info"]

ImageSource = Union[str, "os.PathLike[str]", "os.PathLike[bytes]", bytes, bytearray, memoryview, BinaryIO]

WSQ_INSTALL_HINT = 'pip install "ektp-biometrics[wsq]"'

# Our format name -> Pillow's plugin name.
_PILLOW_FORMAT = {"PGM": "PPM", "PPM": "PPM"}

# Stored pixel layouts we refuse, and why (Pillow mode names).
_REFUSED_MODES = {
    "1": "bilevel (1 bit per pixel); grey levels are needed, so rescan in 8-bit grey",
    "I": "more than 8 bits per sample (16-bit or 32-bit integer); convert to 8-bit grey with the mapping your device documents",
    "F": "32-bit floating-point samples; convert to 8-bit grey with the mapping your device documents",
    "CMYK": "CMYK (print separations); convert it to RGB or grey with a colour-managed tool",
}
_SIXTEEN_BIT = (
    "16-bit samples; this library does not guess how to map them to 8 bits (scanners differ), so "
    "convert with the mapping your device documents, e.g. (image >> 8).astype(numpy.uint8), and "
    "pass the array to as_image()"
)
_COLOUR_MODES = ("RGB", "RGBA", "RGBX", "P", "PA")


def read_image(
    source: ImageSource,
    *,
    dpi: Union[float, Literal["stored"], None] = None,
    mode: Literal["grey", "rgb"] = "grey",
    allow_colour: bool = False,
    params: ReadParameters = DEFAULT_READ_PARAMETERS,
) -> np.ndarray:
    """Read a PNG, TIFF, BMP, PGM/PPM, GIF, JPEG or WSQ image into a uint8 array.

    The container is recognised from the data's first bytes, never from a file name. Grey
    stored as colour (RGB/RGBA/palette with equal channels) comes back as that grey exactly;
    alpha is dropped. Colour policy, 16-bit policy and limits are in docs/io.md.

    Parameters
    ----------
    source : str, path-like, bytes, bytearray, memoryview or binary file object
        The image file or its bytes.
    dpi : float or "stored", optional
        If given, the image's resolution in pixels per inch (250..1000), and the result is
        resampled to the 500 dpi working resolution (:func:`to_working_resolution`).
        ``"stored"`` takes the resolution the file states (an error if it states none).
    mode : {"grey", "rgb"}
        ``"grey"`` returns (M, N); ``"rgb"`` returns (M, N, 3) in R, G, B order (grey is
        replicated), for face images.
    allow_colour : bool
        With ``mode="grey"``: convert genuinely colour images with the ITU-R BT.601 luma weights
        Y = 0.299 R + 0.587 G + 0.114 B instead of refusing them (fingerprint scans are grey, so a
        colour image there is usually the wrong file).
    params : ReadParameters
        Size, file-size and grey-tolerance limits.

    Returns
    -------
    (M, N) or (M, N, 3) ndarray of uint8
        C-contiguous, writeable, row 0 at the top.

    Raises
    ------
    ImageError
        If the data is not a supported image, is empty, truncated or corrupt, its size is
        outside the limits, it has 16-bit or bilevel samples, it is colour while
        ``allow_colour`` is false, or ``dpi`` is out of range.
    DependencyError
        If the data is WSQ and the optional ``wsq`` package is not installed.

    Examples
    --------
    >>> import io, numpy as np
    >>> from PIL import Image
    >>> pixels = np.arange(64 * 80, dtype=np.uint32).reshape(64, 80).astype(np.uint8)
    >>> buffer = io.BytesIO()
    >>> Image.fromarray(pixels).convert("RGB").save(buffer, "BMP")  # grey stored as 24-bit RGB
    >>> image = read_image(buffer.getvalue())
    >>> image.shape, image.dtype, bool((image == pixels).all())
    ((64, 80), dtype('uint8'), True)
    """
    image, info = read_image_with_info(source, mode=mode, allow_colour=allow_colour, params=params)
    if dpi is None:
        return image
    if isinstance(dpi, str):
        if dpi != "stored":
            raise ImageError(f'dpi must be a number of pixels per inch or "stored", got {dpi!r}')
        if info.dpi is None:
            raise ImageError(
                f"the {info.format} file states no (or no square) resolution; pass dpi= with the sensor's resolution"
            )
        dpi = info.dpi
    return to_working_resolution(image, dpi, params=params)


def read_image_with_info(
    source: ImageSource,
    *,
    mode: Literal["grey", "rgb"] = "grey",
    allow_colour: bool = False,
    params: ReadParameters = DEFAULT_READ_PARAMETERS,
) -> Tuple[np.ndarray, ImageInfo]:
    """Read an image like :func:`read_image` and also return what the file says about it.

    Returns
    -------
    image : (M, N) or (M, N, 3) ndarray of uint8
        As :func:`read_image` returns it (never resampled).
    info : ImageInfo
        Container format, stored size, pixel layout, colour content and stored resolution.

    Examples
    --------
    >>> import io, numpy as np
    >>> from PIL import Image
    >>> buffer = io.BytesIO()
    >>> Image.fromarray(np.zeros((300, 200), np.uint8)).save(buffer, "TIFF", dpi=(569, 569))
    >>> buffer.seek(0)                               # a file object is read from where it stands
    0
    >>> image, info = read_image_with_info(buffer)
    >>> info.format, info.width, info.height, info.dpi, info.content
    ('TIFF', 200, 300, 569.0, 'grey')
    """
    if mode not in ("grey", "rgb"):
        raise ImageError(f'mode must be "grey" or "rgb", got {mode!r}')
    data, label = _read_source(source, params)
    fmt = sniff_format(data[:16])
    if fmt == "WSQ":
        _require_wsq()
    return _decode(data, fmt, label, mode, allow_colour, params)


def _read_source(source: Any, params: ReadParameters) -> Tuple[bytes, str]:
    """Return the whole data of ``source`` and how to name it in messages."""
    limit = params.max_file_bytes
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, label = bytes(source), "in memory"
    elif isinstance(source, (str, os.PathLike)):
        label = f"'{os.fsdecode(source)}'"
        try:
            with open(source, "rb") as file:
                if os.fstat(file.fileno()).st_size > limit:
                    raise ImageError(_too_big(label, limit))
                data = file.read(limit + 1)
        except OSError as exc:
            raise ImageError(f"cannot read the image file {label}: {exc.strerror or exc}") from exc
    elif hasattr(source, "read"):
        label = f"'{source.name}'" if isinstance(getattr(source, "name", None), str) else "from the file object"
        try:
            data = source.read(limit + 1)
        except (OSError, ValueError) as exc:  # ValueError: read from a closed file
            raise ImageError(f"cannot read the image {label}: {exc}") from exc
        if isinstance(data, str):
            raise ImageError(f"the file object {label} is in text mode; open the image with mode 'rb'")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ImageError(f"reading {label} gave {type(data).__name__}, not bytes; pass a binary file object")
        data = bytes(data)
    else:
        raise ImageError(
            f"cannot read an image from a {type(source).__name__}; pass a path, bytes or a binary file "
            "object (and use as_image() for arrays already in memory)"
        )
    if not data:
        raise ImageError(f"the image data {label} is empty (0 bytes); the file was not written completely")
    if len(data) > limit:
        raise ImageError(_too_big(label, limit))
    return data, label


def _too_big(label: str, limit: int) -> str:
    return (
        f"the image data {label} is larger than {limit:,} bytes; an image within the size limits "
        "cannot be this big, so it is probably not a single image (or pass ReadParameters with a "
        "larger max_file_bytes)"
    )


def _require_wsq() -> None:
    try:
        import wsq  # noqa: F401  (importing it registers its Pillow plugin)
    except ImportError as exc:
        raise DependencyError(f"reading WSQ images needs the optional 'wsq' package: {WSQ_INSTALL_HINT}") from exc


def _decode(
    data: bytes, fmt: str, label: str, mode: str, allow_colour: bool, params: ReadParameters
) -> Tuple[np.ndarray, ImageInfo]:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data), formats=[_PILLOW_FORMAT.get(fmt, fmt)]) as im:
            width, height = im.size
            check_size(height, width, params)  # from the header, before decoding any pixels
            stored_mode = im.mode
            _check_mode(stored_mode, fmt, label)
            dpi_xy = _stored_dpi(im, fmt, data)
            if fmt == "WSQ":
                loaded = _decode_wsq_isolated(data, width, height)
            else:
                im.load()
                loaded = im
            image, content = _pixels(loaded, fmt, label, mode, allow_colour, params)
    except (ImageError, DependencyError):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(
            f"the {fmt} header {label} declares an image far beyond the size limits ({exc}); "
            "it is corrupt or not a biometric capture"
        ) from exc
    except Exception as exc:  # any failure of a decoder on untrusted bytes means unusable data
        reason = str(exc) or type(exc).__name__
        raise ImageError(
            f"cannot decode the {fmt} image {label}: it is truncated or corrupt ({reason}); "
            "re-export or re-capture it"
        ) from exc
    info = ImageInfo(format=fmt, width=width, height=height, stored_mode=stored_mode, content=content, dpi_xy=dpi_xy)
    return image, info


def _decode_wsq_isolated(data: bytes, width: int, height: int) -> Any:
    """Decode WSQ in the helper process (see ``_wsq_worker``) and check it against the header."""
    from PIL import Image

    from ._wsq_worker import decode_wsq

    decoded_width, decoded_height, pixels = decode_wsq(data)
    if (decoded_width, decoded_height) != (width, height) or len(pixels) != width * height:
        raise ImageError("the WSQ image decodes to a size other than its header states: it is corrupt")
    return Image.frombytes("L", (width, height), pixels)


def _check_mode(stored_mode: str, fmt: str, label: str) -> None:
    if stored_mode.startswith("I;16"):
        reason: Optional[str] = _SIXTEEN_BIT
    elif stored_mode in _REFUSED_MODES:
        reason = _REFUSED_MODES[stored_mode]
    elif stored_mode in ("L", "LA") or stored_mode in _COLOUR_MODES:
        return
    else:
        reason = "a pixel layout this library does not read; convert it to 8-bit grey or RGB"
    raise ImageError(f"the {fmt} image {label} has {reason} (Pillow mode {stored_mode})")


def _pixels(im: Any, fmt: str, label: str, mode: str, allow_colour: bool, params: ReadParameters) -> Tuple[np.ndarray, str]:
    """Turn a loaded Pillow image into the requested array; returns it and the colour content."""
    if im.mode in ("L", "LA"):
        grey = np.array(im.getchannel(0) if im.mode == "LA" else im)
        if mode == "grey":
            return grey, "grey"
        return np.ascontiguousarray(np.repeat(grey[:, :, np.newaxis], 3, axis=2)), "grey"
    if im.mode in ("P", "PA"):  # apply the palette, keeping transparency out of the colours
        im = im.convert("RGBA" if im.mode == "PA" or "transparency" in im.info else "RGB")
    rgb_image = im.convert("RGB") if im.mode != "RGB" else im  # drops alpha, never composites
    rgb = np.array(rgb_image)
    spread = _channel_spread(rgb)
    content = "colour" if spread > params.grey_tolerance else "grey_as_colour"
    if mode == "rgb":
        return rgb, content
    if content == "colour" and not allow_colour:
        raise ImageError(
            f"the {fmt} image {label} is in colour (its channels differ by up to {spread} grey levels); "
            "fingerprint input must be grey. If this is the right image, read it with "
            "allow_colour=True (BT.601 luma) or mode='rgb'"
        )
    # BT.601 luma in Pillow's 16-bit fixed point; its weights sum to exactly 1, so equal
    # channels give back that grey level unchanged.
    return np.array(rgb_image.convert("L")), content


def _channel_spread(rgb: np.ndarray) -> int:
    """Largest difference between two channels of any pixel of an (M, N, 3) uint8 array."""
    red, green, blue = rgb[:, :, 0], rgb[:, :, 1], rgb[:, :, 2]
    if np.array_equal(red, green) and np.array_equal(green, blue):
        return 0
    wide = rgb.astype(np.int16)
    return int((wide.max(axis=2) - wide.min(axis=2)).max())


def _stored_dpi(im: Any, fmt: str, data: bytes) -> Optional[Tuple[float, float]]:
    """(horizontal, vertical) pixels per inch stored in the file, or ``None``."""
    if fmt == "WSQ":
        ppi = wsq_ppi(data)
        pair: Any = None if ppi is None else (ppi, ppi)
    elif fmt == "TIFF":
        # Pillow reports (1, 1) when the tags are absent (the FVC files); read the tags themselves.
        tags = im.tag_v2
        unit_to_inch = {2: 1.0, 3: 2.54}.get(int(tags.get(296, 2)))  # ResolutionUnit: 1 none, 2 inch, 3 cm
        if 282 not in tags or 283 not in tags or unit_to_inch is None:
            return None
        pair = (float(tags[282]) * unit_to_inch, float(tags[283]) * unit_to_inch)
    else:
        pair = im.info.get("dpi")
    try:
        x, y = (float(value) for value in pair)
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(x) and math.isfinite(y) and x > 0 and y > 0):
        return None
    return round(x, 1), round(y, 1)
