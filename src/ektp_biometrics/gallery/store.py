"""The embedded gallery: SQLite (WAL) for records, audit and decisions, packed arrays for search.

See docs/gallery.md for the schema, the file layout and the durability guarantees.

Examples
--------
>>> import tempfile, pathlib
>>> from ektp_biometrics.fingerprint import FingerprintTemplate, make_minutiae
>>> from ektp_biometrics.gallery import Gallery, Person
>>> rng = np.random.default_rng(1)
>>> def finger():
...     return FingerprintTemplate(300, 300, make_minutiae(*rng.uniform(20, 280, (2, 40)), rng.uniform(0, 6.28, 40)))
>>> enrolled, other = finger(), finger()
>>> folder = tempfile.mkdtemp()
>>> with Gallery.open(pathlib.Path(folder) / "gallery.db") as g:
...     _ = g.insert(Person("A-1", fingers={2: enrolled}), by="op-7")
...     _ = g.insert(Person("B-2", fingers={2: other}), by="op-7")
...     best = g.identify(Person("probe", fingers={2: enrolled}), k=1)[0]
...     g.count(), best.person_id, best.score > 0.9
(2, 'A-1', True)
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._sqlite import connect_wal
from ..errors import ConfigurationError, GalleryError, RecordError
from ..fingerprint.template import FingerprintTemplate
from ._arrays import DEFAULT_ARRAYS, ArraysParameters, Published, SearchArrays, Snapshot
from ._face import face_from_bytes, face_to_bytes
from ._search import PreparedCache, Ranked, Shard, TemplateBytes
from .fusion import DEFAULT_FUSION, FusionParameters, fpir_threshold
from .records import FingerException, Person, check_person_id

__all__ = ["DECISIONS", "ArraysParameters", "AuditEntry", "Candidate", "Decision", "DedupPair", "DedupReport", "Gallery", "PersonVersion"]

SCHEMA_VERSION = 1
#: Adjudication outcomes a decision may record.
DECISIONS = ("duplicate", "not-duplicate")
#: Persons whose fingers are added to the fingerprint index per call (bounds the templates decoded at once).
_INDEX_BATCH = 20_000
#: The saved fingerprint index: ``<db>.search/index.json`` names ``index-<stamp>.npz`` and its person rows.
_INDEX_MARKER = "index.json"
_INDEX_FORMAT = 1
#: How long a connection waits for another process's write lock before failing, in milliseconds.
BUSY_TIMEOUT_MS = 30_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS persons (
    row INTEGER PRIMARY KEY,
    person_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    recorded_at TEXT NOT NULL,
    face BLOB,
    face_embedder TEXT,
    exceptions TEXT NOT NULL,
    metadata TEXT NOT NULL,
    UNIQUE (person_id, version)
);
CREATE TABLE IF NOT EXISTS fingers (
    person_row INTEGER NOT NULL REFERENCES persons(row),
    position INTEGER NOT NULL CHECK (position BETWEEN 1 AND 10),
    quality INTEGER NOT NULL,
    template BLOB NOT NULL,
    PRIMARY KEY (person_row, position)
);
CREATE TABLE IF NOT EXISTS current (
    person_id TEXT PRIMARY KEY,
    person_row INTEGER NOT NULL REFERENCES persons(row),
    deleted INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('insert', 'correct', 'delete', 'decide')),
    person_id TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_person ON audit (person_id);
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY,
    a TEXT NOT NULL,
    b TEXT NOT NULL,
    decision TEXT NOT NULL CHECK (decision IN ('duplicate', 'not-duplicate')),
    decided_by TEXT NOT NULL,
    at TEXT NOT NULL,
    note TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_a ON decisions (a);
CREATE INDEX IF NOT EXISTS decisions_b ON decisions (b);
"""


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")


def _check_actor(actor: object) -> str:
    if not isinstance(actor, str) or not 1 <= len(actor) <= 128 or not actor.isprintable():
        raise RecordError(f"the acting user must be 1..128 printable characters, got {actor!r}")
    return actor


@dataclass(frozen=True)
class Candidate:
    """One search result.

    Attributes
    ----------
    person_id : str
    score : float
        Fused score in decades of evidence, ``-log10(false_match_probability)``
        (:mod:`ektp_biometrics.gallery.fusion`); higher is more alike, 0 is no evidence.
    finger_scores : dict of int to float
        Matcher score in [0, 1] per ISO finger position compared.
    face_score : float or None
        Cosine similarity of the face templates when both exist and are comparable.
    false_match_probability : float
        Calibrated probability that an impostor reaches this fused score (one comparison).
    """

    person_id: str
    score: float
    finger_scores: dict[int, float] = field(default_factory=dict)
    face_score: float | None = None
    false_match_probability: float = 1.0


@dataclass(frozen=True)
class PersonVersion:
    """One stored version of a person: ``version`` counts from 1; ``recorded_at`` is UTC ISO 8601."""

    version: int
    recorded_at: str
    person: Person


@dataclass(frozen=True)
class AuditEntry:
    """Who did what to which person, when (UTC ISO 8601); ``detail`` holds the action's particulars."""

    at: str
    actor: str
    action: str
    person_id: str
    detail: dict


@dataclass(frozen=True)
class Decision:
    """An adjudication between persons ``a`` and ``b`` (stored with ``a < b``)."""

    a: str
    b: str
    decision: str
    decided_by: str
    at: str
    note: str = ""


@dataclass(frozen=True)
class DedupPair:
    """A likely duplicate found by :meth:`Gallery.dedup`.

    ``source`` is ``"gallery"`` when ``candidate_id`` is enrolled, ``"batch"`` when it is another
    member of the same batch; ``decision`` is the latest stored adjudication of the pair, if any.
    """

    probe_id: str
    candidate_id: str
    source: str
    score: float
    finger_scores: dict[int, float]
    face_score: float | None = None
    decision: str | None = None


@dataclass(frozen=True)
class DedupReport:
    """Result of :meth:`Gallery.dedup`: every pair at or above ``threshold`` (fused score, decades), best first.

    ``suppressed`` counts the pairs above the threshold left out because an adjudicator decided
    they are not duplicates.
    """

    pairs: list[DedupPair]
    searched: int
    threshold: float
    suppressed: int = 0

    def flagged(self) -> set[str]:
        """Ids of the batch members with at least one pair not adjudicated as ``not-duplicate``."""
        return {p.probe_id for p in self.pairs if p.decision != "not-duplicate"}

    def to_dict(self) -> dict:
        return {
            "searched": self.searched,
            "threshold": self.threshold,
            "suppressed": self.suppressed,
            "pairs": [
                {
                    "probe_id": p.probe_id, "candidate_id": p.candidate_id, "source": p.source, "score": p.score,
                    "finger_scores": {str(k): v for k, v in p.finger_scores.items()}, "face_score": p.face_score,
                    "decision": p.decision,
                }
                for p in self.pairs
            ],
        }  # fmt: skip


class Gallery:
    """A durable embedded gallery of :class:`Person` records; open it with :meth:`Gallery.open`.

    One object wraps one SQLite connection and may be shared by threads (calls are serialised);
    any number of processes may open the same file; one writes at a time (SQLite's lock), readers
    never block it (WAL).
    """

    def __init__(
        self, path: Path, conn: sqlite3.Connection, fusion: FusionParameters = DEFAULT_FUSION, tuning: ArraysParameters = DEFAULT_ARRAYS
    ) -> None:
        if not isinstance(fusion, FusionParameters):
            raise ConfigurationError(f"fusion must be a FusionParameters, got {type(fusion).__name__}")
        if not isinstance(tuning, ArraysParameters):
            raise ConfigurationError(f"tuning must be an ArraysParameters, got {type(tuning).__name__}")
        self.path = path
        self.fusion = fusion
        self.tuning = tuning
        self._conn: sqlite3.Connection | None = conn
        self._lock = threading.RLock()
        self._arrays: SearchArrays | None = None
        self._shard: tuple[int, Shard] | None = None
        self._prepared = PreparedCache(tuning.prepared_cache_bytes)
        self._indexed = False
        self._index: object = None  # FingerprintIndex of the live fingers when searching "indexed"
        self._index_rows = np.zeros(0, np.int64)  # person rows whose fingers the index holds (index ids are str(row))
        self._index_generation = -1
        self._index_unsaved = 0  # persons added to or removed from the index since it was last saved

    # -- opening and closing ----------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        create: bool = True,
        fusion: FusionParameters = DEFAULT_FUSION,
        cluster: object = None,
        search: str = "exhaustive",
        tuning: ArraysParameters = DEFAULT_ARRAYS,
    ) -> Gallery:
        """Open the gallery at ``path`` (a SQLite file), creating it if ``create``.

        Parameters
        ----------
        path : str or Path
        create : bool
            Create the file if it is missing.
        fusion : FusionParameters
            Tunables of the calibrated fusion (:mod:`ektp_biometrics.gallery.fusion`).
        cluster : dask.distributed.Client or str, optional
            Search on a Dask cluster (a client, or a scheduler address): the live persons are
            split into one shard per worker, each worker searches its shard with the same
            kernels and the top-k lists are merged (:class:`ektp_biometrics.gallery.cluster.ClusterGallery`).
            Records, audit and decisions stay in the SQLite file.
        search : {"exhaustive", "indexed"}
            ``"exhaustive"`` compares the probe with every enrolled finger.  ``"indexed"`` keeps
            a :class:`ektp_biometrics.fingerprint.index.FingerprintIndex` of the live fingers
            (updated incrementally) and fully compares only the persons its fast first stage
            shortlists: the same scores for the persons it returns, far less work on a large
            gallery, but a mate outside the shortlist is missed.  Searches restricted with
            ``among=`` and probes without fingers stay exhaustive.  In-process only.
        tuning : ArraysParameters
            Compaction thresholds of the search structures and the prepared-template cache budget.

        Raises
        ------
        GalleryError
            ``reason="not-found"`` when the file is missing and ``create`` is false,
            ``reason="corrupt"`` when it is not a gallery of a supported schema version.
        """
        path = Path(path)
        if not create and not path.is_file():
            raise GalleryError(f"no gallery at {path}; create it with `ektp-bio gallery init {path}`", "not-found")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn, mode = connect_wal(path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
            if mode != "wal":
                raise GalleryError(f"{path}: the file system does not support SQLite WAL mode (got {mode})", "corrupt")
            # FULL: the WAL is fsynced at every commit, so an acknowledged insert survives power loss
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    conn.execute(statement)
                conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                conn.execute("INSERT OR IGNORE INTO meta VALUES ('generation', '0')")
                version = int(conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.DatabaseError as exc:
            raise GalleryError(f"{path} is not a readable gallery: {exc}", "corrupt") from exc
        if version != SCHEMA_VERSION:
            conn.close()
            raise GalleryError(f"{path} has gallery schema {version}; this library reads schema {SCHEMA_VERSION}", "corrupt")
        if search not in ("exhaustive", "indexed"):
            conn.close()
            raise ConfigurationError(f"search must be 'exhaustive' or 'indexed', got {search!r}")
        if cluster is not None:
            if search != "exhaustive":
                conn.close()
                raise ConfigurationError("a cluster gallery searches exhaustively; search='indexed' is in-process only")
            from .cluster import ClusterGallery

            return ClusterGallery(path, conn, fusion, cluster, tuning)
        gallery = cls(path, conn, fusion, tuning)
        gallery._indexed = search == "indexed"
        return gallery

    def close(self) -> None:
        """Close the connection; further calls raise :class:`GalleryError`."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            self._arrays = None
            self._shard = None
            self._prepared.clear()
            self._index, self._index_rows, self._index_generation = None, np.zeros(0, np.int64), -1

    def __enter__(self) -> Gallery:  # noqa: PYI034 - typing.Self needs Python 3.11; we support 3.10
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Gallery({str(self.path)!r})"

    @property
    def search_root(self) -> Path:
        """Folder of the packed search arrays (``<db file>.search``)."""
        return self.path.with_name(self.path.name + ".search")

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise GalleryError(f"gallery {self.path} is closed", "closed")
        return self._conn

    def _write(self, body):  # type: ignore[no-untyped-def]
        """Run ``body(conn)`` in one IMMEDIATE transaction; commit returns only once it is durable."""
        with self._lock:
            conn = self._db()
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = body(conn)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return result

    @staticmethod
    def _bump(conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")

    @staticmethod
    def _audit(conn: sqlite3.Connection, actor: str, action: str, person_id: str, detail: dict) -> None:
        conn.execute(
            "INSERT INTO audit (at, actor, action, person_id, detail) VALUES (?, ?, ?, ?, ?)",
            (_now(), actor, action, person_id, json.dumps(detail, sort_keys=True)),
        )

    @staticmethod
    def _store_version(conn: sqlite3.Connection, person: Person, version: int) -> int:
        face, embedder = face_to_bytes(person.face) if person.face is not None else (None, None)
        cursor = conn.execute(
            "INSERT INTO persons (person_id, version, recorded_at, face, face_embedder, exceptions, metadata) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                person.person_id, version, _now(), face, embedder,
                json.dumps({str(k): v.value for k, v in person.exceptions.items()}), json.dumps(dict(person.metadata)),
            ),
        )  # fmt: skip
        row = int(cursor.lastrowid)
        conn.executemany(
            "INSERT INTO fingers (person_row, position, quality, template) VALUES (?, ?, ?, ?)",
            [(row, pos, t.quality, t.to_bytes("ektp")) for pos, t in person.fingers.items()],
        )
        return row

    # -- records --------------------------------------------------------------------------------
    def insert(self, person: Person, *, by: str = "system") -> None:
        """Store a new person (version 1); durable when this returns.

        Raises
        ------
        GalleryError
            ``reason="exists"`` if the id is enrolled or was used before (deleted ids are not reused).
        """
        if not isinstance(person, Person):
            raise RecordError(f"insert expects a Person, got {type(person).__name__}")
        actor = _check_actor(by)

        def body(conn: sqlite3.Connection) -> None:
            self._insert_first_version(conn, person, actor)
            self._bump(conn)

        self._write(body)

    def _insert_first_version(self, conn: sqlite3.Connection, person: Person, actor: str) -> None:
        """Version 1 of a new person, its ``current`` row and audit entry (inside the caller's transaction)."""
        if conn.execute("SELECT 1 FROM current WHERE person_id = ?", (person.person_id,)).fetchone():
            raise GalleryError(f"person {person.person_id!r} is already in the gallery; use correct() to change it", "exists")
        row = self._store_version(conn, person, 1)
        conn.execute("INSERT INTO current (person_id, person_row) VALUES (?, ?)", (person.person_id, row))
        self._audit(conn, actor, "insert", person.person_id, {"version": 1, "fingers": sorted(person.fingers)})

    def insert_many(self, persons: Sequence[Person], *, by: str = "system") -> None:
        """Store several new persons in one transaction, all or none; durable when this returns.

        The same checks and audit entries as one :meth:`insert` per person, but one commit (one
        fsync) for the whole batch, so a bulk enrolment or migration is limited by CPU rather
        than by the disk's flush rate.  The generation is bumped once.

        Raises
        ------
        GalleryError
            ``reason="exists"`` if an id is enrolled, was used before, or appears twice in
            ``persons``; nothing of the batch is stored then.
        """
        persons = list(persons)
        for person in persons:
            if not isinstance(person, Person):
                raise RecordError(f"insert_many expects Person records, got {type(person).__name__}")
        actor = _check_actor(by)
        seen: set[str] = set()
        for person in persons:
            if person.person_id in seen:
                raise GalleryError(f"person {person.person_id!r} appears twice in the batch", "exists")
            seen.add(person.person_id)
        if not persons:
            return

        def body(conn: sqlite3.Connection) -> None:
            for person in persons:
                self._insert_first_version(conn, person, actor)
            self._bump(conn)

        self._write(body)

    def correct(self, person: Person, *, by: str = "system", reason: str = "") -> int:
        """Store ``person`` as a new version of an enrolled id, with an audit entry; returns the version."""
        if not isinstance(person, Person):
            raise RecordError(f"correct expects a Person, got {type(person).__name__}")
        actor = _check_actor(by)

        def body(conn: sqlite3.Connection) -> int:
            self._live_row(conn, person.person_id)
            version = 1 + int(conn.execute("SELECT MAX(version) FROM persons WHERE person_id = ?", (person.person_id,)).fetchone()[0])
            row = self._store_version(conn, person, version)
            conn.execute("UPDATE current SET person_row = ? WHERE person_id = ?", (row, person.person_id))
            self._audit(conn, actor, "correct", person.person_id, {"version": version, "fingers": sorted(person.fingers), "reason": reason})
            self._bump(conn)
            return version

        return int(self._write(body))

    def delete(self, person_id: str, *, by: str = "system", reason: str = "") -> None:
        """Withdraw a person from search (soft delete, audited); the versions stay in :meth:`history`."""
        check_person_id(person_id)
        actor = _check_actor(by)

        def body(conn: sqlite3.Connection) -> None:
            self._live_row(conn, person_id)
            conn.execute("UPDATE current SET deleted = 1 WHERE person_id = ?", (person_id,))
            self._audit(conn, actor, "delete", person_id, {"reason": reason})
            self._bump(conn)

        self._write(body)

    @staticmethod
    def _live_row(conn: sqlite3.Connection, person_id: str) -> int:
        found = conn.execute("SELECT person_row, deleted FROM current WHERE person_id = ?", (person_id,)).fetchone()
        if found is None:
            raise GalleryError(f"person {person_id!r} is not in the gallery", "not-found")
        if found[1]:
            raise GalleryError(f"person {person_id!r} was deleted; its versions remain in history()", "deleted")
        return int(found[0])

    def _load(self, conn: sqlite3.Connection, row: int) -> PersonVersion:
        person_id, version, at, face, embedder, exceptions, metadata = conn.execute(
            "SELECT person_id, version, recorded_at, face, face_embedder, exceptions, metadata FROM persons WHERE row = ?", (row,)
        ).fetchone()
        fingers = {
            int(pos): FingerprintTemplate.from_bytes(bytes(blob), "ektp")
            for pos, blob in conn.execute("SELECT position, template FROM fingers WHERE person_row = ?", (row,))
        }
        person = Person(
            person_id,
            fingers=fingers,
            face=None if face is None else face_from_bytes(face, embedder),
            exceptions={int(k): FingerException(v) for k, v in json.loads(exceptions).items()},
            metadata=json.loads(metadata),
        )
        return PersonVersion(int(version), at, person)

    def _read(self, body):  # type: ignore[no-untyped-def]
        """Run ``body(conn)`` in one read transaction (a consistent snapshot)."""
        with self._lock:
            conn = self._db()
            conn.execute("BEGIN")
            try:
                return body(conn)
            finally:
                conn.execute("COMMIT")

    def get(self, person_id: str, version: int | None = None) -> Person:
        """The latest version of a live person, or a given ``version`` (also of a deleted one).

        Raises
        ------
        GalleryError
            ``"not-found"`` for an unknown id or version, ``"deleted"`` for a deleted person without ``version``.
        """
        check_person_id(person_id)

        def body(conn: sqlite3.Connection) -> Person:
            if version is None:
                return self._load(conn, self._live_row(conn, person_id)).person
            found = conn.execute("SELECT row FROM persons WHERE person_id = ? AND version = ?", (person_id, version)).fetchone()
            if found is None:
                raise GalleryError(f"person {person_id!r} has no version {version!r}", "not-found")
            return self._load(conn, int(found[0])).person

        return self._read(body)

    def history(self, person_id: str) -> list[PersonVersion]:
        """Every stored version of ``person_id``, oldest first (empty for an unknown id)."""
        check_person_id(person_id)

        def body(conn: sqlite3.Connection) -> list[PersonVersion]:
            rows = conn.execute("SELECT row FROM persons WHERE person_id = ? ORDER BY version", (person_id,)).fetchall()
            return [self._load(conn, int(r[0])) for r in rows]

        return self._read(body)

    def __contains__(self, person_id: object) -> bool:
        if not isinstance(person_id, str):
            return False
        found = self._read(lambda c: c.execute("SELECT deleted FROM current WHERE person_id = ?", (person_id,)).fetchone())
        return found is not None and not found[0]

    def count(self) -> int:
        """Number of live (not deleted) persons."""
        return int(self._read(lambda c: c.execute("SELECT COUNT(*) FROM current WHERE deleted = 0").fetchone()[0]))

    def ids(self) -> list[str]:
        """Ids of the live persons, sorted."""
        return [r[0] for r in self._read(lambda c: c.execute("SELECT person_id FROM current WHERE deleted = 0 ORDER BY person_id").fetchall())]

    def generation(self) -> int:
        """Counter bumped by every change that affects search (insert, correct, delete)."""
        return int(self._read(lambda c: c.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0]))

    def audit(self, person_id: str | None = None) -> list[AuditEntry]:
        """Audit entries, oldest first, of one person or of all."""
        sql = "SELECT at, actor, action, person_id, detail FROM audit"
        args: tuple = ()
        if person_id is not None:
            sql, args = sql + " WHERE person_id = ?", (check_person_id(person_id),)
        rows = self._read(lambda c: c.execute(sql + " ORDER BY id", args).fetchall())
        return [AuditEntry(at, actor, action, pid, json.loads(detail)) for at, actor, action, pid, detail in rows]

    # -- adjudication ---------------------------------------------------------------------------
    def decide(self, a: str, b: str, decision: str, by: str, note: str = "") -> Decision:
        """Record an adjudicator's decision that ``a`` and ``b`` are (not) the same person.

        Both ids must have been enrolled (live or deleted).  Later decisions on a pair supersede
        earlier ones; all are kept.
        """
        check_person_id(a)
        check_person_id(b)
        if a == b:
            raise RecordError(f"a decision needs two different persons, got {a!r} twice")
        if decision not in DECISIONS:
            raise RecordError(f"decision must be one of {DECISIONS}, got {decision!r}")
        actor = _check_actor(by)
        if not isinstance(note, str):
            raise RecordError(f"note must be a str, got {type(note).__name__}")
        first, second = sorted((a, b))
        at = _now()

        def body(conn: sqlite3.Connection) -> None:
            for pid in (first, second):
                if conn.execute("SELECT 1 FROM current WHERE person_id = ?", (pid,)).fetchone() is None:
                    raise GalleryError(f"person {pid!r} is not in the gallery", "not-found")
            conn.execute(
                "INSERT INTO decisions (a, b, decision, decided_by, at, note) VALUES (?, ?, ?, ?, ?, ?)",
                (first, second, decision, actor, at, note),
            )
            for pid, other in ((first, second), (second, first)):
                self._audit(conn, actor, "decide", pid, {"other": other, "decision": decision})

        self._write(body)
        return Decision(first, second, decision, actor, at, note)

    def decisions(self, person_id: str) -> list[Decision]:
        """Decisions involving ``person_id``, oldest first."""
        check_person_id(person_id)
        rows = self._read(
            lambda c: c.execute(
                "SELECT a, b, decision, decided_by, at, note FROM decisions WHERE a = ? OR b = ? ORDER BY id", (person_id, person_id)
            ).fetchall()
        )
        return [Decision(*r) for r in rows]

    def _latest_decisions(self) -> dict[tuple[str, str], str]:
        rows = self._read(lambda c: c.execute("SELECT a, b, decision FROM decisions ORDER BY id").fetchall())
        return {(a, b): d for a, b, d in rows}

    # -- search ---------------------------------------------------------------------------------
    def search_arrays(self) -> SearchArrays:
        """The packed arrays matched with SQLite's current generation, brought up to date if behind.

        Uses the published log when its marker names the current generation; otherwise appends
        what changed (under the search folder's writer lock).  A log that is missing, torn or
        damaged is rebuilt from SQLite; if the folder cannot be written the arrays are read
        into memory instead.  Never returns rows another process has not finished publishing.
        """
        with self._lock:
            conn = self._db()
            if self._arrays is not None and self._arrays.generation == self.generation():
                return self._arrays  # the common case, without reading the live set
            for _ in range(3):
                snapshot = self._read(Snapshot.read)
                if self._arrays is not None and self._arrays.generation == snapshot.generation:
                    return self._arrays
                published = Published.read(self.search_root)
                if published is None or published.generation < snapshot.generation:
                    break  # behind: catch up below
                mapped = SearchArrays.map(self.search_root, published, self._arrays)
                if mapped is None:
                    break  # damaged: rebuilt below
                arrays = SearchArrays.matched(self.search_root, published, mapped[0], mapped[1], snapshot, mapped[2])
                if arrays is not None:
                    self._arrays = arrays
                    return arrays
                # the log is newer than our snapshot: take a fresh snapshot
            try:
                arrays = SearchArrays.update(conn, self.search_root, self.tuning, self._arrays)
            except OSError:  # e.g. a read-only or full disk: search from memory, the store stays correct
                arrays = SearchArrays.in_memory(conn, self.search_root)
            self._arrays = arrays
            return arrays

    def rebuild_arrays(self) -> SearchArrays:
        """Rebuild the packed arrays from SQLite unconditionally (a new epoch)."""
        with self._lock:
            self._arrays = None
            try:
                with SearchArrays.writer_lock(self.search_root):
                    (self.search_root / "published.json").unlink(missing_ok=True)
            except OSError:  # an unwritable folder: search_arrays() reads SQLite into memory
                pass
            return self.search_arrays()

    def _persons_at(self, person_rows: np.ndarray) -> dict[int, tuple[str, object]]:
        """(person id, face) of the given person versions (immutable, so any snapshot gives the same)."""
        found: dict[int, tuple[str, object]] = {}
        for start in range(0, person_rows.size, 50_000):
            chunk = json.dumps(person_rows[start : start + 50_000].tolist())
            rows = self._read(
                lambda c, chunk=chunk: c.execute(
                    "SELECT row, person_id, face, face_embedder FROM persons WHERE row IN (SELECT value FROM json_each(?))", (chunk,)
                ).fetchall()
            )
            for row, person_id, face, embedder in rows:
                found[int(row)] = (person_id, None if face is None else face_from_bytes(face, embedder))
        return found

    def shard(self) -> Shard:
        """Every live person packed for search (:class:`._search.Shard`), kept in step per generation.

        Follows the packed arrays incrementally: new person versions are appended, deleted and
        superseded ones tombstoned; once tombstones pass ``tuning.compact_dead_fraction`` the
        shard is repacked.  Its templates are slices of the memory-mapped log, not copies.
        """
        with self._lock:
            arrays = self.search_arrays()
            if self._shard is not None and self._shard[0] == arrays.generation:
                return self._shard[1]
            live = arrays.live_person_rows
            shard = self._shard[1] if self._shard is not None else None
            gone_slots = np.zeros(0, np.int64)
            if shard is not None:
                held = shard.live_rows()
                gone_slots = shard.slots_of_rows(np.setdiff1d(held, live, assume_unique=True))
                added = np.setdiff1d(live, held, assume_unique=True)
                dead = shard.retired + gone_slots.size
                too_dead = dead >= max(self.tuning.compact_min_dead_rows, 1) and dead > self.tuning.compact_dead_fraction * (
                    len(shard.person_ids) + added.size
                )
                # person rows only grow, so new versions come after every held one; anything else: repack
                if too_dead or (added.size and shard.rows is not None and shard.rows.size and added[0] <= shard.rows[-1]):
                    shard = None
            if shard is None:
                threads = self.tuning.search_threads or os.cpu_count() or 1
                shard = Shard([], {}, [], {}, self._prepared, rows=np.zeros(0, np.int64), threads=threads)
                gone_slots, added = np.zeros(0, np.int64), live
            shard.retire(gone_slots.tolist())
            persons = self._persons_at(added)
            rows = arrays.rows
            mine = np.flatnonzero(np.isin(rows["person_row"], added))
            fingers: dict[int, tuple] = {}
            for position in np.unique(rows["position"][mine]).tolist():
                at = mine[rows["position"][mine] == position]
                person_rows = rows["person_row"][at].astype(np.int64)
                templates = TemplateBytes.of_slices(
                    arrays.blob, rows["offset"][at].astype(np.int64), rows["length"][at].astype(np.uint32), arrays.blob_key
                )
                fingers[position] = (np.searchsorted(added, person_rows), templates, rows["quality"][at], person_rows)
            added_rows = added.tolist()
            shard.extend([persons[r][0] for r in added_rows], fingers, [persons[r][1] for r in added_rows], rows=added)  # type: ignore[misc]
            self._shard = (arrays.generation, shard)
            return shard

    def prepare_search(self) -> None:
        """Bring the search structures up to date now rather than at the next search.

        The packed arrays and the in-process shard, and with ``search="indexed"`` the fingerprint
        index (built from scratch on first use: about 1 ms of CPU per finger).  A service calls
        it at start-up so that its first identify is not the slow one.
        """
        with self._lock:
            shard = self.shard()
            if self._indexed:
                self._sync_index(shard)

    def _not_duplicates(self, person_id: str) -> frozenset[str]:
        """Ids whose latest adjudication against ``person_id`` is ``not-duplicate``."""
        decided = self._latest_decisions()
        return frozenset(
            b if a == person_id else a for (a, b), d in decided.items() if d == "not-duplicate" and person_id in (a, b)
        )

    def _search(self, person: Person, k: int, exclude: frozenset[str], only: frozenset[str] | None = None) -> list[Ranked]:
        """The in-process search: one shard holding everyone (a cluster gallery overrides this)."""
        with self._lock:
            shard = self.shard()
            if self._indexed and only is None and person.fingers:
                return self._search_indexed(shard, person, k, exclude)
            return shard.search(person, k, self.fusion, exclude, only=only)

    def _sync_index(self, shard: Shard):  # type: ignore[no-untyped-def]
        """The :class:`~ektp_biometrics.fingerprint.index.FingerprintIndex` of the shard's live fingers, brought up to date.

        Index ids are the SQLite person rows (as text): a corrected person's old row leaves the
        index and its new row enters it; rows map back to shard slots by bisection.
        """
        from ..fingerprint.index import FingerprintIndex

        generation = self._shard[0] if self._shard is not None else -1
        if self._index is None:
            saved = self._load_index()
            if saved is not None:
                self._index, self._index_rows = saved
                self._index_unsaved = 0
            else:
                self._index = FingerprintIndex(threads=self.tuning.search_threads or None)
                self._index_rows, self._index_unsaved = np.zeros(0, np.int64), 0
            self._index_generation = -1
        index: FingerprintIndex = self._index  # type: ignore[assignment]
        if self._index_generation == generation:
            return index
        live = shard.live_rows()
        gone = np.setdiff1d(self._index_rows, live, assume_unique=True)
        if gone.size:
            index.remove([str(r) for r in gone.tolist() if str(r) in index])
        added = np.setdiff1d(live, self._index_rows, assume_unique=True)
        for start in range(0, added.size, _INDEX_BATCH):
            slots = shard.slots_of_rows(added[start : start + _INDEX_BATCH])
            ids: list[str] = []
            templates: list[FingerprintTemplate] = []
            positions: list[int] = []
            names = {slot: str(row) for slot, row in zip(slots.tolist(), shard.rows[slots].tolist())}  # type: ignore[index]
            for position, (_, blobs, _) in shard.fingers.items():
                at = shard.finger_at(position, slots)
                for slot, i in zip(slots.tolist(), at.tolist()):
                    if i >= 0:
                        ids.append(names[slot])
                        templates.append(FingerprintTemplate.from_bytes(blobs[i], "ektp"))
                        positions.append(position)
            if ids:
                index.add(ids, templates, positions)
        self._index_rows = live.copy()
        self._index_generation = generation
        self._index_unsaved += int(gone.size + added.size)
        if self._index_unsaved >= max(self.tuning.index_save_min_changes, 1) and len(index):
            saved_as = self._save_index(index, self._index_rows)
            if saved_as is not None:
                self._index_unsaved = 0
        if added.size >= _INDEX_BATCH:
            index.trim()  # a build's arrays grew by doubling: keep only the rows in use
        return index

    def _index_files(self) -> tuple[Path, str]:
        return self.search_root / _INDEX_MARKER, self._index_params().stored_form

    def _index_params(self):  # type: ignore[no-untyped-def]
        from ..fingerprint.index_params import DEFAULT_INDEX_PARAMETERS

        return DEFAULT_INDEX_PARAMETERS

    def _load_index(self):  # type: ignore[no-untyped-def]
        """(index, person rows it holds) saved by another process or an earlier run, if it is usable; else None."""
        from ..errors import TemplateFormatError
        from ..fingerprint.index import FingerprintIndex

        marker, params = self._index_files()
        try:
            meta = json.loads(marker.read_bytes())
            if meta.get("format") != _INDEX_FORMAT or meta.get("params") != params:
                return None
            rows = np.load(self.search_root / meta["rows"], allow_pickle=False)
            index = FingerprintIndex.load(self.search_root / meta["index"], threads=self.tuning.search_threads or None)
        except (OSError, ValueError, KeyError, TypeError, AttributeError, TemplateFormatError, ConfigurationError):
            return None
        if rows.dtype != np.int64 or rows.ndim != 1 or rows.size != int(meta["persons"]) or np.any(np.diff(rows) <= 0):
            return None
        # every finger of those person rows, and nothing else (the log may since have dropped dead rows: rebuild then)
        arrays = self.search_arrays()
        if len(index) != int(meta["fingers"]) or len(index) != int(np.isin(arrays.log["person_row"], rows).sum()):
            return None
        return index, rows

    def _save_index(self, index, rows: np.ndarray) -> Path | None:  # type: ignore[no-untyped-def]
        """Save the index and its person rows next to the search log (then the marker, atomically); None if it cannot be written."""
        from .._files import atomic_write

        marker, params = self._index_files()
        stamp = f"{os.getpid()}-{threading.get_ident()}-{_dt.datetime.now(_dt.timezone.utc).strftime('%Y%m%d%H%M%S%f')}"
        index_path, rows_path = self.search_root / f"index-{stamp}.npz", self.search_root / f"index-{stamp}.rows.npy"
        try:
            self.search_root.mkdir(parents=True, exist_ok=True)
            index.save(index_path)
            with open(rows_path, "wb") as handle:
                np.save(handle, rows, allow_pickle=False)
            for path in (index_path, rows_path):
                with open(path, "rb") as handle:
                    os.fsync(handle.fileno())
            meta = {"format": _INDEX_FORMAT, "params": params, "index": index_path.name, "rows": rows_path.name,
                    "persons": int(rows.size), "fingers": len(index)}  # fmt: skip
            atomic_write(marker, json.dumps(meta, sort_keys=True).encode())
        except OSError:
            index_path.unlink(missing_ok=True)
            rows_path.unlink(missing_ok=True)
            return None
        for old in self.search_root.glob("index-*"):
            if old.name not in (index_path.name, rows_path.name):
                old.unlink(missing_ok=True)
        return index_path

    def _search_indexed(self, shard: Shard, person: Person, k: int, exclude: frozenset[str]) -> list[Ranked]:
        """Shortlist with the fingerprint index, then fuse the shortlisted persons' full-matcher scores.

        :meth:`FingerprintIndex.search_person` already compares every shortlisted person in full
        on every probe finger (``match`` of the probe with that person's finger of the same
        position), which is exactly the comparison the exhaustive search makes; those scores
        are fused here as in :meth:`Shard.search`, so a returned candidate carries the
        exhaustive search's scores.
        """
        index = self._sync_index(shard)
        if len(index) == 0:
            return shard.search(person, k, self.fusion, exclude)
        # every person the index scored in full: this fusion may rank them otherwise than the index's
        found = index.search_person(dict(person.fingers), k=k + len(exclude), every_scored=True)
        if not found:
            return []
        slots = shard.slots_of_rows(np.array([int(c.id) for c in found], np.int64))
        scores: dict[int, dict[int, float]] = {}
        for slot, candidate in zip(slots.tolist(), found):
            scores[slot] = {}
        for position in person.fingers:
            has = shard.finger_at(position, slots) >= 0  # a position the person has no finger of is not compared
            for slot, candidate, present in zip(slots.tolist(), found, has.tolist()):
                if present:
                    scores[slot][position] = dict(candidate.finger_scores)[position]
        faces = slots.tolist() if person.face is not None else ()
        return shard.rank(person, {s: v for s, v in scores.items() if v}, k, self.fusion, exclude, faces=faces)

    def identify(
        self, person: Person, k: int = 10, fpir: float | None = None, *, among: Iterable[str] | None = None
    ) -> list[Candidate]:
        """The ``k`` enrolled persons most similar to ``person``, best first (exhaustive search).

        Every probe finger is compared with every live gallery finger of the same ISO position
        (:func:`ektp_biometrics.fingerprint.match.match_many`), the faces when both exist; each
        candidate's comparisons are fused into calibrated evidence
        (:mod:`ektp_biometrics.gallery.fusion`): fingers missing on either side do not count,
        low-quality prints weigh less.  A probe whose id is enrolled is not returned as its own
        candidate, nor as a candidate adjudicated ``not-duplicate`` against it.

        Parameters
        ----------
        person : Person
        k : int
            Most candidates returned.
        fpir : float, optional
            Target false-positive identification rate in (0, 1]: only candidates whose fused
            false-match probability is at most ``fpir / N`` are returned, ``N`` the number of
            live persons searched (:func:`ektp_biometrics.gallery.fusion.fpir_threshold`).
        among : iterable of str, optional
            Search only these ids (an ABIS "gallery"); ids not enrolled are ignored, and ``N`` is
            the number of them that are live.

        Returns
        -------
        list of Candidate
        """
        if not isinstance(person, Person):
            raise RecordError(f"identify expects a Person, got {type(person).__name__}")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigurationError(f"k must be a positive integer, got {k!r}")
        only = None
        if among is not None:
            if isinstance(among, str):
                raise ConfigurationError("among must be a collection of person ids, not one str")
            only = frozenset(among)
            for pid in only:
                check_person_id(pid)
        size = self.count() if only is None else sum(1 for pid in only if pid in self)
        cut = None if fpir is None else fpir_threshold(fpir, size)
        exclude = self._not_duplicates(person.person_id) | {person.person_id}
        ranked = self._search(person, k, exclude, only)
        return [_candidate(r) for r in ranked if cut is None or r.score >= cut]

    def dedup(
        self,
        batch: Sequence[Person],
        *,
        fpir: float | None = None,
        fmr: float | None = None,
        threshold: float | None = None,
        k: int = 10,
    ) -> DedupReport:
        """Search each person of ``batch`` against the gallery and against the rest of the batch.

        Parameters
        ----------
        batch : sequence of Person
            Persons not yet enrolled; their ids must be distinct.
        fpir : float, optional
            Target false-positive identification rate of one search, over the gallery and the
            batch together (``N`` = live persons + batch size): each comparison is held to
            ``fpir / N``.
        fmr : float, optional
            Target fused false-match probability of one comparison.
        threshold : float, optional
            A fused score threshold (decades of evidence) given directly.  Exactly one of
            ``fpir``, ``fmr`` and ``threshold``.
        k : int
            Gallery candidates kept per probe before thresholding.

        Returns
        -------
        DedupReport
            Pairs whose fused score reaches the threshold, best first, each with the latest
            adjudication of the pair if one is stored; pairs adjudicated ``not-duplicate`` are
            not reported again (they are counted in ``suppressed``).

        Raises
        ------
        ConfigurationError
            If not exactly one of ``fpir``, ``fmr`` and ``threshold`` is given, or it is out of range.
        """
        batch = list(batch)
        for p in batch:
            if not isinstance(p, Person):
                raise RecordError(f"dedup expects Person records, got {type(p).__name__}")
        ids = [p.person_id for p in batch]
        if len(set(ids)) != len(ids):
            raise RecordError("the batch holds the same person_id twice")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigurationError(f"k must be a positive integer, got {k!r}")
        cut = _threshold(fpir, fmr, threshold, lambda: self.count() + len(batch))
        decided = self._latest_decisions()
        pairs: list[DedupPair] = []
        suppressed = 0

        def add(probe: Person, ranked: Ranked, source: str) -> None:
            nonlocal suppressed
            if ranked.score < cut:
                return
            decision = decided.get(tuple(sorted((probe.person_id, ranked.person_id))))  # type: ignore[call-overload]
            if decision == "not-duplicate":
                suppressed += 1
                return
            pairs.append(DedupPair(
                probe.person_id, ranked.person_id, source, ranked.score, ranked.finger_scores, ranked.face_score, decision,
            ))  # fmt: skip

        for probe in batch:
            for ranked in self._search(probe, k, frozenset({probe.person_id})):
                add(probe, ranked, "gallery")
        own = Shard.of_persons(batch)
        for i, probe in enumerate(batch):
            for ranked in own.search(probe, len(batch), self.fusion, first=i + 1):
                add(probe, ranked, "batch")
        pairs.sort(key=lambda p: (-p.score, p.probe_id, p.candidate_id))
        return DedupReport(pairs, len(batch), cut, suppressed)

    def stats(self) -> dict:
        """Counts and sizes: persons, fingers per position, file sizes, bytes per enrolled finger."""
        arrays = self.search_arrays()
        per_position = {pos: stop - start for pos, (start, stop) in sorted(arrays.ranges.items())}
        files = {p.name: p.stat().st_size for p in [self.path, Path(f"{self.path}-wal")] if p.exists()}
        if arrays.folder.is_dir():
            for p in sorted(arrays.folder.iterdir()):
                try:
                    files[f"{self.search_root.name}/{p.name}"] = p.stat().st_size
                except OSError:  # removed meanwhile by another process's compaction
                    continue
        fingers = int(arrays.rows.shape[0])
        return {
            "persons": self.count(),
            "fingers": fingers,
            "fingers_per_position": per_position,
            "generation": arrays.generation,
            "files": files,
            "search_bytes_per_finger": arrays.nbytes / fingers if fingers else 0.0,
            "dead_rows": arrays.dead_rows,
            "prepared_cache_bytes": self._prepared.nbytes,
            "database_bytes_per_finger": files.get(self.path.name, 0) / fingers if fingers else 0.0,
        }


def _candidate(ranked: Ranked) -> Candidate:
    return Candidate(ranked.person_id, ranked.score, ranked.finger_scores, ranked.face_score, ranked.false_match_probability)


def _threshold(fpir: float | None, fmr: float | None, threshold: float | None, size) -> float:  # type: ignore[no-untyped-def]
    """The fused score threshold of exactly one of the three ways to give it."""
    given = [name for name, value in (("fpir", fpir), ("fmr", fmr), ("threshold", threshold)) if value is not None]
    if len(given) != 1:
        raise ConfigurationError(
            "give exactly one of fpir (a target false-positive identification rate), fmr (a target false match "
            f"rate of one comparison) and threshold (a fused score in decades); got {given or 'none'}"
        )
    if threshold is not None:
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 <= float(threshold) < 400:
            raise ConfigurationError(f"threshold must be a fused score in decades, 0 <= threshold < 400, got {threshold!r}")
        return float(threshold)
    if fmr is not None:
        return fpir_threshold(fmr, 1)
    return fpir_threshold(fpir, size())  # type: ignore[arg-type]
