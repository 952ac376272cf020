"""Issue 3, matcher side: measure consolidation variants on the 7 real folders with the library's protocol.

Each positional argument is one variant, ``NAME=VALUE`` switches of
``benchmarks/matcher_variants_kernels.py`` joined by commas (``base`` = all off, the library's
score).  Every variant is scored on the same cached templates exactly as
``benchmarks/eval_verification.py --identify`` scores the library's matcher: all pairs within each
folder (EER, FNMR at FMR 0.1 % and 1 %, per folder and pooled) and the pooled identification
(gallery = lowest impression of every finger of all folders, every other impression a probe).
Before anything is measured, the ``base`` kernel's scores are checked equal to the library's
``match_many`` (to 1e-12: summation order may differ in the last bit) on the first folder's first
probes.

Usage (templates from a cache that ``eval_verification.py --cache DIR`` filled; missing ones are
extracted once)::

    EKTP_DATA=/work/shared/data python benchmarks/eval_matcher_variants.py --cache /tmp/templates \\
        base np_mode=2,np_center=12 two_hyp=1,sep=1.5708 sel_k=3 --out /tmp/variants.json
    python benchmarks/eval_matcher_variants.py --float base          # MCC Co: float cylinders
    python benchmarks/eval_matcher_variants.py --set max_relaxation_pairs=32 base

Switches (see the kernel module): ``np_mode`` (1/2: n_P from the overlap after the first/second
pass's transform), ``np_center``, ``np_margin``, ``np_combine``; ``two_hyp``, ``sep``, ``band``;
``sweep`` (second passes at N evenly spaced rotations); ``count_w``, ``count_mode``,
``count_tol``, ``count_k``; ``relw`` (reliability weighting); ``sel_k``; ``sym``.
CPU seconds per variant are printed; the variants allocate per comparison, so only ratios between
variants of one run mean anything, not the library's speed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import matcher_variants_kernels as variants

from ektp_biometrics.fingerprint import evaluation
from ektp_biometrics.fingerprint.extract import extract_file
from ektp_biometrics.fingerprint.match import (
    _kernel_params,
    _stacked_arrays,
    match_many,
    prepare,
)
from ektp_biometrics.fingerprint.match_params import DEFAULT_MATCH_PARAMETERS

PROJECT_ROOT = Path(__file__).resolve().parents[1]
FOLDERS = (
    ("fvc2000_db1_b", "FVC2000 DB1"),
    ("fvc2000_db2_b", "FVC2000 DB2"),
    ("fvc2000_db3_b", "FVC2000 DB3"),
    ("fvc2002_db1_b", "FVC2002 DB1"),
    ("fvc2002_db2_b", "FVC2002 DB2"),
    ("fvc2002_db3_b", "FVC2002 DB3"),
    ("fcj2020_p101-125", "FCJ2020"),
)
EMPTY = np.zeros((0, 0), np.float32)


def load(cache: Path, params, with_values: bool):
    """(folder, prepared templates, reliability of each kept minutia) of the 7 real folders."""
    root = Path(os.environ.get("EKTP_DATA") or PROJECT_ROOT.parent / "shared" / "data") / "fingerprints"
    store = evaluation.TemplateCache(cache, evaluation.extractor_digest())
    out = []
    for name, _ in FOLDERS:
        folder = evaluation.scan_folder(root / name)
        prepared, reliability = [], []
        for path in folder.files:
            data = path.read_bytes()
            hit = store.get(data)
            if hit is None:
                template = extract_file(data)
                store.put(data, template, None, float("nan"))
            else:
                template = hit[0]
            if template is None:
                raise SystemExit(f"{path.name}: no template (failure to enroll); this script assumes none")
            p = prepare(template, params, float_cylinders=with_values)
            prepared.append(p)
            reliability.append(np.ascontiguousarray(template.minutiae["reliability"][p.index], dtype=np.float64))
        out.append((folder, prepared, reliability))
    return out


def cell_masks(p, words: int) -> np.ndarray:
    """(V, C*ND) float32: 1 where the direction bin's cell is valid (the mask words unpacked)."""
    if p.values is None:
        return EMPTY
    bits = np.unpackbits(np.ascontiguousarray(p.words[:, words : 2 * words]).view(np.uint8), axis=1, bitorder="little")
    return np.ascontiguousarray(bits[:, : p.values.shape[1]].astype(np.float32))


class Scorer:
    def __init__(self, params, threads: int) -> None:
        self.kernel_params = _kernel_params(params)
        self.words = int(self.kernel_params[0][variants.P_WORDS])
        self.threads = threads

    def stack(self, prepared, reliability):
        words, minutia, pairs, _points, hull, offsets = _stacked_arrays(prepared)
        if prepared[0].values is not None:
            values = np.concatenate([p.values for p in prepared])
            masks = np.concatenate([cell_masks(p, self.words) for p in prepared])
        else:
            values = masks = EMPTY
        return words, minutia, pairs, hull, np.concatenate(reliability), offsets, values, masks

    def rows(self, rows, var):
        """rows: (probe, its reliability, stacked gallery, gallery offsets) -> scores of each row."""
        packed, tables, scales, roots = self.kernel_params

        def work(row):
            p, rel, (w, mi, pa, hu, ra, _, va, ma), offsets = row
            pv = p.values if p.values is not None else EMPTY
            return variants._one_to_many_exp(
                p.words, p.minutia, p.pairs, p.hull, rel, w, mi, pa, hu, ra, offsets, packed, tables, scales, roots,
                var, pv, cell_masks(p, self.words), va, ma,
            )  # fmt: skip

        with ThreadPoolExecutor(self.threads) as pool:
            return list(pool.map(work, rows))


def variant_array(spec: str, params) -> np.ndarray:
    var = np.zeros(variants.N_VAR)
    var[variants.V_NP_CENTER] = params.pairs_sigmoid_center
    var[variants.V_NP_STEEP] = params.pairs_sigmoid_steepness
    var[variants.V_SEP] = np.pi / 4
    var[variants.V_BAND] = np.pi / 8
    var[variants.V_COUNT_TOL] = 15.0
    var[variants.V_COUNT_K] = 8.0
    if spec != "base":
        for item in filter(None, spec.split(",")):
            key, _, value = item.partition("=")
            index = getattr(variants, "V_" + key.upper(), None)
            if index is None:
                raise SystemExit(f"unknown switch {key!r}")
            var[index] = float(value)
    return var


def measure(data, scorer: Scorer, var: np.ndarray) -> dict:
    start = time.process_time()
    report: dict = {"folders": {}}
    genuine_all, impostor_all, matrices = [], [], []
    for (folder, prepared, reliability), (_, label) in zip(data, FOLDERS):
        n = len(prepared)
        stacked = scorer.stack(prepared, reliability)
        # row i against i+1..n-1: the same ordered pairs as evaluation.evaluate scores
        rows = [(prepared[i], reliability[i], stacked, stacked[5][i + 1 :]) for i in range(n - 1)]
        scores = np.zeros((n, n))
        for i, row in enumerate(scorer.rows(rows, var)):
            scores[i, i + 1 :] = row
        scores = scores + scores.T
        matrices.append(scores)
        fingers = np.array(folder.fingers)
        upper_i, upper_j = np.triu_indices(n, 1)
        same = fingers[upper_i] == fingers[upper_j]
        genuine, impostor = scores[upper_i, upper_j][same], scores[upper_i, upper_j][~same]
        genuine_all.append(genuine)
        impostor_all.append(impostor)
        report["folders"][label] = evaluation.error_rates(genuine, impostor)
    report["pooled"] = evaluation.error_rates(np.concatenate(genuine_all), np.concatenate(impostor_all))
    # pooled identification, built as evaluation.evaluate builds it
    probe_labels = [(a, f.fingers[i]) for a, (f, _, _) in enumerate(data) for i in f.probe_indices]
    gallery_labels = [(a, f.fingers[i]) for a, (f, _, _) in enumerate(data) for i in f.gallery_indices]
    probe_at = np.cumsum([0] + [len(f.probe_indices) for f, _, _ in data])
    gallery_at = np.cumsum([0] + [len(f.gallery_indices) for f, _, _ in data])
    pooled = np.zeros((len(probe_labels), len(gallery_labels)))
    rows, where = [], []
    for a, (folder, prepared, reliability) in enumerate(data):
        block = matrices[a][np.ix_(folder.probe_indices, folder.gallery_indices)]
        pooled[probe_at[a] : probe_at[a + 1], gallery_at[a] : gallery_at[a + 1]] = block
        columns = [c for b in range(len(data)) if b != a for c in range(gallery_at[b], gallery_at[b + 1])]
        others = [(data[b][1][i], data[b][2][i]) for b in range(len(data)) if b != a for i in data[b][0].gallery_indices]
        stacked = scorer.stack([o[0] for o in others], [o[1] for o in others])
        for k, i in enumerate(folder.probe_indices):
            rows.append((prepared[i], reliability[i], stacked, stacked[5]))
            where.append((probe_at[a] + k, columns))
    for (p, columns), row in zip(where, scorer.rows(rows, var)):
        pooled[p, columns] = row
    ranks = evaluation.identification_ranks(pooled, probe_labels, gallery_labels)
    report["pooled"]["rank_1"] = float(np.mean(ranks <= 1))
    report["pooled"]["rank_10"] = float(np.mean(ranks <= 10))
    report["cpu_seconds"] = time.process_time() - start
    return report


def check_base(data, scorer: Scorer, params) -> None:
    """The base variant must give the library's scores (first folder, first 5 probes)."""
    _folder, prepared, reliability = data[0]
    stacked = scorer.stack(prepared, reliability)
    rows = [(prepared[i], reliability[i], stacked, stacked[5][i + 1 :]) for i in range(5)]
    for i, row in enumerate(scorer.rows(rows, variant_array("base", params))):
        library = match_many(prepared[i], prepared[i + 1 :], params)
        # the variant sums the same terms in loops LLVM may reassociate differently: equal to 1e-12
        if not np.allclose(row, library, rtol=0.0, atol=1e-12):
            raise SystemExit(f"base variant differs from the library's matcher (probe {i}): the kernels drifted apart")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variants", nargs="+", help="base, or NAME=VALUE[,NAME=VALUE...]")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/ektp_eval_templates"))
    parser.add_argument("--float", action="store_true", help="MCC Co: local similarities of the float cylinders")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="override a MatchParameters field")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, help="append one JSON object per variant to this file")
    args = parser.parse_args(argv)
    changes = {}
    for item in args.set:
        key, _, value = item.partition("=")
        changes[key] = type(getattr(DEFAULT_MATCH_PARAMETERS, key))(float(value))
    params = dataclasses.replace(DEFAULT_MATCH_PARAMETERS, **changes)
    data = load(args.cache, params, args.float)
    scorer = Scorer(params, args.threads)
    if not args.float:
        check_base(data, scorer, params)
    for spec in args.variants:
        report = measure(data, scorer, variant_array(spec, params))
        report.update(variant=spec, float_cylinders=args.float, params_changed=changes)
        pooled = report["pooled"]
        per_folder = "  ".join(
            f"{label} {100 * r['eer']:.2f}/{100 * r['fnmr_at_fmr_1e-3']:.1f}" for label, r in report["folders"].items()
        )
        print(
            f"{spec} {'float ' if args.float else ''}{' '.join(args.set)}: pooled EER {100 * pooled['eer']:.2f} % "
            f"FNMR@0.1% {100 * pooled['fnmr_at_fmr_1e-3']:.2f} % rank-1 {100 * pooled['rank_1']:.2f} % | {per_folder} | "
            f"{report['cpu_seconds']:.0f} CPU s",
            flush=True,
        )
        if args.out:
            with args.out.open("a") as fh:
                fh.write(json.dumps(report) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
