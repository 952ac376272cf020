"""``ektp-bio enroll`` and the ``--scanner``/``--camera`` device specs it shares with ``ektp-bio station``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ektp_biometrics.cli import main
from ektp_biometrics.devices import (
    DeviceKind,
    EnrollmentRecord,
    SimulatedCamera,
    SimulatedScanner,
)
from ektp_biometrics.errors import ConfigurationError
from ektp_biometrics.fingerprint import FingerprintTemplate
from ektp_biometrics.gallery import Gallery
from ektp_biometrics.station import open_devices_from_specs, parse_device_spec

# Same seed and size as test_station.py, so the synthetic renders are shared in one pytest run.
FINGER_SPEC = "simulated:seed=11,size=200x200"


# --- device specs --------------------------------------------------------------------------


def test_a_spec_is_a_driver_and_typed_options() -> None:
    spec = parse_device_spec("simulated:serial=A,disconnect_after=4,degrade=0.5,not_ready=false,size=288x256", "Finger")
    assert (spec.kind, spec.driver) == (DeviceKind.FINGER, "simulated")
    assert spec.options == {"serial": "A", "disconnect_after": 4, "degrade": 0.5, "not_ready": False, "size": "288x256"}
    assert parse_device_spec("sbi:ports=4501-4510", "Face").options == {"ports": "4501-4510"}


BAD_SPECS = [
    ("", "empty"),
    ("simulated:disconnect_after", "not OPTION=VALUE"),
    ("simulated:Serial=A", "not OPTION=VALUE"),
    ("simulated:serial=A,serial=B", "given twice"),
    ("simulated:explode=1", "unknown simulated option 'explode'"),
    ("simulated:disconnect_after=soon", "needs a whole number"),
    ("simulated:disconnect_after=2.5", "needs a whole number"),
    ("simulated:slap=1", "needs true or false"),
    ("simulated:degrade=yes", "needs a number"),
    ("simulated:size=10x10", "size must be ROWSxCOLS"),
    ("-rm:x=1", "not a driver name"),
]


@pytest.mark.parametrize(("text", "message"), BAD_SPECS)
def test_malformed_specs_name_the_part_at_fault(text: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse_device_spec(text, "Finger")


@given(serial=st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-", min_size=1, max_size=12), after=st.integers(0, 99), degrade=st.floats(0, 1))
@settings(max_examples=60, deadline=None)
def test_spec_options_round_trip(serial: str, after: int, degrade: float) -> None:
    spec = parse_device_spec(f"simulated:serial={serial},disconnect_after={after},degrade={degrade!r}", "Finger")
    assert spec.options == {"serial": serial, "disconnect_after": after, "degrade": degrade}


def test_simulated_scanners_of_one_call_share_one_person_and_keep_their_faults() -> None:
    specs = [parse_device_spec(f"{FINGER_SPEC},serial=A,disconnect_after=2", "Finger"), parse_device_spec(f"{FINGER_SPEC},serial=B", "Finger"),
             parse_device_spec("simulated", "Face")]  # fmt: skip
    first, second, camera = open_devices_from_specs(specs)
    assert isinstance(first, SimulatedScanner) and isinstance(camera, SimulatedCamera)
    assert first._source is second._source  # failover to B must capture the same person's fingers
    assert first.faults.disconnect_after == 2 and second.faults.disconnect_after is None
    assert [d.info().device_id for d in (first, second, camera)] == ["simulated:A", "simulated:B", "simulated:SIM-CAM-0001"]


def test_a_refused_fault_value_and_a_missing_folder_are_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="disconnect_after"):
        open_devices_from_specs([parse_device_spec("simulated:disconnect_after=-1", "Finger")])
    with pytest.raises(ConfigurationError, match="does not exist"):
        open_devices_from_specs([parse_device_spec(f"simulated:folder={tmp_path / 'none'}", "Face")])


# --- ektp-bio enroll -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--scanner", "simulated:explode=1"], "unknown simulated option"),
        (["--scanner", "nosuchdriver"], "no device driver named 'nosuchdriver'"),
        (["--camera", "simulated:slap=true"], "apply to scanners"),
        (["--no-face", "--camera", "simulated"], "--camera given with --no-face"),
        (["--positions", "2,two"], "--positions"),
        (["--positions", "2,2"], "distinct ISO finger codes"),
        (["--min-quality", "101"], "min_finger_quality"),
        (["--timeout", "0"], "capture timeout"),
        (["--missing", "11=gone"], "--missing"),
        (["--gallery", "g.sqlite"], "--gallery needs --person-id"),
        (["--person-id", "bad\nid"], "unprintable"),
    ],
)
def test_bad_options_exit_2_with_an_actionable_message(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["enroll", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ektp-bio enroll: error: ") and message in err and "Traceback" not in err


def test_enroll_fails_over_writes_the_record_and_fills_the_gallery(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, gallery = tmp_path / "record", tmp_path / "gallery.sqlite"
    argv = ["enroll", "--scanner", f"{FINGER_SPEC},serial=A,disconnect_after=1", "--scanner", f"{FINGER_SPEC},serial=B",
            "--positions", "2,7,3", "--missing", "3=amputated", "--max-attempts", "2",
            "--out", str(out), "--gallery", str(gallery), "--person-id", "NIK-TEST-1"]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out

    # progress per capture, the switch, the exception and the face verdict are printed
    assert "right index finger: captured on simulated:A" in printed
    assert "Finger device switched from simulated:A to simulated:B" in printed
    assert "switch: Finger simulated:A -> simulated:B" in printed
    assert "exception 3: amputated" in printed
    assert "face quality verdict: failed: face_count 0 faces" in printed  # the drawn placeholder face
    assert "hash chain verified" in printed and "gallery: inserted into gallery.sqlite" in printed

    record = EnrollmentRecord.from_dict(json.loads((out / "record.json").read_text()))
    assert record.verify() and set(record.fingers) == {2, 7} and record.exceptions[3] == "amputated"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["final_hash"] == record.final_hash and summary["fingers_captured"] == 2
    assert [(s["from"], s["to"]) for s in summary["switches"]] == [("simulated:A", "simulated:B")]
    for position, name in ((2, "right_index_finger"), (7, "left_index_finger")):
        assert (out / f"finger_{position:02d}_{name}.iso").read_bytes() == record.fingers[position].template
    assert (out / "face.png").read_bytes() == record.face.image_png

    with Gallery.open(gallery, create=False) as g:
        person = g.get("NIK-TEST-1")
    assert set(person.fingers) == {2, 7} and person.exceptions[3].value == "amputated"
    assert person.fingers[7] == FingerprintTemplate.from_bytes(record.fingers[7].template, "iso19794-2")
    assert person.metadata["final_hash"] == record.final_hash

    # a record is never overwritten, and the person id is not enrolled twice
    assert main([*argv[:-2], "--person-id", "NIK-TEST-2"]) == 2
    assert "already holds a record.json" in capsys.readouterr().err


def test_enroll_fingers_only_with_defaults_and_quiet_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["enroll", "--scanner", FINGER_SPEC, "--no-face", "--positions", "7", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "captured on" not in printed  # --quiet: summary only
    assert "1 fingers captured" in printed and "face quality verdict" not in printed


def test_enroll_and_station_are_registered(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    listed = capsys.readouterr().out
    assert "enroll" in listed and "station" in listed
    assert main(["station", "--host", "127.0.0.1", "--port", "70000", "--no-face"]) == 2
    assert "port must be 0..65535" in capsys.readouterr().err


def test_station_command_serves_until_its_duration_ends(capsys: pytest.CaptureFixture[str]) -> None:
    import re
    import threading
    import urllib.request

    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(main(["station", "--port", "0", "--no-face", "--duration", "4", "--scanner", FINGER_SPEC])))
    thread.start()
    printed = ""
    for _ in range(600):  # up to 30 s for imports on a loaded machine
        printed += capsys.readouterr().out
        if "enrollment station on" in printed:
            break
        thread.join(0.05)
    url = re.search(r"http://127\.0\.0\.1:\d+/", printed)
    assert url is not None, printed
    with urllib.request.urlopen(url.group(0) + "api/state", timeout=10) as reply:
        state = json.load(reply)
    thread.join(30)
    assert codes == [0] and state["state"] == "idle" and state["policy"]["capture_face"] is False
