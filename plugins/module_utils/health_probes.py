# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The probes of the platform health checks (module_utils/health.py plans them): each returns (status, detail).

HTTP(S) with ``http.client`` (TLS verified against the Step-CA root, SNI set to the service's hostname while
connecting to a known address), DNS A queries with dnspython over UDP to a configured resolver (or the system
resolver), TCP connects; retries on transient errors; ``run_one`` runs one planned check and times it.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import socket
import ssl
import time

try:
    import http.client as http_client
except ImportError:  # pragma: no cover - Python 2 is not supported
    http_client = None

try:
    import dns.exception
    import dns.message
    import dns.query
    import dns.rcode
    import dns.rdatatype
    HAS_DNSPYTHON = True
    DNSPYTHON_IMPORT_ERROR = None
except ImportError as _exc:  # pragma: no cover - reported when a nameserver is asked
    HAS_DNSPYTHON = False
    DNSPYTHON_IMPORT_ERROR = _exc

OK, WARN, FAIL, NA = 'ok', 'warn', 'fail', 'n/a'
STATUSES = (OK, WARN, FAIL, NA)
TRANSIENT = (socket.timeout, ConnectionError, TimeoutError)


# --------------------------------------------------------------------------------------------------
# probes


class _SNIConnection(http_client.HTTPSConnection):
    """HTTPS to an address, with SNI and certificate verification for a hostname."""

    def __init__(self, address, port, server_hostname, context, timeout):
        http_client.HTTPSConnection.__init__(self, address, port, timeout=timeout, context=context)
        self._phoenix_sni = server_hostname
        self._phoenix_context = context

    def connect(self):
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._phoenix_context.wrap_socket(sock, server_hostname=self._phoenix_sni)


def tls_context(ca_file=None, validate_certs=True, ca_data=None):
    if not validate_certs:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if ca_file or ca_data:
        return ssl.create_default_context(cafile=ca_file or None, cadata=ca_data or None)
    return ssl.create_default_context()


def _issuer(sock):
    try:
        cert = sock.getpeercert()
    except (ValueError, AttributeError):
        return None
    for rdn in (cert or {}).get('issuer', ()):
        for key, value in rdn:
            if key == 'commonName':
                return value
    return None


def http_get(address, port, path='/', scheme='https', host=None, ca_file=None, validate_certs=True, timeout=5.0,
             headers=None, max_body=65536, ca_data=None):
    """GET scheme://address:port/path with Host/SNI = host. Returns (status, body, issuer)."""
    request_headers = {'Host': host or address, 'User-Agent': 'thinkheads.phoenix health', 'Accept': '*/*'}
    request_headers.update(headers or {})
    if scheme == 'https':
        conn = _SNIConnection(address, port, host or address, tls_context(ca_file, validate_certs, ca_data), timeout)
    else:
        conn = http_client.HTTPConnection(address, port, timeout=timeout)
    try:
        conn.request('GET', path, headers=request_headers)
        issuer = _issuer(conn.sock) if scheme == 'https' else None
        response = conn.getresponse()
        body = response.read(max_body)
        return response.status, body, issuer
    finally:
        conn.close()


def tcp_connect(address, port, timeout=5.0):
    with socket.create_connection((address, port), timeout=timeout):
        return True


def resolve(name, nameservers=None, port=53, timeout=3.0):
    """IPv4 addresses of name: an A query (dnspython) to the first answering nameserver, or the system resolver.

    Raises LookupError with the DNS error (NXDOMAIN, ...) or OSError when no server answers.
    """
    if not nameservers:
        try:
            infos = socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise LookupError(str(exc)) from None
        return sorted(set(info[4][0] for info in infos))
    if not HAS_DNSPYTHON:
        raise OSError('the Python library dnspython is required to ask %s: %s'
                      % (', '.join(nameservers), DNSPYTHON_IMPORT_ERROR))
    last = None
    for server in nameservers:
        query = dns.message.make_query(name, dns.rdatatype.A)
        try:
            answer = dns.query.udp(query, server, timeout=timeout, port=port)
        except (OSError, dns.exception.DNSException) as exc:     # timeout, unreachable, malformed answer
            last = exc
            continue
        rcode = answer.rcode()
        if rcode != dns.rcode.NOERROR:
            raise LookupError('%s from %s' % (dns.rcode.to_text(rcode), server))
        addresses = set(item.address for rrset in answer.answer if rrset.rdtype == dns.rdatatype.A for item in rrset)
        if not addresses:
            raise LookupError('no A record from %s' % server)
        return sorted(addresses)
    raise OSError('no answer from %s: %s' % (', '.join(nameservers), last or 'timed out'))


# --------------------------------------------------------------------------------------------------
# probe factories: each returns a function () -> (status, detail)


def _with_retries(func, retries, delay):
    def run():
        attempt = 0
        while True:
            try:
                return func()
            except TRANSIENT:
                if attempt >= retries:
                    raise
                time.sleep(delay * (2 ** attempt))
                attempt += 1
    return run


def _describe_error(exc):
    if isinstance(exc, ssl.SSLCertVerificationError):
        return 'TLS verification failed: %s' % (exc.verify_message or exc.reason or exc)
    if isinstance(exc, ssl.SSLError):
        return 'TLS error: %s' % (exc.reason or exc)
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return 'timed out'
    if isinstance(exc, ConnectionRefusedError):
        return 'connection refused'
    return '%s: %s' % (type(exc).__name__, exc)


def dns_probe(name, expected, dns_opts):
    def probe():
        addresses = resolve(name, **dns_opts)
        if expected and expected not in addresses:
            return FAIL, '%s, expected %s' % (', '.join(addresses), expected)
        return OK, ', '.join(addresses)
    return probe


def tcp_probe(address, port, timeout, retries):
    def probe():
        _with_retries(lambda: tcp_connect(address, port, timeout), **retries)()
        return OK, 'port %s open' % port
    return probe


def http_probe(address, port, path, scheme, host, http_opts, retries, headers=None, expect_json=None,
               expect_json_key=None, expect_body=None, expect_model=None, route=False):
    def probe():
        status, body, issuer = _with_retries(
            lambda: http_get(address, port, path, scheme, host, headers=headers, **http_opts), **retries)()
        via = ', TLS by %s' % issuer if issuer else ''
        if route:
            if status >= 500:
                return FAIL, 'HTTP %s from the gateway (backend down?)%s' % (status, via)
            return OK, 'HTTP %s%s' % (status, via)
        if status == 401 and expect_model is not None and not headers:
            return WARN, 'HTTP 401: set the vLLM API key to check the model list%s' % via
        if status != 200:
            return FAIL, 'HTTP %s%s' % (status, via)
        if expect_body is not None and body.strip() != expect_body:
            return FAIL, 'HTTP 200 but %r instead of %r' % (body[:40], expect_body)
        data = None
        if expect_json is not None or expect_json_key is not None or expect_model is not None:
            try:
                data = json.loads(body.decode('utf-8'))
            except ValueError:
                return FAIL, 'HTTP 200 but not JSON: %r' % body[:40]
        if expect_json is not None:
            for key, value in expect_json.items():
                if not isinstance(data, dict) or data.get(key) != value:
                    return FAIL, 'HTTP 200 but %s=%r' % (key, (data or {}).get(key) if isinstance(data, dict) else data)
        if expect_json_key is not None:
            if not isinstance(data, dict) or expect_json_key not in data:
                return FAIL, 'HTTP 200 but no %s in the answer' % expect_json_key
            return OK, 'HTTP 200, %s %s%s' % (expect_json_key, data[expect_json_key], via)
        if expect_model is not None:
            models = [m.get('id') for m in (data or {}).get('data') or [] if isinstance(m, dict)]
            if expect_model not in models:
                return FAIL, 'serves %s, not %s' % (', '.join(map(str, models)) or 'no model', expect_model)
            return OK, 'serves %s%s' % (expect_model, via)
        return OK, 'HTTP 200%s' % via
    return probe


# --------------------------------------------------------------------------------------------------
# running and rendering


def run_one(item):
    start = time.time()
    row = dict((k, v) for k, v in item.items() if k != 'func')
    if item.get('func') is None:
        row['ms'] = 0
        return row
    try:
        status, detail = item['func']()
    except LookupError as exc:
        status, detail = FAIL, 'does not resolve: %s' % exc
    except Exception as exc:  # pylint: disable=broad-except
        status, detail = FAIL, _describe_error(exc)
    row.update(status=status, detail=detail, ms=int((time.time() - start) * 1000))
    return row
