"""Fingerprint feature extraction: image in, :class:`FingerprintTemplate` out."""

from __future__ import annotations

import os
from typing import Union

import numpy as np

from ..errors import ExtractionError
from . import _stages as s
from .debug import emit
from .params import DEFAULT_PARAMETERS, ExtractionParameters
from .quality import quality_report
from .template import FingerprintTemplate

__all__ = ["extract", "extract_file"]

#: Fewer foreground pixels than this (at 500 dpi: about 2.4 x 2.4 mm, a few ridges) cannot yield minutiae.
#: Small on purpose: cropped thumbs (SOCOFing, 96 x 103 px) must still give their few minutiae.
MIN_FOREGROUND_PIXELS = 48 * 48


def extract(
    image: np.ndarray,
    dpi: float = 500,
    *,
    finger_position: int = 0,
    params: ExtractionParameters = DEFAULT_PARAMETERS,
) -> FingerprintTemplate:
    """Find the minutiae of a fingerprint image.

    Parameters
    ----------
    image : (M, N) ndarray of uint8
        Grey-level scan, ridges dark, as :func:`ektp_biometrics.io.read_image` returns it.
    dpi : int
        Resolution of ``image`` (250..1000); it is resampled to ``params.working_dpi`` (500).
    finger_position : int
        ISO/IEC 19794-2 finger position code stored in the template (0 = unknown).
    params : ExtractionParameters
        Tunables; the defaults suit live-scan and ink prints at 500 dpi.

    Returns
    -------
    FingerprintTemplate
        Minutiae in (row, col) pixels at the working resolution, with the image quality 0..100.

    Raises
    ------
    ImageError
        If ``image`` is not a 2-D uint8 array of a plausible size, or ``dpi`` is out of range.
    ExtractionError
        If no ridge area large enough to extract from is found.

    Examples
    --------
    >>> from ektp_biometrics.fingerprint import extract
    >>> from ektp_biometrics.synth import impressions           # doctest: +SKIP
    >>> image = next(impressions(1, 1, seed=7)).image           # doctest: +SKIP
    >>> t = extract(image, dpi=500)                             # doctest: +SKIP
    >>> 20 < len(t) < 120                                       # doctest: +SKIP
    True
    """
    from ..io import as_image, to_working_resolution

    image = as_image(image)
    image = to_working_resolution(image, dpi, params.working_dpi)
    return _extract(np.ascontiguousarray(image), finger_position, params)


def _extract(image: np.ndarray, finger_position: int, p: ExtractionParameters) -> FingerprintTemplate:
    shape = image.shape
    grid = s.BlockGrid.of(shape, p.block_size)
    emit("image", lambda: image)

    mean, std, block_std = s.block_statistics(image, grid)
    normalized = s.normalized_image(image, mean, std, grid)
    ocos, osin, coherence_blocks = s.orientation_blocks(s.gradient_moments(normalized, grid, p), p)
    block_mask = s.foreground_blocks(block_std, coherence_blocks, p)
    mask = grid.up_nearest(block_mask, shape)
    if mask.sum() < MIN_FOREGROUND_PIXELS:
        raise ExtractionError(
            f"only {int(mask.sum())} pixels of ridge area found (at least {MIN_FOREGROUND_PIXELS} needed): "
            "the image is blank, too faint, or not a fingerprint; recapture with the finger pressed flat"
        )
    orientation = s.orientation_field(ocos, osin, grid, shape)
    coherence = grid.up_linear(coherence_blocks, shape)
    emit("mask", lambda: mask)
    emit("normalized", lambda: normalized)
    emit("orientation", lambda: orientation)
    emit("coherence", lambda: coherence)

    periods = s.period_estimates(normalized, orientation, mask, p)
    period = s.period_field(periods, shape, p)
    emit("period", lambda: period)

    enhanced = s.enhanced_image(normalized, orientation, period, mask, p)
    binary = s.binary_ridges(enhanced, mask)
    skeleton = s.ridge_skeleton(binary)
    emit("enhanced", lambda: enhanced)
    emit("binary", lambda: binary)
    emit("skeleton", lambda: skeleton)

    candidates = s.minutia_candidates(skeleton, orientation, p)
    amplitude = s.ridge_amplitude(enhanced, block_mask, grid)
    minutiae = s.filtered_minutiae(candidates, block_mask, coherence, amplitude, p)
    emit("candidates", lambda: s.candidates_as_minutiae(candidates))
    emit("minutiae", lambda: minutiae)

    quality = quality_report(mask, coherence, block_std, block_mask, periods, p.working_dpi)
    return FingerprintTemplate(
        width=shape[1], height=shape[0], minutiae=minutiae, resolution=p.working_dpi,
        quality=quality.score, finger_position=finger_position,
    )


def extract_file(
    path: Union[str, os.PathLike, bytes],
    dpi: float | None = None,
    *,
    finger_position: int = 0,
    params: ExtractionParameters = DEFAULT_PARAMETERS,
) -> FingerprintTemplate:
    """Read an image file (see :func:`ektp_biometrics.io.read_image`) and extract it.

    ``dpi`` defaults to the resolution stored in the file when it is a plausible scan resolution
    (250..1000 dpi), else 500: many writers store 72 or 96 dpi as a placeholder.
    """
    from ..io import read_image_with_info

    image, info = read_image_with_info(path)
    if dpi is None:
        dpi = info.scan_dpi or 500
    return extract(image, dpi, finger_position=finger_position, params=params)
