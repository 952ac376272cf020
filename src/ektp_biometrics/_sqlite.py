"""SQLite connections in WAL mode, shared by the gallery, the station journal and the import state."""

from __future__ import annotations

import os
import sqlite3
import time

__all__ = ["connect_wal"]


def connect_wal(path: str | os.PathLike, timeout: float, *, check_same_thread: bool = True) -> tuple[sqlite3.Connection, str]:
    """An autocommit connection switched to WAL journaling, and the journal mode SQLite reports.

    Switching a new database file to WAL takes an exclusive lock.  When several processes open the
    same new file at once, SQLite answers some of them "database is locked" immediately instead
    of waiting in its busy handler (waiting could deadlock there), so the switch is retried here
    until ``timeout`` seconds have passed.  Other errors propagate at once; the caller turns them
    into its own typed error.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> conn, mode = connect_wal(pathlib.Path(tempfile.mkdtemp()) / "state.db", timeout=5.0)
    >>> mode
    'wal'
    >>> conn.close()
    """
    conn = sqlite3.connect(str(path), timeout=timeout, isolation_level=None, check_same_thread=check_same_thread)
    deadline = time.monotonic() + timeout
    pause = 0.005
    while True:
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            return conn, str(mode).lower()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + pause > deadline:
                conn.close()
                raise
        time.sleep(pause)
        pause = min(2 * pause, 0.1)
