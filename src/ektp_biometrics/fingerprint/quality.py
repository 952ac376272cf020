"""Fingerprint image quality 0-100, in the spirit of NFIQ 2.

NFIQ 2 (NIST IR 8382) combines local features (orientation certainty, frequency domain analysis,
local clarity) and global ones (usable area, contrast) with a random forest trained on matcher
scores.  We compute the same families of features from products the extractor already has, at
no extra cost, and combine them with a transparent formula documented below.  Each term is in
``[0, 1]``; the score is ``100 * area * (0.45 ocl + 0.25 freq + 0.30 contrast)``.

* ``ocl``: orientation certainty, the mean ridge-orientation coherence over the foreground,
  mapped linearly from 0.25 (noise) to 0.75 (clean ridges).
* ``freq``: ridge-frequency consistency, the share of coarse cells with a valid period estimate
  times ``1 - CV`` of those periods (a healthy print has a narrow period distribution).
* ``contrast``: median local grey-level deviation over the foreground, 8 (washed out) to 40 grey levels.
* ``area``: usable area, the foreground in mm^2 relative to 120 mm^2 (a 11 x 11 mm patch, about what
  a matcher needs for a dozen reliable minutiae), capped at 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["QualityReport", "quality_report"]


@dataclass(frozen=True)
class QualityReport:
    """The quality score and its terms."""

    score: int
    orientation_certainty: float
    frequency_consistency: float
    contrast: float
    usable_area: float


def _ramp(value: float, low: float, high: float) -> float:
    return float(np.clip((value - low) / (high - low), 0.0, 1.0))


def quality_report(
    mask: np.ndarray, coherence: np.ndarray, block_std: np.ndarray, block_mask: np.ndarray,
    period_estimates: np.ndarray | None, dpi: int,
) -> QualityReport:
    """Combine the extractor's intermediate fields into a :class:`QualityReport`."""
    area_px = float(mask.sum())
    if area_px == 0:
        return QualityReport(0, 0.0, 0.0, 0.0, 0.0)
    mm_per_px = 25.4 / dpi
    area = min(area_px * mm_per_px * mm_per_px / 120.0, 1.0)
    ocl = _ramp(float(np.mean(coherence[mask])), 0.25, 0.75)
    contrast = _ramp(float(np.median(block_std[block_mask])) if block_mask.any() else 0.0, 8.0, 40.0)
    freq = 0.0
    if period_estimates is not None and period_estimates.size:
        valid = period_estimates[period_estimates > 0]
        if valid.size >= 2:
            cv = float(np.std(valid) / np.mean(valid))
            freq = (valid.size / period_estimates.size) * max(0.0, 1.0 - cv)
    score = 100.0 * area * (0.45 * ocl + 0.25 * freq + 0.30 * contrast)
    return QualityReport(int(round(np.clip(score, 0, 100))), ocl, freq, contrast, area)
