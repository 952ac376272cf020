"""Device health, failover, and a capture sequence that survives a dead scanner.

A station keeps enrolling when a device fails: :class:`DeviceManager` polls every device's
status, marks the failing ones, and :meth:`DeviceManager.capture_with_failover` moves to another
device of the same kind.  :class:`CaptureSequence` captures a list of finger positions (or faces);
when no device of the kind is left it pauses with a stated reason, waits for one to come back and
resumes, keeping everything captured so far.  Every event goes to a :class:`SessionLog`.
"""

from __future__ import annotations

import enum
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from ..errors import ConfigurationError, CorruptFrame, DeviceBusy, DeviceDisconnected, DeviceError, DeviceNotReady, DeviceUnavailable
from ._base import SLAP_POSITIONS, CaptureResult, Device, DeviceKind, DeviceState, DeviceStatus, check_timeout, utc_now

__all__ = ["LogEntry", "SessionLog", "DeviceManager", "SequenceState", "CaptureSequence"]

# Errors after which a device is taken out of service and the capture moves to another one.
# CaptureTimeout is not among them: it usually means nobody presented a finger, not a broken device.
_FAILOVER_ERRORS = (DeviceDisconnected, DeviceNotReady, DeviceBusy)


@dataclass(frozen=True)
class LogEntry:
    """One event of a session: when (UTC, ISO 8601), what, on which device, and details."""

    time: str
    event: str
    device: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"time": self.time, "event": self.event, "device": self.device, **self.detail}, sort_keys=True, default=str)


class SessionLog:
    """Structured, thread-safe event log kept in memory and, optionally, appended to a JSON-lines file.

    Examples
    --------
    >>> log = SessionLog()
    >>> _ = log.record("switch", "simulated:A", to="simulated:B")
    >>> [(e.event, e.detail["to"]) for e in log.entries("switch")]
    [('switch', 'simulated:B')]
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._entries: list[LogEntry] = []
        self._lock = threading.Lock()

    def record(self, event: str, device: str | None = None, **detail: Any) -> LogEntry:
        # Details are kept in their JSON form (str keys, lists), so memory, file and records agree.
        detail = json.loads(json.dumps(detail, default=str))
        entry = LogEntry(utc_now().isoformat(timespec="milliseconds"), event, device, detail)
        with self._lock:
            self._entries.append(entry)
            if self.path is not None:
                with self.path.open("a", encoding="utf-8") as handle:
                    handle.write(entry.to_json() + "\n")
        return entry

    def entries(self, event: str | None = None) -> list[LogEntry]:
        """All entries, or those of one event type, in order."""
        with self._lock:
            return [e for e in self._entries if event is None or e.event == event]

    def __len__(self) -> int:
        return len(self._entries)


class DeviceManager:
    """Watches devices, marks failing ones, and captures with failover to a device of the same kind.

    Parameters
    ----------
    devices : iterable of Device
        In order of preference.
    log : SessionLog, optional
        Where events go (a new in-memory log by default).
    corrupt_retries : int
        Corrupt frames tolerated in a row on one device before it counts as failing.

    Events logged: ``device_added``, ``status_changed``, ``device_failed``, ``device_recovered``,
    ``device_selected`` (the first device of a kind), ``switch`` (from one device to another),
    ``corrupt_frame``, ``captured``.
    """

    def __init__(self, devices: Iterable[Device] = (), *, log: SessionLog | None = None, corrupt_retries: int = 1) -> None:
        self.log = log if log is not None else SessionLog()
        self.corrupt_retries = int(corrupt_retries)
        self._devices: list[Device] = []
        self._status: dict[str, DeviceStatus] = {}
        self._failing: dict[str, str] = {}
        self._active: dict[DeviceKind, Device] = {}
        self._lock = threading.RLock()
        self._poller: threading.Thread | None = None
        self._stop = threading.Event()
        for device in devices:
            self.add(device)

    # -- registry --------------------------------------------------------------------------
    def add(self, device: Device) -> None:
        info = device.info()
        with self._lock:
            if any(d.info().device_id == info.device_id for d in self._devices):
                raise ConfigurationError(f"device {info.device_id} is already managed")
            self._devices.append(device)
        self.log.record("device_added", info.device_id, kind=info.kind.value, make=info.make, model=info.model)

    def devices(self, kind: DeviceKind | None = None) -> list[Device]:
        with self._lock:
            return [d for d in self._devices if kind is None or d.info().kind is kind]

    def is_failing(self, device: Device) -> bool:
        return device.info().device_id in self._failing

    def active(self, kind: DeviceKind) -> Device | None:
        """The device captures of ``kind`` currently go to (None before the first capture)."""
        return self._active.get(kind)

    # -- health ----------------------------------------------------------------------------
    def _mark_failing(self, device: Device, reason: str) -> None:
        device_id = device.info().device_id
        with self._lock:
            if device_id in self._failing:
                return
            self._failing[device_id] = reason
        self.log.record("device_failed", device_id, reason=reason)

    def poll(self) -> dict[str, DeviceStatus]:
        """Ask every device its status now; mark faulted or not-ready ones failing, clear recovered ones."""
        seen = {}
        for device in self.devices():
            device_id = device.info().device_id
            try:
                status = device.status()
            except DeviceError as exc:
                status = DeviceStatus(DeviceState.FAULT, str(exc))
            seen[device_id] = status
            with self._lock:
                previous = self._status.get(device_id)
                self._status[device_id] = status
            if previous is None or previous.state is not status.state:
                self.log.record("status_changed", device_id, state=status.state.value, reason=status.reason)
            if status.state in (DeviceState.FAULT, DeviceState.NOT_READY):
                self._mark_failing(device, status.reason or status.state.value)
            elif status.state is DeviceState.READY:
                with self._lock:
                    recovered = self._failing.pop(device_id, None) is not None
                if recovered:
                    self.log.record("device_recovered", device_id)
        return seen

    def start_polling(self, interval: float = 0.5) -> None:
        """Poll in a background thread every ``interval`` seconds until :meth:`stop_polling`."""
        if self._poller is not None:
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(interval):
                self.poll()

        self._poller = threading.Thread(target=loop, name="device-health", daemon=True)
        self._poller.start()

    def stop_polling(self) -> None:
        if self._poller is not None:
            self._stop.set()
            self._poller.join()
            self._poller = None

    def has_usable(self, kind: DeviceKind, *, slap: bool = False) -> bool:
        """True when some device of ``kind`` (a slap scanner, with ``slap=True``) is not marked failing."""
        return any(not self.is_failing(d) and (not slap or d.info().sub_type == "Slap") for d in self.devices(kind))

    # -- capture -----------------------------------------------------------------------------
    def _pick(self, kind: DeviceKind, tried: set[str], slap: bool) -> Device | None:
        active = self._active.get(kind)
        candidates = ([active] if active is not None else []) + [d for d in self.devices(kind) if d is not active]
        for device in candidates:
            device_id = device.info().device_id
            if device_id in tried or self.is_failing(device) or (slap and device.info().sub_type != "Slap"):
                continue
            status = device.status()
            if status.state in (DeviceState.FAULT, DeviceState.NOT_READY):
                self._mark_failing(device, status.reason or status.state.value)
                continue
            return device
        return None

    def _with_failover(self, kind: DeviceKind, call: Callable[[Any], Any], *, slap: bool = False) -> Any:
        tried: set[str] = set()
        corrupt_in_row = 0
        while True:
            device = self._pick(kind, tried, slap)
            if device is None:
                reasons = "; ".join(f"{k}: {v}" for k, v in self._failing.items()) or "none registered"
                what = f"{kind.value} slap" if slap else kind.value
                raise DeviceUnavailable(f"no working {what} device ({reasons}); reconnect one or add another")
            device_id = device.info().device_id
            previous = self._active.get(kind)
            if previous is not device:
                self._active[kind] = device
                if previous is None:
                    self.log.record("device_selected", device_id, kind=kind.value)
                else:
                    self.log.record("switch", previous.info().device_id, to=device_id, kind=kind.value, reason=self._failing.get(previous.info().device_id, ""))
            try:
                return device, call(device)
            except CorruptFrame as exc:
                corrupt_in_row += 1
                self.log.record("corrupt_frame", device_id, reason=str(exc))
                if corrupt_in_row > self.corrupt_retries:
                    self._mark_failing(device, f"{corrupt_in_row} corrupt frames in a row")
                    tried.add(device_id)
                    corrupt_in_row = 0
            except _FAILOVER_ERRORS as exc:
                self._mark_failing(device, f"{type(exc).__name__}: {exc}")
                tried.add(device_id)

    def capture_with_failover(self, kind: DeviceKind, timeout: float = 5.0, **capture_options: Any) -> CaptureResult:
        """Capture on the active device of ``kind``; if it fails, on the next working one.

        Raises
        ------
        DeviceUnavailable
            If every device of ``kind`` is failing (the message lists why).
        CaptureTimeout
            If the device worked but no sample came in time (the subject did not present).
        """
        kind = DeviceKind(kind)
        timeout = check_timeout(timeout)
        device, result = self._with_failover(kind, lambda d: d.capture(timeout, **capture_options))
        self.log.record("captured", device.info().device_id, finger_position=result.finger_position, quality=result.quality)
        return result

    def capture_slap_with_failover(self, slap: int, timeout: float = 5.0) -> list[CaptureResult]:
        """Capture a slap (1 left four, 2 right four, 3 thumbs) on a working slap scanner.

        Raises
        ------
        DeviceUnavailable
            If no slap scanner works (single-finger scanners are not used here; the enrollment
            session falls back to them finger by finger).
        """
        if slap not in SLAP_POSITIONS:
            raise ConfigurationError(f"slap must be 1 (left), 2 (right) or 3 (thumbs), got {slap!r}")
        timeout = check_timeout(timeout)
        device, results = self._with_failover(DeviceKind.FINGER, lambda d: d.capture_slap(slap, timeout), slap=True)
        for result in results:
            self.log.record("captured", device.info().device_id, finger_position=result.finger_position, quality=result.quality, slap=slap)
        return results


class SequenceState(str, enum.Enum):
    """Where a :class:`CaptureSequence` stands."""

    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    DONE = "done"


class CaptureSequence:
    """Capture a list of finger positions (or ``[0]`` for a face) through a manager, pausing while
    no device of the kind works and resuming, without losing a capture, when one returns.

    Parameters
    ----------
    manager : DeviceManager
    kind : DeviceKind
    positions : sequence of int
        ISO finger positions in capture order (``[0]`` for a face).
    timeout : float
        Seconds per capture.
    poll_interval : float
        Seconds between health checks while paused.

    Attributes
    ----------
    state : SequenceState
    reason : str
        Why the sequence is paused (empty otherwise).
    results : dict
        Position -> CaptureResult, in capture order; kept across pauses and device switches.
    """

    def __init__(self, manager: DeviceManager, kind: DeviceKind, positions: Sequence[int], *, timeout: float = 5.0, poll_interval: float = 0.05) -> None:
        if not positions or len(set(positions)) != len(positions):
            raise ConfigurationError(f"positions must be a non-empty list without repeats, got {list(positions)!r}")
        self.manager, self.kind, self.positions = manager, DeviceKind(kind), list(positions)
        self.timeout, self.poll_interval = check_timeout(timeout), float(poll_interval)
        self.state = SequenceState.PENDING
        self.reason = ""
        self.results: dict[int, CaptureResult] = {}
        self._changed = threading.Condition()

    @property
    def pending(self) -> list[int]:
        """Positions not captured yet."""
        return [p for p in self.positions if p not in self.results]

    def _set_state(self, state: SequenceState, reason: str = "") -> None:
        with self._changed:
            self.state, self.reason = state, reason
            self._changed.notify_all()

    def wait_for_state(self, state: SequenceState, timeout: float) -> bool:
        """Block until the sequence reaches ``state`` (for a UI thread or a test); False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: self.state is state, timeout)

    def run(self, *, max_pause: float | None = None) -> dict[int, CaptureResult]:
        """Capture every pending position; returns :attr:`results`.

        Raises
        ------
        DeviceUnavailable
            If paused longer than ``max_pause`` seconds; the sequence stays PAUSED with its results,
            and calling :meth:`run` again resumes it.
        """
        log = self.manager.log
        self._set_state(SequenceState.RUNNING)
        for position in self.pending:
            while True:
                try:
                    options = {"finger_position": position} if self.kind is DeviceKind.FINGER else {}
                    self.results[position] = self.manager.capture_with_failover(self.kind, self.timeout, **options)
                    break
                except DeviceUnavailable as exc:
                    self._set_state(SequenceState.PAUSED, f"waiting for a working {self.kind.value} device before position {position}: {exc}")
                    log.record("paused", None, kind=self.kind.value, position=position, captured=len(self.results), reason=str(exc))
                    started = time.monotonic()
                    while True:
                        self.manager.poll()
                        if self.manager.has_usable(self.kind):
                            break
                        if max_pause is not None and time.monotonic() - started > max_pause:
                            raise DeviceUnavailable(f"{self.reason} (gave up after {max_pause:g} s; run() again to resume)") from exc
                        time.sleep(self.poll_interval)
                    log.record("resumed", None, kind=self.kind.value, position=position, waited_s=round(time.monotonic() - started, 3))
                    self._set_state(SequenceState.RUNNING)
        self._set_state(SequenceState.DONE)
        return self.results
