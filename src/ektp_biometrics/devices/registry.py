"""Driver discovery through the ``ektp_biometrics.devices`` entry-point group.

A driver is a class with a ``name``, the ``kinds`` of device it serves, a ``check_viable()``
class method that raises :class:`~ektp_biometrics.errors.DeviceUnavailable` saying why it cannot
run here, and a ``discover(**options)`` class method returning the devices it can open.  The
built-in drivers are registered in the project's ``pyproject.toml`` exactly like a vendor's
would be, so there is one path for both.  A driver whose module fails to import is logged and
skipped: one broken plugin must not stop a station.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, ClassVar, Protocol, runtime_checkable

from ..errors import DeviceUnavailable
from ._base import Device, DeviceKind

__all__ = ["ENTRY_POINT_GROUP", "Driver", "DriverReport", "load_drivers", "get_driver", "driver_reports", "open_devices"]

ENTRY_POINT_GROUP = "ektp_biometrics.devices"

log = logging.getLogger(__name__)


@runtime_checkable
class Driver(Protocol):
    """What an entry point in ``ektp_biometrics.devices`` must point to."""

    name: ClassVar[str]
    kinds: ClassVar[tuple[DeviceKind, ...]]

    @classmethod
    def check_viable(cls) -> None:
        """Return if the driver can run here; else raise DeviceUnavailable with the reason."""

    @classmethod
    def discover(cls, **options: Any) -> list[Device]:
        """Open and return the devices this driver can reach now."""


@dataclass(frozen=True)
class DriverReport:
    """One line of ``ektp-bio devices``: a driver, whether it can run, and why not."""

    name: str
    kinds: tuple[DeviceKind, ...]
    viable: bool
    reason: str


def load_drivers() -> dict[str, type]:
    """Load every driver registered in the entry-point group, skipping (and logging) broken ones.

    Returns
    -------
    dict
        Entry-point name -> driver class, sorted by name.

    Examples
    --------
    >>> drivers = load_drivers()
    >>> {"simulated", "folder", "opencv", "sbi"} <= set(drivers)
    True
    """
    found: dict[str, type] = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            driver = point.load()
        except Exception as exc:  # any import-time failure of a third-party plugin: skip it, keep the station up
            log.warning("device driver %r (%s) failed to load and is skipped: %s: %s", point.name, point.value, type(exc).__name__, exc)
            continue
        if not isinstance(driver, type) or not all(hasattr(driver, attr) for attr in ("check_viable", "discover", "kinds")):
            log.warning("device driver %r (%s) is not a driver class (needs kinds, check_viable, discover); skipped", point.name, point.value)
            continue
        found.setdefault(point.name, driver)
    return dict(sorted(found.items()))


def get_driver(name: str) -> type:
    """The driver class registered under ``name``.

    Raises
    ------
    DeviceUnavailable
        If no loadable driver has that name (the message lists the ones that exist).
    """
    drivers = load_drivers()
    if name not in drivers:
        raise DeviceUnavailable(f"no device driver named {name!r}; installed drivers: {', '.join(drivers) or 'none'}")
    return drivers[name]


def _viability(driver: type) -> tuple[bool, str]:
    try:
        driver.check_viable()
    except DeviceUnavailable as exc:
        return False, str(exc)
    return True, ""


def driver_reports() -> list[DriverReport]:
    """Every loadable driver with its viability and, when not viable, the reason.

    Examples
    --------
    >>> report = {r.name: r for r in driver_reports()}
    >>> report["simulated"].viable
    True
    """
    reports = []
    for name, driver in load_drivers().items():
        viable, reason = _viability(driver)
        reports.append(DriverReport(name, tuple(driver.kinds), viable, reason))
    return reports


def open_devices(name: str, **options: Any) -> list[Device]:
    """Check that driver ``name`` can run, then open the devices it finds.

    Raises
    ------
    DeviceUnavailable
        If the driver is unknown or not viable here (the reason says what is missing).
    """
    driver = get_driver(name)
    driver.check_viable()
    return list(driver.discover(**options))
