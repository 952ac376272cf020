"""Every tunable of the fingerprint extractor, with its unit and where its value came from.

Lengths are in pixels at the working resolution of 500 dpi (1 px = 50.8 um); a typical adult
ridge period there is 8-11 px (Maltoni et al., *Handbook of Fingerprint Recognition*, 3rd ed.,
section 3.5: 9 px = inter-ridge distance at 500 dpi).  "Tuned" values were chosen on the
FVC2002 DB1_B / FVC2000 DB2_B development images by the minutiae count and matcher EER.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

from .._params import check_numeric_fields
from ..errors import ConfigurationError

__all__ = ["ExtractionParameters", "DEFAULT_PARAMETERS"]


@dataclass(frozen=True)
class ExtractionParameters:
    """Tunables of :func:`ektp_biometrics.fingerprint.extract`.

    Use :meth:`replace` to derive a variant; values are validated on creation.

    Examples
    --------
    >>> p = DEFAULT_PARAMETERS.replace(border_distance=12)
    >>> p.border_distance
    12
    """

    #: Working resolution in dpi; every other length assumes it.  ISO/IEC 19794-4 registration images are 500 ppi.
    working_dpi: int = 500

    # -- segmentation ---------------------------------------------------------------------------
    #: Side of the square blocks the foreground is decided on (px).  NBIS mindtct uses 8 px blocks.
    block_size: int = 8
    #: Window for local grey-level statistics (px); about two ridge periods so one ridge/valley pair is inside.
    stats_window: int = 17
    #: A block is foreground when its local standard deviation exceeds this fraction of the image's
    #: 95th-percentile block deviation (tuned; FVC2000 DB3's faint prints need it below 0.3).
    foreground_contrast: float = 0.22
    #: ... and its orientation coherence (0..1) is at least this, unless its contrast is 2x the bar.  Tuned
    #: with gradient_sigma = 1.5: 0.25 / 0.3 / 0.35 / 0.4 gave pooled EER 3.62 / 3.52 / 3.43 / 3.52 %.
    foreground_coherence: float = 0.35
    #: Morphological closing then opening radius on the block grid (blocks), to fill pores and drop specks.
    foreground_smoothing: int = 2
    #: Minimum area of a kept foreground component (block count); smaller islands are noise (tuned).
    min_component_blocks: int = 24

    # -- orientation ----------------------------------------------------------------------------
    #: Gaussian pre-smoothing of the image before its gradient is taken (px; 0 = plain 3x3 Sobel), so
    #: the orientation follows ridges, not the pores and dots of dry skin (derivative of Gaussian, as in
    #: Bazen & Gerez 2002).  Tuned: 1.0 / 1.25 / 1.5 / 1.75 / 2.0 px gave pooled EER 4.02 / 3.77 / 3.62 /
    #: 3.62 / 4.37 % against 4.18 % for 0 (docs/fingerprint.md, "Tried").
    gradient_sigma: float = 1.5
    #: Gaussian sigma for averaging gradient moments (px).  Bazen & Gerez (PAMI 2002) use a 16-px window.
    orientation_sigma: float = 6.0
    #: Extra smoothing of the doubled-angle vector field on the block grid (blocks), for noisy areas.
    orientation_smoothing: float = 1.5

    # -- ridge period ---------------------------------------------------------------------------
    #: Grid step of the period estimate (px).
    period_step: int = 16
    #: x-signature half-length along the ridge normal (px): 32-px window as in Hong, Wan & Jain (PAMI 1998).
    period_half_length: int = 16
    #: Half-width of the band averaged along the ridges (px).
    period_half_width: int = 6
    #: Plausible ridge period range at 500 dpi (px); Hong et al. use 3..25, adults span about 6..15.
    min_period: float = 4.5
    max_period: float = 16.0
    #: Period assumed where no estimate is possible (px): the adult median at 500 dpi.
    default_period: float = 9.0

    # -- contextual enhancement -----------------------------------------------------------------
    #: Number of quantised orientations of the filter bank (Hong et al. use 16; finer costs only table space).
    orientation_bins: int = 24
    #: Quantised ridge periods covered by the bank, from min_period to max_period.
    period_bins: int = 12
    #: Gaussian sigma along the ridge (px) and number of taps each side: smooths pores and breaks.
    along_sigma: float = 3.0
    along_half_taps: int = 6
    #: Gaussian envelope across the ridge, as a fraction of the local period (Hong et al.: sigma 4 px at period ~9).
    across_sigma_periods: float = 0.42
    #: Taps each side across the ridge, as a multiple of the period (enough to cover +-2 sigma).
    across_half_periods: float = 0.9

    # -- minutiae -------------------------------------------------------------------------------
    #: Minutiae closer than this to the foreground border are dropped (px): the border creates false endings.
    #: Tuned: 10..14 px gave the same pooled EER; 12 keeps FVC2002 DB3's faint prints above 25 minutiae.
    border_distance: int = 12
    #: ... and closer than this to the image frame (px): a ridge cut by the frame ends exactly there.
    frame_distance: int = 8
    #: Pixels walked along the ridge to measure a minutia's direction (px, about one ridge period).
    direction_steps: int = 10
    #: Longest skeleton walk used to detect spurs, short ridges and bridges (px).
    trace_steps: int = 20
    #: A branch from an ending that meets a bifurcation within this many pixels is a spur (px).
    #: Tuned: 12 px removed real minutiae (pooled EER 5.7% -> 4.8% at 6 px with the lengths below).
    spur_length: int = 6
    #: An isolated ridge shorter than this is a dot or an island, not two endings (px, tuned).
    short_ridge_length: int = 10
    #: Two endings closer than this that face each other are the two sides of a ridge break (px).
    break_distance: float = 15.0
    #: ... facing within this angle (radians) of exactly opposite, and aligned with the ridge flow.
    break_angle: float = math.radians(40)
    #: Two bifurcations joined by a skeleton path shorter than this, across the ridge flow, form a bridge (px).
    bridge_length: int = 8
    #: Minutiae with more than cluster_count others within cluster_radius are a noise cluster (px, count).
    cluster_radius: float = 10.0
    cluster_count: int = 2
    #: Minutiae where the enhanced ridges' amplitude is below this fraction of the print's median lie in
    #: smudged, scarred or faint areas (0 keeps all; tuned on the shared folders).
    min_ridge_amplitude: float = 0.4
    #: Minutiae where the orientation coherence is below this are in unreliable areas (0..1).  Tuned with
    #: the DoG orientation: 0.2 / 0.15 / 0.1 / 0.05 / 0 gave pooled EER 3.46 / 3.33 / 3.33 / 3.24 / 3.33 %.
    #: Coherence 0.1-0.2 covers only ~0.5 % of a print's area, yet its minutiae help the matcher.
    min_coherence: float = 0.05
    #: Keep at most this many minutiae, the most reliable (ISO/ANSI allow 255; matchers saturate near 100).
    max_minutiae: int = 120

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigurationError(f"{f.name} must be a finite number, got {value!r}")
        check_numeric_fields(self)
        if self.min_period >= self.max_period:
            raise ConfigurationError("min_period must be below max_period")
        if not 100 <= self.working_dpi <= 2000:
            raise ConfigurationError(f"working_dpi {self.working_dpi} is outside 100..2000")
        if self.orientation_bins < 4 or self.period_bins < 1 or self.block_size < 2:
            raise ConfigurationError("orientation_bins >= 4, period_bins >= 1 and block_size >= 2 are required")

    def replace(self, **changes: float) -> "ExtractionParameters":
        """A copy with some values changed (validated)."""
        return replace(self, **changes)


DEFAULT_PARAMETERS = ExtractionParameters()
