"""Tunables of the face pipeline, in one place, with units and provenance.

Every threshold of the enrollment quality gate is here; :func:`ektp_biometrics.face.assess`
reports each measure next to the threshold it was compared with.  Provenance tags:

* ``ISO`` -- ISO/IEC 19794-5:2011 (and ICAO 9303 part 3) requirement or recommendation;
* ``OFIQ`` -- the BSI Open Source Face Image Quality reference implementation's measure;
* ``tuned`` -- chosen on AT&T/ORL and Yale with ``benchmarks/face_eval.py`` (see docs/face.md).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DetectionParameters", "QualityThresholds", "DEFAULT_DETECTION", "DEFAULT_QUALITY", "CHIP_SIZE"]

#: Side of the canonical aligned crop in pixels (dlib's ResNet descriptor input size).
CHIP_SIZE = 150


@dataclass(frozen=True)
class DetectionParameters:
    """How faces are found.

    Attributes
    ----------
    upsample_below : int
        Images whose longer side is below this many pixels are searched at twice the size, so
        faces down to ~40 px wide are found by the 80x80 px HOG window (tuned: ORL's 92x112
        frames need it).
    search_max_side : int
        Photos whose longer side exceeds this many pixels are first searched scaled down to it, which
        finds faces wider than ``80 * side / search_max_side`` pixels (160 px in a 640x480 frame) in a
        quarter of the time; the landmarks are still fitted on the full-size photo, and only if no
        face is found is the full-size photo searched (tuned: HOG takes 9 ms of CPU on a 640x480
        frame at 320 px, 13 ms at 400 px and 37 ms at full size, ``benchmarks/bench_face.py``).
    hog_threshold : float
        HOG-SVM score above which a window is a face; dlib's own default is 0 (tuned: -0.3 finds
        the dimly lit Yale faces without adding false faces on ORL/Yale).
    tight_crop_max_side : int
        Longer side, in pixels, up to which an image in which no face is found is taken to be a
        tightly cropped face photo, so the whole frame seeds the landmark model (tuned: ORL).
    tight_crop_box : tuple of float
        (top, left, bottom, right) of that seed box as fractions of the frame height and width
        (tuned: where dlib's HOG box lies on the ORL frames it does detect).
    min_side, max_side : int
        Accepted image sizes in pixels (the issue's range is 90x110 to 1920x1080; a margin both ways).
    """

    upsample_below: int = 400
    search_max_side: int = 320
    hog_threshold: float = -0.3
    tight_crop_max_side: int = 200
    tight_crop_box: tuple[float, float, float, float] = (0.15, 0.1, 0.9, 0.9)
    min_side: int = 48
    max_side: int = 4096


@dataclass(frozen=True)
class QualityThresholds:
    """Pass/fail thresholds of the enrollment quality gate.

    Distances are in pixels of the input image; angles in degrees; intensities on the 0..255
    scale of 8-bit images; sharpness, contrast and uniformity are measured on the canonical
    :data:`CHIP_SIZE` crop so they do not depend on the photo's size.

    Attributes
    ----------
    min_inter_eye : float
        Fewest pixels between the eye centres.  ISO/IEC 19794-5 asks 60 px for a token image and
        90 px for a full-frontal one; a counter camera should use :meth:`icao`.  The default, 25 px,
        admits the 92x112 research photos (ORL eyes lie 27..41 px apart) (ISO, relaxed: tuned).
    max_roll : float
        Largest in-plane tilt of the eye line.  ISO asks +-8 degrees; 10 leaves room for the
        landmark error (ISO + tuned).
    max_yaw : float
        Largest estimated left-right head turn.  ISO asks +-5 degrees of the true pose; the estimate
        from the nose's sideways offset is rough, so the gate allows 20 (tuned).
    min_sharpness : float
        Least share of the face's gradient energy that a further 1.5-pixel Gaussian blur removes
        (a no-reference blur measure; OFIQ's sharpness is also gradient based).  Tuned: ORL and Yale
        photos measure 0.20 and more, versions blurred with a Gaussian of 1/60 of the image side
        0.15 and less.
    exposure_range : tuple of float
        Allowed mean grey level of the face region (ISO: "no over- or under-exposure"; tuned: Yale
        photos lit from the side reach down to 34, the darkened test versions lie below 33).
    max_clipped : float
        Largest fraction of face pixels at 0..5 or 250..255 (OFIQ under/over-exposure prevention; tuned).
    min_contrast : float
        Least spread, 5th to 95th percentile, of face grey levels (OFIQ dynamic range; tuned: ORL and
        Yale photos 72 and more, darkened versions 42 and less).
    max_background_std : float
        Largest standard deviation of the grey levels of the background strip around the head
        (ISO: plain, uniform background; tuned: ORL's dark backdrops measure up to 50, Yale's lit
        wall with the head's shadow up to 109).  Not judged when fewer than
        ``min_background_fraction`` of the image is background.
    min_background_fraction : float
        See ``max_background_std``.
    max_centre_offset : float
        Largest horizontal distance of the eye midpoint from the image's vertical centre line, as a
        fraction of the image width (ISO 19794-5 full frontal: within 5 %; relaxed to 22 % for webcam
        frames and research crops, tuned: ORL and Yale reach 0.20).
    head_margin : float
        The head box (forehead to chin, ear to ear, estimated from the landmarks as multiples of the
        inter-eye distance) must lie inside the frame, allowing this fraction of the inter-eye
        distance to be cut off (ISO "whole face visible"; tuned on ORL's tight crops).
    """

    min_inter_eye: float = 25.0
    max_roll: float = 10.0
    max_yaw: float = 20.0
    min_sharpness: float = 0.17
    exposure_range: tuple[float, float] = (45.0, 210.0)
    max_clipped: float = 0.10
    min_contrast: float = 50.0
    max_background_std: float = 100.0
    min_background_fraction: float = 0.05
    max_centre_offset: float = 0.22
    head_margin: float = 0.5

    @classmethod
    def icao(cls) -> "QualityThresholds":
        """Stricter thresholds for a counter camera taking full-frontal ISO/ICAO photos.

        Examples
        --------
        >>> QualityThresholds.icao().min_inter_eye
        90.0
        """
        return cls(min_inter_eye=90.0, max_roll=8.0, max_yaw=10.0, max_centre_offset=0.05, head_margin=0.0)


DEFAULT_DETECTION = DetectionParameters()
DEFAULT_QUALITY = QualityThresholds()
