"""Public generator API: masters and rendered impressions with ground truth."""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from ..errors import ConfigurationError
from ..fingerprint.template import FingerprintTemplate
from ._seeding import IMPRESSION_STREAM, MASTER_STREAM, root_entropy, stream
from .master import MasterFingerprint, render_master, sample_identity
from .params import DEFAULT_PARAMETERS, SynthParameters

__all__ = ["Impression", "NOISE_LEVELS", "make_master", "impressions", "master_shape"]

#: Named noise settings: ``clean`` and ``noisy`` are the ends of the range, ``mixed`` draws a level
#: uniformly between them for every impression.
NOISE_LEVELS = ("clean", "noisy", "mixed")

#: Largest counts accepted, to catch typos before hours of work.
MAX_FINGERS = 100_000_000
MAX_PER_FINGER = 1000


@dataclass(frozen=True, eq=False)
class Impression:
    """One synthetic impression and its truth.

    Attributes
    ----------
    finger_id : int
        1-based finger number (FVC naming ``{finger_id}_{index}``).
    index : int
        1-based impression number of that finger.
    image : (M, N) ndarray of uint8
        The impression at 500 dpi; dark ridges on a light background.
    truth : FingerprintTemplate
        The true minutiae visible in this impression, in its coordinates.
    pattern_class : str
        Henry class of the finger.
    noise : float
        Noise level used, 0 (clean) .. 1 (heavy).
    singular_points : dict
        ``{"cores": (C, 2), "deltas": (D, 2)}`` (row, col) in impression coordinates; points that
        fall outside the image are kept, they still tell where the pattern centre is.
    """

    finger_id: int
    index: int
    image: np.ndarray = field(repr=False)
    truth: FingerprintTemplate = field(repr=False)
    pattern_class: str = ""
    noise: float = 0.0
    singular_points: dict = field(default_factory=dict, repr=False)


def _check_count(name: str, value: object, upper: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 1 <= int(value) <= upper:
        raise ConfigurationError(f"{name} must be an integer in 1..{upper}, got {value!r}")
    return int(value)


def _check_params(params: SynthParameters | None, image_shape: tuple[int, int] | None) -> SynthParameters:
    if params is None:
        params = DEFAULT_PARAMETERS
    if not isinstance(params, SynthParameters):
        raise ConfigurationError(f"params must be a SynthParameters, got {type(params).__name__}")
    if image_shape is not None:
        from dataclasses import replace

        try:
            shape = tuple(int(s) for s in image_shape)  # type: ignore[union-attr]
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"image_shape must be (rows, cols), got {image_shape!r}") from exc
        params = replace(params, image_shape=shape)
    return params


def _noise_level(noise: str | float, rng: np.random.Generator) -> float:
    if noise == "clean":
        return 0.0
    if noise == "noisy":
        return 1.0
    if noise == "mixed":
        return float(rng.uniform(0.0, 1.0))
    return float(noise)  # type: ignore[arg-type]


def _check_noise(noise: object) -> str | float:
    if isinstance(noise, str):
        if noise not in NOISE_LEVELS:
            raise ConfigurationError(f"noise must be one of {NOISE_LEVELS} or a number in [0, 1], got {noise!r}")
        return noise
    if isinstance(noise, bool) or not isinstance(noise, numbers.Real) or not 0.0 <= float(noise) <= 1.0:
        raise ConfigurationError(f"noise must be one of {NOISE_LEVELS} or a number in [0, 1], got {noise!r}")
    return float(noise)


def master_shape(params: SynthParameters) -> tuple[int, int]:
    """Master canvas (rows, cols): the impression plus a margin for placement on every side."""
    return (params.image_shape[0] + 2 * params.master_margin, params.image_shape[1] + 2 * params.master_margin)


def _master(entropy: int, finger_id: int, params: SynthParameters) -> MasterFingerprint:
    rng = stream(entropy, MASTER_STREAM, finger_id)
    identity = sample_identity(rng, master_shape(params), params)
    return render_master(identity, rng, params)


def make_master(finger_id: int, seed: int | np.random.Generator, *, params: SynthParameters | None = None, image_shape: tuple[int, int] | None = None) -> MasterFingerprint:
    """Render the master fingerprint of one finger.

    Parameters
    ----------
    finger_id : int
        1-based finger number; with the same ``seed`` it always gives the same finger.
    seed : int or numpy.random.Generator
    params : SynthParameters, optional
    image_shape : (rows, cols), optional
        Impression size the master is made for (default ``params.image_shape``).

    Returns
    -------
    MasterFingerprint

    Examples
    --------
    >>> m = make_master(1, seed=7, image_shape=(160, 160))
    >>> m.ridges.shape, m.minutiae.dtype.names[:3]
    ((240, 240), ('row', 'col', 'direction'))
    """
    params = _check_params(params, image_shape)
    finger_id = _check_count("finger_id", finger_id, MAX_FINGERS)
    return _master(root_entropy(seed), finger_id, params)


def impressions(
    fingers: int,
    per_finger: int,
    seed: int | np.random.Generator,
    *,
    noise: str | float = "mixed",
    params: SynthParameters | None = None,
    image_shape: tuple[int, int] | None = None,
    first_finger: int = 1,
) -> Iterator[Impression]:
    """Render ``per_finger`` impressions of each of ``fingers`` synthetic fingers, with truth.

    Parameters
    ----------
    fingers : int
        Number of fingers (masters).
    per_finger : int
        Impressions per finger.
    seed : int or numpy.random.Generator
        Same seed, same bytes.  A finger depends only on the seed and its id.
    noise : {"clean", "noisy", "mixed"} or float in [0, 1]
        Noise, pressure and dryness level of the impressions.
    params : SynthParameters, optional
    image_shape : (rows, cols), optional
        Impression size; default ``params.image_shape`` (384 x 288, as FVC2002 DB4).
    first_finger : int
        Id of the first finger (to generate a range of a larger set).

    Yields
    ------
    Impression
        In order finger 1 impression 1, finger 1 impression 2, ..., finger 2 impression 1, ...

    Raises
    ------
    ConfigurationError
        If a count, the seed, ``noise`` or ``params`` is invalid (raised on the first ``next``).

    Examples
    --------
    >>> items = list(impressions(1, 2, seed=3, noise="clean", image_shape=(160, 160)))
    >>> [(i.finger_id, i.index, i.image.shape, i.image.dtype.name) for i in items]
    [(1, 1, (160, 160), 'uint8'), (1, 2, (160, 160), 'uint8')]
    >>> items[0].truth.width, items[0].truth.height
    (160, 160)
    """
    fingers = _check_count("fingers", fingers, MAX_FINGERS)
    per_finger = _check_count("per_finger", per_finger, MAX_PER_FINGER)
    first_finger = _check_count("first_finger", first_finger, MAX_FINGERS)
    noise = _check_noise(noise)
    params = _check_params(params, image_shape)
    entropy = root_entropy(seed)
    return _impressions(entropy, fingers, per_finger, noise, params, first_finger)


def _impressions(entropy: int, fingers: int, per_finger: int, noise: str | float, params: SynthParameters, first_finger: int) -> Iterator[Impression]:
    from .impression import master_to_image, render_impression, sample_geometry

    rows, cols = params.image_shape
    for finger_id in range(first_finger, first_finger + fingers):
        finger = _master(entropy, finger_id, params)
        for index in range(1, per_finger + 1):
            rng = stream(entropy, IMPRESSION_STREAM, finger_id, index)
            level = _noise_level(noise, rng)
            geometry = sample_geometry(rng, params.image_shape, finger.ridges.shape, params)
            image, truth = render_impression(finger, geometry, rng, level, params)
            image.flags.writeable = False
            points = {}
            for name, where in finger.singular_points.items():
                if len(where):
                    pr, pc = master_to_image(where[:, 0], where[:, 1], geometry)
                    points[name] = np.stack([pr, pc], axis=1)
                else:
                    points[name] = np.empty((0, 2))
            template = FingerprintTemplate(cols, rows, truth, resolution=500, quality=int(round(100 - 60 * level)))
            yield Impression(finger_id, index, image, template, finger.identity.class_name, level, points)
