"""Face package: templates, validation, evaluation maths, the 1:N index, embedder registry, the
fallback path without dlib, and the CLI.  Nothing here needs the real data sets."""

from __future__ import annotations

import doctest
import importlib
import logging
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ektp_biometrics.errors import (
    ConfigurationError,
    DependencyError,
    ExtractionError,
    ImageError,
    TemplateFormatError,
)
from ektp_biometrics.face import FaceIndex, FaceTemplate, _models, evaluation, match
from ektp_biometrics.face._image import as_rgb

FACE_MODULES = [
    "ektp_biometrics.face",
    "ektp_biometrics.face._image",
    "ektp_biometrics.face._models",
    "ektp_biometrics.face._blas",
    "ektp_biometrics.face.detection",
    "ektp_biometrics.face.alignment",
    "ektp_biometrics.face.quality",
    "ektp_biometrics.face.template",
    "ektp_biometrics.face.extraction",
    "ektp_biometrics.face.matching",
    "ektp_biometrics.face.index",
    "ektp_biometrics.face.evaluation",
    "ektp_biometrics.face.params",
    "ektp_biometrics.face.embedders",
    "ektp_biometrics.face.embedders.lbp",
    "ektp_biometrics.face.embedders.onnx",
]


@pytest.mark.parametrize("name", FACE_MODULES)
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


@pytest.fixture
def without_dlib(monkeypatch):
    """Behave as the core install does: the face extra absent."""

    def absent():
        raise DependencyError(f"dlib is not installed (simulated by the test); {_models.INSTALL_HINT}")

    monkeypatch.setattr(_models, "_dlib_modules", absent)
    from ektp_biometrics.face import embedders

    embedders._shared_instance.cache_clear()
    yield
    embedders._shared_instance.cache_clear()


def random_unit(rng, n, d=128):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# -- input validation ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "image, message",
    [
        (np.zeros((20, 20), np.uint8), "pixels a side"),
        (np.zeros((100, 100), np.uint16) + 300, "does not rescale"),
        (np.full((100, 100), np.nan, np.float32), "NaN"),
        (np.zeros((100, 100, 2), np.uint8), "shape"),
        (np.zeros((100, 100), bool), "dtype"),
        ("no/such/file.png", "no such file|cannot|not"),
        ([[1, 2], [3, 4]], "numpy array"),
    ],
)
def test_bad_images_raise_image_error(image, message):
    with pytest.raises(ImageError, match=message):
        as_rgb(image)


def test_grey_and_rgba_become_rgb_without_rescaling():
    grey = np.arange(100 * 100, dtype=np.int64).reshape(100, 100) % 256
    rgb = as_rgb(grey)
    assert rgb.dtype == np.uint8 and rgb.shape == (100, 100, 3) and (rgb[..., 1] == grey).all()
    rgba = np.dstack([rgb, np.full((100, 100), 7, np.uint8)])
    assert (as_rgb(rgba) == rgb).all()


def test_corrupt_file_raises_image_error(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    with pytest.raises(ImageError):
        as_rgb(path)


# -- templates -------------------------------------------------------------------------------------
def test_template_layout_is_the_documented_one():
    template = FaceTemplate([0.6, 0.8], "lbp", "1", quality=42)
    data = template.to_bytes()
    assert data[:4] == b"EKTF" and data[4] == 1 and data[5] == 1
    assert struct.unpack_from("<H", data, 6)[0] == 2
    assert data[8] == 3 and data[9:12] == b"lbp" and data[12] == 1 and data[13:14] == b"1" and data[14] == 42
    assert np.frombuffer(data[15:], "<f4").tolist() == pytest.approx([0.6, 0.8])
    assert FaceTemplate.from_bytes(data) == template


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3, allow_nan=False, width=32), min_size=1, max_size=64), st.none() | st.integers(0, 100))
def test_template_round_trip_is_exact(values, quality):
    if not any(values):
        values = values[:-1] + [1.0]
    template = FaceTemplate(values, "dlib-resnet", "v1", quality)
    assert np.linalg.norm(template.vector) == pytest.approx(1.0, abs=1e-5)
    again = FaceTemplate.from_bytes(template.to_bytes())
    assert again == template and again.vector.tobytes() == template.vector.tobytes()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=80))
def test_template_parser_never_crashes_on_garbage(data):
    try:
        FaceTemplate.from_bytes(b"EKTF" + data)
    except TemplateFormatError:
        pass


def test_template_parser_rejects_truncation_and_versions():
    data = FaceTemplate(np.ones(8), "lbp", "1").to_bytes()
    for cut in range(len(data)):
        with pytest.raises(TemplateFormatError):
            FaceTemplate.from_bytes(data[:cut])
    with pytest.raises(TemplateFormatError, match="version 2"):
        FaceTemplate.from_bytes(data[:4] + b"\x02" + data[5:])
    with pytest.raises(TemplateFormatError, match="should be"):
        FaceTemplate.from_bytes(data + b"\x00")


@pytest.mark.parametrize("vector", [[0.0, 0.0], [np.nan, 1.0], [[1.0, 2.0]], []])
def test_template_rejects_bad_vectors(vector):
    with pytest.raises(TemplateFormatError):
        FaceTemplate(vector, "lbp", "1")


def test_template_is_immutable():
    template = FaceTemplate([1.0, 2.0], "lbp", "1")
    with pytest.raises(ValueError):
        template.vector[0] = 5.0
    with pytest.raises(AttributeError):
        template.embedder = "other"  # type: ignore[misc]


def test_match_is_cosine_and_refuses_mixed_embedders():
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal(16), rng.standard_normal(16)
    expected = a @ b / np.linalg.norm(a) / np.linalg.norm(b)
    assert match(FaceTemplate(a, "lbp", "1"), FaceTemplate(b, "lbp", "1")) == pytest.approx(expected, abs=1e-6)
    with pytest.raises(ConfigurationError, match="re-extract"):
        match(FaceTemplate(a, "lbp", "1"), FaceTemplate(b, "lbp", "2"))


def test_threshold_table_is_monotone_and_interpolates():
    from ektp_biometrics.face.matching import false_match_rate, fmr_table, threshold

    for key in ("lbp", "dlib-resnet"):
        table = fmr_table(key)
        rates = [r for r, _ in table]
        scores = [t for _, t in table]
        assert rates == sorted(rates, reverse=True) and scores == sorted(scores)
        for rate, score in table:
            assert threshold(rate, key) == pytest.approx(score)
            assert false_match_rate(score, key) == pytest.approx(rate)
    middle = threshold(0.003, "lbp")
    assert threshold(0.005, "lbp") <= middle <= threshold(0.002, "lbp")
    with pytest.raises(ConfigurationError, match="outside"):
        threshold(1e-9, "lbp")
    with pytest.raises(ConfigurationError, match="no score-to-FMR"):
        threshold(0.01, "nobody")


# -- evaluation maths against the obvious loops ----------------------------------------------------
def test_evaluation_matches_naive_loops():
    rng = np.random.default_rng(5)
    labels = np.repeat(np.arange(6), 4)
    vectors = random_unit(rng, 24, 8) + np.repeat(random_unit(rng, 6, 8), 4, axis=0)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    scores = evaluation.pair_scores(vectors, labels)
    genuine = [vectors[i] @ vectors[j] for i in range(24) for j in range(i + 1, 24) if labels[i] == labels[j]]
    impostor = [vectors[i] @ vectors[j] for i in range(24) for j in range(i + 1, 24) if labels[i] != labels[j]]
    assert sorted(scores.genuine) == pytest.approx(sorted(genuine), abs=1e-6)
    assert sorted(scores.impostor) == pytest.approx(sorted(impostor), abs=1e-6)
    eer, at = evaluation.equal_error_rate(scores.genuine, scores.impostor)
    fnmr, fmr = np.mean(scores.genuine < at), np.mean(scores.impostor >= at)
    assert eer == pytest.approx((fnmr + fmr) / 2)
    for target in (0.5, 0.1, 0.02):
        t = evaluation.threshold_at_fmr(scores.impostor, target)
        assert np.mean(scores.impostor >= t) <= target
        # the threshold is the lowest such: the impostor score just below it would break the target
        below = scores.impostor[scores.impostor < t]
        assert below.size == 0 or np.mean(scores.impostor >= below.max()) > target


# -- 1:N index -------------------------------------------------------------------------------------
def brute_force(gallery, probes, k):
    scores = probes @ gallery.T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(scores, order, 1)


@pytest.mark.parametrize("threads", [1, 2])
def test_float32_index_equals_brute_force(threads):
    rng = np.random.default_rng(7)
    gallery, probes = random_unit(rng, 40000), random_unit(rng, 20)
    index = FaceIndex(128, threads=threads)
    index.add_many(np.arange(40000), gallery)
    order, scores = brute_force(gallery, probes, 5)
    for p, hits in enumerate(index.search_many(probes, k=5)):
        assert [c.id for c in hits] == order[p].tolist()
        assert [c.score for c in hits] == pytest.approx(scores[p].tolist(), abs=1e-5)
    assert index.search(probes[0], k=5) == index.search_many(probes[:1], k=5)[0]


def test_int8_index_keeps_the_best_match_and_scores_close():
    rng = np.random.default_rng(8)
    gallery = random_unit(rng, 5000)
    probes = gallery[:50] + 0.05 * random_unit(rng, 50)
    probes /= np.linalg.norm(probes, axis=1, keepdims=True)
    index = FaceIndex(128, quantize=True)
    index.add_many(np.arange(5000), gallery)
    _, scores = brute_force(gallery, probes, 1)
    for p, hits in enumerate(index.search_many(probes, k=3)):
        assert hits[0].id == p
        assert hits[0].score == pytest.approx(scores[p, 0], abs=3e-3)


def test_index_add_remove_and_errors():
    rng = np.random.default_rng(9)
    vectors = random_unit(rng, 10, 4)
    index = FaceIndex(4)
    for i, v in enumerate(vectors):
        index.add(f"p{i}", v)
    index.remove("p3")
    index.remove("p9")
    assert len(index) == 8 and "p3" not in index and "p8" in index
    assert index.search(vectors[3], k=10)[0].id != "p3"
    assert index.search(vectors[8], k=1)[0].id == "p8"
    with pytest.raises(ConfigurationError, match="already enrolled"):
        index.add("p0", vectors[0])
    with pytest.raises(KeyError):
        index.remove("p3")
    with pytest.raises(ConfigurationError, match="4 values"):
        index.add("x", np.ones(5))
    with pytest.raises(TemplateFormatError):
        index.add("x", np.zeros(4))
    with pytest.raises(ConfigurationError, match="k must"):
        index.search(vectors[0], k=0)
    assert FaceIndex(4).search(vectors[0]) == []
    mixed = FaceIndex(2)
    mixed.add("a", FaceTemplate([1.0, 0.0], "lbp", "1"))
    with pytest.raises(ConfigurationError, match="embedder"):
        mixed.add("b", FaceTemplate([1.0, 0.0], "dlib-resnet", "x"))


def test_index_kernels_release_the_gil_and_agree_across_threads():
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(10)
    gallery, probes = random_unit(rng, 3000), random_unit(rng, 8)
    index = FaceIndex(128, threads=1)
    index.add_many(range(3000), gallery)
    # 2 probes take the Numba streaming kernels: bit-identical from any thread
    expected = index.search_many(probes[:2], k=4)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: index.search_many(probes[:2], k=4), range(8)))
    assert all(r == expected for r in results)
    # 8 probes take BLAS block products, whose last float32 bit depends on OpenBLAS's threading
    # state in the calling thread (seen in CI: 0.32020530 vs 0.32020521): same candidates, same
    # order, scores equal to float32 rounding
    expected = index.search_many(probes, k=4)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: index.search_many(probes, k=4), range(8)))
    for result in results:
        assert [[c.id for c in row] for row in result] == [[c.id for c in row] for row in expected]
        np.testing.assert_allclose([[c.score for c in row] for row in result], [[c.score for c in row] for row in expected], rtol=0, atol=1e-6)


# -- embedders registry and the fallback path -------------------------------------------------------
def test_registry_knows_builtins_and_rejects_unknown_names():
    from ektp_biometrics.face import embedders

    assert {"dlib-resnet", "lbp", "onnx"} <= set(embedders.embedder_classes())
    with pytest.raises(ConfigurationError, match="no face embedder named"):
        embedders.get_embedder("nonesuch")


def test_broken_plugin_is_logged_and_skipped(monkeypatch, caplog):
    from importlib.metadata import EntryPoint

    from ektp_biometrics.face import embedders

    broken = EntryPoint("broken", "no_such_module_xyz:Thing", embedders.ENTRY_POINT_GROUP)
    monkeypatch.setattr(embedders, "entry_points", lambda group: [broken])
    embedders.embedder_classes.cache_clear()
    try:
        with caplog.at_level(logging.WARNING):
            classes = embedders.embedder_classes()
        assert "broken" not in classes and "lbp" in classes
        assert "could not be loaded" in caplog.text
    finally:
        embedders.embedder_classes.cache_clear()


def test_fallback_path_without_dlib(without_dlib, caplog):
    from ektp_biometrics.face import embedders, extract

    assert embedders.available_embedders()["dlib-resnet"] is not None
    with pytest.raises(DependencyError, match="face extra"):
        embedders.get_embedder("dlib-resnet")
    rng = np.random.default_rng(11)
    photo = rng.integers(0, 256, (112, 92), dtype=np.uint8)
    with caplog.at_level(logging.WARNING):
        template = extract(photo)
    assert template.embedder == "lbp" and "weak" in caplog.text
    same = extract(photo)
    other = extract(rng.integers(0, 256, (112, 92), dtype=np.uint8))
    assert match(template, same) == pytest.approx(1.0) and match(template, other) < 1.0


def test_extract_without_a_face_raises():
    from ektp_biometrics.face import extract

    with pytest.raises(ExtractionError, match="no face"):
        extract(np.full((480, 640), 100, np.uint8), embedder="lbp")
    with pytest.raises(ConfigurationError):
        extract(np.full((480, 640), 100, np.uint8), embedder=42)  # type: ignore[arg-type]


def test_onnx_embedder_error_paths(tmp_path):
    from ektp_biometrics.face.embedders.onnx import OnnxEmbedder

    with pytest.raises(ConfigurationError, match="does not exist"):
        OnnxEmbedder(tmp_path / "missing.onnx")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"this is not a protobuf" * 10)
    with pytest.raises(ConfigurationError, match="cannot load"):
        OnnxEmbedder(garbage)


# -- CLI ---------------------------------------------------------------------------------------------
def test_cli_assess_and_show(tmp_path, capsys):
    import cv2

    from ektp_biometrics.cli import main

    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((480, 640), 128, np.uint8))
    assert main(["face", "assess", str(blank)]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "face_count 0" in out
    assert main(["face", "assess", str(tmp_path / "missing.png")]) == 1
    assert "ERROR" in capsys.readouterr().out
    picture = tmp_path / "show.png"
    assert main(["face", "show", str(blank), "--out", str(picture)]) == 0
    drawn = cv2.imread(str(picture))
    assert drawn is not None and drawn.shape[1] > 640


@pytest.mark.parametrize("quantize", [False, True])
def test_batched_blas_path_equals_the_streaming_kernels(quantize):
    """search_many on several probes (BLAS blocks) finds what one-probe searches (Numba kernels) find."""
    from ektp_biometrics.face import index as index_module

    rng = np.random.default_rng(12)
    gallery = random_unit(rng, 3 * index_module._BLAS_BLOCK_ROWS + 17)
    probes = gallery[[5, 4100, 9000, 12000, 3]] + 0.1 * random_unit(rng, 5)
    index = FaceIndex(128, quantize=quantize, threads=2)
    index.add_many(np.arange(len(gallery)), gallery)
    batched = index.search_many(probes, k=7)
    assert len(probes) >= index_module._BLAS_MIN_PROBES
    for probe, hits in zip(probes, batched):
        alone = index.search(probe, k=7)
        assert [c.id for c in hits] == [c.id for c in alone]
        assert [c.score for c in hits] == pytest.approx([c.score for c in alone], abs=1e-5)
    assert [hits[0].id for hits in batched] == [5, 4100, 9000, 12000, 3]
