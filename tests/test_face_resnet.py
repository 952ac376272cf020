"""The NumPy run of dlib's ResNet face descriptor (face/_resnet.py) against dlib itself, its building
blocks against obvious loops, and its refusal of a model file it does not understand."""

from __future__ import annotations

import numpy as np
import pytest

from ektp_biometrics.errors import ConfigurationError, DependencyError, ImageError
from ektp_biometrics.face import _models, _resnet

needs_dlib = pytest.mark.skipif(
    not _models.dlib_available(), reason="dlib-bin and face_recognition_models are not installed (pip install 'ektp-biometrics[face]')"
)


def naive_convolution(x: np.ndarray, weights: np.ndarray, bias: np.ndarray, size: int, stride: int, pad: int) -> np.ndarray:
    """Cross-correlation by loops; x is (channels, views, rows, cols), weights (filters, channels*size*size)."""
    channels, views, rows, cols = x.shape
    kernel = weights.reshape(-1, channels, size, size)
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out_rows, out_cols = (rows + 2 * pad - size) // stride + 1, (cols + 2 * pad - size) // stride + 1
    out = np.zeros((kernel.shape[0], views, out_rows, out_cols))
    for f in range(kernel.shape[0]):
        for v in range(views):
            for r in range(out_rows):
                for c in range(out_cols):
                    patch = padded[:, v, r * stride : r * stride + size, c * stride : c * stride + size]
                    out[f, v, r, c] = np.sum(patch * kernel[f]) + bias[f, 0]
    return out


@pytest.mark.parametrize("size, stride, pad", [(3, 1, 1), (3, 2, 0), (7, 2, 0)])
def test_convolution_equals_loops(size, stride, pad):
    rng = np.random.default_rng(size * 10 + stride)
    x = rng.standard_normal((4, 2, 11, 9)).astype(np.float32)
    conv = _resnet._Conv(
        rng.standard_normal((5, 4 * size * size)).astype(np.float32), rng.standard_normal((5, 1)).astype(np.float32), size, stride, pad
    )
    expected = naive_convolution(x.astype(np.float64), conv.weights, conv.bias, size, stride, pad)
    assert np.allclose(_resnet._convolve(x, conv), expected, atol=1e-4)


def test_pools_and_padded_add_equal_loops():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 2, 9, 8)).astype(np.float32)
    pooled = _resnet._max_pool_3x3_stride2(x)
    averaged = _resnet._avg_pool_2x2(x)
    assert pooled.shape == (3, 2, 4, 3) and averaged.shape == (3, 2, 4, 4)
    for r in range(4):
        for c in range(3):
            assert np.allclose(pooled[:, :, r, c], x[:, :, 2 * r : 2 * r + 3, 2 * c : 2 * c + 3].max(axis=(2, 3)))
        for c in range(4):
            assert np.allclose(averaged[:, :, r, c], x[:, :, 2 * r : 2 * r + 2, 2 * c : 2 * c + 2].mean(axis=(2, 3)), atol=1e-6)
    small = rng.standard_normal((5, 2, 3, 3)).astype(np.float32)
    total = _resnet._add_padded(averaged, small)
    assert total.shape == (5, 2, 4, 4)
    expected = np.zeros((5, 2, 4, 4), np.float32)
    expected[:3] += averaged
    expected[:, :, :3, :3] += small
    assert np.allclose(total, expected)


@needs_dlib
def test_numpy_descriptors_equal_dlibs_on_real_chips(data_root):
    import dlib

    from ektp_biometrics.face import detect
    from ektp_biometrics.face._image import as_rgb
    from ektp_biometrics.face.embedders.dlib_resnet import DlibResnetEmbedder

    faces = data_root / "faces"
    paths = [faces / "att_orl" / "s3" / "4.pgm", faces / "yalefaces" / "subject07.leftlight"]
    paths = [p for p in paths if p.exists()]
    if not paths:
        pytest.skip(f"ORL/Yale photos not found under {faces}")
    network, reference = _resnet.load_resnet(), _models.resnet_descriptor()
    embedder = DlibResnetEmbedder(views=("plain", "equalized", "blended"), flip=False)
    for path in paths:
        rgb = as_rgb(path)
        chips = embedder.chips(rgb, detect(rgb)[0])
        assert chips.shape == (3, 150, 150, 3)
        ours = network.describe(chips)
        theirs = np.array([np.asarray(reference.compute_face_descriptor(np.ascontiguousarray(chip))) for chip in chips])
        assert np.abs(ours - theirs).max() < 1e-5, path.name
        # the batch does not mix views: one chip alone gives its own row
        assert np.abs(network.describe(chips[2:3])[0] - ours[2]).max() < 1e-5


@needs_dlib
def test_engines_give_the_same_templates(data_root):
    from ektp_biometrics.face import extract
    from ektp_biometrics.face.embedders.dlib_resnet import DlibResnetEmbedder

    path = data_root / "faces" / "yalefaces" / "subject02.normal"
    if not path.exists():
        pytest.skip(f"{path} not found")
    ours = extract(path, embedder=DlibResnetEmbedder())
    theirs = extract(path, embedder=DlibResnetEmbedder(engine="dlib"))
    assert ours.embedder_version == theirs.embedder_version
    assert np.abs(ours.vector - theirs.vector).max() < 1e-5


@needs_dlib
def test_model_file_that_is_not_the_expected_network_is_refused():
    _, models = _models._dlib_modules()
    with open(models.face_recognition_model_location(), "rb") as handle:
        data = handle.read()
    with pytest.raises(DependencyError, match="reinstall face_recognition_models"):
        _resnet.ResnetDescriptor(data[: len(data) // 2])  # truncated: layers missing
    with pytest.raises(DependencyError, match="expected network"):
        _resnet.ResnetDescriptor(data.replace(b"\x0amax_pool_2", b"\x0amax_pool_3", 1))  # a layer of another kind
    with pytest.raises(DependencyError):
        _resnet.ResnetDescriptor(b"not a dlib file")
    # a convolution with other dimensions than the architecture's
    at = data.find(b"\x05con_4") + 6
    changed = data[:at] + data[at : at + 40].replace(b"\x02\x80\x12", b"\x02\x81\x12", 1) + data[at + 40 :]
    with pytest.raises(DependencyError):
        _resnet.ResnetDescriptor(changed)


@needs_dlib
@pytest.mark.parametrize(
    "options, message",
    [({"views": ("sepia",)}, "views"), ({"views": ()}, "views"), ({"engine": "gpu"}, "engine"), ({"jitter": -1}, "jitter")],
)
def test_embedder_options_are_checked(options, message):
    from ektp_biometrics.face.embedders.dlib_resnet import DlibResnetEmbedder

    with pytest.raises(ConfigurationError, match=message):
        DlibResnetEmbedder(**options)


@needs_dlib
@pytest.mark.parametrize(
    "chips", [np.zeros((1, 150, 150, 3), np.float32), np.zeros((150, 150, 3), np.uint8), np.zeros((2, 112, 112, 3), np.uint8), np.zeros((0, 150, 150, 3), np.uint8)]
)
def test_describe_refuses_what_is_not_a_stack_of_chips(chips):
    with pytest.raises(ImageError, match="150, 150, 3"):
        _resnet.load_resnet().describe(chips)
