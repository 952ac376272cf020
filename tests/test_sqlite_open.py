"""Several processes opening the same new SQLite file at once all get a WAL connection.

Switching a new file to WAL needs an exclusive lock; SQLite answers a racing opener "database is
locked" at once instead of waiting (the CI dry run of 2026-12-08 failed
tests/test_packet_import.py that way: two importers opening one new state database).  The
gallery, the station journal and the import state all open through ``_sqlite.connect_wal``.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

import pytest

OPENERS = 6
ROUNDS = 6  # before the fix, about 1 opener in 25 failed with this schema step: most rounds had one


def _open(kind: str, path: str, barrier, results) -> None:  # type: ignore[no-untyped-def]
    barrier.wait()
    try:
        if kind == "raw":
            from ektp_biometrics._sqlite import connect_wal

            conn, mode = connect_wal(path, timeout=30.0)
            conn.executescript("CREATE TABLE IF NOT EXISTS t (a TEXT PRIMARY KEY, b TEXT); CREATE INDEX IF NOT EXISTS tb ON t(b);")
            conn.close()
            results.put(mode)
        elif kind == "import-state":
            from ektp_biometrics.packet.importer import _State

            state = _State(Path(path))
            mode = state.db.execute("PRAGMA journal_mode").fetchone()[0]
            state.close()
            results.put(mode)
        elif kind == "station-journal":
            from ektp_biometrics.packet.station import StationJournal

            with StationJournal(path) as journal:
                results.put(journal._db.execute("PRAGMA journal_mode").fetchone()[0])  # type: ignore[union-attr]
        else:
            from ektp_biometrics.gallery import Gallery

            gallery = Gallery.open(path)
            results.put("wal" if gallery.count() == 0 else "not-empty")
            gallery.close()
    except Exception as exc:  # noqa: BLE001 - any failure is reported to the parent, which fails the test with it
        results.put(f"{type(exc).__name__}: {exc}")


@pytest.mark.parametrize("kind", ["raw", "import-state", "station-journal", "gallery"])
def test_processes_opening_one_new_file_at_once_all_succeed(tmp_path: Path, kind: str) -> None:
    context = multiprocessing.get_context("spawn")
    for round_ in range(ROUNDS):
        path = str(tmp_path / f"{kind}-{round_}.db")
        barrier, results = context.Barrier(OPENERS), context.Queue()
        workers = [context.Process(target=_open, args=(kind, path, barrier, results)) for _ in range(OPENERS)]
        for w in workers:
            w.start()
        outcomes = [results.get(timeout=120) for _ in workers]
        for w in workers:
            w.join(timeout=60)
        assert outcomes == ["wal"] * OPENERS, outcomes


def test_other_errors_are_not_retried(tmp_path: Path) -> None:
    from ektp_biometrics._sqlite import connect_wal

    not_a_database = tmp_path / "junk.db"
    not_a_database.write_bytes(b"this is not an SQLite file" * 100)
    with pytest.raises(sqlite3.DatabaseError):
        connect_wal(not_a_database, timeout=30.0)
