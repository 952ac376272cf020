"""Face speed: detect + align + embed per 640x480 frame on one core, and 1:N search on two.

Usage::

    python benchmarks/bench_face.py extract            # pins itself to one core; ~2 min
    python benchmarks/bench_face.py search             # pins itself to two cores; ~3 min, 1.2 GB
    python benchmarks/bench_face.py plot               # docs/img/face_speed.png from the two JSON files

``extract`` builds 640x480 frames by placing ORL photos (scaled x3.5) and Yale photos (scaled x1.5)
at seeded random places on a seeded textured background, and times, frame by frame and in the
same run, the library's default pipeline (:func:`~ektp_biometrics.face.detect` then
:func:`~ektp_biometrics.face.extract`) beside the issue's reference pipeline (dlib's HOG detector on
the full frame, the 5-point model, one ResNet pass in dlib, no jitter).  Wall time is measured on
one pinned core, CPU time with ``time.process_time``; both are medians over the frames.

``search`` fills :class:`~ektp_biometrics.face.FaceIndex` (float32 and int8) with seeded random
128-d unit vectors and times ``search`` (one probe) and ``search_many`` (a batch) on two threads,
beside the plain NumPy baseline (``gallery @ probe`` then ``argpartition``), at several gallery
sizes up to 1,000,000.  Results go to ``docs/results/face_speed_extract.json`` and
``docs/results/face_speed_search.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"


def pin(cores: int) -> list[int]:
    """Pin this process to its first ``cores`` allowed CPUs (before NumPy's BLAS starts its threads)."""
    allowed = sorted(os.sched_getaffinity(0))[:cores]
    os.sched_setaffinity(0, allowed)
    return allowed


def data_root() -> Path:
    return Path(os.environ.get("EKTP_DATA", ROOT.parent / "shared" / "data"))


def make_frames(limit_per_set: int, seed: int):
    """640x480 RGB frames with one face each, from ORL and Yale photos on a textured background."""
    import cv2
    import numpy as np

    from ektp_biometrics.face._image import as_rgb
    from ektp_biometrics.face.evaluation import orl_set, yale_set

    rng = np.random.default_rng(seed)
    faces = data_root() / "faces"
    frames = []
    for face_set, scale in ((orl_set(faces / "att_orl"), 3.5), (yale_set(faces / "yalefaces"), 1.5)):
        step = max(1, len(face_set.paths) // limit_per_set)
        for path in face_set.paths[::step][:limit_per_set]:
            photo = as_rgb(path)
            photo = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
            noise = rng.normal(128, 40, (30, 40)).clip(0, 255).astype(np.uint8)
            frame = cv2.resize(noise, (640, 480), interpolation=cv2.INTER_CUBIC)
            frame = np.repeat(frame[:, :, None], 3, axis=2)
            top = int(rng.integers(0, 480 - photo.shape[0] + 1))
            left = int(rng.integers(0, 640 - photo.shape[1] + 1))
            frame[top : top + photo.shape[0], left : left + photo.shape[1]] = photo
            frames.append((f"{face_set.name}/{path.relative_to(path.parents[1]) if face_set.name == 'orl' else path.name}", frame))
    return frames


def bench_extract(limit_per_set: int, seed: int) -> dict:
    cores = pin(1)
    import numpy as np

    from ektp_biometrics.face import _models, detect, extract, get_embedder

    frames = make_frames(limit_per_set, seed)
    embedder = get_embedder()
    detector, predictor, network = _models.hog_detector(), _models.five_point_predictor(), _models.resnet_descriptor()

    def ours(rgb):
        faces = detect(rgb)
        return extract(rgb, embedder=embedder, face=faces[0]) if faces else None

    def reference(rgb):
        rects = detector(rgb, 0)
        if not rects:
            return None
        shape = predictor(rgb, rects[0])
        return network.compute_face_descriptor(rgb, shape)

    def timed(function, rgb):
        wall, cpu = time.perf_counter(), time.process_time()
        result = function(rgb)
        return result, time.perf_counter() - wall, time.process_time() - cpu

    for run in (ours, reference):  # load models, warm caches
        run(frames[0][1])
    rows = {"ours": [], "ours_detect": [], "reference": []}
    lost = {"ours": [], "reference": []}
    for name, rgb in frames:
        # alternate the order so both pipelines see the same machine load
        for which in (("ours", "reference") if len(rows["ours"]) % 2 == 0 else ("reference", "ours")):
            result, wall, cpu = timed(ours if which == "ours" else reference, rgb)
            rows[which].append((wall, cpu))
            if result is None:
                lost[which].append(name)
        _, wall, cpu = timed(detect, rgb)
        rows["ours_detect"].append((wall, cpu))

    def summary(pairs):
        walls, cpus = np.array(pairs).T * 1000
        return {
            "median_wall_ms": round(float(np.median(walls)), 1),
            "p90_wall_ms": round(float(np.percentile(walls, 90)), 1),
            "median_cpu_ms": round(float(np.median(cpus)), 1),
        }

    # the descriptor network alone, on the chips of the first frames: NumPy (1 and 2 chips) and dlib (1 chip)
    network_cpu = {"numpy_1_chip": [], "numpy_2_chips": [], "dlib_1_chip": []}
    for _, rgb in frames[:20]:
        chips = embedder.chips(rgb, detect(rgb)[0])
        for key, run in (
            ("numpy_1_chip", lambda: embedder._numpy_net.describe(chips[:1])),
            ("numpy_2_chips", lambda: embedder._numpy_net.describe(chips)),
            ("dlib_1_chip", lambda: network.compute_face_descriptor(chips[0])),
        ):
            cpu = time.process_time()
            run()
            network_cpu[key].append(time.process_time() - cpu)

    report = {
        "measure": "detect + align + embed per 640x480 frame, one pinned core",
        "command": "python benchmarks/bench_face.py extract" + (f" --limit {limit_per_set}" if limit_per_set != 40 else ""),
        "frames": len(frames),
        "cores": cores,
        "embedder": f"{embedder.name} {embedder.version} (engine {embedder.engine})",
        "ours": summary(rows["ours"]),
        "ours_detection_only": summary(rows["ours_detect"]),
        "reference": summary(rows["reference"]),
        "reference_pipeline": "dlib HOG on the full frame, 5-point landmarks, one ResNet pass in dlib, no jitter",
        "no_face_found": lost,
        "network_median_cpu_ms": {key: round(1000 * float(np.median(v)), 1) for key, v in network_cpu.items()},
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    report["speedup_cpu"] = round(report["reference"]["median_cpu_ms"] / report["ours"]["median_cpu_ms"], 2)
    return report


def bench_search(sizes: list[int], probes: int, repeats: int, seed: int) -> dict:
    cores = pin(2)
    import numpy as np

    from ektp_biometrics.face import FaceIndex

    rng = np.random.default_rng(seed)
    largest = max(sizes)
    gallery = rng.standard_normal((largest, 128), dtype=np.float32)
    gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
    mates = rng.choice(largest, probes, replace=False)
    queries = gallery[mates] + np.float32(0.05) * rng.standard_normal((probes, 128), dtype=np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)

    def numpy_baseline(matrix, probe, k):
        scores = matrix @ probe
        top = np.argpartition(-scores, k)[:k]
        return top[np.argsort(-scores[top])]

    def per_probe(function, items):
        walls, cpus = [], []
        for _ in range(repeats):
            for item in items:
                wall, cpu = time.perf_counter(), time.process_time()
                function(item)
                walls.append(time.perf_counter() - wall)
                cpus.append(time.process_time() - cpu)
        return round(1000 * float(np.median(walls)), 2), round(1000 * float(np.median(cpus)), 2)

    results = []
    for size in sorted(sizes):
        matrix = gallery[:size]
        # probes whose mate lies inside this gallery
        inside = queries[mates < size][:probes] if (mates < size).sum() >= 8 else queries[:8]
        row = {"gallery": size}
        row["numpy_float32_wall_ms"], row["numpy_float32_cpu_ms"] = per_probe(lambda q: numpy_baseline(matrix, q, 10), inside)
        expected = [numpy_baseline(matrix, q, 1)[0] for q in inside]
        for quantize, label in ((False, "float32"), (True, "int8")):
            index = FaceIndex(128, quantize=quantize, threads=2)
            index.add_many(np.arange(size), matrix)
            index.search(inside[0], k=10)  # compile the kernels
            row[f"{label}_bytes_per_template"] = index.bytes_per_template
            row[f"{label}_search_wall_ms"], row[f"{label}_search_cpu_ms"] = per_probe(lambda q: index.search(q, k=10), inside)
            batch_walls, batch_cpus = [], []
            for _ in range(repeats):
                wall, cpu = time.perf_counter(), time.process_time()
                found = index.search_many(inside, k=10)
                batch_walls.append((time.perf_counter() - wall) / len(inside))
                batch_cpus.append((time.process_time() - cpu) / len(inside))
            row[f"{label}_search_many_wall_ms"] = round(1000 * float(np.median(batch_walls)), 2)
            row[f"{label}_search_many_cpu_ms"] = round(1000 * float(np.median(batch_cpus)), 2)
            row[f"{label}_top1_equals_numpy"] = float(np.mean([hits[0].id == want for hits, want in zip(found, expected)]))
            del index
        row["load_average_1min"] = round(os.getloadavg()[0], 2)
        print(json.dumps(row), flush=True)
        results.append(row)
    return {
        "measure": "1:N top-10 per probe over seeded random 128-d unit vectors, two pinned cores",
        "command": "python benchmarks/bench_face.py search",
        "cores": cores,
        "probes": int(len(queries)),
        "repeats": repeats,
        "numpy_baseline": "gallery @ probe (float32, BLAS on 2 threads), argpartition, sort the top 10",
        "rows": results,
    }


def plot() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    extract = json.loads((RESULTS / "face_speed_extract.json").read_text())
    search = json.loads((RESULTS / "face_speed_search.json").read_text())
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    labels = ["ours: detect", "ours: detect+align+embed", "reference (issue)"]
    parts = [extract["ours_detection_only"], extract["ours"], extract["reference"]]
    positions = range(len(labels))
    left.bar([p - 0.2 for p in positions], [p["median_wall_ms"] for p in parts], 0.4, label="median wall")
    left.bar([p + 0.2 for p in positions], [p["median_cpu_ms"] for p in parts], 0.4, label="median CPU")
    left.axhline(80, color="red", linestyle="--", label="target 80 ms")
    left.set_xticks(list(positions), labels, fontsize=8)
    left.set_ylabel("ms per 640x480 frame, one core")
    left.set_title(f"detect + align + embed ({extract['frames']} frames)")
    left.legend(fontsize=8)
    rows = search["rows"]
    sizes = [r["gallery"] for r in rows]
    for key, label in (
        ("numpy_float32_wall_ms", "NumPy matmul + argpartition"),
        ("float32_search_wall_ms", "FaceIndex float32, search"),
        ("int8_search_wall_ms", "FaceIndex int8, search"),
        ("int8_search_many_wall_ms", "FaceIndex int8, search_many"),
        ("float32_search_many_wall_ms", "FaceIndex float32, search_many"),
    ):
        right.loglog(sizes, [r[key] for r in rows], marker="o", label=label)
    right.loglog(sizes, [r["int8_search_cpu_ms"] / 2 for r in rows], "g:", marker="x", label="FaceIndex int8, search: CPU per core")
    right.axhline(20, color="red", linestyle="--", label="target 20 ms at 1M")
    right.set_xlabel("gallery size (templates)")
    right.set_ylabel("median wall ms per probe, 2 cores")
    right.set_title("1:N top-10")
    right.grid(True, which="both", alpha=0.3)
    right.legend(fontsize=7)
    fig.tight_layout()
    out = ROOT / "docs" / "img" / "face_speed.png"
    fig.savefig(out, dpi=100)
    print(f"wrote {out}")
    print(markdown_tables(extract, search))


def markdown_tables(extract: dict, search: dict) -> str:
    """The two tables of docs/face.md's speed section, from the JSON results."""
    network = extract["network_median_cpu_ms"]
    lines = [
        f"detect + align + embed, {extract['frames']} frames of 640x480, one pinned core, load average {extract['load_average_1min']}"
        f" (the network alone, median CPU: NumPy {network['numpy_1_chip']} ms for one chip, {network['numpy_2_chips']} ms"
        f" for the default's two; dlib {network['dlib_1_chip']} ms for one):",
        "",
        "| pipeline | median wall | p90 wall | median CPU |",
        "|---|---|---|---|",
    ]
    for key, label in (
        ("ours", f"library default ({extract['embedder']})"),
        ("ours_detection_only", "of which detection (`detect`)"),
        ("reference", "issue's reference: " + extract["reference_pipeline"]),
    ):
        row = extract[key]
        lines.append(f"| {label} | {row['median_wall_ms']} ms | {row['p90_wall_ms']} ms | {row['median_cpu_ms']} ms |")
    lines += [
        "",
        f"1:N top-10 per probe, two pinned cores, {search['probes']} probes x {search['repeats']} repeats "
        "(CPU time is summed over both threads):",
        "",
        "| gallery | NumPy matmul + argpartition (float32, 512 B) | float32 `search` (512 B) | int8 `search` (132 B) "
        "| float32 `search_many` | int8 `search_many` | load average |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in search["rows"]:
        cells = [
            f"{row[f'{key}_wall_ms']} ms wall, {row[f'{key}_cpu_ms']} ms CPU"
            for key in ("numpy_float32", "float32_search", "int8_search", "float32_search_many", "int8_search_many")
        ]
        lines.append(f"| {row['gallery']:,} | " + " | ".join(cells) + f" | {row['load_average_1min']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("extract")
    p.add_argument("--limit", type=int, default=40, help="frames per data set")
    p.add_argument("--seed", type=int, default=0)
    p = sub.add_parser("search")
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    p.add_argument("--probes", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    sub.add_parser("plot")
    args = parser.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.what == "plot":
        plot()
        return 0
    if args.what == "extract":
        report = bench_extract(args.limit, args.seed)
        out = RESULTS / "face_speed_extract.json"
    else:
        report = bench_search(args.sizes, args.probes, args.repeats, args.seed)
        out = RESULTS / "face_speed_search.json"
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
