"""The ``folder`` driver: images dropped into a directory become captures.

This serves flatbed-scanned ink cards, a vendor tool that saves to disk, or a phone syncing into a
folder.  ``capture(timeout)`` waits for a file that was not there before and whose size has stopped
changing (so a half-written file is not read), reads it, and returns it.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, ClassVar

from ..errors import CaptureTimeout, ConfigurationError, CorruptFrame, DeviceBusy, DeviceDisconnected, DeviceNotReady, ImageError
from ._base import CaptureResult, DeviceInfo, DeviceKind, DeviceState, DeviceStatus, check_frame, check_timeout, face_quality, fingerprint_quality, is_image_file, utc_now

__all__ = ["FolderDevice", "FolderDriver"]

_IMAGE_SUFFIXES = {".png", ".tif", ".tiff", ".bmp", ".pgm", ".ppm", ".jpg", ".jpeg", ".gif", ".wsq"}


class FolderDevice:
    """A directory watched for new image files.

    Parameters
    ----------
    directory : path
        The folder to watch (it must exist).
    kind : DeviceKind
        Fingerprints are read grey, faces RGB.
    dpi : int
        Resolution of dropped fingerprint images (ink cards are commonly scanned at 500).
    include_existing : bool
        Treat files already present as new (process a backlog); default: only new files.
    poll_interval : float
        Seconds between directory scans.

    Examples
    --------
    >>> import tempfile
    >>> device = FolderDevice(tempfile.mkdtemp())
    >>> device.status().state.value
    'Ready'
    >>> device.capture(0.2)
    Traceback (most recent call last):
    ...
    ektp_biometrics.errors.CaptureTimeout: no new image file in the watched folder within 0.2 s; drop a scan there and capture again
    """

    def __init__(self, directory: str | Path, *, kind: DeviceKind = DeviceKind.FINGER, dpi: int = 500, include_existing: bool = False, poll_interval: float = 0.05) -> None:
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise ConfigurationError(f"folder device: {self.directory} is not a directory")
        if not 250 <= dpi <= 1000:
            raise ConfigurationError(f"folder device: dpi must be in 250..1000, got {dpi!r}")
        self.kind, self.dpi, self.poll_interval = DeviceKind(kind), int(dpi), float(poll_interval)
        self._seen: set[Path] = set() if include_existing else set(self._images())
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._info = DeviceInfo("folder", self.kind, "filesystem", "watched folder", str(self.directory.resolve()), "1", self.dpi if self.kind is DeviceKind.FINGER else None, None, "Single" if self.kind is DeviceKind.FINGER else "Full face")

    def _images(self) -> list[Path]:
        try:
            # Files without an image signature yet (still being written, or notes) wait for the next scan.
            return sorted(p for p in self.directory.iterdir() if p.is_file() and (p.suffix.lower() in _IMAGE_SUFFIXES or is_image_file(p)))
        except OSError:
            return []

    def info(self) -> DeviceInfo:
        return self._info

    def status(self) -> DeviceStatus:
        if self._closed.is_set():
            return DeviceStatus(DeviceState.FAULT, "device closed")
        if not self.directory.is_dir():
            return DeviceStatus(DeviceState.FAULT, f"watched folder {self.directory} is gone")
        if self._lock.locked():
            return DeviceStatus(DeviceState.BUSY, "waiting for a file")
        return DeviceStatus.ready()

    def close(self) -> None:
        self._closed.set()

    def _next_file(self, timeout: float) -> Path:
        deadline = time.monotonic() + timeout
        sizes: dict[Path, int] = {}
        while True:
            if self._closed.is_set():
                raise DeviceDisconnected("folder device was closed during the capture")
            if not self.directory.is_dir():
                raise DeviceDisconnected(f"watched folder {self.directory} disappeared; re-create it or mount it again")
            for path in self._images():
                if path in self._seen:
                    continue
                try:
                    size = path.stat().st_size
                except OSError:
                    continue
                # A file is taken once its size is unchanged over one poll (the writer has finished).
                if size > 0 and sizes.get(path) == size:
                    self._seen.add(path)
                    return path
                sizes[path] = size
            if time.monotonic() >= deadline:
                raise CaptureTimeout(f"no new image file in the watched folder within {timeout:g} s; drop a scan there and capture again")
            self._closed.wait(self.poll_interval)

    def capture(self, timeout: float = 5.0, *, finger_position: int = 0) -> CaptureResult:
        from ..io import read_image

        timeout = check_timeout(timeout)
        if self._closed.is_set():
            raise DeviceDisconnected("folder device is closed; open it again")
        if not self.directory.is_dir():
            raise DeviceNotReady(f"watched folder {self.directory} does not exist")
        if not self._lock.acquire(blocking=False):
            raise DeviceBusy("folder device is already waiting for a file")
        try:
            path = self._next_file(timeout)
            try:
                image = read_image(path, mode="grey" if self.kind is DeviceKind.FINGER else "rgb", allow_colour=True)
            except ImageError as exc:
                raise CorruptFrame(f"{path.name} in the watched folder is not a readable image ({exc}); scan it again") from exc
        finally:
            self._lock.release()
        image = check_frame(image, self.kind, f"folder file {path.name}")
        if self.kind is DeviceKind.FINGER:
            return CaptureResult(image, self.dpi, self._info, utc_now(), fingerprint_quality(image, self.dpi), finger_position)
        return CaptureResult(image, None, self._info, utc_now(), face_quality(image), 0)


class FolderDriver:
    """Entry point ``folder``: viable anywhere; ``discover(directory=...)`` opens one watched folder."""

    name: ClassVar[str] = "folder"
    kinds: ClassVar[tuple[DeviceKind, ...]] = (DeviceKind.FINGER, DeviceKind.FACE)

    @classmethod
    def check_viable(cls) -> None:
        """A folder needs only the file system."""

    @classmethod
    def discover(cls, *, directory: str | Path | None = None, kind: DeviceKind | str = DeviceKind.FINGER, **options: Any) -> list[FolderDevice]:
        if directory is None:
            return []  # nothing to watch until the station names a folder
        return [FolderDevice(directory, kind=DeviceKind(kind), **options)]
