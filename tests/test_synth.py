"""Tests of the synthetic fingerprint generator (ektp_biometrics.synth)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage, stats

from ektp_biometrics import synth
from ektp_biometrics.errors import ConfigurationError, TemplateFormatError
from ektp_biometrics.fingerprint.template import MINUTIA_DTYPE, FingerprintTemplate, make_minutiae
from ektp_biometrics.synth import _kernels
from ektp_biometrics.synth import impression as imp
from ektp_biometrics.synth import master as mst

SMALL = (160, 160)


def _digest(items) -> str:
    h = hashlib.sha256()
    for item in items:
        h.update(item.image.tobytes())
        h.update(item.truth.minutiae.tobytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def clean_items():
    return list(synth.impressions(2, 2, seed=11, noise="clean", image_shape=(256, 256)))


# -- reproducibility ----------------------------------------------------------------------------


def test_same_seed_same_bytes():
    first = _digest(synth.impressions(1, 2, seed=5, image_shape=SMALL))
    second = _digest(synth.impressions(1, 2, seed=5, image_shape=SMALL))
    other = _digest(synth.impressions(1, 2, seed=6, image_shape=SMALL))
    assert first == second
    assert first != other


def test_generator_seed_is_reproducible():
    a = _digest(synth.impressions(1, 1, seed=np.random.default_rng(9), image_shape=SMALL))
    b = _digest(synth.impressions(1, 1, seed=np.random.default_rng(9), image_shape=SMALL))
    assert a == b


def test_finger_depends_only_on_seed_and_id():
    whole = synth.templates(6, 2, seed=3)
    part = synth.templates(3, 2, seed=3, first_finger=4)
    assert part.finger_id.tolist() == [4, 4, 5, 5, 6, 6]
    assert part.minutiae.tobytes() == whole.minutiae[whole.offsets[6] :].tobytes()
    assert np.array_equal(part.pattern_class, whole.pattern_class[6:])


def test_template_path_shares_identity_with_rendered_path():
    rendered = next(synth.impressions(1, 1, seed=21, image_shape=SMALL))
    fast = synth.templates(1, 1, seed=21, image_shape=SMALL)
    assert synth.PATTERN_CLASSES[int(fast.pattern_class[0])] == rendered.pattern_class


# -- the master model ---------------------------------------------------------------------------


def test_class_frequencies_follow_the_population():
    rng = np.random.default_rng(2024)
    n = 600
    classes = [mst.sample_identity(rng, (464, 368)).pattern_class for _ in range(n)]
    observed = np.bincount(classes, minlength=5)
    expected = np.asarray(synth.DEFAULT_PARAMETERS.class_frequencies) * n
    # Arches and tented arches are rare: pool them so every expected count is >= 5.
    observed = np.array([observed[0] + observed[1], *observed[2:]])
    expected = np.array([expected[0] + expected[1], *expected[2:]])
    assert stats.chisquare(observed, expected).pvalue > 0.001
    assert np.all(np.abs(observed / n - expected / n) < 0.06)


def _poincare_index(identity, centre, radius=10.0, steps=64) -> float:
    angles = np.linspace(0, 2 * np.pi, steps, endpoint=False)
    rows = centre[0] - radius * np.sin(angles)  # counter-clockwise as displayed
    cols = centre[1] + radius * np.cos(angles)
    theta = mst.orientation_at(identity, rows, cols)
    turn = np.diff(np.append(theta, theta[0]))
    turn = (turn + np.pi / 2) % np.pi - np.pi / 2  # orientations are modulo pi
    return float(turn.sum() / (2 * np.pi))


@pytest.mark.parametrize("seed", range(12))
def test_singular_points_have_their_poincare_index(seed):
    identity = mst.sample_identity(np.random.default_rng(seed), (464, 368))
    expected = {0: (0, 0), 1: (1, 1), 2: (1, 1), 3: (1, 1), 4: (2, 2)}[identity.pattern_class]
    assert (len(identity.cores), len(identity.deltas)) == expected
    for core in identity.cores:
        assert _poincare_index(identity, core, radius=4.0) == pytest.approx(0.5, abs=1e-6)
    for delta in identity.deltas:
        assert _poincare_index(identity, delta, radius=4.0) == pytest.approx(-0.5, abs=1e-6)
    # Away from singular points the field is smooth: index 0 around a far point.
    assert _poincare_index(identity, (40.0, 40.0), radius=6.0) == pytest.approx(0.0, abs=1e-6)


def test_loop_delta_side_matches_class():
    for seed in range(40):
        identity = mst.sample_identity(np.random.default_rng(seed), (464, 368))
        if identity.pattern_class in (2, 3):
            side = identity.deltas[0, 1] - identity.cores[0, 1]
            assert (side > 0) == (identity.pattern_class == 2)


def _naive_response(current, o_bin, p_bin, bank, gain):
    """The growth filter at every pixel, as plain float32 array arithmetic in the kernel's order.

    Taps are added one at a time (mirrored taps of the point-symmetric kernel summed first), so
    every element sees the same IEEE operations as a vector lane of ``_kernels.grow_ridges``.
    """
    side = bank.shape[2]
    radius = side // 2
    rows, cols = current.shape
    padded = np.pad(current, radius)

    def window(i, j):
        return padded[i : i + rows, j : j + cols]

    weights = bank[o_bin, p_bin]  # (rows, cols, side, side)
    acc = np.zeros((rows, cols), dtype=np.float32)
    for i in range(radius):
        for j in range(side):
            acc = acc + weights[:, :, i, j] * (window(i, j) + window(side - 1 - i, side - 1 - j))
    for j in range(radius):
        acc = acc + weights[:, :, radius, j] * (window(radius, j) + window(radius, side - 1 - j))
    acc = acc + weights[:, :, radius, radius] * window(radius, radius)
    return np.clip(gain * acc.astype(np.float64), -1.0, 1.0).astype(np.float32)


def _naive_grow(image, o_bin, p_bin, mask, bank, gain, iterations, polish, tolerance):
    """Slow obvious version of ``_kernels.grow_ridges``: the same two phases, whole-array steps."""
    radius = bank.shape[2] // 2
    size = 2 * radius + 1
    current = image.astype(np.float32).copy()
    count = int(mask.sum())
    filled = int((mask & (np.abs(current) > 0.05)).sum())
    polished = 0
    for _ in range(iterations):
        growing = filled < 0.98 * count
        busy = mask.copy()
        if growing:  # only near a growth front: some signal and some unfilled finger in the window
            near_signal = ndimage.maximum_filter(current != 0, size=size, mode="constant")
            near_gap = ndimage.maximum_filter(mask & (np.abs(current) <= 0.05), size=size, mode="constant")
            busy &= near_signal & near_gap
        updated = np.where(busy, _naive_response(current, o_bin, p_bin, bank, gain), current)
        change = float(np.abs(updated - current)[busy].sum())
        filled = int((mask & (np.abs(updated) > 0.05)).sum())
        current = updated
        if not growing:
            polished += 1
            if polished >= polish or change < tolerance * count:
                break
    return current


@pytest.mark.parametrize("radius", [7, 3])  # 7: the unrolled filter; 3: the plain loop for other widths
def test_growth_kernel_matches_naive_growth(radius):
    rng = np.random.default_rng(1)
    shape = (44, 52)
    bank = mst.gabor_bank(0.42, 0.55)
    if radius != 7:
        bank = np.ascontiguousarray(bank[:, :, 7 - radius : 8 + radius, 7 - radius : 8 + radius])
    o_bin = rng.integers(0, bank.shape[0], size=shape)
    p_bin = rng.integers(0, bank.shape[1], size=shape)
    o_bin[10:30, 5:45] = 7  # long runs sharing a kernel (vector path) beside single pixels
    p_bin[10:30, 5:45] = 20
    mask = rng.uniform(size=shape) < 0.9
    seeds = np.zeros(shape, dtype=np.float32)
    seeds[rng.integers(0, shape[0], 6), rng.integers(0, shape[1], 6)] = 1.0
    # Sparse seeds: several front-only passes, then the whole-mask polish passes.
    fast = _kernels.grow_ridges(seeds, o_bin, p_bin, mask, bank, 10.0, 12, 3, 1e-3)
    assert np.array_equal(fast, _naive_grow(seeds, o_bin, p_bin, mask, bank, 10.0, 12, 3, 1e-3))
    # A filled start: straight to the polish passes.
    filled = rng.uniform(0.1, 1.0, size=shape).astype(np.float32) * rng.choice([-1, 1], size=shape)
    fast = _kernels.grow_ridges(filled, o_bin, p_bin, mask, bank, 2.0, 2, 2, 0.0)
    assert np.array_equal(fast, _naive_grow(filled, o_bin, p_bin, mask, bank, 2.0, 2, 2, 0.0))


def test_gabor_bank_is_point_symmetric():
    bank = mst.gabor_bank(0.42, 0.55)
    assert np.array_equal(bank, bank[:, :, ::-1, ::-1])  # the growth kernel shares mirrored taps


def _naive_crossing_numbers(skeleton):
    found = []
    ring = [(0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1), (-1, 0), (-1, 1)]
    for r in range(1, skeleton.shape[0] - 1):
        for c in range(1, skeleton.shape[1] - 1):
            if skeleton[r, c]:
                values = [int(skeleton[r + dr, c + dc]) for dr, dc in ring]
                cn = sum(abs(values[k] - values[(k + 1) % 8]) for k in range(8)) // 2
                if cn in (1, 3):
                    found.append((r, c, 1 if cn == 1 else 2))
    return found


def test_crossing_number_kernel_matches_naive():
    from skimage.morphology import skeletonize

    master = synth.make_master(1, seed=8, image_shape=SMALL)
    skeleton = skeletonize(master.ridges > 0).astype(np.uint8)
    fast = [tuple(int(v) for v in row) for row in _kernels.crossing_number_minutiae(skeleton, 1)]
    assert fast == _naive_crossing_numbers(skeleton)


def test_master_minutiae_lie_on_the_master_skeleton():
    from skimage.morphology import skeletonize

    master = synth.make_master(2, seed=8, image_shape=(200, 200))
    skeleton = skeletonize(master.ridges > 0)
    assert 15 <= master.minutiae.size <= 120
    points = np.array([(r, c) for r, c, _ in _naive_crossing_numbers(skeleton.astype(np.uint8))])
    for m in master.minutiae:
        assert skeleton[int(m["row"]), int(m["col"])]
        assert np.min(np.hypot(points[:, 0] - m["row"], points[:, 1] - m["col"])) == 0


# -- impressions --------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(0, 383), st.floats(0, 287))
def test_truth_map_inverts_the_rendering_map(seed, row, col):
    g = imp.sample_geometry(np.random.default_rng(seed), (384, 288), (464, 368))
    mr, mc = imp.image_to_master(np.array([row]), np.array([col]), g)
    pr, pc = imp.master_to_image(mr, mc, g)
    assert abs(pr[0] - row) < 1e-4 and abs(pc[0] - col) < 1e-4


def _skeleton_minutiae_of(image):
    """Independent reading of an impression: blur, threshold halfway between ink and paper, thin."""
    from skimage.morphology import skeletonize

    smooth = ndimage.gaussian_filter(image.astype(np.float64), 1.2)
    p = synth.DEFAULT_PARAMETERS
    ridges = smooth < (p.ridge_level + p.valley_level) / 2
    skeleton = skeletonize(ridges).astype(np.uint8)
    return np.array(_naive_crossing_numbers(skeleton), dtype=float).reshape(-1, 3)


def test_truth_lands_on_endings_and_bifurcations_of_the_image(clean_items):
    # A skeleton ending retracts by up to half a ridge width, and blur, pores, pressure and the
    # local stretch of the skin model move forks a little, so "lands on" means within 1.25 mean
    # ridge periods (8.25 px, well inside the 12 px of the extractor acceptance), same kind.
    tolerance = 1.25 * synth.DEFAULT_PARAMETERS.ridge_period_mean
    near = same_kind = total = 0
    for item in clean_items:
        found = _skeleton_minutiae_of(item.image)
        truth = item.truth.minutiae
        for m in truth:
            total += 1
            distance = np.hypot(found[:, 0] - m["row"], found[:, 1] - m["col"])
            nearest = int(np.argmin(distance))
            if distance[nearest] <= tolerance:
                near += 1
                same_kind += int(found[nearest, 2] == m["kind"])
    assert total >= 40  # enough truth for the fractions below to mean something
    assert near / total >= 0.93
    assert same_kind / total >= 0.75  # chance would be about 0.5; pores and blur flip a few


def test_truth_directions_follow_the_ridges_of_the_image(clean_items):
    # The ridge flow of the image (gradient structure tensor) agrees with each truth direction mod pi.
    errors = []
    for item in clean_items:
        image = item.image.astype(np.float64)
        gr = ndimage.sobel(image, 0)
        gc = ndimage.sobel(image, 1)
        jrr, jcc, jrc = (ndimage.gaussian_filter(a, 4.0) for a in (gr * gr, gc * gc, gr * gc))
        # Gradient angle in display terms (x = col, y = -row); ridges run perpendicular to it.
        gradient = 0.5 * np.arctan2(-2 * jrc, jcc - jrr)
        for m in item.truth.minutiae:
            r, c = int(m["row"]), int(m["col"])
            ridge = gradient[r, c] + np.pi / 2
            diff = (float(m["direction"]) - ridge + np.pi / 2) % np.pi - np.pi / 2
            errors.append(abs(diff))
    assert np.median(errors) < np.deg2rad(12)


def test_impression_items_are_well_formed(clean_items):
    for item in clean_items:
        assert item.image.dtype == np.uint8 and item.image.shape == (256, 256)
        assert not item.image.flags.writeable
        assert isinstance(item.truth, FingerprintTemplate)
        assert (item.truth.width, item.truth.height, item.truth.resolution) == (256, 256, 500)
        assert item.pattern_class in synth.PATTERN_CLASSES
        assert set(np.unique(item.truth.kind)) <= {1, 2}
    assert [(i.finger_id, i.index) for i in clean_items] == [(1, 1), (1, 2), (2, 1), (2, 2)]


def test_noisy_impressions_are_noisier():
    clean = next(synth.impressions(1, 1, seed=4, noise="clean", image_shape=SMALL)).image.astype(float)
    noisy = next(synth.impressions(1, 1, seed=4, noise="noisy", image_shape=SMALL)).image.astype(float)
    # High-frequency energy: residual after a small blur.
    def roughness(a):
        return float(np.std(a - ndimage.gaussian_filter(a, 1.0)))

    assert roughness(noisy) > 1.3 * roughness(clean)


# -- template-only path -------------------------------------------------------------------------


def test_template_set_layout(tmp_path):
    ts = synth.templates(7, 3, seed=2)
    assert len(ts) == 21
    assert ts.finger_id.dtype == np.int64 and ts.finger_id.shape == (21,)
    assert ts.index.dtype == np.int32 and ts.index.tolist()[:4] == [1, 2, 3, 1]
    assert ts.pattern_class.dtype == np.uint8 and ts.pattern_class.max() <= 4
    assert ts.offsets.dtype == np.int64 and ts.offsets.shape == (22,) and ts.offsets[0] == 0
    assert np.all(np.diff(ts.offsets) >= 0) and ts.offsets[-1] == ts.minutiae.size
    assert ts.minutiae.dtype == MINUTIA_DTYPE
    for i in (0, 20):
        t = ts.template(i)
        assert isinstance(t, FingerprintTemplate) and (t.height, t.width) == ts.image_shape
    path = ts.save(tmp_path / "g.npz")
    back = synth.TemplateSet.load(path)
    assert back.minutiae.tobytes() == ts.minutiae.tobytes() and back.image_shape == ts.image_shape


def test_template_counts_resemble_rendered_truth():
    fast = synth.templates(40, 1, seed=6, extractor_noise=False)
    per_template = np.diff(fast.offsets)
    assert 15 <= per_template.mean() <= 60


def test_gallery_load_rejects_bad_files(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(TemplateFormatError):
        synth.TemplateSet.load(bad)
    ts = synth.templates(2, 1, seed=2)
    good = ts.save(tmp_path / "good.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(good[: len(good) // 2])
    with pytest.raises(TemplateFormatError):
        synth.TemplateSet.load(tmp_path / "cut.npz")
    np.savez(tmp_path / "wrong.npz", format_version=np.array(99), image_shape=np.array(ts.image_shape), finger_id=ts.finger_id,
             index=ts.index, pattern_class=ts.pattern_class, offsets=ts.offsets, minutiae=ts.minutiae)  # fmt: skip
    with pytest.raises(TemplateFormatError, match="version"):
        synth.TemplateSet.load(tmp_path / "wrong.npz")


# -- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"fingers": 0},
        {"fingers": 2.5},
        {"per_finger": -1},
        {"per_finger": True},
        {"seed": None},
        {"seed": "7"},
        {"seed": -3},
        {"noise": "dirty"},
        {"noise": 1.5},
        {"image_shape": (10, 10)},
        {"image_shape": "big"},
        {"params": {"max_rotation": 0.1}},
        {"first_finger": 0},
    ],
)
def test_bad_arguments_raise_configuration_error(kwargs):
    call = {"fingers": 1, "per_finger": 1, "seed": 1, **kwargs}
    with pytest.raises(ConfigurationError):
        next(synth.impressions(**call))
    if "noise" not in kwargs:
        with pytest.raises(ConfigurationError):
            synth.templates(**call)


def test_bad_parameters_raise():
    with pytest.raises(ConfigurationError):
        synth.SynthParameters(class_frequencies=(0.5, 0.5, 0.5, 0.0, 0.0))
    with pytest.raises(ConfigurationError):
        synth.SynthParameters(max_rotation=-1.0)
    with pytest.raises(ConfigurationError):
        synth.SynthParameters(contact_min=0.9, contact_max=0.5)


# -- evaluation ---------------------------------------------------------------------------------


def test_pairing_is_one_to_one_and_respects_tolerances():
    truth = make_minutiae([10, 10, 80], [10, 14, 80], [0.0, 0.0, 1.0])
    found = make_minutiae([11, 80, 80], [11, 80, 100], [0.1, 1.0 + np.deg2rad(35), 1.0])
    pairs = synth.pair_minutiae(truth, found)
    assert pairs.tolist() == [[0, 0]]  # one found point cannot serve two truths; 35 deg and 20 px are too far


def test_evaluate_extractor_scores_truth_and_noise():
    known = {item.image.tobytes(): item.truth for item in synth.impressions(1, 2, seed=3, noise="clean", image_shape=SMALL)}

    def perfect(image):
        return known[image.tobytes()]

    def nothing(image):
        return np.empty(0, dtype=MINUTIA_DTYPE)

    assert synth.evaluate_extractor(perfect, fingers=1, per_finger=2, seed=3, image_shape=SMALL)["recall"] == 1.0
    assert synth.evaluate_extractor(nothing, fingers=1, per_finger=1, seed=3, image_shape=SMALL)["recall"] == 0.0
    with pytest.raises(ConfigurationError):
        synth.evaluate_extractor("extract", fingers=1, per_finger=1)


def test_project_extractor_finds_the_truth():
    extract_module = pytest.importorskip("ektp_biometrics.fingerprint.extract", reason="the extractor is not installed")
    result = synth.evaluate_extractor(lambda im: extract_module.extract(im, 500), fingers=2, per_finger=2, seed=12, noise="clean")
    assert result["recall"] >= 0.75 and result["precision"] >= 0.75


# -- command line -------------------------------------------------------------------------------


def test_cli_writes_fvc_named_images_and_truth(tmp_path):
    from PIL import Image

    from ektp_biometrics.cli import main

    assert main(["synth", "--fingers", "2", "--impressions", "2", "--seed", "4", "--out", str(tmp_path), "--size", "160", "160", "--noise", "clean"]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(f"{f}_{i}.{ext}" for f in (1, 2) for i in (1, 2) for ext in ("png", "json", "iso"))
    expected = list(synth.impressions(2, 2, seed=4, noise="clean", image_shape=SMALL))
    for item in expected:
        stem = tmp_path / f"{item.finger_id}_{item.index}"
        assert np.array_equal(np.asarray(Image.open(stem.with_suffix(".png"))), item.image)
        record = json.loads(stem.with_suffix(".json").read_text())
        assert record["pattern_class"] == item.pattern_class and len(record["minutiae"]) == len(item.truth)
        iso = FingerprintTemplate.from_bytes(stem.with_suffix(".iso").read_bytes(), "iso19794-2")
        assert len(iso) == len(item.truth)
        assert np.allclose(iso.col, np.round(item.truth.col), atol=1.0)


def test_cli_templates_only_and_errors(tmp_path, capsys):
    from ektp_biometrics.cli import main

    assert main(["synth", "--fingers", "5", "--impressions", "2", "--seed", "1", "--out", str(tmp_path), "--templates-only"]) == 0
    gallery = synth.TemplateSet.load(tmp_path / "gallery.npz")
    assert len(gallery) == 10
    assert main(["synth", "--fingers", "0", "--impressions", "2", "--seed", "1", "--out", str(tmp_path)]) == 1
    assert "fingers must be" in capsys.readouterr().err


def test_growth_kernel_is_thread_safe():
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(3)
    shape = (48, 48)
    bank = mst.gabor_bank(0.42, 0.55)
    seeds = (rng.uniform(size=shape) < 0.01).astype(np.float32)
    o_bin = np.full(shape, 5, dtype=np.int64)
    p_bin = np.full(shape, 12, dtype=np.int64)
    mask = np.ones(shape, dtype=bool)
    expected = _kernels.grow_ridges(seeds, o_bin, p_bin, mask, bank, 10.0, 12, 2, 1e-3)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: _kernels.grow_ridges(seeds, o_bin, p_bin, mask, bank, 10.0, 12, 2, 1e-3), range(4)))
    assert all(np.array_equal(r, expected) for r in results)


def _spectral_periods(image: np.ndarray, block: int = 32) -> np.ndarray:
    """Ridge period of every textured block from the peak of its zero-padded spectrum."""
    window = np.outer(np.hanning(block), np.hanning(block))
    size = 4 * block
    out = []
    for r in range(0, image.shape[0] - block + 1, block):
        for c in range(0, image.shape[1] - block + 1, block):
            patch = image[r : r + block, c : c + block].astype(np.float64)
            if patch.std() < 20:
                continue
            spectrum = np.abs(np.fft.fftshift(np.fft.fft2((patch - patch.mean()) * window, s=(size, size))))
            spectrum[size // 2 - 4 : size // 2 + 5, size // 2 - 4 : size // 2 + 5] = 0
            peak = np.unravel_index(np.argmax(spectrum), spectrum.shape)
            radius = np.hypot(peak[0] - size // 2, peak[1] - size // 2)
            if radius >= 5:
                out.append(size / radius)
    return np.asarray(out)


@pytest.mark.realdata
def test_ridge_period_and_grey_levels_resemble_fvc2002_db4(data_root):
    from PIL import Image

    folder = data_root / "fingerprints" / "fvc2002_db4_b"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    real = [np.asarray(Image.open(p)) for p in sorted(folder.glob("*.tif"))[::8]]
    ours = [item.image for item in synth.impressions(3, 1, seed=31, image_shape=(256, 256))]
    real_period = np.median(np.concatenate([_spectral_periods(im) for im in real]))
    our_period = np.median(np.concatenate([_spectral_periods(im) for im in ours]))
    assert abs(our_period / real_period - 1) < 0.15
    # Dark ridges on a light field: the same ordering of grey-level percentiles.
    for q in (10, 50, 90):
        real_q = np.mean([np.percentile(im, q) for im in real])
        our_q = np.mean([np.percentile(im, q) for im in ours])
        assert abs(our_q - real_q) < 60


def test_template_output_does_not_depend_on_workers(monkeypatch):
    from ektp_biometrics.synth import fast

    monkeypatch.setattr(fast, "_CHUNK", 40)  # several chunks from few fingers
    single = synth.templates(100, 2, seed=13, workers=1)
    seen = []
    double = synth.templates(100, 2, seed=13, workers=2, progress=seen.append)
    assert sum(seen) == 100
    assert double.minutiae.tobytes() == single.minutiae.tobytes()
    assert np.array_equal(double.offsets, single.offsets) and np.array_equal(double.pattern_class, single.pattern_class)
