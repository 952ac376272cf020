"""Validation shared by the frozen tunables dataclasses (extraction, matching, synthesis, face)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import fields

from .errors import ConfigurationError


def check_numeric_fields(params: object, *, may_be_negative: Iterable[str] = ()) -> None:
    """Raise ConfigurationError unless every numeric field of ``params`` is finite and non-negative.

    Booleans, strings and tuples are left to the dataclass's own checks.  ``may_be_negative``
    names fields whose sign carries meaning (a sigmoid's steepness, a detector's threshold).

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class P:
    ...     width: float = 1.0
    >>> check_numeric_fields(P())
    >>> check_numeric_fields(P(width=float("nan")))
    Traceback (most recent call last):
    ...
    ektp_biometrics.errors.ConfigurationError: width must be a finite number, got nan
    >>> check_numeric_fields(P(width=-2.0))
    Traceback (most recent call last):
    ...
    ektp_biometrics.errors.ConfigurationError: width must not be negative, got -2.0
    """
    signed = set(may_be_negative)
    for f in fields(params):  # type: ignore[arg-type]
        value = getattr(params, f.name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if not math.isfinite(value):
            raise ConfigurationError(f"{f.name} must be a finite number, got {value!r}")
        if value < 0 and f.name not in signed:
            raise ConfigurationError(f"{f.name} must not be negative, got {value!r}")
