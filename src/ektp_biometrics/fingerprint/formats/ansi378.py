"""ANSI INCITS 378-2004 finger minutiae record.

General header, 26 bytes (30 with the long length field), big-endian (FingerprintIO
``Ansi378v2004Template``; NIST biomdi ``fingerminutia/src/libfmr/fmr.c``):

====== ===== ==============================================================
offset bytes field
====== ===== ==============================================================
0      4     format identifier ``"FMR\\0"``
4      4     version ``" 20\\0"``
8      2     record length, or ``0x0000`` when the record is longer than 65535 bytes,
             in which case a 4-byte length follows at offset 10 and every later
             offset grows by 4
10     2     CBEFF product identifier owner (IBIA-registered; 0x0103 = vendor unknown)
12     2     CBEFF product identifier type
14     2     capture equipment: 4-bit compliance flags, 12-bit scanner id
16     2     image width (pixels)
18     2     image height (pixels)
20     2     x resolution (pixels per centimetre)
22     2     y resolution (pixels per centimetre)
24     1     number of finger views
25     1     reserved (0)
====== ===== ==============================================================

then the finger views (see :mod:`._fmr`).  Minutia angle unit: 2 degrees, codes 0..179.

Examples
--------
>>> from ektp_biometrics.fingerprint import FingerprintTemplate, make_minutiae
>>> t = FingerprintTemplate(300, 400, make_minutiae([10.0], [20.0], [0.0]), quality=60)
>>> data = dumps([t])
>>> len(data), int.from_bytes(data[8:10], "big"), data[10:12].hex()
(38, 38, '0103')
"""

from __future__ import annotations

import struct
from typing import Any, Sequence

from ...errors import TemplateFormatError
from ..template import FingerprintTemplate
from ._common import check_options, int_option
from ._fmr import MAGIC, VERSION, AngleCodec, RecordHeader, check_image_fields, encode_views, equipment_field, select_views

__all__ = ["NAME", "dumps", "loads_all", "DUMP_OPTIONS", "LOAD_OPTIONS"]

NAME = "ansi378"
SHORT_HEADER_BYTES = 26
LONG_HEADER_BYTES = 30
MAX_SHORT_LENGTH = 0xFFFF
ANGLE = AngleCodec("ANSI INCITS 378-2004", 180)
#: IBIA CBEFF organization code meaning "vendor unknown" (FingerprintIO ``IbiaOrganizations.UNKNOWN``).
VENDOR_UNKNOWN = 0x0103
DUMP_OPTIONS = ("certification", "device_type", "product_owner", "product_type")
LOAD_OPTIONS = ("view",)


def dumps(templates: Sequence[FingerprintTemplate], **options: Any) -> bytes:
    """Encode one record holding one finger view per template."""
    check_options(options, DUMP_OPTIONS, f"dumps(format={NAME!r})")
    equipment = equipment_field(options)
    # The standard requires a non-zero owner; 0 would make the record non-conformant.
    owner = int_option(options.get("product_owner", VENDOR_UNKNOWN), "product_owner", 1, 0xFFFF)
    product_type = int_option(options.get("product_type", 0), "product_type", 0, 0xFFFF)
    width, height, ppcm, views = encode_views(templates, ANGLE, NAME)
    body = b"".join(views)
    rest = struct.pack(">HHHHHHHBB", owner, product_type, equipment, width, height, ppcm, ppcm, len(views), 0)
    if SHORT_HEADER_BYTES + len(body) <= MAX_SHORT_LENGTH:
        length_field = struct.pack(">H", SHORT_HEADER_BYTES + len(body))
    else:
        length_field = struct.pack(">HI", 0, LONG_HEADER_BYTES + len(body))
    return MAGIC + VERSION + length_field + rest + body


def _read_header(data: bytes) -> RecordHeader:
    if len(data) < SHORT_HEADER_BYTES:
        raise TemplateFormatError(
            f"{NAME} record is {len(data)} bytes, shorter than its {SHORT_HEADER_BYTES}-byte header"
        )
    if data[:4] != MAGIC:
        raise TemplateFormatError(f"not a finger minutiae record: starts with {data[:4]!r}, expected {MAGIC!r}")
    if data[4:8] != VERSION:
        raise TemplateFormatError(
            f"{NAME} record version {data[4:8]!r} is not supported; this reader knows {VERSION!r} (2004 edition)"
        )
    (short_length,) = struct.unpack_from(">H", data, 8)
    if short_length:
        total, offset = short_length, 10
    else:
        if len(data) < LONG_HEADER_BYTES:
            raise TemplateFormatError(
                f"{NAME} record uses the 6-byte length field but is only {len(data)} bytes, shorter than its "
                f"{LONG_HEADER_BYTES}-byte header"
            )
        (total,) = struct.unpack_from(">I", data, 10)
        offset = 14
    if total != len(data):
        (iso_length,) = struct.unpack_from(">I", data, 8)
        hint = (
            "; bytes 8..11 hold the data size, so it looks like an ISO/IEC 19794-2 record: use format='iso19794-2'"
            if iso_length == len(data)
            else ""
        )
        raise TemplateFormatError(f"{NAME} length field says {total} bytes but {len(data)} were given{hint}")
    _owner, _type, _equipment, width, height, x_ppcm, y_ppcm, view_count, _reserved = struct.unpack_from(
        ">HHHHHHHBB", data, offset
    )
    dpi = check_image_fields(width, height, x_ppcm, y_ppcm, NAME)
    return RecordHeader(width, height, dpi, view_count, offset + 16)


def loads_all(data: bytes, **options: Any) -> list[FingerprintTemplate]:
    """Decode a record; ``view=i`` returns only the i-th finger view (counted from 0, in record order)."""
    check_options(options, LOAD_OPTIONS, f"loads(format={NAME!r})")
    return select_views(data, _read_header, ANGLE, NAME, options.get("view"))
