"""Gallery scale run: insert throughput, identify cost (exhaustive, indexed, Dask) and memory per person.

Synthetic persons with two fingers (positions 2 and 7) of random minutiae; planted duplicates are
noisy re-captures (20 % of minutiae lost, 5 spurious, 2 px jitter) of randomly chosen persons.
Measures, on one gallery of ``--persons`` persons:

* insert throughput (durable inserts, one SQLite transaction each);
* identify CPU time per probe: exhaustive (every finger compared), ``search="indexed"``
  (FingerprintIndex shortlist), and with ``--dask`` a 2-worker LocalCluster (wall time, and
  whether its candidates equal the in-process ones);
* rank-1 of the planted duplicates, and whether indexed rank-1 equals exhaustive rank-1;
* bytes per person of the search arrays and of the fingerprint index.

Usage::

    nice -n 5 python benchmarks/gallery_scale.py --persons 5000 [--dask] [--out docs/results/gallery_scale.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ektp_biometrics.fingerprint import FingerprintTemplate, make_minutiae
from ektp_biometrics.gallery import Gallery, Person

ROOT = Path(__file__).resolve().parents[1]


def finger(rng: np.random.Generator, position: int) -> FingerprintTemplate:
    n = int(rng.integers(25, 45))
    m = make_minutiae(*rng.uniform(20, 280, (2, n)), rng.uniform(0, 6.28, n))
    return FingerprintTemplate(300, 300, m, quality=int(rng.integers(40, 100)), finger_position=position)


def recapture(rng: np.random.Generator, t: FingerprintTemplate) -> FingerprintTemplate:
    keep = t.minutiae[rng.random(len(t)) > 0.2]
    extra = make_minutiae(*rng.uniform(20, 280, (2, 5)), rng.uniform(0, 6.28, 5))
    m = np.concatenate([keep, extra])
    m["row"] += rng.normal(0, 2, len(m))
    m["col"] += rng.normal(0, 2, len(m))
    return FingerprintTemplate(300, 300, m, quality=t.quality, finger_position=t.finger_position)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=5000)
    parser.add_argument("--probes", type=int, default=10)
    parser.add_argument("--dask", action="store_true", help="also search on a 2-worker LocalCluster")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "gallery_scale.json")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(6)
    persons = [Person(f"P{i:07d}", fingers={2: finger(rng, 2), 7: finger(rng, 7)}) for i in range(args.persons)]
    planted = rng.choice(args.persons, size=args.probes, replace=False)
    probes = [Person(f"dup-{i}", fingers={p: recapture(rng, t) for p, t in persons[i].fingers.items()}) for i in planted.tolist()]
    result: dict = {"command": f"python benchmarks/gallery_scale.py --persons {args.persons}" + (" --dask" if args.dask else ""),
                    "generated": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "persons": args.persons,
                    "fingers_per_person": 2, "probes": args.probes}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "g.db"
        with Gallery.open(path) as g:
            wall, cpu = time.perf_counter(), time.process_time()
            for p in persons:
                g.insert(p)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            result["insert"] = {"persons_per_second_wall": args.persons / wall, "cpu_ms_per_person": 1000 * cpu / args.persons}
            started = time.process_time()
            g.shard()
            result["array_and_shard_build_cpu_s"] = time.process_time() - started
            stats = g.stats()
            result["search_arrays_bytes_per_person"] = stats["search_bytes_per_finger"] * 2
            exhaustive, times = [], []
            for probe in probes:
                started = time.process_time()
                exhaustive.append(g.identify(probe, k=10))
                times.append(time.process_time() - started)
            result["exhaustive"] = {
                "cpu_s_per_probe_median": statistics.median(times),
                "rank1": float(np.mean([c[0].person_id == f"P{i:07d}" for c, i in zip(exhaustive, planted.tolist())])),
            }
        with Gallery.open(path, search="indexed") as g:
            started = time.process_time()
            g.identify(probes[0], k=10)  # builds the index
            build = time.process_time() - started
            indexed, times = [], []
            for probe in probes:
                started = time.process_time()
                indexed.append(g.identify(probe, k=10))
                times.append(time.process_time() - started)
            index = g._index
            result["indexed"] = {
                "index_build_cpu_s": build,
                "cpu_s_per_probe_median": statistics.median(times),
                "rank1": float(np.mean([c[0].person_id == f"P{i:07d}" for c, i in zip(indexed, planted.tolist())])),
                "rank1_equals_exhaustive": float(np.mean([a[0] == b[0] for a, b in zip(indexed, exhaustive)])),
                "index_bytes_per_person": index.bytes_per_finger * 2,  # type: ignore[union-attr]
            }
        if args.dask:
            from dask.distributed import Client, LocalCluster

            with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as lc, Client(lc) as client:
                with Gallery.open(path, cluster=client) as g:
                    g.identify(probes[0], k=10)  # places the shards and warms the workers
                    remote, times = [], []
                    for probe in probes:
                        started = time.perf_counter()
                        remote.append(g.identify(probe, k=10))
                        times.append(time.perf_counter() - started)
            result["dask_2_workers"] = {
                "wall_s_per_probe_median": statistics.median(times),
                "equal_to_in_process": all(a == b for a, b in zip(remote, exhaustive)),
            }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
