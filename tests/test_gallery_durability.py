"""Gallery durability and concurrency: SIGKILLed writers lose nothing acknowledged; readers run beside a writer."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from ektp_biometrics.gallery import Gallery
from ektp_biometrics.gallery._arrays import Published, SearchArrays

# Shared by the test and the writer subprocess: person i is fully determined by i.
MAKE_PERSON = '''
import numpy as np
from ektp_biometrics.fingerprint import FingerprintTemplate, make_minutiae
from ektp_biometrics.gallery import Person

def make_person(i):
    rng = np.random.default_rng(i)
    positions = [1, 2, 3, 6, 7, 8][: 2 + i % 5]
    fingers = {}
    for p in positions:
        n = int(rng.integers(20, 60))
        minutiae = make_minutiae(*rng.uniform(10, 290, (2, n)), rng.uniform(0, 6.28, n))
        fingers[p] = FingerprintTemplate(300, 300, minutiae, quality=int(rng.integers(0, 101)), finger_position=p)
    return Person(f"P{i:05d}", fingers=fingers, exceptions={10: "injured"}, metadata={"station": "st-%d" % (i % 3)})
'''

WRITER = MAKE_PERSON + '''
import sys
from ektp_biometrics.gallery import Gallery
import time
path, start, count, pause = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
with Gallery.open(path) as g:
    print("ready", flush=True)
    for i in range(start, start + count):
        time.sleep(pause)
        g.insert(make_person(i), by="writer")
        print(f"P{i:05d}", flush=True)  # acknowledged: insert() returned after COMMIT
        if i % 3 == 2:
            g.search_arrays()  # so that kills also land while the arrays are being written
        if i % 5 == 4:
            g.dedup([make_person(i + 100000)], threshold=2.0)  # ... and during dedup searches
'''

_namespace: dict = {}
exec(MAKE_PERSON, _namespace)
make_person = _namespace["make_person"]


def _start_writer(path: Path, start: int, count: int, pause: float = 0.0) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(start), str(count), str(pause)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1,
    )  # fmt: skip


def _sqlite_rows(path: Path) -> list[tuple[int, int, bytes]]:
    conn = sqlite3.connect(path)
    rows = conn.execute(
        "SELECT f.person_row, f.position, f.template FROM fingers f JOIN current c ON c.person_row = f.person_row "
        "WHERE c.deleted = 0 ORDER BY f.position, f.person_row"
    ).fetchall()
    conn.close()
    return [(int(a), int(b), bytes(c)) for a, b, c in rows]


def _kill_rounds(tmp_path: Path, rounds: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    path = tmp_path / "g.db"
    acknowledged: set[str] = set()
    for r in range(rounds):
        start = 1000 * r
        writer = _start_writer(path, start, 200)
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "ready", writer.stderr.read() if writer.stderr else ""
        wanted = int(rng.integers(0, 12))
        for _ in range(wanted):
            line = writer.stdout.readline().strip()
            assert line, f"writer ended early: {writer.stderr.read() if writer.stderr else ''}"
            acknowledged.add(line)
        time.sleep(float(rng.uniform(0.0, 0.08)))  # land the kill anywhere inside the next inserts
        os.kill(writer.pid, signal.SIGKILL)
        # read on through the same buffered stream: readline() may already hold lines read ahead,
        # which communicate() would skip (it reads the raw pipe)
        rest = writer.stdout.read()
        writer.wait(timeout=30)
        writer.stdout.close()
        writer.stderr.close()  # type: ignore[union-attr]
        acknowledged.update(line for line in rest.splitlines() if line.startswith("P"))
        assert writer.returncode == -signal.SIGKILL

        assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        # a marker is published only after its rows are on disk: whatever it names is whole
        published = Published.read(path.with_name("g.db.search"))
        if published is not None:
            assert SearchArrays.map(path.with_name("g.db.search"), published) is not None, f"round {r}: published rows are damaged"
        with Gallery.open(path) as g:
            stored = set(g.ids())
            assert acknowledged <= stored, f"round {r}: acknowledged inserts lost: {sorted(acknowledged - stored)}"
            # at most the one insert in flight may have committed without its acknowledgement
            assert len(stored - acknowledged) <= 1
            for pid in stored:  # nothing half-written: each person has all its fingers, bit for bit
                assert g.get(pid) == make_person(int(pid[1:]))
            assert g.count() == len(stored)
            arrays = g.search_arrays()
            rebuilt = [(int(x["person_row"]), int(x["position"]), arrays.template_bytes(i)) for i, x in enumerate(arrays.rows)]
            assert rebuilt == _sqlite_rows(path)
            expected_fingers = sum(len(make_person(int(pid[1:])).fingers) for pid in stored)
            assert arrays.rows.shape[0] == expected_fingers
        acknowledged = stored  # a committed-but-unacknowledged insert is part of the store from now on


def test_sigkill_during_inserts_loses_nothing_acknowledged(tmp_path: Path) -> None:
    _kill_rounds(tmp_path, rounds=4, seed=6)


@pytest.mark.slow
def test_sigkill_during_inserts_20_times(tmp_path: Path) -> None:
    _kill_rounds(tmp_path, rounds=20, seed=20)


def test_readers_run_while_another_process_writes(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    Gallery.open(path).close()
    errors: list[BaseException] = []
    counts: list[list[int]] = [[], []]
    stop = threading.Event()

    def read(seen: list[int]) -> None:
        try:
            with Gallery.open(path) as g:
                while not stop.is_set():
                    ids = g.ids()
                    seen.append(len(ids))
                    for pid in ids[-2:]:  # the newest records are complete
                        assert g.get(pid) == make_person(int(pid[1:]))
                    if ids and len(seen) % 10 == 0:
                        g.identify(make_person(int(ids[0][1:])), k=1)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    from ektp_biometrics.fingerprint.match import match, match_many, prepare

    warm = make_person(0).fingers[1]
    # compile the matcher's kernels (identify uses prepare + match_many) before the race starts, so
    # that on a cold Numba cache the readers do not spend the whole race compiling
    match(warm, warm)
    match_many(prepare(warm), [prepare(warm)])
    readers = [threading.Thread(target=read, args=(seen,)) for seen in counts]
    for t in readers:
        t.start()
    writer = _start_writer(path, 0, 25, pause=0.04)
    out, err = writer.communicate(timeout=120)
    stop.set()
    for t in readers:
        t.join(timeout=60)
    assert writer.returncode == 0, err
    assert not errors, errors
    assert len(out.split()) == 26
    for seen in counts:
        assert seen == sorted(seen), "a reader saw the gallery shrink"
    assert len(set(counts[0]) | set(counts[1])) > 5, "the readers did not run while the writer was inserting"
    with Gallery.open(path) as g:
        assert g.count() == 25


def test_one_gallery_object_shared_by_threads(tmp_path: Path) -> None:
    errors: list[BaseException] = []
    with Gallery.open(tmp_path / "g.db") as g:

        def insert(start: int) -> None:
            try:
                for i in range(start, start + 15):
                    g.insert(make_person(i))
                    assert g.get(f"P{i:05d}") == make_person(i)
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

        threads = [threading.Thread(target=insert, args=(s,)) for s in (0, 100, 200)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors
        assert g.count() == 45
        assert [e.action for e in g.audit()].count("insert") == 45
        assert g.search_arrays().rows.shape[0] == sum(len(make_person(int(p[1:])).fingers) for p in g.ids())
