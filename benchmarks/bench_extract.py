"""pytest-benchmark: extraction per image beside fingerprint_enhancer on the same image.

Run with ``python -m pytest benchmarks/bench_extract.py --benchmark-only``; compare the
``extract`` and ``fingerprint_enhancer`` groups' medians (same image, same run).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("EKTP_DATA") or PROJECT_ROOT.parent / "shared" / "data")
IMAGES = {
    "fvc2002_db1_b": ("fvc2002_db1_b/101_1.tif", 500),
    "fvc2000_db3_b": ("fvc2000_db3_b/101_1.tif", 500),
    "fvc2002_db2_b": ("fvc2002_db2_b/101_1.tif", 569),
}


def _image(name):
    from ektp_biometrics.io import read_image

    path = DATA / "fingerprints" / IMAGES[name][0]
    if not path.exists():
        pytest.skip(f"shared data not found at {DATA}")
    return read_image(path), IMAGES[name][1]


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_extract(benchmark, name):
    from ektp_biometrics.fingerprint import extract

    image, dpi = _image(name)
    benchmark.group = f"extract {name}"
    template = benchmark(extract, image, dpi)
    assert len(template) > 10


@pytest.mark.parametrize("name", ["fvc2002_db1_b"])
def test_fingerprint_enhancer_baseline(benchmark, name):
    enhancer = pytest.importorskip("fingerprint_enhancer", reason="pip install --no-deps fingerprint_enhancer")
    image, _ = _image(name)
    benchmark.group = f"extract {name}"
    benchmark.pedantic(enhancer.enhance_fingerprint, args=(image,), rounds=3, iterations=1)


def test_import_time(benchmark):
    import subprocess
    import sys

    def fresh_import():
        subprocess.run([sys.executable, "-c", "import ektp_biometrics"], check=True)

    def bare_interpreter():
        subprocess.run([sys.executable, "-c", "pass"], check=True)

    benchmark.group = "import"
    benchmark.pedantic(fresh_import, rounds=5, iterations=1)
    bare_interpreter()
