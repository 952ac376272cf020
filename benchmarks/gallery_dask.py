"""Dask equality at scale: a 2-worker LocalCluster must return exactly the in-process candidates and scores.

Runs on the gallery that ``benchmarks/gallery_scale.py --keep PATH`` left behind, whose JSON holds
the in-process engine's answers for the planted-duplicate probes at its largest size (computed
on the same gallery generation, checked here).  Opens the gallery with
``cluster=LocalCluster(n_workers=2, threads_per_worker=1, processes=True)``, searches the same
probes and compares person ids, order, fused scores, per-finger scores and false-match
probabilities for exact equality.  Writes ``docs/results/gallery_dask.json``.

Usage::

    nice -n 5 python benchmarks/gallery_scale.py --sizes ... --keep /tmp/g.db
    nice -n 5 python benchmarks/gallery_dask.py --gallery /tmp/g.db
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gallery_scale import ROOT, candidate_json, planted_probes

from ektp_biometrics.gallery import Gallery
from ektp_biometrics.gallery.store import ArraysParameters


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gallery", type=Path, required=True)
    parser.add_argument("--scale-json", type=Path, default=ROOT / "docs" / "results" / "gallery_scale.json")
    parser.add_argument("--cache-gib", type=float, default=4.0, help="prepared-template cache budget per worker")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "gallery_dask.json")
    args = parser.parse_args(argv)
    scale = json.loads(args.scale_json.read_text())
    expected = scale["largest"]
    # the probes are re-made exactly as the scale run made them (planted among its first size)
    probes, mates = planted_probes(scale["probes"], scale["probes_among"])
    from dask.distributed import Client, LocalCluster

    tuning = ArraysParameters(prepared_cache_bytes=int(args.cache_gib * (1 << 30)))
    wall_start = time.perf_counter()
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}
    ) as lc, Client(lc) as client:
        with Gallery.open(args.gallery, create=False, cluster=client, tuning=tuning) as g:
            if g.generation() != expected["generation"]:
                raise SystemExit(f"the gallery changed since the scale run (generation {g.generation()} != {expected['generation']})")
            remote, times = [], []
            for probe in probes:
                started = time.perf_counter()
                remote.append([candidate_json(c) for c in g.identify(probe, k=10)])
                times.append(time.perf_counter() - started)
            persons = g.count()
    equal = [r == e for r, e in zip(remote, expected["candidates"])]
    result = {
        "command": f"nice -n 5 python benchmarks/gallery_dask.py --gallery {args.gallery}",
        "generated": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "persons": persons,
        "fingers_per_person": 2,
        "workers": 2,
        "probes": len(probes),
        "candidates_per_probe": 10,
        "equal_to_in_process_per_probe": equal,
        "all_equal": all(equal),
        "rank1": sum(r[0]["person_id"] == m for r, m in zip(remote, mates)) / len(probes),
        "wall_s_first_probe_incl_shard_placement_and_preparation": times[0],
        "wall_s_per_probe_median_after_first": statistics.median(times[1:]) if len(times) > 1 else times[0],
        "wall_s_total": time.perf_counter() - wall_start,
        "load_average_at_end": Path("/proc/loadavg").read_text().split()[0],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0 if result["all_equal"] else 1


if __name__ == "__main__":
    sys.exit(main())
