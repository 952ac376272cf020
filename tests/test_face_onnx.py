"""The ``onnx`` embedder runs a network through OpenCV's DNN module exactly as NumPy computes it.

No face-recognition model can be fetched here, so the tests build a small network of the same
shape of interface (1x3x112x112 in, a vector out: convolution, ReLU, global average pooling,
a dense layer) with ``onnx.helper`` and seeded weights, and check OpenCV's output against a
NumPy computation of the same network on the same preprocessed input.
"""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the onnx package (test extra) builds the test network")
from onnx import TensorProto, helper, numpy_helper

from ektp_biometrics.face.embedders.onnx import OnnxEmbedder

CONV_OUT, KERNEL, STRIDE, DIMENSION = 8, 5, 4, 16


def _weights(seed: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    conv_w = rng.normal(0, 0.05, (CONV_OUT, 3, KERNEL, KERNEL)).astype(np.float32)
    conv_b = rng.normal(0, 0.1, CONV_OUT).astype(np.float32)
    dense_w = rng.normal(0, 0.5, (CONV_OUT, DIMENSION)).astype(np.float32)
    dense_b = rng.normal(0, 0.1, DIMENSION).astype(np.float32)
    return conv_w, conv_b, dense_w, dense_b


def _write_network(path) -> None:
    conv_w, conv_b, dense_w, dense_b = _weights()
    nodes = [
        helper.make_node("Conv", ["data", "conv_w", "conv_b"], ["conv"], strides=[STRIDE, STRIDE], kernel_shape=[KERNEL, KERNEL]),
        helper.make_node("Relu", ["conv"], ["relu"]),
        helper.make_node("GlobalAveragePool", ["relu"], ["pool"]),
        helper.make_node("Flatten", ["pool"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "dense_w", "dense_b"], ["embedding"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny-face-net",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, 112, 112])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, DIMENSION])],
        [numpy_helper.from_array(a, name) for a, name in zip(_weights(), ["conv_w", "conv_b", "dense_w", "dense_b"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())


def _numpy_network(chw: np.ndarray) -> np.ndarray:
    """The same network in NumPy (valid convolution, stride 4), on a (3, 112, 112) float input."""
    conv_w, conv_b, dense_w, dense_b = _weights()
    out = (112 - KERNEL) // STRIDE + 1
    windows = np.lib.stride_tricks.sliding_window_view(chw, (KERNEL, KERNEL), axis=(1, 2))[:, ::STRIDE, ::STRIDE][:, :out, :out]
    conv = np.einsum("cijkl,ockl->oij", windows.astype(np.float64), conv_w.astype(np.float64)) + conv_b[:, None, None]
    pooled = np.maximum(conv, 0).mean(axis=(1, 2))
    return pooled @ dense_w.astype(np.float64) + dense_b


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "tiny_face_net.onnx"
    _write_network(path)
    return path


@pytest.mark.parametrize(("scale", "mean", "rgb"), [(1.0, 0.0, True), (1 / 127.5, 127.5, True), (1 / 255, 0.0, False)])
def test_forward_equals_numpy_network(model_path, scale, mean, rgb):
    embedder = OnnxEmbedder(model_path, input_scale=scale, input_mean=mean, rgb_input=rgb)
    assert embedder.dimension == DIMENSION
    crop = np.random.default_rng(11).integers(0, 256, (112, 112, 3), dtype=np.uint8)
    channels = crop if rgb else crop[:, :, ::-1]  # a BGR network gets the channels swapped
    want = _numpy_network((channels.astype(np.float64).transpose(2, 0, 1) - mean) * scale)
    got = embedder._forward(crop)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * np.abs(want).max())


def test_version_pins_file_and_preprocessing(model_path, tmp_path):
    a = OnnxEmbedder(model_path)
    b = OnnxEmbedder(model_path, input_scale=1 / 127.5, input_mean=127.5)
    assert a.version != b.version and a.version.startswith("tiny_face_net-")
    other = tmp_path / "tiny_face_net.onnx"
    model = onnx.load(str(model_path))
    model.graph.initializer[1].float_data[:] = []  # same architecture, other weights
    model.graph.initializer[1].CopyFrom(numpy_helper.from_array(np.zeros(CONV_OUT, np.float32), "conv_b"))
    other.write_bytes(model.SerializeToString())
    assert OnnxEmbedder(other).version != a.version  # the digest tells two files of one name apart


def test_extract_on_a_real_photo(model_path, data_root):
    from ektp_biometrics.face import FaceTemplate, extract

    photo_path = data_root / "faces" / "att_orl" / "s1" / "1.pgm"
    if not photo_path.exists():
        pytest.skip(f"{photo_path} is not in the shared data")
    import cv2

    photo = cv2.imread(str(photo_path), cv2.IMREAD_GRAYSCALE)
    embedder = OnnxEmbedder(model_path, input_scale=1 / 127.5, input_mean=127.5)
    template = extract(photo, embedder=embedder)
    assert isinstance(template, FaceTemplate)
    assert template.embedder == "onnx" and template.embedder_version == embedder.version
    vector = np.asarray(template.vector, dtype=np.float64)
    assert vector.shape == (DIMENSION,) and abs(np.linalg.norm(vector) - 1.0) < 1e-5
    again = FaceTemplate.from_bytes(template.to_bytes())
    np.testing.assert_array_equal(np.asarray(again.vector), np.asarray(template.vector))
