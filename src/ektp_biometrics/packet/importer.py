"""The center side: import a folder of packets into a sink, idempotently, resumably, concurrently.

For each ``*.ektp`` file, in name order:

1. parse the clear header and verify the station's signature against the registry
   (unknown or revoked station, bad signature, wrong length -> rejected);
2. if the state database says this packet id is imported with the same file hash ->
   "already imported" (a no-op); with a different hash -> rejected as a conflicting duplicate;
3. decrypt with the center key and validate every field, hash and template -> a
   :class:`PersonRecord` (any failure -> rejected);
4. claim the packet id in the state database (one SQLite transaction; a claim held by a live
   importer makes this one skip the packet, a dead importer's claim is taken over);
5. ``sink.insert(record)`` (or ``sink.insert_many(records)`` for a batch of claimed records, in
   file order); the sink is idempotent by packet id, so an importer killed between 5 and 6
   re-inserts harmlessly on the next run; a deduplicating sink (the gallery's,
   :class:`~ektp_biometrics.packet.GallerySink`) may instead hold the record as a likely
   duplicate and name the enrolled candidates;
6. mark the packet imported, with the sink's outcome (and candidates) in the state database.

Rejected files move to the quarantine folder next to a ``<file>.reason.json``.  Nothing is
handed to the sink before step 3 has fully succeeded, so a packet is never half-imported.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import socket
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from .._sqlite import connect_wal
from ..errors import PacketError
from .crypto import CenterKey, decrypt, parse_header, verify_station
from .outbox import PACKET_SUFFIX
from .payload import PersonRecord, read_payload

__all__ = [
    "ALREADY_PRESENT",
    "DUPLICATE",
    "INSERTED",
    "ImportReport",
    "JsonLinesSink",
    "MemorySink",
    "PacketSink",
    "SinkOutcome",
    "import_packets",
    "import_summary",
    "release_duplicate",
]  # fmt: skip

log = logging.getLogger(__name__)

INSERTED = "inserted"
ALREADY_PRESENT = "already_present"
#: The sink held the record back as a likely duplicate of an enrolled person (adjudication needed).
DUPLICATE = "duplicate"
MAX_PACKET_BYTES = 256 * 1024 * 1024
#: Records handed to a batch-capable sink at once: one gallery search pass per 32 packets keeps
#: the gallery's search structures from being rebuilt after every insert.  32 is a judgement (a
#: batch's own within-batch comparisons stay small); batch sizes were not compared by measurement.
DEFAULT_BATCH = 32
MAX_BATCH = 1024
#: A claim by an importer on another host is considered abandoned after this many seconds.
CLAIM_LEASE_SECONDS = 600.0


@dataclass(frozen=True)
class SinkOutcome:
    """What a sink did with a record: ``outcome`` is :data:`INSERTED`, :data:`ALREADY_PRESENT`
    or :data:`DUPLICATE`; ``candidates`` names the enrolled persons a duplicate matched, as
    ``{"person_id", "score", "finger_scores", "face_score", "source"}`` dictionaries, best first."""

    outcome: str
    candidates: tuple[dict[str, Any], ...] = ()


@runtime_checkable
class PacketSink(Protocol):
    """Where validated person records go (the gallery through :class:`GallerySink`, or a test sink).

    ``insert`` must be atomic and idempotent by ``record.packet_id``: it returns ``"inserted"``
    the first time and ``"already_present"`` afterwards, even across process restarts.  A
    deduplicating sink may return a :class:`SinkOutcome` instead, whose outcome may also be
    ``"duplicate"`` (the record was held back, not inserted).
    """

    def insert(self, record: PersonRecord) -> str | SinkOutcome: ...


class MemorySink:
    """An in-process sink (tests, benchmarks): packet id -> record."""

    def __init__(self) -> None:
        self.records: dict[str, PersonRecord] = {}

    def insert(self, record: PersonRecord) -> str:
        if record.packet_id in self.records:
            return ALREADY_PRESENT
        self.records[record.packet_id] = record
        return INSERTED


class JsonLinesSink:
    """Appends each accepted record's manifest as one JSON line; safe across processes.

    A stand-in until the gallery (issue 6) provides the real sink.  Each insert holds an
    exclusive ``flock`` on the file, scans lines appended by others, drops a torn last line
    left by a killed writer, appends and fsyncs.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._known: set[str] = set()
        self._scanned = 0

    def _catch_up(self, handle: Any) -> None:
        size = os.fstat(handle.fileno()).st_size
        handle.seek(self._scanned)
        chunk = handle.read(size - self._scanned)
        complete = chunk[: chunk.rfind(b"\n") + 1]
        for line in complete.splitlines():
            try:
                self._known.add(json.loads(line)["packet_id"])
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
        self._scanned += len(complete)
        if self._scanned < size:  # torn line from a writer killed mid-write
            handle.truncate(self._scanned)

    def insert(self, record: PersonRecord) -> str:
        line = json.dumps({"packet_id": record.packet_id, "station_id": record.station_id, "manifest": record.manifest}, sort_keys=True)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                self._catch_up(handle)
                if record.packet_id in self._known:
                    return ALREADY_PRESENT
                handle.seek(0, os.SEEK_END)
                handle.write(line.encode("utf-8") + b"\n")
                handle.flush()
                os.fsync(handle.fileno())
                self._scanned = handle.tell()
                self._known.add(record.packet_id)
                return INSERTED
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def packet_ids(self) -> list[str]:
        """Every packet id in the file, in order (duplicates would show twice)."""
        if not self.path.exists():
            return []
        ids = []
        for line in self.path.read_bytes().splitlines(keepends=True):
            if line.endswith(b"\n"):
                ids.append(json.loads(line)["packet_id"])
        return ids


@dataclass
class ImportReport:
    """Outcome of one :func:`import_packets` run."""

    imported: list[str] = field(default_factory=list)
    already_imported: list[str] = field(default_factory=list)
    rejected: list[dict[str, str]] = field(default_factory=list)
    claimed_elsewhere: list[str] = field(default_factory=list)
    #: Records held back by a deduplicating sink: ``{"packet_id", "candidates": [...]}``.
    duplicates: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "imported": list(self.imported),
            "already_imported": list(self.already_imported),
            "rejected": list(self.rejected),
            "claimed_elsewhere": list(self.claimed_elsewhere),
            "duplicates": list(self.duplicates),
        }


_SCHEMA = """
CREATE TABLE IF NOT EXISTS packets (
    packet_id TEXT PRIMARY KEY,
    file_sha256 TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('claimed', 'imported')),
    owner TEXT NOT NULL,
    claimed_at REAL NOT NULL,
    imported_utc TEXT,
    sink_outcome TEXT,
    sink_detail TEXT
);
CREATE INDEX IF NOT EXISTS packets_by_file ON packets (file_sha256, state);
CREATE TABLE IF NOT EXISTS rejections (
    file_sha256 TEXT PRIMARY KEY,
    file_name TEXT NOT NULL,
    reason TEXT NOT NULL,
    message TEXT NOT NULL,
    rejected_utc TEXT NOT NULL
);
"""


def _utc() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class _State:
    def __init__(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db, _ = connect_wal(path, timeout=60.0)
        except (OSError, sqlite3.Error) as exc:
            raise PacketError(f"cannot open the import state database {path}: {exc}", "bad-state") from None
        # NORMAL in WAL mode survives any process crash; a power loss may forget the last marks,
        # which is safe because the sink is idempotent by packet id (the packet re-imports as present).
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(packets)")}
        if "sink_detail" not in columns:  # a state file written before the gallery sink existed
            try:
                self.db.execute("ALTER TABLE packets ADD COLUMN sink_detail TEXT")
            except sqlite3.OperationalError:  # another importer added it a moment ago
                pass
        self.host = socket.gethostname()
        self.owner = f"{self.host}:{os.getpid()}:{uuid.uuid4().hex[:12]}"

    def close(self) -> None:
        self.db.close()

    def imported_hash(self, packet_id: str) -> str | None:
        row = self.db.execute("SELECT file_sha256 FROM packets WHERE packet_id = ? AND state = 'imported'", (packet_id,)).fetchone()
        return row[0] if row else None

    def imported_file(self, file_sha256: str) -> str | None:
        """Packet id of an imported packet with exactly these file bytes (verified when imported)."""
        row = self.db.execute("SELECT packet_id FROM packets WHERE file_sha256 = ? AND state = 'imported'", (file_sha256,)).fetchone()
        return row[0] if row else None

    def _owner_alive(self, owner: str, claimed_at: float) -> bool:
        host, pid, _ = owner.split(":", 2)
        if host != self.host:
            return time.time() - claimed_at < CLAIM_LEASE_SECONDS
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def claim(self, packet_id: str, file_sha256: str) -> str:
        """'claimed' (ours now), 'imported' (someone finished it) or 'busy' (a live importer holds it)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            row = self.db.execute("SELECT state, owner, claimed_at FROM packets WHERE packet_id = ?", (packet_id,)).fetchone()
            if row is None:
                self.db.execute(
                    "INSERT INTO packets (packet_id, file_sha256, state, owner, claimed_at) VALUES (?, ?, 'claimed', ?, ?)",
                    (packet_id, file_sha256, self.owner, time.time()),
                )
                result = "claimed"
            elif row[0] == "imported":
                result = "imported"
            elif row[1] != self.owner and self._owner_alive(row[1], row[2]):
                result = "busy"
            else:
                self.db.execute(
                    "UPDATE packets SET owner = ?, claimed_at = ?, file_sha256 = ? WHERE packet_id = ?",
                    (self.owner, time.time(), file_sha256, packet_id),
                )
                result = "claimed"
            self.db.execute("COMMIT")
            return result
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def mark_imported(self, packet_id: str, outcome: SinkOutcome) -> None:
        detail = json.dumps({"candidates": list(outcome.candidates)}, sort_keys=True) if outcome.candidates else None
        self.db.execute(
            "UPDATE packets SET state = 'imported', imported_utc = ?, sink_outcome = ?, sink_detail = ? WHERE packet_id = ? AND owner = ?",
            (_utc(), outcome.outcome, detail, packet_id, self.owner),
        )

    def record_rejection(self, file_sha256: str, name: str, error: PacketError) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO rejections (file_sha256, file_name, reason, message, rejected_utc) VALUES (?, ?, ?, ?, ?)",
            (file_sha256, name, error.reason, str(error), _utc()),
        )


def _quarantine(path: Path, quarantine: Path, file_sha256: str, error: PacketError) -> None:
    """Move a rejected file into quarantine beside its reason (2 fsyncs: reason file, folder)."""
    quarantine.mkdir(parents=True, exist_ok=True)
    target = quarantine / path.name
    reason = {"file": path.name, "sha256": file_sha256, "reason": error.reason, "message": str(error), "rejected_utc": _utc()}
    reason_tmp = quarantine / f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"
    with open(reason_tmp, "wb") as handle:
        handle.write(json.dumps(reason, indent=1, sort_keys=True).encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(reason_tmp, quarantine / f"{path.name}.reason.json")
    try:
        os.replace(path, target)
    except FileNotFoundError:
        pass  # another importer moved it first
    except OSError:  # quarantine on another file system: copy, fsync, then remove the original
        tmp = quarantine / f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"
        shutil.copyfile(path, tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        path.unlink(missing_ok=True)
    # One folder fsync makes both renames durable; if power fails first, the file is simply
    # rejected again on the next run.
    dir_fd = os.open(quarantine, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _remove_stale_temporaries(quarantine: Path) -> None:
    """Delete temp files left in quarantine by importers that were killed (their pid is gone)."""
    if not quarantine.is_dir():
        return
    for tmp in quarantine.glob(".*.tmp"):
        pid_text = tmp.name.rsplit(".", 2)[-2].split("-")[0]
        try:
            os.kill(int(pid_text), 0)
        except (ValueError, ProcessLookupError):
            tmp.unlink(missing_ok=True)
        except PermissionError:
            pass


def _packet_files(folder: Path) -> Iterator[Path]:
    return iter(sorted(p for p in folder.iterdir() if p.name.endswith(PACKET_SUFFIX) and not p.name.startswith(".")))


def import_packets(
    folder: str | os.PathLike,
    center_keys: CenterKey | list[CenterKey],
    station_registry: Any,
    sink: PacketSink,
    quarantine_dir: str | os.PathLike,
    state_db: str | os.PathLike,
    *,
    batch_size: int = DEFAULT_BATCH,
) -> ImportReport:
    """Import every packet in ``folder`` into ``sink``; see the module docstring for the steps.

    Parameters
    ----------
    folder : path
        Folder holding ``*.ektp`` packets (for example the mounted flash drive).
    center_keys : CenterKey or list of CenterKey
        The center's key(s); several during a key roll-over, tried in order.
    station_registry : StationRegistry
        Anything with ``public_key(station_id) -> bytes`` raising PacketError when refused.
    sink : PacketSink
        Receives each validated record once.
    quarantine_dir, state_db : path
        Where rejected files go; the SQLite state file (WAL) shared by all importers.
    batch_size : int
        Validated, claimed records handed to a sink with ``insert_many`` at once (the gallery
        sink deduplicates a batch in one search pass); 1 hands them over one by one.

    Returns
    -------
    ImportReport
    """
    folder, quarantine = Path(folder), Path(quarantine_dir)
    if not folder.is_dir():
        raise PacketError(f"import folder {folder} is not a folder", "bad-folder")
    keys = [center_keys] if isinstance(center_keys, CenterKey) else list(center_keys)
    if not keys or not all(isinstance(k, CenterKey) for k in keys):
        raise PacketError("center_keys must be a CenterKey or a non-empty list of them", "bad-key")
    if not isinstance(sink, PacketSink):
        raise PacketError("sink must have an insert(record) method", "bad-sink")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= MAX_BATCH:
        raise PacketError(f"batch_size must be an integer 1..{MAX_BATCH}, got {batch_size!r}", "bad-batch")
    report = ImportReport()
    state = _State(Path(state_db))
    _remove_stale_temporaries(quarantine)
    try:
        pending: list[PersonRecord] = []
        for path in _packet_files(folder):
            record = _validate_and_claim(path, keys, station_registry, quarantine, state, report)
            if record is not None:
                pending.append(record)
            if len(pending) >= batch_size:
                _deliver(pending, sink, state, report)
                pending = []
        _deliver(pending, sink, state, report)
    finally:
        state.close()
    log.info(
        "import of %s: %d imported, %d already imported, %d rejected, %d claimed elsewhere",
        folder, len(report.imported), len(report.already_imported), len(report.rejected), len(report.claimed_elsewhere),
    )
    return report


def _open_validated(data: bytes, keys: list[CenterKey], registry: Any, state: _State, file_sha256: str) -> tuple[str, PersonRecord | None]:
    # Bytes identical to an imported packet were verified then; a later revocation of the
    # station must not turn that finished import into a rejection.
    known = state.imported_file(file_sha256)
    if known is not None:
        return known, None
    header = parse_header(data)
    verify_station(header, registry)
    done = state.imported_hash(header.packet_id)
    if done is not None:
        if done == file_sha256:
            return header.packet_id, None
        raise PacketError(f"packet id {header.packet_id} was already imported with different content", "conflicting-duplicate")
    error: PacketError | None = None
    for key in keys:
        try:
            payload = decrypt(header, key)
            break
        except PacketError as exc:
            error = exc
    else:
        assert error is not None
        raise error
    return header.packet_id, read_payload(payload, packet_id=header.packet_id, station_id=header.station_id, version=header.version)


def _validate_and_claim(path: Path, keys: list[CenterKey], registry: Any, quarantine: Path, state: _State, report: ImportReport) -> PersonRecord | None:
    """Steps 1-4 for one file: the validated record, claimed by this importer, or None (reported)."""
    try:
        size = path.stat().st_size
        if size > MAX_PACKET_BYTES:
            data = b""
        else:
            data = path.read_bytes()
    except FileNotFoundError:
        return None  # quarantined by a concurrent importer
    file_sha256 = hashlib.sha256(data).hexdigest()
    try:
        if size > MAX_PACKET_BYTES:
            raise PacketError(f"file larger than {MAX_PACKET_BYTES} bytes", "too-large")
        packet_id, record = _open_validated(data, keys, registry, state, file_sha256)
    except PacketError as error:
        log.warning("packet file %s rejected: %s", path.name, error.reason)
        state.record_rejection(file_sha256, path.name, error)
        _quarantine(path, quarantine, file_sha256, error)
        report.rejected.append({"file": path.name, "reason": error.reason, "message": str(error)})
        return None
    if record is None:
        report.already_imported.append(packet_id)
        return None
    claim = state.claim(packet_id, file_sha256)
    if claim == "imported":
        report.already_imported.append(packet_id)
        return None
    if claim == "busy":
        report.claimed_elsewhere.append(packet_id)
        return None
    return record


def _deliver(records: list[PersonRecord], sink: PacketSink, state: _State, report: ImportReport) -> None:
    """Steps 5-6 for claimed records, in order: hand them to the sink, then mark each imported."""
    if not records:
        return
    insert_many = getattr(sink, "insert_many", None)
    if insert_many is not None and len(records) > 1:
        answers = list(insert_many(records))
        if len(answers) != len(records):
            raise PacketError(f"the sink answered {len(answers)} outcomes for {len(records)} records", "bad-sink")
    else:
        answers = [sink.insert(record) for record in records]
    for record, answer in zip(records, answers):
        outcome = _normalize(answer)
        state.mark_imported(record.packet_id, outcome)
        log.info("packet %s from station %s imported (%s)", record.packet_id, record.station_id, outcome.outcome)
        if outcome.outcome == DUPLICATE:
            report.duplicates.append({"packet_id": record.packet_id, "candidates": list(outcome.candidates)})
        else:
            report.imported.append(record.packet_id)


def _normalize(result: object) -> SinkOutcome:
    if isinstance(result, str):
        result = SinkOutcome(result)
    if not isinstance(result, SinkOutcome) or result.outcome not in (INSERTED, ALREADY_PRESENT, DUPLICATE):
        raise PacketError(f"the sink answered {result!r}; expected inserted, already_present or duplicate", "bad-sink")
    return result


def release_duplicate(
    path: str | os.PathLike, center_keys: CenterKey | list[CenterKey], station_registry: Any, sink: Any, state_db: str | os.PathLike, *, by: str, note: str
) -> SinkOutcome:
    """Enroll a packet the import held as a duplicate, after adjudication found a different person.

    The packet file is verified, decrypted and validated again, its state must say ``duplicate``,
    the sink's ``release`` enrolls it (recording ``not-duplicate`` decisions for its candidates),
    and the state becomes ``inserted`` with who released it and why; receipts then say
    ``enrolled``.  Releasing twice is a no-op.

    Raises
    ------
    PacketError
        ``"not-held"`` if the state does not hold this packet as a duplicate, ``"bad-note"`` without
        a note, or any verification reason of the packet itself.
    """
    if not isinstance(note, str) or not note.strip():
        raise PacketError("releasing a held duplicate needs a note saying why", "bad-note")
    keys = [center_keys] if isinstance(center_keys, CenterKey) else list(center_keys)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise PacketError(f"cannot read {path}: {exc.strerror}", "unreadable") from None
    header = parse_header(data)
    verify_station(header, station_registry)
    state = _State(Path(state_db))
    try:
        row = state.db.execute("SELECT state, sink_outcome, sink_detail, file_sha256 FROM packets WHERE packet_id = ?", (header.packet_id,)).fetchone()
        if row is not None and row[0] == "imported" and row[1] == INSERTED and row[2] and "released_by" in json.loads(row[2]):
            return SinkOutcome(ALREADY_PRESENT)
        if row is None or row[0] != "imported" or row[1] != DUPLICATE:
            raise PacketError(f"packet {header.packet_id} is not held as a duplicate in {state_db}", "not-held")
        if row[3] != hashlib.sha256(data).hexdigest():
            raise PacketError(f"{path} differs from the packet {header.packet_id} that was imported", "conflicting-duplicate")
        error: PacketError | None = None
        for key in keys:
            try:
                payload = decrypt(header, key)
                break
            except PacketError as exc:
                error = exc
        else:
            assert error is not None
            raise error
        record = read_payload(payload, packet_id=header.packet_id, station_id=header.station_id, version=header.version)
        outcome = sink.release(record, by=by, note=note)
        detail = {"candidates": list(outcome.candidates), "released_by": by, "note": note, "released_utc": _utc()}
        state.db.execute(
            "UPDATE packets SET sink_outcome = ?, sink_detail = ? WHERE packet_id = ?", (INSERTED, json.dumps(detail, sort_keys=True), header.packet_id)
        )
    finally:
        state.close()
    log.info("held duplicate %s released into the gallery by %s", header.packet_id, by)
    return outcome


def import_summary(state_db: str | os.PathLike) -> dict[str, Any]:
    """Everything the import state database knows, over all runs: the cumulative report.

    Returns
    -------
    dict
        ``{"imported": [packet ids], "duplicates": [{"packet_id", "candidates"}],
        "rejected": [{"file", "reason", "message"}], "in_progress": [packet ids]}``, each sorted;
        ``in_progress`` lists packets claimed by an importer that has not finished them.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import_summary(pathlib.Path(tempfile.mkdtemp()) / "state.db")
    {'imported': [], 'duplicates': [], 'rejected': [], 'in_progress': []}
    """
    state = _State(Path(state_db))
    try:
        rows = state.db.execute("SELECT packet_id, state, sink_outcome, sink_detail FROM packets ORDER BY packet_id").fetchall()
        rejections = state.db.execute("SELECT file_name, reason, message FROM rejections ORDER BY file_name").fetchall()
    finally:
        state.close()
    summary: dict[str, Any] = {"imported": [], "duplicates": [], "rejected": [], "in_progress": []}
    for packet_id, row_state, outcome, detail in rows:
        if row_state != "imported":
            summary["in_progress"].append(packet_id)
        elif outcome == DUPLICATE:
            summary["duplicates"].append({"packet_id": packet_id, "candidates": json.loads(detail)["candidates"] if detail else []})
        else:
            summary["imported"].append(packet_id)
    summary["rejected"] = [{"file": name, "reason": reason, "message": message} for name, reason, message in rejections]
    return summary
