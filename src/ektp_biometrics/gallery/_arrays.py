"""Packed, memory-mapped template arrays for search: an append-only log kept in step with SQLite.

Layout (docs/gallery_scale.md): next to ``gallery.db`` a folder ``gallery.db.search/`` holds

``rows-<epoch>.bin``
    Raw records of :data:`ROW_DTYPE`, appended in person-row order: the SQLite row of the person
    version, the ISO finger position, the template quality, and the byte offset and length of
    the template inside ``templates-<epoch>.bin``.
``templates-<epoch>.bin``
    The templates' lossless ``"ektp"`` bytes, concatenated.
``published.json``
    The marker naming what readers may use: format, epoch, the SQLite generation it matches,
    the number of rows and bytes published, the highest person row appended and the CRC-32 of
    the published prefix of both files.
``lock``
    Held (``flock``) by the one process appending or compacting.

An update appends the fingers of person rows newer than the marker, fsyncs both files, then
replaces the marker atomically (temporary file, fsync, rename, fsync of the folder).  Bytes past
the published counts belong to no one (a writer killed mid-append) and are cut off by the next
writer.  A reader takes the marker, maps only the published prefix and checks it, so it never
sees an unpublished row; deleted and corrected persons stay in the log as *dead* rows (the live
set comes from the same SQLite snapshot), until enough of them make an update rewrite the live
rows into a new epoch (compaction).  A marker that is missing, torn or disagrees with the files
makes the next update rebuild the log from SQLite.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sqlite3
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._files import atomic_write
from ..errors import ConfigurationError

__all__ = ["ARRAYS_FORMAT", "DEFAULT_ARRAYS", "ROW_DTYPE", "ArraysParameters", "Published", "SearchArrays", "Snapshot"]

ARRAYS_FORMAT = 2
MARKER = "published.json"
ROW_DTYPE = np.dtype(
    [("person_row", "<i8"), ("position", "u1"), ("quality", "u1"), ("length", "<u4"), ("offset", "<u8")]
)
_CRC_BLOCK = 1 << 22


@dataclass(frozen=True)
class ArraysParameters:
    """Tunables of the search structures.

    Attributes
    ----------
    compact_dead_fraction : float
        Share of dead rows (deleted or superseded persons) in the log above which an update
        rewrites the live rows into a new epoch, unitless.  0.25 keeps the log within 4/3 of its
        live size, so compaction costs amortised O(1) per change (engineering choice, issue 6).
    compact_min_dead_rows : int
        Dead rows below which the log is never compacted, rows (small galleries rewrite nothing).
    prepared_cache_bytes : int
        Budget of the prepared matcher templates kept between searches, bytes.  A prepared
        template is ``MatchTemplate.nbytes``, about 35 KB for 25-45 minutiae (70.8 KB per
        two-finger person, benchmarks/gallery_scale.py), so the default 1 GiB holds about 30,000
        fingers; the rest are prepared anew at every search (about 2.9 ms of CPU each).
    search_threads : int
        Threads of the ``search="indexed"`` mode's :class:`~ektp_biometrics.fingerprint.index.FingerprintIndex`
        (its first stage and shortlist matching release the GIL); 0 for ``os.cpu_count()``.
        Results do not depend on it.
    index_save_min_changes : int
        The indexed mode saves its index next to the search log (``index.json`` naming an
        ``index-*.npz`` and its person rows) once this many persons were added or removed since
        the last save, including a first build; another process (or a restart) then loads it and
        catches up on the changes since, instead of rebuilding it at about 1 ms of CPU per finger.
    """

    compact_dead_fraction: float = 0.25
    compact_min_dead_rows: int = 1024
    prepared_cache_bytes: int = 1 << 30
    search_threads: int = 0
    index_save_min_changes: int = 1000

    def __post_init__(self) -> None:
        if not 0.0 < self.compact_dead_fraction <= 1.0:
            raise ConfigurationError(f"compact_dead_fraction must be in (0, 1], got {self.compact_dead_fraction!r}")
        for name in ("compact_min_dead_rows", "prepared_cache_bytes", "search_threads", "index_save_min_changes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigurationError(f"{name} must be a non-negative integer, got {value!r}")


DEFAULT_ARRAYS = ArraysParameters()


@dataclass(frozen=True)
class Published:
    """The content of ``published.json``: what readers may map."""

    epoch: int
    generation: int
    rows: int
    bytes: int
    max_person_row: int
    rows_crc: int
    bytes_crc: int

    def to_json(self) -> bytes:
        return json.dumps({"format": ARRAYS_FORMAT, **self.__dict__}, sort_keys=True).encode()

    @classmethod
    def read(cls, root: Path) -> Published | None:
        try:
            data = json.loads((root / MARKER).read_bytes())
            if data.pop("format") != ARRAYS_FORMAT:
                return None
            published = cls(**{k: int(data[k]) for k in cls.__dataclass_fields__})
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if min(published.epoch, published.generation, published.rows, published.bytes) < 0:
            return None
        return published


@dataclass(frozen=True)
class Snapshot:
    """One SQLite read snapshot: its generation and the person rows that are live in it (sorted)."""

    generation: int
    live_rows: np.ndarray

    @classmethod
    def read(cls, conn: sqlite3.Connection) -> Snapshot:
        """Read inside the caller's transaction."""
        generation = int(conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])
        cursor = conn.execute("SELECT person_row FROM current WHERE deleted = 0 ORDER BY person_row")
        live = np.fromiter((r for (r,) in cursor), dtype=np.int64)
        return cls(generation, live)


def _crc(data: np.ndarray, start: int = 0, crc: int = 0) -> int:
    view = memoryview(data).cast("B") if data.size else memoryview(b"")
    for i in range(start, len(view), _CRC_BLOCK):
        crc = zlib.crc32(view[i : i + _CRC_BLOCK], crc)
    return crc


def _files(root: Path, epoch: int) -> tuple[Path, Path]:
    return root / f"rows-{epoch:06d}.bin", root / f"templates-{epoch:06d}.bin"


@dataclass(frozen=True, eq=False)
class SearchArrays:
    """The published log matched with one SQLite snapshot; the log is memory-mapped read-only.

    Attributes
    ----------
    generation : int
        The SQLite generation of the snapshot giving the live set.
    published : Published
        The marker the log was mapped from (its generation is at least ``generation``).
    log : (M,) ndarray of ROW_DTYPE
        Every published row, live or dead, in person-row order.
    blob : (B,) ndarray of uint8
        The concatenated template bytes.
    rows : (N,) ndarray of ROW_DTYPE
        The live rows, sorted by finger position, then person row (what SQLite holds, row for row).
    ranges : dict of int to (int, int)
        Range ``[start, stop)`` of ``rows`` of each finger position present.
    folder : Path
        The search folder.
    live_person_rows : (P,) ndarray of int64
        The snapshot's live person rows, sorted (persons without fingers included).
    blob_key : (int, int, int) or None
        (device, inode, epoch) of the memory-mapped template file, None when :attr:`blob` is in
        memory.  Within one file the published prefix never changes, so a slice of an earlier
        mapping of the same key stays valid in a later, longer one.
    """

    generation: int
    published: Published
    log: np.ndarray
    blob: np.ndarray
    rows: np.ndarray
    ranges: dict[int, tuple[int, int]]
    folder: Path
    live_person_rows: np.ndarray
    blob_key: tuple[int, int, int] | None = None

    def template_bytes(self, i: int) -> bytes:
        """The stored bytes of live row ``i`` (of :attr:`rows`)."""
        offset, length = int(self.rows["offset"][i]), int(self.rows["length"][i])
        return self.blob[offset : offset + length].tobytes()

    @property
    def nbytes(self) -> int:
        """Bytes of the live rows and their templates (what a compacted log takes)."""
        return int(self.rows.nbytes + self.rows["length"].sum(dtype=np.int64))

    @property
    def dead_rows(self) -> int:
        return int(self.log.shape[0] - self.rows.shape[0])

    # -- reading ----------------------------------------------------------------------------------
    @classmethod
    def map(
        cls, root: Path, published: Published, verified: SearchArrays | None = None
    ) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int] | None] | None:
        """(log, blob, blob key) of ``published``, checked against its CRCs, else None.

        ``verified`` is an earlier mapping of the same epoch whose prefix was checked already, so
        only the appended part is read again.  The key is :attr:`SearchArrays.blob_key`.
        """
        rows_path, blob_path = _files(root, published.epoch)
        try:
            blob_stat = blob_path.stat()
            if rows_path.stat().st_size < published.rows * ROW_DTYPE.itemsize or blob_stat.st_size < published.bytes:
                return None
            log = np.memmap(rows_path, dtype=ROW_DTYPE, mode="r", shape=(published.rows,)) if published.rows else np.zeros(0, ROW_DTYPE)
            blob = np.memmap(blob_path, dtype=np.uint8, mode="r", shape=(published.bytes,)) if published.bytes else np.zeros(0, np.uint8)
        except (OSError, ValueError):
            return None
        old = verified.published if verified is not None and verified.published.epoch == published.epoch else None
        if old is not None and old.rows <= published.rows and old.bytes <= published.bytes:
            rows_crc = _crc(log.view(np.uint8).reshape(-1) if log.size else np.zeros(0, np.uint8), old.rows * ROW_DTYPE.itemsize, old.rows_crc)
            bytes_crc = _crc(blob, old.bytes, old.bytes_crc)
        else:
            rows_crc = _crc(log.view(np.uint8).reshape(-1) if log.size else np.zeros(0, np.uint8))
            bytes_crc = _crc(blob)
        if rows_crc != published.rows_crc or bytes_crc != published.bytes_crc:
            return None
        if log.size:
            ends = log["offset"].astype(np.int64) + log["length"]
            if int(log["offset"][0]) != 0 or int(ends[-1]) != published.bytes or np.any(ends[:-1] != log["offset"][1:]):
                return None
        elif published.bytes:
            return None
        key = (blob_stat.st_dev, blob_stat.st_ino, published.epoch) if isinstance(blob, np.memmap) else None
        return log, blob, key

    @classmethod
    def matched(
        cls, root: Path, published: Published, log: np.ndarray, blob: np.ndarray, snapshot: Snapshot,
        blob_key: tuple[int, int, int] | None = None,
    ) -> SearchArrays | None:
        """The log seen through ``snapshot``'s live set; None unless the log is of the snapshot's generation.

        (A later log may already be compacted past rows that are live in an older snapshot.)
        """
        if published.generation != snapshot.generation:
            return None
        rows = np.asarray(log[np.isin(log["person_row"], snapshot.live_rows)])
        rows = rows[np.argsort(rows["position"], kind="stable")]  # the log is in person-row order already
        positions, starts = np.unique(rows["position"], return_index=True)
        stops = np.append(starts[1:], rows.shape[0])
        ranges = {int(p): (int(a), int(b)) for p, a, b in zip(positions, starts, stops)}
        return cls(snapshot.generation, published, log, blob, rows, ranges, root, snapshot.live_rows, blob_key)

    @classmethod
    def in_memory(cls, conn: sqlite3.Connection, root: Path) -> SearchArrays:
        """The live rows read straight from SQLite into memory (when the search folder cannot be written)."""
        conn.execute("BEGIN")
        try:
            snapshot = Snapshot.read(conn)
            records = conn.execute(
                "SELECT f.person_row, f.position, f.quality, f.template FROM fingers f "
                "JOIN current c ON c.person_row = f.person_row WHERE c.deleted = 0 ORDER BY f.person_row, f.position"
            ).fetchall()
        finally:
            conn.execute("COMMIT")
        log = np.zeros(len(records), dtype=ROW_DTYPE)
        offset = 0
        for i, (person_row, position, quality, template) in enumerate(records):
            log[i] = (person_row, position, quality, len(template), offset)
            offset += len(template)
        blob = np.frombuffer(b"".join(r[3] for r in records), dtype=np.uint8)
        max_row = int(log["person_row"].max()) if len(records) else -1
        published = Published(0, snapshot.generation, len(records), offset, max_row, 0, 0)
        arrays = cls.matched(root, published, log, blob, snapshot)
        assert arrays is not None
        return arrays

    # -- writing ----------------------------------------------------------------------------------
    @staticmethod
    @contextmanager
    def writer_lock(root: Path) -> Iterator[None]:
        """The one-appender lock of ``root`` (released by the kernel if the holder dies)."""
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(root / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    @classmethod
    def update(cls, conn: sqlite3.Connection, root: Path, params: ArraysParameters = DEFAULT_ARRAYS,
               verified: SearchArrays | None = None) -> SearchArrays:  # fmt: skip
        """Bring the log up to SQLite's current generation, under the writer lock, and return it.

        Appends the fingers of person rows newer than the marker (O(new rows)), compacts when
        the dead rows pass :attr:`ArraysParameters.compact_dead_fraction`, and rebuilds from
        scratch when the marker or the files are unusable.
        """
        with cls.writer_lock(root):
            published = Published.read(root)
            mapped = cls.map(root, published, verified) if published is not None else None
            if mapped is None:
                published = None
            conn.execute("BEGIN")
            try:
                snapshot = Snapshot.read(conn)
                if published is not None and published.generation == snapshot.generation:
                    new = []
                else:
                    after = published.max_person_row if published is not None else -1
                    new = conn.execute(
                        "SELECT person_row, position, quality, template FROM fingers WHERE person_row > ? "
                        "ORDER BY person_row, position", (after,)
                    ).fetchall()  # fmt: skip
                if published is not None:
                    live_new = np.isin(np.array([r[0] for r in new], dtype=np.int64), snapshot.live_rows)
                    dead = int(published.rows - np.isin(mapped[0]["person_row"], snapshot.live_rows).sum()) if mapped else 0  # type: ignore[index]
                    dead += int((~live_new).sum())
                    total = published.rows + len(new)
                    if dead >= max(params.compact_min_dead_rows, 1) and dead > params.compact_dead_fraction * total:
                        published = None  # rewrite only the live rows, in a new epoch
                if published is None:
                    epoch = 1 + max([_epoch_of(p) for p in root.glob("rows-*.bin")] + [0])
                    new = conn.execute(
                        "SELECT f.person_row, f.position, f.quality, f.template FROM fingers f "
                        "JOIN current c ON c.person_row = f.person_row WHERE c.deleted = 0 ORDER BY f.person_row, f.position"
                    ).fetchall()
                    base = Published(epoch, -1, 0, 0, -1, 0, 0)
                else:
                    base = published
            finally:
                conn.execute("COMMIT")
            if new or base.generation != snapshot.generation:
                published = cls._append(root, base, new, snapshot.generation)
                mapped = None
            assert published is not None
            if mapped is None:
                mapped = cls.map(root, published, verified if base.rows else None)
                if mapped is None:
                    raise OSError(f"the search log just written in {root} does not read back")
            for stale in root.glob("*-*.bin"):
                if _epoch_of(stale) < published.epoch - 1:  # keep the previous epoch for readers mid-switch
                    stale.unlink(missing_ok=True)
            for old_format in root.glob("g" + "[0-9]" * 12):  # format 1: one folder per generation
                shutil.rmtree(old_format, ignore_errors=True)
        arrays = cls.matched(root, published, mapped[0], mapped[1], snapshot, mapped[2])
        assert arrays is not None  # the marker's generation equals the snapshot's
        return arrays

    @staticmethod
    def _append(root: Path, base: Published, new: list, generation: int) -> Published:
        """Append ``new`` (person_row, position, quality, template) after ``base``, fsync, publish."""
        rows_path, blob_path = _files(root, base.epoch)
        records = np.zeros(len(new), dtype=ROW_DTYPE)
        offset = base.bytes
        for i, (person_row, position, quality, template) in enumerate(new):
            records[i] = (person_row, position, quality, len(template), offset)
            offset += len(template)
        rows_crc, bytes_crc = base.rows_crc, base.bytes_crc
        with open(rows_path, "ab") as rows_file, open(blob_path, "ab") as blob_file:
            # cut what a killed writer left past the published counts
            rows_file.truncate(base.rows * ROW_DTYPE.itemsize)
            blob_file.truncate(base.bytes)
            data = records.tobytes()
            rows_file.write(data)
            rows_crc = zlib.crc32(data, rows_crc)
            for record in new:
                blob_file.write(record[3])
                bytes_crc = zlib.crc32(record[3], bytes_crc)
            for handle in (rows_file, blob_file):
                handle.flush()
                os.fsync(handle.fileno())
        max_row = max(base.max_person_row, int(records["person_row"].max()) if len(new) else -1)
        published = Published(base.epoch, generation, base.rows + len(new), offset, max_row, rows_crc, bytes_crc)
        atomic_write(root / MARKER, published.to_json())  # readers see the new rows only from here on
        return published


def _epoch_of(path: Path) -> int:
    try:
        return int(path.stem.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return -1
