"""Command line: python -m pvesim --listen 127.0.0.1:8006 --state-dir DIR --token 'root@pam!id=SECRET' ..."""

from __future__ import annotations

import argparse
import signal
import sys

from .schema import default_apidoc_path
from .server import make_server


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pvesim", description="Proxmox VE API simulator held to the API schema")
    parser.add_argument("--listen", default="127.0.0.1:8006", help="HOST:PORT to listen on (default %(default)s)")
    parser.add_argument("--state-dir", required=True, help="where etc/pve/... config files and sim/state.json live")
    parser.add_argument("--tls-dir", help="CA and server certificate directory (default STATE_DIR/tls)")
    parser.add_argument("--no-tls", action="store_true", help="plain HTTP (tests only)")
    parser.add_argument("--token", action="append", default=[], metavar="USER@REALM!ID=SECRET",
                        help="accepted API token (repeatable)")
    parser.add_argument("--password", action="append", default=[], metavar="USER@REALM:PASSWORD",
                        help="accepted login for /access/ticket (repeatable)")
    parser.add_argument("--node", default="pve", help="node name (default %(default)s)")
    parser.add_argument("--task-seconds", type=float, default=0.2, help="duration of async tasks (default %(default)s)")
    parser.add_argument("--apidoc", help="apidoc.json to validate against (default: $PHOENIX_PVE_APIDOC, "
                                         "../shared/pve/apidoc.json, else the vendored subset)")
    parser.add_argument("--strict", dest="strict", action="store_true", default=True,
                        help="validate every request against the schema (default)")
    parser.add_argument("--no-strict", dest="strict", action="store_false", help="skip parameter validation")
    parser.add_argument("--control", action="store_true", help="enable the test-only /_sim/ control interface")
    parser.add_argument("--verbose", action="store_true", help="log each request to stderr")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        server = make_server(
            args.state_dir, listen=args.listen, tls_dir=args.tls_dir, tokens=args.token, passwords=args.password,
            node=args.node, task_seconds=args.task_seconds, apidoc=args.apidoc or default_apidoc_path(),
            strict=args.strict, control=args.control, tls=not args.no_tls, verbose=args.verbose,
        )
    except ValueError as exc:
        print(f"pvesim: {exc}", file=sys.stderr)
        return 2

    def terminate(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    print(f"pvesim listening on {server.url} (node {args.node}, apidoc {server.sim.schema.source}"
          f"{', CA ' + server.ca_file if server.ca_file else ''}{', control on' if args.control else ''})",
          file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.httpd.server_close()
        server.sim.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
