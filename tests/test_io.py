"""Image input: real data sets, format round trips, corrupt input, resolution, dtype policy."""

from __future__ import annotations

import doctest
import importlib
import io
import os
import struct
import subprocess
import sys
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
import wsq  # noqa: F401  (registers the WSQ writer with Pillow; part of the test extra)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from ektp_biometrics.errors import DependencyError, ImageError
from ektp_biometrics.io import (
    ReadParameters,
    as_image,
    read_image,
    read_image_with_info,
    to_working_resolution,
)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
NOT_IMAGES = {"SOURCE.md", "MD5SUMS", "README.orig", "README.md"}

# Folder -> ((width, height), number of images), from the shared data README.
EXPECTED_FOLDERS = {
    "fingerprints/fvc2000_db1_b": ((300, 300), 80),
    "fingerprints/fvc2000_db2_b": ((256, 364), 80),
    "fingerprints/fvc2000_db3_b": ((448, 478), 80),
    "fingerprints/fvc2000_db4_b": ((240, 320), 80),
    "fingerprints/fvc2002_db1_b": ((388, 374), 80),
    "fingerprints/fvc2002_db2_b": ((296, 560), 80),
    "fingerprints/fvc2002_db3_b": ((300, 300), 80),
    "fingerprints/fvc2002_db4_b": ((288, 384), 80),
    "fingerprints/fcj2020_p101-125": ((280, 360), 600),
    "fingerprints/socofing_subset": ((96, 103), 206 + 24),
    "faces/att_orl": ((92, 112), 400),
    "faces/yalefaces": ((320, 243), 164),
}


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name not in NOT_IMAGES)


def encode(image: np.ndarray, fmt: str, **options) -> bytes:
    """Write ``image`` with Pillow (its layout follows the array: (M, N, 2) is LA, (M, N, 4) RGBA)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, fmt, **options)
    return buffer.getvalue()


def noise(rng_seed: int, shape=(70, 90)) -> np.ndarray:
    return np.random.default_rng(rng_seed).integers(0, 256, size=shape, dtype=np.uint8)


def ridges(shape=(120, 100), period=9.0) -> np.ndarray:
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    return (127.5 + 100 * np.sin(2 * np.pi * (rows * 0.8 + cols * 0.6) / period)).round().astype(np.uint8)


# ---------------------------------------------------------------- real data


@pytest.mark.realdata
def test_every_data_folder_is_known(data_root, fingerprint_folders):
    on_disk = {f"fingerprints/{p.name}" for p in fingerprint_folders}
    on_disk |= {f"faces/{p.name}" for p in (data_root / "faces").iterdir() if p.is_dir()}
    assert on_disk == set(EXPECTED_FOLDERS)


@pytest.mark.realdata
@pytest.mark.parametrize("folder", sorted(EXPECTED_FOLDERS))
def test_every_real_image_reads_as_grey_uint8_of_the_documented_size(data_root, folder):
    (width, height), count = EXPECTED_FOLDERS[folder]
    files = image_files(data_root / folder)
    assert len(files) == count
    for path in files:
        image, info = read_image_with_info(path)
        assert image.shape == (height, width), path
        assert image.dtype == np.uint8 and image.flags.c_contiguous and image.flags.writeable
        assert (info.width, info.height) == (width, height)
        assert info.content in ("grey", "grey_as_colour")
        # An independent decoder (OpenCV's) must see the same grey levels. (Its IMREAD_GRAYSCALE
        # is off by one on some equal-channel BMP pixels, so compare with the raw channels.)
        reference = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)
        if reference.ndim == 3:
            assert (reference[..., :3] == reference[..., :1]).all(), path
            reference = reference[..., 0]
        np.testing.assert_array_equal(image, reference, err_msg=str(path))


@pytest.mark.realdata
def test_real_file_metadata(data_root):
    fvc = data_root / "fingerprints/fvc2002_db2_b/101_1.tif"
    _, info = read_image_with_info(fvc)
    # The FVC TIFFs carry no resolution tags; Pillow's (1, 1) default must not leak out.
    assert (info.format, info.stored_mode, info.content, info.dpi) == ("TIFF", "L", "grey", None)

    real = next((data_root / "fingerprints/socofing_subset/Real").iterdir())
    image, info = read_image_with_info(real)
    assert (info.format, info.stored_mode, info.content) == ("BMP", "RGBA", "grey_as_colour")
    assert info.dpi == 96.0 and info.scan_dpi is None  # a writer's default, not the sensor's
    raw = cv2.imdecode(np.fromfile(real, np.uint8), cv2.IMREAD_UNCHANGED)
    assert raw.shape == (103, 96, 4) and len(np.unique(raw[..., 3])) > 1  # alpha is noise, ignored
    np.testing.assert_array_equal(image, raw[..., 0])

    yale = data_root / "faces/yalefaces/subject01.happy"
    assert read_image_with_info(yale)[1].format == "GIF"
    rgb = read_image(yale, mode="rgb")
    assert rgb.shape == (243, 320, 3) and (rgb == read_image(yale)[..., np.newaxis]).all()
    assert read_image_with_info(data_root / "faces/att_orl/s1/1.pgm")[1].format == "PGM"


@pytest.mark.realdata
def test_fvc2002_db2_at_569_dpi_resamples_to_500(data_root):
    path = data_root / "fingerprints/fvc2002_db2_b/101_1.tif"
    image = read_image(path, dpi=569)
    assert image.shape == (round(560 * 500 / 569), round(296 * 500 / 569)) == (492, 260)
    assert abs(float(image.mean()) - float(read_image(path).mean())) < 1.0  # area averaging keeps the mean


@pytest.mark.realdata
def test_reading_is_thread_safe(data_root):
    files = image_files(data_root / "fingerprints/fvc2000_db1_b")[:24]
    expected = [read_image(p) for p in files]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(3):
            for got, want in zip(pool.map(read_image, files), expected):
                np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------- round trips


def _rgba(grey: np.ndarray, alpha_seed: int = 5) -> np.ndarray:
    alpha = noise(alpha_seed, grey.shape)
    return np.dstack([grey, grey, grey, alpha])


LOSSLESS_WRITERS = {
    "png": lambda g: encode(g, "PNG"),
    "png-rgb": lambda g: encode(np.dstack([g] * 3), "PNG"),
    "png-la": lambda g: encode(np.dstack([g, noise(3, g.shape)]), "PNG"),
    "png-palette": lambda g: _palette_png(g),
    "tiff-raw": lambda g: encode(g, "TIFF"),
    "tiff-lzw": lambda g: encode(g, "TIFF", compression="tiff_lzw"),
    "tiff-deflate": lambda g: encode(g, "TIFF", compression="tiff_adobe_deflate"),
    "tiff-big-endian": lambda g: _tiff_be(g),
    "bmp-8": lambda g: encode(g, "BMP"),
    "bmp-24": lambda g: encode(np.dstack([g] * 3), "BMP"),
    "bmp-32-pillow": lambda g: encode(_rgba(g), "BMP"),
    "pgm": lambda g: encode(g, "PPM"),
    "gif": lambda g: encode(g, "GIF"),
    "cv2-png": lambda g: cv2.imencode(".png", g)[1].tobytes(),
    "cv2-tiff": lambda g: cv2.imencode(".tiff", g)[1].tobytes(),
    "cv2-bmp-8": lambda g: cv2.imencode(".bmp", g)[1].tobytes(),
    "cv2-bmp-32": lambda g: cv2.imencode(".bmp", _rgba(g))[1].tobytes(),
    "cv2-pgm": lambda g: cv2.imencode(".pgm", g)[1].tobytes(),
}


def _palette_png(grey: np.ndarray) -> bytes:
    image = Image.fromarray(grey).convert("P")  # grey levels become palette indices with a grey palette
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _tiff_be(grey: np.ndarray) -> bytes:
    """An uncompressed big-endian ("MM") grey TIFF, which Pillow does not write."""
    height, width = grey.shape
    entries = [(256, 3, 1, width), (257, 3, 1, height), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
               (273, 4, 1, 8 + 2 + 12 * 9 + 4), (277, 3, 1, 1), (278, 3, 1, height), (279, 4, 1, width * height)]
    ifd = struct.pack(">H", len(entries))
    for tag, kind, count, value in entries:
        ifd += struct.pack(">HHI", tag, kind, count) + (struct.pack(">HH", value, 0) if kind == 3 else struct.pack(">I", value))
    return b"MM\x00*" + struct.pack(">I", 8) + ifd + b"\x00\x00\x00\x00" + grey.tobytes()


@pytest.mark.parametrize("writer", sorted(LOSSLESS_WRITERS))
def test_lossless_round_trip_is_exact(writer):
    original = noise(11)
    data = LOSSLESS_WRITERS[writer](original)
    image = read_image(data)
    assert image.dtype == np.uint8 and image.flags.c_contiguous
    np.testing.assert_array_equal(image, original)


def test_writers_really_produce_the_layouts_under_test():
    original = noise(11)
    assert Image.open(io.BytesIO(encode(noise(1) > 128, "PNG"))).mode == "1"
    modes = {name: Image.open(io.BytesIO(LOSSLESS_WRITERS[name](original))).mode for name in LOSSLESS_WRITERS}
    assert modes["cv2-bmp-32"] == "RGBA" and modes["png-palette"] == "P" and modes["png-la"] == "LA"
    assert LOSSLESS_WRITERS["cv2-bmp-32"](original)[28] == 32  # biBitCount
    assert LOSSLESS_WRITERS["tiff-big-endian"](original)[:4] == b"MM\x00*"


@pytest.mark.parametrize(("fmt", "tolerance"), [("JPEG", 1.5), ("WSQ", 5.0)])
def test_lossy_round_trip_is_close(fmt, tolerance):
    original = ridges()
    image = read_image(encode(original, fmt, **({"quality": 95} if fmt == "JPEG" else {})))
    assert image.shape == original.shape and image.dtype == np.uint8
    assert np.abs(image.astype(int) - original).mean() < tolerance


def test_format_comes_from_content_not_from_the_name(tmp_path):
    path = tmp_path / "scan.bmp"  # actually a PNG
    path.write_bytes(encode(noise(1), "PNG"))
    image, info = read_image_with_info(path)
    assert info.format == "PNG"
    np.testing.assert_array_equal(image, noise(1))


# ---------------------------------------------------------------- colour, bit depth


def _colour_image() -> np.ndarray:
    return np.random.default_rng(8).integers(0, 256, size=(80, 70, 3), dtype=np.uint8)


def test_colour_is_refused_for_grey_by_default_with_the_reason():
    with pytest.raises(ImageError, match="colour.*allow_colour=True"):
        read_image(encode(_colour_image(), "PNG"))


def test_colour_converts_with_bt601_luma_when_allowed():
    rgb = _colour_image()
    image, info = read_image_with_info(encode(rgb, "PNG"), allow_colour=True)
    luma = rgb.astype(float) @ np.array([0.299, 0.587, 0.114])
    assert info.content == "colour"
    assert np.abs(image - luma).max() <= 0.51  # nearest level, up to Pillow's 16-bit fixed-point weights


def test_rgb_mode_returns_the_colours_exactly():
    rgb = _colour_image()
    for data in (encode(rgb, "PNG"), encode(np.dstack([rgb, noise(2, rgb.shape[:2])]), "PNG")):
        image = read_image(data, mode="rgb")
        assert image.shape == rgb.shape and image.flags.c_contiguous
        np.testing.assert_array_equal(image, rgb)


def test_near_grey_within_tolerance_is_accepted_as_grey():
    grey = noise(4)
    tinted = np.dstack([grey, grey, np.clip(grey.astype(int) + 2, 0, 255).astype(np.uint8)])
    _, info = read_image_with_info(encode(tinted, "PNG"))
    assert info.content == "grey_as_colour"
    with pytest.raises(ImageError, match="colour"):
        read_image(encode(tinted, "PNG"), params=ReadParameters(grey_tolerance=1))


def test_palette_with_transparency_reads_without_warnings():
    image = Image.fromarray(noise(9)).convert("P")
    image.info["transparency"] = 0
    buffer = io.BytesIO()
    image.save(buffer, "PNG", transparency=0)
    np.testing.assert_array_equal(read_image(buffer.getvalue()), noise(9))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (encode(np.full((70, 90), 40000, np.uint16), "PNG"), "16-bit"),
        (encode(np.full((70, 90), 40000, np.uint16), "TIFF"), "16-bit"),
        (b"P5 90 70 65535\n" + np.full((70, 90), 40000, ">u2").tobytes(), "16-bit"),
        (encode(noise(1) > 128, "PNG"), "bilevel"),
    ],
    ids=["png-16", "tiff-16", "pgm-16", "png-1"],
)
def test_bit_depths_other_than_8_are_refused_with_the_reason(data, reason):
    with pytest.raises(ImageError, match=reason):
        read_image(data)


def _cmyk_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("CMYK", (70, 80), (10, 20, 30, 40)).save(buffer, "JPEG")
    return buffer.getvalue()


def test_cmyk_is_refused():
    with pytest.raises(ImageError, match="CMYK"):
        read_image(_cmyk_jpeg())


# ---------------------------------------------------------------- sources


def test_every_kind_of_source_gives_the_same_pixels(tmp_path):
    original = noise(6)
    data = encode(original, "PNG")
    path = tmp_path / "image.png"
    path.write_bytes(data)
    with open(path, "rb") as file:
        from_file = read_image(file)
    sources = [str(path), path, data, bytearray(data), memoryview(data), io.BytesIO(data)]
    for source in sources:
        np.testing.assert_array_equal(read_image(source), original)
    np.testing.assert_array_equal(from_file, original)


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (b"", "empty"),
        (12, "int"),
        (np.zeros((80, 80), np.uint8), "as_image"),
        (io.StringIO("P5"), "text mode"),
        ("/nonexistent/scan.tif", "cannot read"),
    ],
)
def test_bad_sources_raise_image_error(source, reason):
    with pytest.raises(ImageError, match=reason):
        read_image(source)


def test_closed_file_object(tmp_path):
    path = tmp_path / "image.png"
    path.write_bytes(encode(noise(1), "PNG"))
    with open(path, "rb") as file:
        pass
    with pytest.raises(ImageError, match="cannot read"):
        read_image(file)


def test_empty_file_and_directory(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageError, match="empty"):
        read_image(tmp_path / "empty.png")
    with pytest.raises(ImageError, match="cannot read"):
        read_image(tmp_path)


@pytest.mark.parametrize(
    ("head", "reason"),
    [
        (b"\x00\x00\x00\x0cjP  \r\n\x87\n" + bytes(100), "JPEG 2000"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 " + bytes(100), "WebP"),
        (b"%PDF-1.4" + bytes(100), "PDF"),
        (b"P4 80 80\n" + bytes(800), "bilevel"),
        (b"hello, world" * 10, "not a PNG"),
    ],
)
def test_unsupported_containers_say_what_they_are(head, reason):
    with pytest.raises(ImageError, match=reason):
        read_image(head)


def test_a_wsq_file_that_crashes_the_nbis_decoder_gives_image_error_and_reading_goes_on():
    data = bytearray(encode(ridges(), "WSQ"))
    transform_table = data.find(b"\xff\xa4")  # DTT segment: zeroed filter lengths abort NBIS
    data[transform_table + 4 : transform_table + 6] = b"\x00\x00"
    with pytest.raises(ImageError, match="WSQ decoder failed"):
        read_image(bytes(data))
    image = read_image(encode(ridges(), "WSQ"))  # a fresh decoder process takes over
    assert image.shape == ridges().shape


def test_missing_wsq_package_raises_dependency_error_with_install_hint(monkeypatch):
    data = encode(ridges(), "WSQ")
    monkeypatch.setitem(sys.modules, "wsq", None)  # makes `import wsq` fail
    with pytest.raises(DependencyError, match=r'pip install "ektp-biometrics\[wsq\]"'):
        read_image(data)


# ---------------------------------------------------------------- limits


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height but whose pixel data is a few bytes."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize(("width", "height"), [(5000, 5000), (4097, 100), (100, 4097), (100_000, 100_000), (2**31 - 1, 2)])
def test_huge_headers_are_refused_before_decoding(width, height):
    with pytest.raises(ImageError, match="limit"):
        read_image(_png_header_only(width, height))


@pytest.mark.parametrize("shape", [(63, 100), (100, 63), (1, 1)])
def test_tiny_images_are_refused(shape):
    with pytest.raises(ImageError, match="smaller than 64"):
        read_image(encode(np.zeros(shape, np.uint8), "PNG"))


def test_limits_can_be_changed():
    data = _png_header_only(4097, 64)
    with pytest.raises(ImageError, match="truncated or corrupt"):  # passes the size check, then lacks pixels
        read_image(data, params=ReadParameters(max_side=5000))
    assert read_image(encode(np.zeros((64, 64), np.uint8), "PNG")).shape == (64, 64)
    with pytest.raises(ImageError, match="larger than 100 bytes"):
        read_image(encode(noise(1), "PNG"), params=ReadParameters(max_file_bytes=100))


# ---------------------------------------------------------------- corrupt input


def _real_samples() -> dict[str, bytes]:
    """Files of every container, from the real data where present, else synthetic."""
    from_data = {
        "tiff": "fingerprints/fvc2000_db1_b/101_1.tif",
        "bmp-8": "fingerprints/fcj2020_p101-125/101_4_1.bmp",
        "bmp-32": "fingerprints/socofing_subset/Real/1__M_Left_thumb_finger.BMP",
        "pgm": "faces/att_orl/s1/1.pgm",
        "gif": "faces/yalefaces/subject01.happy",
    }
    root = Path(os.environ.get("EKTP_DATA") or PROJECT_ROOT.parent / "shared" / "data")
    samples = {}
    for name, relative in from_data.items():
        path = root / relative
        samples[name] = path.read_bytes() if path.is_file() else LOSSLESS_WRITERS[name.replace("bmp-32", "cv2-bmp-32")](noise(2))
    grey = read_image(samples["tiff"])
    samples["png"] = encode(grey, "PNG")
    samples["jpeg"] = encode(grey, "JPEG")
    samples["wsq"] = encode(ridges(), "WSQ")
    return samples


SAMPLES = _real_samples()
SAMPLE_PIXELS = {name: read_image(data) for name, data in SAMPLES.items()}


@pytest.mark.parametrize("name", sorted(SAMPLES))
@pytest.mark.parametrize("fraction", [0.0, 0.001, 0.01, 0.1, 0.5, 0.9, 0.99])
def test_truncated_files_raise_image_error(name, fraction):
    data = SAMPLES[name]
    with pytest.raises(ImageError):
        read_image(data[: max(1, int(len(data) * fraction))])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(SAMPLES)), cut=st.floats(0.0, 1.0, exclude_max=True))
def test_any_truncation_gives_image_error_or_the_complete_pixels(name, cut):
    data = SAMPLES[name]
    try:
        image = read_image(data[: int(len(data) * cut)])
    except ImageError:
        return
    # Only the trailer may be missing (e.g. PNG's IEND): then every pixel must be right.
    np.testing.assert_array_equal(image, SAMPLE_PIXELS[name])


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=2048))
def test_random_bytes_raise_image_error_only(data):
    with pytest.raises(ImageError):
        read_image(data)


SIGNATURES = [b"\x89PNG\r\n\x1a\n", b"II*\x00", b"MM\x00*", b"BM", b"GIF89a", b"\xff\xd8\xff", b"\xff\xa0\xff", b"P5", b"P6 "]


@settings(max_examples=300, deadline=None)
@given(signature=st.sampled_from(SIGNATURES), tail=st.binary(max_size=4096))
def test_a_valid_signature_with_random_bytes_raises_image_error_only(signature, tail):
    with pytest.raises(ImageError):
        read_image(signature + tail)


@settings(max_examples=200, deadline=None)
@given(name=st.sampled_from(sorted(SAMPLES)), seed=st.integers(0, 2**32 - 1), flips=st.integers(1, 8))
def test_corrupted_bytes_give_image_error_or_a_valid_image(name, seed, flips):
    rng = np.random.default_rng(seed)
    data = bytearray(SAMPLES[name])
    for position in rng.integers(0, len(data), flips):
        data[position] = rng.integers(0, 256)
    try:
        image = read_image(bytes(data), allow_colour=True)
    except ImageError:
        return
    assert image.ndim == 2 and image.dtype == np.uint8 and min(image.shape) >= 64


# ---------------------------------------------------------------- stored resolution


@pytest.mark.parametrize(
    ("fmt", "options", "expected"),
    [
        ("PNG", {"dpi": (500, 500)}, 500.0),
        ("TIFF", {"dpi": (569, 569)}, 569.0),
        ("TIFF", {"resolution": 196.85, "resolution_unit": 3}, 500.0),  # pixels per centimetre
        ("BMP", {"dpi": (1000, 1000)}, 1000.0),
        ("JPEG", {"dpi": (500, 500)}, 500.0),
        ("PNG", {}, None),
        ("PGM", {}, None),
    ],
)
def test_stored_resolution(fmt, options, expected):
    data = encode(noise(1), "PPM" if fmt == "PGM" else fmt, **options)
    info = read_image_with_info(data)[1]
    assert info.dpi == expected and info.format == fmt


def test_jpeg_resolution_falls_back_to_exif_when_jfif_states_only_an_aspect_ratio():
    exif = Image.Exif()
    exif.update({282: 500, 283: 500, 296: 2})  # XResolution, YResolution, ResolutionUnit = inch
    data = encode(noise(1), "JPEG", exif=exif.tobytes())
    assert data[13] == 0  # JFIF density unit 0: aspect ratio only
    assert read_image_with_info(data)[1].dpi == 500.0


def test_wsq_resolution_matches_the_reference_decoder():
    import _wsq  # the NBIS decoder wrapped by the wsq package

    data = encode(ridges(), "WSQ")
    *_, ppi = _wsq.decompress(data)
    assert read_image_with_info(data)[1].dpi == float(ppi)


def test_anisotropic_resolution_has_no_single_dpi():
    info = read_image_with_info(encode(noise(1), "PNG", dpi=(500, 250)))[1]
    assert info.dpi_xy == (500.0, 250.0) and info.dpi is None


def test_read_at_stored_resolution():
    image = read_image(encode(np.zeros((500, 250), np.uint8), "TIFF", dpi=(1000, 1000)), dpi="stored")
    assert image.shape == (250, 125)
    with pytest.raises(ImageError, match="states no"):
        read_image(encode(noise(1), "PNG"), dpi="stored")
    with pytest.raises(ImageError, match='"stored"'):
        read_image(encode(noise(1), "PNG"), dpi="file")
    with pytest.raises(ImageError, match="dpi"):
        read_image(encode(noise(1), "PNG"), dpi=100)


# ---------------------------------------------------------------- working resolution


def test_569_dpi_to_500():
    assert to_working_resolution(np.zeros((560, 296), np.uint8), 569).shape == (492, 260)


def test_same_resolution_is_a_no_op_without_copy():
    image = noise(3)
    assert to_working_resolution(image, 500) is image
    assert to_working_resolution(image, 400, 400) is image


@pytest.mark.parametrize("dpi", [249.9, 1000.1, 0, -500, float("nan"), float("inf"), True, "500", None])
def test_dpi_out_of_range_is_refused(dpi):
    with pytest.raises(ImageError, match="dpi"):
        to_working_resolution(noise(3), dpi)


def test_target_dpi_out_of_range_is_refused():
    with pytest.raises(ImageError, match="target_dpi"):
        to_working_resolution(noise(3), 500, 2000)


def test_halving_averages_2x2_blocks():
    image = noise(12, (256, 192))
    half = to_working_resolution(image, 1000)
    blocks = image.reshape(128, 2, 96, 2).astype(float).mean(axis=(1, 3))
    assert half.shape == (128, 96) and np.abs(half - blocks).max() <= 0.5 + 1e-9


def test_shrinking_attenuates_ridges_past_nyquist():
    # Ridges 3 px apart at 1000 dpi would be 1.5 px apart at 500 dpi, beyond Nyquist. Plain
    # subsampling keeps them at full contrast as a false coarser pattern; area averaging damps them.
    fine = ridges((400, 400), period=3.0)
    small = to_working_resolution(fine, 1000)
    subsampled = fine[::2, ::2]
    assert subsampled.std() > 0.9 * fine.std()
    assert small.std() < 0.6 * fine.std()


def test_enlarging_keeps_flat_areas_flat_and_ridges_smooth():
    assert (to_working_resolution(np.full((100, 100), 77, np.uint8), 250) == 77).all()
    coarse = ridges((100, 100), period=9.0)
    fine = to_working_resolution(coarse, 250)  # 250 -> 500 dpi doubles the size
    assert fine.shape == (200, 200) and fine.dtype == np.uint8
    # The same sinusoid sampled at the output pixel centres (OpenCV maps x_out to (x_out + 0.5) / 2 - 0.5).
    rows, cols = (np.mgrid[0:200, 0:200] + 0.5) / 2 - 0.5
    reference = 127.5 + 100 * np.sin(2 * np.pi * (rows * 0.8 + cols * 0.6) / 9.0)
    inside = (slice(4, -4), slice(4, -4))  # away from the border, where OpenCV replicates edge pixels
    assert np.abs(fine[inside] - reference[inside]).mean() < 2.0


def test_rgb_images_resample_too():
    image = np.dstack([noise(1, (200, 200))] * 3)
    assert to_working_resolution(image, 1000, 500).shape == (100, 100, 3)


def test_resampling_below_the_minimum_size_is_refused():
    with pytest.raises(ImageError, match="resampled"):
        to_working_resolution(np.zeros((100, 100), np.uint8), 1000)


# ---------------------------------------------------------------- as_image


@pytest.mark.parametrize("dtype", [bool, np.int8, np.uint16, np.int32, np.int64, np.float32, np.float64, np.complex64])
def test_as_image_refuses_other_dtypes_naming_them(dtype):
    with pytest.raises(ImageError, match=np.dtype(dtype).name):
        as_image(np.zeros((80, 80), dtype))


@pytest.mark.parametrize(("white", "scale"), [(1.0, 255.0), (255.0, 1.0)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_as_image_converts_floats_only_with_an_explicit_white(white, scale, dtype):
    levels = noise(5)
    values = (levels / scale).astype(dtype)
    np.testing.assert_array_equal(as_image(values, float_white=white), levels)


@pytest.mark.parametrize("bad", [-0.01, 1.01, float("nan")])
def test_as_image_refuses_floats_out_of_range(bad):
    values = np.full((80, 80), 0.5)
    values[3, 4] = bad
    with pytest.raises(ImageError, match="outside"):
        as_image(values, float_white=1.0)


def test_as_image_makes_c_contiguous_and_validates_shape():
    image = noise(5, (100, 200))
    strided = image[:, ::2]
    prepared = as_image(strided)
    assert prepared.flags.c_contiguous and prepared is not strided
    np.testing.assert_array_equal(prepared, strided)
    assert as_image(np.asfortranarray(image)).flags.c_contiguous
    for bad, reason in [
        (np.zeros((80, 80, 3), np.uint8), "colour"),
        (np.zeros(6400, np.uint8), "2-D"),
        (np.zeros((0, 80), np.uint8), "empty"),
        (np.zeros((10, 80), np.uint8), "smaller"),
        ([[0] * 80] * 80, "list"),
    ]:
        with pytest.raises(ImageError, match=reason):
            as_image(bad)


# ---------------------------------------------------------------- import cost and documentation


def test_importing_io_loads_no_image_library():
    code = (
        "import sys, ektp_biometrics.io as io; io.ReadParameters; "
        "print(sorted(m for m in ('PIL', 'cv2', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("module", ["_policy", "_sniff", "_prepare", "_resolution", "_read", "__init__"])
def test_docstring_examples_run(module):
    name = "ektp_biometrics.io" + ("" if module == "__init__" else f".{module}")
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0

