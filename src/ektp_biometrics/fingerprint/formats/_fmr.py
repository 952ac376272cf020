"""Finger minutiae record (FMR) codec shared by ISO/IEC 19794-2:2005 and ANSI INCITS 378-2004.

The two records differ only in the general header (ISO: 4-byte length, no product id; ANSI:
2- or 6-byte length and a CBEFF product id) and in the unit of the minutia angle (ISO: 360/256
degrees, 0..255; ANSI: 2 degrees, 0..179).  Finger views, minutiae and extended data are laid
out identically, all integers big-endian.  Layouts as read from FingerprintIO
(robertvazan/fingerprintio-java, packages iso19794p2v2005 and ansi378v2004) and NIST biomdi
(usnistgov/biomdi, fingerminutia/src/libfmr/fmr.c, fvmr.c); see docs/templates.md.

Direction convention: both standards measure the minutia angle counter-clockwise from the
image's +x axis (rows growing downward, as the image is displayed) and point it *up* the ridge
of an ending and up the valley of a bifurcation -- NBIS ``xytreps.c`` (``lfs2m1_minutia_XYT``:
"direction pointing up the ridge ending or bifurcation valley", M1 = ANSI INCITS 378-2004), and
NIST biomdi's ``iso2ansi_fvmr``/``ansi2iso_fvmr`` convert between the two records by angle unit
alone.  That is exactly the library's convention (template.py), so no kind gets a pi offset here.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from ...errors import TemplateFormatError
from ..template import MAX_SIDE, FingerprintTemplate, make_minutiae
from ._common import (
    check_template,
    direction_degrees,
    dpi_to_ppcm,
    int_option,
    ppcm_to_dpi,
    quality_to_reliability,
    reliability_to_quality,
    round_half_up,
)

MAGIC = b"FMR\x00"
VERSION = b" 20\x00"
VIEW_HEADER_BYTES = 4
MINUTIA_BYTES = 6
EXTENDED_LENGTH_BYTES = 2
#: Smallest possible finger view: its header plus the extended-data length field.
MIN_VIEW_BYTES = VIEW_HEADER_BYTES + EXTENDED_LENGTH_BYTES
#: View numbers are 4 bits, numbered from 0 per finger position.
MAX_VIEWS_PER_FINGER = 16
MAX_VIEWS = 255
#: Resolution range of FingerprintTemplate, dots per inch.
MIN_DPI, MAX_DPI = 50, 5000

#: One minutia as stored: type (2 bits) + x (14 bits); reserved (2 bits) + y (14 bits); angle; quality.
RAW_MINUTIA_DTYPE = np.dtype([("type_x", ">u2"), ("reserved_y", ">u2"), ("angle", "u1"), ("quality", "u1")])


@dataclass(frozen=True)
class RawView:
    """One finger view as read from a record, checked but not yet a template."""

    finger_position: int
    view_number: int
    impression_type: int
    quality: int
    minutiae: np.ndarray  # RAW_MINUTIA_DTYPE


@dataclass(frozen=True)
class RecordHeader:
    """Fields of the general header that a template keeps."""

    width: int
    height: int
    resolution_dpi: int
    view_count: int
    body_offset: int


@dataclass(frozen=True)
class AngleCodec:
    """How one standard quantizes the minutia angle."""

    name: str
    codes: int  # number of codes in a full turn: 256 (ISO) or 180 (ANSI)

    def encode(self, direction: np.ndarray) -> np.ndarray:
        """Radians to the nearest code, halves upward, wrapping a full turn to 0."""
        units = direction_degrees(direction) * (self.codes / 360.0)
        return np.mod(round_half_up(units), self.codes)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Codes to radians (the start of each code's interval, which is its nominal angle)."""
        return np.asarray(codes, dtype=np.float64) * (2.0 * np.pi / self.codes)


def encode_views(
    templates: Sequence[FingerprintTemplate], angle: AngleCodec, format_name: str
) -> tuple[int, int, int, list[bytes]]:
    """Check templates fit one record and encode their finger views.

    Returns width, height, px/cm and the encoded views.
    """
    templates = [check_template(t) for t in templates]
    if not templates:
        raise TemplateFormatError(f"a {format_name} record needs at least one template")
    if len(templates) > MAX_VIEWS:
        raise TemplateFormatError(f"{len(templates)} templates exceed the {MAX_VIEWS} finger views of one record")
    first = templates[0]
    for index, template in enumerate(templates[1:], start=1):
        if (template.width, template.height, template.resolution) != (first.width, first.height, first.resolution):
            raise TemplateFormatError(
                f"template {index} is {template.width}x{template.height} at {template.resolution} dpi but template 0 "
                f"is {first.width}x{first.height} at {first.resolution} dpi; one {format_name} record has a single "
                "image size and resolution"
            )
    next_view: dict[int, int] = {}
    views = []
    for template in templates:
        view_number = next_view.get(template.finger_position, 0)
        if view_number >= MAX_VIEWS_PER_FINGER:
            raise TemplateFormatError(
                f"more than {MAX_VIEWS_PER_FINGER} views of finger position {template.finger_position}; the view number "
                "is 4 bits"
            )
        next_view[template.finger_position] = view_number + 1
        views.append(_encode_view(template, view_number, angle))
    return first.width, first.height, dpi_to_ppcm(first.resolution), views


def _encode_view(template: FingerprintTemplate, view_number: int, angle: AngleCodec) -> bytes:
    count = len(template)
    raw = np.empty(count, dtype=RAW_MINUTIA_DTYPE)
    x = round_half_up(template.col)
    y = round_half_up(template.row)
    raw["type_x"] = (template.kind.astype(np.uint16) << 14) | x.astype(np.uint16)
    raw["reserved_y"] = y.astype(np.uint16)
    raw["angle"] = angle.encode(template.direction)
    raw["quality"] = reliability_to_quality(template.reliability)
    header = struct.pack(
        ">BBBB",
        template.finger_position,
        (view_number << 4) | template.impression_type,
        template.quality,
        count,
    )
    # No extended data (ridge counts, cores/deltas): its length field is 0.
    return header + raw.tobytes() + struct.pack(">H", 0)


def equipment_field(options: dict[str, Any]) -> int:
    """Capture equipment: 4-bit certification/compliance flags + 12-bit device (scanner) type."""
    certification = int_option(options.get("certification", 0), "certification", 0, 0xF)
    device_type = int_option(options.get("device_type", 0), "device_type", 0, 0xFFF)
    return (certification << 12) | device_type


def parse_views(data: bytes, header: RecordHeader, angle: AngleCodec, format_name: str) -> list[RawView]:
    """Read and check every finger view after the general header; the record must end with the last."""
    remaining = len(data) - header.body_offset
    if header.view_count * MIN_VIEW_BYTES > remaining:
        raise TemplateFormatError(
            f"{format_name} record declares {header.view_count} finger views but only {remaining} bytes follow the "
            f"header (each view needs at least {MIN_VIEW_BYTES})"
        )
    views = []
    pos = header.body_offset
    for index in range(header.view_count):
        if pos + VIEW_HEADER_BYTES > len(data):
            raise TemplateFormatError(f"{format_name} record is truncated in the header of finger view {index}")
        position, view_and_impression, finger_quality, count = data[pos : pos + VIEW_HEADER_BYTES]
        pos += VIEW_HEADER_BYTES
        needed = count * MINUTIA_BYTES + EXTENDED_LENGTH_BYTES
        if pos + needed > len(data):
            raise TemplateFormatError(
                f"finger view {index} declares {count} minutiae ({count * MINUTIA_BYTES} bytes) but only "
                f"{len(data) - pos} bytes remain in the {format_name} record"
            )
        minutiae = np.frombuffer(data, dtype=RAW_MINUTIA_DTYPE, count=count, offset=pos)
        pos += count * MINUTIA_BYTES
        (extended_length,) = struct.unpack_from(">H", data, pos)
        pos += EXTENDED_LENGTH_BYTES
        if pos + extended_length > len(data):
            raise TemplateFormatError(
                f"finger view {index} declares {extended_length} bytes of extended data but only {len(data) - pos} "
                f"remain in the {format_name} record"
            )
        # Extended data (ridge counts, cores and deltas, vendor blocks) has no place in a template: skipped.
        pos += extended_length
        view = RawView(position, view_and_impression >> 4, view_and_impression & 0xF, finger_quality, minutiae)
        _check_view(view, index, header, angle, format_name)
        views.append(view)
    if pos != len(data):
        raise TemplateFormatError(
            f"{len(data) - pos} unexplained bytes follow the last finger view of the {format_name} record"
        )
    return views


def _check_view(view: RawView, index: int, header: RecordHeader, angle: AngleCodec, format_name: str) -> None:
    where = f"{format_name} finger view {index}"
    if view.finger_position > 10:
        raise TemplateFormatError(f"{where}: finger position {view.finger_position} is not a code 0..10")
    if view.quality > 100:
        raise TemplateFormatError(f"{where}: finger quality {view.quality} is outside 0..100")
    m = view.minutiae
    if not m.size:
        return
    kinds = m["type_x"] >> 14
    x = m["type_x"] & 0x3FFF
    y = m["reserved_y"] & 0x3FFF
    checks = (
        (kinds == 3, "uses the reserved minutia type code 3"),
        ((m["reserved_y"] >> 14) != 0, "sets the reserved bits above the y coordinate"),
        (x >= header.width, f"has x outside the declared width {header.width}"),
        (y >= header.height, f"has y outside the declared height {header.height}"),
        (m["angle"] >= angle.codes, f"has an angle code above {angle.codes - 1}"),
        (m["quality"] > 100, "has a minutia quality above 100"),
    )
    for bad, what in checks:
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise TemplateFormatError(f"{where}: minutia {first} {what}")


def view_to_template(view: RawView, header: RecordHeader, angle: AngleCodec) -> FingerprintTemplate:
    """Build the template of one checked view."""
    m = view.minutiae
    return FingerprintTemplate(
        width=header.width,
        height=header.height,
        minutiae=make_minutiae(
            row=(m["reserved_y"] & 0x3FFF).astype(np.float64),
            col=(m["type_x"] & 0x3FFF).astype(np.float64),
            direction=angle.decode(m["angle"]),
            kind=(m["type_x"] >> 14).astype(np.int64),
            reliability=quality_to_reliability(m["quality"]),
        ),
        resolution=header.resolution_dpi,
        quality=view.quality,
        finger_position=view.finger_position,
        impression_type=view.impression_type,
    )


def check_image_fields(width: int, height: int, x_ppcm: int, y_ppcm: int, format_name: str) -> int:
    """Check the size and resolution fields of a general header; return the resolution in dpi."""
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
        raise TemplateFormatError(
            f"{format_name} record declares a {width}x{height} image; sizes 1..{MAX_SIDE} are supported "
            "(minutia coordinates are 14 bits)"
        )
    if x_ppcm != y_ppcm:
        raise TemplateFormatError(
            f"{format_name} record has x resolution {x_ppcm} px/cm and y resolution {y_ppcm} px/cm; only square "
            "pixels are supported"
        )
    if not dpi_to_ppcm(MIN_DPI) <= x_ppcm <= dpi_to_ppcm(MAX_DPI):
        raise TemplateFormatError(
            f"{format_name} record resolution {x_ppcm} px/cm ({ppcm_to_dpi(x_ppcm)} dpi) is outside the supported "
            f"{MIN_DPI}..{MAX_DPI} dpi"
        )
    # 1969 px/cm, the code of 5000 dpi, reads back as 5001 dpi: clamp to the template's range.
    return min(max(ppcm_to_dpi(x_ppcm), MIN_DPI), MAX_DPI)


def select_views(
    data: bytes,
    read_header: Callable[[bytes], RecordHeader],
    angle: AngleCodec,
    format_name: str,
    view: Any = None,
) -> list[FingerprintTemplate]:
    """Parse a whole record; return the template of one view (``view`` index) or of all (``None``)."""
    header = read_header(data)
    views = parse_views(data, header, angle, format_name)
    if view is None:
        return [view_to_template(v, header, angle) for v in views]
    index = int_option(view, "view", 0, MAX_VIEWS - 1)
    if index >= len(views):
        raise TemplateFormatError(
            f"{format_name} record holds {len(views)} finger view(s); view={index} does not exist"
            + (" (views are counted from 0)" if views else "")
        )
    return [view_to_template(views[index], header, angle)]
