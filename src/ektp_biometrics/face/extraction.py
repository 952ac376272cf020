"""From a photo to a :class:`FaceTemplate`: detect, align, embed."""

from __future__ import annotations

from ..errors import ConfigurationError, ExtractionError
from ._image import ImageLike, as_rgb
from .detection import FaceBox, detect
from .embedders import FaceEmbedder, get_embedder
from .params import DEFAULT_DETECTION, DetectionParameters
from .template import FaceTemplate

__all__ = ["extract"]


def extract(
    image: ImageLike,
    *,
    embedder: str | FaceEmbedder | None = None,
    face: FaceBox | None = None,
    detection: DetectionParameters = DEFAULT_DETECTION,
    quality: int | None = None,
) -> FaceTemplate:
    """Make the template of the most prominent face in a photo.

    Parameters
    ----------
    image : (H, W) or (H, W, 3) ndarray of uint8, or path
        Grey or RGB photo.
    embedder : str or FaceEmbedder, optional
        Registry name (``"dlib-resnet"``, ``"lbp"``, a plugin's name) or an instance (e.g. an
        :class:`~ektp_biometrics.face.embedders.onnx.OnnxEmbedder`).  Default: ``dlib-resnet`` when
        the face extra is installed, else the weak ``lbp`` fallback (a warning is logged).
    face : FaceBox, optional
        A face already found by :func:`detect` in this image; otherwise the most confident one.
    detection : DetectionParameters
        Detector tunables.
    quality : int, optional
        Quality 0..100 to record in the template.

    Returns
    -------
    FaceTemplate

    Raises
    ------
    ImageError
        If the image cannot be read or is unusable.
    ExtractionError
        If no face is found.
    DependencyError
        If the requested embedder cannot run here.

    Examples
    --------
    >>> import numpy as np
    >>> photo = np.random.default_rng(1).integers(0, 256, (112, 92), dtype=np.uint8)
    >>> extract(photo, embedder="lbp")
    FaceTemplate(lbp 1, 2891-d, quality None)
    """
    rgb = as_rgb(image)
    if embedder is None or isinstance(embedder, str):
        embedder = get_embedder(embedder)
    elif not isinstance(embedder, FaceEmbedder):
        raise ConfigurationError(f"embedder must be a name or a FaceEmbedder, got {type(embedder).__name__}")
    if face is None:
        faces = detect(rgb, params=detection)
        if not faces:
            raise ExtractionError("no face found in the image; give a photo with one frontal face")
        face = faces[0]
    vector = embedder.embed(rgb, face)
    return FaceTemplate(vector, embedder.name, embedder.version, quality)
