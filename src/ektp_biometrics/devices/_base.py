"""Types shared by every driver: what a device is, what it says about itself, what it returns."""

from __future__ import annotations

import enum
import math
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Iterator, Protocol, runtime_checkable

import numpy as np

from ..errors import ConfigurationError, CorruptFrame, ExtractionError, ImageError
from ..fingerprint.positions import FINGER_NAMES

__all__ = [
    "DeviceKind",
    "DeviceState",
    "DeviceStatus",
    "DeviceInfo",
    "CaptureResult",
    "Device",
    "FingerprintScanner",
    "SlapScanner",
    "Camera",
    "PreviewCapable",
    "FINGER_NAMES",
    "SLAP_POSITIONS",
    "fingerprint_quality",
    "face_quality",
    "check_frame",
    "check_timeout",
    "utc_now",
    "is_image_file",
]


#: The fingers of each slap, keyed by the SBI ``deviceSubId`` (1 left slap, 2 right slap, 3 thumbs).
SLAP_POSITIONS = {1: (7, 8, 9, 10), 2: (2, 3, 4, 5), 3: (6, 1)}

# Longest timeout a caller may ask for, in seconds (the SBI stream default is 5 minutes).
_MAX_TIMEOUT_S = 300.0


class DeviceKind(str, enum.Enum):
    """What a device captures; the values are the SBI ``type`` names."""

    FINGER = "Finger"
    FACE = "Face"


class DeviceState(str, enum.Enum):
    """Health of a device; the first three values are the SBI ``deviceStatus`` names."""

    READY = "Ready"
    BUSY = "Busy"
    NOT_READY = "Not Ready"
    FAULT = "Fault"


@dataclass(frozen=True)
class DeviceStatus:
    """A device's state and, unless it is ready, why.

    Examples
    --------
    >>> DeviceStatus(DeviceState.NOT_READY, "no finger on the platen").usable
    False
    >>> DeviceStatus.ready().usable
    True
    """

    state: DeviceState
    reason: str = ""

    @property
    def usable(self) -> bool:
        """True when a capture may start now."""
        return self.state is DeviceState.READY

    @classmethod
    def ready(cls) -> "DeviceStatus":
        return cls(DeviceState.READY, "")


@dataclass(frozen=True)
class DeviceInfo:
    """Identity and capabilities of one device.

    Attributes
    ----------
    driver : str
        Entry-point name of the driver that opened it (``"simulated"``, ``"sbi"``, ...).
    kind : DeviceKind
    make, model, serial, firmware : str
    dpi : int or None
        Native resolution in pixels per inch (fingerprint scanners); None for cameras.
    frame_size : (rows, cols) or None
        Size of a captured frame in pixels, when fixed.
    sub_type : str
        SBI ``deviceSubType``: ``"Single"`` or ``"Slap"`` for fingers, ``"Full face"`` for cameras.
    """

    driver: str
    kind: DeviceKind
    make: str
    model: str
    serial: str
    firmware: str
    dpi: int | None = None
    frame_size: tuple[int, int] | None = None
    sub_type: str = "Single"

    @property
    def device_id(self) -> str:
        """A name unique among devices: ``driver:serial``."""
        return f"{self.driver}:{self.serial}"


@dataclass(frozen=True)
class CaptureResult:
    """One captured sample.

    Attributes
    ----------
    image : (M, N) or (M, N, 3) ndarray of uint8
        Grey fingerprint (dark ridges) or RGB face photo.
    dpi : int or None
        Resolution of ``image`` (fingerprints); None for faces.
    device : DeviceInfo
        The device that took it.
    timestamp : datetime
        When it was taken, timezone-aware UTC.
    quality : int
        0..100, computed by this library (:func:`fingerprint_quality`, :func:`face_quality`), never
        taken from the device's own claim.
    finger_position : int
        ISO finger position code requested (0 = unknown or not a finger).
    """

    image: np.ndarray = field(repr=False)
    dpi: int | None
    device: DeviceInfo
    timestamp: datetime
    quality: int
    finger_position: int = 0


@runtime_checkable
class Device(Protocol):
    """What every capture device offers."""

    def info(self) -> DeviceInfo: ...

    def status(self) -> DeviceStatus: ...

    def close(self) -> None: ...


@runtime_checkable
class FingerprintScanner(Device, Protocol):
    """A single-finger scanner.  ``finger_position`` tells the device (and the SBI service) which
    finger is requested; drivers that cannot use it ignore it."""

    def capture(self, timeout: float = 5.0, *, finger_position: int = 0) -> CaptureResult: ...


@runtime_checkable
class SlapScanner(FingerprintScanner, Protocol):
    """A scanner that also captures a slap (four fingers of one hand, or both thumbs)."""

    def capture_slap(self, slap: int, timeout: float = 5.0) -> list[CaptureResult]: ...


@runtime_checkable
class Camera(Device, Protocol):
    """A face camera."""

    def capture(self, timeout: float = 5.0) -> CaptureResult: ...


@runtime_checkable
class PreviewCapable(Protocol):
    """A device that streams preview frames (a live view for the operator)."""

    def preview(self) -> Iterator[np.ndarray]: ...


# First bytes of the containers ektp_biometrics.io reads (PNG, GIF, BMP, PGM/PPM, TIFF, JPEG, WSQ):
# image sets such as Yale store GIFs under names without a suffix, so names cannot be trusted.
_IMAGE_MAGIC = (b"\x89PNG", b"GIF8", b"BM", b"P2", b"P5", b"P3", b"P6", b"II*\x00", b"MM\x00*", b"\xff\xd8", b"\xff\xa0")


def is_image_file(path: os.PathLike[str] | str) -> bool:
    """True when the file starts like an image container ektp_biometrics.io can read."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
    except OSError:
        return False
    return head.startswith(_IMAGE_MAGIC)


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


def check_timeout(timeout: object) -> float:
    """Validate a capture timeout in seconds (0 < timeout <= 300).

    Examples
    --------
    >>> check_timeout(2)
    2.0
    >>> check_timeout(-1)
    Traceback (most recent call last):
    ...
    ektp_biometrics.errors.ConfigurationError: capture timeout must be a number of seconds in (0, 300], got -1
    """
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout) or not 0 < timeout <= _MAX_TIMEOUT_S:
        raise ConfigurationError(f"capture timeout must be a number of seconds in (0, {_MAX_TIMEOUT_S:g}], got {timeout!r}")
    return float(timeout)


def check_frame(frame: object, kind: DeviceKind, source: str) -> np.ndarray:
    """Accept a frame from a device only if it is a usable image; else raise :class:`CorruptFrame`.

    Fingerprint frames must be (M, N) uint8; face frames (M, N) or (M, N, 3) uint8; both at least
    32 pixels on a side and not of one flat value (a dead sensor or a zeroed buffer).

    Examples
    --------
    >>> check_frame(np.zeros((64, 64), np.uint8), DeviceKind.FINGER, "demo")
    Traceback (most recent call last):
    ...
    ektp_biometrics.errors.CorruptFrame: demo returned a blank frame (every pixel 0); re-capture or check the sensor
    """
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8:
        raise CorruptFrame(f"{source} returned {type(frame).__name__} {getattr(frame, 'dtype', '')}, not a uint8 image; re-capture")
    allowed = (2,) if kind is DeviceKind.FINGER else (2, 3)
    if frame.ndim not in allowed or (frame.ndim == 3 and frame.shape[2] != 3):
        raise CorruptFrame(f"{source} returned a frame of shape {frame.shape}, expected {'(M, N)' if kind is DeviceKind.FINGER else '(M, N) or (M, N, 3)'}; re-capture")
    if min(frame.shape[:2]) < 32:
        raise CorruptFrame(f"{source} returned a truncated frame of shape {frame.shape}; re-capture")
    low, high = int(frame.min()), int(frame.max())
    if low == high:
        raise CorruptFrame(f"{source} returned a blank frame (every pixel {low}); re-capture or check the sensor")
    return frame


def fingerprint_quality(image: np.ndarray, dpi: float = 500) -> int:
    """Quality 0..100 of a fingerprint image: the extractor's own score (0 when nothing can be extracted).

    Examples
    --------
    >>> fingerprint_quality(np.full((200, 200), 200, np.uint8))
    0
    """
    from ..fingerprint import extract

    try:
        return int(extract(image, dpi).quality)
    except (ExtractionError, ImageError):
        return 0


def face_quality(image: np.ndarray) -> int:
    """Quality 0..100 of a face photo: the share of judged enrollment-gate measures that pass.

    :func:`ektp_biometrics.face.assess` judges each measure pass/fail; this turns the verdict into
    a score so a session can compare retries.  A photo with no single face scores 0; a photo that
    passes the whole gate scores 100.

    Examples
    --------
    >>> face_quality(np.full((240, 320), 128, np.uint8))
    0
    """
    from ..face import assess

    try:
        verdict = assess(image)
    except ImageError:
        return 0
    if verdict.faces_found != 1:
        return 0
    judged = [m.passed for m in verdict.measures if m.passed is not None]
    return int(round(100 * sum(judged) / len(judged)))
