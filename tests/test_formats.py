"""Template serialization: round trips, golden blobs, byte layout, hostile input.

Regenerate the golden blobs (only when a format change is intended and reviewed) with
``python tests/test_formats.py --regenerate``.
"""

from __future__ import annotations

import doctest
import importlib
import math
import re
import struct
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ektp_biometrics.errors import ConfigurationError, TemplateFormatError
from ektp_biometrics.fingerprint.formats import (
    canonical_format,
    dumps,
    dumps_many,
    known_formats,
    loads,
    loads_all,
)
from ektp_biometrics.fingerprint.formats import ektp as ektp_format
from ektp_biometrics.fingerprint.template import FingerprintTemplate, MinutiaKind, make_minutiae

GOLDEN = Path(__file__).parent / "golden"
BINARY_FORMATS = ("iso19794-2", "ansi378", "ektp")
ALL_FORMATS = ("iso19794-2", "ansi378", "xyt", "xyt-nist", "ektp")
XYT_FORMATS = ("xyt", "xyt-nist")
#: Most CPU time one parse of a hostile record may take (a parse takes ~0.1 ms; CPU time, not
#: wall time, so other processes on the shared machine cannot make the bound flaky).
MAX_SECONDS_PER_PARSE = 0.25

# Golden files: name -> format.  The ektp blob is version 1 and must stay readable forever.
GOLDEN_FILES = {
    "reference.iso19794-2.fmr": "iso19794-2",
    "reference.ansi378.fmr": "ansi378",
    "reference.m1.xyt": "xyt",
    "reference.nist.xyt": "xyt-nist",
    "reference.v1.ektp": "ektp",
}


def reference_template() -> FingerprintTemplate:
    """A fixed, hand-built template: 12 minutiae, endings and bifurcations, awkward values included."""
    rows = [100.0, 20.25, 0.0, 399.0, 250.5, 123.49, 310.0, 77.0, 45.5, 200.0, 5.0, 360.75]
    cols = [120.0, 33.75, 299.0, 0.0, 150.5, 222.0, 11.0, 289.49, 180.0, 60.0, 298.5, 100.25]
    degrees = [90.0, 0.0, 359.9, 180.0, 45.0, 271.4, 1.0, 123.0, 200.7, 315.0, 67.5, 135.0]
    kinds = [1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 0, 1]
    reliability = [0.8, 0.0, 1.0, 0.555, 0.5, 0.125, 0.99, 0.33, 0.005, 0.75, 0.25, 0.6]
    return FingerprintTemplate(
        width=300,
        height=400,
        minutiae=make_minutiae(rows, cols, np.radians(degrees), kind=kinds, reliability=reliability),
        resolution=500,
        quality=73,
        finger_position=2,
        impression_type=0,
    )


def xyt_kwargs(template: FingerprintTemplate) -> dict:
    return {
        "width": template.width,
        "height": template.height,
        "resolution": template.resolution,
        "quality": template.quality,
        "finger_position": template.finger_position,
        "impression_type": template.impression_type,
    }


def load(data: bytes, fmt: str, template: FingerprintTemplate | None = None, **kwargs) -> FingerprintTemplate:
    if fmt in XYT_FORMATS:
        kwargs = {**xyt_kwargs(reference_template() if template is None else template), **kwargs}
    return loads(data, fmt, **kwargs)


# -- strategies ------------------------------------------------------------------------------


@st.composite
def templates(draw, max_minutiae: int = 40) -> FingerprintTemplate:
    width = draw(st.integers(1, 2000))
    height = draw(st.integers(1, 2000))
    count = draw(st.integers(0, max_minutiae))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    rows = rng.uniform(0, height - 1, count)
    cols = rng.uniform(0, width - 1, count)
    # Sprinkle exact edges and exact halves, where rounding mistakes live.
    if count:
        edge = rng.random(count) < 0.2
        rows[edge] = rng.choice([0.0, height - 1.0, np.floor(rows[0]) + 0.5 if height > 1 else 0.0], edge.sum())
        cols[edge] = rng.choice([0.0, width - 1.0, np.floor(cols[0]) + 0.5 if width > 1 else 0.0], edge.sum())
    rows = np.clip(rows, 0, height - 1)
    cols = np.clip(cols, 0, width - 1)
    directions = rng.uniform(0, 2 * np.pi, count)
    if count:
        directions[rng.random(count) < 0.1] = np.nextafter(np.float32(2 * np.pi), np.float32(0))
    reliability = rng.choice([0.0, 1.0, 0.005, 0.995, 0.5], count) if draw(st.booleans()) else rng.random(count)
    return FingerprintTemplate(
        width=width,
        height=height,
        minutiae=make_minutiae(rows, cols, directions, kind=rng.integers(0, 3, count), reliability=reliability),
        resolution=draw(st.integers(50, 5000)),
        quality=draw(st.integers(0, 100)),
        finger_position=draw(st.integers(0, 10)),
        impression_type=draw(st.integers(0, 15)),
    )


def angular_error_degrees(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    diff = np.abs(np.degrees(a.astype(np.float64)) - np.degrees(b.astype(np.float64))) % 360.0
    return np.minimum(diff, 360.0 - diff)


#: Largest angle error each format allows, degrees (half a code step, plus float32 slack).
ANGLE_TOLERANCE = {
    "iso19794-2": 360 / 256 / 2 + 1e-3,
    "ansi378": 1.0 + 1e-3,
    "xyt": 1.5 + 1e-3,  # whole degrees (half-down), then integer-divided by 2, as mindtct -m1 does
    "xyt-nist": 0.5 + 1e-3,
}


def assert_within_precision(original: FingerprintTemplate, back: FingerprintTemplate, fmt: str) -> None:
    assert (back.width, back.height) == (original.width, original.height)
    assert (back.quality, back.finger_position, back.impression_type) == (
        original.quality,
        original.finger_position,
        original.impression_type,
    )
    if fmt in ("iso19794-2", "ansi378"):
        expected_dpi = min(math.floor(math.floor(original.resolution / 2.54 + 0.5) * 2.54 + 0.5), 5000)
        assert back.resolution == expected_dpi
        assert abs(back.resolution - original.resolution) <= 1
        np.testing.assert_array_equal(back.kind, original.kind)
    else:
        assert back.resolution == original.resolution  # given back by the caller's kwargs
        assert (back.kind == MinutiaKind.OTHER).all()
    assert len(back) == len(original)
    assert np.all(np.abs(back.x - original.x) <= 0.5)
    assert np.all(np.abs(back.y - original.y) <= 0.5)
    assert np.all(angular_error_degrees(back.direction, original.direction) <= ANGLE_TOLERANCE[fmt])
    assert np.all(np.abs(back.reliability - original.reliability) <= 0.005 + 1e-6)


# -- round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["iso19794-2", "ansi378", "xyt", "xyt-nist"])
@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(template=templates())
def test_round_trip_within_format_precision(fmt: str, template: FingerprintTemplate) -> None:
    data = dumps(template, fmt)
    back = load(data, fmt, template)
    assert_within_precision(template, back, fmt)
    # Quantized values are fixed points: writing what was read gives the same bytes.
    assert dumps(back, fmt) == data


@settings(max_examples=80, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(template=templates(max_minutiae=255))
def test_ektp_round_trip_is_bit_exact(template: FingerprintTemplate) -> None:
    data = dumps(template, "ektp")
    back = loads(data, "ektp")
    assert back == template
    assert back.minutiae.tobytes() == template.minutiae.tobytes()
    assert len(data) == 28 + 17 * len(template)


def test_round_trip_at_the_largest_sizes() -> None:
    rng = np.random.default_rng(7)
    side = 16383
    template = FingerprintTemplate(
        side,
        side,
        make_minutiae(
            np.r_[side - 1.0, rng.uniform(0, side - 1, 254)],
            np.r_[side - 1.0, rng.uniform(0, side - 1, 254)],
            rng.uniform(0, 2 * np.pi, 255),
            kind=rng.integers(0, 3, 255),
            reliability=rng.random(255),
        ),
        resolution=5000,
    )
    for fmt in ALL_FORMATS:
        back = load(dumps(template, fmt), fmt, template)
        if fmt == "ektp":
            assert back == template
        else:
            assert_within_precision(template, back, fmt)


def test_resolution_conversion_documented_values() -> None:
    t = reference_template()
    for dpi, ppcm, back in ((500, 197, 500), (1000, 394, 1001), (569, 224, 569), (250, 98, 249)):
        data = dumps(FingerprintTemplate(t.width, t.height, t.minutiae, resolution=dpi), "iso")
        assert struct.unpack_from(">HH", data, 18) == (ppcm, ppcm)
        assert loads(data, "iso").resolution == back


def test_reliability_rounds_half_up_and_quality_maps_back() -> None:
    # 0.125 * 100 = 12.5 -> 13; float32 0.005 is 0.00499999989, snapped to 0.5 -> 1 (half up).
    t = FingerprintTemplate(10, 10, make_minutiae([1, 2, 3], [1, 2, 3], [0, 0, 0], reliability=[0.125, 0.005, 0.0]))
    data = dumps(t, "iso")
    qualities = [data[28 + 6 * i + 5] for i in range(3)]
    assert qualities == [13, 1, 0]
    assert loads(data, "iso").reliability.tolist() == pytest.approx([0.13, 0.01, 0.0])


# -- conventions -----------------------------------------------------------------------------


def test_angle_units_and_direction_convention() -> None:
    # Our direction 90 degrees (pointing up the image) is ISO code 64 and ANSI code 45:
    # both standards measure counter-clockwise from +x with the same ending/bifurcation sense.
    t = FingerprintTemplate(
        50, 50, make_minutiae([10, 10], [5, 5], [np.pi / 2, np.pi / 2], kind=[MinutiaKind.ENDING, MinutiaKind.BIFURCATION])
    )
    iso = dumps(t, "iso")
    ansi = dumps(t, "ansi")
    assert [iso[28 + 4], iso[34 + 4]] == [64, 64]
    assert [ansi[30 + 4], ansi[36 + 4]] == [45, 45]
    # NIST internal representation turns both kinds by 180 degrees and flips y.
    assert dumps(t, "xyt-nist") == b"5 40 270 100\n5 40 270 100\n"
    assert dumps(t, "xyt") == b"5 10 45 100\n5 10 45 100\n"


def _nbis_sround(value: float) -> int:
    """NBIS ``sround``: round halves away from zero."""
    return int(value - 0.5) if value < 0 else int(value + 0.5)


def _nbis_m1(x: int, y: int, lfs_direction: int) -> tuple[int, int, int]:
    """Reference: NBIS 5.0.0 xytreps.c ``lfs2m1_minutia_XYT`` for NUM_DIRECTIONS = 16."""
    degrees_per_unit = np.float32(180) / np.float32(16)
    t = int(math.fmod(90 - _nbis_sround(float(np.float32(lfs_direction) * degrees_per_unit)), 360))
    if t < 0:
        t += 360
    return x, y, t // 2


def _nbis_nist(x: int, y: int, lfs_direction: int, height: int) -> tuple[int, int, int]:
    """Reference: NBIS 5.0.0 xytreps.c ``lfs2nist_minutia_XYT``."""
    degrees_per_unit = np.float32(180) / np.float32(16)
    t = int(math.fmod(270 - _nbis_sround(float(np.float32(lfs_direction) * degrees_per_unit)), 360))
    if t < 0:
        t += 360
    return x, height - y, t


def test_xyt_matches_mindtct_arithmetic_for_every_lfs_direction() -> None:
    # LFS directions are 11.25-degree steps clockwise from north; ours = 90 - that (counter-
    # clockwise from east, the M1 sense).  Half-degree cases (e.g. 22.5) test the rounding.
    lfs = np.arange(32)
    xs = (lfs * 7) % 300
    ys = (lfs * 13) % 400
    ours = np.radians(90.0 - lfs * 11.25)
    reliability = np.linspace(0, 1, 32)
    t = FingerprintTemplate(300, 400, make_minutiae(ys, xs, ours, reliability=reliability))
    quality = [_nbis_sround(float(r) * 100.0) for r in t.reliability]
    m1 = [_nbis_m1(int(x), int(y), int(d)) + (q,) for x, y, d, q in zip(xs, ys, lfs, quality)]
    nist = [_nbis_nist(int(x), int(y), int(d), 400) + (q,) for x, y, d, q in zip(xs, ys, lfs, quality)]
    assert dumps(t, "xyt") == "".join("%d %d %d %d\n" % row for row in m1).encode()
    assert dumps(t, "xyt-nist") == "".join("%d %d %d %d\n" % row for row in nist).encode()


def test_xyt_reading_options_and_three_columns() -> None:
    back = loads(b"10 20 45\n\n11 21 0\n", "xyt", width=30, height=40, kind=2, resolution=569, finger_position=3)
    assert back.x.tolist() == [10, 11] and back.y.tolist() == [20, 21]
    assert back.kind.tolist() == [2, 2] and back.reliability.tolist() == [0, 0]
    assert np.degrees(back.direction).tolist() == pytest.approx([90.0, 0.0])
    assert (back.resolution, back.finger_position) == (569, 3)
    assert len(loads(b"", "xyt-nist", width=5, height=5)) == 0


def test_xyt_requires_image_size() -> None:
    with pytest.raises(ConfigurationError, match="width= and height="):
        loads(b"1 2 3 4\n", "xyt")
    with pytest.raises(TemplateFormatError, match="outside the 30x40 image"):
        loads(b"30 2 3 4\n", "xyt", width=30, height=40)
    with pytest.raises(TemplateFormatError, match="outside"):
        loads(b"3 0 3 4\n", "xyt-nist", width=30, height=40)  # NIST y runs 1..height


# -- names, options, multi-view ----------------------------------------------------------------


def test_format_names_and_aliases() -> None:
    assert canonical_format("ISO") == canonical_format("Iso19794-2") == canonical_format("iso19794_2") == "iso19794-2"
    assert canonical_format("ANSI") == canonical_format("ansi378") == "ansi378"
    assert canonical_format("XYT-M1") == "xyt"
    t = reference_template()
    assert dumps(t, "ANSI") == dumps(t, "ansi378")
    with pytest.raises(ConfigurationError) as info:
        dumps(t, "wsq")
    for name in known_formats():
        assert name in str(info.value)
    with pytest.raises(ConfigurationError, match="accepted options"):
        dumps(t, "iso", colour="blue")
    with pytest.raises(ConfigurationError, match="FingerprintTemplate"):
        dumps("not a template", "iso")  # type: ignore[arg-type]
    assert t.to_bytes("ektp") == dumps(t, "ektp")
    assert FingerprintTemplate.from_bytes(t.to_bytes(), "iso") == loads(dumps(t, "iso"), "iso")


def test_header_options_are_written() -> None:
    t = reference_template()
    iso = dumps(t, "iso", certification=8, device_type=0x123)
    assert iso[12:14] == bytes.fromhex("8123")
    ansi = dumps(t, "ansi", certification=8, device_type=0x123, product_owner=0x000F, product_type=7)
    assert ansi[10:16] == bytes.fromhex("000f 0007 8123")
    with pytest.raises(ConfigurationError):
        dumps(t, "ansi", product_owner=0)  # the standard requires a registered, non-zero owner


def test_multi_view_records() -> None:
    t = reference_template()
    other = FingerprintTemplate(t.width, t.height, t.minutiae[:3], quality=10, finger_position=7, impression_type=1)
    same_finger = FingerprintTemplate(t.width, t.height, t.minutiae[5:], quality=20, finger_position=2)
    for fmt in ("iso19794-2", "ansi378"):
        data = dumps_many([t, other, same_finger], fmt)
        views = loads_all(data, fmt)
        assert [len(v) for v in views] == [12, 3, 7]
        assert [(v.finger_position, v.quality, v.impression_type) for v in views] == [(2, 73, 0), (7, 10, 1), (2, 20, 0)]
        assert loads(data, fmt) == views[0]
        assert loads(data, fmt, view=2) == views[2]
        with pytest.raises(TemplateFormatError, match="3 finger view"):
            loads(data, fmt, view=3)
    # View numbers count per finger position: 0 for finger 2, 0 for finger 7, then 1 for finger 2.
    iso = dumps_many([t, other, same_finger], "iso")
    first = 24
    second = first + 4 + 6 * 12 + 2
    third = second + 4 + 6 * 3 + 2
    assert [iso[first + 1] >> 4, iso[second + 1] >> 4, iso[third + 1] >> 4] == [0, 0, 1]


def test_multi_view_limits() -> None:
    t = reference_template()
    with pytest.raises(TemplateFormatError, match="single image size"):
        dumps_many([t, FingerprintTemplate(100, 100, t.minutiae[:0])], "iso")
    with pytest.raises(TemplateFormatError, match="4 bits"):
        dumps_many([t] * 17, "iso")
    with pytest.raises(TemplateFormatError, match="255 finger views"):
        dumps_many([t] * 256, "ansi")
    with pytest.raises(ConfigurationError, match="holds one template"):
        dumps_many([t, t], "ektp")
    with pytest.raises(TemplateFormatError, match="at least one"):
        dumps_many([], "ansi")


def test_ansi_long_length_field() -> None:
    rng = np.random.default_rng(3)
    big = [
        FingerprintTemplate(
            500,
            500,
            make_minutiae(rng.uniform(0, 499, 255), rng.uniform(0, 499, 255), rng.uniform(0, 6.28, 255), kind=1),
            finger_position=i % 11,
        )
        for i in range(44)
    ]
    data = dumps_many(big, "ansi")
    assert len(data) > 0xFFFF
    assert data[8:10] == b"\x00\x00" and struct.unpack_from(">I", data, 10)[0] == len(data)
    assert data[14:16] == struct.pack(">H", 0x0103)  # owner moved 4 bytes on
    views = loads_all(data, "ansi")
    assert len(views) == 44 and all(len(v) == 255 for v in views)
    iso = dumps_many(big, "iso")
    assert struct.unpack_from(">I", iso, 8)[0] == len(iso)


# -- golden blobs ----------------------------------------------------------------------------


@pytest.mark.parametrize("filename", sorted(GOLDEN_FILES))
def test_golden_blob_is_reproduced_byte_for_byte(filename: str) -> None:
    fmt = GOLDEN_FILES[filename]
    committed = (GOLDEN / filename).read_bytes()
    assert dumps(reference_template(), fmt) == committed
    back = load(committed, fmt)
    if fmt == "ektp":
        assert back == reference_template()
    else:
        assert_within_precision(reference_template(), back, fmt)


def test_iso_golden_header_layout() -> None:
    data = (GOLDEN / "reference.iso19794-2.fmr").read_bytes()
    assert data[0:4] == b"FMR\x00"  # format identifier
    assert data[4:8] == b" 20\x00"  # version 2.0
    assert int.from_bytes(data[8:12], "big") == len(data) == 24 + 4 + 12 * 6 + 2  # total length
    assert data[12:14] == b"\x00\x00"  # capture equipment: no certification, device type 0
    assert int.from_bytes(data[14:16], "big") == 300  # width
    assert int.from_bytes(data[16:18], "big") == 400  # height
    assert data[18:20] == data[20:22] == b"\x00\xc5"  # 197 px/cm = 500 dpi, x and y
    assert data[22] == 1 and data[23] == 0  # one finger view; reserved
    assert data[24:28] == bytes([2, 0x00, 73, 12])  # finger 2, view 0 / live plain, quality 73, 12 minutiae
    # Minutia 0: ending (01) at x=120 -> 0x4078; y=100 -> 0x0064; 90 deg -> 64; reliability 0.8 -> 80.
    assert data[28:34] == bytes.fromhex("4078 0064 40 50")
    # Minutia 1: bifurcation (10) at x=33.75 -> 34 -> 0x8022; y=20.25 -> 20; 0 deg; quality 0.
    assert data[34:40] == bytes.fromhex("8022 0014 00 00")
    # Minutia 2: 359.9 deg -> 255.93 -> 256 -> wraps to 0; x=299 (width-1); y=0; quality 100.
    assert data[40:46] == bytes.fromhex("412b 0000 00 64")
    assert data[-2:] == b"\x00\x00"  # no extended data


def test_ansi_golden_header_layout() -> None:
    data = (GOLDEN / "reference.ansi378.fmr").read_bytes()
    assert data[0:8] == b"FMR\x00 20\x00"
    assert int.from_bytes(data[8:10], "big") == len(data) == 26 + 4 + 12 * 6 + 2  # 2-byte length
    assert data[10:12] == b"\x01\x03" and data[12:14] == b"\x00\x00"  # CBEFF owner "vendor unknown", type 0
    assert data[14:16] == b"\x00\x00"  # equipment
    assert struct.unpack_from(">HHHHBB", data, 16) == (300, 400, 197, 197, 1, 0)
    assert data[26:30] == bytes([2, 0x00, 73, 12])
    assert data[30:36] == bytes.fromhex("4078 0064 2d 50")  # 90 deg -> 45 two-degree units


def test_ektp_golden_layout() -> None:
    data = (GOLDEN / "reference.v1.ektp").read_bytes()
    assert data[:7] == b"EKTPFT\x01"
    assert struct.unpack_from("<I", data, 8)[0] == len(data) == 24 + 17 * 12 + 4
    assert struct.unpack_from("<HHHBBBBH", data, 12) == (300, 400, 500, 73, 2, 0, 0, 12)
    row, col, direction, reliability, kind = struct.unpack_from("<ffffB", data, 24)
    assert (row, col, kind) == (100.0, 120.0, 1)
    assert direction == np.float32(np.pi / 2) and reliability == np.float32(0.8)
    assert struct.unpack_from("<I", data, len(data) - 4)[0] == zlib.crc32(data[:-4])


def test_golden_xyt_text() -> None:
    lines = (GOLDEN / "reference.m1.xyt").read_bytes().decode("ascii").splitlines()
    assert lines[0] == "120 100 45 80"  # 90 deg -> 45 (2-degree units), quality 80
    nist = (GOLDEN / "reference.nist.xyt").read_bytes().decode("ascii").splitlines()
    assert nist[0] == "120 300 270 80"  # y = 400 - 100, 90 + 180 degrees


# -- hostile input ---------------------------------------------------------------------------


def _parse_outcome(data: bytes, fmt: str) -> FingerprintTemplate | None:
    """Parse; TemplateFormatError -> None; anything else propagates (and fails the test)."""
    start = time.process_time()
    try:
        return load(data, fmt)
    except TemplateFormatError:
        return None
    finally:
        assert time.process_time() - start < MAX_SECONDS_PER_PARSE


@pytest.mark.parametrize("fmt", ALL_FORMATS)
@settings(max_examples=150, deadline=None, derandomize=True)
@given(data=st.binary(max_size=300))
def test_random_bytes_raise_only_template_format_error(fmt: str, data: bytes) -> None:
    _parse_outcome(data, fmt)


@pytest.mark.parametrize("fmt", ["iso19794-2", "ansi378", "ektp"])
@settings(max_examples=150, deadline=None, derandomize=True)
@given(tail=st.binary(max_size=200))
def test_random_bytes_behind_a_valid_magic(fmt: str, tail: bytes) -> None:
    prefix = b"EKTPFT\x01" if fmt == "ektp" else b"FMR\x00 20\x00"
    _parse_outcome(prefix + tail, fmt)


@pytest.mark.parametrize("filename", sorted(GOLDEN_FILES))
def test_every_truncation_is_rejected(filename: str) -> None:
    fmt = GOLDEN_FILES[filename]
    data = (GOLDEN / filename).read_bytes()
    for length in range(len(data)):
        outcome = _parse_outcome(data[:length], fmt)
        if fmt in BINARY_FORMATS:
            assert outcome is None, f"{fmt} accepted a record truncated to {length} bytes"


@pytest.mark.parametrize("filename", sorted(GOLDEN_FILES))
def test_single_byte_mutations(filename: str) -> None:
    fmt = GOLDEN_FILES[filename]
    data = (GOLDEN / filename).read_bytes()
    rng = np.random.default_rng(11)
    for position in range(len(data)):
        for value in {0x00, 0xFF, data[position] ^ 0x01, int(rng.integers(0, 256))} - {data[position]}:
            mutated = bytearray(data)
            mutated[position] = value
            outcome = _parse_outcome(bytes(mutated), fmt)
            if fmt == "ektp":
                # CRC-32 detects every single-byte error.
                assert outcome is None, f"ektp accepted a change of byte {position}"


@settings(max_examples=100, deadline=None, derandomize=True)
@given(positions=st.lists(st.integers(0, 10_000), min_size=1, max_size=6), values=st.binary(min_size=6, max_size=6))
def test_random_multi_byte_mutations(positions: list[int], values: bytes) -> None:
    for filename, fmt in GOLDEN_FILES.items():
        mutated = bytearray((GOLDEN / filename).read_bytes())
        for position, value in zip(positions, values):
            mutated[position % len(mutated)] = value
        _parse_outcome(bytes(mutated), fmt)


def _iso(width: int = 300, height: int = 400, views: int = 1, length: int | None = None, body: bytes = b"") -> bytes:
    rest = struct.pack(">HHHHHBB", 0, width, height, 197, 197, views, 0) + body
    total = 12 + len(rest) if length is None else length
    return b"FMR\x00 20\x00" + struct.pack(">I", total) + rest


def test_specific_hostile_records() -> None:
    good = (GOLDEN / "reference.iso19794-2.fmr").read_bytes()
    cases = {
        "bad magic": b"FMX\x00" + good[4:],
        "bad version": good[:4] + b" 30\x00" + good[8:],
        "length too big": good[:8] + struct.pack(">I", len(good) + 1) + good[12:],
        "length huge": good[:8] + b"\xff\xff\xff\xff" + good[12:],
        "length too small": good[:8] + struct.pack(">I", 24) + good[12:],
        "views beyond data": _iso(views=255),
        "minutiae beyond data": _iso(body=bytes([0, 0, 0, 255]) + b"\x00\x00"),
        "extended data beyond": _iso(body=bytes([0, 0, 0, 0]) + b"\xff\xff"),
        "x outside width": _iso(width=10, body=bytes([0, 0, 0, 1]) + bytes.fromhex("400a 0001 00 00") + b"\x00\x00"),
        "y outside height": _iso(height=10, body=bytes([0, 0, 0, 1]) + bytes.fromhex("4001 000a 00 00") + b"\x00\x00"),
        "reserved type": _iso(body=bytes([0, 0, 0, 1]) + bytes.fromhex("c001 0001 00 00") + b"\x00\x00"),
        "reserved y bits": _iso(body=bytes([0, 0, 0, 1]) + bytes.fromhex("4001 4001 00 00") + b"\x00\x00"),
        "minutia quality": _iso(body=bytes([0, 0, 0, 1]) + bytes.fromhex("4001 0001 00 65") + b"\x00\x00"),
        "finger position": _iso(body=bytes([11, 0, 0, 0]) + b"\x00\x00"),
        "finger quality": _iso(body=bytes([0, 0, 101, 0]) + b"\x00\x00"),
        "zero width": _iso(width=0),
        "too wide": _iso(width=20000),
        "anisotropic": b"FMR\x00 20\x00" + struct.pack(">IHHHHHBB", 24, 0, 9, 9, 197, 200, 0, 0),
        "zero resolution": b"FMR\x00 20\x00" + struct.pack(">IHHHHHBB", 24, 0, 9, 9, 0, 0, 0, 0),
        "no views": _iso(views=0),
    }
    trailing = _iso(body=bytes([0, 0, 0, 0]) + b"\x00\x00\x00")  # one byte after the only view
    cases["trailing byte"] = trailing
    for what, data in cases.items():
        with pytest.raises(TemplateFormatError):
            start = time.process_time()
            try:
                loads(data, "iso")
            finally:
                assert time.process_time() - start < MAX_SECONDS_PER_PARSE, what
    # A well-formed record with zero views is valid; it simply has no view 0.
    assert loads_all(_iso(views=0), "iso") == []


def test_ansi_and_iso_are_told_apart_with_a_hint() -> None:
    t = reference_template()
    with pytest.raises(TemplateFormatError, match="ansi378"):
        loads(dumps(t, "ansi"), "iso")
    with pytest.raises(TemplateFormatError, match="iso19794-2"):
        loads(dumps(t, "iso"), "ansi")


def test_ansi_hostile_length_fields() -> None:
    good = (GOLDEN / "reference.ansi378.fmr").read_bytes()
    for data in (
        good[:8] + b"\x00\x00" + good[10:],  # long form announced, garbage length
        good[:8] + b"\x00\x00\xff\xff\xff\xff" + good[10:],
        good[:8] + b"\xff\xff" + good[10:],
        good[:8] + b"\x00\x00\x00\x00",
    ):
        with pytest.raises(TemplateFormatError, match="length|shorter"):
            loads(data, "ansi")


def test_ektp_versions_and_corruption() -> None:
    good = (GOLDEN / "reference.v1.ektp").read_bytes()
    future = good[:6] + b"\x02" + good[7:]
    with pytest.raises(TemplateFormatError, match=r"version 2; this reader knows version\(s\) 1"):
        loads(future, "ektp")
    assert ektp_format.KNOWN_VERSIONS == (1,)
    flipped = bytearray(good)
    flipped[30] ^= 0x10
    with pytest.raises(TemplateFormatError, match="CRC"):
        loads(bytes(flipped), "ektp")
    # A record whose CRC is right but whose contents are out of range is still refused.
    header = bytearray(good[:-4])
    header[12:14] = struct.pack("<H", 0)  # width 0
    with pytest.raises(TemplateFormatError, match="image size"):
        loads(bytes(header) + struct.pack("<I", zlib.crc32(bytes(header))), "ektp")
    nan = bytearray(good[:-4])
    nan[24:28] = struct.pack("<f", float("nan"))
    with pytest.raises(TemplateFormatError, match="NaN"):
        loads(bytes(nan) + struct.pack("<I", zlib.crc32(bytes(nan))), "ektp")
    many = bytearray(good[:-4])
    many[22:24] = struct.pack("<H", 60000)
    with pytest.raises(TemplateFormatError, match="60000 minutiae"):
        loads(bytes(many) + struct.pack("<I", zlib.crc32(bytes(many))), "ektp")


def test_xyt_hostile_text() -> None:
    for data in (
        b"1 2 3 4 5\n",
        b"1 2\n",
        b"a b c d\n",
        b"1 2 3 4\n1 2 3\n",
        b"1 2 180 4\n",
        b"1 2 3 101\n",
        b"-1 2 3 4\n",
        "1 2 3 4\u00a0\n".encode("utf-8"),
        b"1 2 3 4\n" * 256,
        b"9" * 100_000,
        b"1 2 3 99999999\n",
    ):
        with pytest.raises(TemplateFormatError):
            loads(data, "xyt", width=300, height=400)


@pytest.mark.parametrize("fmt", ALL_FORMATS)
@pytest.mark.parametrize("data", ["FMR", None, 42, [1, 2, 3], np.zeros(4, np.uint8)])
def test_non_bytes_input_is_refused(fmt: str, data: object) -> None:
    with pytest.raises(TemplateFormatError, match="must be bytes"):
        loads(data, fmt, width=10, height=10) if fmt in XYT_FORMATS else loads(data, fmt)  # type: ignore[arg-type]


def test_bytes_like_inputs_are_accepted() -> None:
    data = dumps(reference_template(), "iso")
    assert loads(bytearray(data), "iso") == loads(memoryview(data), "iso") == loads(data, "iso")


# -- documentation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "module",
    ["__init__", "_common", "iso19794_2", "ansi378", "xyt", "ektp"],
)
def test_docstring_examples_run(module: str) -> None:
    mod = importlib.import_module("ektp_biometrics.fingerprint.formats" + ("" if module == "__init__" else "." + module))
    failures, tried = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert failures == 0 and tried > 0


def test_docs_page_examples_run() -> None:
    """The python blocks of docs/templates.md run, in order, in one namespace."""
    page = Path(__file__).parents[1] / "docs" / "templates.md"
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) >= 5
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(page), "exec"), namespace)  # noqa: S102 - our own documentation


def _regenerate() -> None:
    GOLDEN.mkdir(exist_ok=True)
    for filename, fmt in GOLDEN_FILES.items():
        (GOLDEN / filename).write_bytes(dumps(reference_template(), fmt))
        print("wrote", GOLDEN / filename)


if __name__ == "__main__" and "--regenerate" in sys.argv:
    _regenerate()
