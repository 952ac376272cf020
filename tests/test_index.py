"""Tests of the 1:N fingerprint index: kernels against obvious versions, search against the exhaustive matcher."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ektp_biometrics import synth
from ektp_biometrics.errors import ConfigurationError, GalleryError, TemplateFormatError
from ektp_biometrics.fingerprint import _index_kernels as kernels
from ektp_biometrics.fingerprint import index as index_module
from ektp_biometrics.fingerprint import index_params
from ektp_biometrics.fingerprint.extract import extract_file
from ektp_biometrics.fingerprint.index import (
    Candidate,
    FingerprintIndex,
    _code_layout,
    cylinder_codes,
    fused_evidence,
)
from ektp_biometrics.fingerprint.index_params import IndexParameters
from ektp_biometrics.fingerprint.match import match_many, prepare, threshold
from ektp_biometrics.fingerprint.match_params import DEFAULT_MATCH_PARAMETERS
from ektp_biometrics.fingerprint.template import FingerprintTemplate, make_minutiae

#: Real folders used here (two FVC sets: 20 fingers x 8 impressions, about 3 s to extract).
REAL_FOLDERS = ("fvc2000_db1_b", "fvc2002_db1_b")


@pytest.fixture(scope="module")
def prints() -> synth.TemplateSet:
    """60 synthetic fingers, 2 impressions each (impression 1 at even, 2 at odd positions)."""
    return synth.templates(60, 2, seed=20260101)


@pytest.fixture(scope="module")
def real(data_root: Path) -> tuple[list[FingerprintTemplate], list[str], list[FingerprintTemplate]]:
    """Gallery (impression 1 of each finger), its ids, and probes (every other impression) of REAL_FOLDERS."""
    gallery, ids, probes = [], [], []
    for name in REAL_FOLDERS:
        folder = data_root / "fingerprints" / name
        if not folder.is_dir():
            pytest.skip(f"real folder {folder} not found")
        for path in sorted(folder.glob("*.tif")):
            finger, impression = re.fullmatch(r"(\d+)_(\d+)", path.stem).groups()  # type: ignore[union-attr]
            template = extract_file(path)
            if impression == "1":
                gallery.append(template)
                ids.append(f"{name}/{finger}")
            else:
                probes.append(template)
    return gallery, ids, probes


# -- kernels against obvious versions ----------------------------------------------------------------


def test_codes_are_the_binary_cylinder_at_the_sampled_positions(prints):
    """With the matcher's own threshold a code's descriptor is prepare()'s binary cylinder, bit for bit; its last byte names the minutia."""
    params = IndexParameters(code_cell_threshold=DEFAULT_MATCH_PARAMETERS.cell_threshold)
    _, _, sample_cell, sample_bin = _code_layout(params)
    bit = sample_cell * DEFAULT_MATCH_PARAMETERS.direction_bins + sample_bin
    samples = np.arange(params.descriptor_bits)
    compared = differing = 0
    for i in range(0, 40, 4):
        template = prints.template(i)
        codes = cylinder_codes(template, params, limit=255)
        words = prepare(template).words
        assert codes.shape[0] == words.shape[0]  # the same cylinders are valid
        minutia = (codes[:, -1] >> np.uint64(56)).astype(np.int64)
        assert np.all(np.diff(minutia) > 0) and minutia.max() < len(template)
        cylinder = (words[:, bit // 64] >> (bit % 64).astype(np.uint64)) & np.uint64(1)
        sampled = (codes[:, samples // 64] >> (samples % 64).astype(np.uint64)) & np.uint64(1)
        compared += cylinder.size
        differing += int((cylinder != sampled).sum())
    assert compared > 1000
    assert differing <= compared // 1000  # float rounding at the threshold may flip a rare bit


def naive_bound_and_vote(probe, probe_geometry, codes, template, params):
    """Plain-Python first stage of one finger: (bound, vote score), written from the documented rule."""
    bits = params.descriptor_bits
    descriptor = lambda code: sum(int(w) << (64 * k) for k, w in enumerate(code)) & ((1 << (64 * len(code) - 8)) - 1)
    scale = 500.0 / template.resolution
    weights = {}
    for i, p in enumerate(probe):
        for j, c in enumerate(codes):
            weight = bits - (descriptor(p) ^ descriptor(c)).bit_count() - params.similarity_floor
            if weight > 0:
                weights[i, j] = weight
    bound = sum(max((w for (i, _), w in weights.items() if i == code), default=0) for code in range(len(probe)))
    if not weights:
        return bound, 0
    minutia = [int(c[-1]) >> 56 for c in codes]
    nb = params.rotation_bins
    pairs = []
    for (i, j), w in sorted(weights.items()):
        m = template.minutiae[minutia[j]]
        turn = float(probe_geometry[i, 2]) - float(np.float32(m["direction"]))
        pairs.append((i, w, int(np.floor(turn * nb / (2 * np.pi) + 0.5)) % nb, float(m["col"]) * scale, -float(m["row"]) * scale))
    histogram = [0] * nb
    for _, w, b, _, _ in pairs:
        histogram[b] += w
    near = lambda b, c: min((b - c) % nb, (c - b) % nb) <= params.rotation_spread
    best_bin = max(range(nb), key=lambda b: (sum(histogram[(b + o) % nb] for o in range(-params.rotation_spread, params.rotation_spread + 1)), -b))
    angle = best_bin * 2 * np.pi / nb
    shifted = [
        (i, w, probe_geometry[i, 0] - (np.cos(angle) * x - np.sin(angle) * y), probe_geometry[i, 1] - (np.sin(angle) * x + np.cos(angle) * y))
        for i, w, b, x, y in pairs if near(b, best_bin)
    ]  # fmt: skip
    score = 0
    for _, _, ax, ay in shifted:
        per_code = {}
        for i, w, x, y in shifted:
            if (x - ax) ** 2 + (y - ay) ** 2 <= params.translation_tolerance**2:
                per_code[i] = max(per_code.get(i, 0), w)
        score = max(score, sum(per_code.values()))
    return bound, score


def kernel_columns(templates, params):
    """The index's kernel columns for these gallery templates (codes, starts, counts, minutiae fields, starts, resolutions)."""
    gallery = [index_module._codes(t, params, params.max_gallery_codes) for t in templates]
    counts = np.array([g.shape[0] for g in gallery], dtype=np.uint8)
    starts = np.concatenate([[0], np.cumsum(counts.astype(np.int64))[:-1]]).astype(np.int64)
    minutiae = np.concatenate([t.minutiae for t in templates])
    m_starts = np.concatenate([[0], np.cumsum([len(t) for t in templates])[:-1]]).astype(np.int64)
    resolution = np.array([t.resolution for t in templates], dtype=np.uint16)
    codes = np.concatenate(gallery)
    return gallery, (codes, starts, counts, minutiae["row"], minutiae["col"], minutiae["direction"], m_starts, resolution)


def vote_settings(params):
    index = FingerprintIndex(params, threads=1)
    return index._vote


@pytest.mark.parametrize("code_bits", [64, 128])
def test_first_stage_kernels_match_the_plain_python_vote(prints, code_bits):
    params = IndexParameters(code_bits=code_bits, similarity_floor=38 if code_bits == 64 else 100)
    templates = [prints.template(i) for i in range(0, 80 if code_bits == 64 else 30, 2)]
    probe_template = prints.template(3)
    gallery, columns = kernel_columns(templates, params)
    probe, geometry = index_module._codes_and_geometry(probe_template, params, params.max_probe_codes)
    vote = vote_settings(params)
    expected = [naive_bound_and_vote(probe, geometry, g, t, params) for g, t in zip(gallery, templates)]
    assert sum(v > 0 for _, v in expected) > len(templates) // 2  # the vote is exercised
    # every score, row by row
    out = np.zeros(len(templates), dtype=np.int64)
    kernels._score_rows(probe, geometry, *columns, np.arange(len(templates)), vote, out)
    assert out.tolist() == [v for _, v in expected]
    # the bounds, in two chunks writing disjoint slices of one array
    eligible = np.ones(len(templates), dtype=np.bool_)
    eligible[3] = False
    bounds = np.full(len(templates), 99, dtype=np.int32)
    assert kernels._bound_chunk(probe, columns[0], columns[1], columns[2], eligible, 0, 10, vote, bounds) == 9
    kernels._bound_chunk(probe, columns[0], columns[1], columns[2], eligible, 10, len(templates), vote, bounds)
    assert bounds.tolist() == [-1 if r == 3 else b for r, (b, _) in enumerate(expected)]
    assert all(v <= b for b, v in expected)  # the bound the pruning relies on
    # the per-finger first stage: bounds pick the finger to vote, votes rank them
    index = FingerprintIndex(IndexParameters(code_bits=code_bits, similarity_floor=params.similarity_floor, vote_shortlist=12), threads=2)
    index.add([f"f{r}" for r in range(len(templates))], templates)
    rows, scores = index._first_stage(probe_template, 5, index._eligible(None))
    voted = sorted(range(len(templates)), key=lambda r: (-expected[r][0], r))[:12]
    best = sorted(voted, key=lambda r: (-expected[r][1], r))[:5]
    assert rows.tolist() == best and scores.tolist() == [expected[r][1] for r in best]


@settings(max_examples=10, deadline=None)
@given(keep=st.integers(1, 12), voted=st.integers(1, 40), seed=st.integers(0, 10_000))
def test_person_first_stage_votes_the_persons_of_highest_summed_bound(prints, keep, voted, seed):
    """Persons ranked by summed bound, the first ``vote_shortlist`` voted and ranked by summed vote (ties by row)."""
    rng = np.random.default_rng(seed)
    index = FingerprintIndex(IndexParameters(vote_shortlist=voted), threads=2)
    people = [f"p{i}" for i in range(30) for _ in range(2)]
    chosen = rng.permutation(60)
    templates = [prints.template(2 * int(c)) for c in chosen]
    index.add(people, templates, positions=[2, 7] * 30)
    probes = {2: prints.template(2 * int(chosen[0]) + 1), 7: prints.template(2 * int(rng.integers(60)) + 1)}
    params = index.params
    per_probe = {p: index_module._codes_and_geometry(t, params, params.max_probe_codes) for p, t in probes.items()}
    bound, vote = {}, {}
    for row, (person, template) in enumerate(zip(people, templates)):
        position = (2, 7)[row % 2]
        codes = index_module._codes(template, params, params.max_gallery_codes)
        b, v = naive_bound_and_vote(*per_probe[position], codes, template, params)
        bound[person] = bound.get(person, 0) + b
        vote[person] = vote.get(person, 0) + v
    first_row = {person: 2 * i for i, person in enumerate(dict.fromkeys(people))}
    by_bound = sorted(bound, key=lambda q: (-bound[q], first_row[q]))[: max(keep, voted)]
    expected = [first_row[q] for q in sorted(by_bound, key=lambda q: (-vote[q], first_row[q]))[:keep]]
    assert index._person_first_stage(probes, keep).tolist() == expected


# -- search against the exhaustive matcher on real data -----------------------------------------------


def exhaustive(probe: FingerprintTemplate, gallery_prepared: list, ids: list[str]) -> list[tuple[str, float]]:
    scores = match_many(prepare(probe), gallery_prepared)
    order = sorted(range(len(ids)), key=lambda i: (-scores[i], i))
    return [(ids[i], float(scores[i])) for i in order]


def test_search_equals_exhaustive_top_k_when_the_shortlist_covers_the_gallery(real):
    gallery, ids, probes = real
    index = FingerprintIndex(threads=2)  # default shortlist (100) >= 20 fingers
    index.add(ids, gallery)
    prepared = [prepare(t) for t in gallery]
    for probe in probes[::7]:
        found = index.search(probe, k=5)
        assert [(c.id, c.score) for c in found] == exhaustive(probe, prepared, ids)[:5]


def test_small_shortlist_keeps_exact_scores_and_most_rank_1(real):
    """A shortlist of 5 of 40 fingers: scores stay exact; rank-1 agrees on most real probes."""
    gallery, ids, probes = real
    index = FingerprintIndex(IndexParameters(shortlist=5, max_shortlist=5), threads=2)  # a fixed shortlist
    index.add(ids, gallery)
    prepared = [prepare(t) for t in gallery]
    agree = 0
    chosen = probes[::3]
    for probe in chosen:
        truth = dict(exhaustive(probe, prepared, ids))
        found = index.search(probe, k=3)
        assert [c.score for c in found] == sorted((c.score for c in found), reverse=True)
        assert all(c.score == truth[c.id] for c in found)
        agree += found[0].score == max(truth.values())
    # Measured 45 of 47 (0.96) on these folders (40 fingers); a first stage no better than chance gives ~1/8.
    assert agree / len(chosen) >= 0.85


def test_adaptive_shortlist_grows_only_below_the_confident_score(prints):
    """Growth scores the next first-stage fingers exactly as a larger fixed shortlist would."""
    ids = [f"f{i}" for i in range(60)]
    gallery = [prints.template(2 * i) for i in range(60)]

    def results(**kw):
        index = FingerprintIndex(IndexParameters(**kw), threads=1)
        index.add(ids, gallery)
        return [index.search(prints.template(i), k=2) for i in range(1, 60, 6)]

    fixed_2, fixed_8 = results(shortlist=2, max_shortlist=2), results(shortlist=8, max_shortlist=8)
    assert results(shortlist=2, max_shortlist=8, confident_score=0.0) == fixed_2  # always confident: no growth
    assert results(shortlist=2, max_shortlist=8, confident_score=1.0) == fixed_8  # never confident: 2 -> 4 -> 8
    assert fixed_2 != fixed_8
    mixed = results(shortlist=2, max_shortlist=8, confident_score=0.2)
    for found, small, large in zip(mixed, fixed_2, fixed_8):
        assert found == (small if small[0].score >= 0.2 else large)


@pytest.mark.slow
def test_rank_1_is_the_exhaustive_matchers_with_distractors(real):
    """Default parameters, real probes, a gallery larger than ``max_shortlist``: no rank-1 loss.

    The 20 real fingers are hidden among 600 synthetic distractors, so the adaptive shortlist
    (100, growing to 400 below a best score of 0.2) cannot simply cover the gallery.
    """
    gallery, ids, probes = real
    distractors = synth.templates(600, 1, seed=20261207)
    all_ids = ids + [f"d{i}" for i in range(600)]
    everything = gallery + list(distractors)
    index = FingerprintIndex(threads=2)
    index.add(all_ids, everything)
    prepared = [prepare(t) for t in everything]
    probe_ids = [i for i in ids for _ in range(7)]  # 7 probes per finger, in folder order
    correct = same_top = 0
    for probe, mate in zip(probes[::2], probe_ids[::2]):
        truth = exhaustive(probe, prepared, all_ids)
        found = index.search(probe, k=1)[0]
        same_top += (found.id, found.score) == truth[0]
        if truth[0][0] == mate:
            correct += 1
            assert (found.id, found.score) == truth[0]  # the exhaustive matcher's hit is the index's hit
    assert correct >= 50  # the exhaustive matcher identifies most of the 70 probes
    assert same_top >= correct


# -- threads, add/remove, persistence -------------------------------------------------------------------


def test_threads_do_not_change_results(prints):
    params = IndexParameters(shortlist=6, max_shortlist=12, chunk_fingers=7)  # several chunks per thread
    one, two = FingerprintIndex(params, threads=1), FingerprintIndex(params, threads=2)
    ids = [f"f{i}" for i in range(60)]
    for index in (one, two):
        index.add(ids, [prints.template(2 * i) for i in range(60)])
    for i in range(1, 40, 3):
        assert one.search(prints.template(i), k=6) == two.search(prints.template(i), k=6)
    assert one.search_many([prints.template(1), prints.template(9)], 4) == two.search_many(
        [prints.template(1), prints.template(9)], 4
    )


@settings(max_examples=15, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 19)), min_size=1, max_size=25))
def test_add_remove_agrees_with_a_fresh_index(operations):
    pool = POOL
    params = IndexParameters(shortlist=20, chunk_fingers=3)
    index = FingerprintIndex(params, threads=2)
    live: dict[str, int] = {}
    for adding, n in operations:
        name = f"id{n}"
        if adding and name not in live:
            index.add([name], [pool.template(2 * n)])
            live[name] = n
        elif not adding and name in live:
            index.remove([name])
            del live[name]
        elif adding:
            with pytest.raises(GalleryError):
                index.add([name], [pool.template(2 * n)])
        else:
            with pytest.raises(GalleryError):
                index.remove([name])
        assert len(index) == len(live)
        assert all(name in index for name in live)
    if not live:
        with pytest.raises(GalleryError, match="empty"):
            index.search(pool.template(1))
        return
    fresh = FingerprintIndex(params, threads=1)
    fresh.add(list(live), [pool.template(2 * n) for n in live.values()])
    probe = pool.template(2 * next(iter(live.values())) + 1)
    got = {c.id: c.score for c in index.search(probe, k=len(live))}
    assert got == {c.id: c.score for c in fresh.search(probe, k=len(live))}
    assert set(got) == set(live)
    index.compact()
    assert {c.id: c.score for c in index.search(probe, k=len(live))} == got


POOL = synth.templates(20, 2, seed=77)


def test_remove_then_compact_frees_memory(prints):
    index = FingerprintIndex(threads=1)
    index.add([f"f{i}" for i in range(60)], [prints.template(2 * i) for i in range(60)])
    before = index.nbytes
    index.remove([f"f{i}" for i in range(0, 60, 2)])
    index.compact()
    assert len(index) == 30 and index.nbytes < 0.6 * before
    assert index.search(prints.template(3), k=1)[0].id == "f1"
    assert all(c.id != "f2" for c in index.search(prints.template(5), k=30))


def test_memory_per_finger_is_under_a_kilobyte(prints):
    index = FingerprintIndex(threads=1)
    index.add([f"f{i}" for i in range(60)], [prints.template(2 * i) for i in range(60)])
    assert index.code_nbytes / len(index) <= 48 * 8 + 9
    assert index.bytes_per_finger <= 1024


def test_save_load_round_trip_and_damage(prints, tmp_path):
    index = FingerprintIndex(threads=1)
    index.add(["a", "b", "c"], [prints.template(0), prints.template(2), prints.template(4)], positions=[1, 1, 2])
    index.remove(["b"])
    path = index.save(tmp_path / "index.npz")
    again = FingerprintIndex.load(path, threads=2)
    assert len(again) == 2 and "b" not in again
    assert again.search(prints.template(5), k=2) == index.search(prints.template(5), k=2)
    # search-time tunables do not change what is stored; code parameters do
    assert len(FingerprintIndex.load(path, IndexParameters(shortlist=3, person_shortlist=5), threads=1)) == 2
    with pytest.raises(ConfigurationError, match="other IndexParameters"):
        FingerprintIndex.load(path, IndexParameters(code_seed=3))
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(TemplateFormatError):
        FingerprintIndex.load(tmp_path / "junk.npz")
    data = dict(np.load(path))
    data["code_count"] = data["code_count"][:1]
    with open(tmp_path / "bad.npz", "wb") as handle:
        np.savez(handle, **data)
    with pytest.raises(TemplateFormatError, match="inconsistent"):
        FingerprintIndex.load(tmp_path / "bad.npz")
    # an index of format 1 (codes without their minutia's index) is refused, not searched wrongly
    data = dict(np.load(path))
    data["format_version"] = np.array(1, dtype=np.int32)
    with open(tmp_path / "old.npz", "wb") as handle:
        np.savez(handle, **data)
    with pytest.raises(TemplateFormatError, match="index format version"):
        FingerprintIndex.load(tmp_path / "old.npz")


# -- several fingers per person ---------------------------------------------------------------------------


def test_search_person_finds_the_person_and_fuses_evidence(prints):
    index = FingerprintIndex(threads=2)
    people = [f"person{i}" for i in range(20) for _ in range(2)]
    # person i enrolls synthetic fingers 2i (as position 2) and 2i+1 (as position 7)
    index.add(people, [prints.template(2 * f) for f in range(40)], positions=[2, 7] * 20)
    probes = {2: prints.template(2 * 10 + 1), 7: prints.template(2 * 11 + 1)}  # person5's second impressions
    found = index.search_person(probes, k=3)
    assert found[0].id == "person5"
    assert [p for p, _ in found[0].finger_scores] == [2, 7]
    assert found[0].score == pytest.approx(fused_evidence(s for _, s in found[0].finger_scores))
    assert [c.score for c in found] == sorted((c.score for c in found), reverse=True)
    # positions restrict the search: finger 7's probe never matches a position-2 finger
    assert all(c.position == 7 for c in index.search(probes[7], k=5, position=7))


def test_person_best_is_the_per_person_maximum():
    rng = np.random.default_rng(5)
    scores = rng.integers(-1, 50, size=300).astype(np.int32)
    owner = rng.integers(0, 40, size=300).astype(np.int32)
    best = np.full(40, -1, dtype=np.int32)
    kernels._person_best(scores, owner, best)
    for person in range(40):
        mine = [s for s, o in zip(scores.tolist(), owner.tolist()) if o == person and s >= 0]
        assert best[person] == (max(mine) if mine else -1)


def exhaustive_person_search(people, gallery, positions, probes):
    """Every person's fused evidence from ``match`` of each probe finger with its fingers of that position."""
    out = {}
    for person, template, position in zip(people, gallery, positions):
        row = out.setdefault(person, {p: 0.0 for p in probes})
        for p, probe in probes.items():
            if p in (0, position):
                score = float(match_many(prepare(probe), [prepare(template)])[0])
                row[p] = max(row[p], score)
    return sorted(((fused_evidence(v.values()), sum(v.values()), person, v) for person, v in out.items()), key=lambda t: (-t[0], -t[1]))


def test_person_shortlist_covering_the_gallery_equals_the_exhaustive_person_search(prints):
    people = [f"person{i}" for i in range(20) for _ in range(2)]
    gallery = [prints.template(2 * f) for f in range(40)]
    positions = [2, 7] * 20
    index = FingerprintIndex(IndexParameters(person_shortlist=20, max_person_shortlist=20), threads=2)
    index.add(people, gallery, positions=positions)
    for person in (0, 7, 13):
        probes = {2: prints.template(4 * person + 1), 7: prints.template(4 * person + 3)}
        found = index.search_person(probes, k=20)
        expected = exhaustive_person_search(people, gallery, positions, probes)
        assert [c.id for c in found] == [e[2] for e in expected]
        assert [dict(c.finger_scores) for c in found] == [e[3] for e in expected]  # exact match() scores
        assert [c.score for c in found] == [e[0] for e in expected]


def test_person_shortlist_grows_only_without_confident_evidence(prints):
    people = [f"person{i}" for i in range(30) for _ in range(2)]
    index_args = (people, [prints.template(2 * f) for f in range(60)])

    def scored(**kw):
        index = FingerprintIndex(IndexParameters(**kw), threads=1)
        index.add(*index_args, positions=[2, 7] * 30)
        probes = {2: prints.template(4 * 9 + 1), 7: prints.template(4 * 9 + 3)}  # person9's second impressions
        return index.search_person(probes, k=1, every_scored=True)

    assert len(scored(person_shortlist=3, max_person_shortlist=12, confident_margin=100.0)) == 12  # 3 -> 6 -> 12
    small = scored(person_shortlist=3, max_person_shortlist=12, confident_margin=0.0)
    assert len(small) == 3 and small[0].id == "person9"  # log10(30) decades reached at once: no growth
    assert len(scored(person_shortlist=3, max_person_shortlist=3, confident_margin=100.0)) == 3
    # the fused first stage ranks the mate first, so the first 3 scored equal a fixed shortlist of 3
    assert scored(person_shortlist=3, max_person_shortlist=12, confident_margin=100.0)[0] == small[0]


def test_person_search_after_removing_a_persons_first_finger(prints):
    people = [f"person{i}" for i in range(10) for _ in range(2)]
    gallery, positions = [prints.template(2 * f) for f in range(20)], [2, 7] * 10
    index = FingerprintIndex(IndexParameters(person_shortlist=10, max_person_shortlist=10), threads=1)
    index.add(people, gallery, positions=positions)
    index.remove(["person4"], positions=[2])  # its first row goes; its position-7 finger stays
    kept = [n for n in range(20) if n != 8]
    probes = {2: prints.template(17), 7: prints.template(19)}  # person4's second impressions
    expected = exhaustive_person_search([people[n] for n in kept], [gallery[n] for n in kept], [positions[n] for n in kept], probes)
    found = index.search_person(probes, k=10)
    assert [(c.id, dict(c.finger_scores)) for c in found] == [(e[2], e[3]) for e in expected]
    assert dict(next(c for c in found if c.id == "person4").finger_scores)[2] == 0.0
    index.compact()
    assert index.search_person(probes, k=10) == found


def test_trim_keeps_searches_and_frees_spare_rows(prints, tmp_path):
    index = FingerprintIndex(threads=1)
    ids = [f"f{i}" for i in range(60)]
    for lo in range(0, 60, 7):  # many small adds: the columns grow by doubling
        index.add(ids[lo : lo + 7], [prints.template(2 * i) for i in range(lo, min(lo + 7, 60))])
    index.remove(["f5"])
    before = [index.search(prints.template(i), k=3) for i in (1, 21, 41)]
    person_before = index.search_person({0: prints.template(21)}, k=3)
    assert index.capacity_nbytes > index.nbytes
    index.trim()
    assert index.capacity_nbytes == index.nbytes and len(index) == 59
    after = [index.search(prints.template(i), k=3) for i in (1, 21, 41)]
    assert after == before and index.search_person({0: prints.template(21)}, k=3) == person_before
    again = FingerprintIndex.load(index.save(tmp_path / "i.npz"), threads=1)
    assert again.nbytes == index.nbytes
    assert [again.search(prints.template(i), k=3) for i in (1, 21, 41)] == after


def test_one_strong_finger_outranks_several_weak_ones():
    strong = fused_evidence([0.9])
    assert strong > fused_evidence([threshold(0.05)] * 3)
    assert strong > fused_evidence([threshold(0.01)] * 2)
    assert fused_evidence([0.0, 0.0]) == 0.0


# -- errors -------------------------------------------------------------------------------------------------


def test_typed_errors(prints):
    index = FingerprintIndex(threads=1)
    t = prints.template(0)
    with pytest.raises(GalleryError, match="empty"):
        index.search(t)
    with pytest.raises(GalleryError, match="strings"):
        index.add([7], [t])  # type: ignore[list-item]
    for bad in ("", " x", "a" * 65, "line\nbreak"):
        with pytest.raises(GalleryError):
            index.add([bad], [t])
    with pytest.raises(GalleryError, match="already enrolled"):
        index.add(["x", "x"], [t, t])
    assert len(index) == 0  # all or none
    index.add(["x"], [t])
    with pytest.raises(GalleryError, match="already enrolled") as caught:
        index.add(["x"], [t])
    assert caught.value.reason == "exists"
    with pytest.raises(GalleryError, match="not enrolled") as caught:
        index.remove(["y"])
    assert caught.value.reason == "not-found"
    with pytest.raises(TemplateFormatError):
        index.add(["z"], ["not a template"])  # type: ignore[list-item]
    with pytest.raises(TemplateFormatError):
        index.search(b"\x00\x01")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        index.add(["z", "w"], [t])
    with pytest.raises(ConfigurationError):
        index.add(["z"], [t], positions=[11])
    with pytest.raises(ConfigurationError):
        index.add("z", [t])  # a string is not a sequence of ids
    for k in (0, -1, True, 2.5, "3"):
        with pytest.raises(ConfigurationError):
            index.search(t, k=k)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        index.search_person({}, k=1)
    with pytest.raises(ConfigurationError):
        index.search_person({12: t})
    with pytest.raises(ConfigurationError):
        FingerprintIndex(threads=0)
    with pytest.raises(ConfigurationError):
        FingerprintIndex(params="fast")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        IndexParameters(similarity_floor=56)  # 64-bit codes hold 56 descriptor bits
    with pytest.raises(ConfigurationError):
        IndexParameters(rotation_spread=16)
    with pytest.raises(ConfigurationError):
        IndexParameters(shortlist=0)
    assert len(index) == 1


def test_template_without_minutiae_is_searchable(prints):
    index = FingerprintIndex(threads=1)
    empty = FingerprintTemplate(300, 300, make_minutiae([], [], []))
    index.add(["empty", "real"], [empty, prints.template(0)])
    found = index.search(empty, k=2)
    assert [c.score for c in found] == [0.0, 0.0]
    best = index.search(prints.template(1), k=1)
    assert best == [Candidate("real", best[0].score, 0)] and best[0].score > 0.0


@pytest.mark.parametrize("module", [index_module, index_params])
def test_docstring_examples_run(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
