"""NIST NBIS ``.xyt`` minutiae text, in the two representations ``mindtct`` writes.

One ASCII line per minutia, ``"x y theta quality\\n"``, integers separated by single spaces, in
template order, nothing else: no header, no minutia type, no image size.  What NBIS 5.0.0 writes
(``mindtct/src/lib/mindtct/results.c::write_minutiae_XYTQ`` calling ``xytreps.c``):

``mindtct -m1`` -> format ``"xyt"`` (alias ``"xyt-m1"``), ``lfs2m1_minutia_XYT``:
    x, y in pixels with the origin at the top-left (x = column, y = row);
    theta counter-clockwise from east, direction pointing up the ridge of an ending or the valley
    of a bifurcation (= the ANSI INCITS 378-2004 "M1" convention = ours), first rounded to whole
    degrees and then **integer-divided by 2**: theta is in 2-degree units, 0..179, despite the
    comment in results.c saying degrees 0..360 (xytreps.c: "range of theta is 0..179 because
    angles are in units of 2 degress"; ``t = t / 2``).

``mindtct`` without ``-m1`` -> format ``"xyt-nist"``, ``lfs2nist_minutia_XYT``:
    x as above, ``y = image_height - row`` (origin at the bottom-left, so y runs 1..height);
    theta in whole degrees 0..359 pointing *out and away* from the ridge ending or bifurcation
    valley, i.e. ours plus 180 degrees for both kinds.

Both: ``quality = sround(reliability * 100)`` (NBIS ``sround`` rounds halves away from zero).

NBIS computes the whole degrees as ``90 - sround(lfs)`` where ``lfs = 90 - ours`` is its clockwise
angle from north, i.e. it rounds *our* angle's halves downward; we do the same (after snapping to
1/1000 degree to absorb float32 noise), so a direction that mindtct could have produced is written
with the very theta mindtct writes.

Reading needs what the text lacks: ``width`` and ``height`` (required; the NIST representation
cannot undo its y flip without the height), and optionally ``resolution`` (dpi, default 500),
``quality``, ``finger_position``, ``impression_type`` and ``kind`` (default 0, "other", as the text
has no minutia type).  Reading ``"xyt"`` returns ``2 * theta`` degrees; a line with three numbers
(no quality) reads as reliability 0.

Examples
--------
>>> import math
>>> from ektp_biometrics.fingerprint import FingerprintTemplate, make_minutiae
>>> t = FingerprintTemplate(300, 400, make_minutiae([10.0], [20.0], [math.radians(90)], reliability=0.5))
>>> dumps_m1([t]), dumps_nist([t])
(b'20 10 45 50\\n', b'20 390 270 50\\n')
>>> loads_all_m1(b"20 10 45 50\\n", width=300, height=400)[0].y.tolist()
[10.0]
"""

from __future__ import annotations

import re
from typing import Any, Sequence

import numpy as np

from ...errors import ConfigurationError, TemplateFormatError
from ..template import MAX_MINUTIAE, MAX_SIDE, FingerprintTemplate, make_minutiae
from ._common import check_options, check_template, direction_degrees, int_option, reliability_to_quality

__all__ = ["NAME_M1", "NAME_NIST", "dumps_m1", "dumps_nist", "loads_all_m1", "loads_all_nist"]

NAME_M1 = "xyt"
NAME_NIST = "xyt-nist"
DUMP_OPTIONS: tuple[str, ...] = ()
LOAD_OPTIONS = ("width", "height", "resolution", "quality", "finger_position", "impression_type", "kind")
#: Longest line we accept ("-1234567 " x 4); with MAX_MINUTIAE lines this bounds the input size.
_MAX_LINE = 40
_MAX_BYTES = (_MAX_LINE + 1) * MAX_MINUTIAE
_LINE = re.compile(rb"[ \t]*(-?\d{1,7})[ \t]+(-?\d{1,7})[ \t]+(-?\d{1,7})(?:[ \t]+(-?\d{1,7}))?[ \t]*\r?")


def _whole_degrees(direction: np.ndarray) -> np.ndarray:
    """Our directions to whole degrees 0..359, halves rounded down as NBIS does (see module doc)."""
    degrees = np.round(direction_degrees(direction), 3)  # float32 radians carry ~2e-5 degree noise
    return np.mod(np.ceil(degrees - 0.5).astype(np.int64), 360)


def _single(templates: Sequence[FingerprintTemplate], name: str) -> FingerprintTemplate:
    if len(templates) != 1:
        raise TemplateFormatError(f"a {name} file holds exactly one finger view; got {len(templates)} templates")
    return check_template(templates[0])


def _lines(x: np.ndarray, y: np.ndarray, theta: np.ndarray, quality: np.ndarray) -> bytes:
    return "".join(f"{a} {b} {c} {d}\n" for a, b, c, d in zip(x.tolist(), y.tolist(), theta.tolist(), quality.tolist())).encode(
        "ascii"
    )


def dumps_m1(templates: Sequence[FingerprintTemplate], **options: Any) -> bytes:
    """Write what ``mindtct -m1`` writes: top-left origin, theta in 2-degree units."""
    check_options(options, DUMP_OPTIONS, f"dumps(format={NAME_M1!r})")
    t = _single(templates, NAME_M1)
    x = np.floor(t.col.astype(np.float64) + 0.5).astype(np.int64)
    y = np.floor(t.row.astype(np.float64) + 0.5).astype(np.int64)
    theta = _whole_degrees(t.direction) // 2
    return _lines(x, y, theta, reliability_to_quality(t.reliability))


def dumps_nist(templates: Sequence[FingerprintTemplate], **options: Any) -> bytes:
    """Write what ``mindtct`` writes without ``-m1``: bottom-left origin, theta degrees turned by 180."""
    check_options(options, DUMP_OPTIONS, f"dumps(format={NAME_NIST!r})")
    t = _single(templates, NAME_NIST)
    x = np.floor(t.col.astype(np.float64) + 0.5).astype(np.int64)
    y = t.height - np.floor(t.row.astype(np.float64) + 0.5).astype(np.int64)
    # NIST internal directions point away from the ridge ending / bifurcation valley: ours + pi
    # (NBIS xytreps.c lfs2nist_minutia_XYT, "opposite direction from M1").
    theta = np.mod(_whole_degrees(t.direction) + 180, 360)
    return _lines(x, y, theta, reliability_to_quality(t.reliability))


def _parse(data: bytes, name: str, theta_limit: int) -> np.ndarray:
    """Text to an (K, 4) int64 array of x, y, theta, quality (quality -1 when the column is absent)."""
    if len(data) > _MAX_BYTES:
        raise TemplateFormatError(
            f"{name} text is {len(data)} bytes; {MAX_MINUTIAE} minutiae (the template limit) never need more than "
            f"{_MAX_BYTES}"
        )
    rows = []
    columns = None
    for number, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        match = _LINE.fullmatch(line)
        if match is None:
            shown = line[:40].decode("ascii", "backslashreplace")
            raise TemplateFormatError(f"{name} line {number} is not 'x y theta [quality]' integers: {shown!r}")
        values = match.groups()
        present = 4 if values[3] is not None else 3
        if columns is None:
            columns = present
        elif present != columns:
            raise TemplateFormatError(f"{name} line {number} has {present} numbers but earlier lines have {columns}")
        rows.append([int(v) if v is not None else -1 for v in values])
        if len(rows) > MAX_MINUTIAE:
            raise TemplateFormatError(f"{name} text holds more than {MAX_MINUTIAE} minutiae, the template limit")
    table = np.array(rows, dtype=np.int64).reshape(-1, 4)
    theta = table[:, 2]
    quality = table[:, 3]
    if ((theta < 0) | (theta >= theta_limit)).any():
        raise TemplateFormatError(f"{name} theta must lie in 0..{theta_limit - 1}")
    if (quality > 100).any() or ((quality < 0) & (columns == 4)).any():
        raise TemplateFormatError(f"{name} quality must lie in 0..100")
    return table


def _metadata(options: dict[str, Any], name: str) -> dict[str, int]:
    check_options(options, LOAD_OPTIONS, f"loads(format={name!r})")
    for required in ("width", "height"):
        if required not in options:
            raise ConfigurationError(
                f"{name} text carries no image size: pass width= and height= (pixels) to loads()"
            )
    return {
        "width": int_option(options["width"], "width", 1, MAX_SIDE),
        "height": int_option(options["height"], "height", 1, MAX_SIDE),
        "resolution": int_option(options.get("resolution", 500), "resolution", 50, 5000),
        "quality": int_option(options.get("quality", 0), "quality", 0, 100),
        "finger_position": int_option(options.get("finger_position", 0), "finger_position", 0, 10),
        "impression_type": int_option(options.get("impression_type", 0), "impression_type", 0, 15),
        "kind": int_option(options.get("kind", 0), "kind", 0, 2),
    }


def _build(table: np.ndarray, row: np.ndarray, degrees: np.ndarray, meta: dict[str, int], name: str) -> FingerprintTemplate:
    x = table[:, 0]
    width, height = meta["width"], meta["height"]
    bad_x = (x < 0) | (x >= width)
    bad_row = (row < 0) | (row >= height)
    if bad_x.any() or bad_row.any():
        first = int(np.flatnonzero(bad_x | bad_row)[0])
        raise TemplateFormatError(
            f"{name} minutia {first} at x={int(x[first])}, y={int(table[first, 1])} lies outside the "
            f"{width}x{height} image given by width= and height="
        )
    quality = np.where(table[:, 3] < 0, 0, table[:, 3])
    return FingerprintTemplate(
        width=width,
        height=height,
        minutiae=make_minutiae(
            row=row.astype(np.float64),
            col=x.astype(np.float64),
            direction=np.radians(degrees.astype(np.float64)),
            kind=meta["kind"],
            reliability=quality / 100.0,
        ),
        resolution=meta["resolution"],
        quality=meta["quality"],
        finger_position=meta["finger_position"],
        impression_type=meta["impression_type"],
    )


def loads_all_m1(data: bytes, **options: Any) -> list[FingerprintTemplate]:
    """Read ``mindtct -m1`` text (see module doc); returns a one-element list."""
    meta = _metadata(options, NAME_M1)
    table = _parse(data, NAME_M1, 180)
    return [_build(table, table[:, 1], 2 * table[:, 2], meta, NAME_M1)]


def loads_all_nist(data: bytes, **options: Any) -> list[FingerprintTemplate]:
    """Read ``mindtct`` NIST-representation text (see module doc); returns a one-element list."""
    meta = _metadata(options, NAME_NIST)
    table = _parse(data, NAME_NIST, 360)
    row = meta["height"] - table[:, 1]
    return [_build(table, row, np.mod(table[:, 2] + 180, 360), meta, NAME_NIST)]
