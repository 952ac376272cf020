"""The library's own lossless, versioned template format ("ektp").

Version 1, all integers and floats little-endian, no padding:

====== ===== ====================================================================
offset bytes field
====== ===== ====================================================================
0      6     magic ``b"EKTPFT"``
6      1     format version (1)
7      1     reserved, 0
8      4     total record length in bytes, CRC included (= 28 + 17 K)
12     2     width (pixels)
14     2     height (pixels)
16     2     resolution (dpi)
18     1     quality 0..100
19     1     finger position 0..10
20     1     impression type 0..15
21     1     reserved, 0
22     2     minutia count K (0..255)
24     17 K  per minutia: row f32, col f32, direction f32 (radians), reliability f32,
             kind u8 -- the bytes of :data:`MINUTIA_DTYPE` in little-endian order
24+17K 4     CRC-32 (zlib/ISO-HDLC polynomial) of bytes 0 .. 23+17K
====== ===== ====================================================================

Float32 values are stored bit for bit, so ``loads(dumps(t)) == t`` exactly.  A reader checks,
in this order: bytes-like input, minimum length, magic, version (an unknown version raises and
names the versions this reader knows), then the version's own checks (length field, count,
CRC, reserved bytes, ranges).  ``_READERS`` maps every version ever written to its reader, so a
gallery written today stays readable after the format moves on: add a reader, never edit one.

Examples
--------
>>> from ektp_biometrics.fingerprint import FingerprintTemplate, make_minutiae
>>> t = FingerprintTemplate(300, 400, make_minutiae([10.25], [20.5], [1.0], reliability=0.3))
>>> data = dumps([t])
>>> data[:7], len(data)
(b'EKTPFT\\x01', 45)
>>> loads_all(data)[0] == t
True
"""

from __future__ import annotations

import struct
import zlib
from typing import Any, Callable, Sequence

import numpy as np

from ...errors import TemplateFormatError
from ..template import MAX_MINUTIAE, MINUTIA_DTYPE, FingerprintTemplate
from ._common import check_options, check_template

__all__ = ["NAME", "MAGIC", "CURRENT_VERSION", "KNOWN_VERSIONS", "dumps", "loads_all"]

NAME = "ektp"
MAGIC = b"EKTPFT"
CURRENT_VERSION = 1
DUMP_OPTIONS: tuple[str, ...] = ()
LOAD_OPTIONS: tuple[str, ...] = ()

_V1_HEADER = struct.Struct("<6sBBIHHHBBBBH")
_V1_MINUTIA = np.dtype([("row", "<f4"), ("col", "<f4"), ("direction", "<f4"), ("reliability", "<f4"), ("kind", "u1")])
_CRC = struct.Struct("<I")


def _crc32(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def dumps(templates: Sequence[FingerprintTemplate], **options: Any) -> bytes:
    """Write one template in the current version (1)."""
    check_options(options, DUMP_OPTIONS, f"dumps(format={NAME!r})")
    if len(templates) != 1:
        raise TemplateFormatError(f"an {NAME} record holds exactly one template; got {len(templates)}")
    t = check_template(templates[0])
    minutiae = np.empty(len(t), dtype=_V1_MINUTIA)
    for name in _V1_MINUTIA.names:
        minutiae[name] = t.minutiae[name]
    total = _V1_HEADER.size + minutiae.nbytes + _CRC.size
    header = _V1_HEADER.pack(
        MAGIC, 1, 0, total, t.width, t.height, t.resolution, t.quality, t.finger_position, t.impression_type, 0, len(t)
    )
    body = header + minutiae.tobytes()
    return body + _CRC.pack(_crc32(body))


def _read_v1(data: bytes) -> FingerprintTemplate:
    if len(data) < _V1_HEADER.size + _CRC.size:
        raise TemplateFormatError(
            f"{NAME} v1 record is {len(data)} bytes, shorter than its {_V1_HEADER.size + _CRC.size}-byte frame"
        )
    (_magic, _version, reserved_a, total, width, height, resolution, quality, position, impression, reserved_b, count) = (
        _V1_HEADER.unpack_from(data)
    )
    if total != len(data):
        raise TemplateFormatError(f"{NAME} length field says {total} bytes but {len(data)} were given (truncated?)")
    if count > MAX_MINUTIAE:
        raise TemplateFormatError(f"{NAME} record declares {count} minutiae; at most {MAX_MINUTIAE} are allowed")
    expected = _V1_HEADER.size + count * _V1_MINUTIA.itemsize + _CRC.size
    if expected != len(data):
        raise TemplateFormatError(f"{NAME} record declares {count} minutiae, which need {expected} bytes, not {len(data)}")
    (stored_crc,) = _CRC.unpack_from(data, len(data) - _CRC.size)
    if stored_crc != _crc32(data[: -_CRC.size]):
        raise TemplateFormatError(f"{NAME} record is corrupt: its CRC-32 does not match its contents")
    if reserved_a or reserved_b:
        raise TemplateFormatError(f"{NAME} v1 record has non-zero reserved bytes")
    raw = np.frombuffer(data, dtype=_V1_MINUTIA, count=count, offset=_V1_HEADER.size)
    minutiae = np.empty(count, dtype=MINUTIA_DTYPE)
    for name in _V1_MINUTIA.names:
        minutiae[name] = raw[name]
    # FingerprintTemplate checks every range (size, resolution, codes, NaN, coordinates, directions).
    return FingerprintTemplate(
        width=width,
        height=height,
        minutiae=minutiae,
        resolution=resolution,
        quality=quality,
        finger_position=position,
        impression_type=impression,
    )


#: Every version ever written, with its reader.  Never remove an entry.
_READERS: dict[int, Callable[[bytes], FingerprintTemplate]] = {1: _read_v1}
KNOWN_VERSIONS = tuple(sorted(_READERS))


def loads_all(data: bytes, **options: Any) -> list[FingerprintTemplate]:
    """Read a record of any known version; returns a one-element list."""
    check_options(options, LOAD_OPTIONS, f"loads(format={NAME!r})")
    if len(data) < len(MAGIC) + 1:
        raise TemplateFormatError(f"{NAME} record is {len(data)} bytes, too short to hold its magic and version")
    if data[: len(MAGIC)] != MAGIC:
        raise TemplateFormatError(f"not an {NAME} record: starts with {data[: len(MAGIC)]!r}, expected {MAGIC!r}")
    version = data[len(MAGIC)]
    reader = _READERS.get(version)
    if reader is None:
        known = ", ".join(str(v) for v in KNOWN_VERSIONS)
        raise TemplateFormatError(
            f"{NAME} record is format version {version}; this reader knows version(s) {known}. Upgrade "
            "ektp_biometrics to read it."
        )
    return [reader(data)]
