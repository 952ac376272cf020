"""Synthetic vs real impostor score distributions (issue: synthetic impostors look too alike).

N synthetic fingers x 2 impressions are rendered, extracted with ``fingerprint.extract`` and
every impostor pair (impressions of different fingers) is scored with ``fingerprint.match``.
With ``--real`` the first two impressions of every finger in each shared FVC folder are scored
the same way (impostor pairs within a folder). Reported: median, p90, p99, p99.9 and the rate
above ``threshold(1e-2)`` and ``threshold(1e-3)`` (the real-calibrated thresholds).

Usage: ``nice -n 5 python benchmarks/synth_impostors.py --fingers 40 --seed 7 [--real]``
"""

from __future__ import annotations

import argparse
import json
import os
import time
from itertools import combinations
from pathlib import Path

import numpy as np

from ektp_biometrics import synth
from ektp_biometrics.fingerprint import extract, extract_file
from ektp_biometrics.fingerprint.match import match, threshold

FVC_FOLDERS = ("fvc2002_db1_b", "fvc2002_db2_b", "fvc2002_db3_b", "fvc2000_db1_b", "fvc2000_db2_b", "fvc2000_db3_b")


def summarize(scores: list[float]) -> dict[str, float]:
    """Median, p90, p99, p99.9, max and the rates above the 1e-2 and 1e-3 thresholds."""
    values = np.asarray(scores, dtype=np.float64)
    t2, t3 = threshold(1e-2), threshold(1e-3)
    return {
        "pairs": int(values.size),
        "median": float(np.median(values)),
        "p90": float(np.quantile(values, 0.90)),
        "p99": float(np.quantile(values, 0.99)),
        "p999": float(np.quantile(values, 0.999)),
        "max": float(values.max()),
        "rate_above_t1e-2": float(np.mean(values > t2)),
        "rate_above_t1e-3": float(np.mean(values > t3)),
    }


def impostor_scores(templates: list, finger_of: list[int]) -> list[float]:
    """Scores of all pairs whose finger ids differ."""
    return [match(templates[i], templates[j]) for i, j in combinations(range(len(templates)), 2) if finger_of[i] != finger_of[j]]


def synthetic(fingers: int, seed: int, shape: tuple[int, int]) -> dict[str, float]:
    """Impostor statistics of ``fingers`` synthetic fingers x 2 clean impressions."""
    templates, finger_of = [], []
    for finger, item in enumerate(synth.impressions(fingers, 2, seed=seed, noise="clean", image_shape=shape)):
        templates.append(extract(item.image))
        finger_of.append(finger // 2)
    return summarize(impostor_scores(templates, finger_of))


def real(folder: Path) -> dict[str, float]:
    """Impostor statistics of the first two impressions of every finger in an FVC folder."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".tif", ".bmp", ".png"})
    chosen = [p for p in files if p.stem.split("_")[-1] in {"1", "2"}]
    templates = [extract_file(p) for p in chosen]
    return summarize(impostor_scores(templates, [int(p.stem.split("_")[0]) for p in chosen]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fingers", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--shape", type=int, nargs=2, default=(400, 360))
    parser.add_argument("--real", action="store_true", help="also score the shared FVC folders")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args()
    started = time.process_time()
    results = {"thresholds": {"1e-2": threshold(1e-2), "1e-3": threshold(1e-3)},
               "synthetic": synthetic(args.fingers, args.seed, tuple(args.shape))}
    if args.real:
        root = Path(os.environ.get("EKTP_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data") / "fingerprints"
        results["real"] = {name: real(root / name) for name in FVC_FOLDERS if (root / name).is_dir()}
    results["cpu_seconds"] = time.process_time() - started
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
