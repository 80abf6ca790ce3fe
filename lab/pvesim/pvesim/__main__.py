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
    parser.add_argument("--acl", action="append", default=[], metavar="USER@REALM[!ID]:PATH:PRIV,PRIV[:0]",
                        help="privileges of a user or token on a path, propagated unless ':0' (repeatable); a token "
                             "with an entry is privilege-separated, identities without one hold every privilege")
    parser.add_argument("--node", action="append", default=[], metavar="NAME",
                        help="node name (default pve); repeat for a cluster of several nodes, the first being "
                             "the one whose /etc/pve/lxc and /etc/pve/qemu-server the state directory holds")
    parser.add_argument("--task-seconds", type=float, default=0.2, help="duration of async tasks (default %(default)s)")
    parser.add_argument("--status-delay", type=float, default=None, metavar="S",
                        help="seconds a new guest shows status 'unknown' in /cluster/resources (default 0)")
    parser.add_argument("--apidoc", help="apidoc.json to validate against (default: $PHOENIX_PVE_APIDOC, "
                                         "../shared/pve/apidoc.json, else the vendored subset)")
    parser.add_argument("--strict", dest="strict", action="store_true", default=True,
                        help="validate every request against the schema (default)")
    parser.add_argument("--no-strict", dest="strict", action="store_false", help="skip parameter validation")
    parser.add_argument("--download-ca", metavar="FILE",
                        help="CA bundle download-url trusts besides the system store (default $PVESIM_DOWNLOAD_CA)")
    parser.add_argument("--control", action="store_true", help="enable the test-only /_sim/ control interface")
    parser.add_argument("--verbose", action="store_true", help="log each request to stderr")
    parser.add_argument("--backend", choices=("memory", "docker"), default="memory",
                        help="what guests are: recorded events only (default) or Docker containers")
    docker = parser.add_argument_group("docker backend")
    docker.add_argument("--docker-lxc-image", default="phoenix-lab/guest:latest", help="image of LXC guests")
    docker.add_argument("--docker-qemu-image", default="phoenix-lab/vm:latest", help="image of QEMU guests")
    docker.add_argument("--docker-bridge", action="append", default=[], metavar="BRIDGE=NETWORK",
                        help="Docker network of a bridge (default: phoenix-BRIDGE; repeatable)")
    docker.add_argument("--docker-prefix", default="phoenix-", help="container name prefix (default %(default)s)")
    docker.add_argument("--docker-label", action="append", default=[], metavar="KEY=VALUE",
                        help="label of every container and network (default org.thinkheads.phoenix.lab=1)")
    docker.add_argument("--docker-path-map", action="append", default=[], metavar="PATH=VOLUME",
                        help="mp[n] bind mounts below PATH use that directory of Docker volume VOLUME, "
                             "which is mounted at PATH here (repeatable)")
    docker.add_argument("--docker-authorized-keys", metavar="FILE",
                        help="SSH public keys for every guest's root, besides those of the create call")
    return parser


def _pairs(values, option):
    out = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise ValueError(f"{option} takes KEY=VALUE, not {value!r}")
        out[key] = rest
    return out


def make_backend(args):
    if args.backend != "docker":
        return None
    from .docker_backend import DockerBackend

    return DockerBackend(
        lxc_image=args.docker_lxc_image, qemu_image=args.docker_qemu_image,
        bridges=_pairs(args.docker_bridge, "--docker-bridge"), prefix=args.docker_prefix,
        labels=_pairs(args.docker_label, "--docker-label") or None, state_dir=args.state_dir,
        path_map=_pairs(args.docker_path_map, "--docker-path-map"),
        authorized_keys=_read_keys(args.docker_authorized_keys),
    )


def _read_keys(path):
    if not path:
        return []
    try:
        with open(path, encoding="utf-8") as handle:
            return [line.strip() for line in handle if line.strip() and not line.startswith("#")]
    except OSError as exc:
        raise ValueError(f"--docker-authorized-keys: {exc}") from exc


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        backend = make_backend(args)
        server = make_server(
            args.state_dir, listen=args.listen, tls_dir=args.tls_dir, tokens=args.token, passwords=args.password,
            node=(args.node or ["pve"])[0], nodes=args.node or None, task_seconds=args.task_seconds,
            status_delay=args.status_delay,
            apidoc=args.apidoc or default_apidoc_path(),
            strict=args.strict, control=args.control, tls=not args.no_tls, verbose=args.verbose,
            backend=backend, download_ca=args.download_ca, acls=args.acl,
        )
    except ValueError as exc:
        print(f"pvesim: {exc}", file=sys.stderr)
        return 2

    def terminate(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    print(f"pvesim listening on {server.url} (node{'s' if len(server.sim.nodes) > 1 else ''} "
          f"{' '.join(server.sim.nodes)}, apidoc {server.sim.schema.source}"
          f"{', CA ' + server.ca_file if server.ca_file else ''}{', control on' if args.control else ''}"
          f", backend {server.sim.backend.name})",
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
