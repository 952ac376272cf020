"""Conformance tests a device-driver author runs against their own driver.

Subclass :class:`DeviceConformance` in a pytest module and say how to open a device::

    from ektp_biometrics.testing import DeviceConformance

    class TestMyScanner(DeviceConformance):
        def make_device(self):
            return MyScanner(port="/dev/ttyUSB0")

        def make_failing_device(self):          # optional: a device that cannot capture
            return MyScanner(port="/dev/null")

pytest then runs every ``test_*`` method below against it: the protocol is satisfied, ``info()``
is complete, ``status()`` is typed and returns to Ready after a capture, ``capture(timeout)``
returns a valid :class:`~ektp_biometrics.devices.CaptureResult` within the timeout, failures are
typed :class:`~ektp_biometrics.errors.DeviceError`, preview frames (where offered) are images,
slap scanners return one result per finger of the slap, and ``close()`` may be called twice.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import numpy as np
import pytest

from ..devices._base import SLAP_POSITIONS, Camera, CaptureResult, Device, DeviceInfo, DeviceKind, DeviceState, DeviceStatus, FingerprintScanner, PreviewCapable, SlapScanner
from ..errors import ConfigurationError, DeviceError

__all__ = ["DeviceConformance"]


class DeviceConformance:
    """Base class of a driver's conformance tests (pytest collects the subclass, not this class).

    Attributes
    ----------
    capture_timeout : float
        Seconds a capture may take.
    timing_slack : float
        Extra seconds allowed over ``capture_timeout`` (quality scoring runs after the sample arrives).
    finger_position : int
        Finger requested from scanners.
    preview_frames : int
        Preview frames taken when the device streams.
    """

    capture_timeout: float = 10.0
    timing_slack: float = 10.0
    finger_position: int = 2
    preview_frames: int = 2

    # -- hooks for the driver author ------------------------------------------------------------
    def make_device(self) -> Device:
        """Open a fresh, ready device.  Must be overridden."""
        raise NotImplementedError("subclass DeviceConformance and implement make_device()")

    def make_failing_device(self) -> Device | None:
        """A device whose capture fails (disconnected, not ready...); None skips the error test."""
        return None

    def prepare_capture(self, device: Device) -> None:
        """Called just before each capture (e.g. drop a file into a watched folder)."""

    # -- fixtures -----------------------------------------------------------------------------
    @pytest.fixture
    def device(self) -> Iterator[Device]:
        device = self.make_device()
        try:
            yield device
        finally:
            device.close()

    def _capture(self, device: Any) -> CaptureResult:
        self.prepare_capture(device)
        if device.info().kind is DeviceKind.FINGER:
            return device.capture(self.capture_timeout, finger_position=self.finger_position)
        return device.capture(self.capture_timeout)

    # -- the tests ----------------------------------------------------------------------------
    def test_satisfies_protocol(self, device: Device) -> None:
        assert isinstance(device, Device)
        expected = FingerprintScanner if device.info().kind is DeviceKind.FINGER else Camera
        assert isinstance(device, expected), f"a {device.info().kind.value} device must implement {expected.__name__}"

    def test_info_fields(self, device: Device) -> None:
        info = device.info()
        assert isinstance(info, DeviceInfo)
        assert isinstance(info.kind, DeviceKind)
        for name in ("driver", "make", "model", "serial", "firmware", "sub_type"):
            value = getattr(info, name)
            assert isinstance(value, str) and value.strip(), f"info().{name} must be a non-empty string, got {value!r}"
        if info.kind is DeviceKind.FINGER:
            assert isinstance(info.dpi, int) and 250 <= info.dpi <= 1000, f"a scanner states its dpi, got {info.dpi!r}"
            assert info.sub_type in ("Single", "Slap", "Touchless")
        if info.frame_size is not None:
            assert len(info.frame_size) == 2 and all(isinstance(v, int) and v > 0 for v in info.frame_size)
        assert device.info() == info, "info() must be stable"

    def test_status_is_typed_and_ready(self, device: Device) -> None:
        status = device.status()
        assert isinstance(status, DeviceStatus) and isinstance(status.state, DeviceState)
        assert isinstance(status.reason, str)
        assert status.state is DeviceState.READY, f"a freshly opened device should be Ready, got {status}"

    def test_capture_returns_valid_result_within_timeout(self, device: Device) -> None:
        before = datetime.now(timezone.utc)
        started = time.monotonic()
        result = self._capture(device)
        elapsed = time.monotonic() - started
        assert isinstance(result, CaptureResult)
        assert elapsed <= self.capture_timeout + self.timing_slack, f"capture took {elapsed:.1f} s"
        image = result.image
        assert isinstance(image, np.ndarray) and image.dtype == np.uint8
        assert min(image.shape[:2]) >= 32 and int(image.max()) > int(image.min())
        info = device.info()
        assert result.device == info
        if info.kind is DeviceKind.FINGER:
            assert image.ndim == 2 and isinstance(result.dpi, int) and 250 <= result.dpi <= 1000
        else:
            assert image.ndim in (2, 3)
        assert result.timestamp.tzinfo is not None and result.timestamp.utcoffset() == timedelta(0)
        assert before - timedelta(seconds=1) <= result.timestamp <= datetime.now(timezone.utc) + timedelta(seconds=1)
        assert isinstance(result.quality, int) and 0 <= result.quality <= 100

    def test_status_returns_to_ready_after_capture(self, device: Device) -> None:
        self._capture(device)
        assert device.status().state is DeviceState.READY

    def test_invalid_timeout_is_a_configuration_error(self, device: Any) -> None:
        for bad in (0, -1.0, float("nan"), "5"):
            with pytest.raises(ConfigurationError):
                device.capture(bad)

    def test_failures_are_typed(self) -> None:
        failing = self.make_failing_device()
        if failing is None:
            pytest.skip("make_failing_device() not provided")
        try:
            with pytest.raises(DeviceError):
                self._capture(failing)
            # Transient failures (a corrupt frame, a timeout) may leave the device Ready; the status
            # must still answer, typed, without raising.
            assert isinstance(failing.status(), DeviceStatus)
        finally:
            failing.close()

    def test_preview_frames_where_supported(self, device: Device) -> None:
        if not isinstance(device, PreviewCapable):
            pytest.skip("device offers no preview")
        frames = []
        for frame in device.preview():
            frames.append(frame)
            if len(frames) == self.preview_frames:
                break
        assert len(frames) == self.preview_frames
        assert all(isinstance(f, np.ndarray) and f.dtype == np.uint8 and f.ndim in (2, 3) for f in frames)

    def test_slap_where_supported(self, device: Any) -> None:
        if device.info().sub_type != "Slap":
            pytest.skip("device is not a slap scanner")
        assert isinstance(device, SlapScanner)
        self.prepare_capture(device)
        results = device.capture_slap(2, self.capture_timeout)
        assert [r.finger_position for r in results] == list(SLAP_POSITIONS[2])
        assert all(isinstance(r, CaptureResult) and r.image.ndim == 2 and 0 <= r.quality <= 100 for r in results)

    def test_close_is_idempotent_and_final(self, device: Device) -> None:
        device.close()
        device.close()
        assert device.status().state is not DeviceState.READY, "a closed device must not report Ready"
        with pytest.raises(DeviceError):
            self._capture(device)
