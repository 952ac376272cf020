"""Guided enrollment session: ten fingers and a face, quality gate, retries, exceptions,
same-finger-twice check, hash chain, and failover in the middle of a session."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from ektp_biometrics.devices.enrollment import EnrollmentPolicy, EnrollmentSession
from ektp_biometrics.devices.manager import DeviceManager
from ektp_biometrics.devices.simulated import Faults, SimulatedCamera, SimulatedScanner, SyntheticFingers
from ektp_biometrics.errors import ConfigurationError
from ektp_biometrics.fingerprint import extract
from ektp_biometrics.fingerprint.formats import loads
from ektp_biometrics.fingerprint.match import match

# 240 x 240 impressions carry enough minutiae for the matcher; rendered once per test module.
PERSON = SyntheticFingers(seed=5, subject=0, image_shape=(240, 240))


@pytest.fixture(scope="module")
def duplicate_score() -> float:
    """The matcher's score at FMR 1e-4 when its calibration table is built; otherwise the highest
    impostor score among the person's ten distinct fingers plus a 0.05 margin (45 impostor pairs)."""
    from ektp_biometrics.fingerprint.match import threshold

    try:
        return float(threshold(1e-4))
    except ImportError:
        templates = [extract(PERSON.image(p, 0)) for p in range(1, 11)]
        return max(match(a, b) for a, b in itertools.combinations(templates, 2)) + 0.05


class SameFingerTwice:
    """A person who presents finger 2 again when asked for finger 7 (a second impression of it)."""

    def image(self, finger_position: int, attempt: int) -> np.ndarray:
        return PERSON.image(2, attempt + 1) if finger_position == 7 else PERSON.image(finger_position, attempt)


def test_full_session_survives_a_dead_scanner_and_proves_integrity(duplicate_score):
    first = SimulatedScanner(PERSON, serial="A", faults=Faults(disconnect_after=4))
    second = SimulatedScanner(PERSON, serial="B")
    manager = DeviceManager([first, second, SimulatedCamera(serial="CAM")])
    policy = EnrollmentPolicy(min_finger_quality=0, min_face_quality=0, duplicate_score=duplicate_score)
    record = EnrollmentSession(manager, policy).run()
    assert list(record.fingers) == list(range(1, 11)) and record.exceptions == {}
    assert [f.device for f in record.fingers.values()] == ["simulated:A"] * 4 + ["simulated:B"] * 6
    assert len([e for e in record.log if e.event == "switch"]) == 1
    for position, blob in record.templates().items():
        template = loads(blob, "iso19794-2")
        assert template.finger_position == position and len(template) > 0
    assert record.face is not None and record.face.device == "simulated:CAM"
    assert record.verify()
    # Altering, dropping or reordering a capture breaks the chain.
    altered = dict(record.fingers)
    blob = altered[3].template
    altered[3] = dataclasses.replace(altered[3], template=blob[:30] + bytes([blob[30] ^ 1]) + blob[31:])
    assert not dataclasses.replace(record, fingers=altered).verify()
    dropped = {p: f for p, f in record.fingers.items() if p != 5}
    assert not dataclasses.replace(record, fingers=dropped).verify()
    reordered = dict(sorted(record.fingers.items(), reverse=True))
    assert not dataclasses.replace(record, fingers=reordered).verify()


def test_same_finger_under_two_positions_is_caught(duplicate_score):
    scanner = SimulatedScanner(SameFingerTwice(), serial="DUP")
    assert match(extract(PERSON.image(2, 0)), extract(PERSON.image(2, 1))) >= duplicate_score
    policy = EnrollmentPolicy(positions=(2, 7), capture_face=False, min_finger_quality=0, max_attempts=2, duplicate_score=duplicate_score)
    record = EnrollmentSession(DeviceManager([scanner]), policy).run()
    assert list(record.fingers) == [2]
    assert "same finger as position 2" in record.exceptions[7]
    duplicates = [e for e in record.log if e.event == "duplicate_finger"]
    assert len(duplicates) == 2 and all(e.detail["same_as"] == 2 for e in duplicates)
    assert record.verify()


def test_quality_gate_retries_then_keeps_the_best_with_an_exception(duplicate_score):
    dirty = SimulatedScanner(PERSON, serial="DIRTY", faults=Faults(degrade=0.8))
    policy = EnrollmentPolicy(positions=(3,), capture_face=False, min_finger_quality=40, max_attempts=3, duplicate_score=duplicate_score)
    record = EnrollmentSession(DeviceManager([dirty]), policy).run()
    capture = record.fingers[3]
    assert not capture.passed_gate and capture.attempts == 3 and capture.quality < 40
    assert "below 40 after 3 attempts" in record.exceptions[3]
    rejected = [e for e in record.log if e.event == "quality_rejected"]
    assert len(rejected) == 3 and capture.quality == max(e.detail["quality"] for e in rejected)
    # The platen is cleaned: the same finger passes at the first attempt.
    dirty.set_faults(degrade=0.0)
    record = EnrollmentSession(DeviceManager([dirty]), policy).run()
    assert record.fingers[3].passed_gate and record.fingers[3].attempts == 1 and record.exceptions == {}


def test_declared_missing_fingers_are_recorded_not_captured(duplicate_score):
    scanner = SimulatedScanner(PERSON, serial="M")
    policy = EnrollmentPolicy(positions=(1, 2), capture_face=False, min_finger_quality=0, duplicate_score=duplicate_score)
    record = EnrollmentSession(DeviceManager([scanner]), policy, missing={2: "amputated"}).run()
    assert list(record.fingers) == [1] and record.exceptions == {2: "amputated"}
    assert scanner.captures == 1


def test_face_below_gate_is_kept_with_an_exception(duplicate_score):
    policy = EnrollmentPolicy(positions=(1,), min_finger_quality=0, min_face_quality=100, max_attempts=2, duplicate_score=duplicate_score)
    manager = DeviceManager([SimulatedScanner(PERSON, serial="F"), SimulatedCamera(serial="DRAWN")])
    record = EnrollmentSession(manager, policy).run()
    # A drawn placeholder face is not a photo the ISO/ICAO gate accepts.
    assert record.face is not None and not record.face.passed_gate and record.face.attempts == 2
    assert "face quality" in record.exceptions["face"] and record.verify()


def test_policy_and_session_validate_input():
    with pytest.raises(ConfigurationError):
        EnrollmentPolicy(positions=(1, 1))
    with pytest.raises(ConfigurationError):
        EnrollmentPolicy(positions=(0,))
    with pytest.raises(ConfigurationError):
        EnrollmentPolicy(max_attempts=0)
    with pytest.raises(ConfigurationError):
        EnrollmentPolicy(min_finger_quality=101)
    with pytest.raises(ConfigurationError):
        EnrollmentSession(DeviceManager(), EnrollmentPolicy(duplicate_score=0.5), missing={11: "x"})


def test_session_pauses_without_a_scanner_and_resumes_losing_nothing(duplicate_score):
    import threading
    import time

    only = SimulatedScanner(PERSON, serial="ONLY", faults=Faults(disconnect_after=2))
    manager = DeviceManager([only])
    policy = EnrollmentPolicy(positions=(1, 2, 3, 4), capture_face=False, min_finger_quality=0, duplicate_score=duplicate_score)
    seen = {}

    def operator() -> None:
        deadline = time.monotonic() + 30
        while not manager.log.entries("paused") and time.monotonic() < deadline:
            time.sleep(0.01)
        seen["accepted_before"] = [e.detail["finger_position"] for e in manager.log.entries("captured")]
        only.reconnect()

    helper = threading.Thread(target=operator)
    helper.start()
    record = EnrollmentSession(manager, policy).run()
    helper.join()
    assert seen["accepted_before"] == [1, 2]
    assert list(record.fingers) == [1, 2, 3, 4] and record.verify()
    events = [e.event for e in record.log]
    assert events.count("paused") == 1 and events.count("resumed") == 1


def test_session_gives_up_after_max_pause(duplicate_score):
    from ektp_biometrics.errors import DeviceUnavailable

    dead = SimulatedScanner(PERSON, serial="DEAD", faults=Faults(disconnect_after=0))
    policy = EnrollmentPolicy(positions=(1,), capture_face=False, duplicate_score=duplicate_score, max_pause=0.2)
    with pytest.raises(DeviceUnavailable, match="no working Finger device"):
        EnrollmentSession(DeviceManager([dead]), policy).run()


def test_slap_session_captures_three_slaps_and_falls_back_to_singles(duplicate_score):
    slap = SimulatedScanner(PERSON, serial="SLAP", slap=True, faults=Faults(disconnect_after=6))
    single = SimulatedScanner(PERSON, serial="SINGLE")
    manager = DeviceManager([slap, single])
    policy = EnrollmentPolicy(slaps=True, capture_face=False, min_finger_quality=0, duplicate_score=duplicate_score)
    record = EnrollmentSession(manager, policy).run()
    # The right slap comes from the slap scanner; it dies during the left slap (after 6 fingers),
    # which is redone finger by finger on the single scanner, and so are the thumbs.
    assert sorted(record.fingers) == list(range(1, 11)) and record.exceptions == {}
    assert [p for p, f in record.fingers.items() if f.device == "simulated:SLAP"] == [2, 3, 4, 5]
    assert [p for p, f in record.fingers.items() if f.device == "simulated:SINGLE"] == [7, 8, 9, 10, 6, 1]
    events = [e.event for e in record.log]
    assert events.count("slap_fallback") == 2 and events.count("switch") == 1
    assert record.verify()


def _synthetic_record(blobs: list[bytes]):
    """A record built directly from template bytes (no capture), chained as a session chains."""
    from ektp_biometrics.devices.enrollment import EnrollmentRecord, FingerCapture
    from ektp_biometrics.devices.sbi import EMPTY_HASH, chain_hash

    fingers, link = {}, EMPTY_HASH
    for position, blob in enumerate(blobs, start=1):
        link = chain_hash(link, blob)
        fingers[position] = FingerCapture(position, blob, 50, True, 1, "simulated:X", "2026-01-01T00:00:00+00:00", "0" * 64, link)
    return EnrollmentRecord("s", fingers, None, {}, (), link)


from hypothesis import given, settings  # noqa: E402 - property tests below need no rendered fingers
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=10), st.data())
def test_any_single_bit_flip_breaks_the_chain(blobs, data):
    record = _synthetic_record(blobs)
    assert record.verify()
    position = data.draw(st.integers(1, len(blobs)))
    blob = record.fingers[position].template
    index = data.draw(st.integers(0, len(blob) - 1))
    bit = data.draw(st.integers(0, 7))
    flipped = blob[:index] + bytes([blob[index] ^ (1 << bit)]) + blob[index + 1 :]
    fingers = dict(record.fingers)
    fingers[position] = dataclasses.replace(fingers[position], template=flipped)
    assert not dataclasses.replace(record, fingers=fingers).verify()


def test_record_round_trips_through_json(duplicate_score):
    import json

    from ektp_biometrics.devices.enrollment import EnrollmentRecord
    from ektp_biometrics.errors import TemplateFormatError

    manager = DeviceManager([SimulatedScanner(PERSON, serial="J"), SimulatedCamera(serial="JC")])
    policy = EnrollmentPolicy(positions=(1, 6), min_finger_quality=0, min_face_quality=0, duplicate_score=duplicate_score)
    record = EnrollmentSession(manager, policy, missing={6: "bandaged"}).run()
    again = EnrollmentRecord.from_dict(json.loads(json.dumps(record.to_dict())))
    assert again == record and again.verify()
    broken = record.to_dict()
    broken["fingers"][0]["template"] = "not base64!"
    with pytest.raises(TemplateFormatError):
        EnrollmentRecord.from_dict(broken)
    with pytest.raises(TemplateFormatError):
        EnrollmentRecord.from_dict({"format": "something-else"})
