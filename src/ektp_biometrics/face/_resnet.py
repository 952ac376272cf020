"""dlib's ResNet face descriptor, run in NumPy from the weights ``face_recognition_models`` ships.

dlib-bin's wheels compute convolutions with dlib's own loops (no BLAS), about 110 ms of CPU per
150x150 chip on this project's build machine; the same network as im2col + one BLAS matrix
product per layer takes about a seventh of that, and a batch of views shares each product.

The network is ``dlib_face_recognition_resnet_model_v1`` (the ``anet_type`` of dlib's
``dnn_face_recognition_ex.cpp``): a 7x7/2 convolution, a 3x3/2 max pool, residual blocks of two
3x3 convolutions (32 ch x3, then 64 x4, 128 x3, 256 x3, 256 x1 channels, the first of each level
downsampling by a stride-2 convolution beside a 2x2 average pool), a global average pool and a
128x256 matrix.  Batch normalization was folded into per-channel affine layers by dlib; we fold
those into the convolutions once at load.

The weights are read from dlib's own serialization of that network (the ``.dat`` file):
integers are dlib's packed integers (a length byte, its high bit the sign, then little-endian
bytes), tensors are four packed dimensions followed by little-endian float32 values, and each
layer starts with its type name ("con_4", "affine_", ...).  The loader checks the sequence of
layer names and every shape against the architecture above and refuses anything else, so a
different model file cannot be silently misread.  ``tests/test_face_resnet.py`` compares the
descriptors with dlib's own on real photos.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass

import numpy as np

from ..errors import DependencyError, ImageError
from ._blas import single_threaded_blas

__all__ = ["ResnetDescriptor", "load_resnet"]

# Side of the chips the network takes (dlib's input_rgb_image_sized<150>); checked against the file.
_CHIP_SIDE = 150
# Per level: channels, residual blocks after the first, whether the first block downsamples.
_LEVELS = ((32, 3, False), (64, 3, True), (128, 2, True), (256, 2, True), (256, 0, True))
_LAYER_NAME = re.compile(rb"\x01(\x05con_4|\x07affine_|\x05relu_|\x0amax_pool_2|\x0aavg_pool_2|\x09add_prev_|\x04fc_2)")


class _Reader:
    """dlib's serialization primitives over a bytes buffer."""

    def __init__(self, data: bytes, pos: int) -> None:
        self.data, self.pos = data, pos

    def integer(self) -> int:
        head = self.data[self.pos]
        size = head & 0x0F
        value = int.from_bytes(self.data[self.pos + 1 : self.pos + 1 + size], "little")
        self.pos += 1 + size
        return -value if head & 0x80 else value

    def string(self) -> str:
        size = self.integer()
        text = self.data[self.pos : self.pos + size].decode("ascii")
        self.pos += size
        return text

    def real(self) -> float:
        mantissa = self.integer()
        return math.ldexp(mantissa, self.integer())

    def tensor(self) -> np.ndarray:
        if self.integer() != 2:
            raise ValueError("unsupported tensor version")
        shape = tuple(self.integer() for _ in range(4))
        count = int(np.prod(shape))
        values = np.frombuffer(self.data, "<f4", count, self.pos).astype(np.float32).reshape(shape)
        self.pos += 4 * count
        return values

    def ints(self, n: int) -> tuple[int, ...]:
        return tuple(self.integer() for _ in range(n))


@dataclass(frozen=True)
class _Conv:
    weights: np.ndarray  # (filters, channels * rows * cols), affine folded in
    bias: np.ndarray  # (filters, 1)
    size: int
    stride: int
    padding: int


@dataclass(frozen=True)
class _Block:
    first: _Conv
    second: _Conv
    downsample: bool


def _conv_record(reader: _Reader, affine: tuple[np.ndarray, np.ndarray], channels: int) -> _Conv:
    params = reader.tensor().ravel()
    filters, rows, cols, stride_y, stride_x, pad_y, pad_x = reader.ints(7)
    if rows != cols or stride_y != stride_x or pad_y != pad_x or params.size != filters * (channels * rows * cols + 1):
        raise ValueError(f"unexpected convolution {filters}x{channels}x{rows}x{cols}")
    weights = params[: filters * channels * rows * cols].reshape(filters, channels * rows * cols)
    gamma, beta = affine
    bias = params[filters * channels * rows * cols :]
    return _Conv(
        np.ascontiguousarray(weights * gamma[:, None]), (bias * gamma + beta)[:, None].astype(np.float32), rows, stride_y, pad_y
    )


class ResnetDescriptor:
    """The descriptor network with weights loaded; call :meth:`describe` on 150x150 RGB chips."""

    def __init__(self, data: bytes) -> None:
        try:
            self._parse(data)
        except (ValueError, IndexError, UnicodeDecodeError) as exc:
            raise DependencyError(
                f"the dlib ResNet model file does not hold the expected network ({exc}); "
                "reinstall face_recognition_models"
            ) from exc

    def _parse(self, data: bytes) -> None:
        start = data.find(b"\x15input_rgb_image_sized")
        if start < 1:
            raise ValueError("no input_rgb_image_sized layer")
        reader = _Reader(data, start - 1)
        reader.string()
        self.channel_means = np.array([reader.real() for _ in range(3)], np.float32)
        if reader.ints(2) != (_CHIP_SIDE, _CHIP_SIDE):
            raise ValueError("the network's input is not 150x150")
        records = [(m.start(), m.group(1)[1:].decode()) for m in _LAYER_NAME.finditer(data, reader.pos)]
        names = iter(records)

        def take(expected: str) -> _Reader:
            pos, name = next(names, (0, "the end of the file"))
            if name != expected:
                raise ValueError(f"found layer {name} where {expected} was expected")
            layer = _Reader(data, pos)
            layer.string()
            return layer

        def conv(channels: int) -> _Conv:
            layer = take("con_4")
            affine = take("affine_").tensor().ravel()  # the next layer, folded into this one
            half = affine.size // 2
            return _conv_record(layer, (affine[:half], affine[half:]), channels)

        self.stem = conv(3)
        take("relu_")
        pool = take("max_pool_2").ints(6)
        if pool != (3, 3, 2, 2, 0, 0):
            raise ValueError(f"unexpected max pool {pool}")
        blocks: list[_Block] = []
        channels = 32
        for width, plain_blocks, downsample in _LEVELS:
            for index in range(plain_blocks + downsample):
                down = downsample and index == 0
                first = conv(channels)
                take("relu_")
                second = conv(width)
                if first.weights.shape[0] != width or second.weights.shape[0] != width:
                    raise ValueError("unexpected channel count")
                if (first.stride, first.padding) != ((2, 0) if down else (1, 1)) or (second.stride, second.padding) != (1, 1):
                    raise ValueError("unexpected stride or padding")
                if down and take("avg_pool_2").ints(6) != (2, 2, 2, 2, 0, 0):
                    raise ValueError("unexpected average pool")
                take("add_prev_")
                take("relu_")
                blocks.append(_Block(first, second, down))
                channels = width
        if take("avg_pool_2").ints(6)[:2] != (0, 0):
            raise ValueError("the last pool is not a global average")
        layer = take("fc_2")
        outputs, inputs = layer.ints(2)
        matrix = layer.tensor().reshape(inputs, outputs)
        if inputs != channels:
            raise ValueError("the last matrix does not match the channels")
        self.blocks = tuple(blocks)
        self.projection = np.ascontiguousarray(matrix)
        self.dimension = outputs

    def describe(self, chips: np.ndarray) -> np.ndarray:
        """(V, 128) float32 raw descriptors of (V, 150, 150, 3) uint8 RGB chips (dlib's values, not unit length).

        BLAS runs on one thread meanwhile: these products are small, and OpenBLAS's waiting threads
        multiplied the CPU time tenfold (and the wall time fivefold) on a shared 2-core machine.
        """
        if not (isinstance(chips, np.ndarray) and chips.dtype == np.uint8 and chips.ndim == 4):
            raise ImageError(f"chips must be a (V, 150, 150, 3) uint8 array, got {getattr(chips, 'shape', type(chips))}")
        if chips.shape[1:] != (_CHIP_SIDE, _CHIP_SIDE, 3) or chips.shape[0] == 0:
            raise ImageError(f"chips must be a (V, 150, 150, 3) uint8 array with V >= 1, got shape {chips.shape}")
        with single_threaded_blas():
            return self._describe(chips)

    def _describe(self, chips: np.ndarray) -> np.ndarray:
        # activations are kept as (channels, views, rows, cols): each layer is one matrix product
        x = (chips.astype(np.float32).transpose(3, 0, 1, 2) - self.channel_means[:, None, None, None]) * np.float32(1 / 256)
        x = _relu(_convolve(x, self.stem))
        x = _max_pool_3x3_stride2(x)
        for block in self.blocks:
            inner = _convolve(_relu(_convolve(x, block.first)), block.second)
            shortcut = _avg_pool_2x2(x) if block.downsample else x
            x = _relu(_add_padded(shortcut, inner))
        pooled = x.mean(axis=(2, 3))  # (channels, views)
        return np.ascontiguousarray(pooled.T @ self.projection)


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0, out=x)


def _convolve(x: np.ndarray, conv: _Conv) -> np.ndarray:
    channels, views, rows, cols = x.shape
    size, stride, pad = conv.size, conv.stride, conv.padding
    if pad:
        x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out_rows, out_cols = (rows + 2 * pad - size) // stride + 1, (cols + 2 * pad - size) // stride + 1
    s = x.strides
    windows = np.lib.stride_tricks.as_strided(
        x, (channels, size, size, views, out_rows, out_cols), (s[0], s[2], s[3], s[1], s[2] * stride, s[3] * stride)
    )
    columns = windows.reshape(channels * size * size, views * out_rows * out_cols)  # copies: im2col
    out = conv.weights @ columns
    out += conv.bias
    return out.reshape(-1, views, out_rows, out_cols)


def _max_pool_3x3_stride2(x: np.ndarray) -> np.ndarray:
    rows, cols = (x.shape[2] - 3) // 2 + 1, (x.shape[3] - 3) // 2 + 1
    out = x[:, :, 0 : 2 * rows : 2, 0 : 2 * cols : 2].copy()
    for dr in range(3):
        for dc in range(3):
            np.maximum(out, x[:, :, dr : dr + 2 * rows : 2, dc : dc + 2 * cols : 2], out=out)
    return out


def _avg_pool_2x2(x: np.ndarray) -> np.ndarray:
    rows, cols = (x.shape[2] - 2) // 2 + 1, (x.shape[3] - 2) // 2 + 1
    total = x[:, :, 0 : 2 * rows : 2, 0 : 2 * cols : 2] + x[:, :, 1 : 2 * rows : 2, 0 : 2 * cols : 2]
    total += x[:, :, 0 : 2 * rows : 2, 1 : 2 * cols : 2]
    total += x[:, :, 1 : 2 * rows : 2, 1 : 2 * cols : 2]
    return total * np.float32(0.25)


def _add_padded(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """dlib's add_prev: the sum over the larger shape, the smaller tensor zero-extended at the end."""
    if a.shape == b.shape:
        return a + b
    shape = tuple(max(p, q) for p, q in zip(a.shape, b.shape))
    out = np.zeros(shape, np.float32)
    out[: a.shape[0], :, : a.shape[2], : a.shape[3]] += a
    out[: b.shape[0], :, : b.shape[2], : b.shape[3]] += b
    return out


@functools.lru_cache(maxsize=1)
def load_resnet() -> ResnetDescriptor:
    """The network from face_recognition_models' file, loaded once (about 0.1 s)."""
    from . import _models

    _, models = _models._dlib_modules()
    with open(models.face_recognition_model_location(), "rb") as handle:
        return ResnetDescriptor(handle.read())
