"""All-pairs verification protocol of shared/data/README.md, for the extractor and matcher together.

For every folder: genuine pairs are all pairs of impressions of one finger, impostor pairs all
pairs of impressions of different fingers (both within the folder).  Reports EER and FNMR at
FMR 1% and 0.1% per folder and pooled over the folders, failure-to-enroll, extraction time and
comparisons per second, as JSON.  A failed extraction enrolls nothing and scores 0 against
everything (it counts against FNMR, as in FVC).

FVC names are ``101_3.tif`` (finger 101, impression 3); FCJ names are ``103_5_2.bmp`` (person 103,
finger 5, impression 2; a finger is person + finger).

Usage::

    python benchmarks/eval_verification.py --out /tmp/eval.json            # the 7 real folders
    python benchmarks/eval_verification.py fvc2002_db1_b --set max_relaxation_pairs=24
    python benchmarks/eval_verification.py --calibrate                      # rewrite the FMR table

Templates are cached by image path, size and mtime plus the extractor's source digest in
``--cache`` (default /tmp/ektp_eval_templates), so repeated runs only re-match.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from ektp_biometrics.fingerprint.match import match_many, prepare
from ektp_biometrics.fingerprint.match_params import DEFAULT_MATCH_PARAMETERS, MatchParameters
from ektp_biometrics.fingerprint.template import FingerprintTemplate

PROJECT_ROOT = Path(__file__).resolve().parents[1]
REAL_FOLDERS = (
    "fvc2000_db1_b",
    "fvc2000_db2_b",
    "fvc2000_db3_b",
    "fvc2002_db1_b",
    "fvc2002_db2_b",
    "fvc2002_db3_b",
    "fcj2020_p101-125",
)
IMAGE_SUFFIXES = {".tif", ".tiff", ".bmp", ".png", ".pgm", ".wsq"}
CALIBRATION_MODULE = PROJECT_ROOT / "src" / "ektp_biometrics" / "fingerprint" / "_match_calibration.py"


def data_root() -> Path:
    return Path(os.environ.get("EKTP_DATA") or PROJECT_ROOT.parent / "shared" / "data")


def parse_name(path: Path) -> tuple[str, int] | None:
    """(finger id, impression number) from an FVC or FCJ file name, or None."""
    parts = path.stem.split("_")
    if not all(re.fullmatch(r"\d+", p) for p in parts):
        return None
    if len(parts) == 2:
        return parts[0], int(parts[1])
    if len(parts) == 3:
        return f"{parts[0]}_{parts[1]}", int(parts[2])
    return None


def extractor_digest() -> str:
    """Digest of the extractor's sources, so cached templates follow extractor changes."""
    h = hashlib.sha256()
    fp = PROJECT_ROOT / "src" / "ektp_biometrics" / "fingerprint"
    for p in sorted([*fp.glob("extract*.py"), *fp.glob("_stages*.py"), *fp.glob("params.py"), *fp.glob("_*kernels*.py")]):
        if p.name != "_mcc_kernels.py":
            h.update(p.read_bytes())
    for p in sorted((PROJECT_ROOT / "src" / "_native").glob("*.pyx")):
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def load_templates(folder: Path, cache: Path, digest: str) -> tuple[list[Path], list[FingerprintTemplate | None], list[float]]:
    """Extract (or load from cache) the template of every image in ``folder``."""
    from ektp_biometrics.errors import EktpError
    from ektp_biometrics.fingerprint.extract import extract_file

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and parse_name(p))
    templates: list[FingerprintTemplate | None] = []
    times: list[float] = []
    cache_dir = cache / digest / folder.name
    cache_dir.mkdir(parents=True, exist_ok=True)
    for p in files:
        stat = p.stat()
        key = cache_dir / f"{p.stem}_{stat.st_size}_{int(stat.st_mtime)}"
        if key.with_suffix(".ektp").exists():
            templates.append(FingerprintTemplate.from_bytes(key.with_suffix(".ektp").read_bytes(), "ektp"))
            times.append(float(key.with_suffix(".ms").read_text()) if key.with_suffix(".ms").exists() else float("nan"))
            continue
        if key.with_suffix(".fte").exists():
            templates.append(None)
            times.append(float("nan"))
            continue
        t0 = time.process_time()
        try:
            t = extract_file(p)
        except EktpError as exc:
            key.with_suffix(".fte").write_text(f"{type(exc).__name__}: {exc}\n")
            templates.append(None)
            times.append(float("nan"))
            continue
        ms = (time.process_time() - t0) * 1e3
        key.with_suffix(".ektp").write_bytes(t.to_bytes("ektp"))
        key.with_suffix(".ms").write_text(f"{ms:.3f}")
        templates.append(t)
        times.append(ms)
    return files, templates, times


def verification_scores(
    files: list[Path], templates: list[FingerprintTemplate | None], params: MatchParameters
) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Genuine and impostor scores of all pairs i < j, CPU seconds spent matching, comparisons."""
    ids = [parse_name(p)[0] for p in files]  # type: ignore[index]
    prepared = [prepare(t, params) if t is not None else None for t in templates]
    genuine, impostor = [], []
    cpu = 0.0
    comparisons = 0
    for i in range(len(files)):
        js = [j for j in range(i + 1, len(files))]
        if not js:
            continue
        if prepared[i] is None:
            scores = np.zeros(len(js))
        else:
            ok = [j for j in js if prepared[j] is not None]
            t0 = time.process_time()
            got = match_many(prepared[i], [prepared[j] for j in ok], params)
            cpu += time.process_time() - t0
            comparisons += len(ok)
            lookup = dict(zip(ok, got))
            scores = np.array([lookup.get(j, 0.0) for j in js])
        for j, s in zip(js, scores):
            (genuine if ids[i] == ids[j] else impostor).append(s)
    return np.array(genuine), np.array(impostor), cpu, comparisons


def error_rates(genuine: np.ndarray, impostor: np.ndarray) -> dict[str, float]:
    """EER and FNMR at FMR 1% and 0.1% (accept when score >= threshold)."""
    thresholds = np.unique(np.concatenate([genuine, impostor, [np.inf]]))
    imp = np.sort(impostor)
    gen = np.sort(genuine)
    fmr = 1.0 - np.searchsorted(imp, thresholds, side="left") / imp.size
    fnmr = np.searchsorted(gen, thresholds, side="left") / gen.size
    # EER: where the curves cross; average the two rates at the closest threshold
    k = int(np.argmin(np.abs(fmr - fnmr)))
    eer = float((fmr[k] + fnmr[k]) / 2)
    out = {"eer": eer}
    for name, target in (("fnmr_at_fmr_1e-2", 1e-2), ("fnmr_at_fmr_1e-3", 1e-3)):
        ok = np.flatnonzero(fmr <= target)
        out[name] = float(fnmr[ok[0]])
    return out


def write_calibration(impostor: np.ndarray, provenance: dict) -> None:
    """Write the score-to-FMR table measured on the pooled impostor scores."""
    imp = np.sort(impostor)
    n = imp.size
    levels = np.unique(np.concatenate([np.logspace(0, np.log10(1.0 / n), 61), [1.0 / n]]))
    rows: dict[float, float] = {}
    for level in levels[::-1]:
        # smallest threshold t with (#impostors >= t) / n <= level
        allowed = int(np.floor(level * n + 1e-9))
        t = np.nextafter(imp[n - allowed - 1], np.inf) if allowed < n else 0.0
        t = float(t)
        rows[t] = float((n - np.searchsorted(imp, t, side="left")) / n)
    scores = sorted(rows)
    text = [
        '"""Score-to-FMR table of the fingerprint matcher, measured on real impostor pairs.',
        "",
        "GENERATED by benchmarks/eval_verification.py --calibrate; do not edit by hand.",
        "FMR[i] is the fraction of impostor comparisons scoring at least SCORE[i].",
        "",
        "Provenance:",
        *[f"    {k}: {v}" for k, v in provenance.items()],
        '"""',
        "",
        f"IMPOSTOR_PAIRS = {n}",
        f"PARAMS_DIGEST = {provenance['params_digest']!r}",
        "SCORE = (",
        *[f"    {s!r}," for s in scores],
        ")",
        "FMR = (",
        *[f"    {rows[s]!r}," for s in scores],
        ")",
        "",
    ]
    CALIBRATION_MODULE.write_text("\n".join(text))


def params_digest(params: MatchParameters) -> str:
    """Short digest of a parameter set, recorded with the calibration table."""
    from ektp_biometrics.fingerprint.match import parameters_digest

    return parameters_digest(params)


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def parse_overrides(items: list[str]) -> MatchParameters:
    changes = {}
    types = {f.name: f.type for f in dataclasses.fields(MatchParameters)}
    for item in items:
        key, _, value = item.partition("=")
        if key not in types:
            raise SystemExit(f"unknown parameter {key!r}; known: {', '.join(types)}")
        current = getattr(DEFAULT_MATCH_PARAMETERS, key)
        changes[key] = type(current)(float(value)) if not isinstance(current, bool) else value.lower() in ("1", "true")
    return dataclasses.replace(DEFAULT_MATCH_PARAMETERS, **changes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="*", help="folder names under <data>/fingerprints or paths (default: the 7 real ones)")
    parser.add_argument("--out", type=Path, help="write the JSON report here")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/ektp_eval_templates"))
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="override a MatchParameters field")
    parser.add_argument("--calibrate", action="store_true", help="rewrite the score-to-FMR table from the pooled impostors")
    args = parser.parse_args(argv)
    params = parse_overrides(args.set)
    if args.calibrate and (args.set or args.folders):
        raise SystemExit("--calibrate measures the default parameters on all real folders; drop --set and folder names")
    folders = [Path(f) if Path(f).is_dir() else data_root() / "fingerprints" / f for f in (args.folders or REAL_FOLDERS)]
    digest = extractor_digest()
    report: dict = {"params": dataclasses.asdict(params), "extractor_digest": digest, "commit": git_commit(), "folders": {}}
    pooled_gen, pooled_imp = [], []
    total_cpu, total_cmp = 0.0, 0
    for folder in folders:
        files, templates, times = load_templates(folder, args.cache, digest)
        gen, imp, cpu, cmp_count = verification_scores(files, templates, params)
        pooled_gen.append(gen)
        pooled_imp.append(imp)
        total_cpu += cpu
        total_cmp += cmp_count
        ok = [t for t in templates if t is not None]
        row = {
            "images": len(files),
            "genuine_pairs": int(gen.size),
            "impostor_pairs": int(imp.size),
            "failure_to_enroll": int(sum(t is None for t in templates)),
            "mean_minutiae": float(np.mean([len(t) for t in ok])) if ok else 0.0,
            "extraction_ms_mean": float(np.nanmean(times)) if ok and not np.isnan(times).all() else None,
            "comparisons_per_cpu_second": cmp_count / cpu if cpu > 0 else None,
            **error_rates(gen, imp),
        }
        report["folders"][folder.name] = row
        print(
            f"{folder.name:18s} EER {100 * row['eer']:6.2f}%  FNMR@0.1% {100 * row['fnmr_at_fmr_1e-3']:6.2f}%  "
            f"FNMR@1% {100 * row['fnmr_at_fmr_1e-2']:6.2f}%  minutiae {row['mean_minutiae']:.1f}  "
            f"FTE {row['failure_to_enroll']}  {row['comparisons_per_cpu_second'] or 0:.0f} cmp/s",
            flush=True,
        )
    gen, imp = np.concatenate(pooled_gen), np.concatenate(pooled_imp)
    report["pooled"] = {
        "genuine_pairs": int(gen.size),
        "impostor_pairs": int(imp.size),
        "comparisons_per_cpu_second": total_cmp / total_cpu if total_cpu > 0 else None,
        **error_rates(gen, imp),
    }
    p = report["pooled"]
    print(f"{'pooled':18s} EER {100 * p['eer']:6.2f}%  FNMR@0.1% {100 * p['fnmr_at_fmr_1e-3']:6.2f}%  FNMR@1% {100 * p['fnmr_at_fmr_1e-2']:6.2f}%")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
    if args.calibrate:
        write_calibration(
            imp,
            {
                "generated": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                "commit": report["commit"],
                "extractor_digest": digest,
                "folders": ", ".join(f.name for f in folders),
                "protocol": "all impostor pairs within each folder (shared/data/README.md), pooled",
                "matcher": "MCC16b + LSS-R, DEFAULT_MATCH_PARAMETERS",
                "params_digest": params_digest(params),
            },
        )
        print(f"wrote {CALIBRATION_MODULE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
