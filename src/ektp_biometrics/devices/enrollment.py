"""A guided enrollment session: ten fingers and a face, in order, with quality gates, retries,
recorded exceptions, a same-finger-twice check and a hash chain over the captures.

The session drives devices through a :class:`~ektp_biometrics.devices.manager.DeviceManager`, so a
scanner that dies mid-session is replaced by another of the same kind (or the session waits for
one), and everything captured so far is kept.  The result, :class:`EnrollmentRecord`, is a plain
record with an ISO/IEC 19794-2 template per finger position, ready for a gallery or a packet, and
its hash chain lets anyone check later that no capture was altered, dropped or reordered.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import time
import uuid
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from ..errors import CaptureTimeout, ConfigurationError, DeviceUnavailable, ExtractionError, ImageError
from ._base import FINGER_NAMES, SLAP_POSITIONS, CaptureResult, DeviceKind
from .manager import DeviceManager, LogEntry
from .sbi import EMPTY_HASH, chain_hash

__all__ = ["EnrollmentPolicy", "FingerCapture", "FaceCapture", "EnrollmentRecord", "EnrollmentSession", "DEFAULT_POLICY"]


@dataclass(frozen=True)
class EnrollmentPolicy:
    """Tunables of an enrollment session.

    Attributes
    ----------
    positions : tuple of int
        ISO finger positions in capture order (default right thumb .. left little, 1..10).
    capture_face : bool
        Capture a face after the fingers.
    min_finger_quality : int
        Extractor quality (0..100) a finger needs.  40 lets clean synthetic impressions pass at the
        first or second attempt (their measured quality spans about 34..68 at 240 x 240 pixels)
        while frames degraded by a dirty platen (simulated ``degrade=0.9``) fail.
    min_face_quality : int
        Share of passed face-gate measures (0..100, see :func:`~ektp_biometrics.devices.face_quality`);
        100 means the whole ISO/ICAO gate of :func:`ektp_biometrics.face.assess` must pass.
    max_attempts : int
        Captures per position before the best one is kept with a recorded exception (3, as
        registration clients commonly allow before an operator override).
    duplicate_fmr : float
        False-match rate at which two positions are judged to be the same finger; the score comes
        from :func:`ektp_biometrics.fingerprint.match.threshold`.
    duplicate_score : float or None
        A score threshold that overrides ``duplicate_fmr`` (for matchers without a calibration table).
    capture_timeout : float
        Seconds per capture.
    max_pause : float or None
        Seconds to wait for a working device before giving up (None: wait for ever).
    slaps : bool
        Capture four-finger slaps and the two thumbs (right, left, thumbs) on a slap scanner,
        retrying a slap until each of its fingers passes the gate; with no working slap scanner,
        fall back to single-finger captures.
    """

    positions: tuple[int, ...] = tuple(range(1, 11))
    capture_face: bool = True
    min_finger_quality: int = 40
    min_face_quality: int = 100
    max_attempts: int = 3
    duplicate_fmr: float = 1e-4
    duplicate_score: float | None = None
    capture_timeout: float = 5.0
    max_pause: float | None = None
    slaps: bool = False

    def __post_init__(self) -> None:
        if not self.positions or len(set(self.positions)) != len(self.positions) or not all(p in FINGER_NAMES for p in self.positions):
            raise ConfigurationError(f"positions must be distinct ISO finger codes 1..10, got {self.positions!r}")
        for name in ("min_finger_quality", "min_face_quality"):
            if not 0 <= getattr(self, name) <= 100:
                raise ConfigurationError(f"{name} must be in 0..100, got {getattr(self, name)!r}")
        if not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise ConfigurationError(f"max_attempts must be an int >= 1, got {self.max_attempts!r}")
        if not 0 < self.duplicate_fmr < 1:
            raise ConfigurationError(f"duplicate_fmr must be in (0, 1), got {self.duplicate_fmr!r}")


DEFAULT_POLICY = EnrollmentPolicy()


@dataclass(frozen=True)
class FingerCapture:
    """One finger in the record.

    Attributes
    ----------
    position : int
        ISO finger position.
    template : bytes
        ISO/IEC 19794-2:2005 minutiae record.
    quality : int
        Extractor quality 0..100.
    passed_gate : bool
        False when no attempt reached the quality gate and the best one was kept.
    attempts : int
    device : str
        ``driver:serial`` of the device that took it.
    timestamp : str
        ISO 8601 UTC.
    image_sha256 : str
        Digest of the captured image (the image itself is not kept in the record).
    hash : str
        Link of the session's hash chain after this capture.
    """

    position: int
    template: bytes = field(repr=False)
    quality: int
    passed_gate: bool
    attempts: int
    device: str
    timestamp: str
    image_sha256: str
    hash: str


@dataclass(frozen=True)
class FaceCapture:
    """The face in the record: the photo (PNG bytes, as ISO/IEC 19794-5 keeps an image) and its quality."""

    image_png: bytes = field(repr=False)
    quality: int
    passed_gate: bool
    attempts: int
    device: str
    timestamp: str
    hash: str


@dataclass(frozen=True)
class EnrollmentRecord:
    """The outcome of a session: what was captured, what was not and why, and proof of integrity.

    Attributes
    ----------
    session_id : str
    fingers : dict
        ISO position -> :class:`FingerCapture`, in capture order.
    face : FaceCapture or None
    exceptions : dict
        ISO position (or ``"face"``) -> reason: missing or injured fingers declared by the operator,
        fingers that never passed the gate, fingers rejected as a duplicate of another position.
    log : tuple of LogEntry
        The session's events (device switches, pauses, retries ...).
    final_hash : str
        Last link of the hash chain.
    """

    session_id: str
    fingers: dict[int, FingerCapture]
    face: FaceCapture | None
    exceptions: dict[int | str, str]
    log: tuple[LogEntry, ...] = field(repr=False)
    final_hash: str

    def templates(self) -> dict[int, bytes]:
        """ISO/IEC 19794-2 templates per finger position (for a gallery or a packet)."""
        return {p: f.template for p, f in self.fingers.items()}

    def to_dict(self) -> dict:
        """A JSON-ready form (bytes as base64) for an offline packet or an audit file; see :meth:`from_dict`."""
        import base64

        def b64(data: bytes) -> str:
            return base64.b64encode(data).decode("ascii")

        return {
            "format": "ektp-enrollment-record/1",
            "session_id": self.session_id,
            "fingers": [dict(dataclasses.asdict(f), template=b64(f.template)) for f in self.fingers.values()],
            "face": None if self.face is None else dict(dataclasses.asdict(self.face), image_png=b64(self.face.image_png)),
            "exceptions": {str(k): v for k, v in self.exceptions.items()},
            "log": [{"time": e.time, "event": e.event, "device": e.device, "detail": e.detail} for e in self.log],
            "final_hash": self.final_hash,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "EnrollmentRecord":
        """Rebuild a record from :meth:`to_dict` output.

        Raises
        ------
        TemplateFormatError
            If the data is not an enrollment record of a known format or a field is malformed.
        """
        import base64
        import binascii

        from ..errors import TemplateFormatError

        if not isinstance(data, dict) or data.get("format") != "ektp-enrollment-record/1":
            raise TemplateFormatError(f"not an enrollment record of format ektp-enrollment-record/1 (got {data.get('format') if isinstance(data, dict) else type(data).__name__!r})")
        try:
            fingers = {}
            for item in data["fingers"]:
                capture = FingerCapture(**dict(item, template=base64.b64decode(item["template"], validate=True)))
                fingers[capture.position] = capture
            face_data = data["face"]
            face = None if face_data is None else FaceCapture(**dict(face_data, image_png=base64.b64decode(face_data["image_png"], validate=True)))
            exceptions = {(int(k) if k.isdigit() else k): v for k, v in data["exceptions"].items()}
            log = tuple(LogEntry(e["time"], e["event"], e["device"], dict(e["detail"])) for e in data["log"])
            return cls(str(data["session_id"]), fingers, face, exceptions, log, str(data["final_hash"]))
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise TemplateFormatError(f"enrollment record is malformed: {type(exc).__name__}: {exc}") from exc

    def verify(self) -> bool:
        """Recompute the hash chain from the record; False if any capture was altered, dropped or reordered.

        The face link covers the stored PNG; finger links cover the stored templates.
        """
        link = EMPTY_HASH
        for capture in self.fingers.values():
            link = chain_hash(link, capture.template)
            if link != capture.hash:
                return False
        if self.face is not None:
            link = chain_hash(link, self.face.image_png)
            if link != self.face.hash:
                return False
        return link == self.final_hash


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


class EnrollmentSession:
    """Guide one person's enrollment through the devices of a manager.

    Parameters
    ----------
    manager : DeviceManager
        Holds the scanners and cameras (its log becomes the session log).
    policy : EnrollmentPolicy
    missing : mapping, optional
        Position -> reason for fingers that cannot be captured (amputated, bandaged ...); they are
        skipped and recorded as exceptions.
    """

    def __init__(self, manager: DeviceManager, policy: EnrollmentPolicy = DEFAULT_POLICY, *, missing: Mapping[int, str] | None = None) -> None:
        self.manager, self.policy = manager, policy
        self.missing = dict(missing or {})
        unknown = set(self.missing) - set(FINGER_NAMES)
        if unknown:
            raise ConfigurationError(f"missing fingers must be ISO positions 1..10, got {sorted(unknown)}")
        self.session_id = uuid.uuid4().hex
        self.log = manager.log
        self._duplicate_score = self._resolve_duplicate_score()

    def _resolve_duplicate_score(self) -> float:
        if self.policy.duplicate_score is not None:
            return float(self.policy.duplicate_score)
        from ..fingerprint.match import threshold

        try:
            return float(threshold(self.policy.duplicate_fmr))
        except ImportError as exc:  # the matcher's calibration table is not built in this install
            raise ConfigurationError(f"the matcher has no score-to-FMR table here ({exc}); set EnrollmentPolicy.duplicate_score") from exc

    def _wait_for(self, kind: DeviceKind, reason: str, *, slap: bool = False) -> None:
        """Pause (logged) until a device of ``kind`` works again, or give up after ``max_pause``."""
        self.log.record("paused", None, session=self.session_id, kind=kind.value, reason=reason)
        started = time.monotonic()
        while True:
            self.manager.poll()
            if self.manager.has_usable(kind) or (slap and self.manager.has_usable(kind, slap=True)):
                break
            if self.policy.max_pause is not None and time.monotonic() - started > self.policy.max_pause:
                raise DeviceUnavailable(f"{reason} (no device came back within {self.policy.max_pause:g} s)")
            time.sleep(0.05)
        self.log.record("resumed", None, session=self.session_id, kind=kind.value, waited_s=round(time.monotonic() - started, 3))

    def _capture(self, kind: DeviceKind, **options: object) -> CaptureResult:
        """One capture through the manager, waiting (and logging it) while no device of the kind works."""
        while True:
            try:
                return self.manager.capture_with_failover(kind, self.policy.capture_timeout, **options)
            except DeviceUnavailable as exc:
                self._wait_for(kind, str(exc))

    def _duplicate_of(self, template: object, accepted: dict[int, object]) -> tuple[int, float] | None:
        from ..fingerprint.match import match

        for position, other in accepted.items():
            score = match(template, other)
            if score >= self._duplicate_score:
                return position, score
        return None

    def _evaluate(self, result: CaptureResult, position: int, attempt: int, accepted: dict[int, object]) -> tuple[object | None, tuple[int, float] | None]:
        """Extract the template of one capture and check it is not a finger already accepted."""
        from ..fingerprint import extract

        try:
            template = extract(result.image, result.dpi or 500, finger_position=position)
        except (ExtractionError, ImageError) as exc:
            self.log.record("quality_rejected", result.device.device_id, position=position, attempt=attempt, quality=0, reason=str(exc))
            return None, None
        duplicate = self._duplicate_of(template, accepted)
        if duplicate is not None:
            self.log.record("duplicate_finger", result.device.device_id, position=position, attempt=attempt, same_as=duplicate[0], score=round(duplicate[1], 4))
            return None, duplicate
        if template.quality < self.policy.min_finger_quality:
            self.log.record("quality_rejected", result.device.device_id, position=position, attempt=attempt, quality=int(template.quality), needs=self.policy.min_finger_quality)
        return template, None

    def _singles(self, positions: list[int], accepted: dict[int, object], best: dict[int, tuple], duplicates: dict[int, tuple[int, float]]) -> None:
        """Capture ``positions`` one finger at a time, keeping the best attempt of each."""
        p = self.policy
        for position in positions:
            for attempt in range(1, p.max_attempts + 1):
                try:
                    result = self._capture(DeviceKind.FINGER, finger_position=position)
                except CaptureTimeout as exc:
                    self.log.record("attempt_failed", None, position=position, attempt=attempt, reason=str(exc))
                    continue
                template, duplicate = self._evaluate(result, position, attempt, accepted)
                if duplicate is not None:
                    duplicates[position] = duplicate
                if template is None:
                    continue
                if position not in best or template.quality > best[position][0]:
                    best[position] = (int(template.quality), template, result, attempt)
                if template.quality >= p.min_finger_quality:
                    break
            if position in best:
                accepted[position] = best[position][1]

    def _slap(self, slap: int, positions: list[int], accepted: dict[int, object], best: dict[int, tuple], duplicates: dict[int, tuple[int, float]]) -> None:
        """Capture one slap, retrying the whole slap until each of its fingers passes the gate;
        with no working slap scanner, fall back to single-finger captures."""
        p = self.policy
        attempt = 0
        while attempt < p.max_attempts:
            try:
                results = self.manager.capture_slap_with_failover(slap, p.capture_timeout)
            except DeviceUnavailable as exc:
                if self.manager.has_usable(DeviceKind.FINGER):
                    done = [q for q in positions if q in best and best[q][0] >= p.min_finger_quality]
                    accepted.update({q: best[q][1] for q in done})
                    self.log.record("slap_fallback", None, slap=slap, reason=str(exc), kept=done)
                    self._singles([q for q in positions if q not in done], accepted, best, duplicates)
                    return
                self._wait_for(DeviceKind.FINGER, str(exc), slap=True)
                continue  # waiting for a device is not an attempt
            except CaptureTimeout as exc:
                attempt += 1
                self.log.record("attempt_failed", None, slap=slap, attempt=attempt, reason=str(exc))
                continue
            attempt += 1
            others = {q: t for q, t in accepted.items() if q not in positions}
            for result in results:
                position = result.finger_position
                if position not in positions or (position in best and best[position][0] >= p.min_finger_quality):
                    continue
                template, duplicate = self._evaluate(result, position, attempt, others)
                if duplicate is not None:
                    duplicates[position] = duplicate
                if template is not None and (position not in best or template.quality > best[position][0]):
                    best[position] = (int(template.quality), template, result, attempt)
            if all(q in best and best[q][0] >= p.min_finger_quality for q in positions):
                break
        accepted.update({q: best[q][1] for q in positions if q in best})

    def run(self) -> EnrollmentRecord:
        """Capture every position (and the face) and return the record."""
        from ..fingerprint.formats import dumps

        p = self.policy
        log = self.log
        log.record("session_started", None, session=self.session_id, positions=list(p.positions), missing=self.missing, slaps=p.slaps)
        accepted: dict[int, object] = {}
        best: dict[int, tuple] = {}
        duplicates: dict[int, tuple[int, float]] = {}
        exceptions: dict[int | str, str] = {}
        for position in p.positions:
            if position in self.missing:
                exceptions[position] = self.missing[position]
                log.record("finger_exception", None, position=position, reason=self.missing[position])
        wanted = [q for q in p.positions if q not in self.missing]
        if p.slaps:
            for slap in (2, 1, 3):  # right four, left four, thumbs: the usual registration order
                group = [q for q in SLAP_POSITIONS[slap] if q in wanted]
                if group:
                    self._slap(slap, group, accepted, best, duplicates)
        else:
            self._singles(wanted, accepted, best, duplicates)
        fingers: dict[int, FingerCapture] = {}
        link = EMPTY_HASH
        # Chain in the order fingers were first captured, which is the order of the session log.
        order = sorted(best, key=lambda q: best[q][2].timestamp)
        for position in order:
            quality, template, result, attempt = best[position]
            passed = quality >= p.min_finger_quality
            if not passed:
                exceptions[position] = f"quality {quality} below {p.min_finger_quality} after {p.max_attempts} attempts; best kept"
            iso = dumps(template, "iso19794-2")
            link = chain_hash(link, iso)
            fingers[position] = FingerCapture(position, iso, quality, passed, attempt if passed else p.max_attempts, result.device.device_id, result.timestamp.isoformat(), hashlib.sha256(result.image.tobytes()).hexdigest(), link)
            log.record("finger_accepted", result.device.device_id, position=position, quality=quality, passed_gate=passed, hash=link)
        for position in wanted:
            if position not in best:
                duplicate = duplicates.get(position)
                reason = f"same finger as position {duplicate[0]} ({FINGER_NAMES[duplicate[0]]})" if duplicate else f"no usable capture in {p.max_attempts} attempts"
                exceptions[position] = reason
                log.record("finger_exception", None, position=position, reason=reason)
        face = None
        if p.capture_face:
            face, link = self._capture_face(exceptions, link)
        log.record("session_finished", None, session=self.session_id, fingers=len(fingers), exceptions={str(k): v for k, v in exceptions.items()}, final_hash=link)
        return EnrollmentRecord(self.session_id, fingers, face, exceptions, tuple(log.entries()), link)

    def _capture_face(self, exceptions: dict[int | str, str], link: str) -> tuple[FaceCapture | None, str]:
        p = self.policy
        best = None
        for attempt in range(1, p.max_attempts + 1):
            try:
                result = self._capture(DeviceKind.FACE)
            except CaptureTimeout as exc:
                self.log.record("attempt_failed", None, position="face", attempt=attempt, reason=str(exc))
                continue
            if best is None or result.quality > best[0].quality:
                best = (result, attempt)
            if result.quality >= p.min_face_quality:
                break
            self.log.record("quality_rejected", result.device.device_id, position="face", attempt=attempt, quality=result.quality, needs=p.min_face_quality)
        if best is None:
            exceptions["face"] = f"no face capture in {p.max_attempts} attempts"
            return None, link
        result, attempt = best
        passed = result.quality >= p.min_face_quality
        if not passed:
            exceptions["face"] = f"face quality {result.quality} below {p.min_face_quality} after {p.max_attempts} attempts; best kept"
        png = _png(result.image)
        link = chain_hash(link, png)
        self.log.record("face_accepted", result.device.device_id, quality=result.quality, passed_gate=passed, hash=link)
        return FaceCapture(png, result.quality, passed, attempt if passed else p.max_attempts, result.device.device_id, result.timestamp.isoformat(), link), link
