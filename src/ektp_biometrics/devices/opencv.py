"""The ``opencv`` driver: a face camera through ``cv2.VideoCapture`` (USB webcams, V4L2, DirectShow).

The ``VideoCapture`` class is injected (``capture_factory``) so the driver can be tested without a
camera, and so a station can pass a configured backend.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, ClassVar, Iterator

import numpy as np

from ..errors import CaptureTimeout, ConfigurationError, DeviceBusy, DeviceDisconnected, DeviceUnavailable
from ._base import CaptureResult, DeviceInfo, DeviceKind, DeviceState, DeviceStatus, check_frame, check_timeout, face_quality, utc_now

__all__ = ["OpenCVCamera", "OpenCVDriver", "probe_cameras"]

# Camera indexes probed by discovery: a station rarely has more than a few video devices.
_PROBED_INDEXES = range(4)


def _default_factory() -> Callable[..., Any]:
    import cv2

    return cv2.VideoCapture


def probe_cameras(indexes: range = _PROBED_INDEXES, capture_factory: Callable[..., Any] | None = None) -> list[int]:
    """The camera indexes that ``VideoCapture`` can open."""
    quiet = capture_factory is None
    factory = capture_factory or _default_factory()
    if quiet:
        import cv2

        # An absent camera is the expected answer here; OpenCV would print a warning per index.
        previous_level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    found = []
    try:
        for index in indexes:
            handle = factory(index)
            try:
                if handle.isOpened():
                    found.append(index)
            finally:
                handle.release()
    finally:
        if quiet:
            cv2.utils.logging.setLogLevel(previous_level)
    return found


class OpenCVCamera:
    """One camera opened with ``cv2.VideoCapture(index)``.

    Parameters
    ----------
    index : int
        Camera index.
    capture_factory : callable, optional
        Builds the capture object from ``index``; default ``cv2.VideoCapture``.

    Raises
    ------
    DeviceUnavailable
        If the camera cannot be opened.
    """

    def __init__(self, index: int = 0, *, capture_factory: Callable[..., Any] | None = None) -> None:
        if not isinstance(index, int) or index < 0:
            raise ConfigurationError(f"camera index must be an int >= 0, got {index!r}")
        self._handle = (capture_factory or _default_factory())(index)
        if not self._handle.isOpened():
            self._handle.release()
            raise DeviceUnavailable(f"no camera: cv2.VideoCapture({index}) could not open a device; check that a camera is plugged in and not used by another program")
        self._lock = threading.Lock()
        self._closed = False
        rows, cols = int(self._handle.get(4)), int(self._handle.get(3))  # CAP_PROP_FRAME_HEIGHT, CAP_PROP_FRAME_WIDTH
        backend = self._handle.getBackendName() if hasattr(self._handle, "getBackendName") else "unknown"
        self._info = DeviceInfo("opencv", DeviceKind.FACE, "OpenCV", f"VideoCapture ({backend})", f"camera-{index}", "n/a", None, (rows, cols) if rows and cols else None, "Full face")

    def info(self) -> DeviceInfo:
        return self._info

    def status(self) -> DeviceStatus:
        if self._closed:
            return DeviceStatus(DeviceState.FAULT, "device closed")
        if not self._handle.isOpened():
            return DeviceStatus(DeviceState.FAULT, "camera disconnected")
        if self._lock.locked():
            return DeviceStatus(DeviceState.BUSY, "capture in progress")
        return DeviceStatus.ready()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._handle.release()

    def _read(self, deadline: float, timeout: float) -> np.ndarray:
        while True:
            if self._closed or not self._handle.isOpened():
                raise DeviceDisconnected(f"{self._info.device_id} is disconnected or closed; plug it in and open it again")
            ok, frame = self._handle.read()
            if ok and frame is not None:
                return frame
            if time.monotonic() >= deadline:
                raise CaptureTimeout(f"{self._info.device_id} gave no frame within {timeout:g} s; check the camera")
            time.sleep(0.02)

    def capture(self, timeout: float = 5.0) -> CaptureResult:
        timeout = check_timeout(timeout)
        if not self._lock.acquire(blocking=False):
            raise DeviceBusy(f"{self._info.device_id} is busy with another capture")
        try:
            frame = self._read(time.monotonic() + timeout, timeout)
        finally:
            self._lock.release()
        frame = check_frame(frame, DeviceKind.FACE, self._info.device_id)
        rgb = np.ascontiguousarray(frame[..., ::-1]) if frame.ndim == 3 else frame  # OpenCV delivers BGR
        return CaptureResult(rgb, None, self._info, utc_now(), face_quality(rgb), 0)

    def preview(self) -> Iterator[np.ndarray]:
        """Live RGB frames until the camera fails or closes."""
        while True:
            frame = check_frame(self._read(time.monotonic() + 5.0, 5.0), DeviceKind.FACE, self._info.device_id)
            yield np.ascontiguousarray(frame[..., ::-1]) if frame.ndim == 3 else frame


class OpenCVDriver:
    """Entry point ``opencv``: viable when a camera opens; else says "no camera"."""

    name: ClassVar[str] = "opencv"
    kinds: ClassVar[tuple[DeviceKind, ...]] = (DeviceKind.FACE,)
    #: Replaced in tests (dependency injection); None means cv2.VideoCapture.
    capture_factory: ClassVar[Callable[..., Any] | None] = None

    @classmethod
    def check_viable(cls) -> None:
        try:
            _default_factory()
        except ImportError as exc:
            raise DeviceUnavailable(f"the opencv driver needs OpenCV: pip install opencv-python-headless ({exc})") from exc
        if not probe_cameras(capture_factory=cls.capture_factory):
            raise DeviceUnavailable(f"no camera: cv2.VideoCapture opened none of indexes {_PROBED_INDEXES.start}..{_PROBED_INDEXES.stop - 1}")

    @classmethod
    def discover(cls, **_: Any) -> list[OpenCVCamera]:
        return [OpenCVCamera(i, capture_factory=cls.capture_factory) for i in probe_cameras(capture_factory=cls.capture_factory)]
