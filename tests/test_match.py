"""Tests of the MCC matcher: the Numba kernels against tests/naive_mcc.py, and matcher properties."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import math

import naive_mcc
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ektp_biometrics.errors import ConfigurationError, TemplateFormatError
from ektp_biometrics.fingerprint import _mcc_kernels as kernels
from ektp_biometrics.fingerprint.match import (
    MatchGallery,
    MatchTemplate,
    _cell_layout,
    _kernel_params,
    fmr_at,
    match,
    match_many,
    prepare,
    prepare_gallery,
    threshold,
)
from ektp_biometrics.fingerprint.match_params import (
    DEFAULT_MATCH_PARAMETERS,
    MatchParameters,
)
from ektp_biometrics.fingerprint.template import FingerprintTemplate, make_minutiae

SIZE = 500


def random_template(rng: np.random.Generator, n: int = 40, size: int = SIZE, margin: int = 100) -> FingerprintTemplate:
    rows = rng.uniform(margin, size - margin, n)
    cols = rng.uniform(margin, size - margin, n)
    return FingerprintTemplate(size, size, make_minutiae(rows, cols, rng.uniform(0, 2 * np.pi, n)))


def transformed(
    t: FingerprintTemplate,
    rng: np.random.Generator,
    angle: float,
    shift: tuple[float, float] = (0.0, 0.0),
    jitter: float = 0.0,
    direction_jitter: float = 0.0,
) -> FingerprintTemplate:
    """Rotate ``t`` by ``angle`` (counter-clockwise as displayed) about the image centre, then shift."""
    centre = SIZE / 2
    x = t.col.astype(float) - centre
    y = -(t.row.astype(float) - centre)
    c, s = math.cos(angle), math.sin(angle)
    x2, y2 = c * x - s * y, s * x + c * y
    n = len(t)
    cols = x2 + centre + shift[1] + rng.normal(0, jitter, n)
    rows = -y2 + centre + shift[0] + rng.normal(0, jitter, n)
    keep = (rows >= 0) & (rows <= SIZE - 1) & (cols >= 0) & (cols <= SIZE - 1)
    dirs = t.direction.astype(float) + angle + rng.normal(0, direction_jitter, n)
    return FingerprintTemplate(SIZE, SIZE, make_minutiae(rows[keep], cols[keep], dirs[keep]))


def frame(t: FingerprintTemplate) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return t.col.astype(np.float64), -t.row.astype(np.float64), t.direction.astype(np.float64)


# -- kernels against the naive reference ----------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cylinders_equal_naive(seed: int) -> None:
    rng = np.random.default_rng(seed)
    t = random_template(rng, n=12)
    params = DEFAULT_MATCH_PARAMETERS
    x, y, theta = frame(t)
    values, bits, cells, valid, raw = naive_mcc.cylinders(x, y, theta, params)
    a, b = _cell_layout(params)
    k_values, k_bits, k_cells, k_valid = kernels._build_cylinders(
        x, y, theta, a, b, params.cell_size, params.direction_bins, params.sigma_space, params.sigma_direction,
        params.cell_threshold, params.cell_steepness, params.hull_margin, params.cylinder_radius,
        params.min_valid_cell_fraction, params.min_neighbour_minutiae, True,
    )  # fmt: skip
    np.testing.assert_array_equal(k_cells, cells)
    np.testing.assert_array_equal(k_valid, valid)
    np.testing.assert_allclose(k_values.reshape(values.shape), values, atol=2e-4)
    clear = np.abs(raw - params.cell_threshold) > 1e-6  # bits of sums that sit on the threshold may differ by rounding
    np.testing.assert_array_equal(k_bits.reshape(bits.shape)[clear], bits[clear])
    assert bits.any() and not bits.all()
    # without the float cylinders: the same bits and validity, and no values
    no_values, bits_only, cells_only, valid_only = kernels._build_cylinders(
        x, y, theta, a, b, params.cell_size, params.direction_bins, params.sigma_space, params.sigma_direction,
        params.cell_threshold, params.cell_steepness, params.hull_margin, params.cylinder_radius,
        params.min_valid_cell_fraction, params.min_neighbour_minutiae, False,
    )  # fmt: skip
    assert no_values.shape == (len(x), 0)
    np.testing.assert_array_equal(bits_only, k_bits)
    np.testing.assert_array_equal(cells_only, k_cells)
    np.testing.assert_array_equal(valid_only, k_valid)


_CELL_OUTER = None


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 70),
    spread=st.sampled_from([40.0, 150.0, 400.0]),
    variant=st.sampled_from(
        [
            {},
            {"hull_margin": 0.0},
            {"hull_margin": 12.5, "direction_bins": 5},
            {"cells_per_side": 9, "sigma_space": 11.0},
            {"cylinder_radius": 40.0, "cells_per_side": 12, "min_valid_cell_fraction": 0.2},
        ]
    ),
)
def test_cylinders_equal_the_cell_outer_loop_bit_for_bit(seed: int, n: int, spread: float, variant: dict) -> None:
    """The neighbour-outer loop of _build_cylinders gives every bit, cell and float value of the
    cell-outer loop it replaced (the calibration tables were measured with those bits)."""
    global _CELL_OUTER
    if _CELL_OUTER is None:
        _CELL_OUTER = naive_mcc.cylinders_cell_outer()
    rng = np.random.default_rng(seed)
    params = dataclasses.replace(DEFAULT_MATCH_PARAMETERS, **variant)
    x, y = rng.uniform(0, spread, (2, n))
    theta = rng.uniform(0, 2 * np.pi, n)
    if n > 3:  # duplicated points and directions, and collinear ones, happen in real templates
        x[1], y[1], theta[2] = x[0], y[0], theta[0]
    a, b = _cell_layout(params)
    for with_values in (False, True):
        args = (
            x, y, theta, a, b, params.cell_size, params.direction_bins, params.sigma_space, params.sigma_direction,
            params.cell_threshold, params.cell_steepness, params.hull_margin, params.cylinder_radius,
            params.min_valid_cell_fraction, params.min_neighbour_minutiae, with_values,
        )  # fmt: skip
        for new, old in zip(kernels._build_cylinders(*args), _CELL_OUTER(*args)):
            assert new.dtype == old.dtype and new.shape == old.shape
            assert new.tobytes() == old.tobytes()


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 40), bins=st.integers(2, 9), cells=st.integers(1, 300))
def test_pack_valid_equals_pack_bits(seed: int, n: int, bins: int, cells: int) -> None:
    """prepare's one-pass packing equals packing the bits, the mask and the cells separately (NumPy packbits)."""
    rng = np.random.default_rng(seed)
    bits = rng.random((n, cells * bins)) < 0.1
    cell_valid = rng.random((n, cells)) < 0.8
    cylinder_valid = rng.random(n) < 0.7
    keep, words, set_bits, valid_cells = kernels._pack_valid(bits, cell_valid, cylinder_valid, bins)
    np.testing.assert_array_equal(keep, np.flatnonzero(cylinder_valid))
    n_words = -(-cells * bins // 64)
    kept = cell_valid[keep]
    expected = np.hstack([
        naive_mcc.pack_bits(np.ascontiguousarray(bits[keep]), n_words),
        naive_mcc.pack_bits(np.ascontiguousarray(np.repeat(kept, bins, axis=1)), n_words),
        naive_mcc.pack_bits(np.ascontiguousarray(kept), -(-cells // 64)),
    ])  # fmt: skip
    np.testing.assert_array_equal(words, expected)
    np.testing.assert_array_equal(set_bits, bits[keep].sum(axis=1))
    np.testing.assert_array_equal(valid_cells, kept.sum(axis=1))


@pytest.mark.parametrize("seed", [3, 4, 5, 6])
def test_local_similarity_and_score_equal_naive(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = random_template(rng, n=int(rng.integers(8, 20)))
    b = transformed(a, rng, angle=rng.uniform(0, 2 * np.pi), shift=(5, -5), jitter=2.0, direction_jitter=0.1)
    c = random_template(rng, n=15, margin=180)  # crowded, near the hull: partial masks
    variants = (
        DEFAULT_MATCH_PARAMETERS,
        MatchParameters(max_direction_difference=math.pi / 2, rotation_gate=math.pi),  # the paper's gate, one pass
        MatchParameters(direction_bins=5),  # 17 words: the kernel's generic path, not the 20-word one
    )
    for params in variants:
        packed = _kernel_params(params)[0]
        for u, v in ((a, b), (a, c), (c, b)):
            pu, pv = prepare(u, params), prepare(v, params)
            xu, yu, tu = frame(u)
            xv, yv, tv = frame(v)
            _, bits_u, cells_u, valid_u, _ = naive_mcc.cylinders(xu, yu, tu, params)
            _, bits_v, cells_v, valid_v, _ = naive_mcc.cylinders(xv, yv, tv, params)
            su, sv = np.flatnonzero(valid_u), np.flatnonzero(valid_v)
            np.testing.assert_array_equal(pu.index, su)
            expected = naive_mcc.local_similarity(
                tu[su], bits_u[su], cells_u[su], tv[sv], bits_v[sv], cells_v[sv], params
            )
            got = kernels._local_similarity_bits(pu.words, pu.minutia, pv.words, pv.minutia, packed)
            np.testing.assert_allclose(got, expected, atol=1e-6)
            expected_score = naive_mcc.lss_r_score(expected, xu[su], yu[su], tu[su], xv[sv], yv[sv], tv[sv], params)
            assert match(pu, pv, params) == pytest.approx(expected_score, rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("seed", [20, 21])
def test_whole_comparison_with_alignment_equals_naive(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = random_template(rng, n=14)
    b = transformed(a, rng, angle=rng.uniform(0, 2 * np.pi), shift=(8, 2), jitter=2.0, direction_jitter=0.1)
    c = random_template(rng, n=14)
    params = MatchParameters(align_weight=0.5)
    for u, v in ((a, b), (a, c)):
        expected = naive_mcc.match(*frame(u), *frame(v), params)
        assert match(u, v, params) == pytest.approx(expected, rel=1e-4, abs=1e-6)


def test_alignment_recovers_the_transform() -> None:
    rng = np.random.default_rng(22)
    a = random_template(rng)
    b = transformed(a, rng, angle=2.5, shift=(15, -25), jitter=1.0, direction_jitter=0.05)
    params = MatchParameters(align_weight=1.0)
    assert match(a, b, params) > 0.8
    assert match(a, random_template(rng), params) < 0.2


@pytest.mark.parametrize("seed", [30, 31, 32])
def test_fill_leaves_the_maxima_of_a_sweep(seed: int) -> None:
    """The row and column maxima found while filling the matrix are those a sweep over it finds
    (first index of the largest positive value), and give the ungated selection's pairs."""
    rng = np.random.default_rng(seed)
    a = random_template(rng, n=int(rng.integers(15, 40)), margin=int(rng.integers(80, 180)))
    b = transformed(a, rng, angle=rng.uniform(0, 2 * np.pi), shift=(4, 7), jitter=2.0, direction_jitter=0.1)
    packed, _, _, roots = _kernel_params(DEFAULT_MATCH_PARAMETERS)
    for u, v in ((a, b), (a, random_template(rng, n=25, margin=170))):
        pu, pv = prepare(u), prepare(v)
        na, nb = len(pu), len(pv)
        sim = np.empty((na, nb), np.float32)
        row_best, col_best, col_value = np.empty(na, np.int64), np.empty(nb, np.int64), np.empty(nb)
        kernels._fill_local_similarity(
            pu.words, pu.minutia, pv.words, pv.minutia, packed, roots, sim, row_best, col_best, col_value
        )
        np.testing.assert_array_equal(sim, kernels._local_similarity_bits(pu.words, pu.minutia, pv.words, pv.minutia, packed))
        positive_rows, positive_cols = sim.max(axis=1) > 0, sim.max(axis=0) > 0
        np.testing.assert_array_equal(row_best, np.where(positive_rows, sim.argmax(axis=1), -1))
        np.testing.assert_array_equal(col_best, np.where(positive_cols, sim.argmax(axis=0), -1))
        np.testing.assert_array_equal(col_value, np.where(positive_cols, sim.max(axis=0), 0.0))
        # the selection from these maxima equals the one that sweeps the matrix itself
        _, floats, ints = kernels._workspace(na, nb, 24)
        ints[:na], ints[na : na + nb], floats[:nb] = row_best, col_best, col_value
        taken_a, taken_b, count = kernels._take_pairs(sim, min(na, nb, 24), floats, ints)
        got = list(zip(taken_a[:count].tolist(), taken_b[:count].tolist()))
        assert got == naive_mcc.select_pairs(sim.astype(np.float64), min(na, nb, 24))


def test_partial_masks_are_exercised() -> None:
    rng = np.random.default_rng(7)
    p = prepare(random_template(rng, n=15, margin=180))
    full = _cell_layout(DEFAULT_MATCH_PARAMETERS)[0].size
    assert (p.minutia[kernels.M_VALID_CELLS] < full).any() and (p.minutia[kernels.M_VALID_CELLS] == full).any()


def test_convex_hull_of_degenerate_sets() -> None:
    assert kernels._convex_hull(np.array([3.0]), np.array([4.0])).tolist() == [[3.0, 4.0]]
    line = kernels._convex_hull(np.array([0.0, 1.0, 2.0]), np.array([0.0, 1.0, 2.0]))
    assert sorted(map(tuple, line)) == [(0.0, 0.0), (2.0, 2.0)]
    assert kernels._distance_to_hull(1.0, 0.0, line) == pytest.approx(math.sqrt(0.5))
    square = kernels._convex_hull(np.array([0.0, 10, 10, 0, 5]), np.array([0.0, 0, 10, 10, 5]))
    assert len(square) == 4
    assert kernels._distance_to_hull(5.0, 5.0, square) == 0.0
    assert kernels._distance_to_hull(13.0, 14.0, square) == pytest.approx(5.0)


# -- properties -----------------------------------------------------------------------------------


@settings(max_examples=12, deadline=None)
@given(angle=st.floats(0, 2 * math.pi), seed=st.integers(0, 2**16))
def test_any_rotation_and_translation_scores_far_above_impostors(angle: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = random_template(rng)
    b = transformed(a, rng, angle, shift=tuple(rng.uniform(-40, 40, 2)), jitter=2.0, direction_jitter=0.1)
    genuine = match(a, b)
    impostor = max(match(a, random_template(rng)) for _ in range(3))
    assert genuine > 0.25
    assert impostor < 0.08
    assert genuine > 4 * impostor


def test_identical_templates_score_near_one() -> None:
    t = random_template(np.random.default_rng(8))
    assert match(t, t) > 0.99


@pytest.mark.parametrize("seed", range(4))
def test_symmetric_up_to_noise(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = random_template(rng)
    b = transformed(a, rng, 0.7, shift=(10, 3), jitter=3.0, direction_jitter=0.15)
    c = random_template(rng)
    assert match(a, b) == pytest.approx(match(b, a), abs=0.02)
    assert match(a, c) == pytest.approx(match(c, a), abs=0.02)


def test_partial_overlap_still_matches() -> None:
    rng = np.random.default_rng(9)
    a = random_template(rng, n=60, margin=40)
    crop = a.minutiae[a.col < 320]  # about two thirds of the print
    b = FingerprintTemplate(SIZE, SIZE, crop)
    assert match(a, b) > 0.5
    assert match(b, random_template(rng, n=60, margin=40)) < 0.08


def test_resolution_is_normalized() -> None:
    rng = np.random.default_rng(10)
    a = random_template(rng)
    m = a.minutiae.copy()
    m["row"] *= 2
    m["col"] *= 2
    double = FingerprintTemplate(2 * SIZE, 2 * SIZE, m, resolution=1000)
    assert match(a, double) == pytest.approx(match(a, a), abs=1e-6)


@pytest.mark.parametrize("n", [0, 1, 2])
def test_tiny_templates_score_zero(n: int) -> None:
    rng = np.random.default_rng(11)
    tiny = random_template(rng, n=n)
    assert match(tiny, random_template(rng)) == 0.0
    assert match(tiny, tiny) == 0.0
    assert len(prepare(tiny)) == 0


def test_invalid_input_raises_typed_errors() -> None:
    t = random_template(np.random.default_rng(12))
    with pytest.raises(TemplateFormatError):
        match(t, np.zeros(3))  # type: ignore[arg-type]
    with pytest.raises(TemplateFormatError):
        prepare("not a template")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        match(t, t, params={"cells_per_side": 8})  # type: ignore[arg-type]
    other = MatchParameters(cells_per_side=8)
    with pytest.raises(ConfigurationError, match="prepared with other MatchParameters"):
        match(prepare(t), prepare(t, other))
    with pytest.raises(ConfigurationError):
        MatchParameters(sigma_space=float("nan"))
    with pytest.raises(ConfigurationError):
        MatchParameters(min_pairs=5, max_pairs=4)


def test_prepared_template_is_read_only_and_reports_memory() -> None:
    p = prepare(random_template(np.random.default_rng(13)))
    assert isinstance(p, MatchTemplate)
    with pytest.raises(ValueError):
        p.words[0, 0] = 1
    assert p.nbytes > p.words.nbytes > 0
    assert "valid cylinders" in repr(p)


def test_match_many_equals_match() -> None:
    rng = np.random.default_rng(14)
    probe = prepare(random_template(rng))
    gallery = [prepare(random_template(rng, n=int(rng.integers(0, 50)))) for _ in range(6)]
    gallery.append(prepare(transformed(random_template(rng), rng, 1.0)))
    expected = [match(probe, g) for g in gallery]
    np.testing.assert_allclose(match_many(probe, gallery), expected, rtol=0, atol=0)
    assert match_many(probe, []).shape == (0,)


def test_stacked_gallery_equals_a_list() -> None:
    rng = np.random.default_rng(16)
    probes = [prepare(random_template(rng, n=int(rng.integers(0, 50)))) for _ in range(3)]
    templates = [prepare(random_template(rng, n=int(rng.integers(0, 50)))) for _ in range(8)]
    gallery = prepare_gallery(templates)
    assert isinstance(gallery, MatchGallery) and len(gallery) == 8 and gallery.nbytes > 0
    for p in probes:
        np.testing.assert_array_equal(match_many(p, gallery), match_many(p, templates))
    raw = [random_template(rng) for _ in range(2)]  # unprepared templates are prepared on the way
    np.testing.assert_array_equal(match_many(probes[0], prepare_gallery(raw)), match_many(probes[0], raw))
    assert match_many(probes[0], prepare_gallery([])).shape == (0,)
    with pytest.raises(ValueError):
        gallery.words[0, 0] = 1
    with pytest.raises(TemplateFormatError, match=r"gallery\[1\]"):
        prepare_gallery([templates[0], "not a template"])  # type: ignore[list-item]
    other = MatchParameters(cells_per_side=8)
    with pytest.raises(ConfigurationError, match="gallery was prepared with other MatchParameters"):
        match_many(prepare(raw[0], other), gallery, other)


def test_float_cylinders_only_when_asked() -> None:
    t = random_template(np.random.default_rng(17), n=20)
    lean, full = prepare(t), prepare(t, float_cylinders=True)
    assert lean.values is None
    assert full.values.dtype == np.float32 and full.values.shape[0] == len(full)
    assert ((full.values >= 0) & (full.values <= 1)).all() and (full.values > 0.5).any()
    # a cell's float value is above 1/2 exactly where its bit is set (the sigmoid's centre is the threshold)
    bits = np.unpackbits(full.words[:, : full.words.shape[1] // 2].view(np.uint8), axis=1, bitorder="little")
    np.testing.assert_array_equal(full.values > 0.5, bits[:, : full.values.shape[1]].astype(bool))
    np.testing.assert_array_equal(lean.words, full.words)
    assert lean.nbytes < full.nbytes / 4
    assert match(lean, lean) == match(full, full)


#: Scores of the matcher before the speed work of issue 3 (commit 2d00ef3), all pairs of three
#: seeded templates and a rotated, shifted, jittered copy of each: the kernels' layout changed,
#: the scores must not.
SCORES_BEFORE = [
    [0.9972254732090841, 0.5192159024965857, 0.012099087363674266, 0.012510261683857946, 0.012264861929497045, 0.0124527788012836],
    [0.5192159024965857, 0.9972254732090841, 0.012123290199187176, 0.01220326266155253, 0.011737210746451766, 0.011949682064919755],
    [0.012099087363674266, 0.012123290199187176, 0.9972254732090841, 0.4710424442878445, 0.014205408875343092, 0.013869302675435284],
    [0.012510261683857946, 0.01220326266155253, 0.4710424442878445, 0.9972254732090841, 0.012432786254191391, 0.012175403243023403],
    [0.012264861929497045, 0.011737210746451766, 0.014205408875343092, 0.012432786254191391, 0.9972254732090841, 0.6608867697327742],
    [0.0124527788012836, 0.011949682064919755, 0.013869302675435284, 0.012175403243023403, 0.6608867697327742, 0.9972254732090841],
]  # fmt: skip


def test_scores_are_those_of_the_previous_kernel() -> None:
    rng = np.random.default_rng(2026)
    templates = []
    for _ in range(3):
        a = random_template(rng, n=int(rng.integers(25, 50)), margin=int(rng.integers(60, 160)))
        b = transformed(a, rng, angle=rng.uniform(0, 2 * np.pi), shift=(6, -9), jitter=2.0, direction_jitter=0.1)
        templates += [a, b]
    gallery = prepare_gallery(templates)
    got = np.array([match_many(t, gallery) for t in templates])
    np.testing.assert_allclose(got, SCORES_BEFORE, rtol=0, atol=1e-12)


def test_threads_give_the_same_scores() -> None:
    rng = np.random.default_rng(15)
    probes = [prepare(random_template(rng)) for _ in range(4)]
    gallery = [prepare(random_template(rng)) for _ in range(20)]
    expected = [match_many(p, gallery) for p in probes]
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda p: match_many(p, gallery), probes))
    for e, g in zip(expected, got):
        np.testing.assert_array_equal(e, g)


# -- calibration ----------------------------------------------------------------------------------


def test_threshold_is_monotone_and_consistent_with_fmr_at() -> None:
    levels = [1e-1, 1e-2, 1e-3, 1e-4]
    thresholds = [threshold(f) for f in levels]
    assert thresholds == sorted(thresholds)
    for f, s in zip(levels, thresholds):
        assert fmr_at(s) <= f or s == thresholds[-1]
    assert 0.0 <= thresholds[0] <= 1.0


def test_calibration_table_was_measured_with_the_default_parameters() -> None:
    from ektp_biometrics.fingerprint import _match_calibration as table
    from ektp_biometrics.fingerprint.match import parameters_digest

    assert table.PARAMS_DIGEST == parameters_digest(), "defaults changed: rerun eval_verification.py --calibrate"
    assert list(table.SCORE) == sorted(table.SCORE)
    assert list(table.FMR) == sorted(table.FMR, reverse=True)
    assert table.FMR[-1] * table.IMPOSTOR_PAIRS < 1.5  # resolves down to a single impostor pair


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1, float("nan"), "0.001", True])
def test_threshold_rejects_bad_fmr(bad: object) -> None:
    with pytest.raises(ConfigurationError):
        threshold(bad)  # type: ignore[arg-type]


# -- real data ------------------------------------------------------------------------------------


@pytest.mark.realdata
def test_real_genuine_pairs_outscore_impostors(data_root) -> None:
    """Four impressions of two FVC2002 DB1 fingers: genuine scores sit far above impostor ones."""
    extract = pytest.importorskip("ektp_biometrics.fingerprint.extract", reason="extractor not available")
    folder = data_root / "fingerprints" / "fvc2002_db1_b"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    fingers = {f: [prepare(extract.extract_file(folder / f"{f}_{k}.tif")) for k in (1, 2, 3, 4)] for f in (101, 102)}
    genuine = [match(t[i], t[j]) for t in fingers.values() for i in range(4) for j in range(i + 1, 4)]
    impostor = [match(a, b) for a in fingers[101] for b in fingers[102]]
    assert np.median(genuine) > 3 * max(impostor)
    assert max(impostor) < threshold(1e-2)
    assert sum(g >= threshold(1e-2) for g in genuine) >= 9  # of 12
