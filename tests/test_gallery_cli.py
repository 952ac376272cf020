"""``ektp-bio gallery``: init, insert, identify, dedup and stats on real FCJ2020 images."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ektp_biometrics.cli import main


@pytest.fixture(scope="module")
def fcj(data_root: Path) -> Path:
    folder = data_root / "fingerprints" / "fcj2020_p101-125"
    if not folder.is_dir():
        pytest.skip(f"{folder} is missing")
    return folder


@pytest.mark.realdata
def test_gallery_cli_round(tmp_path: Path, fcj: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "g.db"
    assert main(["gallery", "insert", str(db), "--person", "A", "--finger", f"4={fcj / '104_4_1.bmp'}"]) == 1  # no gallery yet
    assert "gallery init" in capsys.readouterr().err
    assert main(["gallery", "init", str(db)]) == 0
    for pid, p in (("A", "104"), ("B", "101")):
        args = ["gallery", "insert", str(db), "--person", pid, "--finger", f"4={fcj / f'{p}_4_1.bmp'}", "--meta", "station=st-1"]
        assert main(args + ["--finger", f"6={fcj / f'{p}_6_1.bmp'}"]) == 0
    assert main(["gallery", "insert", str(db), "--person", "A", "--finger", f"4={fcj / '104_4_1.bmp'}"]) == 1
    assert "already in the gallery" in capsys.readouterr().err
    assert main(["gallery", "insert", str(db), "--person", "C", "--finger", "11=x.bmp"]) == 1
    assert "not 1-10" in capsys.readouterr().err

    assert main(["gallery", "identify", str(db), "--finger", f"4={fcj / '104_4_2.bmp'}", "--finger", f"6={fcj / '104_6_2.bmp'}", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [c["person_id"] for c in result] == ["A", "B"] and set(result[0]["finger_scores"]) == {"4", "6"}
    assert main(["gallery", "identify", str(db), "--finger", f"4={fcj / '104_4_2.bmp'}", "--k", "1"]) == 0
    assert capsys.readouterr().out.split()[:2] == ["1", "A"]

    batch = tmp_path / "batch.json"
    batch.write_text(json.dumps([
        {"person": "A-again", "fingers": {"4": str(fcj / "104_4_2.bmp"), "6": str(fcj / "104_6_2.bmp")}},
        {"person": "D", "fingers": {"4": str(fcj / "105_4_1.bmp")}},
    ]))  # fmt: skip
    assert main(["gallery", "dedup", str(db), str(batch), "--fpir", "0.001", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [(p["probe_id"], p["candidate_id"], p["source"]) for p in report["pairs"]] == [("A-again", "A", "gallery")]
    assert main(["gallery", "dedup", str(db), str(tmp_path / "missing.json"), "--fpir", "0.001"]) == 1
    capsys.readouterr()

    assert main(["gallery", "stats", str(db), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["persons"] == 2 and stats["fingers_per_position"] == {"4": 2, "6": 2}
    assert main(["gallery", "stats", str(db)]) == 0
    assert "bytes per enrolled finger" in capsys.readouterr().out
