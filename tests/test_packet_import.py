"""Import at the center: CLI, resumption after SIGKILL, two importers on one folder."""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ektp_biometrics import packet
from ektp_biometrics.cli import main as cli_main

from test_packet import STATION_ID, make_enrollment


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "ektp_biometrics.cli", "packet", *map(str, args)]


def _setup(root: Path, good: int) -> tuple[Path, list[str], dict[str, str]]:
    """Keys via the CLI, ``good`` valid packets plus three planted bad ones in root/usb."""
    assert cli_main(["packet", "keygen", "--center", "--out", str(root / "center")]) == 0
    assert cli_main(["packet", "keygen", "--station", STATION_ID, "--out", str(root / "station")]) == 0
    assert cli_main(["packet", "register", "--registry", str(root / "stations.json"), "--station", STATION_ID,
                     "--public-key", str(root / "station" / f"{STATION_ID}.pub")]) == 0
    station = packet.load_station_key(root / "station" / f"{STATION_ID}.key", STATION_ID)
    center_public = packet.load_public_key(root / "center" / "center.pub")
    outbox = root / "outbox"
    ids = []
    for index in range(good):
        packet_id, data = packet.build_packet(make_enrollment(index), station, center_public)
        packet.write_packet(outbox, packet_id, data)
        ids.append(packet_id)
    assert cli_main(["packet", "export", str(outbox), str(root / "usb")]) == 0
    usb = root / "usb"
    rogue = packet.StationKey.generate("rogue-station")
    rogue_id, rogue_data = packet.build_packet(make_enrollment(900), rogue, center_public)
    (usb / f"{rogue_id}.ektp").write_bytes(rogue_data)
    victim = usb / f"{ids[0]}.ektp"
    (usb / "zz-truncated.ektp").write_bytes(victim.read_bytes()[:-100])
    flipped = bytearray(victim.read_bytes())
    flipped[len(flipped) // 2] ^= 0x40
    (usb / "zz-flipped.ektp").write_bytes(bytes(flipped))
    planted = {f"{rogue_id}.ektp": "unknown-station", "zz-truncated.ektp": "bad-length", "zz-flipped.ektp": "bad-signature"}
    return usb, ids, planted


def _import_args(root: Path, usb: Path, run: str) -> list[str]:
    return ["import", usb, "--center-key", root / "center" / "center.key", "--registry", root / "stations.json",
            "--quarantine", root / run / "quarantine", "--state", root / run / "state.db", "--accepted", root / run / "accepted.jsonl"]


def _end_state(root: Path, run: str) -> dict:
    sink = packet.JsonLinesSink(root / run / "accepted.jsonl")
    quarantine = root / run / "quarantine"
    reasons = {p.name[: -len(".reason.json")]: json.loads(p.read_text())["reason"] for p in quarantine.glob("*.reason.json")}
    with sqlite3.connect(root / run / "state.db") as db:
        imported = sorted(row[0] for row in db.execute("SELECT packet_id FROM packets WHERE state = 'imported'"))
    return {
        "sink": sorted(sink.packet_ids()),
        "quarantined": sorted(p.name for p in quarantine.glob("*.ektp")),
        "reasons": reasons,
        "imported": imported,
        "temp_files": sorted(p.name for p in quarantine.glob(".*")),
    }


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("center")
    usb, ids, planted = _setup(root, good=30)
    return root, usb, ids, planted


def _fresh_copy(root: Path, usb: Path, name: str) -> Path:
    copy = root / name / "usb"
    shutil.copytree(usb, copy)
    return copy


def test_cli_import_reports_imports_rejections_and_is_idempotent(prepared, capsys):
    root, usb, ids, planted = prepared
    folder = _fresh_copy(root, usb, "cli")
    args = [str(a) for a in _import_args(root, folder, "cli")]
    assert cli_main(["packet", *args]) == 1
    first = json.loads(capsys.readouterr().out)
    assert sorted(first["imported"]) == sorted(ids)
    assert {r["file"]: r["reason"] for r in first["rejected"]} == planted
    assert cli_main(["packet", *args]) == 0
    second = json.loads(capsys.readouterr().out)
    assert sorted(second["already_imported"]) == sorted(ids) and second["imported"] == [] and second["rejected"] == []
    state = _end_state(root, "cli")
    assert state["sink"] == sorted(ids) and state["reasons"] == planted
    assert cli_main(["packet", "inspect", str(folder / f"{ids[0]}.ektp"), "--center-key", str(root / "center" / "center.key"),
                     "--registry", str(root / "stations.json")]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["packet_id"] == ids[0] and "nama" not in json.dumps(manifest)


def _reference(root: Path, usb: Path) -> dict:
    folder = _fresh_copy(root, usb, "reference")
    subprocess.run(_cli(*_import_args(root, folder, "reference")), capture_output=True, timeout=120)
    return _end_state(root, "reference")


def _timed_run(args: list) -> float:
    start = time.monotonic()
    subprocess.run(_cli(*args), capture_output=True, timeout=120)
    return time.monotonic() - start


def _kill_and_resume(root: Path, usb: Path, name: str, kills: int, seed: int) -> dict:
    """SIGKILL successive importer runs at random points spread over the whole import.

    Each run is killed once the sink has grown by a random number of records (about
    total / kills on average) plus a random fraction of one packet's import time, so the kill
    points fall anywhere in the per-packet pipeline (before, inside or after the sink insert, in
    a rejection) and the kills cover the import from start to end.
    """
    folder = _fresh_copy(root, usb, name)
    rng = np.random.default_rng(seed)
    (root / f"{name}-empty").mkdir()
    startup = _timed_run(_import_args(root, root / f"{name}-empty", name + "-empty"))
    duration = _timed_run(_import_args(root, _fresh_copy(root, usb, name + "-timing"), name + "-timing"))
    total = len(list(usb.glob("*.ektp")))
    per_packet = max(duration - startup, 0.05) / total
    sink = packet.JsonLinesSink(root / name / "accepted.jsonl")
    progress = []
    for _ in range(kills):
        before = len(sink.packet_ids())
        target = before + int(rng.integers(0, max(2, 2 * total // kills)))
        process = subprocess.Popen(_cli(*_import_args(root, folder, name)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while process.poll() is None and len(sink.packet_ids()) < target and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(float(rng.uniform(0.0, 1.5)) * per_packet)
        process.send_signal(signal.SIGKILL)
        process.wait()
        progress.append(len(sink.packet_ids()))
    print(f"sink sizes after each kill: {progress}")
    for _ in range(2):  # resume, then a second run that must change nothing
        subprocess.run(_cli(*_import_args(root, folder, name)), capture_output=True, timeout=120)
    return _end_state(root, name)


def _check_against_reference(state: dict, reference: dict, ids: list[str], planted: dict) -> None:
    assert reference["sink"] == sorted(ids) and reference["reasons"] == planted
    assert state["sink"] == reference["sink"]  # every packet exactly once
    assert state["quarantined"] == reference["quarantined"] and state["reasons"] == reference["reasons"]
    assert state["imported"] == reference["imported"]
    assert state["temp_files"] == []


def test_import_killed_at_random_points_resumes_to_the_uninterrupted_end_state(prepared):
    root, usb, ids, planted = prepared
    reference = _reference(root, usb)
    state = _kill_and_resume(root, usb, "killed", kills=3, seed=7)
    _check_against_reference(state, reference, ids, planted)


@pytest.mark.slow
def test_import_killed_thirty_times_resumes_to_the_uninterrupted_end_state(tmp_path, request):
    if "slow" not in (request.config.getoption("-m") or ""):
        pytest.skip("scale test (about 80 s): run with -m slow")
    usb, ids, planted = _setup(tmp_path, good=200)
    reference = _reference(tmp_path, usb)
    state = _kill_and_resume(tmp_path, usb, "killed", kills=30, seed=30)
    _check_against_reference(state, reference, ids, planted)


def test_two_concurrent_importers_import_each_packet_exactly_once(prepared):
    root, usb, ids, planted = prepared
    folder = _fresh_copy(root, usb, "concurrent")
    processes = [subprocess.Popen(_cli(*_import_args(root, folder, "concurrent")), stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    finished = [process.communicate(timeout=120) for process in processes]  # both reaped before any assert
    reports = []
    for process, (out, err) in zip(processes, finished):
        assert process.returncode in (0, 1) and out, err.decode()
        reports.append(json.loads(out))
    imported = reports[0]["imported"] + reports[1]["imported"]
    print(f"importer shares: {len(reports[0]['imported'])} + {len(reports[1]['imported'])}")
    assert sorted(imported) == sorted(ids)  # nobody imported a packet the other one did
    state = _end_state(root, "concurrent")
    assert state["sink"] == sorted(ids) and state["reasons"] == planted
    # a final run finds everything done
    final = subprocess.run(_cli(*_import_args(root, folder, "concurrent")), capture_output=True, timeout=120)
    assert sorted(json.loads(final.stdout)["already_imported"]) == sorted(ids)
