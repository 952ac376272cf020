"""Gallery scale sweep: insert throughput, incremental update cost, identify cost and memory vs size.

Synthetic persons with two fingers (positions 2 and 7) of 25-45 random minutiae; planted
duplicates are noisy re-captures (20 % of minutiae lost, 5 spurious, 2 px jitter) of persons
enrolled before the first checkpoint.  One gallery grows through ``--sizes``; at each size:

* insert throughput of the chunk just inserted (durable inserts, one fsync'd transaction each);
* CPU to bring the search arrays and the in-process shard up to date after 10 more inserts
  (incremental), next to a full rebuild of both (what every change cost before);
* identify CPU per probe, median over the probes once their templates are prepared (warm), and
  the first probe's CPU (preparing the newly enrolled fingers), with rank-1 of the planted
  duplicates (exhaustive search, so rank-1 is the exhaustive one by construction);
* bytes per person of the search arrays (live rows + template bytes), of the in-memory shard, and
  of the prepared matcher templates.

Usage::

    nice -n 5 python benchmarks/gallery_scale.py --sizes 2000 5000 10000 20000 [--out docs/results/gallery_scale.json]
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
from ektp_biometrics.gallery.store import ArraysParameters

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


def synthetic_person(i: int) -> Person:
    """Person ``i``, the same in every run (seeded by ``i``)."""
    rng = np.random.default_rng([6, i])
    return Person(f"P{i:07d}", fingers={2: finger(rng, 2), 7: finger(rng, 7)})


def planted_probes(count: int, among: int) -> tuple[list[Person], list[str]]:
    """``count`` re-captures of persons chosen among the first ``among``, and their ids."""
    rng = np.random.default_rng(60)
    chosen = rng.choice(among, size=count, replace=False).tolist()
    probes = [
        Person(f"dup-{i}", fingers={p: recapture(rng, t) for p, t in synthetic_person(i).fingers.items()}) for i in chosen
    ]
    return probes, [f"P{i:07d}" for i in chosen]


def candidate_json(c) -> dict:  # type: ignore[no-untyped-def]
    """A candidate as exact JSON (floats round-trip through repr)."""
    return {"person_id": c.person_id, "score": c.score, "finger_scores": {str(k): v for k, v in c.finger_scores.items()},
            "face_score": c.face_score, "false_match_probability": c.false_match_probability}  # fmt: skip


def shard_bytes(g: Gallery) -> int:
    """Bytes the in-memory shard holds for its persons (template bytes objects, arrays, lists, ids)."""
    shard = g.shard()
    total = sum(sys.getsizeof(pid) + 8 for pid in shard.person_ids) + 8 * len(shard.faces)
    for position, (owners, blobs, qualities) in shard.fingers.items():
        total += owners.nbytes + qualities.nbytes + 8 * len(blobs) + sum(sys.getsizeof(b) for b in blobs)
        total += shard.keys[position].nbytes if shard.keys is not None else 0
    return total


def plot(result: dict, out: Path) -> None:
    """Identify CPU per probe and insert throughput against gallery size (log-log), as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = result["points"]
    persons = [p["persons"] for p in points]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.loglog(persons, [p["identify_cpu_s_per_probe_median_warm"] for p in points], "o-", label="identify, warm (CPU s per probe)")
    left.loglog(persons, [p["update_after_10_inserts_cpu_s"] for p in points], "s-", label="catch up after 10 inserts (CPU s)")
    left.loglog(persons, [p["full_rebuild_cpu_s"] for p in points], "^-", label="full rebuild of arrays + shard (CPU s)")
    left.axhline(2.0, color="grey", linestyle=":", label="identify target, 2 s")
    left.set_xlabel("persons (x 2 fingers)")
    left.set_ylabel("seconds")
    left.legend(fontsize=8)
    left.grid(True, which="both", alpha=0.3)
    right.semilogx(persons, [p["insert_persons_per_second_wall"] for p in points], "o-", label="durable inserts per second (wall)")
    right.set_xlabel("persons (x 2 fingers)")
    right.set_ylabel("persons per second (wall)")
    right.set_ylim(bottom=0)
    right.grid(True, which="both", alpha=0.3)
    cpu = right.twinx()
    cpu.semilogx(persons, [p["insert_cpu_ms_per_person"] for p in points], "s--", color="tab:red", label="CPU ms per insert")
    cpu.set_ylabel("CPU ms per insert")
    cpu.set_ylim(bottom=0)
    lines = right.get_legend_handles_labels()[0] + cpu.get_legend_handles_labels()[0]
    right.legend(lines, [str(line.get_label()) for line in lines], fontsize=8, loc="lower right")
    for axis in (left, right):
        axis.set_xticks(persons, [f"{n:,}" for n in persons], minor=False)
        axis.set_xticks([], minor=True)
    fig.suptitle(f"Gallery scale on the shared 2-core machine ({result['generated']})")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 5000, 10000, 20000])
    parser.add_argument("--probes", type=int, default=4)
    parser.add_argument("--cache-gib", type=float, default=4.0, help="prepared-template cache budget for the run")
    parser.add_argument("--keep", type=Path, help="leave the gallery at this path (for benchmarks/gallery_dask.py)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "gallery_scale.json")
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "img" / "gallery_scale.png")
    parser.add_argument("--plot-only", action="store_true", help="only redraw --plot from the JSON at --out")
    args = parser.parse_args(argv)
    if args.plot_only:
        plot(json.loads(args.out.read_text()), args.plot)
        return 0
    sizes = sorted(args.sizes)
    probes, mates = planted_probes(args.probes, sizes[0])
    tuning = ArraysParameters(prepared_cache_bytes=int(args.cache_gib * (1 << 30)))
    result: dict = {
        "command": "nice -n 5 python benchmarks/gallery_scale.py --sizes " + " ".join(map(str, sizes)) + f" --probes {args.probes}",
        "generated": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "fingers_per_person": 2, "probes": args.probes, "probes_among": sizes[0],
        "prepared_cache_bytes": tuning.prepared_cache_bytes, "load_average_at_start": Path("/proc/loadavg").read_text().split()[0],
        "points": [],
    }  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep if args.keep is not None else Path(tmp) / "g.db"
        with Gallery.open(path, tuning=tuning) as g:
            present = set(g.ids())  # a kept gallery is resumed: insert only the persons it lacks
            extra = 10_000_000 + sum(1 for pid in present if int(pid[1:]) >= 10_000_000)  # timing inserts
            for size in sizes:
                wall, cpu = time.perf_counter(), time.process_time()
                chunk = 0
                for i in range(size):
                    if f"P{i:07d}" not in present:
                        g.insert(synthetic_person(i))
                        chunk += 1
                chunk = max(chunk, 1)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                present = set(g.ids())
                g.shard()  # up to date before timing the next change
                for _ in range(10):
                    g.insert(synthetic_person(extra))
                    extra += 1
                started = time.process_time()
                g.shard()
                incremental = time.process_time() - started
                started = time.process_time()
                g.rebuild_arrays()
                with Gallery.open(path, tuning=tuning) as fresh:
                    fresh.shard()
                    rebuild = time.process_time() - started
                times, ranked = [], []
                for probe in probes:
                    started = time.process_time()
                    ranked.append(g.identify(probe, k=10))
                    times.append(time.process_time() - started)
                stats = g.stats()
                persons = g.count()
                point = {
                    "persons": persons,
                    "insert_persons_per_second_wall": chunk / wall,
                    "insert_cpu_ms_per_person": 1000 * cpu / chunk,
                    "update_after_10_inserts_cpu_s": incremental,
                    "full_rebuild_cpu_s": rebuild,
                    "identify_first_probe_cpu_s": times[0],
                    "identify_cpu_s_per_probe_median_warm": statistics.median(times[1:]) if len(times) > 1 else times[0],
                    "rank1": float(np.mean([r[0].person_id == m for r, m in zip(ranked, mates)])),
                    "search_arrays_bytes_per_person": stats["search_bytes_per_finger"] * stats["fingers"] / persons,
                    "shard_bytes_per_person": shard_bytes(g) / persons,
                    "prepared_cache_bytes_per_person": stats["prepared_cache_bytes"] / persons,
                    "dead_rows": stats["dead_rows"],
                }
                result["points"].append(point)
                print(json.dumps(point), flush=True)
            # the in-process answers at the largest size, for benchmarks/gallery_dask.py to compare with
            result["largest"] = {"generation": g.generation(), "persons": g.count(), "candidates": [[candidate_json(c) for c in r] for r in ranked]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    plot(result, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
