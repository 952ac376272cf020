"""Typed exceptions used across ektp_biometrics.

Every error the library raises on bad input derives from :class:`EktpError`, so an
application can catch one type at its boundary. Each subclass also derives from the
built-in exception a Python developer would expect (``ValueError`` for malformed data,
``RuntimeError`` for an unusable environment), so existing ``except ValueError``
handlers keep working.

Messages say what was wrong and what to do about it; they never include biometric
bytes or key material.
"""

from __future__ import annotations

__all__ = [
    "EktpError",
    "ImageError",
    "ExtractionError",
    "TemplateFormatError",
    "ConfigurationError",
    "DependencyError",
    "PacketError",
]


class EktpError(Exception):
    """Base class of every error raised by ektp_biometrics."""


class ImageError(EktpError, ValueError):
    """An image cannot be read or is unfit for processing (corrupt, empty, tiny, huge, wrong dtype)."""


class ExtractionError(EktpError, ValueError):
    """Features could not be extracted from an otherwise readable image (for example, no ridge area found)."""


class TemplateFormatError(EktpError, ValueError):
    """Serialized template bytes are malformed, truncated, out of range or of an unsupported version."""


class ConfigurationError(EktpError, ValueError):
    """A parameter or option has an invalid value."""


class DependencyError(EktpError, RuntimeError):
    """An optional dependency needed for the requested operation is not installed."""


class PacketError(EktpError, ValueError):
    """An enrollment packet, key file or station registry is malformed, forged, altered or refused.

    ``reason`` is a short stable code (for example ``"bad-signature"``, ``"revoked-station"``)
    that reports and quarantine files carry; the message explains it for a person.
    """

    def __init__(self, message: str, reason: str = "invalid") -> None:
        super().__init__(message)
        self.reason = reason


# --- Device drivers (ektp_biometrics.devices) -------------------------------------------

__all__ += [
    "DeviceError",
    "DeviceUnavailable",
    "DeviceNotReady",
    "DeviceBusy",
    "CaptureTimeout",
    "DeviceDisconnected",
    "CorruptFrame",
]


class DeviceError(EktpError, RuntimeError):
    """A capture device failed or cannot serve the request; the subclass says how."""


class DeviceUnavailable(DeviceError):
    """A driver cannot run here (missing library, no hardware, no service); the message says why."""


class DeviceNotReady(DeviceError):
    """The device is connected but not ready to capture (warming up, no finger, lid closed)."""


class DeviceBusy(DeviceError):
    """The device is serving another capture; retry later or use another device."""


class CaptureTimeout(DeviceError, TimeoutError):
    """No acceptable sample arrived before the capture timeout."""


class DeviceDisconnected(DeviceError):
    """The device went away (unplugged, service stopped) before or during a capture."""


class CorruptFrame(DeviceError):
    """The device returned a frame that is not a usable image (truncated, wrong shape, blank)."""


# --- Person records and the gallery (ektp_biometrics.gallery) ----------------------------

__all__ += ["RecordError", "GalleryError"]


class RecordError(EktpError, ValueError):
    """A person record or an identifier (such as an e-KTP NIK) is malformed; the message says which field and why."""


class GalleryError(EktpError, ValueError):
    """A gallery operation was refused (unknown or duplicate person id, deleted record, damaged store).

    ``reason`` is a short stable code (``"exists"``, ``"not-found"``, ``"deleted"``, ``"corrupt"``,
    ``"closed"``) that services can map to their own failure codes.
    """

    def __init__(self, message: str, reason: str = "invalid") -> None:
        super().__init__(message)
        self.reason = reason


# --- Evaluation data sets (ektp_biometrics.fingerprint.evaluation) -------------------------

__all__ += ["DatasetError"]


class DatasetError(EktpError, ValueError):
    """A folder of evaluation images is missing, holds no image named as the protocol expects, or mixes namings."""


# --- Enrollment station (ektp_biometrics.station) -----------------------------------------

__all__ += ["StationBusy"]


class StationBusy(EktpError, RuntimeError):
    """The enrollment station is already running a session; wait for it to finish, then start the next."""
