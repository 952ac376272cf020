"""1:N identification with :class:`~ektp_biometrics.fingerprint.FingerprintIndex`: speed, memory, accuracy.

Runner::

    nice -n 5 python benchmarks/bench_index.py gallery --fingers 1000000   # generate + index, cached in /tmp
    python benchmarks/bench_index.py synthetic --sizes 10000 100000 1000000 # timing, memory, baselines
    python benchmarks/bench_index.py real --distractors 0 100000 1000000    # rank-1 vs the exhaustive matcher
    python benchmarks/bench_index.py plot

``gallery`` generates synthetic fingers (``ektp_biometrics.synth.templates``, seed 2026) in chunks of
100,000 and builds the index of each chunk; both are cached under ``--cache`` (default
/tmp/ektp_index) and never committed.  A gallery of N fingers is the first N of them, so every
size shares its fingers with the larger ones.

``synthetic`` searches probe fingers (the second impression of fingers 1..50) on 2 threads and
reports the median wall time per probe finger, the first stage's and the full matcher's
comparisons per CPU second on one core, memory per finger, and two baselines measured in the same
run: the same first-stage score in plain NumPy (``np.bitwise_count``) and the exhaustive
``match_many`` over the whole gallery (extrapolated from its measured rate).

``real`` pools the 7 real folders (impression 1 of every finger as the gallery, every other
impression a probe), optionally padded with synthetic distractors, and compares the index's rank-1
with the exhaustive matcher's on the real gallery.  Results go to docs/results/index_*.json
(``--out`` names the file; ``plot`` reads every index_synthetic*.json), the plot to
docs/img/index_search_time.png.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("EKTP_DATA") or PROJECT_ROOT.parent / "shared" / "data")
RESULTS = PROJECT_ROOT / "docs" / "results"
IMAGES = PROJECT_ROOT / "docs" / "img"
REAL_FOLDERS = (
    "fvc2000_db1_b", "fvc2000_db2_b", "fvc2000_db3_b", "fvc2002_db1_b", "fvc2002_db2_b", "fvc2002_db3_b",
    "fcj2020_p101-125",
)  # fmt: skip
SEED = 2026
CHUNK = 100_000
PROBES = 50


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return "unknown"


# -- synthetic gallery, cached in chunks ------------------------------------------------------------------


def chunk_paths(cache: Path, c: int) -> tuple[Path, Path]:
    return cache / f"synth_seed{SEED}_chunk{c}.npz", cache / f"index_seed{SEED}_chunk{c}.npz"


def build_gallery(cache: Path, fingers: int, threads: int) -> None:
    """Generate and index the chunks covering ``fingers`` synthetic fingers (skips cached chunks)."""
    from ektp_biometrics import synth
    from ektp_biometrics.fingerprint.index import FingerprintIndex

    cache.mkdir(parents=True, exist_ok=True)
    for c in range(-(-fingers // CHUNK)):
        templates_path, index_path = chunk_paths(cache, c)
        if index_path.exists():
            continue
        t0 = time.perf_counter()
        if templates_path.exists():
            prints = synth.TemplateSet.load(templates_path)
        else:
            prints = synth.templates(CHUNK, 1, seed=SEED, first_finger=1 + c * CHUNK, workers=threads)
            prints.save(templates_path)
        t1 = time.perf_counter()
        index = FingerprintIndex(threads=threads)
        index.add([f"s{f}" for f in prints.finger_id.tolist()], list(prints))
        index.save(index_path)
        print(f"chunk {c}: generated in {t1 - t0:.0f} s, indexed in {time.perf_counter() - t1:.0f} s", flush=True)


def gallery_index(cache: Path, fingers: int, threads: int, extra=None, repeat: bool = False):
    """The index of the first ``fingers`` synthetic fingers (+ ``extra`` (ids, templates) enrolled first).

    With ``repeat``, missing chunks are stood in for by the built ones again under other ids: the
    same work per finger for timing, but fewer distinct fingers (the result records how many).
    """
    from ektp_biometrics.fingerprint.index import INDEX_FORMAT_VERSION, FingerprintIndex

    needed = -(-fingers // CHUNK)
    built = 0
    while chunk_paths(cache, built)[1].exists():
        built += 1
    if built == 0 or (built < needed and not repeat):
        raise SystemExit(f"run `bench_index.py gallery --fingers {fingers}` first (or pass --repeat)")
    parts: dict[str, list[np.ndarray]] = {}
    ids: list[str] = []
    first = None
    if extra is not None:
        head = FingerprintIndex(threads=threads)
        head.add(*extra)
        merged_path = cache / "extra_head.npz"
        head.save(merged_path)
        first = dict(np.load(merged_path))
    for c in range(needed):
        with np.load(chunk_paths(cache, c % built)[1]) as data:
            arrays = {k: data[k] for k in data.files}
        if int(arrays["format_version"]) != INDEX_FORMAT_VERSION:
            raise SystemExit(f"{chunk_paths(cache, c % built)[1]} is an index of format {int(arrays['format_version'])}; delete it and run `gallery` again")
        take = min(CHUNK, fingers - c * CHUNK)
        chunk_ids = arrays["ids"].tobytes().decode().split("\n")[:take]
        if c >= built:
            chunk_ids = [f"{i}r{c}" for i in chunk_ids]
        codes_end = int(arrays["code_count"][:take].sum(dtype=np.int64))
        minutiae_end = int(arrays["minutia_count"][:take].sum(dtype=np.int64))
        for name in ("position", "code_count", "minutia_count", "geometry"):
            parts.setdefault(name, []).append(arrays[name][:take])
        parts.setdefault("codes", []).append(arrays["codes"][:codes_end])
        parts.setdefault("minutiae", []).append(arrays["minutiae"][:minutiae_end])
        ids.extend(chunk_ids)
        params = arrays["params"]
    if first is not None:
        for name, values in parts.items():
            values.insert(0, first[name])
        ids = first["ids"].tobytes().decode().split("\n") + ids
    merged = {name: np.concatenate(values) for name, values in parts.items()}
    path = cache / f"merged_{fingers}_{0 if extra is None else len(extra[0])}.npz"
    with open(path, "wb") as handle:
        np.savez(handle, format_version=np.array(INDEX_FORMAT_VERSION, dtype=np.int32), params=params,
                 ids=np.frombuffer("\n".join(ids).encode(), dtype=np.uint8), **merged)  # fmt: skip
    index = FingerprintIndex.load(path, threads=threads)
    path.unlink()
    index.distinct_fingers = min(fingers, built * CHUNK)  # type: ignore[attr-defined]
    return index


def synthetic_probes():
    from ektp_biometrics import synth

    both = synth.templates(PROBES, 2, seed=SEED)
    return [both.template(2 * i + 1) for i in range(PROBES)], [f"s{f}" for f in range(1, PROBES + 1)]


def count_full_scores(index) -> list[int]:
    """Record how many fingers each call of the index's second stage scores (benchmark instrumentation)."""
    calls: list[int] = []
    full_scores = index._full_scores

    def counted(probe, rows):
        calls.append(int(rows.size))
        return full_scores(probe, rows)

    index._full_scores = counted
    return calls


# -- baselines ----------------------------------------------------------------------------------------------


def numpy_first_stage(probe: np.ndarray, codes: np.ndarray, counts: np.ndarray, floor: int) -> np.ndarray:
    """The first-stage bound in plain NumPy (64-bit codes): all code pairs, then a per-finger maximum."""
    descriptor = np.uint64((1 << 56) - 1)  # the top byte names the minutia
    agree = 56 - np.bitwise_count((probe[:, 0][None, :] ^ codes[:, 0][:, None]) & descriptor).astype(np.int16)  # (codes, probe)
    owner = np.repeat(np.arange(counts.size), counts.astype(np.int64))
    best = np.zeros((counts.size, probe.shape[0]), dtype=np.int16)
    np.maximum.at(best, owner, agree)
    return np.clip(best - floor, 0, None).sum(axis=1)


def run_synthetic(args: argparse.Namespace) -> dict:
    from ektp_biometrics.fingerprint import _index_kernels as kernels
    from ektp_biometrics.fingerprint.index import _codes
    from ektp_biometrics.fingerprint.match import match_many, prepare

    probes, mates = synthetic_probes()
    rows = []
    for size in args.sizes:
        index = gallery_index(args.cache, size, threads=2, repeat=args.repeat)
        params = index.params
        index.search(probes[0], k=10)  # compile, warm up
        index._cache.clear()
        scored = count_full_scores(index)
        walls, cpus, hits, shortlisted = [], [], 0, []
        for probe, mate in zip(probes, mates):
            index._cache.clear()  # every probe pays its shortlist's preparation
            scored.clear()
            t0, c0 = time.perf_counter(), time.process_time()
            found = index.search(probe, k=10)
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)  # all threads of the process
            hits += found[0].id == mate
            shortlisted.append(sum(scored))
        # first stage alone (bounds of every finger, votes for the vote_shortlist), one thread, CPU time
        codes, starts, counts = index._codes.view, index._code_start.view, index._code_count.view
        eligible = index._alive.view
        threads, index.threads = index.threads, 1
        cpu = []
        for probe in probes[:10]:
            t0 = time.thread_time()
            index._first_stage(probe, params.max_shortlist, eligible)
            cpu.append(time.thread_time() - t0)
        first_stage_rate = size / float(np.median(cpu))
        # the bound in plain NumPy on (at most) the first 10,000 fingers
        sub = min(size, 10_000)
        sub_codes = codes[: int(counts[:sub].sum(dtype=np.int64))]
        p = _codes(probes[0], params, params.max_probe_codes)
        t0 = time.thread_time()
        reference = numpy_first_stage(p, sub_codes, counts[:sub], params.similarity_floor)
        numpy_rate = sub / (time.thread_time() - t0)
        bounds = np.empty(sub, dtype=np.int32)
        kernels._bound_chunk(p, codes, starts, counts, eligible, 0, sub, index._vote, bounds)
        assert np.array_equal(reference, bounds), "numba and numpy first-stage bounds disagree"
        got_rows, _ = index._first_stage(probes[0], params.shortlist, eligible)
        index.threads = threads
        # full matcher: prepare and compare the shortlist of one probe, one thread, CPU time
        shortlist = [index._template(int(r)) for r in got_rows[: params.shortlist]]
        t0 = time.thread_time()
        prepared = [prepare(t) for t in shortlist]
        prepare_ms = (time.thread_time() - t0) / len(prepared) * 1e3
        pp = prepare(probes[0])
        t0 = time.thread_time()
        for _ in range(3):
            match_many(pp, prepared)
        match_rate = 3 * len(prepared) / (time.thread_time() - t0)
        row = {
            "gallery_fingers": size,
            "distinct_fingers": index.distinct_fingers,
            "probe_fingers": len(probes),
            "threads": 2,
            "median_search_s": float(np.median(walls)),
            "p90_search_s": float(np.quantile(walls, 0.9)),
            "median_search_cpu_s": float(np.median(cpus)),
            # a 1:N search as comparisons: gallery fingers per CPU second of the whole search, per core
            "effective_comparisons_per_cpu_s": size / float(np.median(cpus)),
            "median_fingers_scored_in_full": float(np.median(shortlisted)),
            "probes_with_grown_shortlist": int(sum(n > params.shortlist for n in shortlisted)),
            "load_average_1min": os.getloadavg()[0],
            "rank1_hits": hits,
            "first_stage_fingers_per_cpu_s": first_stage_rate,
            "first_stage_numpy_fingers_per_cpu_s": numpy_rate,
            "full_matcher_comparisons_per_cpu_s": match_rate,
            "prepare_ms_per_shortlisted_finger": prepare_ms,
            # prepared templates in memory (100-200 kB each); preparing them costs prepare_ms each on top
            "exhaustive_match_many_cpu_s_per_probe_estimate": size / match_rate,
            "bytes_per_finger": index.bytes_per_finger,
            "code_bytes_per_finger": index.code_nbytes / len(index),
            "shortlist": params.shortlist,
            "max_shortlist": params.max_shortlist,
            "confident_score": params.confident_score,
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
        del index
    return {"command": "python " + " ".join(sys.argv),
            "commit": git_commit(), "cpu_count": os.cpu_count(), "rows": rows}  # fmt: skip


# -- real data ----------------------------------------------------------------------------------------------


def real_templates(cache: Path):
    """Gallery (impression 1), its ids, probes and their mates' ids over the 7 real folders (extraction cached)."""
    from ektp_biometrics.errors import EktpError
    from ektp_biometrics.fingerprint.extract import extract_file
    from ektp_biometrics.fingerprint.template import FingerprintTemplate

    gallery, ids, probes, mates = [], [], [], []
    for name in REAL_FOLDERS:
        folder = DATA / "fingerprints" / name
        store = cache / "real" / name
        store.mkdir(parents=True, exist_ok=True)
        fingers: dict[str, dict[int, FingerprintTemplate]] = {}
        for path in sorted(folder.iterdir()):
            m = re.fullmatch(r"(\d+(?:_\d+)?)_(\d+)", path.stem)
            if path.suffix.lower() not in (".tif", ".bmp") or not m:
                continue
            key = store / f"{path.stem}.ektp"
            if not key.exists() and not key.with_suffix(".fte").exists():
                try:
                    key.write_bytes(extract_file(path).to_bytes("ektp"))
                except EktpError as exc:  # failure to extract: the image takes no part
                    key.with_suffix(".fte").write_text(str(exc))
            if key.exists():
                fingers.setdefault(m.group(1), {})[int(m.group(2))] = FingerprintTemplate.from_bytes(key.read_bytes(), "ektp")
        for finger, impressions in fingers.items():
            if 1 not in impressions:
                continue
            gallery.append(impressions[1])
            ids.append(f"{name}/{finger}")
            for number, t in sorted(impressions.items()):
                if number != 1:
                    probes.append(t)
                    mates.append(f"{name}/{finger}")
    return gallery, ids, probes, mates


def run_real(args: argparse.Namespace) -> dict:
    from ektp_biometrics.fingerprint.index import FingerprintIndex
    from ektp_biometrics.fingerprint.match import match_many, prepare

    gallery, ids, probes, mates = real_templates(args.cache)
    exhaustive_path = args.cache / "real_exhaustive.npz"
    prepared = [prepare(t) for t in gallery]
    if exhaustive_path.exists() and np.load(exhaustive_path)["scores"].shape == (len(probes), len(gallery)):
        scores = np.load(exhaustive_path)["scores"]
    else:
        scores = np.array([match_many(prepare(p), prepared) for p in probes])
        np.savez(exhaustive_path, scores=scores)
    best = scores.max(axis=1)
    exhaustive_top = [ids[i] for i in scores.argmax(axis=1)]
    out = {"command": "python " + " ".join(sys.argv),
           "commit": git_commit(), "gallery_real_fingers": len(gallery), "probes": len(probes),
           "exhaustive_rank1_hit_rate": float(np.mean([t == m for t, m in zip(exhaustive_top, mates)])), "rows": []}  # fmt: skip
    real_ids = set(ids)
    sources = [(d, None) for d in args.distractors]
    if args.distractor_index:
        sources = [(None, args.distractor_index)]
    for distractors, saved in sources:
        position = None
        if saved is not None:
            # a saved index (a gallery's, say) as the distractors; the real fingers join at one position
            index = FingerprintIndex.load(saved, threads=2)
            position = args.distractor_position
            index.add(ids, gallery, positions=[position] * len(ids))
            distractors = int((index._position.view == position).sum()) - len(ids)
            index.distinct_fingers = distractors  # type: ignore[attr-defined]
        elif distractors:
            index = gallery_index(args.cache, distractors, threads=2, extra=(ids, gallery), repeat=args.repeat)
        else:
            index = FingerprintIndex(threads=2)
            index.add(ids, gallery)
        if args.fixed_shortlist:  # the first stage alone decides: no adaptive growth
            index.params = dataclasses.replace(index.params, max_shortlist=index.params.shortlist)
        scored = count_full_scores(index)
        step = args.probe_step if distractors else 1
        identical = hits = distractor_first = kept = grown = 0
        times, cpus = [], []
        chosen = list(range(0, len(probes), step))
        for n in chosen:
            scored.clear()
            t0, c0 = time.perf_counter(), time.process_time()
            found = index.search(probes[n], k=1, position=position)[0]
            times.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
            same = bool(found.score == best[n] and found.id == exhaustive_top[n])
            identical += same
            hits += found.id == mates[n]
            kept += same and exhaustive_top[n] == mates[n]
            grown += sum(scored) > index.params.shortlist
            distractor_first += bool(found.id not in real_ids and found.score > best[n])
        row = {
            "synthetic_distractors": distractors,
            "distractors_from": None if saved is None else str(saved),
            "searched_position": position,
            "distinct_distractors": getattr(index, "distinct_fingers", 0),
            "probes_searched": len(chosen),
            "rank1_identical_to_exhaustive": identical,
            "rank1_identical_fraction": identical / len(chosen),
            "index_rank1_hit_rate": hits / len(chosen),
            "exhaustive_rank1_hit_rate_same_probes": float(np.mean([exhaustive_top[n] == mates[n] for n in chosen])),
            "exhaustive_rank1_hits": int(sum(exhaustive_top[n] == mates[n] for n in chosen)),
            "exhaustive_rank1_hits_also_index_rank1": kept,
            "probes_with_grown_shortlist": grown,
            "distractor_outscored_exhaustive_best": distractor_first,
            "median_search_s": float(np.median(times)),
            "median_search_cpu_s": float(np.median(cpus)),
            "shortlist": index.params.shortlist,
            "max_shortlist": index.params.max_shortlist,
            "confident_score": index.params.confident_score,
        }
        out["rows"].append(row)
        print(json.dumps(row), flush=True)
        del index
    return out


def plot(results: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(
        (r for path in sorted(results.glob("index_synthetic*.json")) for r in json.loads(path.read_text())["rows"]),
        key=lambda r: r["gallery_fingers"],
    )
    n = np.array([r["gallery_fingers"] for r in rows], dtype=float)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.loglog(n, [r["median_search_s"] for r in rows], "o-", label="FingerprintIndex, 2 threads, wall (shared machine)")
    ax.loglog(n, [r["median_search_cpu_s"] for r in rows], "o--", label="FingerprintIndex, CPU time of both threads")
    ax.loglog(n, [x / r["first_stage_fingers_per_cpu_s"] for x, r in zip(n, rows)], "s--", label="its first stage alone, 1 core")
    ax.loglog(n, [x / r["first_stage_numpy_fingers_per_cpu_s"] for x, r in zip(n, rows)], "^:", label="same first stage in NumPy, 1 core")
    ax.loglog(n, [x / r["full_matcher_comparisons_per_cpu_s"] for x, r in zip(n, rows)], "v:", label="exhaustive match_many, 1 core (prepared)")
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.set_xlabel("gallery size (fingers)")
    ax.set_ylabel("seconds per probe finger")
    ax.set_title("1:N search time vs gallery size (synthetic fingers)")
    ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    IMAGES.mkdir(exist_ok=True)
    fig.savefig(IMAGES / "index_search_time.png", dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/ektp_index"))
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("gallery")
    g.add_argument("--fingers", type=int, default=1_000_000)
    g.add_argument("--threads", type=int, default=2)
    s = sub.add_parser("synthetic")
    s.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    r = sub.add_parser("real")
    r.add_argument("--distractors", type=int, nargs="+", default=[0, 100_000, 1_000_000])
    r.add_argument("--probe-step", type=int, default=4, help="search every n-th probe when there are distractors")
    r.add_argument("--fixed-shortlist", action="store_true", help="no adaptive growth (max_shortlist = shortlist)")
    r.add_argument("--distractor-index", type=Path, help="a saved FingerprintIndex (.npz) as the distractors, instead of --distractors")
    r.add_argument("--distractor-position", type=int, default=2, help="ISO position the real fingers join and probes search")
    for p, name in ((s, "index_synthetic.json"), (r, "index_real.json")):
        p.add_argument("--out", default=name, help="file name under docs/results")
        p.add_argument("--repeat", action="store_true", help="stand in for unbuilt chunks with built ones (timing only)")
    sub.add_parser("plot")
    args = parser.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.command == "gallery":
        build_gallery(args.cache, args.fingers, args.threads)
    elif args.command == "synthetic":
        (RESULTS / args.out).write_text(json.dumps(run_synthetic(args), indent=1) + "\n")
    elif args.command == "real":
        (RESULTS / args.out).write_text(json.dumps(run_real(args), indent=1) + "\n")
    else:
        plot(RESULTS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
