"""Measure the dedup score-to-FMR table of the gallery's finger fusion and write it as a module.

Writes ``src/ektp_biometrics/gallery/_dedup_calibration.py``, the table behind
:func:`ektp_biometrics.gallery.fusion.finger_fmr`.  It differs from the 1:1 verification table
(``fingerprint/_match_calibration.py``, ``benchmarks/eval_verification.py --calibrate``) in its
reference population: a deduplication comparison is always one finger of two *different persons*,
so the impostor pairs here are pairs of images of different persons only:

* FVC B folders: each finger is a person and meets every other finger of its folder (pairs are
  taken within a folder, one sensor: see :class:`TailFitSettings`);
* FCJ2020: a person is a person number; two FCJ images are a pair only when their person numbers
  differ and their finger numbers are equal (the gallery compares equal ISO positions).  Different
  fingers of one FCJ person -- the probable label errors that set the verification table's tail --
  are not a dedup comparison and are left out.

Disjoint from the acceptance run (``benchmarks/gallery_dedup_eval.py``): that run compares later
impressions with impression 1, so this table uses impressions 2 and later only.  No pair is shared;
the fingers and persons are the same (stated in the module's provenance).  A leave-one-folder-out
check is written to ``docs/results/dedup_calibration_check.json``: for each folder, the table is
rebuilt without any pair touching it, and the folder's own pairs are scored against it.

Beyond the highest measured impostor the table ends; :func:`finger_fmr` then uses a tail model
fitted here (see :class:`TailFitSettings`): an exponential (generalized Pareto with shape 0) on the
excesses of the top ``tail_pairs`` impostor scores, with the scale at its one-sided upper
confidence bound, anchored at the last measured point (score of the highest impostor, FMR 1/n).

Usage::

    nice -n 5 python benchmarks/calibrate_dedup.py [--data DIR] [--cache /tmp/ektp_eval_templates]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ektp_biometrics.fingerprint import evaluation
from ektp_biometrics.fingerprint.match import (
    match_many,
    parameters_digest,
    prepare,
    prepare_gallery,
)
from ektp_biometrics.gallery.fusion import fit_exponential_tail

ROOT = Path(__file__).resolve().parents[1]
MODULE = ROOT / "src" / "ektp_biometrics" / "gallery" / "_dedup_calibration.py"
CHECK = ROOT / "docs" / "results" / "dedup_calibration_check.json"
REAL_FOLDERS = (
    "fvc2000_db1_b", "fvc2000_db2_b", "fvc2000_db3_b", "fvc2002_db1_b", "fvc2002_db2_b", "fvc2002_db3_b", "fcj2020_p101-125",
)  # fmt: skip
#: Folders whose finger N is the same physical finger (docs/evaluation.md, "hold the same fingers").
SAME_FINGERS = {"fvc2000_db2_b": "fvc2000_db1_b"}


@dataclass(frozen=True)
class TailFitSettings:
    """Tunables of the tail model beyond the last measured impostor.

    Attributes
    ----------
    tail_pairs : int
        Number of highest impostor scores whose excesses over the next one are fitted (an
        exponential, i.e. a generalized Pareto with shape 0: a light tail; the measured top tail
        is checked against it in docs/gallery.md).  50: the top ~1.5e-4 of ~330,000 pairs, about the
        last decade of the table; a judgement, not tuned on the acceptance run.
    confidence : float
        One-sided confidence of the upper bound taken for the exponential scale (a larger scale
        is a slower decay, so a higher, more conservative FMR beyond the data).
    min_impression : int
        Lowest impression used (2: impression 1 is what the acceptance run enrolls).

    Pairs are taken within a folder only (one sensor, as in a national deployment): a first run
    that also pooled the 283,010 cross-folder pairs set threshold(1e-4) at 0.043, and the held-out
    FVC2000 DB2_B pairs then scored above it 18 times as often as claimed (1.8e-3); cross-sensor
    impostors score lower and would make the table optimistic for a one-sensor gallery.
    """

    tail_pairs: int = 50
    confidence: float = 0.95
    min_impression: int = 2


def identities(folder: evaluation.FingerprintFolder) -> tuple[list[str], list[int | None]]:
    """(person identity, finger position or None) of every sample of a folder."""
    if folder.naming == "fcj":
        people = [f"fcj-{s.finger.split('_')[0]}" for s in folder.samples]
        positions: list[int | None] = [int(s.finger.split("_")[1]) for s in folder.samples]
        return people, positions
    owner = SAME_FINGERS.get(folder.name, folder.name)
    return [f"{owner}-{s.finger}" for s in folder.samples], [None] * len(folder.samples)


def dedup_pair_mask(people: np.ndarray, positions: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """True where the pair (rows[i], cols[i]) is a dedup impostor comparison (different persons, comparable fingers)."""
    different = people[rows] != people[cols]
    pa, pb = positions[rows], positions[cols]
    comparable = (pa < 0) | (pb < 0) | (pa == pb)  # -1: position unknown (FVC), meets every position
    return different & comparable


def fit_tail(impostor: np.ndarray, settings: TailFitSettings) -> tuple[float, float, float, float]:
    """(anchor score = highest impostor, anchor FMR = 1/n, MLE scale, upper-bound scale) of the tail model."""
    return fit_exponential_tail(impostor, settings.tail_pairs, settings.confidence)


def table(impostor: np.ndarray) -> tuple[list[float], list[float]]:
    """(SCORE, FMR): FMR[i] = share of impostor pairs scoring >= SCORE[i], on a log grid of rates down to 1/n."""
    imp = np.sort(impostor)
    n = imp.size
    levels = np.unique(np.concatenate([np.logspace(0, np.log10(1.0 / n), 81), [1.0 / n]]))
    rows: dict[float, float] = {}
    for level in levels[::-1]:
        allowed = int(np.floor(level * n + 1e-9))
        t = float(np.nextafter(imp[n - allowed - 1], np.inf)) if allowed < n else 0.0
        rows[t] = float((n - np.searchsorted(imp, t, side="left")) / n)
    rows[float(imp[-1])] = float((n - np.searchsorted(imp, imp[-1], side="left")) / n)  # the highest impostor itself
    scores = sorted(rows)
    return scores, [rows[s] for s in scores]


def threshold_for(impostor: np.ndarray, target: float, anchor: float, anchor_fmr: float, scale: float) -> float:
    """Lowest score whose FMR is at most ``target``: measured where the pairs resolve it, else from the tail model."""
    imp = np.sort(impostor)
    n = imp.size
    allowed = int(np.floor(target * n + 1e-9))
    if allowed >= 1:
        return float(np.nextafter(imp[n - allowed - 1], np.inf))
    return anchor + scale * float(np.log(anchor_fmr / target))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("EKTP_DATA") or ROOT.parent / "shared" / "data"))
    parser.add_argument("--cache", type=Path, default=Path("/tmp/ektp_eval_templates"))
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "img" / "dedup_calibration_tail.png")
    parser.add_argument("--replot", action="store_true", help="only redraw the figure from the generated tables")
    args = parser.parse_args(argv)
    if args.replot:
        plot(args.plot)
        return 0
    settings = TailFitSettings()

    started = time.process_time()
    digest = evaluation.extractor_digest()
    cache = evaluation.TemplateCache(args.cache, digest)
    templates, people, positions, folder_of, impressions = [], [], [], [], []
    for name in REAL_FOLDERS:
        folder = evaluation.scan_folder(args.data / "fingerprints" / name)
        enrolled = evaluation.enroll(folder, cache=cache)
        who, where = identities(folder)
        for i, sample in enumerate(folder.samples):
            if sample.impression < settings.min_impression or enrolled.templates[i] is None:
                continue
            templates.append(prepare(enrolled.templates[i]))
            people.append(who[i])
            positions.append(-1 if where[i] is None else where[i])
            folder_of.append(name)
            impressions.append(sample.impression)
    extract_cpu = time.process_time() - started
    people_a, positions_a, folder_a = np.array(people), np.array(positions), np.array(folder_of)
    n = len(templates)

    started = time.process_time()
    scores, pair_rows, pair_cols = [], [], []
    for name in REAL_FOLDERS:  # same-sensor pairs only (TailFitSettings: cross-sensor impostors score lower)
        members = np.flatnonzero(folder_a == name)
        gallery = prepare_gallery([templates[j] for j in members])
        for at, i in enumerate(members[:-1]):
            cols = members[at + 1 :]
            keep = dedup_pair_mask(people_a, positions_a, np.full(cols.size, i), cols)
            if keep.any():
                scores.append(match_many(templates[i], gallery)[at + 1 :][keep])
                pair_rows.append(np.full(int(keep.sum()), i, dtype=np.int32))
                pair_cols.append(cols[keep].astype(np.int32))
    impostor = np.concatenate(scores)
    rows_i, cols_i = np.concatenate(pair_rows), np.concatenate(pair_cols)
    match_cpu = time.process_time() - started

    score_grid, fmr_grid = table(impostor)
    anchor, anchor_fmr, mle_scale, upper_scale = fit_tail(impostor, settings)
    same_folder = folder_a[rows_i] == folder_a[cols_i]
    kinds = {
        "within_folder": int(same_folder.sum()),
        "across_folders": int((~same_folder).sum()),
        "fcj_same_position": int(((positions_a[rows_i] >= 0) & (positions_a[cols_i] >= 0)).sum()),
    }
    top = np.argsort(impostor)[-5:][::-1]
    highest = [
        {"score": float(impostor[j]), "a": f"{folder_a[rows_i[j]]}/{people_a[rows_i[j]]}/{impressions[rows_i[j]]}",
         "b": f"{folder_a[cols_i[j]]}/{people_a[cols_i[j]]}/{impressions[cols_i[j]]}"}
        for j in top
    ]  # fmt: skip

    # leave-one-folder-out: rebuild the table without any pair touching a folder, score that folder's own pairs
    check = {}
    for name in REAL_FOLDERS:
        touches = (folder_a[rows_i] == name) | (folder_a[cols_i] == name)
        rest, own = impostor[~touches], impostor[same_folder & (folder_a[rows_i] == name)]
        r_anchor, r_fmr, _, r_scale = fit_tail(rest, settings)
        held = {}
        for target in (1e-3, 1e-4, 1e-5, 1e-6):
            t = threshold_for(rest, target, r_anchor, r_fmr, r_scale)
            held[f"{target:g}"] = {"threshold": t, "held_out_fmr": float(np.mean(own >= t)), "held_out_pairs": int(own.size)}
        check[name] = held

    commit = evaluation.source_commit()
    provenance = {
        "generated": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit,
        "extractor_digest": digest,
        "params_digest": parameters_digest(),
        "folders": ", ".join(REAL_FOLDERS),
        "protocol": (
            f"dedup impostors: pairs of impressions >= {settings.min_impression} of DIFFERENT persons "
            "(FVC: a finger is a person; FCJ2020: a person number, equal finger numbers only), "
            "within each folder (one sensor), pooled over the folders"
        ),
        "pairs": f"{impostor.size} ({kinds['within_folder']} within a folder, {kinds['across_folders']} across folders, "
        f"{kinds['fcj_same_position']} FCJ same-finger)",
        "overlap with benchmarks/gallery_dedup_eval.py": "no shared pair (it compares impressions >= 2 with impression 1); same fingers and persons",
        "tail model": (
            f"exponential on the excesses of the top {settings.tail_pairs} impostor scores, scale at its one-sided "
            f"{settings.confidence:.0%} upper bound ({upper_scale:.4f}; MLE {mle_scale:.4f}), anchored at the highest impostor "
            f"({anchor:.4f}, FMR 1/{impostor.size})"
        ),
        "matcher": "MCC16b + LSS-R, DEFAULT_MATCH_PARAMETERS",
    }
    text = [
        '"""Score-to-FMR table of the gallery\'s finger fusion, measured on real dedup impostor pairs.',
        "",
        "GENERATED by benchmarks/calibrate_dedup.py; do not edit by hand.",
        "FMR[i] is the fraction of dedup impostor comparisons scoring at least SCORE[i]; above SCORE[-1] (the",
        "highest impostor) the FMR is modelled as TAIL_ANCHOR_FMR * exp(-(score - TAIL_ANCHOR_SCORE) / TAIL_SCALE).",
        "",
        "Provenance:",
        *[f"    {k}: {v}" for k, v in provenance.items()],
        '"""',
        "",
        f"IMPOSTOR_PAIRS = {impostor.size}",
        f"EXTRACTOR_DIGEST = {digest!r}",
        f"PARAMS_DIGEST = {provenance['params_digest']!r}",
        f"TAIL_ANCHOR_SCORE = {anchor!r}",
        f"TAIL_ANCHOR_FMR = {anchor_fmr!r}",
        f"TAIL_SCALE = {upper_scale!r}",
        f"TAIL_SCALE_MLE = {mle_scale!r}",
        f"TAIL_PAIRS = {settings.tail_pairs}",
        "SCORE = (",
        *[f"    {s!r}," for s in score_grid],
        ")",
        "FMR = (",
        *[f"    {f!r}," for f in fmr_grid],
        ")",
        "",
    ]
    MODULE.write_text("\n".join(text))
    report = {
        "command": "python benchmarks/calibrate_dedup.py",
        "provenance": provenance,
        "settings": asdict(settings),
        "images": n,
        "pairs": {"total": int(impostor.size), **kinds},
        "highest_impostors": highest,
        "tail": {"anchor_score": anchor, "anchor_fmr": anchor_fmr, "scale_mle": mle_scale, "scale_upper": upper_scale},
        "thresholds": {f"{t:g}": threshold_for(impostor, t, anchor, anchor_fmr, upper_scale) for t in (1e-2, 1e-3, 1e-4, 1e-5, 1e-6)},
        "leave_one_folder_out": check,
        "cpu_seconds": {"extract_or_cache": round(extract_cpu, 1), "match": round(match_cpu, 1)},
    }  # fmt: skip
    CHECK.write_text(json.dumps(report, indent=1) + "\n")
    print(f"{n} images, {impostor.size} dedup impostor pairs {kinds}; match CPU {match_cpu:.1f} s")
    print(f"highest impostors: {highest}")
    print(f"tail: anchor {anchor:.4f} (FMR {anchor_fmr:.2e}), scale MLE {mle_scale:.4f}, upper {upper_scale:.4f}")
    print(f"thresholds: {report['thresholds']}")
    for name, held in check.items():
        print(f"  held out {name:18s} " + "  ".join(f"{k}: t={v['threshold']:.3f} fmr={v['held_out_fmr']:.1e}" for k, v in held.items()))
    print(f"wrote {MODULE} and {CHECK}")
    import importlib

    from ektp_biometrics.gallery import _dedup_calibration

    importlib.reload(_dedup_calibration)
    plot(args.plot)
    return 0


def plot(path: Path) -> None:
    """Impostor tails of the dedup table (with its model) and of the 1:1 verification table."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ektp_biometrics.fingerprint import _match_calibration as verification
    from ektp_biometrics.gallery import _dedup_calibration as dedup
    from ektp_biometrics.gallery.fusion import dedup_fmr

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    ax.step(verification.SCORE, verification.FMR, where="post", color="grey",
            label=f"1:1 verification table ({verification.IMPOSTOR_PAIRS:,} pairs, all different fingers)")  # fmt: skip
    ax.step(dedup.SCORE, dedup.FMR, where="post", color="C0", linewidth=2,
            label=f"dedup table ({dedup.IMPOSTOR_PAIRS:,} pairs, different persons, same finger position)")  # fmt: skip
    beyond = np.linspace(dedup.TAIL_ANCHOR_SCORE, 0.2, 200)
    ax.plot(beyond, [dedup_fmr(s) for s in beyond], "--", color="C0", label="dedup tail model (95 % upper-bound scale), floor 1e-9")
    mle = dedup.TAIL_ANCHOR_FMR * np.exp(-(beyond - dedup.TAIL_ANCHOR_SCORE) / dedup.TAIL_SCALE_MLE)
    ax.plot(beyond, mle, ":", color="C0", linewidth=1, label="same, maximum-likelihood scale (not used)")
    ax.set_yscale("log")
    ax.set_xlim(0, 0.2)
    ax.set_ylim(1e-10, 1.5)
    ax.set_xlabel("matcher score")
    ax.set_ylabel("false-match probability (share of impostors >= score)")
    ax.set_title("Finger score to false-match probability")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
