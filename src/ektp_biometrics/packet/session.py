"""From a guided enrollment session (ektp_biometrics.devices) to a packet's :class:`Enrollment`.

An :class:`~ektp_biometrics.devices.enrollment.EnrollmentRecord` keeps each finger's ISO/IEC
19794-2 template and the SHA-256 of the image it came from, not the image.  A packet carries the
image too, so the station wraps its scanners in a :class:`FrameRecorder`, which remembers every
frame by that digest; :func:`enrollment_from_session` then takes, for each finger of the record,
the frame whose digest the record names, so the image in the packet is provably the one the
template was extracted from.  The templates and the face PNG go into the packet byte for byte,
with the record's SBI hash chain and event log (manifest ``session``, format version 2).
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import PacketError
from .payload import Enrollment, FaceCapture, FingerCapture, session_from_record

__all__ = ["FrameRecorder", "enrollment_from_session"]


class FrameRecorder:
    """Wrap a capture device so every frame it returns is kept, keyed by its SHA-256.

    Everything else (``info``, ``status``, ``close``, ``capture_slap`` ...) is the wrapped
    device's; give the wrapper to the :class:`~ektp_biometrics.devices.DeviceManager` in its place.
    Frames are held in memory until :meth:`clear` (one person's session is a few megabytes).
    """

    def __init__(self, device: Any) -> None:
        self.device = device
        self._frames: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.device, name)

    def _keep(self, result: Any) -> Any:
        image = np.ascontiguousarray(result.image)
        with self._lock:
            self._frames[hashlib.sha256(image.tobytes()).hexdigest()] = image
        return result

    def info(self) -> Any:
        return self.device.info()

    def status(self) -> Any:
        return self.device.status()

    def close(self) -> None:
        self.device.close()

    def capture(self, timeout: float = 5.0, **options: Any) -> Any:
        return self._keep(self.device.capture(timeout, **options))

    def capture_slap(self, slap: int, timeout: float = 5.0) -> Any:
        return [self._keep(result) for result in self.device.capture_slap(slap, timeout)]

    def frame(self, sha256: str) -> np.ndarray | None:
        """The recorded frame with this digest of its raw bytes, or None."""
        with self._lock:
            return self._frames.get(sha256)

    def clear(self) -> None:
        """Forget the frames (call once the person's packet is written)."""
        with self._lock:
            self._frames.clear()


def enrollment_from_session(
    record: Any,
    recorders: FrameRecorder | list[FrameRecorder],
    *,
    operator_id: str,
    demographics: Mapping[str, str],
    face_template: bytes | None = None,
) -> Enrollment:
    """The packet :class:`Enrollment` of a finished enrollment session.

    Parameters
    ----------
    record : EnrollmentRecord
        What :meth:`EnrollmentSession.run` returned; its hash chain must verify.
    recorders : FrameRecorder or list of FrameRecorder
        The wrapped scanners of the session (every one that may have taken a finger).
    operator_id : str
    demographics : mapping of str to str
        The registry's fields for this person.
    face_template : bytes, optional
        The face template (``FaceTemplate.to_bytes()``) of ``record.face``; made with
        :func:`ektp_biometrics.face.extract` from the session's photo when not given.

    Raises
    ------
    PacketError
        ``"chain-mismatch"`` if the record's hash chain does not verify, ``"missing-frame"`` if a
        finger's image was not recorded, ``"bad-template"`` if no face template can be made.

    Examples
    --------
    >>> from ektp_biometrics.devices.enrollment import EnrollmentPolicy, EnrollmentSession
    >>> from ektp_biometrics.devices.manager import DeviceManager
    >>> from ektp_biometrics.devices.simulated import SimulatedScanner, SyntheticFingers
    >>> scanner = FrameRecorder(SimulatedScanner(SyntheticFingers(seed=5, image_shape=(240, 240)), serial="A"))
    >>> policy = EnrollmentPolicy(positions=(2,), capture_face=False, min_finger_quality=0, duplicate_score=0.5)
    >>> record = EnrollmentSession(DeviceManager([scanner]), policy).run()
    >>> enrollment = enrollment_from_session(record, scanner, operator_id="op-7", demographics={"nama": "Siti"})
    >>> [f.position for f in enrollment.fingers], enrollment.fingers[0].template.to_bytes("iso19794-2") == record.fingers[2].template
    ([2], True)
    """
    from ..devices.enrollment import EnrollmentRecord
    from ..fingerprint.template import FingerprintTemplate

    if not isinstance(record, EnrollmentRecord):
        raise PacketError(f"expected an EnrollmentRecord, got {type(record).__name__}", "bad-record")
    if not record.verify():
        raise PacketError(f"session {record.session_id}: its capture hash chain does not verify; a capture was altered", "chain-mismatch")
    recorders = [recorders] if isinstance(recorders, FrameRecorder) else list(recorders)
    if not recorders or not all(isinstance(r, FrameRecorder) for r in recorders):
        raise PacketError("recorders must be the FrameRecorder-wrapped scanners of the session", "missing-frame")
    fingers = []
    for position, capture in record.fingers.items():
        image = next((f for f in (r.frame(capture.image_sha256) for r in recorders) if f is not None), None)
        if image is None:
            raise PacketError(f"the image of finger {position} (sha256 {capture.image_sha256[:12]}...) was not recorded", "missing-frame")
        template = FingerprintTemplate.from_bytes(capture.template, "iso19794-2")
        fingers.append(FingerCapture(position, image, template, quality=int(capture.quality)))
    face = None
    if record.face is not None:
        from PIL import Image

        photo = np.asarray(Image.open(io.BytesIO(record.face.image_png)))
        if face_template is None:
            from .. import face as face_module
            from ..errors import ExtractionError

            try:
                face_template = face_module.extract(photo, quality=int(record.face.quality)).to_bytes()
            except ExtractionError as exc:
                raise PacketError(f"no face template from the session's photo ({exc}); pass face_template", "bad-template") from None
        face = FaceCapture(photo, bytes(face_template), png=bytes(record.face.image_png))
    # The session's chain and log go into the manifest (format 2), so the center can check them.
    return Enrollment(operator_id, dict(demographics), fingers, face, session=session_from_record(record))
