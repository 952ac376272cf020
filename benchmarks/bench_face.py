"""Face speed: detect + align + embed per 640x480 photo (one core), and 1:N over a large gallery.

Usage (pin to one core for the first, two for the second)::

    taskset -c 0 python benchmarks/bench_face.py extract
    taskset -c 0,1 python benchmarks/bench_face.py search --size 1000000

``extract`` upsamples every Yale photo to 640x480 (letterboxed) and times
:func:`ektp_biometrics.face.extract` with the default embedder; ``search`` fills a
:class:`FaceIndex` with seeded random unit vectors (float32 and int8) and times ``search`` and
``search_many`` per probe.  Prints one JSON line per measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def bench_extract(limit: int, fast: bool) -> None:
    import cv2

    from ektp_biometrics.face import detect, extract, get_embedder
    from ektp_biometrics.face._image import as_rgb
    from ektp_biometrics.face.evaluation import yale_set

    root = Path(os.environ.get("EKTP_DATA", ROOT.parent / "shared" / "data")) / "faces" / "yalefaces"
    # --fast: one plain descriptor pass instead of the default four (plain/equalized, each mirrored)
    embedder = get_embedder("dlib-resnet", views=("plain",), flip=False) if fast else get_embedder()
    photos = []
    for path in yale_set(root).paths[:limit]:
        rgb = cv2.resize(as_rgb(path), (640, 486), interpolation=cv2.INTER_LINEAR)[3:483]
        photos.append(np.ascontiguousarray(rgb))
    extract(photos[0], embedder=embedder)  # load models
    totals, detects, cpu = [], [], []
    for rgb in photos:
        start, cpu_start = time.perf_counter(), time.process_time()
        faces = detect(rgb)
        middle = time.perf_counter()
        extract(rgb, embedder=embedder, face=faces[0])
        totals.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cpu_start)
        detects.append(middle - start)
    print(
        json.dumps(
            {
                "measure": "detect+align+embed, 640x480",
                "embedder": f"{embedder.name} {embedder.version}",
                "photos": len(photos),
                "median_ms": round(1000 * float(np.median(totals)), 1),
                "median_detect_ms": round(1000 * float(np.median(detects)), 1),
                "p90_ms": round(1000 * float(np.percentile(totals, 90)), 1),
                "median_cpu_ms": round(1000 * float(np.median(cpu)), 1),
                "cpus": len(os.sched_getaffinity(0)),
                "load_average": os.getloadavg()[0],
            }
        )
    )


def bench_search(size: int, probes: int, seed: int) -> None:
    from ektp_biometrics.face import FaceIndex

    rng = np.random.default_rng(seed)
    gallery = rng.standard_normal((size, 128), dtype=np.float32)
    gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
    queries = gallery[rng.choice(size, probes, replace=False)] + 0.1 * rng.standard_normal((probes, 128), dtype=np.float32)
    for quantize in (False, True):
        index = FaceIndex(128, quantize=quantize)
        index.add_many(np.arange(size), gallery)
        index.search(queries[0], k=10)  # compile
        start, cpu = time.perf_counter(), time.process_time()
        single = [index.search(q, k=10) for q in queries]
        one_by_one = (time.perf_counter() - start) / probes
        one_by_one_cpu = (time.process_time() - cpu) / probes
        start, cpu = time.perf_counter(), time.process_time()
        batched = index.search_many(queries, k=10)
        many = (time.perf_counter() - start) / probes
        many_cpu = (time.process_time() - cpu) / probes
        agree = float(np.mean([a[0].id == b[0].id for a, b in zip(single, batched)]))
        print(
            json.dumps(
                {
                    "measure": "1:N top-10",
                    "gallery": size,
                    "dtype": "int8" if quantize else "float32",
                    "threads": index.threads,
                    "ms_per_probe_search": round(1000 * one_by_one, 2),
                    "ms_per_probe_search_many": round(1000 * many, 2),
                    # CPU seconds over all threads: on a shared machine, wall time / CPU time shows the contention
                    "cpu_ms_per_probe_search": round(1000 * one_by_one_cpu, 2),
                    "cpu_ms_per_probe_search_many": round(1000 * many_cpu, 2),
                    "load_average": os.getloadavg()[0],
                    "probes": probes,
                    "search_and_search_many_agree": agree,
                }
            ),
            flush=True,
        )
        del index


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("extract")
    p.add_argument("--limit", type=int, default=60)
    p.add_argument("--fast", action="store_true", help="dlib-resnet with one plain descriptor pass")
    p = sub.add_parser("search")
    p.add_argument("--size", type=int, default=1_000_000)
    p.add_argument("--probes", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.what == "extract":
        bench_extract(args.limit, args.fast)
    else:
        bench_search(args.size, args.probes, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
