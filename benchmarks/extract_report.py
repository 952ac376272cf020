"""Extraction over every shared fingerprint folder: refusals, minutiae counts, quality, time; plots.

Writes ``docs/results/extract_report.json``, ``docs/img/extract_minutiae.png`` (minutiae count
per image, per folder) and ``docs/img/extract_quality.png`` (quality score per folder), and prints
the Markdown table that docs/fingerprint.md shows.

Usage::

    python benchmarks/extract_report.py
    python benchmarks/extract_report.py --versus gradient_sigma=0 --folder fvc2002_db1_b
    python benchmarks/extract_report.py --compare BEFORE.json AFTER.json --plot docs/img/extract_eer.png

``--versus NAME=VALUE ...`` instead times the default parameters against a variant, image by
image in alternation on one thread (CPU time, fastest of ``--repeat`` runs per image, reading
excluded), and prints both medians and their ratio: the check that an extractor change stays
within its speed budget, measured side by side on the same machine state.  ``--compare`` draws
the per-folder and pooled EER and FNMR at FMR 0.1 % of two ``eval_verification.py --out`` reports.
"""

from __future__ import annotations

import collections
import json
import os
import statistics
import sys
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SUFFIXES = {".tif", ".bmp", ".png"}


def parse_changes(items: list[str]) -> dict:
    from ektp_biometrics.fingerprint.params import DEFAULT_PARAMETERS

    changes = {}
    for item in items:
        name, _, value = item.partition("=")
        if not hasattr(DEFAULT_PARAMETERS, name):
            raise SystemExit(f"unknown ExtractionParameters field {name!r}")
        changes[name] = type(getattr(DEFAULT_PARAMETERS, name))(float(value))
    return changes


def versus(changes: dict, folder: str, repeat: int) -> int:
    """Median CPU ms per image, default parameters against ``changes``, in alternation."""
    from ektp_biometrics.fingerprint import extract
    from ektp_biometrics.fingerprint.params import DEFAULT_PARAMETERS
    from ektp_biometrics.io import read_image_with_info

    variant = DEFAULT_PARAMETERS.replace(**changes)
    root = Path(os.environ.get("EKTP_DATA") or PROJECT_ROOT.parent / "shared" / "data") / "fingerprints" / folder
    files = sorted(p for p in root.iterdir() if p.suffix.lower() in SUFFIXES)
    best: dict[str, list[float]] = {"default": [], "variant": []}
    for path in files:
        image, info = read_image_with_info(path)
        dpi = info.scan_dpi or 500
        runs: dict[str, list[float]] = {"default": [], "variant": []}
        for _ in range(repeat):
            for label, params in (("default", DEFAULT_PARAMETERS), ("variant", variant)):
                t0 = time.thread_time()
                extract(image, dpi, params=params)
                runs[label].append(time.thread_time() - t0)
        for label, times in runs.items():
            best[label].append(min(times))
    a, b = (1e3 * statistics.median(best[k]) for k in ("default", "variant"))
    print(f"{folder}: {len(files)} images, fastest of {repeat} CPU runs each; median ms: "
          f"default {a:.2f}, variant {changes} {b:.2f}, default / variant {a / b:.3f}")
    return 0


def compare(before_path: Path, after_path: Path, plot: Path) -> int:
    """Bar chart of two verification reports' per-folder and pooled EER and FNMR at FMR 0.1 %."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    before, after = (json.loads(Path(p).read_text()) for p in (before_path, after_path))
    names = [n for n in before["folders"] if n in after["folders"]]
    rows = [(n, before["folders"][n], after["folders"][n]) for n in names]
    rows.append(("pooled", before["pooled"], after["pooled"]))
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), dpi=110)
    x = np.arange(len(rows))
    for ax, key, title in zip(axes, ("eer", "fnmr_at_fmr_1e-3"), ("EER", "FNMR at FMR 0.1 %")):
        ax.bar(x - 0.2, [100 * r[1][key] for r in rows], 0.4, label=f"before ({before_path.stem})", color="#999999")
        ax.bar(x + 0.2, [100 * r[2][key] for r in rows], 0.4, label=f"after ({after_path.stem})", color="#2a6fbb")
        ax.set_xticks(x, [r[0].replace("_b", "").replace("_p101-125", "") for r in rows], rotation=30, ha="right")
        ax.set_ylabel(f"{title} (%)")
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(plot)
    plt.close(fig)
    for name, b, a in rows:
        print(f"{name:18s} EER {100 * b['eer']:5.2f} -> {100 * a['eer']:5.2f} %   "
              f"FNMR@0.1% {100 * b['fnmr_at_fmr_1e-3']:5.2f} -> {100 * a['fnmr_at_fmr_1e-3']:5.2f} %")
    return 0


def main() -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--versus", nargs="+", metavar="NAME=VALUE", help="time the defaults against this variant")
    parser.add_argument("--folder", default="fvc2002_db1_b", help="folder for --versus")
    parser.add_argument("--repeat", type=int, default=5, help="runs per image for --versus; the fastest is kept")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"), help="two eval_verification reports")
    parser.add_argument("--plot", type=Path, default=PROJECT_ROOT / "docs" / "img" / "extract_eer.png", help="PNG for --compare")
    args = parser.parse_args()
    if args.compare:
        return compare(*args.compare, args.plot)
    if args.versus:
        return versus(parse_changes(args.versus), args.folder, args.repeat)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from tqdm import tqdm

    from ektp_biometrics.errors import EktpError
    from ektp_biometrics.fingerprint import extract_file

    root = Path(os.environ.get("EKTP_DATA") or PROJECT_ROOT.parent / "shared" / "data") / "fingerprints"
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    report: dict = {}
    counts: dict[str, list[int]] = {}
    quality: dict[str, list[int]] = {}
    for folder in folders:
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in SUFFIXES)
        refused: collections.Counter = collections.Counter()
        cpu = []
        for path in tqdm(files, desc=folder.name, leave=False, disable=None):  # quiet when not a terminal
            t0 = time.thread_time()
            try:
                template = extract_file(path)
            except EktpError as exc:
                refused[type(exc).__name__] += 1
                continue
            cpu.append(time.thread_time() - t0)
            counts.setdefault(folder.name, []).append(len(template))
            quality.setdefault(folder.name, []).append(template.quality)
        n = counts.get(folder.name, [0])
        report[folder.name] = {
            "images": len(files),
            "refused": dict(refused),
            "median_minutiae": statistics.median(n),
            "median_quality": statistics.median(quality.get(folder.name, [0])),
            "median_cpu_ms_including_read": 1e3 * statistics.median(cpu) if cpu else None,
        }
    out = PROJECT_ROOT / "docs"
    (out / "results").mkdir(parents=True, exist_ok=True)
    (out / "img").mkdir(parents=True, exist_ok=True)
    (out / "results" / "extract_report.json").write_text(json.dumps(report, indent=2) + "\n")

    names = [f.name for f in folders if f.name in counts]
    for data, label, filename in ((counts, "minutiae per image", "extract_minutiae.png"),
                                  (quality, "quality score (0-100)", "extract_quality.png")):
        fig, ax = plt.subplots(figsize=(9, 3.6), dpi=110)
        ax.boxplot([data[n] for n in names], showfliers=False)
        ax.set_xticks(range(1, len(names) + 1), [n.replace("_b", "").replace("_subset", "") for n in names], rotation=30, ha="right")
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / "img" / filename)
        plt.close(fig)

    print("| folder | images | refused | median minutiae | median quality | median ms (CPU, read included) |")
    print("|---|---|---|---|---|---|")
    for name, row in report.items():
        refused_total = sum(row["refused"].values())
        ms = row["median_cpu_ms_including_read"]
        print(f"| {name} | {row['images']} | {refused_total} | {row['median_minutiae']:g} | {row['median_quality']:g} | "
              f"{ms:.1f} |" if ms is not None else f"| {name} | {row['images']} | {refused_total} | - | - | - |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
