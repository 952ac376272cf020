"""The gallery over Dask: a LocalCluster with 2 worker processes returns exactly the in-process results."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ektp_biometrics.errors import ConfigurationError
from ektp_biometrics.fingerprint import FingerprintTemplate, make_minutiae
from ektp_biometrics.gallery import ClusterGallery, Gallery, Person

distributed = pytest.importorskip("dask.distributed")


def template(rng: np.random.Generator, base: FingerprintTemplate | None = None) -> FingerprintTemplate:
    """A random print, or a noisy re-capture of ``base`` (moved minutiae, some lost, some spurious)."""
    if base is None:
        n = int(rng.integers(25, 45))
        m = make_minutiae(*rng.uniform(20, 280, (2, n)), rng.uniform(0, 6.28, n))
    else:
        keep = base.minutiae[rng.random(len(base)) > 0.2]
        extra = make_minutiae(*rng.uniform(20, 280, (2, 5)), rng.uniform(0, 6.28, 5))
        m = np.concatenate([keep, extra])
        m["row"] += rng.normal(0, 2, len(m))
        m["col"] += rng.normal(0, 2, len(m))
    return FingerprintTemplate(300, 300, m, quality=int(rng.integers(20, 100)))


@pytest.fixture(scope="module")
def client():
    # The scheduler serves HTTP even without a dashboard, on 8787 unless told otherwise; a port of
    # 0 keeps the test independent of whatever else on the machine holds 8787.
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
    ) as cluster, distributed.Client(cluster) as c:
        yield c


def test_cluster_equals_in_process(tmp_path: Path, client) -> None:
    rng = np.random.default_rng(2024)
    persons = []
    for i in range(40):
        positions = rng.choice(np.arange(1, 11), size=int(rng.integers(1, 5)), replace=False)
        persons.append(Person(f"P{i:03d}", fingers={int(p): template(rng) for p in positions}))
    # probes: noisy re-captures of some persons, with fingers left out, plus strangers
    probes = []
    for i in range(0, 40, 4):
        kept = list(persons[i].fingers.items())[: max(1, len(persons[i].fingers) - 1)]
        probes.append(Person(f"probe-{i}", fingers={pos: template(rng, t) for pos, t in kept}))
    probes += [Person(f"stranger-{j}", fingers={2: template(rng), 7: template(rng)}) for j in range(4)]

    path = tmp_path / "g.db"
    with Gallery.open(path) as local:
        for p in persons:
            local.insert(p)
        local.decide("P004", "P008", "not-duplicate", by="adj")
        expected = [local.identify(p, k=5) for p in probes]
        expected_fpir = [local.identify(p, k=5, fpir=1e-2) for p in probes]
        expected_dedup = local.dedup(probes, threshold=1.0)
    with Gallery.open(path, create=False, cluster=client) as remote:
        assert isinstance(remote, ClusterGallery) and len(remote.workers()) == 2
        got = [remote.identify(p, k=5) for p in probes]
        assert got == expected  # same candidates, same order, bit-identical scores
        assert [remote.identify(p, k=5, fpir=1e-2) for p in probes] == expected_fpir
        assert remote.dedup(probes, threshold=1.0) == expected_dedup
        assert any(c and c[0].person_id == f"P{int(p.person_id[6:]):03d}" for c, p in zip(got, probes) if p.person_id.startswith("probe"))
        # a gallery restriction and a later insert are seen by the workers too
        among = [p.person_id for p in persons[:20]]
        assert [remote.identify(p, k=3, among=among) for p in probes[:3]] == [local_identify(path, p, among) for p in probes[:3]]
        remote.insert(Person("late", fingers=dict(probes[0].fingers)))
        assert remote.identify(probes[0], k=1)[0].person_id == "late"


def test_cluster_equals_in_process_after_deletes_and_corrections(tmp_path: Path, client) -> None:
    """Retired (deleted, superseded) persons stay as tombstones in-process and must not reach the workers."""
    rng = np.random.default_rng(77)
    persons = [Person(f"P{i:03d}", fingers={2: template(rng), 7: template(rng)}) for i in range(24)]
    path = tmp_path / "g.db"
    with Gallery.open(path) as local:
        for p in persons:
            local.insert(p)
        local.identify(persons[0], k=1)  # the shard exists before the changes, so they are applied incrementally
        local.delete("P003")
        corrected = Person("P005", fingers={2: template(rng, persons[5].fingers[2])})
        local.correct(corrected)
        assert local.shard().retired == 2
        probes = [Person("q3", fingers=dict(persons[3].fingers)), Person("q5", fingers={2: template(rng, persons[5].fingers[2])})]
        expected = [local.identify(p, k=5) for p in probes]
    assert "P003" not in [c.person_id for c in expected[0]]
    assert expected[1][0].person_id == "P005" and set(expected[1][0].finger_scores) == {2}  # the corrected version
    with Gallery.open(path, create=False, cluster=client) as remote:
        assert [remote.identify(p, k=5) for p in probes] == expected


def local_identify(path: Path, probe: Person, among: list[str]):  # type: ignore[no-untyped-def]
    with Gallery.open(path, create=False) as g:
        return g.identify(probe, k=3, among=among)


def test_cluster_argument_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        Gallery.open(tmp_path / "g.db", cluster=42)
