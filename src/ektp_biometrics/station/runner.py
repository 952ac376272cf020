"""Run one guided enrollment in a background thread and describe its progress as plain data.

The command line (``ektp-bio enroll``) and the web station (``ektp-bio station``) are both thin
frontends over :class:`EnrollmentRunner`: it builds a :class:`~ektp_biometrics.devices.DeviceManager`
per session, runs an :class:`~ektp_biometrics.devices.EnrollmentSession` in a thread, and turns the
session log into a JSON-ready snapshot (devices, the finger being captured, qualities, retries,
device switches, exceptions, the face quality verdict and the summary).  Every decision (quality
gates, retries, failover, the duplicate-finger check, the hash chain) stays in
:mod:`ektp_biometrics.devices`; this module only watches and reports.
"""

from __future__ import annotations

import enum
import io
import json
import logging
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..devices._base import (
    FINGER_NAMES,
    CaptureResult,
    Device,
    DeviceKind,
    DeviceState,
    PreviewCapable,
)
from ..devices.enrollment import DEFAULT_POLICY, EnrollmentPolicy, EnrollmentRecord
from ..devices.manager import LogEntry
from ..errors import ConfigurationError, DeviceError, EktpError, StationBusy

__all__ = [
    "EnrollmentRunner",
    "RunState",
    "TappedDevice",
    "count_retries",
    "describe_event",
    "face_verdict",
    "finger_label",
    "record_summary",
    "record_to_person",
    "write_record",
]

log = logging.getLogger(__name__)

#: Events shown in a snapshot's ``events`` list (the newest ones; the full log is in the record).
EVENTS_SHOWN = 60


class RunState(str, enum.Enum):
    """Where the station's current session stands."""

    IDLE = "idle"
    RUNNING = "running"
    PAUSED = "paused"
    DONE = "done"
    FAILED = "failed"


def finger_label(position: int) -> str:
    """A person-readable finger name for an ISO position.

    Examples
    --------
    >>> finger_label(2), finger_label(6)
    ('right index finger', 'left thumb')
    """
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", FINGER_NAMES[position]).lower()


class TappedDevice:
    """A device wrapper that keeps the last frame it captured, for a live preview.

    Everything else goes to the wrapped device unchanged, so the manager's failover and the
    session's gates see the device as it is.

    Parameters
    ----------
    device : Device
        Any scanner or camera.
    """

    def __init__(self, device: Device) -> None:
        self.device = device
        self._last: tuple[np.ndarray, float] | None = None
        self._preview: Iterator[np.ndarray] | None = None
        self._lock = threading.Lock()

    def info(self) -> Any:
        return self.device.info()

    def status(self) -> Any:
        return self.device.status()

    def close(self) -> None:
        self.device.close()

    def _keep(self, result: CaptureResult) -> CaptureResult:
        with self._lock:
            self._last = (result.image, time.monotonic())
        return result

    def capture(self, timeout: float = 5.0, **options: Any) -> CaptureResult:
        return self._keep(self.device.capture(timeout, **options))  # type: ignore[attr-defined]

    def capture_slap(self, slap: int, timeout: float = 5.0) -> list[CaptureResult]:
        if not hasattr(self.device, "capture_slap"):
            raise ConfigurationError(f"{self.info().device_id} cannot capture slaps")
        results = self.device.capture_slap(slap, timeout)
        if results:
            self._keep(results[-1])
        return results

    @property
    def last_frame(self) -> np.ndarray | None:
        """The image of the latest capture (None before the first, or after :meth:`forget_last`)."""
        with self._lock:
            return None if self._last is None else self._last[0]

    def forget_last(self) -> None:
        """Drop the kept frame (a new session must not show the previous person)."""
        with self._lock:
            self._last = None

    def preview_frame(self) -> np.ndarray:
        """One frame of the driver's live preview.

        Raises
        ------
        DeviceUnavailable
            If the driver offers no preview.
        DeviceError
            If the device cannot stream now (the subclass says why).
        """
        from ..errors import DeviceUnavailable

        if not isinstance(self.device, PreviewCapable):
            raise DeviceUnavailable(f"{self.info().device_id} offers no live preview")
        with self._lock:
            try:
                if self._preview is None:
                    self._preview = iter(self.device.preview())
                return next(self._preview)
            except (StopIteration, DeviceError):
                self._preview = None  # a stopped stream starts afresh on the next request
                raise DeviceUnavailable(f"{self.info().device_id} preview stopped; it restarts when the device is ready") from None


def _name(position: object) -> str:
    return finger_label(position) if isinstance(position, int) and position in FINGER_NAMES else str(position)


def describe_event(entry: LogEntry) -> tuple[str, str] | None:
    """``(level, text)`` for one session-log entry, or None for bookkeeping not worth showing.

    ``level`` is ``"info"``, ``"warn"`` (retries, switches, pauses, exceptions) or ``"ok"``.

    Examples
    --------
    >>> from ektp_biometrics.devices import SessionLog
    >>> entry = SessionLog().record("switch", "simulated:A", to="simulated:B", kind="Finger", reason="unplugged")
    >>> describe_event(entry)
    ('warn', 'Finger device switched from simulated:A to simulated:B (unplugged)')
    """
    d, device = entry.detail, entry.device
    event = entry.event
    if event == "session_started":
        return "info", f"session {str(d.get('session', ''))[:8]} started"
    if event == "device_selected":
        return "info", f"{d.get('kind')} device {device} selected"
    if event == "captured":
        what = "face" if d.get("finger_position", 0) == 0 else _name(d.get("finger_position"))
        return "info", f"{what}: captured on {device}, quality {d.get('quality')}"
    if event == "quality_rejected":
        needs = f" below {d['needs']}" if "needs" in d else f" ({d.get('reason', '')})"
        return "warn", f"{_name(d.get('position'))}: attempt {d.get('attempt')} quality {d.get('quality')}{needs}"
    if event == "duplicate_finger":
        return "warn", f"{_name(d.get('position'))}: attempt {d.get('attempt')} matches the {_name(d.get('same_as'))} (score {d.get('score')}); same finger twice"
    if event == "attempt_failed":
        return "warn", f"{_name(d.get('position', d.get('slap')))}: attempt {d.get('attempt')} failed: {d.get('reason')}"
    if event == "device_failed":
        return "warn", f"{device} failed: {d.get('reason')}"
    if event == "device_recovered":
        return "ok", f"{device} is ready again"
    if event == "switch":
        return "warn", f"{d.get('kind')} device switched from {device} to {d.get('to')} ({d.get('reason') or 'failed'})"
    if event == "corrupt_frame":
        return "warn", f"{device}: corrupt frame ({d.get('reason')})"
    if event == "paused":
        return "warn", f"paused: {d.get('reason')}"
    if event == "resumed":
        return "ok", f"resumed after {d.get('waited_s')} s"
    if event == "slap_fallback":
        return "warn", f"slap {d.get('slap')}: no slap scanner; capturing finger by finger"
    if event == "finger_exception":
        return "warn", f"{_name(d.get('position'))}: exception: {d.get('reason')}"
    if event == "finger_accepted":
        gate = "" if d.get("passed_gate") else " (below the gate; best attempt kept)"
        return ("ok" if d.get("passed_gate") else "warn"), f"{_name(d.get('position'))}: accepted, quality {d.get('quality')}{gate}"
    if event == "face_accepted":
        gate = "" if d.get("passed_gate") else " (below the gate; best attempt kept)"
        return ("ok" if d.get("passed_gate") else "warn"), f"face: accepted, quality {d.get('quality')}{gate}"
    if event == "session_finished":
        return "ok", f"session finished: {d.get('fingers')} fingers, {len(d.get('exceptions', {}))} exceptions"
    return None


def _decode_png(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB") if image.mode not in ("L", "RGB") else image)


def face_verdict(record: EnrollmentRecord) -> dict[str, Any]:
    """The face quality verdict of a record: ``passed``, the ``reasons`` it failed, every measure.

    Uses :func:`ektp_biometrics.face.assess` on the stored photo; with no face captured, the
    reason is the session's exception.
    """
    from ..face import assess

    if record.face is None:
        return {"passed": False, "reasons": [record.exceptions.get("face", "no face captured")], "measures": [], "quality": None}
    verdict = assess(_decode_png(record.face.image_png))
    return {
        "passed": bool(verdict.passed),
        "reasons": list(verdict.reasons),
        "measures": [{"name": m.name, "text": m.describe(), "passed": m.passed} for m in verdict.measures],
        "quality": record.face.quality,
    }


def count_retries(entries: Sequence[LogEntry]) -> int:
    """Captures beyond the first of each position (fingers and face), timed-out attempts included.

    Examples
    --------
    >>> from ektp_biometrics.devices import SessionLog
    >>> log = SessionLog()
    >>> for position in (2, 2, 7):
    ...     _ = log.record("captured", "simulated:A", finger_position=position, quality=50)
    >>> count_retries(log.entries())
    1
    """
    attempts: dict[object, int] = {}
    for entry in entries:
        if entry.event == "captured":
            key: object = entry.detail.get("finger_position", 0)
        elif entry.event == "attempt_failed":
            position = entry.detail.get("position")
            key = 0 if position == "face" else position if position is not None else ("slap", entry.detail.get("slap"))
        else:
            continue
        attempts[key] = attempts.get(key, 0) + 1
    return sum(n - 1 for n in attempts.values())


def record_summary(record: EnrollmentRecord, verdict: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A JSON-ready summary of a record (no biometric bytes): fingers, exceptions, face, switches, integrity."""
    switches = [e for e in record.log if e.event == "switch"]
    return {
        "session_id": record.session_id,
        "fingers_captured": len(record.fingers),
        "fingers_passed_gate": sum(f.passed_gate for f in record.fingers.values()),
        "fingers": [
            {"position": f.position, "name": finger_label(f.position), "quality": f.quality, "passed_gate": f.passed_gate,
             "attempts": f.attempts, "device": f.device}
            for f in record.fingers.values()
        ],
        "exceptions": {str(k): v for k, v in record.exceptions.items()},
        "face": None if record.face is None else {"quality": record.face.quality, "passed_gate": record.face.passed_gate, "attempts": record.face.attempts, "device": record.face.device},
        "face_verdict": dict(verdict) if verdict is not None else None,
        "switches": [{"from": e.device, "to": e.detail.get("to"), "kind": e.detail.get("kind"), "reason": e.detail.get("reason", "")} for e in switches],
        "retries": count_retries(record.log),
        "final_hash": record.final_hash,
        "verified": record.verify(),
    }


def record_to_person(record: EnrollmentRecord, person_id: str, *, missing: Mapping[int, str] | None = None, station_id: str = "LOCAL-01", face_template: bool = True) -> Any:
    """A gallery :class:`~ektp_biometrics.gallery.Person` from a record.

    Positions without a template become gallery exceptions: the declared reason when it is one of
    the gallery's (``missing``, ``amputated``, ``injured``, ``unusable``), else ``missing`` for
    declared fingers and ``unusable`` for fingers that never gave a capture.  The face template is
    made only from a photo that passed the gate (and skipped when no embedder can run).

    Raises
    ------
    RecordError
        If ``person_id`` is not a valid identifier.
    """
    from ..fingerprint import FingerprintTemplate
    from ..gallery import Person
    from ..gallery.records import FingerException

    missing = dict(missing or {})
    allowed = {e.value for e in FingerException}
    exceptions = {}
    for position in record.exceptions:
        if isinstance(position, int) and position not in record.fingers:
            declared = missing.get(position)
            exceptions[position] = declared if declared in allowed else ("missing" if declared is not None else "unusable")
    fingers = {p: FingerprintTemplate.from_bytes(iso, "iso19794-2") for p, iso in record.templates().items()}
    face = None
    if face_template and record.face is not None and record.face.passed_gate:
        from ..errors import DependencyError, ExtractionError, ImageError
        from ..face import extract

        try:
            face = extract(_decode_png(record.face.image_png), quality=record.face.quality)
        except (ExtractionError, ImageError, DependencyError) as exc:
            log.warning("face template not made for %s: %s", person_id, exc)
    metadata = {"station": station_id, "session": record.session_id, "final_hash": record.final_hash}
    return Person(person_id, fingers=fingers, face=face, exceptions=exceptions, metadata=metadata)


def write_record(record: EnrollmentRecord, folder: str | Path, summary: Mapping[str, Any]) -> list[Path]:
    """Write ``record.json`` (the full record, re-readable with ``EnrollmentRecord.from_dict``),
    ``summary.json``, one ISO/IEC 19794-2 ``.iso`` template per finger and ``face.png``.

    Raises
    ------
    ConfigurationError
        If ``folder`` already holds a ``record.json`` (records are never overwritten).
    """
    from .._files import atomic_write

    folder = Path(folder)
    if (folder / "record.json").exists():
        raise ConfigurationError(f"{folder} already holds a record.json; choose a new --out folder")
    folder.mkdir(parents=True, exist_ok=True)
    written = []

    def put(name: str, data: bytes) -> None:
        atomic_write(folder / name, data, mode=0o600)  # biometric data: owner only
        written.append(folder / name)

    for position, capture in record.fingers.items():
        put(f"finger_{position:02d}_{finger_label(position).replace(' ', '_')}.iso", capture.template)
    if record.face is not None:
        put("face.png", record.face.image_png)
    put("summary.json", (json.dumps(summary, indent=1, sort_keys=True) + "\n").encode())
    put("record.json", (json.dumps(record.to_dict(), indent=1) + "\n").encode())  # last: its presence means complete
    return written


@dataclass
class _Progress:
    """What the log says about one finger position so far."""

    attempts: int = 0
    quality: int | None = None
    best: int | None = None
    device: str | None = None
    status: str = "pending"
    passed: bool | None = None
    note: str = ""


class EnrollmentRunner:
    """Run enrollment sessions on a fixed set of devices, one at a time, in a background thread.

    Parameters
    ----------
    devices : sequence of Device
        Scanners and cameras in order of preference (each kind fails over to the next).
    policy : EnrollmentPolicy
        Gates, retries and positions of every session.
    gallery : path, optional
        Gallery file; a session started with a person id is inserted into it when it finishes.
    station_id : str
        Recorded in the gallery metadata.

    Raises
    ------
    ConfigurationError
        If there is no scanner, or no camera while the policy captures a face, or two devices share
        an id.

    Examples
    --------
    >>> from ektp_biometrics import devices
    >>> runner = EnrollmentRunner([devices.SimulatedScanner()], devices.EnrollmentPolicy(capture_face=False))
    >>> runner.snapshot()["state"], [d["id"] for d in runner.snapshot()["devices"]]
    ('idle', ['simulated:SIM-FP-0001'])
    """

    def __init__(self, devices: Sequence[Device], policy: EnrollmentPolicy = DEFAULT_POLICY, *, gallery: str | Path | None = None, station_id: str = "LOCAL-01") -> None:
        self.devices = [d if isinstance(d, TappedDevice) else TappedDevice(d) for d in devices]
        ids = [d.info().device_id for d in self.devices]
        if len(set(ids)) != len(ids):
            raise ConfigurationError(f"two devices share an id ({', '.join(ids)}); give each simulated device its own serial")
        kinds = [d.info().kind for d in self.devices]
        if DeviceKind.FINGER not in kinds:
            raise ConfigurationError("no fingerprint scanner given; add --scanner (e.g. --scanner simulated)")
        if policy.capture_face and DeviceKind.FACE not in kinds:
            raise ConfigurationError("no camera given while the policy captures a face; add --camera or turn the face off")
        self.policy = policy
        self.gallery = Path(gallery) if gallery is not None else None
        self.station_id = station_id
        self._kinds = dict(zip(ids, kinds))
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._manager: Any = None
        self._session_id: str | None = None
        self._person_id: str | None = None
        self._missing: dict[int, str] = {}
        self._record: EnrollmentRecord | None = None
        self._verdict: dict[str, Any] | None = None
        self._summary: dict[str, Any] | None = None
        self._gallery_result: dict[str, Any] | None = None
        self._error: str | None = None
        self._exception: EktpError | None = None
        self._finished = threading.Event()
        self._finished.set()

    # -- control -------------------------------------------------------------------------
    def device(self, device_id: str) -> TappedDevice:
        """The device with this ``driver:serial`` id.

        Raises
        ------
        ConfigurationError
            If no device has that id.
        """
        for device in self.devices:
            if device.info().device_id == device_id:
                return device
        raise ConfigurationError(f"no device {device_id!r} at this station; devices: {', '.join(self._kinds)}")

    @property
    def busy(self) -> bool:
        return not self._finished.is_set()

    def start(self, person_id: str | None = None, missing: Mapping[int, str] | None = None) -> str:
        """Start a session in a background thread; returns its session id.

        Parameters
        ----------
        person_id : str, optional
            Who is enrolling; needed to insert into the gallery.
        missing : mapping, optional
            ISO position -> reason for fingers that cannot be captured.

        Raises
        ------
        StationBusy
            If a session is still running.
        RecordError, ConfigurationError
            If the person id or the missing fingers are malformed, or a gallery is set and no
            person id is given.
        """
        from ..devices import DeviceManager, EnrollmentSession
        from ..gallery.records import check_person_id

        if person_id is not None:
            person_id = check_person_id(person_id)
        elif self.gallery is not None:
            raise ConfigurationError("this station inserts into a gallery: give the person id")
        with self._lock:
            if self.busy:
                raise StationBusy(f"session {str(self._session_id)[:8]} is still running; wait for its summary, then start the next")
            for device in self.devices:
                device.forget_last()
            manager = DeviceManager(self.devices)
            session = EnrollmentSession(manager, self.policy, missing=missing)
            self._manager, self._session_id, self._person_id = manager, session.session_id, person_id
            self._missing = dict(session.missing)
            self._record = self._verdict = self._summary = self._gallery_result = None
            self._error = self._exception = None
            self._finished.clear()
            self._thread = threading.Thread(target=self._run, args=(session,), name=f"enrollment-{session.session_id[:8]}", daemon=True)
            self._thread.start()
        return session.session_id

    def _run(self, session: Any) -> None:
        try:
            record = session.run()
            verdict = face_verdict(record) if self.policy.capture_face else None
            summary = record_summary(record, verdict)
            with self._lock:
                self._record, self._verdict, self._summary = record, verdict, summary
            if self.gallery is not None and self._person_id is not None:
                result = self._insert(record)
                with self._lock:
                    self._gallery_result = result
        except EktpError as exc:
            with self._lock:
                self._error, self._exception = f"{type(exc).__name__}: {exc}", exc
        except Exception as exc:  # a bug must end the session visibly, not kill the thread silently
            log.exception("enrollment session %s crashed", session.session_id)
            with self._lock:
                self._error = f"internal error ({type(exc).__name__}); see the station log"
                self._exception = EktpError(f"the enrollment session failed: {self._error}")
        finally:
            self._finished.set()

    def _insert(self, record: EnrollmentRecord) -> dict[str, Any]:
        from ..gallery import Gallery

        try:
            person = record_to_person(record, self._person_id, missing=self._missing, station_id=self.station_id)
            with Gallery.open(self.gallery) as gallery:
                gallery.insert(person, by=self.station_id)
                count = gallery.count()
        except EktpError as exc:
            return {"inserted": False, "person_id": self._person_id, "message": str(exc)}
        return {"inserted": True, "person_id": self._person_id, "message": f"inserted into {self.gallery.name}; it holds {count} persons", "face_template": person.face is not None}

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the current session ends; False on timeout."""
        return self._finished.wait(timeout)

    def result(self) -> tuple[EnrollmentRecord, dict[str, Any]]:
        """The finished record and its summary.

        Raises
        ------
        StationBusy
            If the session is still running.
        EktpError
            The session's own error if it failed (e.g. DeviceUnavailable after ``max_pause``), or
            ConfigurationError if no session has run.
        """
        if self.busy:
            raise StationBusy("the session is still running")
        with self._lock:
            if self._exception is not None:
                raise self._exception
            if self._record is None or self._summary is None:
                raise ConfigurationError("no session has run yet; call start() first")
            return self._record, self._summary

    @property
    def gallery_result(self) -> dict[str, Any] | None:
        with self._lock:
            return self._gallery_result

    def new_entries(self, seen: int) -> list[LogEntry]:
        """Log entries of the current session after the first ``seen`` (for a progress printer)."""
        manager = self._manager
        return [] if manager is None else manager.log.entries()[seen:]

    # -- snapshot ------------------------------------------------------------------------
    def _device_rows(self) -> list[dict[str, Any]]:
        manager = self._manager
        rows = []
        for device in self.devices:
            info = device.info()
            try:
                status = device.status()
                state, reason = status.state.value, status.reason
            except DeviceError as exc:
                state, reason = DeviceState.FAULT.value, str(exc)
            rows.append({
                "id": info.device_id, "kind": info.kind.value, "make": info.make, "model": info.model, "serial": info.serial,
                "sub_type": info.sub_type, "state": state, "reason": reason,
                "active": manager is not None and manager.active(info.kind) is device,
                "failing": manager is not None and manager.is_failing(device),
            })
        return rows

    def snapshot(self) -> dict[str, Any]:
        """The station's state as JSON-ready data (what ``GET /api/state`` returns).

        Keys: ``state``, ``reason``, ``session_id``, ``person_id``, ``policy``, ``devices``,
        ``fingers`` (one row per position: status ``pending``/``capturing``/``captured``/
        ``exception``, quality, attempts, passed, device), ``current`` (the capture in progress),
        ``retries``, ``switches``, ``exceptions``, ``face`` (attempts, quality, verdict),
        ``events`` (newest last), ``summary`` and ``gallery`` (after the session).
        """
        with self._lock:
            manager, error, summary = self._manager, self._error, self._summary
            verdict, gallery, person_id, session_id = self._verdict, self._gallery_result, self._person_id, self._session_id
        entries = manager.log.entries() if manager is not None else []
        p = self.policy
        fingers = {q: _Progress() for q in p.positions}
        face = {"status": "pending" if p.capture_face else "off", "attempts": 0, "quality": None, "passed": None, "device": None}
        current: dict[str, Any] | None = None
        switches, exceptions, events = [], {}, []
        paused_reason = None
        for entry in entries:
            d = entry.detail
            event = entry.event
            if event == "captured":
                if self._kinds.get(entry.device or "") is DeviceKind.FACE:
                    face.update(attempts=face["attempts"] + 1, quality=d.get("quality"), device=entry.device, status="capturing")
                    current = {"what": "face", "name": "face", "attempt": face["attempts"], "quality": d.get("quality"), "device": entry.device}
                else:
                    q = d.get("finger_position")
                    if q in fingers:
                        f = fingers[q]
                        f.attempts += 1
                        f.quality, f.device, f.status = d.get("quality"), entry.device, "capturing"
                        f.best = max(f.best or 0, d.get("quality") or 0)
                        current = {"what": "finger", "position": q, "name": finger_label(q), "attempt": f.attempts, "quality": f.quality, "device": entry.device}
            elif event == "attempt_failed" and d.get("position") in fingers:
                fingers[d["position"]].attempts += 1
            elif event in ("quality_rejected", "duplicate_finger") and d.get("position") in fingers:
                fingers[d["position"]].note = describe_event(entry)[1]  # type: ignore[index]
            elif event == "finger_accepted" and d.get("position") in fingers:
                f = fingers[d["position"]]
                f.status, f.quality, f.passed, f.device = "captured", d.get("quality"), bool(d.get("passed_gate")), entry.device
            elif event == "finger_exception" and d.get("position") in fingers:
                fingers[d["position"]].status = "exception"
                fingers[d["position"]].note = d.get("reason", "")
                exceptions[str(d["position"])] = d.get("reason", "")
            elif event == "face_accepted":
                face.update(status="captured", quality=d.get("quality"), passed=bool(d.get("passed_gate")), device=entry.device)
            elif event == "switch":
                switches.append({"from": entry.device, "to": d.get("to"), "kind": d.get("kind"), "reason": d.get("reason", ""), "time": entry.time})
            elif event == "paused":
                paused_reason = d.get("reason", "")
            elif event == "resumed":
                paused_reason = None
            elif event == "session_finished":
                exceptions = dict(d.get("exceptions", {}))
                current = None
            line = describe_event(entry)
            if line is not None:
                events.append({"time": entry.time, "level": line[0], "text": line[1]})
        # A position the session has moved past is captured (its final gate result comes with finger_accepted).
        last_position = current.get("position") if current and current["what"] == "finger" else None
        for q, f in fingers.items():
            if f.status == "capturing" and (q != last_position or current is None or current["what"] == "face"):
                f.status, f.passed = "captured", (f.best or 0) >= p.min_finger_quality
        if face["status"] == "capturing" and summary is not None:
            face["status"] = "captured"
        if summary is not None and "face" in summary.get("exceptions", {}) and face["status"] == "pending":
            face["status"] = "exception"
        if self.busy:
            state = RunState.PAUSED if paused_reason is not None else RunState.RUNNING
        elif error is not None:
            state = RunState.FAILED
        else:
            state = RunState.DONE if summary is not None else RunState.IDLE
        face["verdict"] = verdict
        return {
            "state": state.value,
            "reason": error if state is RunState.FAILED else (paused_reason or ""),
            "session_id": session_id,
            "person_id": person_id,
            "gallery_enabled": self.gallery is not None,
            "policy": {"positions": list(p.positions), "capture_face": p.capture_face, "min_finger_quality": p.min_finger_quality,
                       "min_face_quality": p.min_face_quality, "max_attempts": p.max_attempts},
            "devices": self._device_rows(),
            "fingers": [
                {"position": q, "name": finger_label(q), "status": f.status, "quality": f.quality, "best": f.best, "attempts": f.attempts,
                 "passed": f.passed, "device": f.device, "note": f.note}
                for q, f in fingers.items()
            ],
            "current": current if self.busy else None,
            "retries": count_retries(entries),
            "switches": switches,
            "exceptions": exceptions,
            "face": face,
            "events": events[-EVENTS_SHOWN:],
            "summary": summary,
            "gallery": gallery,
        }
