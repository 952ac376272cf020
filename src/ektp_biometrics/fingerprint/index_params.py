"""Tunables of the 1:N fingerprint index, in one frozen dataclass with units and provenance.

The first stage follows Cappelli, Ferrara and Maltoni, *Fingerprint indexing based on Minutia
Cylinder-Code*, IEEE TPAMI 33(5):1051-1057, 2011 ("MCC indexing"): every valid cylinder is
reduced to a short bit code sampled from its binary cylinder (a locality-sensitive hash of the
Hamming space), and gallery fingers are ranked by how well the probe's codes find close codes
among theirs.  Values chosen by our own measurement say so: an exploratory run on the 7 real
folders (160 gallery fingers, 920 probes) that ranked the whole gallery with each setting and
recorded where the exhaustive matcher's best finger landed ("top-50 rate"); the resulting
accuracy and speed are measured by ``benchmarks/bench_index.py`` (docs/identification.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .._params import check_numeric_fields
from ..errors import ConfigurationError
from .match_params import DEFAULT_MATCH_PARAMETERS, MatchParameters

__all__ = ["DEFAULT_INDEX_PARAMETERS", "MINUTIA_INDEX_BITS", "IndexParameters"]

#: Bits at the top of a stored code's last word that name its minutia (a template holds at most
#: 255 minutiae), so the first stage can check that matching codes agree on one rigid motion.
MINUTIA_INDEX_BITS = 8


@dataclass(frozen=True)
class IndexParameters:
    """Every constant of :class:`ektp_biometrics.fingerprint.index.FingerprintIndex`.

    Examples
    --------
    >>> p = IndexParameters()
    >>> p.code_bits, p.shortlist >= 1
    (64, True)
    >>> IndexParameters(code_bits=100)
    Traceback (most recent call last):
    ...
    ektp_biometrics.errors.ConfigurationError: code_bits must be 64 or 128, got 100
    """

    # -- first stage: cylinder codes (MCC indexing) ---------------------------------------------
    #: Bits of one stored code (64 or 128): the last 8 name the code's minutia, the others
    #: (:attr:`descriptor_bits`) are sampled from its binary cylinder.  MCC indexing samples h bits
    #: per hash; 64 fits one machine word, one popcount per code pair.
    code_bits: int = 64
    #: Codes are sampled from cells whose centre lies within this fraction of the cylinder
    #: radius: inner cells are valid in almost every valid cylinder, so a code rarely holds the
    #: zeros of cells outside the print.  Our choice (0.75 R = 52.5 pixels at 500 dpi).
    code_radius_fraction: float = 0.75
    #: Seed of the fixed draw of sampled (cell, direction bin) positions.  Any fixed value; the
    #: index stores codes, so changing it needs a rebuild (a saved index refuses other parameters).
    code_seed: int = 20110501
    #: A code bit is set where the cell's summed minutia contribution reaches this (MCC's mu_psi
    #: is 0.01, which sets only 8% of the bits).  0.001 sets about 38% and ranked the true mate
    #: higher on the 7 real folders (first-stage top-50 mate rate 0.81 at 0.01, 0.86 at 0.003,
    #: 0.89 at 0.001, with 32 codes per finger).
    code_cell_threshold: float = 0.001
    #: Codes kept per enrolled finger, the most central minutiae first (bytes per finger are
    #: ``code_bits / 8`` times this).  MCC indexing keeps all; 48 bounds the first stage at 384
    #: bytes per finger (the exhaustive matcher's best finger was in the first stage's top 50
    #: for 0.907 of the real probes with 32 codes, 0.941 with 64).
    max_gallery_codes: int = 48
    #: Codes of a probe finger used in the first stage (its cost grows linearly with this).
    max_probe_codes: int = 64
    #: A pair of codes counts in the first stage when their descriptors agree on more than this
    #: many bits, with weight ``agreeing bits - floor``.  Unrelated 56-bit descriptors with 38% of
    #: their bits set agree on about 30.  On the sample below, 38 kept 32 of 40 mates in the first
    #: 400 persons (40: 31, 42: 27, 44: 24) when voting everyone.
    similarity_floor: int = 38
    #: Geometric vote of the first stage: each counted pair implies a rotation (the difference of
    #: the two minutia directions), binned into this many bins (32: 11.25 degrees).  Our choice.
    rotation_bins: int = 32
    #: The rotation is the bin whose neighbourhood of +- this many bins collects the most pair
    #: weight.  Our choice.
    rotation_spread: int = 1
    #: Under that rotation each pair implies a translation; the score is the largest weight of
    #: pairs whose translations lie within this distance of one pair's, pixels at 500 dpi (about
    #: two ridge periods).  A whole-gallery sample (50,000 of the 1,000,000 synthetic persons of
    #: docs/gallery_scale.md, 40 planted duplicates, ranks scaled to a million) put the true mate
    #: in the first 400 persons for 32 of 40 with everyone voted, 22 with the best-agreement sum it
    #: replaced (rotation alone, in a research prototype: 27); 15, 20 and 30 pixels were within
    #: one mate of each other in the prototype.
    translation_tolerance: float = 20.0
    #: The vote costs about 3.5 microseconds per finger, several times the popcount bound (the
    #: sum over probe codes of their best pair weight, which caps the vote), so only this many
    #: fingers (per-finger search) or persons (person search) of highest bound are voted.  At
    #: 1,000,000 persons x 2 fingers (docs/gallery_scale.md, 12 planted duplicates) the true mate
    #: was first for 7 with 8,192 voted, 9 with 32,768 and 10 with 65,536 (identify 1.13, 1.29
    #: and 1.46-1.48 s wall median, 1.66, 1.98 and 1.95-2.09 s max on 2 cores, up to 400 persons
    #: in full); voting everyone would put one more mate in the shortlist for about 7 s of CPU per
    #: probe person.
    vote_shortlist: int = 65536
    #: Fingers the first stage passes to the full matcher, per probe finger, before any growth.
    #: Each shortlisted finger costs one ``prepare`` (about 2.5 ms of CPU) unless cached.
    shortlist: int = 100
    #: Adaptive shortlist: while the best full-matcher score found is below ``confident_score``
    #: the shortlist doubles (the next-ranked first-stage fingers are scored too), up to
    #: ``max_shortlist`` fingers.  On the 7 real folders (160 fingers, 920 probes) the 18 probes
    #: whose exhaustive best finger the first stage ranked 100th or lower all had a best full
    #: score of at most 0.065 (weak, often impostor, matches), while a best score of 0.2 or more
    #: was always within the first stage's top 74; 56 % of the probes reach 0.2.  Our choice
    #: from that run (docs/identification.md).
    confident_score: float = 0.2
    #: Most fingers the adaptive shortlist grows to (400 = two doublings of 100: about 1 s of
    #: CPU for ``prepare`` at 2.5 ms each, so a probe without a confident match stays within the
    #: 1 s per probe finger on 2 cores at a million fingers).
    max_shortlist: int = 400

    # -- person-level search (several probe fingers) ---------------------------------------------
    #: Persons :meth:`FingerprintIndex.search_person` scores in full before any growth.  Persons
    #: are ranked by their fused first-stage score, the sum over probe fingers of the person's
    #: best first-stage score among its fingers of that position; each shortlisted person is
    #: then compared in full on every probe finger (one ``prepare`` per enrolled finger unless
    #: cached).  Chosen by measurement on 100,000 synthetic persons x 2 fingers with 60 planted
    #: duplicates: the summed first stage put the true mate within the first 100 persons for 34
    #: of 60 (within 400: 38), where the union of 50 per finger (the same 100 persons' cost)
    #: held 30 (docs/gallery_scale.md).
    person_shortlist: int = 100
    #: Adaptive person shortlist: while the best fused full-matcher evidence
    #: (:func:`~ektp_biometrics.fingerprint.index.fused_evidence`) is below
    #: ``log10(enrolled persons) + confident_margin`` decades, i.e. no candidate beats what
    #: chance reaches among that many persons, the person shortlist doubles, up to
    #: ``max_person_shortlist``.  400 before the first stage voted (it found 4 more of 60 mates
    #: than 100, above); with the vote no mate was found between the 100th and the 400th person:
    #: on the 50,000-person sample (40 mates, 64,000 of a million voted in proportion) as many
    #: mates ranked within 100 as within 400 of a million (30), and at 1,000,000 persons every
    #: mate found was within the first 100.  One doubling is kept as a margin; every probe without
    #: a confident match (most of a deduplication's) pays for it, 200 persons x 2 fingers
    #: prepared, about 0.5 s of CPU.
    max_person_shortlist: int = 200
    #: Decades of fused evidence beyond ``log10(enrolled persons)`` that stop the growth.
    confident_margin: float = 1.0

    # -- resources ----------------------------------------------------------------------------------
    #: Prepared templates kept in the least-recently-used cache (one is roughly 100-200 kB).
    cache_size: int = 256
    #: Gallery fingers per thread task of the first stage.
    chunk_fingers: int = 32768

    #: Parameters of the full matcher (and of the cylinders the codes are sampled from).
    match_params: MatchParameters = field(default=DEFAULT_MATCH_PARAMETERS)

    def __post_init__(self) -> None:
        def need(name: str, ok: bool, what: str) -> None:
            if not ok:
                raise ConfigurationError(f"{name} must be {what}, got {getattr(self, name)!r}")

        for name in (
            "code_bits", "code_seed", "max_gallery_codes", "max_probe_codes", "similarity_floor", "rotation_bins",
            "rotation_spread", "vote_shortlist", "shortlist",
            "max_shortlist", "person_shortlist", "max_person_shortlist", "cache_size", "chunk_fingers",
        ):  # fmt: skip
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigurationError(f"{name} must be an integer, got {value!r}")
        check_numeric_fields(self)
        need("code_bits", self.code_bits in (64, 128), "64 or 128")
        need("code_cell_threshold", self.code_cell_threshold > 0, "positive")
        need("code_radius_fraction", 0.2 <= self.code_radius_fraction <= 1.0, "in [0.2, 1]")
        need("max_gallery_codes", 1 <= self.max_gallery_codes <= 255, "between 1 and 255")
        need("max_probe_codes", 1 <= self.max_probe_codes <= 255, "between 1 and 255")
        need("similarity_floor", 0 <= self.similarity_floor < self.descriptor_bits, "in [0, descriptor_bits)")
        need("rotation_bins", 4 <= self.rotation_bins <= 360, "between 4 and 360")
        need("rotation_spread", 0 <= 2 * self.rotation_spread < self.rotation_bins, "at least 0 and under half of rotation_bins")
        need("translation_tolerance", 0.0 < self.translation_tolerance <= 500.0, "in (0, 500] pixels")
        need("vote_shortlist", 1 <= self.vote_shortlist <= 10_000_000, "between 1 and 10000000")
        need("shortlist", 1 <= self.shortlist <= 100_000, "between 1 and 100000")
        need("max_shortlist", self.shortlist <= self.max_shortlist <= 100_000, "between shortlist and 100000")
        need("confident_score", 0.0 <= self.confident_score <= 1.0, "in [0, 1]")
        need("person_shortlist", 1 <= self.person_shortlist <= 100_000, "between 1 and 100000")
        need("max_person_shortlist", self.person_shortlist <= self.max_person_shortlist <= 100_000, "between person_shortlist and 100000")
        need("confident_margin", 0.0 <= self.confident_margin <= 100.0, "in [0, 100]")
        need("chunk_fingers", self.chunk_fingers >= 1, "at least 1")
        if not isinstance(self.match_params, MatchParameters):
            raise ConfigurationError(f"match_params must be a MatchParameters, got {type(self.match_params).__name__}")

    @property
    def stored_form(self) -> str:
        """The parameters that shape what an index stores (its codes), as text.

        A saved index records this and loads under any parameters with the same stored form:
        shortlist sizes, thresholds, cache and chunk sizes only change how it is searched.

        Examples
        --------
        >>> IndexParameters(shortlist=7).stored_form == IndexParameters().stored_form
        True
        >>> IndexParameters(code_seed=1).stored_form == IndexParameters().stored_form
        False
        """
        stored = ("code_bits", "code_radius_fraction", "code_seed", "code_cell_threshold", "max_gallery_codes", "match_params")
        return "IndexParameters(" + ", ".join(f"{name}={getattr(self, name)!r}" for name in stored) + ")"

    @property
    def descriptor_bits(self) -> int:
        """Bits of a code sampled from the cylinder (the rest name the minutia)."""
        return self.code_bits - MINUTIA_INDEX_BITS

    @property
    def code_words(self) -> int:
        """64-bit words per code."""
        return self.code_bits // 64


#: The parameters :class:`FingerprintIndex` uses unless told otherwise.
DEFAULT_INDEX_PARAMETERS = IndexParameters()
