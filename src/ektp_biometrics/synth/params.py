"""Tunables of the synthetic fingerprint generator, in one frozen dataclass.

Every length is in pixels at 500 dpi, every angle in radians, unless its comment says otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .._params import check_numeric_fields
from ..errors import ConfigurationError

__all__ = ["PATTERN_CLASSES", "SynthParameters", "DEFAULT_PARAMETERS"]

#: Henry pattern classes, in the order their codes (0..4) are stored.
PATTERN_CLASSES = ("arch", "tented_arch", "left_loop", "right_loop", "whorl")


@dataclass(frozen=True)
class SynthParameters:
    """Parameters of masters, impressions and the template-only fast path.

    The defaults make impressions resembling FVC2002 DB4_B (SFinGe v2.51, 288x384 at ~500 dpi).

    Examples
    --------
    >>> p = SynthParameters(max_rotation=0.1)
    >>> p.max_rotation, p.image_shape
    (0.1, (384, 288))
    """

    # -- master: identity ---------------------------------------------------------------------
    #: Population frequencies of arch, tented arch, left loop, right loop, whorl (fractions).
    #: Source: Wilson, Candela & Watson (1994), NIST, as quoted in the Handbook of Fingerprint
    #: Recognition (Maltoni et al.), section 5.1, and used by SFinGe.
    class_frequencies: tuple[float, float, float, float, float] = (0.037, 0.029, 0.338, 0.317, 0.279)
    #: Mean ridge period of a finger (pixels).  With the longer period above the core and below the
    #: deltas, 6.6 gives impressions whose median period (7.6 px, spectral estimate of
    #: benchmarks/bench_synth.py) matches FVC2002 DB4_B (7.5 px) and FVC2000 DB4_B (7.7 px); live
    #: optical sensors (FVC2002 DB1_B) measure 8.9 px, the Handbook's typical 9 px (0.46 mm).
    ridge_period_mean: float = 6.6
    #: Finger-to-finger standard deviation of the mean ridge period (pixels).
    ridge_period_std: float = 0.5
    #: Extra period above the northern-most core and below the deltas, as a fraction of the mean
    #: (SFinGe: "frequency is lower above the core and below the deltas", Cappelli 2000).
    ridge_period_boost: float = 0.12
    #: Largest random perturbation of each Vizcaya-Gerhardt correction control point (radians).
    correction_jitter: float = 0.25
    #: Seeds per 10,000 pixels from which the ridge pattern grows; sets the minutiae density
    #: (tuned with the contact size so the project extractor finds about as many minutiae on our
    #: 384 x 288 impressions as on FVC2002 DB4_B, ~27; docs/synth.md).
    seed_density: float = 1.2
    #: Most contextual-filtering iterations while growing the ridge pattern, and the passes run
    #: after it fills the silhouette (they straighten the fronts where growing patches met).
    growth_iterations: int = 60
    growth_polish: int = 6
    #: Gain applied to each Gabor response before clipping to [-1, 1] (dimensionless); high so
    #: growth fronts advance fast (fills a master in ~20 passes; tuning run in docs/synth.md).
    growth_gain: float = 10.0
    #: Gabor envelope standard deviation across and along ridges, as fractions of the local period.
    gabor_sigma_across: float = 0.42
    gabor_sigma_along: float = 0.55
    #: Master canvas margin around the impression (pixels): room for displacement and rotation.
    master_margin: int = 40
    #: Skeleton branches shorter than this fraction of the period are spurs, not ridges.
    min_branch_fraction: float = 0.9
    #: Minutiae closer than this fraction of the period to each other are a skeleton artefact pair.
    min_minutia_gap_fraction: float = 0.6
    #: Minutiae closer than this to the master's finger border are not counted (pixels).
    master_border: int = 12
    # -- impression ------------------------------------------------------------------------------
    #: Impression image size (rows, cols); FVC2002 DB4_B is 384 x 288.
    image_shape: tuple[int, int] = (384, 288)
    #: Largest rotation of the finger on the sensor (radians; 0.35 = 20 degrees).  FVC2002 asked
    #: volunteers for exaggerated rotation and displacement on some impressions (Maio et al. 2002),
    #: and SFinGe's DB4 imitates that; these ranges bring the matcher's error rates on our
    #: impressions near its rates on FVC2002 DB4_B (docs/synth.md).
    max_rotation: float = 0.35
    #: Largest displacement of the finger centre (pixels).
    max_displacement: float = 45.0
    #: Largest rotation and translation of the skin outside the close-contact region (radians, px),
    #: the rigid part of Cappelli, Maio & Maltoni's skin-distortion model (2001).
    distortion_rotation: float = 0.07
    distortion_translation: float = 11.0
    #: Brake length of the distortion model: how fast displacement grows outside the close-contact
    #: ellipse (pixels); kept large enough for the map to stay invertible.
    distortion_brake: float = 55.0
    #: Contact ellipse semi-axes as fractions of the image half-size, lowest and highest pressure.
    contact_min: float = 0.52
    contact_max: float = 0.82
    #: Ridge thickness change at the driest and wettest setting (pixels per side); clean
    #: impressions stay within +-``clean_thickness`` so the ridge topology is kept.  A ridge is
    #: about half a period (3.3 px) wide, so 0.8 px a side is already a very dry or wet print.
    max_thickness: float = 0.8
    clean_thickness: float = 0.4
    #: Grey levels of ridges, valleys and background (0..255), read off FVC2002 DB4_B histograms.
    ridge_level: float = 35.0
    valley_level: float = 195.0
    background_level: float = 185.0
    #: Sensor noise standard deviation (grey levels) for clean and noisy impressions.
    clean_noise: float = 5.0
    heavy_noise: float = 16.0
    #: Fraction of ridge pixels turned into pale speckles (pores / dust) for clean and noisy impressions.
    clean_speckle: float = 0.03
    heavy_speckle: float = 0.12
    #: Truth minutiae closer than this to the contact border or the image edge are dropped (pixels).
    truth_margin: float = 10.0
    # -- template-only path ------------------------------------------------------------------------
    #: Master minutiae per 1,000 px of finger area when no ridge pattern is rendered.  Rendered
    #: masters hold fewer over the whole silhouette but more near the centre; 0.76 makes
    #: impressions of the fast path carry as many true minutiae as rendered ones (~28 per
    #: 384 x 288 impression; ``benchmarks/bench_synth.py masters`` and docs/synth.md).
    template_minutia_density: float = 0.76
    #: Fraction of those minutiae that are bifurcations (rendered masters: 0.47).
    template_bifurcation_fraction: float = 0.47
    #: Simulated extractor noise of the fast path: missed and spurious fraction, jitter (px, rad).
    template_missed: float = 0.1
    template_spurious: float = 0.1
    template_position_jitter: float = 2.0
    template_direction_jitter: float = 0.12

    def __post_init__(self) -> None:
        freqs = tuple(float(f) for f in self.class_frequencies)
        if len(freqs) != 5 or min(freqs) < 0 or not math.isclose(sum(freqs), 1.0, abs_tol=1e-6):
            raise ConfigurationError("class_frequencies must be five non-negative fractions summing to 1")
        check_numeric_fields(self)
        if not 5.0 <= self.ridge_period_mean <= 14.0:
            raise ConfigurationError("ridge_period_mean must lie in 5..14 pixels")
        shape = tuple(self.image_shape)
        if len(shape) != 2 or not all(isinstance(s, int) and 64 <= s <= 2048 for s in shape):
            raise ConfigurationError(f"image_shape must be two integers in 64..2048, got {self.image_shape!r}")
        if not 0 < self.contact_min <= self.contact_max <= 1.2:
            raise ConfigurationError("need 0 < contact_min <= contact_max <= 1.2")
        if self.growth_iterations < 1:
            raise ConfigurationError("growth_iterations must be at least 1")


#: The parameters every function uses unless given others.
DEFAULT_PARAMETERS = SynthParameters()
