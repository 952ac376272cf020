"""The station's enrollment journal: statuses mirroring e-KTP's, an audit trail, field dedup, re-send.

A station cannot read its own outbox (packets are encrypted to the center), so it keeps a small
SQLite journal beside it: one row per enrollment with its status, the finger and face templates
(for deduplication in the field; no images, no demographics) and every status change with who,
when and why.

Statuses, after the e-KTP record states of Dukcapil's SIAK (rekam, kirim untuk enrollment,
duplicate record / adjudicate, print ready record, failed enrollment)::

    captured ──export──> sent ──center receipt──> print_ready
       │  ^                │
       │  └─ clear ─┐      ├──center receipt──> duplicate ──receipt──> print_ready | failed
       │            │      └──center receipt──> failed ──resend──> captured
       └─field dedup─> duplicate ──export --include-flagged──> sent

A person flagged in the field (duplicate of someone in the cached district gallery, or of another
enrollment of the same offline batch) stays on the station until an officer clears the flag or
exports it anyway; the center's deduplication is authoritative either way.  The center's answers
come back as a receipts file (:func:`write_receipts` at the center, :meth:`StationJournal.apply_receipts`
at the station), carried on the same flash drive.
"""

from __future__ import annotations

import datetime as _dt
import enum
import json
import os
import sqlite3
import tempfile
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._files import atomic_write
from .._sqlite import connect_wal
from ..errors import PacketError
from .crypto import StationKey
from .gallery_sink import DEFAULT_DEDUP, DedupPolicy, candidates_of
from .importer import import_summary
from .outbox import PACKET_SUFFIX, ExportResult, build_packet, export, write_packet
from .payload import Enrollment, _canonical_uuid, validate_identifier

__all__ = ["TRANSITIONS", "FieldDedupReport", "JournalEntry", "StationJournal", "Status", "StatusChange", "read_receipts", "verify_receipts", "write_receipts"]

RECEIPTS_FORMAT = "ektp-import-receipts"
#: Version 2 adds the center's Ed25519 signature; unsigned version-1 receipts are no longer applied.
RECEIPTS_VERSION = 2


class Status(str, enum.Enum):
    """Where an enrollment stands (the e-KTP record states)."""

    CAPTURED = "captured"  #: recorded at the station, packet in the outbox (rekam)
    SENT = "sent"  #: exported to removable media for the center (kirim untuk enrollment)
    DUPLICATE = "duplicate"  #: likely enrolled already: adjudicate (duplicate record)
    PRINT_READY = "print_ready"  #: enrolled at the center; the card can be printed (print ready record)
    FAILED = "failed"  #: refused by the center or lost; re-send it (failed enrollment)


#: Allowed status changes; anything else is refused (reason ``"bad-transition"``).
TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.CAPTURED: frozenset({Status.SENT, Status.DUPLICATE, Status.FAILED}),
    Status.SENT: frozenset({Status.PRINT_READY, Status.DUPLICATE, Status.FAILED}),
    Status.DUPLICATE: frozenset({Status.CAPTURED, Status.SENT, Status.PRINT_READY, Status.FAILED}),
    Status.FAILED: frozenset({Status.CAPTURED}),
    Status.PRINT_READY: frozenset(),
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS enrollments (
    packet_id TEXT PRIMARY KEY,
    station_id TEXT NOT NULL,
    operator_id TEXT NOT NULL,
    recorded_utc TEXT NOT NULL,
    status TEXT NOT NULL,
    updated_utc TEXT NOT NULL,
    face BLOB
);
CREATE TABLE IF NOT EXISTS fingers (
    packet_id TEXT NOT NULL REFERENCES enrollments(packet_id),
    position INTEGER NOT NULL,
    template BLOB NOT NULL,
    PRIMARY KEY (packet_id, position)
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    packet_id TEXT NOT NULL,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    from_status TEXT,
    to_status TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_by_packet ON audit (packet_id, id);
"""


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class StatusChange:
    """One line of an enrollment's audit trail."""

    at: str
    actor: str
    action: str
    from_status: Status | None
    to_status: Status
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class JournalEntry:
    """An enrollment as the station knows it."""

    packet_id: str
    station_id: str
    operator_id: str
    recorded_utc: str
    status: Status
    updated_utc: str


@dataclass(frozen=True)
class FieldDedupReport:
    """Result of :meth:`StationJournal.field_dedup`.

    ``flagged`` maps each flagged packet id to its candidates (``person_id`` is a district gallery
    person, or another packet of the batch when ``source`` is ``"batch"``), best first.
    """

    searched: int
    threshold: float
    flagged: dict[str, list[dict[str, Any]]]

    def to_dict(self) -> dict[str, Any]:
        return {"searched": self.searched, "threshold": self.threshold, "flagged": self.flagged}


class StationJournal:
    """The station's journal of enrollments (SQLite, WAL, ``synchronous=FULL``).

    Parameters
    ----------
    path : path
        The journal file, created if missing (keep it beside the outbox, on the station's disk).

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> from ektp_biometrics import packet
    >>> from ektp_biometrics.fingerprint import FingerprintTemplate, make_minutiae
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> station, center = packet.StationKey.generate("st-01"), packet.CenterKey.generate()
    >>> rng = np.random.default_rng(4)
    >>> finger = FingerprintTemplate(300, 300, make_minutiae(*rng.uniform(20, 280, (2, 40)), rng.uniform(0, 6.28, 40)))
    >>> enrollment = packet.Enrollment("op-7", {"nama": "Siti"}, [packet.FingerCapture(2, np.zeros((32, 32), np.uint8), finger, 70)])
    >>> with packet.StationJournal(root / "journal.db") as journal:
    ...     first = journal.enroll(enrollment, station, center.public_bytes(), root / "outbox")
    ...     again = journal.enroll(enrollment, station, center.public_bytes(), root / "outbox")  # same person, second stop
    ...     flagged = journal.field_dedup(policy=packet.DedupPolicy(threshold=0.5), by="op-7").flagged
    ...     sent = journal.export(root / "outbox", root / "usb", by="op-7")
    ...     [journal.get(i).status.value for i in (first, again)], list(flagged) == [again], sent.exported == (f"{first}.ektp",)
    (['sent', 'duplicate'], True, True)
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db: sqlite3.Connection | None = connect_wal(self.path, timeout=30.0)[0]
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise PacketError(f"cannot open the station journal {self.path}: {exc}", "bad-journal") from None

    # -- plumbing ---------------------------------------------------------------------------------
    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> StationJournal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise PacketError(f"station journal {self.path} is closed", "bad-journal")
        return self._db

    def _transaction(self, body):  # type: ignore[no-untyped-def]
        db = self._conn()
        db.execute("BEGIN IMMEDIATE")
        try:
            result = body(db)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return result

    @staticmethod
    def _audit(db: sqlite3.Connection, packet_id: str, actor: str, action: str, before: Status | None, after: Status, detail: dict) -> None:
        db.execute(
            "INSERT INTO audit (packet_id, at, actor, action, from_status, to_status, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (packet_id, _now(), actor, action, None if before is None else before.value, after.value, json.dumps(detail, sort_keys=True)),
        )

    def _change(self, db: sqlite3.Connection, packet_id: str, to: Status, actor: str, action: str, detail: dict) -> bool:
        """Move one enrollment to ``to`` (False when it is there already; refused if not allowed)."""
        row = db.execute("SELECT status FROM enrollments WHERE packet_id = ?", (packet_id,)).fetchone()
        if row is None:
            raise PacketError(f"packet {packet_id} is not in the station journal", "unknown-packet")
        before = Status(row[0])
        if before is to:
            return False
        if to not in TRANSITIONS[before]:
            raise PacketError(f"packet {packet_id} is {before.value}; it cannot become {to.value}", "bad-transition")
        db.execute("UPDATE enrollments SET status = ?, updated_utc = ? WHERE packet_id = ?", (to.value, _now(), packet_id))
        self._audit(db, packet_id, actor, action, before, to, detail)
        return True

    # -- recording ----------------------------------------------------------------------------------
    def record(self, packet_id: str, enrollment: Enrollment, station_id: str, *, by: str | None = None) -> None:
        """Add an enrollment as ``captured`` with its templates (call before writing its packet)."""
        from ..fingerprint.template import FingerprintTemplate

        if not isinstance(enrollment, Enrollment):
            raise PacketError("enrollment must be an Enrollment", "bad-manifest")
        if not all(isinstance(f.template, FingerprintTemplate) for f in enrollment.fingers):
            raise PacketError("finger templates must be FingerprintTemplate objects", "bad-template")
        packet_id = _canonical_uuid(packet_id)
        validate_identifier(station_id, "station id")
        actor = validate_identifier(by or enrollment.operator_id, "operator id")
        fingers = [(f.position, f.template.to_bytes("ektp")) for f in enrollment.fingers]
        face = None if enrollment.face is None else bytes(enrollment.face.template_bytes)
        now = _now()

        def body(db: sqlite3.Connection) -> None:
            if db.execute("SELECT 1 FROM enrollments WHERE packet_id = ?", (packet_id,)).fetchone():
                raise PacketError(f"packet {packet_id} is already in the station journal", "exists")
            db.execute(
                "INSERT INTO enrollments (packet_id, station_id, operator_id, recorded_utc, status, updated_utc, face) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (packet_id, station_id, enrollment.operator_id, now, Status.CAPTURED.value, now, face),
            )
            db.executemany("INSERT INTO fingers (packet_id, position, template) VALUES (?, ?, ?)", [(packet_id, p, t) for p, t in fingers])
            self._audit(db, packet_id, actor, "capture", None, Status.CAPTURED, {"fingers": [p for p, _ in fingers], "face": face is not None})

        self._transaction(body)

    def enroll(self, enrollment: Enrollment, station: StationKey, center_public: bytes, outbox: str | os.PathLike, *, by: str | None = None) -> str:
        """Build the packet, journal it as ``captured``, write it to the outbox; returns the packet id.

        The journal row is written before the packet file: a crash in between leaves a journal
        entry without a file, which :meth:`export` marks ``failed`` ("capture again"), never a
        packet the station does not know about.
        """
        packet_id, data = build_packet(enrollment, station, center_public)
        self.record(packet_id, enrollment, station.station_id, by=by)
        write_packet(outbox, packet_id, data)
        return packet_id

    # -- reading ------------------------------------------------------------------------------------
    def get(self, packet_id: str) -> JournalEntry:
        row = self._conn().execute(
            "SELECT packet_id, station_id, operator_id, recorded_utc, status, updated_utc FROM enrollments WHERE packet_id = ?",
            (_canonical_uuid(packet_id),),
        ).fetchone()
        if row is None:
            raise PacketError(f"packet {packet_id} is not in the station journal", "unknown-packet")
        return JournalEntry(row[0], row[1], row[2], row[3], Status(row[4]), row[5])

    def entries(self, status: Status | str | None = None) -> list[JournalEntry]:
        """Enrollments in recording order, all or of one status."""
        sql = "SELECT packet_id, station_id, operator_id, recorded_utc, status, updated_utc FROM enrollments"
        args: tuple = ()
        if status is not None:
            sql, args = sql + " WHERE status = ?", (Status(status).value,)
        rows = self._conn().execute(sql + " ORDER BY recorded_utc, rowid", args).fetchall()
        return [JournalEntry(r[0], r[1], r[2], r[3], Status(r[4]), r[5]) for r in rows]

    def counts(self) -> dict[str, int]:
        """Number of enrollments per status (every status listed)."""
        counts = {s.value: 0 for s in Status}
        for status, n in self._conn().execute("SELECT status, COUNT(*) FROM enrollments GROUP BY status"):
            counts[status] = int(n)
        return counts

    def history(self, packet_id: str) -> list[StatusChange]:
        """The enrollment's audit trail, oldest first."""
        rows = self._conn().execute(
            "SELECT at, actor, action, from_status, to_status, detail FROM audit WHERE packet_id = ? ORDER BY id", (_canonical_uuid(packet_id),)
        ).fetchall()
        return [StatusChange(at, actor, action, None if a is None else Status(a), Status(b), json.loads(d)) for at, actor, action, a, b, d in rows]

    def _person(self, db: sqlite3.Connection, packet_id: str) -> Any:
        from ..fingerprint.template import FingerprintTemplate
        from ..gallery import Person

        fingers = {int(p): FingerprintTemplate.from_bytes(bytes(t), "ektp") for p, t in db.execute("SELECT position, template FROM fingers WHERE packet_id = ?", (packet_id,))}
        face_bytes = db.execute("SELECT face FROM enrollments WHERE packet_id = ?", (packet_id,)).fetchone()[0]
        face = None
        if face_bytes is not None:
            from ..face.template import FaceTemplate

            face = FaceTemplate.from_bytes(bytes(face_bytes))
        return Person(packet_id, fingers=fingers, face=face)

    # -- field deduplication ------------------------------------------------------------------------
    def field_dedup(self, district_gallery: Any = None, policy: DedupPolicy = DEFAULT_DEDUP, *, by: str = "station") -> FieldDedupReport:
        """Deduplicate the ``captured`` batch within itself and against a cached district gallery.

        Parameters
        ----------
        district_gallery : Gallery, optional
            A copy of the district's gallery taken before the trip (only searched, never changed).
            Without one, the batch is compared within itself only.
        policy : DedupPolicy
        by : str
            The officer (or process) named in the audit trail.

        Returns
        -------
        FieldDedupReport
            Flagged packets become ``duplicate``.  Of two enrollments of the batch that match, the
            later one is flagged, naming the earlier.
        """
        from ..gallery import Gallery

        actor = validate_identifier(by, "operator id")
        batch_entries = self.entries(Status.CAPTURED)
        db = self._conn()
        batch = [self._person(db, e.packet_id) for e in batch_entries]
        if district_gallery is None:
            with tempfile.TemporaryDirectory(prefix="ektp-field-dedup-") as tmp, Gallery.open(Path(tmp) / "empty.db") as empty:
                report = empty.dedup(batch, **policy.search_arguments())
        else:
            if not isinstance(district_gallery, Gallery):
                raise PacketError(f"district_gallery must be an open Gallery, got {type(district_gallery).__name__}", "bad-gallery")
            report = district_gallery.dedup(batch, **policy.search_arguments())
        flagged: dict[str, list] = {}
        for pair in report.pairs:
            if pair.source == "batch":  # probe is the earlier enrollment; flag the later one
                flagged_id, counterpart = pair.candidate_id, pair.probe_id
            else:
                flagged_id, counterpart = pair.probe_id, pair.candidate_id
            (entry,) = candidates_of([pair])
            flagged.setdefault(flagged_id, []).append(dict(entry, person_id=counterpart))

        def body(db: sqlite3.Connection) -> None:
            for packet_id, candidates in flagged.items():
                self._change(db, packet_id, Status.DUPLICATE, actor, "field-dedup", {"candidates": candidates, "threshold": report.threshold})

        self._transaction(body)
        return FieldDedupReport(report.searched, report.threshold, flagged)

    def clear(self, packet_id: str, *, by: str, note: str) -> None:
        """An officer checked a field-flagged person and found them distinct: back to ``captured``."""
        actor = validate_identifier(by, "operator id")
        if not isinstance(note, str) or not note.strip():
            raise PacketError("clearing a duplicate flag needs a note saying why", "bad-note")
        packet_id = _canonical_uuid(packet_id)
        self._transaction(lambda db: self._change(db, packet_id, Status.CAPTURED, actor, "clear-flag", {"note": note}))

    def resend(self, packet_id: str, *, by: str, note: str = "") -> None:
        """Queue a ``failed`` enrollment for the next export again (its packet is still in the outbox)."""
        actor = validate_identifier(by, "operator id")
        packet_id = _canonical_uuid(packet_id)
        self._transaction(lambda db: self._change(db, packet_id, Status.CAPTURED, actor, "resend", {"note": note}))

    # -- export and receipts --------------------------------------------------------------------------
    def export(self, outbox: str | os.PathLike, target_dir: str | os.PathLike, *, by: str, include_flagged: bool = False) -> ExportResult:
        """Export the ``captured`` packets (and field-flagged ones with ``include_flagged``), mark them ``sent``.

        A journal entry whose packet file is missing from the outbox (the station crashed between
        journal and file) becomes ``failed`` with that reason.
        """
        actor = validate_identifier(by, "operator id")
        wanted = [e.packet_id for e in self.entries(Status.CAPTURED)]
        if include_flagged:
            wanted += [e.packet_id for e in self.entries(Status.DUPLICATE)]
        outbox = Path(outbox)
        missing = [i for i in wanted if not (outbox / f"{i}{PACKET_SUFFIX}").is_file()]
        present = [i for i in wanted if i not in missing]
        result = export(outbox, target_dir, present)
        target = str(Path(target_dir).resolve())

        def body(db: sqlite3.Connection) -> None:
            for packet_id in missing:
                self._change(db, packet_id, Status.FAILED, actor, "export", {"reason": "packet file missing from the outbox; capture again"})
            for name in result.exported + result.already_present:
                self._change(db, name[: -len(PACKET_SUFFIX)], Status.SENT, actor, "export", {"target": target})

        self._transaction(body)
        return result

    def apply_receipts(self, receipts: dict[str, Any] | str | os.PathLike, *, center_public: bytes, by: str = "center") -> dict[str, int]:
        """Apply the center's signed receipts (from :func:`write_receipts`) to this station's enrollments.

        The signature is verified with ``center_public`` (the center's Ed25519 receipt-signing key,
        raw 32 bytes) before any status changes. ``enrolled`` -> ``print_ready``, ``duplicate`` ->
        ``duplicate``, ``rejected`` -> ``failed``; packets of other stations are ignored, and an
        outcome already applied is a no-op.

        Returns
        -------
        dict
            How many enrollments changed to each status.

        Raises
        ------
        PacketError
            ``"bad-receipt-signature"`` for an unsigned, forged or altered receipts document.
        """
        actor = validate_identifier(by, "actor")
        document = receipts if isinstance(receipts, dict) else read_receipts(receipts)
        verify_receipts(document, center_public)
        outcomes = _check_receipts(document)
        written = str(document.get("written_utc", ""))
        to_status = {"enrolled": Status.PRINT_READY, "duplicate": Status.DUPLICATE, "rejected": Status.FAILED}
        changed = {s.value: 0 for s in Status}

        def body(db: sqlite3.Connection) -> None:
            for packet_id, receipt in sorted(outcomes.items()):
                last_sent = db.execute(
                    "SELECT MAX(at) FROM audit WHERE packet_id = ? AND to_status = ?", (packet_id, Status.SENT.value)
                ).fetchone()[0]
                row = db.execute("SELECT status FROM enrollments WHERE packet_id = ?", (packet_id,)).fetchone()
                # Only packets out at the center take a receipt, and only one written after the
                # latest send: an older receipt describes a copy that was since re-sent.
                if row is None or last_sent is None or Status(row[0]) not in (Status.SENT, Status.DUPLICATE) or written < last_sent:
                    continue
                detail = {k: v for k, v in receipt.items() if k != "outcome"}
                target = to_status[receipt["outcome"]]
                if self._change(db, packet_id, target, actor, "center-receipt", dict(detail, outcome=receipt["outcome"], receipts_utc=written)):
                    changed[target.value] += 1

        self._transaction(body)
        return changed


def _signed_bytes(document: Mapping[str, Any]) -> bytes:
    """The canonical bytes a receipts signature covers: the document without ``signature``."""
    unsigned = {k: v for k, v in document.items() if k != "signature"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def verify_receipts(document: Mapping[str, Any], center_public: bytes) -> None:
    """Check a receipts document's Ed25519 signature against the center's receipt-signing key.

    Raises
    ------
    PacketError
        ``"bad-receipt-signature"`` if the document is unsigned, signed by another key, or was
        altered after signing.
    """
    from .crypto import verify_ed25519

    signature = document.get("signature") if isinstance(document, Mapping) else None
    if not isinstance(signature, dict) or set(signature) != {"algorithm", "public_key", "value"} or signature["algorithm"] != "Ed25519":
        raise PacketError("receipts are not signed by the center (no Ed25519 signature); ask the center for signed receipts", "bad-receipt-signature")
    if not isinstance(center_public, bytes) or len(center_public) != 32:
        raise PacketError("the center's receipt-signing public key must be 32 raw Ed25519 bytes", "bad-key")
    if signature["public_key"] != center_public.hex():
        raise PacketError("receipts are signed by a key that is not this center's receipt-signing key", "bad-receipt-signature")
    try:
        value = bytes.fromhex(signature["value"]) if isinstance(signature["value"], str) else b""
    except ValueError:
        value = b""
    if len(value) != 64 or not verify_ed25519(center_public, value, _signed_bytes(document)):
        raise PacketError("receipts signature does not verify (forged or altered after signing); they were not applied", "bad-receipt-signature")


def write_receipts(state_db: str | os.PathLike, path: str | os.PathLike, signing_key: Any) -> dict[str, Any]:
    """Write the center's receipts for every packet the import state knows, signed, atomically.

    The document is ``{"format": "ektp-import-receipts", "version": 2, "written_utc": ...,
    "packets": {packet id: {"outcome": "enrolled" | "duplicate" | "rejected", ...}},
    "signature": {"algorithm": "Ed25519", "public_key": hex, "value": hex}}``: a duplicate names
    its candidates, a rejection its reason.  The signature, by ``signing_key`` (a
    :class:`~ektp_biometrics.packet.crypto.CenterSigningKey`), covers the document without
    ``signature`` as compact sorted-key UTF-8 JSON.  A packet that was rejected once and
    imported later (re-sent) is ``enrolled`` or ``duplicate``.  Rejected files whose name is not
    ``<packet id>.ektp`` cannot be attributed and are left out.
    """
    summary = import_summary(state_db)
    packets: dict[str, dict[str, Any]] = {}
    for rejected in summary["rejected"]:
        stem = rejected["file"][: -len(PACKET_SUFFIX)] if rejected["file"].endswith(PACKET_SUFFIX) else ""
        try:
            packet_id = str(uuid.UUID(stem))
        except ValueError:
            continue
        if stem == packet_id:
            packets[packet_id] = {"outcome": "rejected", "reason": rejected["reason"]}
    for duplicate in summary["duplicates"]:
        packets[duplicate["packet_id"]] = {"outcome": "duplicate", "candidates": duplicate["candidates"]}
    for packet_id in summary["imported"]:
        packets[packet_id] = {"outcome": "enrolled"}
    from .crypto import CenterSigningKey

    if not isinstance(signing_key, CenterSigningKey):
        raise PacketError("receipts must be signed with the center's CenterSigningKey", "bad-key")
    document: dict[str, Any] = {"format": RECEIPTS_FORMAT, "version": RECEIPTS_VERSION, "written_utc": _now(), "packets": dict(sorted(packets.items()))}
    document["signature"] = {"algorithm": "Ed25519", "public_key": signing_key.public_bytes().hex(), "value": signing_key.sign(_signed_bytes(document)).hex()}
    atomic_write(Path(path), json.dumps(document, indent=1, sort_keys=True).encode("utf-8"))
    return document


def read_receipts(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check a receipts file written by :func:`write_receipts`."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PacketError(f"cannot read receipts {path}: {exc}", "bad-receipts") from None
    _check_receipts(document)
    return document


def _check_receipts(document: object) -> dict[str, dict[str, Any]]:
    if not isinstance(document, dict) or document.get("format") != RECEIPTS_FORMAT or document.get("version") != RECEIPTS_VERSION:
        raise PacketError(f"not an ektp-import-receipts document of version {RECEIPTS_VERSION} (signed)", "bad-receipts")
    packets = document.get("packets")
    if not isinstance(packets, dict):
        raise PacketError("receipts must map packet ids to outcomes", "bad-receipts")
    for packet_id, receipt in packets.items():
        if _canonical_uuid(packet_id) != packet_id or not isinstance(receipt, dict):
            raise PacketError(f"receipt for {packet_id!r} is malformed", "bad-receipts")
        if receipt.get("outcome") not in ("enrolled", "duplicate", "rejected"):
            raise PacketError(f"receipt for {packet_id} has unknown outcome {receipt.get('outcome')!r}", "bad-receipts")
    return packets

