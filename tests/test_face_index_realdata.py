"""int8 quantization of the 1:N index does not change identification on real ORL/Yale descriptors.

A subset of each set keeps the default run fast (ORL people 1-5, Yale subjects 1-4); the slow
acceptance test in test_face_realdata.py repeats the check on the whole sets."""

from __future__ import annotations

import numpy as np
import pytest

from ektp_biometrics.face import FaceIndex, _models, extract, get_embedder
from ektp_biometrics.face.evaluation import orl_set, rank1, yale_set

pytestmark = [
    pytest.mark.realdata,
    pytest.mark.skipif(not _models.dlib_available(), reason="dlib-bin and face_recognition_models are not installed"),
]


@pytest.fixture(scope="module")
def descriptors(data_root):
    """{set name: (vectors, labels, gallery mask)} for the subsets, with the default embedder."""
    faces = data_root / "faces"
    if not (faces / "att_orl").is_dir() or not (faces / "yalefaces").is_dir():
        pytest.skip(f"ORL/Yale photos not found under {faces}")
    embedder = get_embedder()
    found = {}
    for face_set, people in ((orl_set(faces / "att_orl"), 5), (yale_set(faces / "yalefaces"), 4)):
        keep = face_set.labels <= people
        paths = [p for p, k in zip(face_set.paths, keep) if k]
        vectors = np.stack([extract(p, embedder=embedder).vector for p in paths])
        found[face_set.name] = (vectors, face_set.labels[keep], face_set.gallery[keep])
    return found


def face_like_strangers(vectors: np.ndarray, labels: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Unit vectors between two different people's descriptors (of the *other* data set): strangers
    to every probe, yet as face-like as real descriptors, so they crowd the top of the ranking."""
    first, second = rng.integers(0, len(vectors), (2, count))
    second = np.where(labels[first] == labels[second], (second + 1) % len(vectors), second)
    share = rng.uniform(0.3, 0.7, (count, 1)).astype(np.float32)
    mixed = share * vectors[first] + (1 - share) * vectors[second]
    mixed += np.float32(0.02) * rng.standard_normal(mixed.shape, dtype=np.float32)
    return mixed / np.linalg.norm(mixed, axis=1, keepdims=True)


@pytest.mark.parametrize("set_name", ["orl", "yale"])
def test_int8_rank1_equals_float32_rank1(descriptors, set_name):
    vectors, labels, gallery = descriptors[set_name]
    float_hit, probes = rank1(vectors, labels, gallery)
    assert float_hit == 1.0 and probes > 0
    rng = np.random.default_rng(42)
    other_vectors, other_labels, _ = descriptors["yale" if set_name == "orl" else "orl"]
    distractors = face_like_strangers(other_vectors, other_labels, 20_000, rng)
    enrolled = np.concatenate([vectors[gallery], distractors])
    ids = list(labels[gallery]) + [-1 - i for i in range(len(distractors))]
    exact = (vectors[~gallery] @ enrolled.T).argmax(axis=1)
    for quantize in (False, True):
        alone = FaceIndex(vectors.shape[1], quantize=quantize, threads=2)
        alone.add_many(list(np.flatnonzero(gallery)), vectors[gallery])
        hits = [labels[found[0].id] for found in alone.search_many(vectors[~gallery], k=1)]
        assert np.mean(np.array(hits) == labels[~gallery]) == float_hit, (set_name, quantize)
        crowded = FaceIndex(vectors.shape[1], quantize=quantize, threads=2)
        crowded.add_many(ids, enrolled)
        found = crowded.search_many(vectors[~gallery], k=5)
        # among 20,000 face-like distractors: the same hit or miss as float32 brute force, probe by
        # probe, and the same best score to the quantization's precision
        best = [ids[i] for i in exact]
        assert [hits[0].id == want for hits, want in zip(found, labels[~gallery])] == [b == want for b, want in zip(best, labels[~gallery])]
        exact_scores = (vectors[~gallery] @ enrolled.T).max(axis=1)
        assert np.abs(np.array([hits[0].score for hits in found]) - exact_scores).max() < 3e-3
