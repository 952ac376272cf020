"""Device specifications of the command line: ``driver[:option=value,...]``.

``ektp-bio enroll`` and ``ektp-bio station`` take ``--scanner`` and ``--camera`` specs, repeatable,
in order of preference (the first is used until it fails, then the next).  The ``simulated``
driver is built here with its fault options, so a demo can make a scanner die mid-session; every
other driver is opened through the entry-point registry with the options passed to its
``discover``.  Simulated scanners built from one call share one synthetic person, so a failover
to the second scanner captures the same fingers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..devices._base import Device, DeviceKind
from ..errors import ConfigurationError

__all__ = ["SIMULATED_OPTIONS", "DeviceSpec", "open_devices_from_specs", "parse_device_spec"]

_DRIVER_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
_OPTION_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

#: Options the ``simulated`` driver takes on the command line: name -> (type, meaning).
SIMULATED_OPTIONS: dict[str, tuple[type, str]] = {
    "serial": (str, "serial number shown in logs (default SIM-FP-<n> / SIM-CAM-<n>)"),
    "seed": (int, "synthetic generator seed (same seed, same person)"),
    "subject": (int, "which synthetic person stands at the scanner"),
    "size": (str, "impression size ROWSxCOLS in pixels at 500 dpi (default 240x240)"),
    "folder": (str, "read frames from this image folder instead (faces: e.g. a Yale or ORL folder)"),
    "disconnect_after": (int, "the device dies during the capture after this many successful ones"),
    "corrupt_frames": (int, "the next this-many captures return a blank frame"),
    "degrade": (float, "0..1 blur, noise and contrast loss added to every frame"),
    "not_ready": (bool, "status Not Ready"),
    "busy": (bool, "status Busy"),
    "timeout": (bool, "every capture times out"),
    "capture_delay": (float, "seconds a capture takes"),
    "slap": (bool, "scanner also captures slaps"),
}
_FAULT_OPTIONS = ("disconnect_after", "corrupt_frames", "degrade", "not_ready", "busy", "timeout")
_DEFAULT_FINGER_SIZE = (240, 240)


@dataclass(frozen=True)
class DeviceSpec:
    """One parsed ``--scanner`` / ``--camera`` value.

    Attributes
    ----------
    kind : DeviceKind
    driver : str
        Entry-point name (``"simulated"``, ``"sbi"``, ``"folder"``, ...).
    options : dict
        Option name -> value converted to bool, int, float or str.
    text : str
        The spec as given, for messages.
    """

    kind: DeviceKind
    driver: str
    options: dict[str, Any] = field(default_factory=dict)
    text: str = ""


def _convert(value: str) -> Any:
    lowered = value.lower()
    if lowered in ("true", "yes", "on"):
        return True
    if lowered in ("false", "no", "off"):
        return False
    for number in (int, float):
        try:
            return number(value)
        except ValueError:
            pass
    return value


def parse_device_spec(text: str, kind: DeviceKind | str) -> DeviceSpec:
    """Parse ``driver[:option=value,...]`` into a :class:`DeviceSpec`.

    Values ``true``/``false`` become bools and numbers become int or float; the rest stay strings.
    Options of the ``simulated`` driver are checked here (names and types), so a typo fails before
    a session starts.

    Raises
    ------
    ConfigurationError
        If the text is not of that form, an option repeats, or a simulated option is unknown or of
        the wrong type; the message names the part at fault.

    Examples
    --------
    >>> spec = parse_device_spec("simulated:serial=A,disconnect_after=4", "Finger")
    >>> spec.driver, spec.options
    ('simulated', {'serial': 'A', 'disconnect_after': 4})
    >>> parse_device_spec("simulated:explode=1", "Finger")
    Traceback (most recent call last):
    ...
    ektp_biometrics.errors.ConfigurationError: device spec 'simulated:explode=1': unknown simulated option 'explode'; known: serial, seed, subject, size, folder, disconnect_after, corrupt_frames, degrade, not_ready, busy, timeout, capture_delay, slap
    """
    kind = DeviceKind(kind)
    if not isinstance(text, str) or not text.strip():
        raise ConfigurationError("device spec is empty; expected DRIVER[:OPTION=VALUE,...], e.g. simulated:disconnect_after=4")
    driver, _, rest = text.strip().partition(":")
    if not _DRIVER_NAME.match(driver):
        raise ConfigurationError(f"device spec {text!r}: {driver!r} is not a driver name; expected DRIVER[:OPTION=VALUE,...]")
    raw: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in rest.split(","))) if rest else ():
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not _OPTION_NAME.match(name):
            raise ConfigurationError(f"device spec {text!r}: {item!r} is not OPTION=VALUE (option names are lower_case)")
        if name in raw:
            raise ConfigurationError(f"device spec {text!r}: option {name!r} is given twice")
        raw[name] = value.strip()
    options = _check_simulated(text, raw) if driver == "simulated" else {name: _convert(value) for name, value in raw.items()}
    return DeviceSpec(kind, driver, options, text)


_TYPE_WORDS = {int: "a whole number", float: "a number", bool: "true or false", str: "text"}


def _check_simulated(text: str, raw: dict[str, str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for name, value in raw.items():
        if name not in SIMULATED_OPTIONS:
            raise ConfigurationError(f"device spec {text!r}: unknown simulated option {name!r}; known: {', '.join(SIMULATED_OPTIONS)}")
        wanted = SIMULATED_OPTIONS[name][0]
        converted = value if wanted is str else _convert(value)  # text stays as typed (serial 0012)
        if wanted is float and isinstance(converted, int) and not isinstance(converted, bool):
            converted = float(converted)
        if not isinstance(converted, wanted) or (wanted is not bool and isinstance(converted, bool)):
            raise ConfigurationError(f"device spec {text!r}: option {name!r} needs {_TYPE_WORDS[wanted]}, got {value!r}")
        options[name] = converted
    if "size" in options:
        _parse_size(text, options["size"])
    return options


def _parse_size(text: str, value: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d{2,4})x(\d{2,4})", value)
    if not match or not all(64 <= int(v) <= 1024 for v in match.groups()):
        raise ConfigurationError(f"device spec {text!r}: size must be ROWSxCOLS with each side in 64..1024, got {value!r}")
    return int(match.group(1)), int(match.group(2))


def open_devices_from_specs(specs: Sequence[DeviceSpec]) -> list[Device]:
    """Open the devices the specs name, in order.

    Raises
    ------
    ConfigurationError
        If a simulated option's value is refused (e.g. a negative count) or a folder is missing.
    DeviceUnavailable
        If a driver is unknown or cannot run here, or found no device of the requested kind; the
        message says why (for example that no SBI service answers).
    """
    from ..devices import registry, simulated

    devices: list[Device] = []
    sources: dict[tuple, Any] = {}
    counters = {DeviceKind.FINGER: 0, DeviceKind.FACE: 0}
    for spec in specs:
        counters[spec.kind] += 1
        if spec.driver == "simulated":
            devices.append(_open_simulated(spec, counters[spec.kind], sources, simulated))
            continue
        options = dict(spec.options)
        if isinstance(options.get("ports"), str):
            options["ports"] = _parse_ports(spec.text, options["ports"])
        if spec.driver == "folder":
            options.setdefault("kind", spec.kind)
        try:
            found = registry.open_devices(spec.driver, **options)
        except TypeError as exc:  # discover() refused an option
            raise ConfigurationError(f"device spec {spec.text!r}: the {spec.driver} driver refused its options ({exc})") from exc
        matching = [d for d in found if d.info().kind is spec.kind]
        for extra in found:
            if extra not in matching:
                extra.close()
        if not matching:
            from ..errors import DeviceUnavailable

            raise DeviceUnavailable(f"device spec {spec.text!r}: the {spec.driver} driver found no {spec.kind.value} device; check it is connected")
        devices.extend(matching)
    return devices


def _parse_ports(text: str, value: str) -> range | list[int]:
    match = re.fullmatch(r"(\d+)(?:-(\d+))?", value)
    if not match:
        raise ConfigurationError(f"device spec {text!r}: ports must be PORT or FIRST-LAST, got {value!r}")
    first, last = int(match.group(1)), int(match.group(2) or match.group(1))
    if not 1 <= first <= last <= 65535:
        raise ConfigurationError(f"device spec {text!r}: port range {value!r} is out of 1..65535")
    return range(first, last + 1)


def _open_simulated(spec: DeviceSpec, number: int, sources: dict[tuple, Any], simulated: Any) -> Device:
    o = spec.options
    seed, subject = o.get("seed", 0), o.get("subject", 0)
    faults = simulated.Faults(**{name: o[name] for name in _FAULT_OPTIONS if name in o})
    delay = o.get("capture_delay", 0.0)
    if spec.kind is DeviceKind.FINGER:
        if "folder" in o:
            key: tuple = ("folder", str(Path(o["folder"]).resolve()), "grey")
            source = sources.get(key) or simulated.ImageFolderSource(o["folder"], mode="grey")
        else:
            shape = _parse_size(spec.text, o["size"]) if "size" in o else _DEFAULT_FINGER_SIZE
            key = ("synthetic", seed, subject, shape)
            source = sources.get(key) or simulated.SyntheticFingers(seed, subject, image_shape=shape)
        sources[key] = source
        serial = o.get("serial", f"SIM-FP-{number:04d}")
        return simulated.SimulatedScanner(source, serial=serial, faults=faults, capture_delay=delay, slap=o.get("slap", False), seed=seed)
    if "slap" in o or "size" in o or "subject" in o:
        raise ConfigurationError(f"device spec {spec.text!r}: slap, size and subject apply to scanners, not cameras")
    if "folder" in o:
        key = ("folder", str(Path(o["folder"]).resolve()), "rgb")
        source = sources.get(key) or simulated.ImageFolderSource(o["folder"], mode="rgb")
    else:
        key = ("drawn", seed)
        source = sources.get(key) or simulated.DrawnFaces(seed=seed)
    sources[key] = source
    serial = o.get("serial", f"SIM-CAM-{number:04d}")
    return simulated.SimulatedCamera(source, serial=serial, faults=faults, capture_delay=delay, seed=seed)
