"""search="indexed": the FingerprintIndex shortlist gives the exhaustive search's answers on planted duplicates."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from ektp_biometrics import synth
from ektp_biometrics.errors import ConfigurationError
from ektp_biometrics.gallery import Gallery, Person

PERSONS = 60


@pytest.fixture(scope="module")
def prints():
    # fingers 2i and 2i+1 of person i, two impressions each: finger f impression j is template 2f + j
    return synth.templates(2 * PERSONS, 2, seed=17)


def person(prints, pid: str, i: int, impression: int, positions=(2, 7)) -> Person:
    fingers = {}
    for n, pos in enumerate(positions):
        t = prints.template(2 * (2 * i + n) + impression)
        fingers[pos] = dataclasses.replace(t, quality=70, finger_position=pos)
    return Person(pid, fingers=fingers)


def test_indexed_equals_exhaustive_on_planted_duplicates(tmp_path: Path, prints) -> None:
    path = tmp_path / "g.db"
    with Gallery.open(path) as g:
        for i in range(PERSONS):
            g.insert(person(prints, f"P{i:03d}", i, 0))
    probes = [person(prints, f"again-{i}", i, 1) for i in range(0, PERSONS, 6)]
    probes += [person(prints, f"one-finger-{i}", i, 1, positions=(7,)) for i in range(3, PERSONS, 12)]
    with Gallery.open(path) as exhaustive, Gallery.open(path, search="indexed") as indexed:
        hits = 0
        for probe in probes:
            want, got = exhaustive.identify(probe, k=3), indexed.identify(probe, k=3)
            truth = "P" + f"{int(probe.person_id.rsplit('-', 1)[1]):03d}"
            if want[0].person_id == truth:  # where the planted duplicate is exhaustive rank 1 ...
                hits += 1
                assert got[0] == want[0]  # ... the indexed search finds it with the same scores
            by_id = {c.person_id: c for c in want}
            assert all(c == by_id[c.person_id] for c in got if c.person_id in by_id)
            assert indexed.identify(probe, k=3, fpir=1e-3) == exhaustive.identify(probe, k=3, fpir=1e-3)
        assert hits >= len(probes) // 2  # synthetic second impressions: the matcher itself misses some
        # the index follows inserts, deletes and corrections
        indexed.delete("P000")
        assert "P000" not in [c.person_id for c in indexed.identify(probes[0], k=3)]
        indexed.insert(person(prints, "late", 0, 0))
        assert indexed.identify(probes[0], k=1)[0].person_id == "late"
        indexed.correct(person(prints, "late", 6, 0), by="op")
        assert indexed.identify(probes[1], k=1)[0].person_id in ("late", "P006")
        assert "late" not in [c.person_id for c in indexed.identify(probes[0], k=3)]


def test_indexed_option_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        Gallery.open(tmp_path / "g.db", search="fast")
    with pytest.raises(ConfigurationError):
        Gallery.open(tmp_path / "g.db", search="indexed", cluster="tcp://127.0.0.1:1")


def test_saved_index_is_loaded_and_caught_up_instead_of_rebuilt(tmp_path: Path, prints, monkeypatch) -> None:
    from ektp_biometrics.fingerprint.index import FingerprintIndex
    from ektp_biometrics.gallery.store import ArraysParameters

    tuning = ArraysParameters(index_save_min_changes=1)
    path = tmp_path / "g.db"
    with Gallery.open(path) as g:
        g.insert_many([person(prints, f"P{i:03d}", i, 0) for i in range(20)])
    probes = [person(prints, f"again-{i}", i, 1) for i in (3, 11, 19)]
    with Gallery.open(path, search="indexed", tuning=tuning) as first:
        first.prepare_search()  # built from scratch, then saved
        want = [first.identify(p, k=3) for p in probes]
    assert (path.with_name("g.db.search") / "index.json").is_file()
    added: list[int] = []
    original = FingerprintIndex.add

    def counting_add(self, ids, templates, positions=None):  # type: ignore[no-untyped-def]
        added.append(len(ids))
        return original(self, ids, templates, positions)

    monkeypatch.setattr(FingerprintIndex, "add", counting_add)
    with Gallery.open(path, search="indexed", tuning=tuning) as second:
        assert [second.identify(p, k=3) for p in probes] == want and added == []  # loaded, nothing re-added
        second.insert(person(prints, "late", 19, 0))
        second.delete("P003")
        found = second.identify(probes[2], k=3)
        assert added == [2] and {found[0].person_id, found[1].person_id} == {"late", "P019"}  # only the new person's 2 fingers
        assert "P003" not in [c.person_id for c in second.identify(probes[0], k=3)]
    marker = json.loads((path.with_name("g.db.search") / "index.json").read_text())
    (path.with_name("g.db.search") / marker["index"]).write_bytes(b"not an index")  # damaged: rebuilt, same answers
    added.clear()
    with Gallery.open(path, search="indexed", tuning=tuning) as third:
        assert third.identify(probes[1], k=1) == want[1][:1] and sum(added) == 2 * 20  # 19 persons + "late"
