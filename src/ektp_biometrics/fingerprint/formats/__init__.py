"""Serialize :class:`FingerprintTemplate` in standard and library formats.

=================  =========================================================  ============
format             what                                                        views
=================  =========================================================  ============
``"iso19794-2"``   ISO/IEC 19794-2:2005 finger minutiae record (alias "iso")   1..255
``"ansi378"``      ANSI INCITS 378-2004 finger minutiae record (alias "ansi")  1..255
``"xyt"``          NIST NBIS text as ``mindtct -m1`` writes it (alias          1
                   "xyt-m1")
``"xyt-nist"``     NIST NBIS text as plain ``mindtct`` writes it               1
``"ektp"``         this library's lossless, versioned, CRC-checked binary      1
=================  =========================================================  ============

Names are case-insensitive; ``_`` and ``-`` are interchangeable.  Layouts, conventions and
every rounding rule are in ``docs/templates.md`` and in each format module's docstring.

Every reader raises :class:`~ektp_biometrics.errors.TemplateFormatError` (and nothing else) on
malformed input, checking each declared count and length against the bytes actually present
before it reads them; an unknown format name or option raises
:class:`~ektp_biometrics.errors.ConfigurationError`.

Examples
--------
>>> from ektp_biometrics.fingerprint import FingerprintTemplate, make_minutiae
>>> t = FingerprintTemplate(300, 400, make_minutiae([10.0, 50.0], [20.0, 60.0], [0.0, 3.0], kind=[1, 2]))
>>> iso = dumps(t, "ISO")
>>> back = loads(iso, "iso19794-2")
>>> back.x.tolist(), back.kind.tolist(), back.resolution
([20.0, 60.0], [1, 2], 500)
>>> loads(dumps(t, "ektp"), "ektp") == t
True
>>> len(loads_all(dumps_many([t, t], "ansi378"), "ansi378"))
2
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ...errors import ConfigurationError
from ..template import FingerprintTemplate
from . import ansi378, ektp, iso19794_2, xyt
from ._common import as_record_bytes, check_template

__all__ = ["dumps", "dumps_many", "loads", "loads_all", "known_formats", "canonical_format"]


@dataclass(frozen=True)
class _Format:
    name: str
    dump: Callable[..., bytes]
    load_all: Callable[..., list[FingerprintTemplate]]
    multi_view: bool


_FORMATS = {
    f.name: f
    for f in (
        _Format(iso19794_2.NAME, iso19794_2.dumps, iso19794_2.loads_all, True),
        _Format(ansi378.NAME, ansi378.dumps, ansi378.loads_all, True),
        _Format(xyt.NAME_M1, xyt.dumps_m1, xyt.loads_all_m1, False),
        _Format(xyt.NAME_NIST, xyt.dumps_nist, xyt.loads_all_nist, False),
        _Format(ektp.NAME, ektp.dumps, ektp.loads_all, False),
    )
}
_ALIASES = {
    "iso": iso19794_2.NAME,
    "iso19794": iso19794_2.NAME,
    "iso-19794-2": iso19794_2.NAME,
    "iso19794-2:2005": iso19794_2.NAME,
    "ansi": ansi378.NAME,
    "ansi-378": ansi378.NAME,
    "ansi378-2004": ansi378.NAME,
    "incits378": ansi378.NAME,
    "xyt-m1": xyt.NAME_M1,
    "m1": xyt.NAME_M1,
    "nist": xyt.NAME_NIST,
}


def known_formats() -> tuple[str, ...]:
    """Canonical names of the supported formats.

    >>> known_formats()
    ('ansi378', 'ektp', 'iso19794-2', 'xyt', 'xyt-nist')
    """
    return tuple(sorted(_FORMATS))


def canonical_format(format: str) -> str:  # noqa: A002 - the standard word
    """Resolve a case-insensitive name or alias to its canonical format name.

    >>> canonical_format("ISO"), canonical_format("ANSI_378")
    ('iso19794-2', 'ansi378')
    """
    if not isinstance(format, str):
        raise ConfigurationError(f"format must be a string such as 'iso19794-2', got {type(format).__name__}")
    key = format.strip().lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    if key not in _FORMATS:
        aliases = ", ".join(sorted(_ALIASES))
        raise ConfigurationError(
            f"unknown template format {format!r}; known formats: {', '.join(known_formats())} (aliases: {aliases})"
        )
    return key


def dumps(template: FingerprintTemplate, format: str = "iso19794-2", **options: Any) -> bytes:  # noqa: A002
    """Serialize one template.

    Parameters
    ----------
    template : FingerprintTemplate
    format : str
        One of :func:`known_formats` or an alias, case-insensitive.
    **options
        Header fields the template does not carry: ``device_type`` (0..4095) and
        ``certification`` (0..15) for ISO/ANSI, ``product_owner`` and ``product_type`` for ANSI.

    Returns
    -------
    bytes

    Raises
    ------
    ConfigurationError
        Unknown format or option, or ``template`` is not a FingerprintTemplate.
    """
    fmt = _FORMATS[canonical_format(format)]
    return fmt.dump([check_template(template)], **options)


def dumps_many(templates: Sequence[FingerprintTemplate], format: str = "iso19794-2", **options: Any) -> bytes:  # noqa: A002
    """Serialize several finger views into one ISO/ANSI record.

    All templates must share width, height and resolution (the record header holds one of
    each).  View numbers are assigned per finger position, 0, 1, 2... in the given order.

    Raises
    ------
    ConfigurationError
        The format holds a single view (xyt, ektp), or as :func:`dumps`.
    TemplateFormatError
        The templates cannot share one record.
    """
    fmt = _FORMATS[canonical_format(format)]
    if isinstance(templates, FingerprintTemplate) or not isinstance(templates, Sequence):
        raise ConfigurationError("dumps_many takes a sequence (list or tuple) of FingerprintTemplate")
    if not fmt.multi_view and len(templates) != 1:
        raise ConfigurationError(f"format {fmt.name!r} holds one template; use iso19794-2 or ansi378 for several views")
    return fmt.dump(list(templates), **options)


def loads(data: bytes, format: str = "iso19794-2", **options: Any) -> FingerprintTemplate:  # noqa: A002
    """Parse one template.

    Parameters
    ----------
    data : bytes
        bytes, bytearray or memoryview.
    format : str
        One of :func:`known_formats` or an alias, case-insensitive.
    **options
        ``view`` (ISO/ANSI): which finger view to return, counted from 0 in record order
        (default 0).  ``width``, ``height`` (required) and ``resolution``, ``quality``,
        ``finger_position``, ``impression_type``, ``kind`` (xyt): what the text does not store.

    Raises
    ------
    TemplateFormatError
        The bytes are malformed, truncated, out of range, of an unknown version, or the
        record has no such view.
    ConfigurationError
        Unknown format or option.
    """
    fmt = _FORMATS[canonical_format(format)]
    record = as_record_bytes(data, fmt.name)
    if fmt.multi_view:
        options.setdefault("view", 0)
    return fmt.load_all(record, **options)[0]


def loads_all(data: bytes, format: str = "iso19794-2", **options: Any) -> list[FingerprintTemplate]:  # noqa: A002
    """Parse every finger view of a record (a one-element list for single-view formats).

    Same options and errors as :func:`loads`, except ``view``.
    """
    fmt = _FORMATS[canonical_format(format)]
    record = as_record_bytes(data, fmt.name)
    if "view" in options:
        raise ConfigurationError("loads_all returns every view; use loads(data, format, view=i) for one")
    return fmt.load_all(record, **options)
