"""Examples in the documentation pages and docstrings run and print what they claim."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = sorted(p.name for p in DOCS.glob("*.md") if ">>> " in p.read_text(encoding="utf-8"))
MODULES = [
    "ektp_biometrics.fingerprint",
    "ektp_biometrics.fingerprint.template",
    "ektp_biometrics.fingerprint.params",
    "ektp_biometrics.fingerprint.debug",
    "ektp_biometrics.fingerprint.extract",
]


@pytest.mark.parametrize("page", PAGES)
def test_page_examples_run(page):
    result = doctest.testfile(str(DOCS / page), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
