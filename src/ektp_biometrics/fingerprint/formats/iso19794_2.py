"""ISO/IEC 19794-2:2005 finger minutiae record (off-card format).

General header, 24 bytes, big-endian (FingerprintIO ``Iso19794p2v2005Template``):

====== ===== ==============================================================
offset bytes field
====== ===== ==============================================================
0      4     format identifier ``"FMR\\0"``
4      4     version ``" 20\\0"``
8      4     total record length in bytes
12     2     capture equipment: 4-bit certification flags, 12-bit device type
14     2     image width (pixels)
16     2     image height (pixels)
18     2     x resolution (pixels per centimetre)
20     2     y resolution (pixels per centimetre)
22     1     number of finger views
23     1     reserved (0)
====== ===== ==============================================================

then the finger views (see :mod:`._fmr`).  Minutia angle unit: 360/256 degrees.

Examples
--------
>>> from ektp_biometrics.fingerprint import FingerprintTemplate, make_minutiae
>>> t = FingerprintTemplate(300, 400, make_minutiae([10.0], [20.0], [0.0]), quality=60)
>>> data = dumps([t])
>>> data[:8], len(data), data[18:20]
(b'FMR\\x00 20\\x00', 36, b'\\x00\\xc5')
>>> loads_all(data)[0].quality
60
"""

from __future__ import annotations

import struct
from typing import Any, Sequence

from ...errors import TemplateFormatError
from ..template import FingerprintTemplate
from ._common import check_options
from ._fmr import MAGIC, VERSION, AngleCodec, RecordHeader, check_image_fields, encode_views, equipment_field, select_views

__all__ = ["NAME", "dumps", "loads_all", "DUMP_OPTIONS", "LOAD_OPTIONS"]

NAME = "iso19794-2"
HEADER_BYTES = 24
ANGLE = AngleCodec("ISO/IEC 19794-2", 256)
DUMP_OPTIONS = ("certification", "device_type")
LOAD_OPTIONS = ("view",)


def dumps(templates: Sequence[FingerprintTemplate], **options: Any) -> bytes:
    """Encode one record holding one finger view per template."""
    check_options(options, DUMP_OPTIONS, f"dumps(format={NAME!r})")
    equipment = equipment_field(options)
    width, height, ppcm, views = encode_views(templates, ANGLE, NAME)
    body = b"".join(views)
    total = HEADER_BYTES + len(body)
    header = MAGIC + VERSION + struct.pack(">IHHHHHBB", total, equipment, width, height, ppcm, ppcm, len(views), 0)
    return header + body


def _read_header(data: bytes) -> RecordHeader:
    if len(data) < HEADER_BYTES:
        raise TemplateFormatError(f"{NAME} record is {len(data)} bytes, shorter than its {HEADER_BYTES}-byte header")
    if data[:4] != MAGIC:
        raise TemplateFormatError(f"not a finger minutiae record: starts with {data[:4]!r}, expected {MAGIC!r}")
    if data[4:8] != VERSION:
        raise TemplateFormatError(
            f"{NAME} record version {data[4:8]!r} is not supported; this reader knows {VERSION!r} (2005 edition)"
        )
    (total,) = struct.unpack_from(">I", data, 8)
    if total != len(data):
        (ansi_length,) = struct.unpack_from(">H", data, 8)
        hint = (
            "; its first two length bytes match the data size, so it looks like an ANSI INCITS 378 record: "
            "use format='ansi378'"
            if ansi_length == len(data)
            else ""
        )
        raise TemplateFormatError(f"{NAME} length field says {total} bytes but {len(data)} were given{hint}")
    _equipment, width, height, x_ppcm, y_ppcm, view_count, _reserved = struct.unpack_from(">HHHHHBB", data, 12)
    dpi = check_image_fields(width, height, x_ppcm, y_ppcm, NAME)
    return RecordHeader(width, height, dpi, view_count, HEADER_BYTES)


def loads_all(data: bytes, **options: Any) -> list[FingerprintTemplate]:
    """Decode a record; ``view=i`` returns only the i-th finger view (counted from 0, in record order)."""
    check_options(options, LOAD_OPTIONS, f"loads(format={NAME!r})")
    return select_views(data, _read_header, ANGLE, NAME, options.get("view"))
