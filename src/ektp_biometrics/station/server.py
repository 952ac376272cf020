"""The local web enrollment station: a JSON API and a static page, served on 127.0.0.1 only.

The server is the standard library's :class:`http.server.ThreadingHTTPServer`; the page is plain
HTML and JavaScript shipped with the package (no framework, nothing fetched from the network).
All enrollment logic runs in :class:`~ektp_biometrics.station.runner.EnrollmentRunner`; the
handlers only translate HTTP to runner calls and back.

Endpoints
---------
``GET /``
    The station page (``/static/station.js`` and ``/static/station.css`` with it).
``GET /api/state``
    :meth:`EnrollmentRunner.snapshot`: devices, fingers, current capture, retries, switches,
    exceptions, face verdict, events, summary.
``POST /api/session``
    Start a session.  Body (``application/json``): ``{"person_id": "...", "missing": {"4": "injured"}}``,
    both optional (the person id is required when the station has a gallery).  202 with
    ``{"session_id": ...}``; 409 while a session runs.
``GET /api/preview?device=ID``
    A PNG frame of that device: its latest capture in the current (or last) session, else the
    driver's live preview.  503 when the device has nothing to show.
``GET /api/record``
    The last finished record (``EnrollmentRecord.to_dict()``, templates and face photo in base64).

Every error is JSON, ``{"error": {"code": ..., "type": ..., "message": ...}}``, never a stack
trace.  Requests whose ``Host`` is not this station's loopback address are refused (a defence
against DNS rebinding), and ``POST`` needs ``Content-Type: application/json`` (a cross-site form
cannot send it without a preflight this server never grants).
"""

from __future__ import annotations

import io
import json
import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np

from ..errors import (
    ConfigurationError,
    DeviceError,
    EktpError,
    RecordError,
    StationBusy,
)
from .runner import EnrollmentRunner

__all__ = ["LOOPBACK_HOSTS", "MAX_BODY_BYTES", "StationServer"]

log = logging.getLogger(__name__)

#: Host names the station binds to and accepts in the ``Host`` header.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")
#: Largest request body accepted, in bytes (a session request is well under 1 KiB).
MAX_BODY_BYTES = 64 * 1024
_STATIC = {"index.html": "text/html; charset=utf-8", "station.js": "text/javascript; charset=utf-8", "station.css": "text/css; charset=utf-8"}


class _ApiError(Exception):
    def __init__(self, status: HTTPStatus, code: str, message: str, error_type: str = "") -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.error_type = status, code, message, error_type


def _from_library(exc: EktpError) -> _ApiError:
    if isinstance(exc, StationBusy):
        return _ApiError(HTTPStatus.CONFLICT, "busy", str(exc), type(exc).__name__)
    if isinstance(exc, DeviceError):
        return _ApiError(HTTPStatus.SERVICE_UNAVAILABLE, "device", str(exc), type(exc).__name__)
    if isinstance(exc, (ConfigurationError, RecordError)):
        return _ApiError(HTTPStatus.BAD_REQUEST, "bad-request", str(exc), type(exc).__name__)
    return _ApiError(HTTPStatus.UNPROCESSABLE_ENTITY, "refused", str(exc), type(exc).__name__)


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=1)  # speed over size on a local link
    return buffer.getvalue()


def _parse_session_request(body: Any) -> tuple[str | None, dict[int, str]]:
    if not isinstance(body, dict):
        raise _ApiError(HTTPStatus.BAD_REQUEST, "bad-request", "the body must be a JSON object such as {\"person_id\": \"P-1\"}")
    unknown = set(body) - {"person_id", "missing"}
    if unknown:
        raise _ApiError(HTTPStatus.BAD_REQUEST, "bad-request", f"unknown field(s) {sorted(unknown)}; allowed: person_id, missing")
    person_id = body.get("person_id")
    if person_id is not None and not isinstance(person_id, str):
        raise _ApiError(HTTPStatus.BAD_REQUEST, "bad-request", "person_id must be a string")
    missing_in = body.get("missing") or {}
    if not isinstance(missing_in, dict):
        raise _ApiError(HTTPStatus.BAD_REQUEST, "bad-request", "missing must be an object of ISO position (\"1\"..\"10\") to reason")
    missing = {}
    for key, reason in missing_in.items():
        if not (isinstance(key, str) and key.isdigit() and 1 <= int(key) <= 10) or not isinstance(reason, str) or not reason.strip():
            raise _ApiError(HTTPStatus.BAD_REQUEST, "bad-request", f"missing[{key!r}] must map an ISO position 1..10 to a non-empty reason")
        missing[int(key)] = reason.strip()
    return (person_id.strip() or None) if person_id is not None else None, missing


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    server_version = "ektp-station"
    sys_version = ""  # do not advertise the Python version

    # -- plumbing --------------------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", "default-src 'self'; img-src 'self' blob:; style-src 'self'; script-src 'self'")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: HTTPStatus, data: Any) -> None:
        self._send(status, json.dumps(data, default=str).encode(), "application/json")

    def _error(self, error: _ApiError) -> None:
        self._json(error.status, {"error": {"code": error.code, "type": error.error_type, "message": error.message}})

    def _dispatch(self, routes: dict[str, Any]) -> None:
        try:
            self._check_host()
            path = urlsplit(self.path).path
            handler = routes.get(path)
            if path == "/favicon.ico" and self.command in ("GET", "HEAD"):  # browsers ask; there is none
                return self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
            if handler is None:
                if path.startswith("/static/") and self.command in ("GET", "HEAD"):
                    return self._static(path[len("/static/"):])
                known = {"GET": ("/", "/api/state", "/api/preview", "/api/record"), "POST": ("/api/session",)}
                if any(path in paths for method, paths in known.items() if method != self.command):
                    raise _ApiError(HTTPStatus.METHOD_NOT_ALLOWED, "method-not-allowed", f"{self.command} is not allowed on {path}")
                raise _ApiError(HTTPStatus.NOT_FOUND, "not-found", f"no such endpoint {path!r}; see GET /api/state")
            handler()
        except _ApiError as exc:
            self._error(exc)
        except EktpError as exc:
            self._error(_from_library(exc))
        except Exception:  # never a stack trace to the client; the station log keeps it
            log.exception("station request %s %s failed", self.command, self.path)
            self._error(_ApiError(HTTPStatus.INTERNAL_SERVER_ERROR, "internal", "internal error; see the station log", "InternalError"))

    def _check_host(self) -> None:
        host = self.headers.get("Host", "")
        allowed = {f"{name}:{self.server.server_port}" for name in LOOPBACK_HOSTS}
        if host not in allowed:
            raise _ApiError(HTTPStatus.FORBIDDEN, "bad-host", f"Host {host!r} refused; open the station at http://127.0.0.1:{self.server.server_port}/")

    # -- routes ----------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._dispatch({"/": lambda: self._static("index.html"), "/api/state": self._state, "/api/preview": self._preview, "/api/record": self._record})

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_POST(self) -> None:
        self._dispatch({"/api/session": self._start})

    def _static(self, name: str) -> None:
        if name not in _STATIC:  # a fixed list: no path is ever built from the request
            raise _ApiError(HTTPStatus.NOT_FOUND, "not-found", f"no static file {name!r}")
        data = resources.files("ektp_biometrics.station").joinpath("static", name).read_bytes()
        self._send(HTTPStatus.OK, data, _STATIC[name])

    def _state(self) -> None:
        self._json(HTTPStatus.OK, self.server.runner.snapshot())

    def _record(self) -> None:
        runner = self.server.runner
        if runner.busy:
            raise _ApiError(HTTPStatus.CONFLICT, "busy", "the session is still running; the record comes with its summary", "StationBusy")
        try:
            record, _ = runner.result()
        except ConfigurationError:
            raise _ApiError(HTTPStatus.NOT_FOUND, "no-record", "no session has finished yet; start one with POST /api/session") from None
        self._json(HTTPStatus.OK, record.to_dict())

    def _preview(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        ids = query.get("device", [])
        if len(ids) != 1:
            raise _ApiError(HTTPStatus.BAD_REQUEST, "bad-request", "give exactly one device, e.g. /api/preview?device=simulated:SIM-FP-0001")
        runner = self.server.runner
        try:
            device = runner.device(ids[0])
        except ConfigurationError as exc:
            raise _ApiError(HTTPStatus.NOT_FOUND, "not-found", str(exc), type(exc).__name__) from None
        # The session's latest capture is what the operator checks; before it, the live view.
        frame = device.last_frame
        if frame is None:
            try:
                frame = device.preview_frame()
            except DeviceError as exc:
                raise _ApiError(HTTPStatus.SERVICE_UNAVAILABLE, "no-preview", str(exc), type(exc).__name__) from None
        self._send(HTTPStatus.OK, _png(frame), "image/png")

    def _start(self) -> None:
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise _ApiError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "bad-content-type", "send the request body as Content-Type: application/json")
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            raise _ApiError(HTTPStatus.BAD_REQUEST, "bad-request", "Content-Length is not a number") from None
        if not 0 <= length <= MAX_BODY_BYTES:
            raise _ApiError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "too-large", f"the body may hold at most {MAX_BODY_BYTES} bytes")
        raw = self.rfile.read(length) if length else b"{}"
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise _ApiError(HTTPStatus.BAD_REQUEST, "bad-json", "the body is not valid UTF-8 JSON") from None
        person_id, missing = _parse_session_request(body)
        session_id = self.server.runner.start(person_id, missing)
        self._json(HTTPStatus.ACCEPTED, {"session_id": session_id})


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    runner: EnrollmentRunner


class StationServer:
    """Serve the station page and its JSON API for one :class:`EnrollmentRunner`.

    Parameters
    ----------
    runner : EnrollmentRunner
    host : {"127.0.0.1", "localhost"}
        The station never listens beyond this machine.
    port : int
        0 picks a free port (see :attr:`port`).

    Raises
    ------
    ConfigurationError
        If ``host`` is not a loopback name, the port is out of range, or the port is taken.

    Examples
    --------
    >>> import json, urllib.request
    >>> from ektp_biometrics import devices
    >>> runner = EnrollmentRunner([devices.SimulatedScanner()], devices.EnrollmentPolicy(capture_face=False))
    >>> with StationServer(runner, port=0) as station:
    ...     with urllib.request.urlopen(station.url + "api/state") as reply:
    ...         json.load(reply)["state"]
    'idle'
    """

    def __init__(self, runner: EnrollmentRunner, *, host: str = "127.0.0.1", port: int = 8765) -> None:
        if host not in LOOPBACK_HOSTS:
            raise ConfigurationError(f"the station serves this machine only: host must be one of {', '.join(LOOPBACK_HOSTS)}, got {host!r}")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ConfigurationError(f"port must be 0..65535 (0 = any free port), got {port!r}")
        try:
            self._httpd = _HTTPServer(("127.0.0.1", port), _Handler)
        except OSError as exc:
            raise ConfigurationError(f"cannot listen on 127.0.0.1:{port} ({exc.strerror}); choose another --port") from exc
        self._httpd.runner = runner
        self.runner = runner
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def serve_forever(self) -> None:
        """Serve in this thread until :meth:`close` is called from another."""
        self._httpd.serve_forever(poll_interval=0.2)

    def start(self) -> StationServer:
        """Serve in a background thread; returns self."""
        if self._thread is None:
            self._thread = threading.Thread(target=self.serve_forever, name="station-http", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and release the port (a running session finishes in its own thread)."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> StationServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
