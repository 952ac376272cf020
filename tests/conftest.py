"""Shared test fixtures: where the real data sets are."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The shared data folder: $EKTP_DATA, else <project root>/../shared/data; skips if missing."""
    root = Path(os.environ.get("EKTP_DATA") or PROJECT_ROOT.parent / "shared" / "data")
    if not root.is_dir():
        pytest.skip(f"real data not found at {root} (set EKTP_DATA to the shared data folder)")
    return root


def list_fingerprint_folders(root: Path) -> list[Path]:
    """The fingerprint data-set folders under ``root``/fingerprints, sorted by name."""
    return sorted(path for path in (root / "fingerprints").iterdir() if path.is_dir())


@pytest.fixture(scope="session")
def fingerprint_folders(data_root: Path) -> list[Path]:
    """The fingerprint data-set folders (fvc2000_db1_b, ..., socofing_subset), sorted by name."""
    folders = list_fingerprint_folders(data_root)
    if not folders:
        pytest.skip(f"no fingerprint folders under {data_root / 'fingerprints'}")
    return folders
