"""Packed, memory-mapped template arrays for search, rebuilt from SQLite when missing or stale.

Layout (documented in docs/gallery.md): next to ``gallery.db`` a folder ``gallery.db.search/``
holds one sub-folder per gallery *generation*, ``g<generation, 12 digits>/``, with

``rows.npy``
    (N,) structured array of :data:`ROW_DTYPE`, sorted by finger position, then person row:
    the SQLite row of the person version, the ISO finger position, the template quality, and
    the byte offset and length of the template inside ``templates.bin``.
``templates.bin``
    The templates' lossless ``"ektp"`` bytes, concatenated.
``manifest.json``
    Format version, generation, row and byte counts, the row range of each finger position and
    the SHA-256 of both files.

A build is written into a temporary folder and renamed into place, so a reader sees either a
complete build or none; a folder whose generation differs from SQLite's counter, or whose files
disagree with the manifest, is ignored and rebuilt.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._files import sha256_file
from ..errors import GalleryError

__all__ = ["ROW_DTYPE", "SearchArrays", "ARRAYS_FORMAT"]

ARRAYS_FORMAT = 1
#: Age after which a temporary build folder is taken as left behind by a killed process, in seconds.
ABANDONED_BUILD_SECONDS = 600.0
ROW_DTYPE = np.dtype(
    [("person_row", "<i8"), ("position", "u1"), ("quality", "u1"), ("length", "<u4"), ("offset", "<u8")]
)


@dataclass(frozen=True, eq=False)
class SearchArrays:
    """One generation of the packed arrays, memory-mapped read-only.

    Attributes
    ----------
    generation : int
        The SQLite generation counter they were built from.
    rows : (N,) ndarray of ROW_DTYPE
    blob : (B,) ndarray of uint8
        The concatenated template bytes.
    ranges : dict of int to (int, int)
        Row range ``[start, stop)`` of each finger position present.
    folder : Path
    """

    generation: int
    rows: np.ndarray
    blob: np.ndarray
    ranges: dict[int, tuple[int, int]]
    folder: Path

    def template_bytes(self, i: int) -> bytes:
        """The stored bytes of row ``i``."""
        offset, length = int(self.rows["offset"][i]), int(self.rows["length"][i])
        return self.blob[offset : offset + length].tobytes()

    @property
    def nbytes(self) -> int:
        """Bytes the two data files take."""
        return int(self.rows.nbytes + self.blob.nbytes)

    # -- building and loading -------------------------------------------------------------------
    @staticmethod
    def folder_for(root: Path, generation: int) -> Path:
        return root / f"g{generation:012d}"

    @classmethod
    def load(cls, root: Path, generation: int, verify: bool = True) -> "SearchArrays | None":
        """The arrays of ``generation`` if present and intact, else None."""
        folder = cls.folder_for(root, generation)
        try:
            manifest = json.loads((folder / "manifest.json").read_text())
            rows_path, blob_path = folder / "rows.npy", folder / "templates.bin"
            if manifest.get("format") != ARRAYS_FORMAT or manifest.get("generation") != generation:
                return None
            if blob_path.stat().st_size != manifest["bytes"]:
                return None
            if verify and (sha256_file(rows_path) != manifest["sha256"]["rows"] or sha256_file(blob_path) != manifest["sha256"]["templates"]):
                return None
            rows = np.load(rows_path, mmap_mode="r", allow_pickle=False)
            if rows.dtype != ROW_DTYPE or rows.ndim != 1 or rows.shape[0] != manifest["rows"]:
                return None
            blob = np.memmap(blob_path, dtype=np.uint8, mode="r") if manifest["bytes"] else np.zeros(0, np.uint8)
            ranges = {int(k): (int(v[0]), int(v[1])) for k, v in manifest["positions"].items()}
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return cls(generation, rows, blob, ranges, folder)

    @classmethod
    def build(cls, conn: sqlite3.Connection, root: Path) -> "SearchArrays":
        """Read the current fingers of every live person from SQLite in one snapshot and write the arrays."""
        conn.execute("BEGIN")
        try:
            generation = int(conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])
            records = conn.execute(
                "SELECT f.person_row, f.position, f.quality, f.template FROM fingers f "
                "JOIN current c ON c.person_row = f.person_row WHERE c.deleted = 0 "
                "ORDER BY f.position, f.person_row"
            ).fetchall()
        finally:
            conn.execute("COMMIT")
        existing = cls.load(root, generation)
        if existing is not None:
            return existing
        rows = np.zeros(len(records), dtype=ROW_DTYPE)
        offset = 0
        ranges: dict[int, list[int]] = {}
        for i, (person_row, position, quality, template) in enumerate(records):
            rows[i] = (person_row, position, quality, len(template), offset)
            offset += len(template)
            ranges.setdefault(int(position), [i, i])[1] = i + 1
        root.mkdir(parents=True, exist_ok=True)
        tmp = root / f".tmp-{uuid.uuid4().hex}"
        tmp.mkdir()
        try:
            np.save(tmp / "rows.npy", rows, allow_pickle=False)
            with open(tmp / "templates.bin", "wb") as f:
                for record in records:
                    f.write(record[3])
                f.flush()
                os.fsync(f.fileno())
            manifest = {
                "format": ARRAYS_FORMAT,
                "generation": generation,
                "rows": int(rows.shape[0]),
                "bytes": offset,
                "positions": {str(k): v for k, v in sorted(ranges.items())},
                "sha256": {"rows": sha256_file(tmp / "rows.npy"), "templates": sha256_file(tmp / "templates.bin")},
            }
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
            final = cls.folder_for(root, generation)
            for _ in range(3):
                # another process may have finished an identical build meanwhile: keep the first one
                if cls.load(root, generation) is not None:
                    shutil.rmtree(tmp, ignore_errors=True)
                    break
                if final.exists():  # damaged (builds appear whole, by rename): replace it
                    shutil.rmtree(final, ignore_errors=True)
                try:
                    os.rename(tmp, final)
                    break
                except OSError:  # lost the race to another builder; check its build on the next pass
                    continue
            else:
                shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        now = time.time()
        for old in root.iterdir():
            # older generations go at once; a temporary folder only once it is clearly abandoned
            # (a killed builder), never while another process may still be writing it
            try:
                stale_tmp = old.name.startswith(".tmp-") and now - old.stat().st_mtime > ABANDONED_BUILD_SECONDS
            except OSError:  # removed meanwhile by another process
                continue
            if stale_tmp or (old.name.startswith("g") and old.name < final.name):
                shutil.rmtree(old, ignore_errors=True)
        loaded = cls.load(root, generation, verify=False)
        if loaded is None:  # pragma: no cover - only if the file system lost what we just wrote
            raise GalleryError(f"search arrays at {final} could not be read back; check the disk", "corrupt")
        return loaded
