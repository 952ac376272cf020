"""``ektp-bio extract`` and ``ektp-bio show`` end to end."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from ektp_biometrics.cli import main
from ektp_biometrics.fingerprint import FingerprintTemplate, extract_file


@pytest.fixture()
def few_images(data_root, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("101_1.tif", "101_2.tif", "102_1.tif"):
        shutil.copy(data_root / "fingerprints/fvc2002_db1_b" / name, folder / name)
    return folder


@pytest.mark.parametrize("fmt, library_format, suffix", [("iso", "iso19794-2", ".iso"), ("ansi", "ansi378", ".ansi")])
def test_extract_writes_one_template_per_image(few_images, tmp_path, capsys, fmt, library_format, suffix):
    out = tmp_path / "out"
    assert main(["extract", str(few_images), "--format", fmt, "--out", str(out)]) == 0
    written = sorted(p.name for p in out.iterdir())
    assert written == [f"101_1{suffix}", f"101_2{suffix}", f"102_1{suffix}"]
    parsed = FingerprintTemplate.from_bytes((out / f"101_1{suffix}").read_bytes(), library_format)
    direct = extract_file(few_images / "101_1.tif")
    assert len(parsed) == len(direct)
    np.testing.assert_allclose(np.sort(parsed.x), np.sort(np.round(direct.x)), atol=0.5)
    assert "extracted 3 of 3" in capsys.readouterr().out


def test_extract_reports_refused_images_and_goes_on(few_images, tmp_path, capsys):
    (few_images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (few_images / "blank.png").write_bytes(_png(np.full((200, 200), 255, np.uint8)))
    out = tmp_path / "out"
    assert main(["extract", str(few_images), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "extracted 3 of 5" in text and "2 refused" in text
    assert "broken.png: ImageError" in text and "blank.png: ExtractionError" in text
    assert not any(p.name.startswith(("broken", "blank")) for p in out.iterdir())


def test_extract_of_a_missing_path_is_a_clear_error(tmp_path, capsys):
    assert main(["extract", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 1
    assert "no such file or folder" in capsys.readouterr().err


def test_show_draws_a_png(few_images, tmp_path):
    from ektp_biometrics.io import read_image

    out = tmp_path / "show.png"
    assert main(["show", str(few_images / "101_1.tif"), "--out", str(out)]) == 0
    picture = read_image(out, mode="rgb")
    assert picture.shape[0] == 2 * 374 and picture.shape[1] == 2 * 388
    # minutiae are drawn in colour on a grey picture
    spread = picture.max(axis=2).astype(int) - picture.min(axis=2)
    assert (spread > 100).sum() > 200


def _png(array):
    import cv2

    ok, data = cv2.imencode(".png", array)
    assert ok
    return data.tobytes()
