"""1:1 comparison speed of the MCC matcher, with templates prepared once.

pytest-benchmark::

    python -m pytest benchmarks/bench_match.py --benchmark-only

Runner (prints comparisons per CPU second on one core, the acceptance number)::

    python benchmarks/bench_match.py [--folder fvc2002_db1_b] [--images 40] [--out docs/results/match_speed.json]

On a machine shared with other jobs, absolute rates drift by 2x between runs; the runner therefore
times, interleaved in the same process, a NumPy baseline doing the local-similarity step of the
same comparisons (whole-array XOR and ``np.bitwise_count`` of the binary cylinders, the dominant
cost of MCC), and reports the ratio too.

Templates are real ones extracted from a shared folder when the data and the extractor are
available, otherwise seeded synthetic ones with a realistic minutiae count (35 per print).
All-pairs scoring of the folder in one compiled loop (``match_many``) is what is timed; the
per-call Python ``match`` is benchmarked too, to show its overhead.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("EKTP_DATA") or PROJECT_ROOT.parent / "shared" / "data")


def load_templates(folder: str = "fvc2002_db1_b", images: int = 40, rng: int = 0) -> tuple[list, str]:
    """Prepared templates of the first ``images`` impressions of ``folder``, or synthetic ones."""
    from ektp_biometrics.fingerprint.match import prepare
    from ektp_biometrics.fingerprint.template import FingerprintTemplate, make_minutiae

    path = DATA / "fingerprints" / folder
    if path.is_dir():
        try:
            from ektp_biometrics.fingerprint.extract import extract_file

            files = sorted(p for p in path.iterdir() if p.suffix.lower() in {".tif", ".bmp"})[:images]
            return [prepare(extract_file(p)) for p in files], f"real: {folder}, {len(files)} images"
        except ImportError:
            pass
    gen = np.random.default_rng(rng)
    out = []
    for _ in range(images):
        n = 35
        m = make_minutiae(gen.uniform(40, 360, n), gen.uniform(40, 260, n), gen.uniform(0, 2 * np.pi, n))
        out.append(prepare(FingerprintTemplate(300, 400, m)))
    return out, f"synthetic: {images} templates of 35 minutiae"


def numpy_local_similarities(probe, gallery: list) -> list[np.ndarray]:
    """Baseline: the bit local-similarity matrices of ``probe`` against ``gallery`` in plain NumPy.

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
        common = np.bitwise_count(probe.words[:, None, 2 * half :] & g.words[None, :, 2 * half :]).sum(axis=2)
        ok = (norm > 0) & (common >= probe.params.min_matchable_fraction * _cell_layout(probe.params)[0].shape[0])
        out.append(np.where(ok, 1 - np.sqrt(n_x) / np.where(norm > 0, norm, 1), 0.0))
    return out


def _bit_words(template) -> int:
    """Words of the binary cylinder in ``MatchTemplate.words`` (bits | mask | cell bits)."""
    from ektp_biometrics.fingerprint.match import _cell_layout

    cells = _cell_layout(template.params)[0].shape[0]
    return -(-cells * template.params.direction_bins // 64)


def comparisons_per_second(templates: list, repeat: int = 5) -> tuple[float, float]:
    """All ordered pairs through ``match_many`` and through the NumPy baseline, interleaved.

    Returns the comparisons per CPU second of each, best of ``repeat`` runs.
    """
    from ektp_biometrics.fingerprint import _mcc_kernels as kernels
    from ektp_biometrics.fingerprint.match import _kernel_params, match_many

    match_many(templates[0], templates[:2])  # compile outside the timing
    packed = _kernel_params(templates[0].params)[0]
    for g, baseline in zip(templates[:5], numpy_local_similarities(templates[0], templates[:5])):
        kernel = kernels._local_similarity_bits(templates[0].words, templates[0].minutia, g.words, g.minutia, packed)
        assert np.allclose(kernel, baseline, atol=1e-6), "the NumPy baseline must compute what the kernel does"
    best = np.inf
    best_numpy = np.inf
    for _ in range(repeat):
        t0 = time.process_time()
        for probe in templates:
            match_many(probe, templates)
        best = min(best, time.process_time() - t0)
        t0 = time.process_time()
        for probe in templates:
            numpy_local_similarities(probe, templates)
        best_numpy = min(best_numpy, time.process_time() - t0)
    n = len(templates) ** 2
    return n / best, n / best_numpy


# -- pytest-benchmark ---------------------------------------------------------------------------


def _fixture_templates():
    import pytest

    templates, _ = load_templates(images=20)
    if len(templates) < 2:
        pytest.skip("not enough templates")
    return templates


def test_match_many_all_pairs(benchmark) -> None:
    from ektp_biometrics.fingerprint.match import match_many

    templates = _fixture_templates()
    match_many(templates[0], templates)
    benchmark.group = "match 1:1"
    benchmark.extra_info["comparisons_per_round"] = len(templates) ** 2

    def all_pairs():
        for probe in templates:
            match_many(probe, templates)

    benchmark(all_pairs)


def test_match_single_call(benchmark) -> None:
    from ektp_biometrics.fingerprint.match import match

    templates = _fixture_templates()
    benchmark.group = "match 1:1"
    score = benchmark(match, templates[0], templates[1])
    assert 0.0 <= score <= 1.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="1:1 comparisons per CPU second with prepared templates")
    parser.add_argument("--folder", default="fvc2002_db1_b")
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    templates, source = load_templates(args.folder, args.images)
    sizes = [len(t) for t in templates]
    rate, numpy_rate = comparisons_per_second(templates)
    memory = np.mean([t.nbytes for t in templates])
    print(f"templates: {source}; valid cylinders per template: mean {np.mean(sizes):.1f}, max {max(sizes)}")
    print(f"comparisons per CPU second (one core): {rate:,.0f}")
    print(f"NumPy baseline (local similarities only), same run: {numpy_rate:,.0f}; ratio {rate / numpy_rate:.1f}x")
    print(f"prepared template memory: mean {memory / 1024:.1f} KiB")
    if args.out:
        import json

        report = {
            "command": "python benchmarks/bench_match.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "templates": source,
            "mean_valid_cylinders": float(np.mean(sizes)),
            "comparisons_per_cpu_second": rate,
            "numpy_local_similarity_baseline_per_cpu_second": numpy_rate,
            "ratio_to_baseline": rate / numpy_rate,
            "prepared_template_bytes_mean": float(memory),
        }
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
