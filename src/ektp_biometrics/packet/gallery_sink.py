"""The gallery as the import sink: each accepted packet becomes one person, deduplicated first.

A packet's person id is its packet id (an enrollment reference number, like MOSIP's RID): it is
unique, known before anything is written, and the same on every retry, so inserting it is
idempotent.  :meth:`GallerySink.insert` (and :meth:`GallerySink.insert_many`, the same for a batch
with one search pass), under an exclusive lock shared by every importer of the gallery,

1. answers ``already_present`` when that person id is in the gallery (an importer was killed after
   the insert and before it marked the packet imported);
2. searches the person against the gallery (:meth:`Gallery.dedup`); candidates at or above the
   policy's threshold hold the record back as a ``duplicate`` for adjudication, with the candidate
   persons and their scores, and nothing is inserted;
3. otherwise inserts the person (one durable SQLite transaction).

The lock makes search-then-insert atomic across importer processes, so two importers cannot each
insert one of a pair of duplicates because neither saw the other.
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ..errors import ConfigurationError, GalleryError, PacketError
from .importer import ALREADY_PRESENT, DUPLICATE, INSERTED, SinkOutcome
from .payload import PersonRecord

__all__ = ["DedupPolicy", "DEFAULT_DEDUP", "GallerySink", "person_from_record", "candidates_of"]

#: Metadata keys a packet's person carries in the gallery (all from the signed manifest).
PERSON_METADATA = ("packet_id", "station_id", "operator_id", "created_utc", "software_version")


@dataclass(frozen=True)
class DedupPolicy:
    """When two enrollments count as the same person, at the center and in the field.

    Attributes
    ----------
    fmr : float or None
        Target false match rate of one person-to-person comparison (dimensionless); the gallery
        turns it into a score threshold with the matcher's score-to-FMR table measured on real
        data (docs/gallery.md, docs/matching.md).  1e-4 is the enrollment session's
        same-finger-twice setting (``EnrollmentPolicy.duplicate_fmr``).
    threshold : float or None
        A score threshold on the gallery's fused score scale, used instead of ``fmr`` (a value an
        adjudication team has chosen, or for a matcher without a calibration table).
    candidates : int
        Gallery candidates kept per probe before thresholding (``k`` of :meth:`Gallery.dedup`).

    Examples
    --------
    >>> DedupPolicy().search_arguments()
    {'fmr': 0.0001, 'k': 10}
    >>> DedupPolicy(threshold=0.4).search_arguments()
    {'threshold': 0.4, 'k': 10}
    """

    fmr: float | None = 1e-4
    threshold: float | None = None
    candidates: int = 10

    def __post_init__(self) -> None:
        if self.threshold is not None:
            if isinstance(self.threshold, bool) or not isinstance(self.threshold, (int, float)) or not 0.0 <= self.threshold < float("inf"):
                raise ConfigurationError(f"dedup threshold must be a finite score >= 0, got {self.threshold!r}")
        elif self.fmr is None or isinstance(self.fmr, bool) or not isinstance(self.fmr, (int, float)) or not 0.0 < self.fmr < 1.0:
            raise ConfigurationError(f"dedup fmr must be a false match rate in (0, 1) (or give a threshold), got {self.fmr!r}")
        if isinstance(self.candidates, bool) or not isinstance(self.candidates, int) or self.candidates < 1:
            raise ConfigurationError(f"dedup candidates must be a positive integer, got {self.candidates!r}")

    def search_arguments(self) -> dict[str, Any]:
        """Keyword arguments of :meth:`Gallery.dedup` (the threshold wins over the FMR)."""
        if self.threshold is not None:
            return {"threshold": float(self.threshold), "k": self.candidates}
        return {"fmr": float(self.fmr), "k": self.candidates}  # type: ignore[arg-type]


DEFAULT_DEDUP = DedupPolicy()


def person_from_record(record: PersonRecord) -> Any:
    """The gallery :class:`~ektp_biometrics.gallery.Person` of a validated packet record.

    The person id is the packet id; the fingers are the templates parsed from the packet's
    ISO/IEC 19794-2 records; the face is its template when the packet has one; metadata carries
    the manifest's provenance (packet, station, operator, time, software), not the demographics,
    which belong to the civil registry.
    """
    from ..gallery import Person

    if not isinstance(record, PersonRecord):
        raise PacketError(f"expected a PersonRecord, got {type(record).__name__}", "bad-record")
    face = None
    if record.face_template_bytes is not None:
        from ..face.template import FaceTemplate

        face = FaceTemplate.from_bytes(record.face_template_bytes)
    metadata = {key: str(getattr(record, key)) for key in PERSON_METADATA}
    return Person(record.packet_id, fingers={f.position: f.template for f in record.fingers}, face=face, metadata=metadata)


def candidates_of(pairs: Any) -> tuple[dict[str, Any], ...]:
    """Dedup pairs as plain dictionaries (JSON-ready), in the report's order (best first)."""
    return tuple(
        {
            "person_id": p.candidate_id,
            "source": p.source,
            "score": round(float(p.score), 6),
            "finger_scores": {str(k): round(float(v), 6) for k, v in sorted(p.finger_scores.items())},
            "face_score": None if p.face_score is None else round(float(p.face_score), 6),
        }
        for p in pairs
    )


class GallerySink:
    """A :class:`~ektp_biometrics.packet.PacketSink` that deduplicates and inserts into a gallery.

    Parameters
    ----------
    gallery : Gallery
        An open gallery (:meth:`Gallery.open`); the sink does not close it.
    policy : DedupPolicy
    actor : str
        Who the gallery's audit trail names for the inserts.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> from ektp_biometrics import packet
    >>> from ektp_biometrics.gallery import Gallery
    >>> from ektp_biometrics.fingerprint import FingerprintTemplate, make_minutiae
    >>> rng = np.random.default_rng(3)
    >>> finger = FingerprintTemplate(300, 300, make_minutiae(*rng.uniform(20, 280, (2, 40)), rng.uniform(0, 6.28, 40)))
    >>> station, center = packet.StationKey.generate("st-01"), packet.CenterKey.generate()
    >>> capture = packet.FingerCapture(2, np.full((64, 64), 200, np.uint8), finger, quality=70)
    >>> class Registry:
    ...     def public_key(self, station_id):
    ...         return station.public_bytes()
    >>> def opened(enrollment):
    ...     return packet.open_packet(packet.build_packet(enrollment, station, center.public_bytes())[1], center, Registry())
    >>> first = opened(packet.Enrollment("op-7", {"nama": "Siti"}, [capture]))
    >>> again = opened(packet.Enrollment("op-9", {"nama": "Siti A."}, [capture]))
    >>> with Gallery.open(pathlib.Path(tempfile.mkdtemp()) / "gallery.db") as g:
    ...     sink = GallerySink(g, DedupPolicy(threshold=0.5))
    ...     outcomes = [sink.insert(first).outcome, sink.insert(first).outcome, sink.insert(again)]
    ...     g.ids() == [first.packet_id]
    True
    >>> outcomes[:2], outcomes[2].outcome, outcomes[2].candidates[0]["person_id"] == first.packet_id
    (['inserted', 'already_present'], 'duplicate', True)
    """

    def __init__(self, gallery: Any, policy: DedupPolicy = DEFAULT_DEDUP, *, actor: str = "packet-import") -> None:
        from ..gallery import Gallery

        if not isinstance(gallery, Gallery):
            raise PacketError(f"GallerySink needs an open Gallery, got {type(gallery).__name__}", "bad-sink")
        if not isinstance(policy, DedupPolicy):
            raise ConfigurationError(f"policy must be a DedupPolicy, got {type(policy).__name__}")
        self.gallery, self.policy, self.actor = gallery, policy, actor
        self.lock_path = Path(gallery.path).with_name(Path(gallery.path).name + ".import.lock")

    def insert(self, record: PersonRecord) -> SinkOutcome:
        """Insert the record's person unless it is there already or is a likely duplicate."""
        return self.insert_many([record])[0]

    def insert_many(self, records: Sequence[PersonRecord]) -> list[SinkOutcome]:
        """:meth:`insert` for several records, in order, with one search pass over the gallery.

        The outcome is the same as inserting them one by one: a record is a duplicate when it
        matches an enrolled person or an *earlier record of this batch that was inserted*.
        """
        persons = [person_from_record(record) for record in records]
        if len({p.person_id for p in persons}) != len(persons):
            raise PacketError("a batch holds the same packet twice", "bad-batch")
        with _ExclusiveLock(self.lock_path):
            outcomes: dict[str, SinkOutcome] = {}
            for record, person in zip(records, persons):
                if person.person_id in self.gallery:
                    stored = self.gallery.get(person.person_id)
                    if stored.metadata.get("packet_id") != record.packet_id:
                        raise PacketError(f"gallery person {person.person_id} exists but did not come from this packet", "conflicting-person")
                    outcomes[person.person_id] = SinkOutcome(ALREADY_PRESENT)
            fresh = [p for p in persons if p.person_id not in outcomes]
            report = self.gallery.dedup(fresh, **self.policy.search_arguments()) if fresh else None
            against_gallery: dict[str, list] = {}
            against_batch: dict[str, list] = {}
            for pair in report.pairs if report is not None else []:
                if pair.source == "batch":  # probe_id is the earlier record, candidate_id the later
                    against_batch.setdefault(pair.candidate_id, []).append(pair)
                else:
                    against_gallery.setdefault(pair.probe_id, []).append(pair)
            inserted: set[str] = set()
            for person in fresh:
                pairs = list(against_gallery.get(person.person_id, []))
                for pair in against_batch.get(person.person_id, []):
                    if pair.probe_id in inserted:  # the earlier record is enrolled now: it is the candidate
                        pairs.append(dataclasses.replace(pair, probe_id=person.person_id, candidate_id=pair.probe_id, source="gallery"))
                if pairs:
                    pairs.sort(key=lambda p: (-p.score, p.candidate_id))
                    outcomes[person.person_id] = SinkOutcome(DUPLICATE, candidates_of(pairs))
                    continue
                try:
                    self.gallery.insert(person, by=self.actor)
                except GalleryError as exc:
                    if exc.reason != "exists":  # "exists" cannot happen under the lock unless someone bypassed it
                        raise
                    outcomes[person.person_id] = SinkOutcome(ALREADY_PRESENT)
                    continue
                inserted.add(person.person_id)
                outcomes[person.person_id] = SinkOutcome(INSERTED)
            return [outcomes[p.person_id] for p in persons]

    def release(self, record: PersonRecord, *, by: str, note: str) -> SinkOutcome:
        """Enroll a held duplicate after an adjudicator found it is a different person.

        The person is inserted (audit by ``by``) and every current candidate pair is recorded as a
        ``not-duplicate`` decision (:meth:`Gallery.decide`), so later searches do not flag the pair
        again.  Idempotent: a person already in the gallery is ``already_present``, and the
        decisions are recorded again for any candidate pair still reported (a release killed
        between the insert and the decisions completes on the next call).
        """
        person = person_from_record(record)
        with _ExclusiveLock(self.lock_path):
            present = person.person_id in self.gallery
            pairs = self.gallery.dedup([person], **self.policy.search_arguments()).pairs  # never pairs a person with itself
            if not present:
                self.gallery.insert(person, by=by)
            for pair in pairs:
                self.gallery.decide(person.person_id, pair.candidate_id, "not-duplicate", by=by, note=note)
            return SinkOutcome(ALREADY_PRESENT if present else INSERTED, candidates_of(pairs))


class _ExclusiveLock:
    """``flock`` on a lock file, held for the ``with`` block; released by the kernel if we die."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = -1

    def __enter__(self) -> "_ExclusiveLock":
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
