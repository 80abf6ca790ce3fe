# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""StepCAClient (HTTPS to step-ca, verified against the pinned root, retried) and issue, renew, revoke."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import http.client
import json
import os
import socket
import ssl
import time
from urllib.parse import urlencode, urlsplit

from .common import (
    CARequestError, CATLSError, CAUnreachable, CAWriteUncertain, DEFAULT_KEY_TYPE, FingerprintMismatch,
    normalize_fingerprint, ProvisionerNotFound, require_libraries, StepCAError, to_bytes, TRANSIENT_STATUS, utcnow,
)
from .x509 import (
    cert_fingerprint, cert_pem, generate_private_key, load_certificates, make_csr, normalize_key_type, _not_after,
    private_key_pem,
)
from .jose import decrypt_provisioner_key, make_token, same_public_key

# ---------------------------------------------------------------------------------------------------------
# HTTP client
# ---------------------------------------------------------------------------------------------------------


class StepCAClient(object):
    """Step-CA over HTTPS, TLS verified against ``root_pem`` (or ``root_path``), counted and retried."""

    def __init__(self, ca_url, root_pem=None, root_path=None, timeout=15, retries=3, backoff=0.5, sleep=time.sleep):
        parts = urlsplit(str(ca_url).strip())
        if parts.scheme != 'https' or not parts.hostname:
            raise StepCAError('invalid CA URL %r: expected https://<host>[:<port>]' % (ca_url,))
        self.url = '%s://%s' % (parts.scheme, parts.netloc)
        self.base = parts.path.rstrip('/')
        self.host = parts.hostname
        self.port = parts.port or 443
        if root_pem is None and root_path:
            try:
                with open(root_path, 'rb') as handle:
                    root_pem = handle.read()
            except (IOError, OSError) as exc:
                raise StepCAError('cannot read the CA root %s: %s' % (root_path, exc)) from None
        self.root_pem = to_bytes(root_pem) if root_pem else None
        self.timeout = timeout
        self.retries = max(0, int(retries))
        self.backoff = backoff
        self._sleep = sleep
        self.requests = {}

    # -- transport -------------------------------------------------------------------------------------

    def _context(self, verify=True, client_cert=None, client_key=None):
        if not verify:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        else:
            if not self.root_pem:
                raise StepCAError('no CA root to verify %s against: bootstrap the root first' % self.url)
            context = ssl.create_default_context(cadata=self.root_pem.decode('ascii'))
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if client_cert:
            try:
                context.load_cert_chain(client_cert, client_key)
            except (ssl.SSLError, IOError, OSError) as exc:
                raise StepCAError('cannot use %s / %s as TLS client certificate and key: %s'
                                  % (client_cert, client_key, exc)) from None
        return context

    def request(self, method, path, body=None, verify=True, client_cert=None, client_key=None, raw=False):
        """JSON (or raw bytes) of ``method path``, retried only where a retry cannot act twice.

        Any request is retried when it was certainly not sent: the TCP connection or the TLS handshake
        failed (refused, connect timeout, name resolution, reset before the handshake completed). After the
        request went out, a read (GET) is retried on a broken answer or HTTP 502/503/504; a write (POST:
        /1.0/sign, /1.0/renew, /1.0/revoke) is not - the CA may have acted on it (issued a certificate,
        consumed the one-time token) - and fails with CAWriteUncertain instead. TLS verification failures
        are never retried."""
        endpoint = path.split('?')[0]
        if endpoint.startswith('/root/'):
            endpoint = '/root'
        context = self._context(verify, client_cert, client_key)
        data = json.dumps(body).encode('utf-8') if body is not None else None
        headers = {'Accept': 'application/json', 'User-Agent': 'thinkheads.phoenix-step-ca'}
        if data is not None:
            headers['Content-Type'] = 'application/json'
        url = self.url + self.base + path
        idempotent = method in ('GET', 'HEAD')
        attempts = self.retries + 1
        for attempt in range(1, attempts + 1):
            self.requests[endpoint] = self.requests.get(endpoint, 0) + 1
            conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=context)
            sent = False
            try:
                conn.connect()
                sent = True
                conn.request(method, self.base + path, body=data, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                status = response.status
            except ssl.SSLCertVerificationError as exc:
                raise CATLSError('TLS verification failed for %s: %s' % (url, exc.verify_message or exc)) from None
            except ssl.SSLError as exc:
                raise StepCAError('TLS error talking to %s: %s' % (url, exc)) from None
            except (OSError, http.client.HTTPException) as exc:
                if sent and not idempotent:
                    raise CAWriteUncertain(
                        'Step-CA at %s: %s %s was sent but no answer came back (%s); not retried, because the CA '
                        'may have acted on it (a certificate issued, the one-time token used). Nothing was '
                        'written here: run again to start over' % (self.url, method, endpoint, _describe(exc))) from None
                if attempt < attempts:
                    self._sleep(self.backoff * (2 ** (attempt - 1)))
                    continue
                raise CAUnreachable('Step-CA at %s is unreachable (%s %s): %s (after %d attempts)'
                                    % (self.url, method, path.split('?')[0], _describe(exc), attempts)) from None
            finally:
                conn.close()
            if status in TRANSIENT_STATUS and idempotent and attempt < attempts:
                self._sleep(self.backoff * (2 ** (attempt - 1)))
                continue
            if status >= 400:
                detail = _error_detail(payload)
                if status in TRANSIENT_STATUS and not idempotent:
                    raise CAWriteUncertain(
                        'Step-CA at %s answered HTTP %d to %s %s: %s; not retried, because the request reached '
                        'the CA side and may have been acted on. Nothing was written here: run again to start over'
                        % (self.url, status, method, endpoint, detail))
                if status in TRANSIENT_STATUS:
                    raise CAUnreachable('Step-CA at %s answered HTTP %d to %s %s: %s (after %d attempts)'
                                        % (self.url, status, method, endpoint, detail, attempts))
                raise CARequestError('Step-CA at %s refused %s %s (HTTP %d): %s'
                                     % (self.url, method, endpoint, status, detail), status=status, detail=detail)
            if raw:
                return payload
            try:
                return json.loads(payload.decode('utf-8')) if payload else {}
            except ValueError:
                raise StepCAError('Step-CA at %s answered %s %s with something that is not JSON: %r'
                                  % (self.url, method, endpoint, payload[:200])) from None
        raise StepCAError('unreachable')  # pragma: no cover

    # -- endpoints -------------------------------------------------------------------------------------

    def health(self):
        """``GET /health`` over verified TLS; raises unless the CA says ok."""
        data = self.request('GET', '/health')
        if data.get('status') != 'ok':
            raise StepCAError('Step-CA at %s is not healthy: %r' % (self.url, data))
        return data

    def fetch_root(self, fingerprint):
        """(root certificate, PEM bytes) by SHA-256 fingerprint; the DER digest is checked here.

        TLS is not verified for this request (there is no trust yet): the pinned fingerprint is the trust."""
        wanted = normalize_fingerprint(fingerprint)
        try:
            data = self.request('GET', '/root/%s' % wanted, verify=False)
        except CARequestError as exc:
            if exc.status != 404:
                raise
            served = self.served_root_fingerprints()
            raise FingerprintMismatch('Step-CA at %s has no root with SHA-256 fingerprint %s; it serves %s'
                                      % (self.url, wanted, ', '.join(served) or 'no roots')) from None
        certs = load_certificates(data.get('ca', ''))
        if not certs:
            raise StepCAError('Step-CA at %s answered /root without a certificate' % self.url)
        got = cert_fingerprint(certs[0])
        if got != wanted:
            raise FingerprintMismatch('the root served by %s has SHA-256 fingerprint %s, expected %s'
                                      % (self.url, got, wanted))
        pem = cert_pem(certs[0])
        self.root_pem = pem
        return certs[0], pem

    def served_root_fingerprints(self):
        try:
            payload = self.request('GET', '/roots.pem', verify=False, raw=True)
        except StepCAError:
            return []
        return [cert_fingerprint(cert) for cert in load_certificates(payload)]

    def intermediates(self):
        return load_certificates(self.request('GET', '/intermediates.pem', raw=True))

    def provisioners(self):
        """Every provisioner (follows ``nextCursor``)."""
        out, cursor = [], ''
        for _page in range(1000):
            query = {'limit': 100}
            if cursor:
                query['cursor'] = cursor
            data = self.request('GET', '/provisioners?%s' % urlencode(query))
            out.extend(data.get('provisioners') or [])
            cursor = data.get('nextCursor') or ''
            if not cursor:
                break
        return out

    def provisioner(self, name, ptype='JWK'):
        found = self.provisioners()
        for item in found:
            if item.get('name') == name and (ptype is None or str(item.get('type', '')).upper() == ptype.upper()):
                return item
        names = ['%s (%s)' % (item.get('name'), item.get('type')) for item in found]
        raise ProvisionerNotFound('Step-CA at %s has no %s provisioner named %r; it has: %s'
                                  % (self.url, ptype or 'any', name, ', '.join(names) or 'none'))

    def provisioner_key(self, name, password):
        """(private JWK, kid) of a JWK provisioner, decrypted with ``password``."""
        item = self.provisioner(name, 'JWK')
        encrypted = item.get('encryptedKey')
        if not encrypted:
            raise StepCAError('provisioner %r on %s has no encryptedKey: it cannot issue tokens from a password'
                              % (name, self.url))
        key = decrypt_provisioner_key(encrypted, password, name)
        kid = (item.get('key') or {}).get('kid') or key.thumbprint()
        if item.get('key') and not same_public_key(key, item['key']):
            raise StepCAError('the decrypted key of provisioner %r does not match its public key' % name)
        return key, kid

    def audience(self, endpoint):
        return '%s%s/1.0/%s' % (self.url, self.base, endpoint)

    def sign(self, csr_pem, token, not_after=None, not_before=None):
        body = {'csr': to_bytes(csr_pem).decode('ascii'), 'ott': token}
        if not_after:
            body['notAfter'] = not_after
        if not_before:
            body['notBefore'] = not_before
        return self.request('POST', '/1.0/sign', body)

    def renew(self, cert_path, key_path):
        """``POST /1.0/renew`` authenticated by the current certificate (mTLS)."""
        return self.request('POST', '/1.0/renew', {}, client_cert=cert_path, client_key=key_path)

    def revoke(self, serial, token=None, cert_path=None, key_path=None, reason=None, reason_code=0):
        """Passive revocation, authorised by a one-time token or by the certificate itself (mTLS)."""
        body = {'serial': str(serial), 'reasonCode': int(reason_code), 'reason': reason or '', 'passive': True}
        if token:
            body['ott'] = token
            return self.request('POST', '/1.0/revoke', body)
        return self.request('POST', '/1.0/revoke', body, client_cert=cert_path, client_key=key_path)


def _describe(exc):
    if isinstance(exc, ConnectionRefusedError):
        return 'connection refused'
    if isinstance(exc, ConnectionResetError):
        return 'connection reset'
    if isinstance(exc, socket.timeout):
        return 'timed out'
    if isinstance(exc, socket.gaierror):
        return 'name resolution failed (%s)' % exc
    return '%s: %s' % (exc.__class__.__name__, exc)


def _error_detail(payload):
    try:
        data = json.loads(payload.decode('utf-8'))
        return data.get('message') or data.get('detail') or json.dumps(data)
    except (ValueError, AttributeError):
        return payload[:300].decode('utf-8', 'replace').strip() or '(empty body)'


def read_sign_response(data):
    """(leaf PEM, intermediates PEM, serial) of a /sign or /renew answer."""
    chain = data.get('certChain') or [c for c in (data.get('crt'), data.get('ca')) if c]
    if not chain:
        raise StepCAError('the CA answer holds no certificate')
    leaf = to_bytes(chain[0])
    rest = b''.join(to_bytes(c) if to_bytes(c).endswith(b'\n') else to_bytes(c) + b'\n' for c in chain[1:])
    return leaf if leaf.endswith(b'\n') else leaf + b'\n', rest


# ---------------------------------------------------------------------------------------------------------
# Issue, renew, revoke
# ---------------------------------------------------------------------------------------------------------

def issue_certificate(client, provisioner, password, common_name, sans, key_type=DEFAULT_KEY_TYPE,
                      lifetime=None, not_before=None):
    """(key PEM, leaf PEM, intermediates PEM): new key, CSR, token, ``POST /1.0/sign``."""
    require_libraries()
    key_type = normalize_key_type(key_type)
    provisioner_key, kid = client.provisioner_key(provisioner, password)
    key = generate_private_key(key_type)
    csr = make_csr(key, common_name, sans)
    token = make_token(provisioner_key, provisioner, common_name, client.audience('sign'), sans=sans, kid=kid)
    answer = client.sign(csr, token, not_after=lifetime, not_before=not_before)
    leaf, rest = read_sign_response(answer)
    return private_key_pem(key), leaf, rest


def renew_certificate(client, cert_path, key_path):
    """(leaf PEM, intermediates PEM) renewed over mTLS with the current certificate and key."""
    return read_sign_response(client.renew(cert_path, key_path))


def revoke_certificate(client, cert, cert_path=None, key_path=None, provisioner=None, password=None,
                       reason=None, reason_code=0):
    """Revoke ``cert``; returns False when the CA says it was already revoked.

    mTLS (the certificate itself) when it is still valid and its key is at hand, else a one-time token
    from the JWK provisioner (``sub`` = serial)."""
    serial = str(cert.serial_number)
    use_mtls = cert_path and key_path and os.path.exists(key_path) and _not_after(cert) > utcnow()
    try:
        if use_mtls:
            client.revoke(serial, cert_path=cert_path, key_path=key_path, reason=reason, reason_code=reason_code)
        else:
            if not provisioner or password is None:
                raise StepCAError('revoking serial %s needs the provisioner and its password (the certificate '
                                  'is expired or its key is missing, so it cannot authenticate itself)' % serial)
            key, kid = client.provisioner_key(provisioner, password)
            token = make_token(key, provisioner, serial, client.audience('revoke'), kid=kid)
            client.revoke(serial, token=token, reason=reason, reason_code=reason_code)
    except CARequestError as exc:
        if 'already revoked' in (exc.detail or str(exc)):
            return False
        raise
    return True
