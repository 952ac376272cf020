"""1:1 comparison speed of the MCC matcher, with templates prepared once.

pytest-benchmark::

    python -m pytest benchmarks/bench_match.py --benchmark-only

Runner (prints comparisons per CPU second on one core, the acceptance number)::

    python benchmarks/bench_match.py [--folder fvc2002_db1_b] [--images 40]

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


def comparisons_per_second(templates: list, repeat: int = 3) -> float:
    """All ordered pairs through ``match_many``, best of ``repeat`` runs, in CPU time."""
    from ektp_biometrics.fingerprint.match import match_many

    match_many(templates[0], templates[:2])  # compile outside the timing
    best = np.inf
    for _ in range(repeat):
        t0 = time.process_time()
        for probe in templates:
            match_many(probe, templates)
        best = min(best, time.process_time() - t0)
    return len(templates) ** 2 / best


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
    args = parser.parse_args(argv)
    templates, source = load_templates(args.folder, args.images)
    sizes = [len(t) for t in templates]
    rate = comparisons_per_second(templates)
    memory = np.mean([t.nbytes for t in templates])
    print(f"templates: {source}; valid cylinders per template: mean {np.mean(sizes):.1f}, max {max(sizes)}")
    print(f"comparisons per CPU second (one core): {rate:,.0f}")
    print(f"prepared template memory: mean {memory / 1024:.1f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
