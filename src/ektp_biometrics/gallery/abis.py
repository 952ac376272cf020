"""A transport-independent handler for the MOSIP ABIS API (specification version 0.9).

MOSIP's registration processor talks to an ABIS (Automated Biometric Identification System)
with JSON messages -- ``mosip.abis.insert``, ``.identify``, ``.delete``, ``.ping``,
``.pendingJobs``, ``.referenceCount`` -- each answered with ``returnValue`` ``"1"`` (success) or
``"2"`` (failed) and, on failure, a numeric ``failureReason`` (:data:`FAILURE_REASONS`).  The
specification is MOSIP's "ABIS API" page (docs.mosip.io, biometrics/abis-api; mosip/documentation).

:class:`AbisHandler` maps those messages onto a :class:`~ektp_biometrics.gallery.Gallery`:

* **INSERT** fetches the CBEFF XML at ``referenceURL`` through a pluggable *fetcher* (built in:
  ``file://`` under a configured root, :class:`FileFetcher`), reads it with
  :func:`ektp_biometrics.packet.cbeff.read_cbeff` and enrolls the ISO/IEC 19794-2 minutiae as a
  person whose id is the ``referenceId``.  No deduplication, as the specification requires.
* **IDENTIFY** searches the stored ``referenceId`` (or, without one, the biometrics at
  ``referenceURL``) against the whole gallery or the ``gallery.referenceIds`` given, returning
  every candidate above the operating point: the ``targetFPIR`` flag (``round(-10 log10 FPIR)``,
  30 = 1 in 1,000) or the handler's default, at most ``maxResults`` of them.
* **DELETE** withdraws the reference; **PING**, **PENDING_JOBS** and **REFERENCE_COUNT** report
  liveness, requests in progress and the live count.

:meth:`AbisHandler.handle` never raises: every malformed message gets its failure reason
(4 for anything that is not a JSON object of the right shape), an unexpected fault gets 3.

Examples
--------
>>> import tempfile, pathlib, json
>>> from ektp_biometrics.gallery import Gallery
>>> g = Gallery.open(pathlib.Path(tempfile.mkdtemp()) / "g.db")
>>> abis = AbisHandler(g)
>>> ping = {"id": "mosip.abis.ping", "version": "1.1", "requestId": "r-1", "requesttime": "2020-03-29T07:01:24.692Z"}
>>> reply = abis.handle(json.dumps(ping))
>>> reply["id"], reply["requestId"], reply["returnValue"]
('mosip.abis.ping', 'r-1', '1')
>>> abis.handle(b"{not json")["failureReason"]
'4'
>>> g.close()
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import re
import threading
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from ..errors import GalleryError, PacketError, RecordError, TemplateFormatError
from .records import Person
from .store import Gallery

__all__ = [
    "AbisHandler",
    "AbisSettings",
    "FileFetcher",
    "FAILURE_REASONS",
    "OPERATIONS",
    "API_VERSION",
    "target_fpir_to_rate",
    "make_http_server",
]

log = logging.getLogger(__name__)

#: The message version this handler speaks.
API_VERSION = "1.1"
#: ``id`` of each operation.
OPERATIONS = (
    "mosip.abis.insert",
    "mosip.abis.identify",
    "mosip.abis.delete",
    "mosip.abis.ping",
    "mosip.abis.pendingJobs",
    "mosip.abis.referenceCount",
)
SUCCESS, FAILED = "1", "2"
#: MOSIP ABIS failure reasons (specification 0.9, revisions up to September 2021).
FAILURE_REASONS = {
    "1": "internal error - unknown",
    "2": "aborted",
    "3": "unexpected error",
    "4": "unable to serve the request - invalid request structure",
    "5": "missing referenceId (in request body)",
    "6": "missing requestId (in request body)",
    "7": "unable to fetch biometric details (using referenceURL)",
    "8": "missing reference URL (in request body)",
    "9": "missing requesttime (in request body)",
    "10": "referenceId already exists (in ABIS)",
    "11": "CBEFF has no data",
    "12": "referenceId not found (in ABIS)",
    "13": "invalid version",
    "14": "invalid id",
    "15": "invalid requesttime format",
    "16": "invalid CBEFF format",
    "17": "data share URL has expired",
    "18": "biometric quality check failed",
}
# ISO 8601 as in the specification's examples: 2020-03-29T07:01:24.692Z (an offset is accepted too)
_REQUEST_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
#: Largest message accepted, in bytes (a request carries ids and a URL, never biometric data).
MAX_MESSAGE_BYTES = 1 << 20
#: Most referenceIds a gallery restriction may list.
MAX_GALLERY_IDS = 1_000_000


class _Failure(Exception):
    """A request refused with a MOSIP failure reason code."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(detail or FAILURE_REASONS[code])
        self.code = code


def target_fpir_to_rate(target: float) -> float:
    """The false-positive identification rate a MOSIP ``targetFPIR`` flag stands for: 10^(-target/10).

    Examples
    --------
    >>> target_fpir_to_rate(30), target_fpir_to_rate(40)
    (0.001, 0.0001)
    """
    return float(f"{10.0 ** (-float(target) / 10.0):.12g}")


@dataclass(frozen=True)
class AbisSettings:
    """ABIS-level configuration (the specification lets the adopter set these per deployment).

    Attributes
    ----------
    default_fpir : float
        Operating point of an IDENTIFY without a ``targetFPIR`` flag: 1e-3 (``targetFPIR`` 30, the
        specification's first example and issue 6's acceptance operating point).
    default_max_results : int
        Candidates returned at most without a ``maxResults`` flag.
    actor : str
        Name recorded in the gallery's audit trail for inserts and deletes.
    """

    default_fpir: float = 1e-3
    default_max_results: int = 10
    actor: str = "abis"

    def __post_init__(self) -> None:
        if not isinstance(self.default_fpir, float) or not 0.0 < self.default_fpir <= 1.0:
            raise RecordError(f"default_fpir must be a rate in (0, 1], got {self.default_fpir!r}")
        if isinstance(self.default_max_results, bool) or not isinstance(self.default_max_results, int) or self.default_max_results < 1:
            raise RecordError(f"default_max_results must be a positive integer, got {self.default_max_results!r}")


class FileFetcher:
    """Fetch ``file://`` reference URLs, only below ``root`` (a network peer must not read any file).

    Raises :class:`GalleryError` (reason ``"fetch-failed"``) for other schemes, paths outside
    ``root`` and unreadable files.

    Examples
    --------
    >>> FileFetcher("/srv/share")("https://example.org/x")
    Traceback (most recent call last):
    ...
    ektp_biometrics.errors.GalleryError: only file:// reference URLs are served here, got scheme 'https'
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    def __call__(self, url: str) -> bytes:
        parsed = urllib.parse.urlparse(url)
        if parsed.scheme != "file":
            raise GalleryError(f"only file:// reference URLs are served here, got scheme {parsed.scheme!r}", "fetch-failed")
        if parsed.netloc not in ("", "localhost"):
            raise GalleryError(f"file:// URL names a remote host {parsed.netloc!r}", "fetch-failed")
        path = Path(urllib.parse.unquote(parsed.path)).resolve()
        if not path.is_relative_to(self.root):
            raise GalleryError(f"{path} lies outside the reference root {self.root}", "fetch-failed")
        try:
            with open(path, "rb") as f:
                data = f.read(64 << 20)
        except OSError as exc:
            raise GalleryError(f"cannot read {path}: {exc.strerror}", "fetch-failed") from None
        return data


def _refuse_fetch(url: str) -> bytes:
    raise GalleryError("this ABIS has no fetcher configured for reference URLs", "fetch-failed")


class AbisHandler:
    """Answer MOSIP ABIS messages against a gallery.

    Parameters
    ----------
    gallery : Gallery
        Where references are stored and searched (thread-safe; one handler may serve threads).
    fetcher : callable(str) -> bytes, optional
        Reads the CBEFF XML behind a ``referenceURL``.  Raise :class:`GalleryError` with reason
        ``"expired"`` for an expired data-share URL (failure 17), anything else for failure 7.
        A MOSIP data share is encrypted; a deployment's fetcher decrypts it.  Default: none
        (reference URLs fail with 7).
    settings : AbisSettings
    """

    def __init__(
        self, gallery: Gallery, fetcher: Callable[[str], bytes] | None = None, settings: AbisSettings = AbisSettings()
    ) -> None:
        self.gallery = gallery
        self.fetcher = fetcher or _refuse_fetch
        self.settings = settings
        self._lock = threading.Lock()
        self._in_flight = 0

    # -- entry point -------------------------------------------------------------------------------
    def handle(self, message: bytes | str | Mapping[str, Any]) -> dict[str, Any]:
        """Answer one request (JSON text, bytes or an already parsed mapping); never raises."""
        with self._lock:
            self._in_flight += 1
        request: Any = None
        try:
            request = self._parse(message)
            return self._dispatch(request)
        except _Failure as failure:
            log.info("ABIS request refused (%s): %s", failure.code, failure)
            return self._reply(request, FAILED, failureReason=failure.code)
        except Exception:  # noqa: BLE001 - the service must answer, never crash: code 3, details in the log
            log.exception("ABIS request failed unexpectedly")
            return self._reply(request, FAILED, failureReason="3")
        finally:
            with self._lock:
                self._in_flight -= 1

    def pending(self) -> int:
        """Requests being served right now, besides the caller's."""
        with self._lock:
            return max(0, self._in_flight - 1)

    # -- parsing -----------------------------------------------------------------------------------
    @staticmethod
    def _parse(message: bytes | str | Mapping[str, Any]) -> dict[str, Any]:
        if isinstance(message, Mapping):
            request = dict(message)
        else:
            if isinstance(message, str):
                message = message.encode("utf-8", "surrogatepass")
            if not isinstance(message, (bytes, bytearray)) or len(message) > MAX_MESSAGE_BYTES:
                raise _Failure("4", "the message is not JSON text of at most 1 MiB")
            try:
                request = json.loads(bytes(message).decode("utf-8"), parse_constant=_no_constant)
            except (UnicodeDecodeError, ValueError, RecursionError):
                raise _Failure("4", "the message is not valid UTF-8 JSON") from None
        if not isinstance(request, dict):
            raise _Failure("4", "the message is not a JSON object")
        return request

    def _dispatch(self, request: dict[str, Any]) -> dict[str, Any]:
        operation = request.get("id")
        if operation not in OPERATIONS:
            raise _Failure("14", f"id must be one of {', '.join(OPERATIONS)}")
        if "version" not in request or request["version"] != API_VERSION:
            raise _Failure("13", f"version must be {API_VERSION!r}")
        if not _present(request.get("requestId")):
            raise _Failure("6")
        if not isinstance(request["requestId"], str):
            raise _Failure("4", "requestId must be a string")
        if not _present(request.get("requesttime")):
            raise _Failure("9")
        if not isinstance(request["requesttime"], str) or not _valid_time(request["requesttime"]):
            raise _Failure("15")
        handler = {
            "mosip.abis.insert": self._insert,
            "mosip.abis.identify": self._identify,
            "mosip.abis.delete": self._delete,
            "mosip.abis.ping": lambda r: self._reply(r, SUCCESS),
            "mosip.abis.pendingJobs": lambda r: self._reply(r, SUCCESS, jobscount=str(self.pending())),
            "mosip.abis.referenceCount": lambda r: self._reply(r, SUCCESS, count=str(self.gallery.count())),
        }[operation]
        return handler(request)

    @staticmethod
    def _reply(request: Any, return_value: str, **fields: Any) -> dict[str, Any]:
        operation = request.get("id") if isinstance(request, dict) else None
        request_id = request.get("requestId") if isinstance(request, dict) else None
        now = _dt.datetime.now(_dt.timezone.utc)
        reply = {
            "id": operation if isinstance(operation, str) and operation in OPERATIONS else None,
            "requestId": request_id if isinstance(request_id, str) else None,
            "responsetime": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
            "returnValue": return_value,
        }
        reply.update(fields)
        return reply

    # -- operations --------------------------------------------------------------------------------
    @staticmethod
    def _reference_id(request: dict[str, Any]) -> str:
        reference = request.get("referenceId")
        if not _present(reference):
            raise _Failure("5")
        if not isinstance(reference, str):
            raise _Failure("4", "referenceId must be a string")
        return reference

    def _fetch_person(self, reference_id: str, url: Any) -> Person:
        if not isinstance(url, str):
            raise _Failure("4", "referenceURL must be a string")
        try:
            data = self.fetcher(url)
        except GalleryError as exc:
            raise _Failure("17" if exc.reason == "expired" else "7", str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - a plug-in fetcher's own failure is a fetch failure
            raise _Failure("7", f"the fetcher failed: {type(exc).__name__}") from None
        if not isinstance(data, (bytes, bytearray)) or not data.strip():
            raise _Failure("11")
        from ..fingerprint.template import FingerprintTemplate
        from ..packet.cbeff import read_cbeff

        try:
            records = read_cbeff(bytes(data))
        except PacketError as exc:
            raise _Failure("16", str(exc)) from None
        if not records:
            raise _Failure("11")
        try:
            fingers = {r.position: FingerprintTemplate.from_bytes(r.bdb, "iso19794-2") for r in records}
            fingers = {pos: t if t.finger_position in (0, pos) else None for pos, t in fingers.items()}
            if any(t is None for t in fingers.values()):
                raise _Failure("16", "a BDB's finger position disagrees with its CBEFF Subtype")
            return Person(reference_id, fingers=fingers)
        except (TemplateFormatError, RecordError) as exc:
            raise _Failure("16", str(exc)) from None

    def _insert(self, request: dict[str, Any]) -> dict[str, Any]:
        reference_id = self._reference_id(request)
        if not _present(request.get("referenceURL")):
            raise _Failure("8")
        try:
            if reference_id in self.gallery or self.gallery.history(reference_id):
                raise _Failure("10")
        except RecordError as exc:
            raise _Failure("4", str(exc)) from None
        person = self._fetch_person(reference_id, request["referenceURL"])
        try:
            self.gallery.insert(person, by=self.settings.actor)
        except GalleryError as exc:
            if exc.reason == "exists":  # inserted by a concurrent request meanwhile
                raise _Failure("10") from None
            raise _Failure("1", str(exc)) from None
        return self._reply(request, SUCCESS)

    def _flags(self, request: dict[str, Any]) -> tuple[int, float]:
        flags = request.get("flags")
        if flags is None:
            flags = {}
        if not isinstance(flags, dict):
            raise _Failure("4", "flags must be an object")
        max_results = self.settings.default_max_results
        if flags.get("maxResults") is not None:
            max_results = _number(flags["maxResults"], "maxResults")
            if max_results != int(max_results) or not 1 <= max_results <= 100_000:
                raise _Failure("4", "maxResults must be an integer 1..100000")
        fpir = self.settings.default_fpir
        if flags.get("targetFPIR") is not None:
            target = _number(flags["targetFPIR"], "targetFPIR")
            if not 0 < target <= 200:
                raise _Failure("4", "targetFPIR must be round(-10 log10 FPIR), a number in (0, 200]")
            fpir = target_fpir_to_rate(target)
        return int(max_results), fpir

    def _gallery_ids(self, request: dict[str, Any]) -> frozenset[str] | None:
        gallery = request.get("gallery")
        if gallery is None:
            return None
        if not isinstance(gallery, dict) or not isinstance(gallery.get("referenceIds"), list):
            raise _Failure("4", "gallery must be an object with a referenceIds list")
        entries = gallery["referenceIds"]
        if len(entries) > MAX_GALLERY_IDS:
            raise _Failure("4", f"gallery lists more than {MAX_GALLERY_IDS} referenceIds")
        ids = set()
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("referenceId"), str) or not entry["referenceId"]:
                raise _Failure("4", "each gallery entry must be {\"referenceId\": \"...\"}")
            ids.add(entry["referenceId"])
        return frozenset(ids)

    def _identify(self, request: dict[str, Any]) -> dict[str, Any]:
        max_results, fpir = self._flags(request)
        among = self._gallery_ids(request)
        reference = request.get("referenceId")
        if _present(reference):
            reference_id = self._reference_id(request)
            try:
                probe = self.gallery.get(reference_id)
            except GalleryError:
                raise _Failure("12") from None
            except RecordError as exc:
                raise _Failure("4", str(exc)) from None
        elif _present(request.get("referenceURL")):
            probe = self._fetch_person("abis-identify-probe", request["referenceURL"])
        else:
            raise _Failure("5")
        try:
            candidates = self.gallery.identify(probe, k=max_results, fpir=fpir, among=among)
        except RecordError as exc:  # a malformed id in the gallery list
            raise _Failure("4", str(exc)) from None
        listed = []
        for c in candidates:
            modalities = []
            if c.finger_scores:
                modalities.append({"biometricType": "FMR", "analytics": {
                    "fingerScores": {str(pos): round(s, 6) for pos, s in c.finger_scores.items()},
                }})  # fmt: skip
            if c.face_score is not None:
                modalities.append({"biometricType": "FID", "analytics": {"faceScore": round(c.face_score, 6)}})
            listed.append({
                "referenceId": c.person_id,
                "analytics": {
                    "internalScore": f"{c.score:.4f}",
                    "falseMatchProbability": f"{c.false_match_probability:.3e}",
                    "confidence": str(min(100, int(round(10 * c.score)))),
                },
                "modalities": modalities,
            })  # fmt: skip
        return self._reply(request, SUCCESS, candidateList={
            "count": str(len(listed)), "candidates": listed,
            "analytics": {"targetFPIR": str(round(-10 * math.log10(fpir))), "galleryRestricted": str(among is not None).lower()},
        })  # fmt: skip

    def _delete(self, request: dict[str, Any]) -> dict[str, Any]:
        reference_id = self._reference_id(request)
        try:
            self.gallery.delete(reference_id, by=self.settings.actor, reason="mosip.abis.delete")
        except GalleryError as exc:
            raise _Failure("12" if exc.reason in ("not-found", "deleted") else "1", str(exc)) from None
        except RecordError as exc:
            raise _Failure("4", str(exc)) from None
        return self._reply(request, SUCCESS)


def _present(value: Any) -> bool:
    return value is not None and value != ""


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _valid_time(text: str) -> bool:
    match = _REQUEST_TIME.match(text)
    if not match:
        return False
    try:
        _dt.datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")
    except ValueError:  # 30 February, hour 25...
        return False
    zone = match.group(2)
    return zone == "Z" or (int(zone[1:3]) <= 23 and int(zone[4:6]) <= 59)


def _number(value: Any, name: str) -> float:
    """A flag value given as a JSON number or a numeric string (the specification's examples are strings)."""
    if isinstance(value, bool):
        raise _Failure("4", f"{name} must be a number")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise _Failure("4", f"{name} must be a number") from None
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _Failure("4", f"{name} must be a finite number")
    return float(value)



# -- HTTP transport ------------------------------------------------------------------------------
def make_http_server(handler: AbisHandler, host: str = "127.0.0.1", port: int = 8080):  # type: ignore[no-untyped-def]
    """A standard-library ``ThreadingHTTPServer`` answering ABIS messages POSTed as JSON to any path.

    Every answer is JSON: 200 with the ABIS reply (success or failure reason) for a POST, 405 for
    other methods, 411/413 for a missing or oversized body (failure reason 4 in the body); a
    fault inside the transport is logged and answered with failure reason 3, never a stack trace.
    ``port`` 0 picks a free port (``server.server_address`` tells which).  Call
    ``serve_forever()`` to run it and ``shutdown()`` from another thread to stop it.
    """
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class _Handler(BaseHTTPRequestHandler):
        server_version = "ektp-abis/1"
        sys_version = ""

        def _send(self, status: int, body: dict[str, Any]) -> None:
            payload = json.dumps(body).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self) -> None:  # noqa: N802 - the standard library's naming
            try:
                length_text = self.headers.get("Content-Length")
                if length_text is None or not length_text.strip().isdigit():
                    self._send(411, AbisHandler._reply(None, FAILED, failureReason="4"))
                    return
                length = int(length_text)
                if length > MAX_MESSAGE_BYTES:
                    self._send(413, AbisHandler._reply(None, FAILED, failureReason="4"))
                    self.close_connection = True
                    return
                self._send(200, handler.handle(self.rfile.read(length)))
            except (ConnectionError, TimeoutError):  # the client went away; nothing to answer
                self.close_connection = True
            except Exception:  # noqa: BLE001 - never a 500 with a trace
                log.exception("ABIS HTTP transport fault")
                self._send(200, AbisHandler._reply(None, FAILED, failureReason="3"))

        def _not_allowed(self) -> None:
            self._send(405, AbisHandler._reply(None, FAILED, failureReason="4"))

        do_GET = do_PUT = do_DELETE = do_PATCH = _not_allowed  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the standard library's signature
            log.info("%s %s", self.address_string(), format % args)

    server = ThreadingHTTPServer((host, port), _Handler)
    server.daemon_threads = True
    return server
