"""Face embedders: discovered through entry points, the built-ins registered the same way.

The entry-point group is ``ektp_biometrics.face_embedders``; each entry names a
:class:`~ektp_biometrics.face.embedders.base.FaceEmbedder` subclass.  A plugin that fails to
load is logged and skipped.  The three built-ins are also known by name here, so a source
checkout whose package metadata is stale still finds them.

Examples
--------
>>> sorted(embedder_classes())[:3]
['dlib-resnet', 'lbp', 'onnx']
>>> get_embedder("lbp").name
'lbp'
"""

from __future__ import annotations

import functools
import importlib
import logging
from importlib.metadata import entry_points
from typing import Any

from ...errors import ConfigurationError, DependencyError
from .base import FaceEmbedder

__all__ = ["FaceEmbedder", "ENTRY_POINT_GROUP", "embedder_classes", "available_embedders", "get_embedder", "default_embedder_name"]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "ektp_biometrics.face_embedders"

_BUILTINS = {
    "dlib-resnet": "ektp_biometrics.face.embedders.dlib_resnet:DlibResnetEmbedder",
    "lbp": "ektp_biometrics.face.embedders.lbp:LbpEmbedder",
    "onnx": "ektp_biometrics.face.embedders.onnx:OnnxEmbedder",
}


def _load(target: str) -> type[FaceEmbedder]:
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


@functools.lru_cache(maxsize=1)
def embedder_classes() -> dict[str, type[FaceEmbedder]]:
    """Name -> embedder class, from the entry points (built-ins included), loaded once."""
    found: dict[str, type[FaceEmbedder]] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = entry.load()
        except Exception as exc:  # a broken plugin must not take the others down
            log.warning("face embedder plugin %r could not be loaded and is skipped: %s", entry.name, exc)
            continue
        if not (isinstance(cls, type) and issubclass(cls, FaceEmbedder)):
            log.warning("face embedder plugin %r is not a FaceEmbedder subclass and is skipped", entry.name)
            continue
        found[entry.name] = cls
    for name, target in _BUILTINS.items():
        if name not in found:
            found[name] = _load(target)
    return found


def available_embedders() -> dict[str, str | None]:
    """Name -> None if the embedder can run here, else the reason it cannot.

    Examples
    --------
    >>> available_embedders()["lbp"] is None
    True
    """
    status: dict[str, str | None] = {}
    for name, cls in embedder_classes().items():
        try:
            cls.check_viable()
        except DependencyError as exc:
            status[name] = str(exc)
        else:
            status[name] = None
    return status


def default_embedder_name() -> str:
    """``"dlib-resnet"`` when the face extra is installed, else the weak ``"lbp"`` fallback."""
    return "dlib-resnet" if available_embedders().get("dlib-resnet") is None else "lbp"


@functools.lru_cache(maxsize=8)
def _shared_instance(name: str) -> FaceEmbedder:
    return embedder_classes()[name]()


def get_embedder(name: str | None = None, **options: Any) -> FaceEmbedder:
    """An embedder instance by registry name; ``None`` picks :func:`default_embedder_name`.

    Instances without options are shared (embedders are stateless after loading their model).

    Raises
    ------
    ConfigurationError
        If no embedder has that name.
    DependencyError
        If the embedder cannot run here; the message says what to install.
    """
    if name is None:
        name = default_embedder_name()
        if name == "lbp":
            log.warning("dlib is not installed: using the weak 'lbp' face embedder; pip install 'ektp-biometrics[face]'")
    classes = embedder_classes()
    if name not in classes:
        raise ConfigurationError(f"no face embedder named {name!r}; known: {', '.join(sorted(classes))}")
    classes[name].check_viable()
    if options:
        return classes[name](**options)
    return _shared_instance(name)
