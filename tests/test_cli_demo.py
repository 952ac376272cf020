"""``ektp-bio demo``: the station keeps enrolling when a scanner dies, and planted duplicates are reported."""

from __future__ import annotations

import re

from ektp_biometrics.cli import main
from ektp_biometrics.cli.demo import DEMO_POSITIONS
from ektp_biometrics.gallery import Gallery


def test_demo_switches_scanner_and_reports_planted_duplicates(tmp_path, capsys):
    gallery = tmp_path / "demo.sqlite"
    code = main(["demo", "--people", "3", "--returning", "1", "--new", "1", "--fail-after", "3", "--gallery", str(gallery)])
    out = capsys.readouterr().out
    assert code == 0
    assert out.count("SCANNER-A failed; station switched to simulated:SCANNER-B") == 1
    found = re.search(r"planted duplicates found: (\d+) of 1; decisions right: (\d+) of 2; scanner switches: 1", out)
    assert found, out
    assert found.groups() == ("1", "2"), out  # the returning person is caught and the new one is not flagged
    # every person of the first batch is stored with every demo finger
    with Gallery.open(gallery, create=False) as g:
        assert g.count() == 3
        assert all(sorted(g.get(f"P00{i}").fingers) == sorted(DEMO_POSITIONS) for i in (1, 2, 3))
