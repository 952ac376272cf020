"""A simulated fingerprint scanner and face camera, with faults that can be switched on at will.

Fingers come from the synthetic generator (:func:`ektp_biometrics.synth.impressions`) or from an
image folder; faces from an image folder (e.g. ORL or Yale) or from a drawn placeholder.  Faults
(not ready, busy, timeout, disconnect after N captures, corrupt frames, degraded quality) are
changed with :meth:`SimulatedDevice.set_faults`, from any thread, so tests and demos can make a
device die or come back in the middle of a session.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Iterator, Protocol

import cv2
import numpy as np

from ..errors import CaptureTimeout, ConfigurationError, DeviceBusy, DeviceDisconnected, DeviceNotReady
from ._base import (
    SLAP_POSITIONS,
    CaptureResult,
    DeviceInfo,
    DeviceKind,
    DeviceState,
    DeviceStatus,
    check_frame,
    check_timeout,
    face_quality,
    fingerprint_quality,
    is_image_file,
    utc_now,
)

__all__ = [
    "Faults",
    "ImageSource",
    "SyntheticFingers",
    "ImageFolderSource",
    "DrawnFaces",
    "SimulatedDevice",
    "SimulatedScanner",
    "SimulatedCamera",
    "SimulatedDriver",
]


@dataclass(frozen=True)
class Faults:
    """Faults a simulated device shows.

    Attributes
    ----------
    not_ready : bool
        Status Not Ready; capture raises DeviceNotReady.
    busy : bool
        Status Busy; capture raises DeviceBusy.
    timeout : bool
        Capture waits the whole timeout, then raises CaptureTimeout.
    disconnect_after : int or None
        The device dies during the capture after this many successful ones (status Fault, capture
        raises DeviceDisconnected) until :meth:`SimulatedDevice.reconnect`.
    corrupt_frames : int
        The next this-many captures return a blank frame (CorruptFrame).
    degrade : float
        0 (none) .. 1 (heavy): blur and noise added to each frame, lowering its quality.
    """

    not_ready: bool = False
    busy: bool = False
    timeout: bool = False
    disconnect_after: int | None = None
    corrupt_frames: int = 0
    degrade: float = 0.0

    def __post_init__(self) -> None:
        if self.disconnect_after is not None and (not isinstance(self.disconnect_after, int) or self.disconnect_after < 0):
            raise ConfigurationError(f"disconnect_after must be a count >= 0 or None, got {self.disconnect_after!r}")
        if not isinstance(self.corrupt_frames, int) or self.corrupt_frames < 0:
            raise ConfigurationError(f"corrupt_frames must be a count >= 0, got {self.corrupt_frames!r}")
        if not 0.0 <= float(self.degrade) <= 1.0:
            raise ConfigurationError(f"degrade must be in [0, 1], got {self.degrade!r}")


class ImageSource(Protocol):
    """Where a simulated device gets its frames: ``image(finger_position, attempt)``."""

    def image(self, finger_position: int, attempt: int) -> np.ndarray: ...


# Rendered impressions shared by every SyntheticFingers in the process, so two simulated scanners
# in front of the same synthetic person do not render the same finger twice.  Key: (seed, shape,
# noise, finger_id); value: (lock, lazy generator, impressions rendered so far).  One lock per
# finger: rendering takes about a second, and other fingers must not wait for it.
_RENDERED: dict[tuple, tuple[threading.Lock, Iterator, list[np.ndarray]]] = {}
_RENDERED_LOCK = threading.Lock()
# Impressions rendered per finger; later attempts reuse them in turn.
_IMPRESSIONS_PER_FINGER = 4


class SyntheticFingers:
    """The ten fingers of a synthetic person, from :func:`ektp_biometrics.synth.impressions`.

    Finger position ``p`` (ISO 1..10) of subject ``s`` is synthetic finger ``10 * s + p``; attempt
    ``k`` is that finger's impression ``k mod 4``, so retries show a new impression.

    Parameters
    ----------
    seed : int
        Generator seed (same seed, same fingers).
    subject : int
        Which synthetic person (>= 0).
    image_shape : (rows, cols)
        Impression size in pixels at 500 dpi.
    noise : str or float
        As for :func:`~ektp_biometrics.synth.impressions`.
    """

    def __init__(self, seed: int = 0, subject: int = 0, *, image_shape: tuple[int, int] = (300, 260), noise: str | float = "clean") -> None:
        if not isinstance(subject, int) or subject < 0:
            raise ConfigurationError(f"subject must be an int >= 0, got {subject!r}")
        self.seed, self.subject, self.image_shape, self.noise = seed, subject, tuple(image_shape), noise

    def image(self, finger_position: int, attempt: int) -> np.ndarray:
        from ..synth import impressions

        position = finger_position if 1 <= finger_position <= 10 else 1
        finger_id = 10 * self.subject + position
        key = (self.seed, self.image_shape, self.noise, finger_id)
        index = attempt % _IMPRESSIONS_PER_FINGER
        with _RENDERED_LOCK:
            if key not in _RENDERED:
                items = impressions(1, _IMPRESSIONS_PER_FINGER, self.seed, noise=self.noise, image_shape=self.image_shape, first_finger=finger_id)
                _RENDERED[key] = (threading.Lock(), items, [])
            lock, items, rendered = _RENDERED[key]
        with lock:
            while len(rendered) <= index:
                rendered.append(next(items).image)
            return rendered[index]


class ImageFolderSource:
    """Frames read in name order from an image folder, cycling; e.g. ORL faces or scanned prints.

    Parameters
    ----------
    folder : path
        Searched recursively for image files.
    mode : {"grey", "rgb"}
        ``"grey"`` for fingerprints, ``"rgb"`` for faces.
    """

    def __init__(self, folder: str | Path, *, mode: str = "grey") -> None:
        root = Path(folder)
        if not root.is_dir():
            raise ConfigurationError(f"image folder {root} does not exist")
        self.files = sorted(p for p in root.rglob("*") if p.is_file() and is_image_file(p))
        if not self.files:
            raise ConfigurationError(f"no image files (PNG, GIF, BMP, PGM, TIFF, JPEG, WSQ) under {root}")
        self.mode = mode
        self._next = itertools.count()
        self._lock = threading.Lock()

    def image(self, finger_position: int, attempt: int) -> np.ndarray:
        from ..io import read_image

        with self._lock:
            path = self.files[next(self._next) % len(self.files)]
        return read_image(path, mode=self.mode, allow_colour=True)


class DrawnFaces:
    """A drawn placeholder face (grey head, eyes, mouth on a light background), for when no face
    images are at hand; it exercises the capture path, not the face detector."""

    def __init__(self, frame_size: tuple[int, int] = (240, 320), seed: int = 0) -> None:
        self.frame_size = tuple(frame_size)
        self.seed = seed

    def image(self, finger_position: int, attempt: int) -> np.ndarray:
        rows, cols = self.frame_size
        rng = np.random.default_rng([self.seed, attempt])
        frame = np.full((rows, cols, 3), 225, np.uint8)
        centre = (cols // 2 + int(rng.integers(-4, 5)), rows // 2)
        axes = (cols // 7, rows // 3)
        cv2.ellipse(frame, centre, axes, 0, 0, 360, (170, 140, 120), -1)
        for side in (-1, 1):
            cv2.circle(frame, (centre[0] + side * axes[0] // 2, centre[1] - axes[1] // 4), max(2, axes[0] // 8), (40, 30, 30), -1)
        cv2.ellipse(frame, (centre[0], centre[1] + axes[1] // 2), (axes[0] // 3, axes[1] // 10), 0, 0, 180, (90, 40, 40), 2)
        noise = rng.normal(0, 3, frame.shape)
        return np.clip(frame + noise, 0, 255).astype(np.uint8)


def _degrade(image: np.ndarray, level: float, rng: np.random.Generator) -> np.ndarray:
    if level <= 0:
        return image
    sigma = 0.5 + 3.5 * level
    blurred = cv2.GaussianBlur(image, (0, 0), sigma)
    noisy = blurred.astype(np.float32) + rng.normal(0, 40 * level, image.shape).astype(np.float32)
    # Lower contrast around mid-grey, as a dirty platen or a dry finger does.
    noisy = 128 + (noisy - 128) * (1 - 0.6 * level)
    return np.clip(noisy, 0, 255).astype(np.uint8)


class SimulatedDevice:
    """Common behaviour of the simulated scanner and camera: state, faults, capture bookkeeping."""

    kind: ClassVar[DeviceKind]

    def __init__(self, source: ImageSource, *, serial: str, faults: Faults | None = None, capture_delay: float = 0.0, seed: int = 0, frame_size: tuple[int, int] | None = None, dpi: int | None = None, sub_type: str = "Single") -> None:
        self._source = source
        self._faults = faults or Faults()
        self._capture_delay = float(capture_delay)
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._disconnected = False
        self._capturing = False
        self._successes = 0
        self._attempts: dict[int, int] = {}
        self._info = DeviceInfo("simulated", self.kind, "ektp_biometrics", f"Simulated {self.kind.value}", serial, "sim-1.0", dpi, frame_size, sub_type)

    # -- fault control ------------------------------------------------------------------
    @property
    def faults(self) -> Faults:
        return self._faults

    def set_faults(self, **changes: Any) -> None:
        """Change faults from any thread, e.g. ``set_faults(not_ready=True)``."""
        with self._lock:
            self._faults = dataclasses.replace(self._faults, **changes)

    def reconnect(self) -> None:
        """Plug the device back in after a simulated disconnect (clears ``disconnect_after``)."""
        with self._lock:
            self._disconnected = False
            self._faults = dataclasses.replace(self._faults, disconnect_after=None)

    @property
    def captures(self) -> int:
        """Successful captures so far."""
        return self._successes

    # -- the driver interface -------------------------------------------------------------
    def info(self) -> DeviceInfo:
        return self._info

    def status(self) -> DeviceStatus:
        with self._lock:
            f = self._faults
            if self._closed.is_set():
                return DeviceStatus(DeviceState.FAULT, "device closed")
            if self._disconnected:
                return DeviceStatus(DeviceState.FAULT, "device disconnected")
            if f.not_ready:
                return DeviceStatus(DeviceState.NOT_READY, "simulated: sensor not ready")
            if f.busy or self._capturing:
                return DeviceStatus(DeviceState.BUSY, "capture in progress" if self._capturing else "simulated: busy")
            return DeviceStatus.ready()

    def close(self) -> None:
        self._closed.set()

    def _begin(self, timeout: float) -> tuple[Faults, bool]:
        name = self._info.device_id
        with self._lock:
            f = self._faults
            if self._closed.is_set():
                raise DeviceDisconnected(f"{name} is closed; open it again")
            if self._disconnected:
                raise DeviceDisconnected(f"{name} is disconnected; check the cable or use another device")
            if f.not_ready:
                raise DeviceNotReady(f"{name} is not ready; wait for it or use another device")
            if f.busy or self._capturing:
                raise DeviceBusy(f"{name} is busy with another capture; retry shortly")
            if f.disconnect_after is not None and self._successes >= f.disconnect_after:
                self._disconnected = True
                raise DeviceDisconnected(f"{name} disconnected during the capture; check the cable or use another device")
            self._capturing = True
            corrupt = f.corrupt_frames > 0
            if corrupt:
                self._faults = dataclasses.replace(f, corrupt_frames=f.corrupt_frames - 1)
            return f, corrupt

    def _frame(self, finger_position: int, timeout: float) -> tuple[np.ndarray, bool]:
        """Produce one validated frame (runs with the device marked capturing)."""
        f, corrupt = self._begin(timeout)
        try:
            if f.timeout:
                self._closed.wait(timeout)
                raise CaptureTimeout(f"{self._info.device_id}: no sample within {timeout:g} s; present the {'finger' if self.kind is DeviceKind.FINGER else 'face'} again")
            if self._capture_delay:
                if self._closed.wait(min(self._capture_delay, timeout)):
                    raise DeviceDisconnected(f"{self._info.device_id} was closed during the capture")
                if self._capture_delay > timeout:
                    raise CaptureTimeout(f"{self._info.device_id}: no sample within {timeout:g} s")
            attempt = self._attempts.get(finger_position, 0)
            self._attempts[finger_position] = attempt + 1
            image = self._source.image(finger_position, attempt)
            if corrupt:
                image = np.zeros_like(image)
            image = _degrade(image, float(f.degrade), self._rng)
            return check_frame(image, self.kind, self._info.device_id), corrupt
        finally:
            with self._lock:
                self._capturing = False

    def _succeeded(self) -> None:
        with self._lock:
            self._successes += 1

    def preview(self) -> Iterator[np.ndarray]:
        """Live frames at half size, until the device faults or closes."""
        for frame_number in itertools.count():
            status = self.status()
            if status.state is DeviceState.FAULT:
                raise DeviceDisconnected(f"{self._info.device_id}: preview stopped: {status.reason}")
            if status.state is DeviceState.NOT_READY:
                raise DeviceNotReady(f"{self._info.device_id}: {status.reason}")
            image = self._source.image(0, frame_number)
            yield np.ascontiguousarray(image[::2, ::2])


class SimulatedScanner(SimulatedDevice):
    """A simulated single-finger scanner at 500 dpi; with ``slap=True`` also a slap scanner.

    Parameters
    ----------
    source : ImageSource, optional
        Default: :class:`SyntheticFingers` of subject 0, seed 0.
    serial : str
    faults : Faults, optional
    capture_delay : float
        Seconds a capture takes (to exercise timeouts and busy states).
    slap : bool
        Also offer :meth:`capture_slap`.

    Examples
    --------
    >>> scanner = SimulatedScanner(SyntheticFingers(seed=1, image_shape=(200, 200)))
    >>> scanner.status().state.value
    'Ready'
    >>> result = scanner.capture(2.0, finger_position=2)      # doctest: +SKIP
    >>> result.image.shape, result.dpi                        # doctest: +SKIP
    ((200, 200), 500)
    >>> scanner.set_faults(not_ready=True)
    >>> scanner.status().reason
    'simulated: sensor not ready'
    """

    kind = DeviceKind.FINGER

    def __init__(self, source: ImageSource | None = None, *, serial: str = "SIM-FP-0001", faults: Faults | None = None, capture_delay: float = 0.0, slap: bool = False, seed: int = 0) -> None:
        super().__init__(source or SyntheticFingers(), serial=serial, faults=faults, capture_delay=capture_delay, seed=seed, dpi=500, sub_type="Slap" if slap else "Single")
        self.slap = slap

    def capture(self, timeout: float = 5.0, *, finger_position: int = 0) -> CaptureResult:
        timeout = check_timeout(timeout)
        if not isinstance(finger_position, int) or not 0 <= finger_position <= 10:
            raise ConfigurationError(f"finger_position must be an ISO code 0..10, got {finger_position!r}")
        image, _ = self._frame(finger_position, timeout)
        result = CaptureResult(image, 500, self._info, utc_now(), fingerprint_quality(image, 500), finger_position)
        self._succeeded()
        return result

    def capture_slap(self, slap: int, timeout: float = 5.0) -> list[CaptureResult]:
        """Capture a slap: ``1`` left four fingers, ``2`` right four, ``3`` both thumbs; one result per finger."""
        if not self.slap:
            raise ConfigurationError(f"{self._info.device_id} is a single-finger scanner; it cannot capture slaps")
        if slap not in SLAP_POSITIONS:
            raise ConfigurationError(f"slap must be 1 (left), 2 (right) or 3 (thumbs), got {slap!r}")
        return [self.capture(timeout, finger_position=p) for p in SLAP_POSITIONS[slap]]


class SimulatedCamera(SimulatedDevice):
    """A simulated face camera.

    Parameters
    ----------
    source : ImageSource, optional
        Default :class:`DrawnFaces`; use ``ImageFolderSource(folder, mode="rgb")`` for real faces.
    """

    kind = DeviceKind.FACE

    def __init__(self, source: ImageSource | None = None, *, serial: str = "SIM-CAM-0001", faults: Faults | None = None, capture_delay: float = 0.0, seed: int = 0) -> None:
        super().__init__(source or DrawnFaces(seed=seed), serial=serial, faults=faults, capture_delay=capture_delay, seed=seed, sub_type="Full face")

    def capture(self, timeout: float = 5.0) -> CaptureResult:
        timeout = check_timeout(timeout)
        image, _ = self._frame(0, timeout)
        result = CaptureResult(image, None, self._info, utc_now(), face_quality(image), 0)
        self._succeeded()
        return result


class SimulatedDriver:
    """Entry point ``simulated``: always viable; discovers one scanner and one camera."""

    name: ClassVar[str] = "simulated"
    kinds: ClassVar[tuple[DeviceKind, ...]] = (DeviceKind.FINGER, DeviceKind.FACE)

    @classmethod
    def check_viable(cls) -> None:
        """The simulator needs nothing beyond this library."""

    @classmethod
    def discover(cls, *, seed: int = 0, subject: int = 0, face_folder: str | Path | None = None, **_: Any) -> list[SimulatedDevice]:
        faces: ImageSource = ImageFolderSource(face_folder, mode="rgb") if face_folder else DrawnFaces(seed=seed)
        return [SimulatedScanner(SyntheticFingers(seed, subject), seed=seed), SimulatedCamera(faces, seed=seed)]
