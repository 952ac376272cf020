"""Device health and failover: the acceptance scenarios of issue 7 (a scanner dies mid-session)."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from ektp_biometrics.devices._base import DeviceKind, DeviceState
from ektp_biometrics.devices.manager import CaptureSequence, DeviceManager, SequenceState, SessionLog
from ektp_biometrics.devices.simulated import Faults, SimulatedCamera, SimulatedScanner, SyntheticFingers
from ektp_biometrics.errors import CaptureTimeout, ConfigurationError, DeviceUnavailable

TEN_FINGERS = list(range(1, 11))


class FewFingers:
    """Two rendered synthetic fingers reused for every position: failover needs frames, not identities."""

    def __init__(self) -> None:
        source = SyntheticFingers(seed=21, image_shape=(200, 200))
        self.images = [source.image(2, 0), source.image(3, 0)]

    def image(self, finger_position: int, attempt: int) -> np.ndarray:
        return self.images[(finger_position + attempt) % 2]


@pytest.fixture(scope="module")
def fingers() -> FewFingers:
    return FewFingers()


def test_scanner_dies_after_fourth_finger_session_finishes_on_second(fingers, tmp_path):
    first = SimulatedScanner(fingers, serial="A", faults=Faults(disconnect_after=4))
    second = SimulatedScanner(fingers, serial="B")
    log = SessionLog(tmp_path / "session.jsonl")
    manager = DeviceManager([first, second], log=log)
    results = CaptureSequence(manager, DeviceKind.FINGER, TEN_FINGERS, timeout=5.0).run()
    assert list(results) == TEN_FINGERS
    assert [r.device.serial for r in results.values()] == ["A"] * 4 + ["B"] * 6
    assert all(r.finger_position == p for p, r in results.items())
    switches = log.entries("switch")
    assert len(switches) == 1
    assert switches[0].device == "simulated:A" and switches[0].detail["to"] == "simulated:B"
    assert "DeviceDisconnected" in switches[0].detail["reason"]
    assert len(log.entries("captured")) == 10 and len(log.entries("device_failed")) == 1
    lines = [json.loads(line) for line in (tmp_path / "session.jsonl").read_text().splitlines()]
    assert [line["event"] for line in lines] == [e.event for e in log.entries()]
    assert sum(line["event"] == "switch" for line in lines) == 1


def test_no_second_scanner_pauses_then_resumes_when_it_returns(fingers):
    only = SimulatedScanner(fingers, serial="ONLY", faults=Faults(disconnect_after=4))
    manager = DeviceManager([only])
    sequence = CaptureSequence(manager, DeviceKind.FINGER, TEN_FINGERS, timeout=5.0, poll_interval=0.02)
    seen = {}

    def operator() -> None:
        # Wait until the station says it is paused, note what it shows, then plug the scanner back in.
        seen["paused"] = sequence.wait_for_state(SequenceState.PAUSED, 30.0)
        seen["reason"], seen["pending"], seen["kept"] = sequence.reason, sequence.pending, list(sequence.results)
        seen["status"] = only.status().state
        only.reconnect()

    helper = threading.Thread(target=operator)
    helper.start()
    results = sequence.run(max_pause=30.0)
    helper.join()
    assert seen["paused"] and seen["status"] is DeviceState.FAULT
    assert "Finger" in seen["reason"] and "position 5" in seen["reason"]
    assert seen["kept"] == [1, 2, 3, 4] and seen["pending"] == [5, 6, 7, 8, 9, 10]
    assert sequence.state is SequenceState.DONE and list(results) == TEN_FINGERS
    assert {r.device.serial for r in results.values()} == {"ONLY"}
    events = [e.event for e in manager.log.entries()]
    assert events.count("paused") == 1 and events.count("resumed") == 1 and events.count("switch") == 0
    assert events.index("paused") < events.index("device_recovered") < events.index("resumed")


def test_pause_gives_up_after_max_pause_and_keeps_results(fingers):
    only = SimulatedScanner(fingers, serial="ONLY", faults=Faults(disconnect_after=2))
    sequence = CaptureSequence(DeviceManager([only]), DeviceKind.FINGER, [1, 2, 3], timeout=2.0)
    with pytest.raises(DeviceUnavailable, match="run\\(\\) again"):
        sequence.run(max_pause=0.2)
    assert sequence.state is SequenceState.PAUSED and list(sequence.results) == [1, 2]
    only.reconnect()
    assert list(sequence.run()) == [1, 2, 3] and sequence.state is SequenceState.DONE


def test_corrupt_frames_are_retried_then_the_device_is_abandoned(fingers):
    flaky = SimulatedScanner(fingers, serial="FLAKY", faults=Faults(corrupt_frames=1))
    manager = DeviceManager([flaky], corrupt_retries=1)
    assert manager.capture_with_failover(DeviceKind.FINGER, 2.0, finger_position=3).device.serial == "FLAKY"
    assert len(manager.log.entries("corrupt_frame")) == 1 and not manager.log.entries("device_failed")
    flaky.set_faults(corrupt_frames=5)
    backup = SimulatedScanner(fingers, serial="BACKUP")
    manager.add(backup)
    assert manager.capture_with_failover(DeviceKind.FINGER, 2.0, finger_position=3).device.serial == "BACKUP"
    assert [e.device for e in manager.log.entries("device_failed")] == ["simulated:FLAKY"]


def test_timeout_is_not_a_device_failure(fingers):
    slow = SimulatedScanner(fingers, serial="SLOW", faults=Faults(timeout=True))
    other = SimulatedScanner(fingers, serial="OTHER")
    manager = DeviceManager([slow, other])
    with pytest.raises(CaptureTimeout):
        manager.capture_with_failover(DeviceKind.FINGER, 0.2, finger_position=1)
    assert not manager.is_failing(slow) and not manager.log.entries("switch")


def test_kinds_do_not_mix_and_not_ready_devices_are_skipped(fingers):
    camera = SimulatedCamera(serial="CAM")
    cold = SimulatedScanner(fingers, serial="COLD", faults=Faults(not_ready=True))
    warm = SimulatedScanner(fingers, serial="WARM")
    manager = DeviceManager([camera, cold, warm])
    assert manager.capture_with_failover(DeviceKind.FACE, 5.0).device.serial == "CAM"
    assert manager.capture_with_failover(DeviceKind.FINGER, 2.0, finger_position=1).device.serial == "WARM"
    assert manager.is_failing(cold) and not manager.log.entries("switch")
    camera.set_faults(disconnect_after=0)
    with pytest.raises(DeviceUnavailable, match="no working Face device"):
        manager.capture_with_failover(DeviceKind.FACE, 1.0)


def test_background_polling_marks_and_clears_failing_devices(fingers):
    device = SimulatedScanner(fingers, serial="POLLED")
    manager = DeviceManager([device])
    assert manager.poll()["simulated:POLLED"].state is DeviceState.READY
    manager.start_polling(0.02)
    try:
        device.set_faults(not_ready=True)
        for _ in range(200):
            if manager.is_failing(device):
                break
            threading.Event().wait(0.01)
        assert manager.is_failing(device)
        device.set_faults(not_ready=False)
        for _ in range(200):
            if not manager.is_failing(device):
                break
            threading.Event().wait(0.01)
        assert not manager.is_failing(device)
    finally:
        manager.stop_polling()
    states = [e.detail["state"] for e in manager.log.entries("status_changed")]
    assert states[:3] == ["Ready", "Not Ready", "Ready"]


def test_manager_and_sequence_validate_input(fingers):
    device = SimulatedScanner(fingers, serial="X")
    with pytest.raises(ConfigurationError):
        DeviceManager([device, SimulatedScanner(fingers, serial="X")])
    with pytest.raises(ConfigurationError):
        CaptureSequence(DeviceManager(), DeviceKind.FINGER, [1, 1])
    with pytest.raises(DeviceUnavailable, match="none registered"):
        DeviceManager().capture_with_failover(DeviceKind.FINGER, 1.0)


def test_slap_capture_fails_over_between_slap_scanners_only(fingers):
    single = SimulatedScanner(fingers, serial="SINGLE")
    first = SimulatedScanner(fingers, serial="SLAP1", slap=True, faults=Faults(disconnect_after=4))
    second = SimulatedScanner(fingers, serial="SLAP2", slap=True)
    manager = DeviceManager([single, first, second])
    right = manager.capture_slap_with_failover(2, 5.0)
    assert [r.finger_position for r in right] == [2, 3, 4, 5] and {r.device.serial for r in right} == {"SLAP1"}
    thumbs = manager.capture_slap_with_failover(3, 5.0)
    assert [r.finger_position for r in thumbs] == [6, 1] and {r.device.serial for r in thumbs} == {"SLAP2"}
    assert [(e.device, e.detail["to"]) for e in manager.log.entries("switch")] == [("simulated:SLAP1", "simulated:SLAP2")]
    assert not manager.is_failing(single)
    with pytest.raises(ConfigurationError):
        manager.capture_slap_with_failover(4, 5.0)
