"""What every face embedder provides."""

from __future__ import annotations

import abc
from typing import ClassVar

import numpy as np

from ..detection import FaceBox

__all__ = ["FaceEmbedder"]


class FaceEmbedder(abc.ABC):
    """Turns a detected face into a fixed-length vector compared by cosine similarity.

    Subclasses set :attr:`name`, :attr:`version`, :attr:`dimension` and :attr:`summary`, may
    override :meth:`check_viable`, and implement :meth:`embed`.  Register a third-party embedder
    under the entry-point group ``ektp_biometrics.face_embedders``::

        [project.entry-points."ektp_biometrics.face_embedders"]
        my-embedder = "my_package.module:MyEmbedder"
    """

    #: Registry name, also written into every template.
    name: ClassVar[str]
    #: One line on what it is and how accurate it is, shown by ``available_embedders``.
    summary: ClassVar[str] = ""

    #: Version written into templates; change it whenever outputs change.
    version: str
    #: Length of the vectors.
    dimension: int

    @classmethod
    def check_viable(cls) -> None:
        """Raise :class:`~ektp_biometrics.errors.DependencyError` saying why this embedder cannot run here."""

    @abc.abstractmethod
    def embed(self, rgb: np.ndarray, face: FaceBox) -> np.ndarray:
        """(D,) float32 unit vector for ``face`` in ``rgb``, a C-contiguous (H, W, 3) uint8 photo."""
