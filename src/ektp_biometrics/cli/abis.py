"""``ektp-bio abis serve``: the MOSIP ABIS API over HTTP, in front of an embedded gallery."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    top = subparsers.add_parser(
        "abis",
        help="serve the MOSIP ABIS API (insert, identify, delete, ping, pendingJobs, referenceCount)",
        description="Answer MOSIP ABIS JSON messages POSTed over HTTP, backed by a gallery file.",
    )
    sub = top.add_subparsers(dest="abis_command", metavar="ACTION", required=True)
    p = sub.add_parser("serve", help="run the HTTP service until interrupted")
    p.add_argument("--gallery", type=Path, required=True, help="gallery file (created if missing)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8080, help="TCP port (default 8080; 0 picks a free one)")
    p.add_argument("--reference-root", type=Path, default=None,
                   help="folder whose file:// referenceURLs INSERT may read (default: none, reference URLs fail with 7)")  # fmt: skip
    p.add_argument("--fpir", type=float, default=1e-3, help="operating point of an IDENTIFY without targetFPIR (default 0.001)")
    p.add_argument("--max-results", type=int, default=10, help="candidates per IDENTIFY without maxResults (default 10)")
    p.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    from ..errors import ConfigurationError
    from ..gallery import Gallery
    from ..gallery.abis import AbisHandler, AbisSettings, FileFetcher, make_http_server

    if not 0 <= args.port <= 65535:
        raise ConfigurationError(f"--port must be 0..65535, got {args.port}")
    try:
        settings = AbisSettings(default_fpir=float(args.fpir), default_max_results=args.max_results)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None
    fetcher = FileFetcher(args.reference_root) if args.reference_root is not None else None
    with Gallery.open(args.gallery) as gallery:
        try:
            server = make_http_server(AbisHandler(gallery, fetcher, settings), args.host, args.port)
        except OSError as exc:
            raise ConfigurationError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from None
        host, port = server.server_address[:2]
        print(f"ABIS service for {args.gallery} ({gallery.count()} references) on http://{host}:{port}/ ; Ctrl-C stops it", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            print("stopped")
        finally:
            server.server_close()
    return 0
