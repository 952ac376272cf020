"""Tunables of the minutiae matcher, in one frozen dataclass with units and provenance.

Distances are in pixels at 500 dpi (templates at another resolution are rescaled when they are
prepared), angles in radians.  "MCC" below is Cappelli, Ferrara and Maltoni, *Minutia
Cylinder-Code: a new representation and matching technique for fingerprint recognition*, IEEE
TPAMI 32(12):2128-2141, 2010; its cylinder values were cross-checked against two public MCC
implementations (constants R=70, NS=16, ND=6, sigma_S=28/3, sigma_D=2*pi/9, mu_psi=0.01,
tau_psi=400, omega=50, min_VC=0.75, min_M=2, min_ME=0.6, delta_theta=pi/2 agree).  The LSS-R and
n_P constants are the paper's Table 2 values as we read them; values changed by our own tuning say
so and name the run (``benchmarks/eval_verification.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .._params import check_numeric_fields
from ..errors import ConfigurationError

__all__ = ["MatchParameters", "DEFAULT_MATCH_PARAMETERS"]


@dataclass(frozen=True)
class MatchParameters:
    """Every constant of :func:`ektp_biometrics.fingerprint.match.match`.

    Examples
    --------
    >>> p = MatchParameters()
    >>> p.cells_per_side, p.direction_bins, p.cylinder_radius
    (16, 6, 70.0)
    >>> MatchParameters(cells_per_side=0)
    Traceback (most recent call last):
    ...
    ektp_biometrics.errors.ConfigurationError: cells_per_side must be between 4 and 32, got 0
    """

    # -- cylinder construction (MCC section 3) -------------------------------------------------
    #: Cylinder radius R, pixels at 500 dpi.  MCC.
    cylinder_radius: float = 70.0
    #: Cells along the cylinder's diameter N_S.  MCC (16 in MCC16b).
    cells_per_side: int = 16
    #: Direction sections N_D.  MCC.
    direction_bins: int = 6
    #: Spatial Gaussian sigma_S, pixels.  MCC: 28/3.
    sigma_space: float = 28.0 / 3.0
    #: Directional Gaussian sigma_D, radians.  MCC: 2*pi/9.
    sigma_direction: float = 2.0 * math.pi / 9.0
    #: Binarization threshold of a cell's summed contribution mu_psi (the bit cylinder's step).  MCC.
    cell_threshold: float = 0.01
    #: Steepness tau_psi of the float cylinder's sigmoid.  MCC.
    cell_steepness: float = 400.0
    #: Enlargement omega of the minutiae's convex hull that bounds valid cells, pixels.  MCC.
    hull_margin: float = 50.0
    #: Least fraction of a cylinder's in-circle cells that must be valid (min_VC).  MCC.
    min_valid_cell_fraction: float = 0.75
    #: Least number of other minutiae within R + 3 sigma_S for a cylinder to be valid (min_M).  MCC.
    min_neighbour_minutiae: int = 2

    # -- local similarity (MCC section 4.1) ----------------------------------------------------
    #: Largest direction difference of two matchable cylinders delta_theta, radians.  MCC uses
    #: pi/2, which assumes the two prints are rotated by less than that; we must accept any
    #: rotation, so the default pi disables the check (LSS-R's direction term still demands one
    #: consistent rotation among the pairs it keeps).
    max_direction_difference: float = math.pi
    #: Second LSS-R pass over only the pairs whose rotation theta_a - theta_b lies within this of
    #: the rotation the first pass's scoring pairs agree on, radians; pi disables (one pass).  Our
    #: addition: MCC's delta_theta = pi/2 gate, re-centred on the estimated rotation so that any
    #: rotation of the print is accepted.
    rotation_gate: float = math.pi / 2.0
    #: Pairs relaxed in the first pass, which only estimates the rotation (the relaxation's cost
    #: grows with the square of this).  12 from our tuning run: pooled EER 4.15% at 24, 4.18% at
    #: 12 (extractor snapshot 0774845d), for a quarter of the first pass's cost.
    rotation_estimate_pairs: int = 12
    #: Least fraction of in-circle cells valid in both cylinders (min_ME).  MCC: 0.6.
    min_matchable_fraction: float = 0.6

    # -- consolidation: number of pairs n_P (MCC section 4.2) ----------------------------------
    #: Pairs averaged into the global score: min_nP + round(Z(min(nA,nB); mu_P, tau_P) (max_nP - min_nP)).
    min_pairs: int = 4
    max_pairs: int = 12
    pairs_sigmoid_center: float = 20.0
    pairs_sigmoid_steepness: float = 0.4

    # -- LSS-R relaxation (MCC section 4.3) ------------------------------------------------------
    #: Relaxation iterations n_rel.  MCC: 5.
    relaxation_iterations: int = 5
    #: Weight w_R of a pair's own previous similarity.  MCC: 0.5.
    relaxation_weight: float = 0.5
    #: Sigmoid (centre, steepness) of the distance-difference compatibility, pixels.  MCC: (5, -8/5).
    distance_compat_center: float = 5.0
    distance_compat_steepness: float = -8.0 / 5.0
    #: Sigmoid of the relative-direction compatibility, radians.  MCC: (pi/12, -30).
    direction_compat_center: float = math.pi / 12.0
    direction_compat_steepness: float = -30.0
    #: Sigmoid of the radial-angle compatibility, radians.  MCC: (pi/12, -30).
    radial_compat_center: float = math.pi / 12.0
    radial_compat_steepness: float = -30.0
    #: Pairs entering relaxation n_R = min(nA, nB), capped at this many (bounds the O(n_R^2) step).
    #: 24 from our tuning run on the 7 real folders (pooled EER 4.59% uncapped, 4.46% at 24, 4.65%
    #: at 16; extractor snapshot d1e80016, benchmarks/eval_verification.py).
    #: Our change to LSS: the pairs are taken one-to-one (each minutia at most once), greedily in
    #: decreasing local similarity among every row's and column's best pair; the paper takes the
    #: top n_R entries of the whole matrix, where one strong cylinder can fill n_P by itself.
    max_relaxation_pairs: int = 24

    # -- global consolidation (our addition, after LSS-R) -----------------------------------------
    #: Weight of the alignment score in the final score; 0 gives plain LSS-R.  The alignment moves
    #: one print onto the other by the rigid transform LSS-R's scoring pairs agree on and counts
    #: minutiae that then coincide, which uses minutiae without a valid cylinder too.
    align_weight: float = 0.0
    #: Largest distance between two coinciding minutiae after alignment, pixels (skin distortion).
    align_distance: float = 20.0
    #: Largest direction difference of two coinciding minutiae, radians.
    align_direction: float = math.pi / 6.0
    #: A minutia counts as inside the other print when within this of its minutiae's hull, pixels.
    align_margin: float = 20.0
    #: Least overlap count used in the normalization m^2 / (n_a n_b), minutiae.
    align_min_overlap: int = 8

    def __post_init__(self) -> None:
        def need(name: str, ok: bool, what: str) -> None:
            if not ok:
                raise ConfigurationError(f"{name} must be {what}, got {getattr(self, name)!r}")

        check_numeric_fields(
            self, may_be_negative=("distance_compat_steepness", "direction_compat_steepness", "radial_compat_steepness")
        )
        need("cells_per_side", 4 <= self.cells_per_side <= 32, "between 4 and 32")
        need("direction_bins", 2 <= self.direction_bins <= 16, "between 2 and 16")
        need("cylinder_radius", 10.0 <= self.cylinder_radius <= 300.0, "between 10 and 300 pixels")
        need("sigma_space", self.sigma_space > 0, "positive")
        need("sigma_direction", self.sigma_direction > 0, "positive")
        need("cell_threshold", self.cell_threshold > 0, "positive")
        need("hull_margin", self.hull_margin >= 0, "non-negative")
        need("min_valid_cell_fraction", 0 <= self.min_valid_cell_fraction <= 1, "in [0, 1]")
        need("min_matchable_fraction", 0 <= self.min_matchable_fraction <= 1, "in [0, 1]")
        need("min_neighbour_minutiae", self.min_neighbour_minutiae >= 0, "non-negative")
        need("max_direction_difference", 0 < self.max_direction_difference <= math.pi, "in (0, pi]")
        need("rotation_gate", 0 < self.rotation_gate <= math.pi, "in (0, pi]")
        need("min_pairs", self.min_pairs >= 1, "at least 1")
        need("max_pairs", self.max_pairs >= self.min_pairs, "at least min_pairs")
        need("relaxation_iterations", self.relaxation_iterations >= 0, "non-negative")
        need("relaxation_weight", 0 <= self.relaxation_weight <= 1, "in [0, 1]")
        need("max_relaxation_pairs", 2 <= self.max_relaxation_pairs <= 255, "between 2 and 255")
        need("rotation_estimate_pairs", 2 <= self.rotation_estimate_pairs <= 255, "between 2 and 255")
        need("align_weight", 0 <= self.align_weight <= 1, "in [0, 1]")
        need("align_distance", self.align_distance > 0, "positive")
        need("align_direction", 0 < self.align_direction <= math.pi, "in (0, pi]")
        need("align_margin", self.align_margin >= 0, "non-negative")
        need("align_min_overlap", self.align_min_overlap >= 1, "at least 1")
        if self.cells_per_side != int(self.cells_per_side):
            raise ConfigurationError("cells_per_side must be an integer")

    @property
    def cell_size(self) -> float:
        """Side of one cell Delta_S = 2R / N_S, pixels."""
        return 2.0 * self.cylinder_radius / self.cells_per_side


#: The parameters :func:`match` uses unless told otherwise.
DEFAULT_MATCH_PARAMETERS = MatchParameters()
