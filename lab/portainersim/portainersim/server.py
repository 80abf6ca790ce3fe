# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""portainersim: a TEST DOUBLE of the Portainer CE 2.x HTTP API, backed by a real Docker Swarm.

Why it exists: Portainer CE cannot be built here (the Go module proxy refuses
github.com/portainer/portainer at every version, GitHub and Docker Hub are unreachable), see docs/stacks.md.
It implements only the API subset thinkheads.phoenix uses, with Portainer's JSON shapes, status codes and
auth rules, and performs REAL ``docker stack deploy`` / ``docker stack rm`` against the environment's
Docker engine, and proxies ``/api/endpoints/{id}/docker/...`` to that engine's API.

The code: common.py (constants, errors, store), state.py (Sim), handler.py and the api_*.py mixins (the HTTP
API); this module parses Portainer's flags and starts the servers.

The behaviour follows Portainer CE 2.23.0's source; each rule names the Portainer file and function it follows.

Test-only extras live outside ``/api``: ``GET /sim/requests`` (the request log), ``DELETE /sim/requests``, and
``POST /sim/faults`` / ``DELETE /sim/faults``: network faults for the next requests matching a method and a path
(regular expression), ``{"method", "path", "fault", "seconds", "count"}``. Faults after the request was carried out:
``drop`` (the connection closes without an answer), ``delay`` (the answer comes ``seconds`` late), ``502``/``504``
(a proxy's answer instead of Portainer's); before it: ``503`` (refused unprocessed).
Every response carries ``Server: portainersim``, so nobody mistakes it for the real product.
"""

from __future__ import absolute_import, division, print_function

import argparse
import os
import ssl
import sys
import threading
from http.server import ThreadingHTTPServer

from .common import RATE_BAN_SECONDS, VERSION
from .common import ApiError, RateLimiter, Store
from .handler import Handler
from .state import Sim

# what tests and tools reach through portainersim.server
__all__ = ["ApiError", "Handler", "RateLimiter", "Sim", "Store", "main", "parse_args"]


def _self_signed(data_dir):
    """A self-signed certificate for --bind-https when no --sslcert is given (as Portainer does)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    cert_path, key_path = os.path.join(data_dir, 'certs', 'cert.pem'), os.path.join(data_dir, 'certs', 'key.pem')
    if os.path.isfile(cert_path):
        return cert_path, key_path
    os.makedirs(os.path.dirname(cert_path), exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, u'portainersim')])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=365)).sign(key, hashes.SHA256()))
    with open(key_path, 'wb') as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    with open(cert_path, 'wb') as handle:
        handle.write(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def _split_addr(addr):
    host, _sep, port = addr.rpartition(':')
    return host or '0.0.0.0', int(port)


def parse_args(argv):
    parser = argparse.ArgumentParser(prog='portainer', description='portainersim: a test double of the Portainer '
                                     'CE 2.x API (thinkheads.phoenix lab), not Portainer.')
    parser.add_argument('--bind', '-p', default=':9000')
    parser.add_argument('--bind-https', default=':9443')
    parser.add_argument('--http-enabled', action='store_true')
    parser.add_argument('--http-disabled', action='store_true')
    parser.add_argument('--sslcert')
    parser.add_argument('--sslkey')
    parser.add_argument('--host', '-H')
    parser.add_argument('--admin-password-file')
    parser.add_argument('--data', '-d', default='/data')
    parser.add_argument('--assets', '-a', default='./')
    parser.add_argument('--tlsskipverify', action='store_true')
    parser.add_argument('--log-level', default='INFO', choices=('DEBUG', 'INFO', 'WARN', 'ERROR'))
    parser.add_argument('--docker-bin', default=os.environ.get('PORTAINERSIM_DOCKER', 'docker'))
    # not a Portainer flag: how long the rate limiter bans an address (Portainer: one hour), short in tests
    parser.add_argument('--sim-ratelimit-ban', type=float, metavar='SECONDS',
                        default=float(os.environ.get('PORTAINERSIM_RATELIMIT_BAN', RATE_BAN_SECONDS)))
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    sim = Sim(args)
    servers = []
    if args.bind_https:
        cert, key = (args.sslcert, args.sslkey) if args.sslcert else _self_signed(args.data)
        httpd = ThreadingHTTPServer(_split_addr(args.bind_https), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
        servers.append(httpd)
    if args.http_enabled and not args.http_disabled:
        servers.append(ThreadingHTTPServer(_split_addr(args.bind), Handler))
    for httpd in servers:
        httpd.daemon_threads = True
        httpd.sim = sim
    sys.stderr.write('portainersim %s (test double of the Portainer CE API) listening on %s\n' % (
        VERSION, ', '.join('%s:%d' % s.server_address[:2] for s in servers)))
    for httpd in servers[1:]:
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        servers[0].serve_forever()
    except KeyboardInterrupt:
        pass
    return 0
