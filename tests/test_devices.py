"""Device drivers: conformance of every built-in driver, faults, SBI wire format, registry, CLI."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from importlib.metadata import EntryPoint
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ektp_biometrics.devices import registry
from ektp_biometrics.devices._base import DeviceKind, DeviceState, check_frame, check_timeout, fingerprint_quality
from ektp_biometrics.devices.folder import FolderDevice
from ektp_biometrics.devices.opencv import OpenCVCamera, OpenCVDriver
from ektp_biometrics.devices.sbi import EMPTY_HASH, SbiSimulator, _call, _unb64url, chain_hash, discover_sbi, jws_payload
from ektp_biometrics.devices.simulated import DrawnFaces, Faults, SimulatedCamera, SimulatedScanner, SyntheticFingers
from ektp_biometrics.errors import (
    CaptureTimeout,
    ConfigurationError,
    CorruptFrame,
    DeviceBusy,
    DeviceDisconnected,
    DeviceNotReady,
    DeviceUnavailable,
)
from ektp_biometrics.testing import DeviceConformance

# Small impressions keep the synthetic generator fast; the conformance tests use finger 2 only.
FINGERS = SyntheticFingers(seed=11, subject=0, image_shape=(200, 200))


def scanner(**kwargs) -> SimulatedScanner:
    return SimulatedScanner(FINGERS, **kwargs)


# ---------------------------------------------------------------------------------------------
# Conformance suite against every built-in driver
# ---------------------------------------------------------------------------------------------


class TestSimulatedScannerConformance(DeviceConformance):
    def make_device(self):
        return scanner()

    def make_failing_device(self):
        return scanner(faults=Faults(disconnect_after=0))


class TestSimulatedSlapScannerConformance(DeviceConformance):
    def make_device(self):
        return scanner(slap=True, serial="SIM-SLAP-1")

    def make_failing_device(self):
        return scanner(faults=Faults(not_ready=True))


class TestSimulatedCameraConformance(DeviceConformance):
    def make_device(self):
        return SimulatedCamera()

    def make_failing_device(self):
        return SimulatedCamera(faults=Faults(corrupt_frames=5))


class TestFolderConformance(DeviceConformance):
    capture_timeout = 3.0

    @pytest.fixture(autouse=True)
    def _folder(self, tmp_path):
        self.folder = tmp_path / "drop"
        self.folder.mkdir()
        self.drops = 0

    def make_device(self):
        return FolderDevice(self.folder, poll_interval=0.01)

    def prepare_capture(self, device):
        if device.status().state is DeviceState.READY:
            self.drops += 1
            Image.fromarray(FINGERS.image(2, 0)).save(self.folder / f"card_{self.drops}.png")

    def make_failing_device(self):
        gone = self.folder.parent / "removed"
        gone.mkdir()
        device = FolderDevice(gone)
        gone.rmdir()
        return device


class FakeVideoCapture:
    """Stands in for cv2.VideoCapture: a camera that delivers a fixed BGR frame (or nothing)."""

    def __init__(self, index, *, present=True, frame=None):
        self.index, self.opened = index, present
        self.frame = frame if frame is not None else np.ascontiguousarray(DrawnFaces().image(0, 0)[..., ::-1])

    def isOpened(self):  # noqa: N802 - cv2 API
        return self.opened

    def read(self):
        return (True, self.frame.copy()) if self.opened else (False, None)

    def get(self, prop):
        return {3: self.frame.shape[1], 4: self.frame.shape[0]}.get(prop, 0)

    def getBackendName(self):  # noqa: N802 - cv2 API
        return "FAKE"

    def release(self):
        self.opened = False


class TestOpenCVConformance(DeviceConformance):
    def make_device(self):
        return OpenCVCamera(0, capture_factory=FakeVideoCapture)

    def make_failing_device(self):
        camera = OpenCVCamera(0, capture_factory=FakeVideoCapture)
        camera._handle.opened = False  # the USB cable is pulled after opening
        return camera


@pytest.fixture(scope="module")
def sbi_service():
    devices = [scanner(slap=True, serial="SBI-FP-0001"), SimulatedCamera(serial="SBI-CAM-0001")]
    with SbiSimulator(devices) as service:
        yield service


class TestSbiScannerConformance(DeviceConformance):
    @pytest.fixture(autouse=True)
    def _service(self, sbi_service):
        self.service = sbi_service
        for device in sbi_service.devices.values():
            device.set_faults(not_ready=False)

    def _find(self, kind):
        return next(d for d in discover_sbi(ports=[self.service.port], public_key=self.service.public_key) if d.kind is kind)

    def make_device(self):
        return self._find(DeviceKind.FINGER)

    def make_failing_device(self):
        device = self._find(DeviceKind.FINGER)
        self.service.devices["1"].set_faults(not_ready=True)
        return device


class TestSbiCameraConformance(TestSbiScannerConformance):
    def make_device(self):
        return self._find(DeviceKind.FACE)

    def make_failing_device(self):
        device = self._find(DeviceKind.FACE)
        self.service.devices["2"].set_faults(not_ready=True)
        return device


# ---------------------------------------------------------------------------------------------
# Simulated faults
# ---------------------------------------------------------------------------------------------


def test_fault_not_ready_and_busy_are_typed_and_reported():
    device = scanner(faults=Faults(not_ready=True))
    assert device.status().state is DeviceState.NOT_READY
    with pytest.raises(DeviceNotReady):
        device.capture(1.0, finger_position=2)
    device.set_faults(not_ready=False, busy=True)
    assert device.status().state is DeviceState.BUSY
    with pytest.raises(DeviceBusy):
        device.capture(1.0, finger_position=2)


def test_fault_timeout_waits_for_the_timeout_then_raises():
    device = scanner(faults=Faults(timeout=True))
    started = time.monotonic()
    with pytest.raises(CaptureTimeout):
        device.capture(0.3, finger_position=2)
    assert 0.25 <= time.monotonic() - started < 2.0
    assert isinstance(CaptureTimeout("x"), TimeoutError)


def test_fault_disconnect_after_n_captures_then_reconnect():
    device = scanner(faults=Faults(disconnect_after=2))
    for _ in range(2):
        device.capture(2.0, finger_position=2)
    with pytest.raises(DeviceDisconnected):
        device.capture(2.0, finger_position=2)
    assert device.status().state is DeviceState.FAULT
    with pytest.raises(DeviceDisconnected):  # stays dead
        device.capture(2.0, finger_position=2)
    device.reconnect()
    assert device.status().state is DeviceState.READY
    assert device.capture(2.0, finger_position=2).image.shape == (200, 200)
    assert device.captures == 3


def test_fault_corrupt_frame_then_recovers():
    device = scanner(faults=Faults(corrupt_frames=1))
    with pytest.raises(CorruptFrame):
        device.capture(2.0, finger_position=2)
    assert device.capture(2.0, finger_position=2).image.std() > 10


def test_fault_degraded_quality_scores_lower():
    clean = [scanner().capture(2.0, finger_position=2).quality for _ in range(1)]
    clean += [FINGERS and fingerprint_quality(FINGERS.image(2, k)) for k in (1, 2)]
    degraded_device = scanner(faults=Faults(degrade=0.9), seed=3)
    degraded = [degraded_device.capture(2.0, finger_position=2).quality for _ in range(3)]
    assert np.mean(degraded) < np.mean(clean) - 10, (clean, degraded)


def test_faults_validate_their_values():
    with pytest.raises(ConfigurationError):
        Faults(degrade=1.5)
    with pytest.raises(ConfigurationError):
        Faults(disconnect_after=-1)
    with pytest.raises(ConfigurationError):
        scanner().capture(1.0, finger_position=11)
    with pytest.raises(ConfigurationError):
        scanner().capture_slap(1)  # single-finger scanner


def test_slap_capture_returns_each_finger_of_the_hand():
    results = scanner(slap=True).capture_slap(3, 5.0)
    assert [r.finger_position for r in results] == [6, 1]


def test_concurrent_capture_sees_busy():
    device = scanner(capture_delay=0.4)
    errors = []
    worker = threading.Thread(target=lambda: device.capture(2.0, finger_position=2))
    worker.start()
    time.sleep(0.1)
    assert device.status().state is DeviceState.BUSY
    try:
        device.capture(2.0, finger_position=2)
    except DeviceBusy as exc:
        errors.append(exc)
    worker.join()
    assert len(errors) == 1 and device.status().state is DeviceState.READY


@pytest.mark.parametrize(
    ("frame", "kind"),
    [
        (np.zeros((100, 100), np.uint8), DeviceKind.FINGER),  # blank
        (np.arange(100 * 100, dtype=np.uint16).reshape(100, 100), DeviceKind.FINGER),  # wrong dtype
        (np.random.default_rng(0).integers(0, 255, (100, 100, 3), dtype=np.uint8), DeviceKind.FINGER),  # colour scan
        (np.random.default_rng(0).integers(0, 255, (10, 100), dtype=np.uint8), DeviceKind.FACE),  # truncated
        (b"\x89PNG", DeviceKind.FACE),
    ],
)
def test_check_frame_rejects_unusable_frames(frame, kind):
    with pytest.raises(CorruptFrame):
        check_frame(frame, kind, "test")


@pytest.mark.parametrize("bad", [0, -2, float("inf"), 301, True, None])
def test_check_timeout_rejects(bad):
    with pytest.raises(ConfigurationError):
        check_timeout(bad)


# ---------------------------------------------------------------------------------------------
# Folder and OpenCV specifics
# ---------------------------------------------------------------------------------------------


def test_folder_ignores_existing_files_and_rejects_corrupt_ones(tmp_path):
    Image.fromarray(FINGERS.image(2, 0)).save(tmp_path / "old.png")
    device = FolderDevice(tmp_path, poll_interval=0.01)
    with pytest.raises(CaptureTimeout):
        device.capture(0.2)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    with pytest.raises(CorruptFrame):
        device.capture(1.0)
    (tmp_path / "broken.png").unlink()
    backlog = FolderDevice(tmp_path, include_existing=True, poll_interval=0.01)
    first = backlog.capture(1.0, finger_position=7)
    assert first.finger_position == 7 and first.image.shape == (200, 200) and first.dpi == 500


def test_folder_picks_up_a_file_written_during_the_capture(tmp_path):
    device = FolderDevice(tmp_path, poll_interval=0.02)
    writer = threading.Timer(0.2, lambda: Image.fromarray(FINGERS.image(2, 1)).save(tmp_path / "late.png"))
    writer.start()
    result = device.capture(3.0)
    writer.join()
    np.testing.assert_array_equal(result.image, FINGERS.image(2, 1))


def test_opencv_without_camera_says_no_camera(monkeypatch):
    absent = lambda index: FakeVideoCapture(index, present=False)  # noqa: E731
    with pytest.raises(DeviceUnavailable, match="no camera"):
        OpenCVCamera(0, capture_factory=absent)
    monkeypatch.setattr(OpenCVDriver, "capture_factory", absent)
    with pytest.raises(DeviceUnavailable, match="no camera"):
        OpenCVDriver.check_viable()
    assert OpenCVDriver.discover() == []


def test_opencv_converts_bgr_to_rgb(monkeypatch):
    frame = np.zeros((64, 80, 3), np.uint8)
    frame[..., 0] = 200  # blue in OpenCV's BGR order
    frame[0, 0] = 1
    camera = OpenCVCamera(0, capture_factory=lambda i: FakeVideoCapture(i, frame=frame))
    result = camera.capture(1.0)
    assert result.image[5, 5].tolist() == [0, 0, 200]
    assert camera.info().frame_size == (64, 80)
    monkeypatch.setattr(OpenCVDriver, "capture_factory", lambda i: FakeVideoCapture(i, present=i == 1))
    OpenCVDriver.check_viable()
    assert [d.info().serial for d in OpenCVDriver.discover()] == ["camera-1"]


def test_opencv_real_backend_reports_no_camera_here():
    if Path("/dev/video0").exists():
        pytest.skip("this machine has a video device")
    with pytest.raises(DeviceUnavailable, match="no camera"):
        OpenCVDriver.check_viable()


# ---------------------------------------------------------------------------------------------
# SBI wire format
# ---------------------------------------------------------------------------------------------

DISCOVERY_FIELDS = {"deviceId", "deviceStatus", "certification", "serviceVersion", "deviceSubId", "callbackId", "digitalId", "deviceCode", "specVersion", "purpose", "error"}
DIGITAL_ID_FIELDS = {"serialNo", "make", "model", "type", "deviceSubType", "deviceProvider", "deviceProviderId", "dateTime"}
DATA_FIELDS = {"digitalId", "bioType", "bioSubType", "deviceCode", "deviceServiceVersion", "purpose", "env", "bioValue", "transactionId", "timestamp", "requestedScore", "qualityScore"}


def rcapture_request(bio: dict, transaction: str = "txn-0001") -> dict:
    return {
        "env": "Developer",
        "purpose": "Registration",
        "specVersion": "1.0.0",
        "timeout": "5000",
        "captureTime": "2026-01-01T00:00:00.000Z",
        "transactionId": transaction,
        "bio": [dict({"type": "Finger", "count": "1", "exception": [], "requestedScore": "40", "deviceId": "1", "deviceSubId": "0", "previousHash": ""}, **bio)],
        "customOpts": {},
    }


def test_sbi_discovery_and_info_use_spec_field_names(sbi_service):
    port = sbi_service.port
    assert 4501 <= port <= 4600
    entries = _call(port, "MOSIPDISC", "/device", {"type": "Biometric Device"}, 2.0)
    assert len(entries) == 2 and all(set(e) == DISCOVERY_FIELDS for e in entries)
    assert [e["deviceStatus"] for e in entries] == ["Ready", "Ready"]
    assert entries[0]["deviceSubId"] == ["1", "2", "3"] and entries[1]["deviceSubId"] == ["0"]
    assert set(jws_payload(entries[0]["digitalId"])) == DIGITAL_ID_FIELDS
    assert [e["deviceCode"] for e in _call(port, "MOSIPDISC", "/device", {"type": "Face"}, 2.0)] == ["SBI-CAM-0001"]
    infos = _call(port, "MOSIPDINFO", "/info", {}, 2.0)
    info = jws_payload(infos[0]["deviceInfo"], sbi_service.public_key)
    assert {"firmware", "env", "digitalId", "deviceStatus"} <= set(info)
    assert jws_payload(info["digitalId"], sbi_service.public_key)["type"] == "Finger"


def test_sbi_rcapture_response_fields_and_hash_chain(sbi_service):
    port = sbi_service.port
    answer = _call(port, "RCAPTURE", "/capture", rcapture_request({"bioSubType": ["Left IndexFinger"], "previousHash": EMPTY_HASH}), 10.0)
    (item,) = answer["biometrics"]
    assert set(item) == {"specVersion", "data", "hash", "error"} and item["error"]["errorCode"] == "0"
    data = jws_payload(item["data"], sbi_service.public_key)
    assert set(data) == DATA_FIELDS and data["bioSubType"] == "Left IndexFinger" and data["transactionId"] == "txn-0001"
    bio_value = _unb64url(data["bioValue"])
    # hash = SHA256(previousHash + SHA256(bioValue)), both as upper-case hex text.
    expected = hashlib.sha256((EMPTY_HASH + hashlib.sha256(bio_value).hexdigest().upper()).encode()).hexdigest().upper()
    assert item["hash"] == expected == chain_hash(EMPTY_HASH, bio_value)
    assert EMPTY_HASH == "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"
    # A slap continues the chain sample by sample.
    answer = _call(port, "RCAPTURE", "/capture", rcapture_request({"count": "4", "bioSubType": [], "deviceSubId": "2", "previousHash": item["hash"]}), 20.0)
    chain = item["hash"]
    subtypes = []
    for sample in answer["biometrics"]:
        data = jws_payload(sample["data"], sbi_service.public_key)
        chain = chain_hash(chain, _unb64url(data["bioValue"]))
        assert sample["hash"] == chain
        subtypes.append(data["bioSubType"])
    assert subtypes == ["Right IndexFinger", "Right MiddleFinger", "Right RingFinger", "Right LittleFinger"]


@pytest.mark.parametrize(
    ("bio", "transaction", "code"),
    [
        ({"bioSubType": ["Left Thumb"]}, "no", "112"),  # transactionId too short
        ({"bioSubType": ["Left Thumb"]}, "bad id!", "112"),
        ({"bioSubType": ["Left Thumb", "Right Thumb"], "count": "2"}, "txn-2", "109"),
        ({"bioSubType": ["Left Thumb"], "deviceId": "9"}, "txn-3", "101"),
    ],
)
def test_sbi_rcapture_errors_use_spec_codes(sbi_service, bio, transaction, code):
    answer = _call(sbi_service.port, "RCAPTURE", "/capture", rcapture_request(bio, transaction), 5.0)
    assert answer["biometrics"][0]["error"]["errorCode"] == code


def test_sbi_client_maps_device_errors_and_keeps_its_chain(sbi_service):
    (device,) = discover_sbi(ports=[sbi_service.port], device_type="Finger", public_key=sbi_service.public_key)
    first = device.capture(5.0, finger_position=8)
    assert first.finger_position == 8 and device.previous_hash != EMPTY_HASH
    simulated = sbi_service.devices["1"]
    for faults, error in [({"busy": True}, DeviceBusy), ({"not_ready": True}, DeviceNotReady), ({"corrupt_frames": 1}, CorruptFrame), ({"disconnect_after": 0}, DeviceDisconnected)]:
        simulated.set_faults(**faults)
        before = device.previous_hash
        with pytest.raises(error):
            device.capture(5.0, finger_position=8)
        assert device.previous_hash == before  # a failed capture does not advance the chain
        simulated.reconnect()
        simulated.set_faults(busy=False, not_ready=False, corrupt_frames=0)
    simulated.set_faults(timeout=True)
    try:
        with pytest.raises(CaptureTimeout):
            device.capture(0.3, finger_position=8)
    finally:
        simulated.set_faults(timeout=False)


def test_sbi_signature_from_another_key_is_rejected(sbi_service):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    stranger = Ed25519PrivateKey.generate().public_key()
    assert discover_sbi(ports=[sbi_service.port], public_key=stranger) == []  # logged and skipped
    (device,) = discover_sbi(ports=[sbi_service.port], device_type="Face", public_key=sbi_service.public_key)
    device.public_key = stranger
    with pytest.raises(CorruptFrame, match="tamper"):
        device.capture(5.0)


def test_sbi_stream_gives_jpeg_frames(sbi_service):
    (device,) = discover_sbi(ports=[sbi_service.port], device_type="Finger")
    frames = list(device.preview(frames=3))
    assert len(frames) == 3 and all(f.dtype == np.uint8 and f.shape == (100, 100) for f in frames)


def test_sbi_service_gone_is_fault_and_disconnected():
    service = SbiSimulator([scanner(serial="SBI-GONE")]).start()
    (device,) = discover_sbi(ports=[service.port])
    service.stop()
    assert device.status().state is DeviceState.FAULT
    with pytest.raises(DeviceDisconnected):
        device.capture(1.0, finger_position=2)


def test_sbi_simulator_validates_port():
    with pytest.raises(ConfigurationError):
        SbiSimulator([scanner()], port=8080).start()


# ---------------------------------------------------------------------------------------------
# Registry and CLI
# ---------------------------------------------------------------------------------------------


def test_builtin_drivers_are_registered_as_entry_points():
    drivers = registry.load_drivers()
    assert {"simulated", "folder", "opencv", "sbi"} <= set(drivers)
    reports = {r.name: r for r in registry.driver_reports()}
    assert reports["simulated"].viable and reports["folder"].viable
    devices = registry.open_devices("simulated", seed=3)
    assert [d.info().kind for d in devices] == [DeviceKind.FINGER, DeviceKind.FACE]


def test_broken_driver_is_logged_and_skipped(monkeypatch, caplog):
    points = [
        EntryPoint("broken", "ektp_biometrics_no_such_module:Driver", registry.ENTRY_POINT_GROUP),
        EntryPoint("not-a-driver", "json:dumps", registry.ENTRY_POINT_GROUP),
        EntryPoint("simulated", "ektp_biometrics.devices.simulated:SimulatedDriver", registry.ENTRY_POINT_GROUP),
    ]
    monkeypatch.setattr(registry, "entry_points", lambda group: [p for p in points if p.group == group])
    with caplog.at_level(logging.WARNING, logger=registry.__name__):
        drivers = registry.load_drivers()
    assert list(drivers) == ["simulated"]
    assert "broken" in caplog.text and "not-a-driver" in caplog.text
    with pytest.raises(DeviceUnavailable, match="simulated"):
        registry.get_driver("broken")


def test_unviable_driver_cannot_be_opened(monkeypatch):
    monkeypatch.setattr(OpenCVDriver, "capture_factory", lambda i: FakeVideoCapture(i, present=False))
    with pytest.raises(DeviceUnavailable, match="no camera"):
        registry.open_devices("opencv")


def test_cli_devices_lists_drivers_with_reasons(capsys, monkeypatch):
    from ektp_biometrics.cli import main

    monkeypatch.setattr(OpenCVDriver, "capture_factory", lambda i: FakeVideoCapture(i, present=False))
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    assert "simulated" in out and "opencv" in out and "unusable: no camera" in out
    assert "simulated:SIM-FP-0001" in out and "Ready" in out


def test_cli_sbi_sim_serves_until_duration(capsys):
    from ektp_biometrics.cli import main

    thread = threading.Thread(target=main, args=(["sbi-sim", "--duration", "1.5"],))
    thread.start()
    try:
        deadline = time.monotonic() + 10
        found = []
        while not found and time.monotonic() < deadline:
            found = discover_sbi(device_type="Face")
            time.sleep(0.1)
        assert found and found[0].info().sub_type == "Full face"
    finally:
        thread.join()
    assert "SBI simulator on http://127.0.0.1:" in capsys.readouterr().out


@pytest.mark.parametrize(
    "name",
    [
        "ektp_biometrics.devices",
        "ektp_biometrics.devices._base",
        "ektp_biometrics.devices.registry",
        "ektp_biometrics.devices.simulated",
        "ektp_biometrics.devices.folder",
        "ektp_biometrics.devices.sbi",
        "ektp_biometrics.devices.manager",
    ],
)
def test_docstring_examples_run(name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


@pytest.mark.realdata
class TestSimulatedCameraYaleConformance(DeviceConformance):
    """The simulated camera replaying the Yale face set (real photos through the whole path)."""

    @pytest.fixture(autouse=True)
    def _faces(self, data_root):
        folder = data_root / "faces" / "yalefaces"
        if not folder.is_dir():
            pytest.skip(f"Yale faces not found at {folder}")
        from ektp_biometrics.devices.simulated import ImageFolderSource

        self.source = ImageFolderSource(folder, mode="rgb")

    def make_device(self):
        return SimulatedCamera(self.source)

    def test_real_faces_score_higher_than_a_drawn_one(self):
        camera = self.make_device()
        real = [camera.capture(5.0).quality for _ in range(4)]
        drawn = SimulatedCamera().capture(5.0).quality
        assert len(self.source.files) > 100  # Yale stores GIFs without a suffix: found by content
        assert min(real) >= 50 and drawn == 0, (real, drawn)


def test_sbi_parallel_capture_answers_busy():
    """The specification: a capture succeeds for one call at a time; a parallel call gets Busy."""
    with SbiSimulator([scanner(serial="SBI-SLOW", capture_delay=0.6)]) as service:
        (first,), (second,) = discover_sbi(ports=[service.port]), discover_sbi(ports=[service.port])
        outcomes = []

        def capture(device):
            try:
                outcomes.append(device.capture(5.0, finger_position=2).device.serial)
            except DeviceBusy:
                outcomes.append("busy")

        workers = [threading.Thread(target=capture, args=(first,))]
        workers[0].start()
        time.sleep(0.2)
        capture(second)
        workers[0].join()
    assert sorted(outcomes) == ["SBI-SLOW", "busy"]


def test_sbi_client_shared_by_two_threads_keeps_one_chain():
    with SbiSimulator([scanner(serial="SBI-SHARED")]) as service:
        (device,) = discover_sbi(ports=[service.port])
        errors = []

        def capture():
            try:
                device.capture(5.0, finger_position=2)
            except DeviceBusy:
                pass  # the service may answer Busy when the second request lands mid-capture
            except Exception as exc:  # anything else (a broken chain) is the bug under test
                errors.append(exc)

        workers = [threading.Thread(target=capture) for _ in range(3)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert errors == []
        assert device.capture(5.0, finger_position=2).device.serial == "SBI-SHARED"


def test_simulated_scanner_replays_an_image_folder_in_name_order(tmp_path):
    from ektp_biometrics.devices.simulated import ImageFolderSource

    frames = [FINGERS.image(2, k) for k in range(2)]
    for k, frame in enumerate(frames):
        Image.fromarray(frame).save(tmp_path / f"{k:02d}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    device = SimulatedScanner(ImageFolderSource(tmp_path))
    replayed = [device.capture(2.0, finger_position=p).image for p in (1, 2, 3)]
    np.testing.assert_array_equal(replayed[0], frames[0])
    np.testing.assert_array_equal(replayed[1], frames[1])
    np.testing.assert_array_equal(replayed[2], frames[0])  # cycles
    with pytest.raises(ConfigurationError, match="does not exist"):
        ImageFolderSource(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigurationError, match="no image files"):
        ImageFolderSource(tmp_path / "empty")
