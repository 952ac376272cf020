"""Evaluate a face embedder on AT&T/ORL and Yale; write JSON, DET and histogram plots.

Protocol (data/README.md): genuine pairs = every pair of images of one person, impostor pairs =
every pair of different people; identification gallery = one image per person (ORL image 1,
Yale ``.normal``), probes = every other image.  Also measured: images where no face was found
(and how many took the crop-aware path), per-image detect+align+embed time, the quality gate's
pass rate, and rank-1 through an int8-quantized FaceIndex.

Usage::

    python benchmarks/face_eval.py --embedder dlib-resnet
    python benchmarks/face_eval.py --embedder lbp
    python benchmarks/face_eval.py --embedder dlib-resnet --views plain equalized   # a non-default configuration
    python benchmarks/face_eval.py --write-table   # regenerate face/_fmr_tables.py from the JSON files

Outputs ``docs/results/face_eval_<embedder>.json`` (``face_eval_<embedder>_<version>.json`` for a
non-default configuration), ``docs/img/face_det_<embedder>.png`` and ``docs/img/face_hist_<embedder>.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from ektp_biometrics.face import FaceIndex, assess, detect, get_embedder
from ektp_biometrics.face._image import as_rgb
from ektp_biometrics.face.evaluation import equal_error_rate, orl_set, pair_scores, rank1, threshold_at_fmr, yale_set

ROOT = Path(__file__).resolve().parents[1]
IMG = ROOT / "docs" / "img"
RESULTS = ROOT / "docs" / "results"
TABLE = ROOT / "src" / "ektp_biometrics" / "face" / "_fmr_tables.py"
FMR_LEVELS = (0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001, 0.0005, 0.0002, 0.0001)


def data_root() -> Path:
    return Path(os.environ.get("EKTP_DATA", ROOT.parent / "shared" / "data"))


def evaluate_set(face_set, embedder, with_quality: bool) -> dict:
    vectors, detectors, times, quality_pass, reasons = [], [], [], [], {}
    for path in face_set.paths:
        rgb = as_rgb(path)
        start = time.perf_counter()
        faces = detect(rgb)
        if not faces:
            detectors.append("none")
            vectors.append(None)
            continue
        vectors.append(embedder.embed(rgb, faces[0]))
        times.append(time.perf_counter() - start)
        detectors.append(faces[0].detector)
        if with_quality:
            q = assess(rgb, faces=faces)
            quality_pass.append(q.passed)
            for m in q.measures:
                if m.passed is False:
                    reasons[m.name] = reasons.get(m.name, 0) + 1
    lost = sum(d == "none" for d in detectors)
    keep = np.array([v is not None for v in vectors])
    matrix = np.stack([v for v in vectors if v is not None]).astype(np.float32)
    labels, gallery = face_set.labels[keep], face_set.gallery[keep]
    scores = pair_scores(matrix, labels)
    eer, eer_threshold = equal_error_rate(scores.genuine, scores.impostor)
    hit, probes = rank1(matrix, labels, gallery)
    index = FaceIndex(matrix.shape[1], quantize=True, threads=1)
    index.add_many(list(np.flatnonzero(gallery)), matrix[gallery])
    found = index.search_many(matrix[~gallery], k=1)
    int8_hit = float(np.mean([labels[c[0].id] == labels[~gallery][i] for i, c in enumerate(found)]))
    thresholds = {}
    for fmr in FMR_LEVELS:
        if fmr * scores.impostor.size < 1:
            continue
        t = threshold_at_fmr(scores.impostor, fmr)
        thresholds[str(fmr)] = {"threshold": t, "fnmr": float(np.mean(scores.genuine < t)), "fmr": float(np.mean(scores.impostor >= t))}
    result = {
        "images": len(face_set.paths),
        "no_face_found": lost,
        "crop_aware_path": sum(d == "frame" for d in detectors),
        "rank1": hit,
        "rank1_int8_index": int8_hit,
        "probes": probes,
        "genuine_pairs": int(scores.genuine.size),
        "impostor_pairs": int(scores.impostor.size),
        "eer": eer,
        "eer_threshold": eer_threshold,
        "thresholds": thresholds,
        "median_ms_detect_align_embed": 1000 * float(np.median(times)),
        "image_size": list(as_rgb(face_set.paths[0]).shape[1::-1]),
    }
    if with_quality:
        result["quality_pass_rate"] = float(np.mean(quality_pass))
        result["quality_failures_by_measure"] = reasons
    return result, scores


def plot(name: str, per_set: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4))
    for set_name, scores in per_set.items():
        thresholds = np.unique(np.concatenate([scores.genuine, scores.impostor]))
        g, i = np.sort(scores.genuine), np.sort(scores.impostor)
        fnmr = np.searchsorted(g, thresholds, side="left") / g.size
        fmr = 1 - np.searchsorted(i, thresholds, side="left") / i.size
        ok = (fmr > 0) & (fnmr > 0)
        ax.loglog(fmr[ok], fnmr[ok], label=set_name)
    ax.set_xlabel("false match rate")
    ax.set_ylabel("false non-match rate")
    ax.set_title(f"DET, {name}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(IMG / f"face_det_{name}.png", dpi=100)
    plt.close(fig)
    fig, axes = plt.subplots(1, len(per_set), figsize=(5 * len(per_set), 3.5))
    for ax, (set_name, scores) in zip(np.atleast_1d(axes), per_set.items()):
        bins = np.linspace(min(scores.impostor.min(), scores.genuine.min()), 1.0, 80)
        ax.hist(scores.impostor, bins, density=True, alpha=0.6, label="impostor")
        ax.hist(scores.genuine, bins, density=True, alpha=0.6, label="genuine")
        ax.set_title(f"{set_name}, {name}")
        ax.set_xlabel("cosine score")
        ax.legend()
    fig.tight_layout()
    fig.savefig(IMG / f"face_hist_{name}.png", dpi=100)
    plt.close(fig)


def write_table() -> None:
    """Regenerate the score-to-FMR tables from every docs/results/face_eval_*.json."""
    lines = [
        '"""Score-to-FMR tables measured on AT&T/ORL and Yale (generated by benchmarks/face_eval.py --write-table).',
        "",
        "Key: embedder name (its default configuration) and ``name version``.  Each entry is",
        "(false match rate, cosine threshold), FMR descending; the threshold is the larger of the ORL and",
        "Yale thresholds at that FMR, so a decision at it lets through at most that share of either",
        'set\'s impostor pairs.  Do not edit by hand."""',
        "",
        "FMR_TABLES: dict[str, tuple[tuple[float, float], ...]] = {",
    ]
    for path in sorted(RESULTS.glob("face_eval_*.json")):
        report = json.loads(path.read_text())
        sets = [report["sets"][s]["thresholds"] for s in ("orl", "yale")]
        levels = [lvl for lvl in sets[0] if all(lvl in s for s in sets)]
        rows = ", ".join(f"({float(lvl)!r}, {max(s[lvl]['threshold'] for s in sets)!r})" for lvl in levels)
        keys = [f"{report['embedder']} {report['version']}"]
        if report.get("default", True):  # the embedder's default configuration also answers to its bare name
            keys.insert(0, report["embedder"])
        for key in keys:
            lines.append(f"    {key!r}: ({rows}),")
    lines.append("}")
    TABLE.write_text("\n".join(lines) + "\n")
    print(f"wrote {TABLE}")


def compare_views() -> dict:
    """EER and rank-1 of dlib-resnet view configurations, all from one pass of six chips per photo.

    Every photo's chip is described as photographed, equalized and blended, each also mirrored;
    a configuration sums the unit descriptors of its views, exactly as the embedder does.
    """
    from ektp_biometrics.face.embedders.dlib_resnet import DlibResnetEmbedder

    views = ("plain", "equalized", "blended")
    embedder = DlibResnetEmbedder(views=views, flip=True)
    names = [f"{view}{suffix}" for view in views for suffix in ("", "+mirror")]
    configurations = [(v,) for v in views] + [(v, f"{v}+mirror") for v in views]
    configurations += [("plain", "equalized"), ("plain", "plain+mirror", "equalized", "equalized+mirror")]
    faces = data_root() / "faces"
    rows = {"+".join(c): {"descriptor_passes": len(c)} for c in configurations}
    for face_set in (orl_set(faces / "att_orl"), yale_set(faces / "yalefaces")):
        units = []
        for path in face_set.paths:
            rgb = as_rgb(path)
            raw = embedder._numpy_net.describe(embedder.chips(rgb, detect(rgb)[0])).astype(np.float64)
            units.append(raw / np.linalg.norm(raw, axis=1, keepdims=True))
        units = np.stack(units)  # (photos, 6, 128) in the order of ``names``
        for configuration in configurations:
            vectors = units[:, [names.index(n) for n in configuration]].sum(axis=1)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            scores = pair_scores(vectors, face_set.labels)
            eer, _ = equal_error_rate(scores.genuine, scores.impostor)
            hit, _ = rank1(vectors, face_set.labels, face_set.gallery)
            fnmr = float(np.mean(scores.genuine < threshold_at_fmr(scores.impostor, 0.01)))
            rows["+".join(configuration)][face_set.name] = {"rank1": hit, "eer": eer, "fnmr_at_fmr_1pct": fnmr}
        print(face_set.name, "described", flush=True)
    return {"command": "python benchmarks/face_eval.py --compare-views", "configurations": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedder", default=None, help="registry name (default: the library default)")
    parser.add_argument("--no-quality", action="store_true", help="skip the quality gate measurement")
    parser.add_argument(
        "--without-dlib", action="store_true", help="behave as if the face extra were not installed (the core install)"
    )
    parser.add_argument("--views", nargs="+", help="dlib-resnet chip views (default: the embedder's default)")
    parser.add_argument("--write-table", action="store_true", help="regenerate face/_fmr_tables.py and exit")
    parser.add_argument(
        "--compare-views", action="store_true", help="measure dlib-resnet view configurations into docs/results/face_views.json"
    )
    args = parser.parse_args(argv)
    if args.compare_views:
        report = compare_views()
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "face_views.json").write_text(json.dumps(report, indent=1) + "\n")
        for name, row in report["configurations"].items():
            print(f"{name:45s}", {s: {k: round(v, 4) for k, v in row[s].items()} for s in ("orl", "yale")})
        return 0
    if args.write_table:
        write_table()
        return 0
    if args.without_dlib:
        from ektp_biometrics.errors import DependencyError
        from ektp_biometrics.face import _models

        def absent() -> None:
            raise DependencyError("dlib disabled by --without-dlib")

        _models._dlib_modules = absent  # the detector and the registry both ask through this
    embedder = get_embedder(args.embedder)
    default_version = embedder.version
    if args.views:
        embedder = get_embedder(args.embedder, views=tuple(args.views))
    faces = data_root() / "faces"
    report = {
        "embedder": embedder.name,
        "version": embedder.version,
        "default": embedder.version == default_version,
        "with_dlib": not args.without_dlib,
        "command": "python benchmarks/face_eval.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "sets": {},
    }
    per_set = {}
    for face_set in (orl_set(faces / "att_orl"), yale_set(faces / "yalefaces")):
        result, scores = evaluate_set(face_set, embedder, not args.no_quality)
        report["sets"][face_set.name] = result
        per_set[face_set.name] = scores
        print(face_set.name, json.dumps({k: v for k, v in result.items() if k != "thresholds"}), flush=True)
    # what a decision at the shared table's threshold (the larger of the two sets') does on each set
    shared = {}
    for fmr in FMR_LEVELS:
        level = str(fmr)
        if all(level in report["sets"][name]["thresholds"] for name in per_set):
            t = max(report["sets"][name]["thresholds"][level]["threshold"] for name in per_set)
            shared[level] = {"threshold": t} | {
                name: {"fmr": float(np.mean(s.impostor >= t)), "fnmr": float(np.mean(s.genuine < t))} for name, s in per_set.items()
            }
    report["at_shared_thresholds"] = shared
    IMG.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = embedder.name if report["default"] else f"{embedder.name}_{embedder.version}"
    (RESULTS / f"face_eval_{stem}.json").write_text(json.dumps(report, indent=1) + "\n")
    plot(stem, per_set)
    return 0


if __name__ == "__main__":
    sys.exit(main())
