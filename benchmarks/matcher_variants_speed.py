"""Cost of two matcher variants relative to the base variant, timed side by side in one process.

MCC Co (float cylinders for the local similarity) and the second rotation hypothesis
(``two_hyp=1,sep=1.5708``) against the ``base`` variant of ``benchmarks/matcher_variants_kernels.py``,
on all ordered pairs of the first 40 impressions of FVC2002 DB1, one probe at a time, interleaved,
thread CPU time, medians of per-round ratios.  The variant kernels allocate per comparison, so the
absolute rates are not the library's; only the ratios are reported as results::

    EKTP_DATA=/work/shared/data python benchmarks/matcher_variants_speed.py --cache DIR
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import eval_matcher_variants as runner

from ektp_biometrics.fingerprint import evaluation
from ektp_biometrics.fingerprint.extract import extract_file
from ektp_biometrics.fingerprint.match import prepare
from ektp_biometrics.fingerprint.match_params import DEFAULT_MATCH_PARAMETERS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/ektp_eval_templates"))
    parser.add_argument("--folder", default="fvc2002_db1_b")
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    params = DEFAULT_MATCH_PARAMETERS
    root = Path(os.environ.get("EKTP_DATA") or runner.PROJECT_ROOT.parent / "shared" / "data") / "fingerprints"
    store = evaluation.TemplateCache(args.cache, evaluation.extractor_digest())
    templates = []
    for path in evaluation.scan_folder(root / args.folder).files[: args.images]:
        hit = store.get(path.read_bytes())
        templates.append(hit[0] if hit is not None else extract_file(path.read_bytes()))
    prepared = [prepare(t, params, float_cylinders=True) for t in templates]
    ones = [np.ones(len(p)) for p in prepared]
    scorer = runner.Scorer(params, 1)
    words, minutia, pairs, hull, rel, offsets, values, masks = scorer.stack(prepared, ones)
    packed, tables, scales, roots = scorer.kernel_params
    base, second = runner.variant_array("base", params), runner.variant_array("two_hyp=1,sep=1.5708", params)
    empty = runner.EMPTY

    def timed(var: np.ndarray, use_float: bool) -> float:
        start = time.thread_time()
        for p, r in zip(prepared, ones):
            pv, pm, gv, gm = (p.values, runner.cell_masks(p, scorer.words), values, masks) if use_float else (empty,) * 4
            runner.variants._one_to_many_exp(
                p.words, p.minutia, p.pairs, p.hull, r, words, minutia, pairs, hull, rel, offsets, packed, tables,
                scales, roots, var, pv, pm, gv, gm,
            )  # fmt: skip
        return time.thread_time() - start

    for var, use_float in ((base, False), (base, True), (second, False)):  # compile
        timed(var, use_float)
    rows = np.array([[timed(base, False), timed(base, True), timed(second, False)] for _ in range(args.rounds)])
    print(
        f"{args.folder}, {len(prepared) ** 2} ordered pairs, {args.rounds} interleaved rounds: time relative to base, "
        f"float cylinders {np.median(rows[:, 1] / rows[:, 0]):.2f}x, second rotation hypothesis "
        f"{np.median(rows[:, 2] / rows[:, 0]):.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
