"""Gallery at scale with ``search="indexed"``: bulk inserts, index build, identify latency, memory.

Persons are synthetic, two fingers each (ISO positions 2 and 7), made by
:func:`ektp_biometrics.synth.templates` (template-only fingers, seeded per finger, so person
``i`` is the same in every run and in every chunk): person ``i`` has synthetic fingers
``2i + 1`` (position 2) and ``2i + 2`` (position 7), impression 1, quality set to 70.  Planted
duplicates are the same fingers' impression 2 (a later capture of an enrolled person) under a
new id.

Two steps, each resumable (the gallery is kept at ``--gallery``)::

    # enrol persons 0..N-1 (only those missing), in batches of one transaction each;
    # --copy-at 100000 /tmp/g6/g100k.db leaves a copy of the gallery when it holds 100,000
    nice -n 5 python benchmarks/gallery_scale_indexed.py fill --gallery /tmp/g6/g1m.db --persons 1000000

    # open it indexed: build the shard and the index, identify the planted duplicates, memory;
    # --exhaustive also runs the exhaustive search on the same probes and compares the answers
    nice -n 5 python benchmarks/gallery_scale_indexed.py measure --gallery /tmp/g6/g100k.db --probes 20 --exhaustive \
        --out docs/results/gallery_scale_indexed_100k.json

CPU time is ``time.process_time`` of this process (the synthetic generator's worker processes
are counted apart, from ``RUSAGE_CHILDREN``); wall time is ``time.perf_counter``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import sqlite3
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from ektp_biometrics import synth
from ektp_biometrics.gallery import Gallery, Person
from ektp_biometrics.gallery.fusion import FingerEvidence, fuse, fused_sort_key
from ektp_biometrics.gallery.store import ArraysParameters

ROOT = Path(__file__).resolve().parents[1]
SEED = 2026_12_07
POSITIONS = (2, 7)
QUALITY = 70


def person_id(i: int) -> str:
    return f"P{i:07d}"


def persons_from(start: int, count: int, workers: int) -> list[Person]:
    """Persons ``start .. start + count - 1`` (impression 1 of their two fingers)."""
    prints = synth.templates(2 * count, 1, seed=SEED, first_finger=2 * start + 1, workers=workers)
    out = []
    for n in range(count):
        fingers = {
            pos: dataclasses.replace(prints.template(2 * n + j), quality=QUALITY, finger_position=pos) for j, pos in enumerate(POSITIONS)
        }
        out.append(Person(person_id(start + n), fingers=fingers))
    return out


def planted_probes(count: int, among: int) -> tuple[list[Person], list[str]]:
    """Impression 2 of ``count`` persons chosen among the first ``among``, under new ids, and the true mates."""
    chosen = sorted(np.random.default_rng(SEED).choice(among, size=count, replace=False).tolist())
    probes = []
    for i in chosen:
        fingers = {}
        for j, pos in enumerate(POSITIONS):
            later = synth.templates(1, 2, seed=SEED, first_finger=2 * i + 1 + j).template(1)
            fingers[pos] = dataclasses.replace(later, quality=QUALITY, finger_position=pos)
        probes.append(Person(f"dup-{i}", fingers=fingers))
    return probes, [person_id(i) for i in chosen]


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def rss_anon_bytes() -> int:
    """Anonymous resident memory of this process (heap; file-backed mapped pages excluded)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    return 0


def fill(args: argparse.Namespace) -> int:
    log = args.log.open("a") if args.log else None

    def report(record: dict) -> None:
        text = json.dumps(record)
        print(text, flush=True)
        if log:
            log.write(text + "\n")
            log.flush()

    with Gallery.open(args.gallery) as g:
        have = g.count()
        # persons are enrolled in id order, a batch at a time, all or none: the first ``have`` are present
        if have and person_id(have - 1) not in g:
            raise SystemExit(f"{args.gallery} does not hold persons 0..{have - 1} in order; use another --gallery")
        start = have
        copy_at = args.copy_at[0] if args.copy_at else None
        while start < args.persons:
            count = min(args.chunk, args.persons - start)
            if copy_at is not None and start < copy_at:
                count = min(count, copy_at - start)
            wall, child = time.perf_counter(), children_cpu()
            cpu0 = time.process_time()
            batch = persons_from(start, count, args.workers)
            made_wall, made_cpu = time.perf_counter() - wall, time.process_time() - cpu0 + children_cpu() - child
            wall, cpu = time.perf_counter(), time.process_time()
            for lo in range(0, count, args.batch):
                g.insert_many(batch[lo : lo + args.batch], by="bench")
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            start += count
            report({
                "persons": start, "chunk": count, "generate_wall_s": made_wall, "generate_cpu_s": made_cpu,
                "insert_wall_s": wall, "insert_cpu_s": cpu, "insert_persons_per_s_wall": count / wall,
                "insert_cpu_ms_per_person": 1000 * cpu / count, "batch": args.batch, "at": time.strftime("%H:%M:%S", time.gmtime()),
                "load": Path("/proc/loadavg").read_text().split()[0],
            })  # fmt: skip
            if copy_at is not None and start == copy_at:
                target = Path(args.copy_at[1])
                target.parent.mkdir(parents=True, exist_ok=True)
                target.unlink(missing_ok=True)
                with sqlite3.connect(str(args.gallery)) as source, sqlite3.connect(str(target)) as copy:
                    source.backup(copy)
                report({"copied": str(target), "persons": start})
    return 0


def candidate_json(c) -> dict:  # type: ignore[no-untyped-def]
    """A candidate as exact JSON (floats round-trip through repr)."""
    return {"person_id": c.person_id, "score": c.score, "finger_scores": {str(k): v for k, v in c.finger_scores.items()},
            "face_score": c.face_score, "false_match_probability": c.false_match_probability}  # fmt: skip


def timed(work):  # type: ignore[no-untyped-def]
    """(result, wall s, CPU s of this process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def timed_identify(g: Gallery, probes: list) -> tuple[list, list[float], list[float]]:  # type: ignore[type-arg]
    """Each probe's top 10 from ``g.identify``, with the wall and CPU seconds of each search."""
    found, walls, cpus = [], [], []
    for probe in probes:
        top, wall, cpu = timed(lambda probe=probe: g.identify(probe, k=10))
        found.append(top)
        walls.append(wall)
        cpus.append(cpu)
    return found, walls, cpus


def shard_heap_bytes(g: Gallery) -> int:
    """Heap bytes of the in-process shard: ids, per-slot arrays, per-finger arrays and template slices."""
    shard = g.shard()
    total = sys.getsizeof(shard.person_ids) + sum(sys.getsizeof(pid) for pid in shard.person_ids) + sys.getsizeof(shard.faces)
    total += sum(a.nbytes for a in (shard.rows, shard.alive) if a is not None)
    for position, (owners, templates, qualities) in shard.fingers.items():
        total += owners.nbytes + qualities.nbytes + templates.heap_nbytes
        total += shard.keys[position].nbytes if shard.keys is not None else 0
    return total


def measure(args: argparse.Namespace) -> int:
    tuning = ArraysParameters(search_threads=2, prepared_cache_bytes=int(args.cache_gib * (1 << 30)))
    result: dict = {
        "command": " ".join(["nice -n 5 python benchmarks/gallery_scale_indexed.py", *sys.argv[1:]]),
        "generated": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load_average_at_start": Path("/proc/loadavg").read_text().split()[0],
        "search_threads": tuning.search_threads,
    }  # fmt: skip
    heap0 = rss_anon_bytes()
    g = Gallery.open(args.gallery, create=False, search="indexed", tuning=tuning)
    persons = g.count()
    result["persons"] = persons
    arrays, wall, cpu = timed(g.search_arrays)
    result["arrays_open"] = {"wall_s": wall, "cpu_s": cpu}
    heap1 = rss_anon_bytes()
    _, wall, cpu = timed(g.shard)
    result["shard_build"] = {"wall_s": wall, "cpu_s": cpu}
    heap2 = rss_anon_bytes()
    _, wall, cpu = timed(g.prepare_search)
    fingers = int(arrays.rows.shape[0])
    result["index_build"] = {"wall_s": wall, "cpu_s": cpu, "cpu_ms_per_finger": 1000 * cpu / fingers, "fingers": fingers}
    heap3 = rss_anon_bytes()
    index = g._index
    mapped = arrays.published.rows * arrays.log.dtype.itemsize + arrays.published.bytes
    result["memory_bytes_per_person"] = {
        "mapped_log_on_disk": mapped / persons,
        "heap_rss_anon_delta_arrays": (heap1 - heap0) / persons,
        "heap_rss_anon_delta_shard": (heap2 - heap1) / persons,
        "heap_rss_anon_delta_index": (heap3 - heap2) / persons,
        "heap_rss_anon_delta_total": (heap3 - heap0) / persons,
        "index_arrays_nbytes": index.nbytes / persons,  # type: ignore[attr-defined]
        "index_arrays_capacity_nbytes": index.capacity_nbytes / persons,  # type: ignore[attr-defined]
        "index_code_nbytes": index.code_nbytes / persons,  # type: ignore[attr-defined]
        "shard_structures": shard_heap_bytes(g) / persons,
        "arrays_live_rows_copy": (arrays.rows.nbytes + arrays.live_person_rows.nbytes) / persons,
    }
    print(json.dumps(result), flush=True)
    probes, mates = planted_probes(args.probes, persons)
    g.identify(probes[0], k=10)  # compiles what is not yet compiled in this process
    indexed, walls, cpus = timed_identify(g, probes)
    hits = [bool(found) and found[0].person_id == mate for found, mate in zip(indexed, mates)]
    result["identify_indexed"] = {
        "probes": len(probes), "wall_s_median": statistics.median(walls), "cpu_s_median": statistics.median(cpus),
        "wall_s_max": max(walls), "cpu_s_max": max(cpus), "rank1_true_mate": sum(hits),
        "true_mate_in_top10": sum(any(c.person_id == mate for c in found) for found, mate in zip(indexed, mates)),
    }  # fmt: skip
    # persons the index scored in full per probe (its adaptive person shortlist), from a second, untimed search
    result["identify_indexed"]["persons_scored"] = [
        len(g._index.search_person(dict(p.fingers), k=1, every_scored=True))  # type: ignore[attr-defined]
        for p in probes
    ]
    print(json.dumps(result["identify_indexed"]), flush=True)
    if args.catch_up:
        extra = [dataclasses.replace(p, person_id=f"T{time.time_ns()}-{n}") for n, p in enumerate(persons_from(10_000_000, args.catch_up, 1))]
        for p in extra:
            g.insert(p, by="bench")
        _, wall, cpu = timed(g.prepare_search)
        result["catch_up"] = {"inserts": len(extra), "wall_s": wall, "cpu_s": cpu}
        for p in extra:
            g.delete(p.person_id, by="bench", reason="benchmark timing insert")
        g.prepare_search()
    if args.exhaustive_from:
        # the exhaustive answers of an earlier run on the same gallery and probes (the exhaustive
        # search prepares every enrolled finger once: 686 s of CPU at 100,000 persons)
        earlier = json.loads(args.exhaustive_from.read_text())
        if earlier["mates"][: len(mates)] != mates or earlier["persons"] != persons:
            raise SystemExit(f"{args.exhaustive_from} was run on other probes or another gallery")
        # the stored top 10 re-ranked with today's fusion (its calibration table may have changed
        # since): rank-1 compared as (person, matcher scores), which no fusion change alters
        def refused(c: dict) -> tuple[float, float]:
            evidence = [FingerEvidence(int(pos), score, QUALITY, QUALITY) for pos, score in c["finger_scores"].items()]
            return fused_sort_key(fuse(evidence, params=g.fusion), list(c["finger_scores"].values()))

        stored = [sorted(found, key=refused, reverse=True) for found in earlier["exhaustive_candidates"][: len(mates)]]
        mine = [[candidate_json(c) for c in found] for found in indexed]
        same = [bool(a) and bool(b) and (a[0]["person_id"], a[0]["finger_scores"]) == (b[0]["person_id"], b[0]["finger_scores"])
                for a, b in zip(mine, stored)]  # fmt: skip
        exhaustive_mate = [bool(b) and b[0]["person_id"] == m for b, m in zip(stored, mates)]
        result["identify_exhaustive_stored"] = {
            "from": str(args.exhaustive_from), "probes": len(stored), "refused_with_current_fusion": True,
            "rank1_true_mate": sum(exhaustive_mate),
            "indexed_rank1_equals_exhaustive": sum(same),
            "indexed_rank1_equals_exhaustive_where_exhaustive_finds_the_mate": sum(x and y for x, y in zip(same, exhaustive_mate)),
            "exhaustive_rank1_not_the_mate": [
                {"mate": m, "exhaustive": b[0]["person_id"], "finger_scores": b[0]["finger_scores"]}
                for b, m, hit in zip(stored, mates, exhaustive_mate) if b and not hit
            ],
        }  # fmt: skip
        print(json.dumps(result["identify_exhaustive_stored"]), flush=True)
    if args.exhaustive:
        with Gallery.open(args.gallery, create=False, tuning=tuning) as full:
            exhaustive, walls, cpus = timed_identify(full, probes)
        same_rank1 = [bool(a) and bool(b) and a[0] == b[0] for a, b in zip(indexed, exhaustive)]
        same_list = [a == b for a, b in zip(indexed, exhaustive)]
        result["identify_exhaustive"] = {
            "first_probe_cpu_s": cpus[0], "first_probe_wall_s": walls[0], "cpu_s_median_warm": statistics.median(cpus[1:] or cpus),
            "wall_s_median_warm": statistics.median(walls[1:] or walls),
            "rank1_true_mate": sum(bool(f) and f[0].person_id == m for f, m in zip(exhaustive, mates)),
            "indexed_rank1_equals_exhaustive": sum(same_rank1), "indexed_top10_equals_exhaustive": sum(same_list),
        }  # fmt: skip
        result["exhaustive_candidates"] = [[candidate_json(c) for c in found] for found in exhaustive]
        print(json.dumps(result["identify_exhaustive"]), flush=True)
    # a second process-like opening: the index saved by this one is loaded instead of rebuilt
    heap4 = rss_anon_bytes()
    again = Gallery.open(args.gallery, create=False, search="indexed", tuning=tuning)
    _, wall, cpu = timed(again.prepare_search)
    heap5 = rss_anon_bytes()
    loaded = again._index is not None and len(again._index) == fingers  # type: ignore[arg-type]
    result["reopen_with_saved_index"] = {
        "wall_s": wall, "cpu_s": cpu, "loaded_fingers_match": loaded, "heap_rss_anon_delta_per_person": (heap5 - heap4) / persons,
        "index_arrays_nbytes_per_person": again._index.nbytes / persons,  # type: ignore[attr-defined]
        "identical_rank1": [c[0] for c in (again.identify(p, k=1) for p in probes[:3])] == [f[0] for f in indexed[:3]],
    }  # fmt: skip
    print(json.dumps(result["reopen_with_saved_index"]), flush=True)
    again.close()
    result["mates"] = mates
    result["indexed_candidates"] = [[candidate_json(c) for c in found] for found in indexed]
    g.close()
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


def tiled(args: argparse.Namespace) -> int:
    """Time ``search_person`` on a gallery's saved index enrolled ``--copies`` times under new ids.

    The first stage scans every copy, so its cost is that of ``copies x persons``; each planted
    mate is present ``copies`` times with identical scores, so rank-1 is counted as "a copy of
    the true mate", and the shortlist holds fewer distinct persons than a real gallery would.
    """
    import sqlite3 as _sqlite3

    from ektp_biometrics.fingerprint.index import FingerprintIndex

    root = Path(str(args.gallery) + ".search")
    meta = json.loads((root / "index.json").read_text())
    with np.load(root / meta["index"]) as data:
        arrays = {name: data[name] for name in data.files}
    ids = arrays["ids"].tobytes().decode("utf-8").split("\n")
    with _sqlite3.connect(f"file:{args.gallery}?mode=ro", uri=True) as db:
        person_of_row = {str(row): pid for pid, row in db.execute("SELECT person_id, person_row FROM current WHERE deleted = 0")}
    tiled_ids = [f"{person_of_row[i]}#{c}" for c in range(args.copies) for i in ids]
    out = dict(arrays)
    out["ids"] = np.frombuffer("\n".join(tiled_ids).encode("utf-8"), dtype=np.uint8)
    for name in ("position", "code_count", "codes", "minutia_count", "minutiae", "geometry"):
        out[name] = np.concatenate([arrays[name]] * args.copies)
    path = Path(args.scratch)
    with open(path, "wb") as handle:
        np.savez(handle, **out)
    del out, arrays
    heap0 = rss_anon_bytes()
    index, wall, cpu = timed(lambda: FingerprintIndex.load(path, threads=2))
    path.unlink()
    persons = len(ids) // 2 * args.copies
    result: dict = {
        "command": " ".join(["nice -n 5 python benchmarks/gallery_scale_indexed.py", *sys.argv[1:]]),
        "generated": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load_average_at_start": Path("/proc/loadavg").read_text().split()[0],
        "persons": persons, "distinct_persons": len(ids) // 2, "fingers": len(index), "load": {"wall_s": wall, "cpu_s": cpu},
        "index_arrays_nbytes_per_person": index.nbytes / persons, "heap_rss_anon_delta_per_person": (rss_anon_bytes() - heap0) / persons,
    }  # fmt: skip
    print(json.dumps(result), flush=True)
    probes, mates = planted_probes(args.probes, len(ids) // 2)
    index.search_person(dict(probes[0].fingers), k=10)  # compiles what is not yet compiled in this process
    walls, cpus, hits, scored = [], [], [], []
    for probe, mate in zip(probes, mates):
        found, wall, cpu = timed(lambda probe=probe: index.search_person(dict(probe.fingers), k=10, every_scored=True))
        walls.append(wall)
        cpus.append(cpu)
        scored.append(len(found))
        hits.append(bool(found) and found[0].id.split("#")[0] == mate)
    result["search_person"] = {
        "probes": len(probes), "wall_s_median": statistics.median(walls), "cpu_s_median": statistics.median(cpus),
        "wall_s_max": max(walls), "cpu_s_max": max(cpus), "persons_scored": scored, "rank1_a_copy_of_the_true_mate": sum(hits),
        "cpu_s": cpus, "wall_s": walls, "load_average_at_end": Path("/proc/loadavg").read_text().split()[0],
    }  # fmt: skip
    print(json.dumps(result["search_person"]), flush=True)
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("fill", help="enrol the synthetic persons the gallery lacks")
    p.add_argument("--gallery", type=Path, required=True)
    p.add_argument("--persons", type=int, required=True)
    p.add_argument("--chunk", type=int, default=20_000, help="persons generated per call of synth.templates")
    p.add_argument("--batch", type=int, default=1_000, help="persons per insert_many transaction")
    p.add_argument("--workers", type=int, default=2, help="processes of synth.templates")
    p.add_argument("--copy-at", nargs=2, metavar=("PERSONS", "PATH"), help="copy the gallery when it holds PERSONS")
    p.add_argument("--log", type=Path, help="append each chunk's figures to this JSON-lines file")
    m = sub.add_parser("measure", help="open indexed, build, identify the planted duplicates, memory")
    m.add_argument("--gallery", type=Path, required=True)
    m.add_argument("--probes", type=int, default=20)
    m.add_argument("--exhaustive", action="store_true", help="also search exhaustively and compare")
    m.add_argument("--exhaustive-from", type=Path, help="compare with the exhaustive answers stored in an earlier --out JSON")
    m.add_argument("--cache-gib", type=float, default=8.0, help="prepared-template cache of the exhaustive search")
    m.add_argument("--catch-up", type=int, default=10, help="time bringing everything up to date after this many inserts")
    m.add_argument("--out", type=Path)
    t = sub.add_parser("tiled", help="time search_person on a saved index enrolled several times (first stage at scale)")
    t.add_argument("--gallery", type=Path, required=True)
    t.add_argument("--copies", type=int, default=10)
    t.add_argument("--probes", type=int, default=12)
    t.add_argument("--scratch", type=Path, default=Path("/tmp/gallery_scale_tiled.npz"))
    t.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.step == "tiled":
        return tiled(args)
    if args.step == "fill":
        if args.copy_at:
            args.copy_at = (int(args.copy_at[0]), args.copy_at[1])
        return fill(args)
    return measure(args)


if __name__ == "__main__":
    sys.exit(main())
