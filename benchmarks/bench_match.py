"""1:1 comparison speed of the MCC matcher, with templates prepared once, beside the previous kernel.

pytest-benchmark::

    python -m pytest benchmarks/bench_match.py --benchmark-only

Runner (prints comparisons per CPU second on one pinned core, the acceptance number)::

    git show 0aac353:src/ektp_biometrics/fingerprint/_mcc_kernels.py > /tmp/mcc_before.py
    git show 0aac353:src/ektp_biometrics/fingerprint/match.py > /tmp/match_before.py
    python benchmarks/bench_match.py --baseline /tmp/mcc_before.py --baseline-match /tmp/match_before.py \
        --cache /tmp/templates --repeat 9 --out docs/results/match_speed.json
    python benchmarks/bench_match.py --baseline /tmp/mcc_before.py --baseline-match /tmp/match_before.py \
        --cache /tmp/templates --folder fcj2020_p101-125 --images 1000 --scores-only

(a kernel from before commit c53bb14 changed the template layout goes without ``--baseline-match``:
its templates are then prepared by :func:`prepare_before`.)

On a machine shared with other jobs, absolute rates drift by 2x between runs, so every figure is
the median (and best) of interleaved repeats of thread CPU time in one process pinned to one core,
and the speed-up is measured against a baseline timed in the same loop:

* ``--baseline FILE``: a previous ``_mcc_kernels.py`` (the module is self-contained: NumPy and
  Numba only).  It is loaded under a private name with Numba's on-disk cache off, its templates
  are prepared the way its ``prepare`` did (``--baseline-match``: by that commit's ``match.py``
  itself), and its scores are checked equal to the current ones.  Both are timed probe by probe,
  interleaved, so that a burst of load from other jobs hits both sides alike.
* a NumPy yardstick doing only the local-similarity step of the same comparisons (whole-array XOR
  and ``np.bitwise_count`` of the binary cylinders, the dominant cost of MCC).

Templates are real ones extracted from a shared folder when the data and the extractor are
available, otherwise seeded synthetic ones with a realistic minutiae count (35 per print).  All
pairs of the folder are scored, one probe at a time: through ``match_many`` on the list of
prepared templates (the gallery is stacked on every call) and on a ``MatchGallery`` stacked once.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("EKTP_DATA") or PROJECT_ROOT.parent / "shared" / "data")


def load_templates(
    folder: str = "fvc2002_db1_b", images: int = 40, rng: int = 0, cache: Path | None = None
) -> tuple[list, str]:
    """The first ``images`` impressions of ``folder`` as FingerprintTemplates, or synthetic ones.

    With ``cache``, extracted templates are kept in a :class:`TemplateCache` there (keyed by the
    image bytes and the extractor's digest), so repeated runs over whole folders skip extraction.
    """
    from ektp_biometrics.fingerprint.template import FingerprintTemplate, make_minutiae

    path = DATA / "fingerprints" / folder
    if path.is_dir():
        try:
            from ektp_biometrics.fingerprint.evaluation import (
                TemplateCache,
                extractor_digest,
            )
            from ektp_biometrics.fingerprint.extract import extract_file

            files = sorted(p for p in path.iterdir() if p.suffix.lower() in {".tif", ".bmp"})[:images]
            store = TemplateCache(cache, extractor_digest()) if cache is not None else None
            templates = []
            for f in files:
                hit = store.get(f.read_bytes()) if store is not None else None
                if hit is None or hit[0] is None:
                    template = extract_file(f)
                    if store is not None:
                        store.put(f.read_bytes(), template, None, 0.0)
                else:
                    template = hit[0]
                templates.append(template)
            return templates, f"real: {folder}, {len(files)} images"
        except ImportError:
            pass
    gen = np.random.default_rng(rng)
    out = []
    for _ in range(images):
        n = 35
        m = make_minutiae(gen.uniform(40, 360, n), gen.uniform(40, 260, n), gen.uniform(0, 2 * np.pi, n))
        out.append(FingerprintTemplate(300, 400, m))
    return out, f"synthetic: {images} templates of 35 minutiae"


# -- the previous kernel, loaded from a file ------------------------------------------------------


def load_baseline(path: Path) -> types.ModuleType:
    """A previous ``_mcc_kernels.py`` as the module ``_mcc_kernels_before`` (Numba's disk cache off:
    it keys cached code by module file, and this one has none)."""
    module = types.ModuleType("_mcc_kernels_before")
    module.__file__ = str(path)
    sys.modules[module.__name__] = module
    source = path.read_text().replace("cache=True", "cache=False")
    exec(compile(source, str(path), "exec"), module.__dict__)  # noqa: S102 - a file the user named, like importing it
    return module


def load_baseline_match(path: Path, kernels: types.ModuleType) -> types.ModuleType:
    """A previous ``match.py`` as the module ``_match_before``, its kernels being ``kernels`` (from
    :func:`load_baseline`), so that templates are prepared and matched exactly as that commit did."""
    module = types.ModuleType("ektp_biometrics.fingerprint._match_before")
    module.__file__ = str(path)
    module.__package__ = "ektp_biometrics.fingerprint"
    sys.modules[module.__name__] = module
    source = path.read_text()
    needle = "from . import _mcc_kernels as kernels"
    if needle not in source:
        raise SystemExit(f"{path}: no line {needle!r} to point at the baseline kernels")
    source = source.replace(needle, f"import {kernels.__name__} as kernels")
    exec(compile(source, str(path), "exec"), module.__dict__)  # noqa: S102 - a file the user named, like importing it
    return module


def prepare_before(old: types.ModuleType, template: Any, params: Any) -> dict[str, np.ndarray]:
    """A template prepared the way ``prepare`` did before issue 3 (float cylinders, (V, 7) minutia
    rows, (2, V, V) distances and angles), for the baseline kernel."""
    from ektp_biometrics.fingerprint.match import MATCH_DPI, _cell_layout

    scale = MATCH_DPI / template.resolution
    x = np.ascontiguousarray(template.col, dtype=np.float64) * scale
    y_up = -np.ascontiguousarray(template.row, dtype=np.float64) * scale
    theta = np.ascontiguousarray(template.direction, dtype=np.float64)
    cell_a, cell_b = _cell_layout(params)
    values, bits, cell_valid, cylinder_valid = old._build_cylinders(
        x, y_up, theta, cell_a, cell_b, params.cell_size, params.direction_bins, params.sigma_space,
        params.sigma_direction, params.cell_threshold, params.cell_steepness, params.hull_margin,
        params.cylinder_radius, params.min_valid_cell_fraction, params.min_neighbour_minutiae,
    )  # fmt: skip
    keep = np.flatnonzero(cylinder_valid).astype(np.int32)
    n_words = -(-bits.shape[1] // 64)
    valid = np.ascontiguousarray(cell_valid[keep])
    packed = old._pack_bits(np.ascontiguousarray(bits[keep]), n_words)
    mask = old._pack_bits(np.ascontiguousarray(np.repeat(valid, params.direction_bins, axis=1)), n_words)
    cells = old._pack_bits(valid, -(-valid.shape[1] // 64))
    kx, ky, kt = x[keep], y_up[keep], theta[keep]
    dx, dy = kx[:, None] - kx[None, :], ky[:, None] - ky[None, :]
    minutia = np.stack([kt, old._popcount_rows(packed), valid.sum(axis=1), kx, ky, np.cos(kt), np.sin(kt)], axis=1)
    return {
        "values": np.ascontiguousarray(values[keep]),
        "words": np.ascontiguousarray(np.hstack([packed, mask, cells])),
        "minutia": np.ascontiguousarray(minutia.astype(np.float64)),
        "pairs": np.ascontiguousarray(np.stack([np.hypot(dx, dy), np.arctan2(dy, dx)])),
        "points": np.ascontiguousarray(np.stack([x, y_up, theta], axis=1)),
        "hull": np.ascontiguousarray(old._convex_hull(x, y_up)),
    }


def match_many_before(old: types.ModuleType, probe: dict, gallery: list[dict], kernel_params: tuple) -> np.ndarray:
    """The previous ``match_many``: stack the gallery, then one compiled loop."""
    sizes = np.array([(t["minutia"].shape[0], t["points"].shape[0], t["hull"].shape[0]) for t in gallery])
    offsets = np.zeros((len(gallery) + 1, 4), dtype=np.int64)
    np.cumsum(sizes[:, 0], out=offsets[1:, 0])
    np.cumsum(2 * sizes[:, 0] ** 2, out=offsets[1:, 1])
    np.cumsum(sizes[:, 1], out=offsets[1:, 2])
    np.cumsum(sizes[:, 2], out=offsets[1:, 3])
    return old._match_one_to_many(
        probe["words"], probe["minutia"], probe["pairs"], probe["points"], probe["hull"],
        np.concatenate([t["words"] for t in gallery]), np.concatenate([t["minutia"] for t in gallery]),
        np.concatenate([t["pairs"].ravel() for t in gallery]), np.concatenate([t["points"] for t in gallery]),
        np.concatenate([t["hull"] for t in gallery]), offsets, *kernel_params,
    )  # fmt: skip


# -- yardstick and stage breakdown ----------------------------------------------------------------


def numpy_local_similarities(probe, gallery: list) -> list[np.ndarray]:
    """Yardstick: the bit local-similarity matrices of ``probe`` against ``gallery`` in plain NumPy.

    Same formula as the kernel (masked popcounts over the cells valid in both cylinders), without
    the relaxation; it only serves as a yardstick timed beside the kernel.
    """
    from ektp_biometrics.fingerprint.match import _cell_layout

    out = []
    half = _bit_words(probe)
    a_bits, a_mask = probe.words[:, None, :half], probe.words[:, None, half : 2 * half]
    for g in gallery:
        b_bits, b_mask = g.words[None, :, :half], g.words[None, :, half : 2 * half]
        ca, cb = a_bits & b_mask, b_bits & a_mask
        n_a = np.bitwise_count(ca).sum(axis=2, dtype=np.int64)
        n_b = np.bitwise_count(cb).sum(axis=2, dtype=np.int64)
        n_x = np.bitwise_count(ca ^ cb).sum(axis=2, dtype=np.int64)
        norm = np.sqrt(n_a) + np.sqrt(n_b)
        cells = slice(2 * half, 2 * half + _cell_words(probe))
        common = np.bitwise_count(probe.words[:, None, cells] & g.words[None, :, cells]).sum(axis=2)
        ok = (norm > 0) & (common >= probe.params.min_matchable_fraction * _cell_layout(probe.params)[0].shape[0])
        out.append(np.where(ok, 1 - np.sqrt(n_x) / np.where(norm > 0, norm, 1), 0.0))
    return out


def _bit_words(template) -> int:
    """Words of the binary cylinder in ``MatchTemplate.words`` (bits | mask | cell bits)."""
    from ektp_biometrics.fingerprint.match import _cell_layout

    cells = _cell_layout(template.params)[0].shape[0]
    return -(-cells * template.params.direction_bins // 64)


def _cell_words(template) -> int:
    """Words of the one-bit-per-valid-cell part of ``MatchTemplate.words``."""
    from ektp_biometrics.fingerprint.match import _cell_layout

    return -(-_cell_layout(template.params)[0].shape[0] // 64)


def _stage_loop():
    """A compiled all-pairs loop over a stacked gallery that stops after a given stage:
    0 the local-similarity matrix, 1 and the first (rotation) pass, 2 and the second pass."""
    from numba import njit

    from ektp_biometrics.fingerprint import _mcc_kernels as k

    @njit(nogil=True)
    def loop(stage, words, minutia, pairs, offsets, params, tables, scales, roots):  # pragma: no cover - timed
        n = offsets.shape[0] - 1
        largest = 0
        for g in range(n):
            largest = max(largest, offsets[g + 1, 0] - offsets[g, 0])
        similarity, floats, ints = k._workspace(largest, largest, k._largest_relaxation(params))
        total = 0.0
        for a in range(n):
            ra, va, pa0 = offsets[a, 0], offsets[a + 1, 0] - offsets[a, 0], offsets[a, 1]
            wa, pa = words[ra : ra + va], pairs[pa0 : pa0 + 2 * va * va].reshape((2, va, va))
            ma = minutia[k.N_MINUTIA_ROWS * ra : k.N_MINUTIA_ROWS * (ra + va)].reshape((k.N_MINUTIA_ROWS, va))
            for b in range(n):
                rb, vb, pb0 = offsets[b, 0], offsets[b + 1, 0] - offsets[b, 0], offsets[b, 1]
                wb, pb = words[rb : rb + vb], pairs[pb0 : pb0 + 2 * vb * vb].reshape((2, vb, vb))
                mb = minutia[k.N_MINUTIA_ROWS * rb : k.N_MINUTIA_ROWS * (rb + vb)].reshape((k.N_MINUTIA_ROWS, vb))
                if va == 0 or vb == 0:
                    continue
                sim = similarity[: va * vb].reshape((va, vb))
                k._fill_local_similarity(wa, ma, wb, mb, params, roots, sim, ints[:va], ints[va : va + vb], floats[:vb])
                if stage >= 1:
                    rotation = k._relaxed_score(
                        sim, ma, pa, mb, pb, params, tables, scales, int(params[k.P_ROTATION_PAIRS]), 0.0, math.pi,
                        floats, ints, True,
                    )[1]  # fmt: skip
                    if stage >= 2:
                        total += k._relaxed_score(
                            sim, ma, pa, mb, pb, params, tables, scales, int(params[k.P_MAX_RELAXATION_PAIRS]),
                            rotation, params[k.P_ROTATION_GATE], floats, ints, params[k.P_ROTATION_GATE] >= math.pi,
                        )[0]  # fmt: skip
        return total

    return loop


# -- the runner -----------------------------------------------------------------------------------


def _timed(runs: dict[str, Any], repeat: int) -> dict[str, list[float]]:
    """Thread CPU seconds of each run, ``repeat`` rounds, interleaved within every round.

    A run is a callable, or a list of callables (one per probe) that are interleaved with the
    other runs' at that finer grain: run A's probe 0, run B's probe 0, run A's probe 1, ...  On a
    shared machine a burst of load then hits both sides of a comparison alike.
    """
    chunks = {name: run if isinstance(run, list) else [run] for name, run in runs.items()}
    times: dict[str, list[float]] = {name: [] for name in runs}
    most = max(len(c) for c in chunks.values())
    for _ in range(repeat):
        spent = dict.fromkeys(runs, 0.0)
        for c in range(most):
            for name, parts in chunks.items():
                if c < len(parts):
                    t0 = time.thread_time()
                    parts[c]()
                    spent[name] += time.thread_time() - t0
        for name in runs:
            times[name].append(spent[name])
    return times


class Baseline:
    """The previous matcher: its kernels, and how it prepared and matched templates.

    With a previous ``match.py`` (``--baseline-match``), templates are prepared by its ``prepare``
    and matched by its ``match_many`` (on a list, and on its ``prepare_gallery`` when it has one);
    without, the pre-issue-3 layout of :func:`prepare_before` is used.
    """

    def __init__(self, kernels: types.ModuleType, match_module: types.ModuleType | None = None) -> None:
        self.kernels = kernels
        self.match = match_module

    def prepare(self, template: Any) -> Any:
        from ektp_biometrics.fingerprint.match_params import DEFAULT_MATCH_PARAMETERS

        if self.match is not None:
            return self.match.prepare(template, DEFAULT_MATCH_PARAMETERS)
        return prepare_before(self.kernels, template, DEFAULT_MATCH_PARAMETERS)

    def stack(self, prepared: list) -> Any:
        """A stacked gallery when the previous matcher had one, else the list itself."""
        if self.match is not None and hasattr(self.match, "prepare_gallery"):
            return self.match.prepare_gallery(prepared)
        return prepared

    def match_many(self, probe: Any, gallery: Any) -> np.ndarray:
        from ektp_biometrics.fingerprint.match import _kernel_params
        from ektp_biometrics.fingerprint.match_params import DEFAULT_MATCH_PARAMETERS

        if self.match is not None:
            return self.match.match_many(probe, gallery, DEFAULT_MATCH_PARAMETERS)
        return match_many_before(self.kernels, probe, gallery, _kernel_params(DEFAULT_MATCH_PARAMETERS))

    def nbytes(self, prepared: Any) -> int:
        if isinstance(prepared, dict):
            return sum(a.nbytes for a in prepared.values())
        return int(prepared.nbytes)


def score_difference(templates: list, baseline: Baseline) -> float:
    """Largest absolute difference between the current and the baseline scores of all ordered pairs."""
    from ektp_biometrics.fingerprint.match import match_many, prepare, prepare_gallery

    prepared = [prepare(t) for t in templates]
    gallery = prepare_gallery(prepared)
    before = [baseline.prepare(t) for t in templates]
    stacked = baseline.stack(before)
    worst = 0.0
    for p, b in zip(prepared, before):  # one probe at a time: a folder of 600 has 360,000 pairs
        now = match_many(p, gallery)
        then = baseline.match_many(b, stacked)
        worst = max(worst, float(np.abs(now - then).max()))
    return worst


def prepared_arrays_equal(prepared: list, before: list) -> bool | None:
    """Whether every prepared array (cylinder words, minutia rows, pair table, ...) equals the
    baseline's byte for byte; None when the baseline prepares another layout (no common fields)."""
    names = ("x", "y_up", "theta", "index", "words", "minutia", "pairs", "points", "hull")
    if not before or isinstance(before[0], dict) or not all(hasattr(before[0], n) for n in names):
        return None
    for p, b in zip(prepared, before):
        for n in names:
            x, y = np.asarray(getattr(p, n)), np.asarray(getattr(b, n))
            if x.dtype != y.dtype or x.shape != y.shape or x.tobytes() != y.tobytes():
                return False
    return True


def measure(templates: list, repeat: int = 7, baseline: Baseline | None = None) -> dict[str, Any]:
    """Every figure of the report: comparison rates, stage breakdown, prepare time and memory."""
    from ektp_biometrics.fingerprint import _mcc_kernels as kernels
    from ektp_biometrics.fingerprint.match import (
        _kernel_params,
        match_many,
        prepare,
        prepare_gallery,
    )
    from ektp_biometrics.fingerprint.match_params import (
        DEFAULT_MATCH_PARAMETERS as params,
    )

    kernel_params = _kernel_params(params)
    prepared = [prepare(t) for t in templates]
    gallery = prepare_gallery(prepared)
    n = len(prepared) ** 2
    match_many(prepared[0], prepared[:2])  # compile outside the timing
    for g, yard in zip(prepared[:5], numpy_local_similarities(prepared[0], prepared[:5])):
        kernel = kernels._local_similarity_bits(prepared[0].words, prepared[0].minutia, g.words, g.minutia, kernel_params[0])
        assert np.allclose(kernel, yard, atol=1e-6), "the NumPy yardstick must compute what the kernel does"
    def per_probe(function: Callable[[Any, Any], Any], probes: list, against: Any) -> list[Callable[[], Any]]:
        return [lambda p=p: function(p, against) for p in probes]

    runs: dict[str, Any] = {
        "match_many_list": per_probe(match_many, prepared, prepared),
        "match_many_gallery": per_probe(match_many, prepared, gallery),
        "numpy_local_similarity": per_probe(numpy_local_similarities, prepared, prepared),
    }
    report: dict[str, Any] = {}
    if baseline is not None:
        before = [baseline.prepare(t) for t in templates]
        report["max_score_difference_to_baseline"] = score_difference(templates, baseline)
        runs["baseline_match_many_list"] = per_probe(baseline.match_many, before, before)
        stacked = baseline.stack(before)
        if stacked is not before:
            runs["baseline_match_many_gallery"] = per_probe(baseline.match_many, before, stacked)
        report["baseline_prepared_template_bytes_mean"] = float(np.mean([baseline.nbytes(b) for b in before]))
    times = _timed(runs, repeat)
    rates = {name: {"median": n / float(np.median(t)), "best": n / min(t)} for name, t in times.items()}
    report["comparisons_per_cpu_second"] = rates
    if baseline is not None:
        report["speedup_over_baseline_median"] = {
            name: float(np.median(np.array(times[f"baseline_{name}"]) / np.array(times[name])))
            for name in ("match_many_list", "match_many_gallery")
            if f"baseline_{name}" in times
        }
        if "baseline_match_many_gallery" not in times:  # the old matcher had no stacked gallery
            report["speedup_over_baseline_median"]["match_many_gallery_vs_list"] = float(
                np.median(np.array(times["baseline_match_many_list"]) / np.array(times["match_many_gallery"]))
            )
    # where the time goes: the same all-pairs loop stopped after each stage
    loop = _stage_loop()
    stage_args = (gallery.words, gallery.minutia, gallery.pairs, gallery.offsets, *kernel_params)
    for stage in range(3):
        loop(stage, *stage_args)
    stage_times = _timed({str(s): (lambda s=s: loop(s, *stage_args)) for s in range(3)}, repeat)
    cumulative = [float(np.median(stage_times[str(s)])) / n * 1e6 for s in range(3)]
    report["stage_us_per_comparison"] = {
        "local_similarity_matrix": cumulative[0],
        "first_pass_rotation": cumulative[1] - cumulative[0],
        "second_pass_score": cumulative[2] - cumulative[1],
        "compiled_total": cumulative[2],
    }
    # prepare: time and memory per template, interleaved template by template with the baseline's
    prepare_runs: dict[str, Any] = {"prepare": [lambda t=t: prepare(t) for t in templates]}
    if baseline is not None:
        prepare_runs["baseline_prepare"] = [lambda t=t: baseline.prepare(t) for t in templates]
        report["prepared_arrays_equal_to_baseline"] = prepared_arrays_equal(prepared, before)
    prepare_times = _timed(prepare_runs, max(3, repeat // 2))
    report["prepare_ms_per_template"] = {
        name: float(np.median(t)) / len(templates) * 1e3 for name, t in prepare_times.items()
    }
    if baseline is not None:
        ratios = np.array(prepare_times["baseline_prepare"]) / np.array(prepare_times["prepare"])
        report["prepare_speedup_over_baseline_median"] = float(np.median(ratios))
    report["prepared_template_bytes_mean"] = float(np.mean([p.nbytes for p in prepared]))
    report["mean_valid_cylinders"] = float(np.mean([len(p) for p in prepared]))
    report["max_valid_cylinders"] = int(max(len(p) for p in prepared))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="1:1 comparisons per CPU second with prepared templates")
    parser.add_argument("--folder", default="fvc2002_db1_b")
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=7, help="interleaved rounds; medians are reported")
    parser.add_argument("--cpu", type=int, default=0, help="core to pin the process to")
    parser.add_argument("--baseline", type=Path, help="a previous _mcc_kernels.py to time beside the current one")
    parser.add_argument(
        "--baseline-match", type=Path, help="the previous match.py that went with --baseline (prepares its templates)"
    )
    parser.add_argument("--cache", type=Path, help="keep extracted templates in a TemplateCache here")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    parser.add_argument(
        "--scores-only", action="store_true", help="only compare all-pairs scores with --baseline's (no timing)"
    )
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    templates, source = load_templates(args.folder, args.images, cache=args.cache)
    baseline = None
    if args.baseline:
        old_kernels = load_baseline(args.baseline)
        old_match = load_baseline_match(args.baseline_match, old_kernels) if args.baseline_match else None
        baseline = Baseline(old_kernels, old_match)
    elif args.baseline_match:
        parser.error("--baseline-match needs --baseline")
    if args.scores_only:
        if baseline is None:
            parser.error("--scores-only needs --baseline")
        difference = score_difference(templates, baseline)
        print(f"{source}: largest score difference to the baseline over {len(templates) ** 2:,} pairs: {difference:.3g}")
        return 0
    report = measure(templates, args.repeat, baseline)
    rates = report["comparisons_per_cpu_second"]
    print(f"templates: {source}; valid cylinders per template: mean {report['mean_valid_cylinders']:.1f}")
    for name, rate in rates.items():
        print(f"{name:>28}: {rate['median']:>9,.0f} comparisons per CPU second (median; best {rate['best']:,.0f})")
    for name, ratio in report.get("speedup_over_baseline_median", {}).items():
        print(f"{name:>28}: {ratio:.2f}x the baseline, same rounds (median of per-round ratios)")
    if "max_score_difference_to_baseline" in report:
        print(f"largest score difference to the baseline, all pairs: {report['max_score_difference_to_baseline']:.3g}")
    stages = report["stage_us_per_comparison"]
    print("us per comparison: " + ", ".join(f"{k} {v:.1f}" for k, v in stages.items()))
    print("prepare ms per template: " + ", ".join(f"{k} {v:.2f}" for k, v in report["prepare_ms_per_template"].items()))
    if "prepare_speedup_over_baseline_median" in report:
        print(
            f"prepare: {report['prepare_speedup_over_baseline_median']:.2f}x the baseline (median of per-round ratios); "
            f"prepared arrays equal to the baseline's: {report['prepared_arrays_equal_to_baseline']}"
        )
    print(f"prepared template memory: mean {report['prepared_template_bytes_mean'] / 1024:.1f} KiB")
    if args.out:
        command = "python benchmarks/bench_match.py " + " ".join(argv if argv is not None else sys.argv[1:])
        document = {"command": command, "templates": source, "cpu_time": "thread CPU time, one pinned core", **report}
        args.out.write_text(json.dumps(document, indent=2) + "\n")
    return 0


# -- pytest-benchmark ---------------------------------------------------------------------------


def _fixture_templates():
    import pytest

    from ektp_biometrics.fingerprint.match import prepare

    templates, _ = load_templates(images=20)
    if len(templates) < 2:
        pytest.skip("not enough templates")
    return [prepare(t) for t in templates]


def test_match_many_all_pairs(benchmark) -> None:
    from ektp_biometrics.fingerprint.match import match_many, prepare_gallery

    templates = _fixture_templates()
    gallery = prepare_gallery(templates)
    match_many(templates[0], gallery)
    benchmark.group = "match 1:1"
    benchmark.extra_info["comparisons_per_round"] = len(templates) ** 2

    def all_pairs():
        for probe in templates:
            match_many(probe, gallery)

    benchmark(all_pairs)


def test_match_single_call(benchmark) -> None:
    from ektp_biometrics.fingerprint.match import match

    templates = _fixture_templates()
    benchmark.group = "match 1:1"
    score = benchmark(match, templates[0], templates[1])
    assert 0.0 <= score <= 1.0


if __name__ == "__main__":
    sys.exit(main())
