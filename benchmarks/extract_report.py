"""Extraction over every shared fingerprint folder: refusals, minutiae counts, quality, time; plots.

Writes ``docs/results/extract_report.json``, ``docs/img/extract_minutiae.png`` (minutiae count
per image, per folder) and ``docs/img/extract_quality.png`` (quality score per folder), and prints
the Markdown table that docs/fingerprint.md shows.

Usage::

    python benchmarks/extract_report.py
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


def main() -> int:
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
