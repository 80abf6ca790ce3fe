# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Native Step-CA client: the one place that talks to step-ca's HTTP API.

Used by the step_ca_* modules, by the step_ca roles (copied to guests as a plain Python file) and by the
renewal timer on guests. It must not import ansible, and it must run on Python 3.9+ with only the standard
library, ``cryptography`` (keys, CSRs, X.509) and ``jwcrypto`` (JWE/JWS), both packaged by Debian.

What it does:

* HTTP over TLS verified against the pinned root (``ssl`` + ``http.client``), retries with backoff on
  transient failures (writes only when they were certainly not sent), and a per-endpoint request counter
  (``StepCAClient.requests``).
* ``GET /root/<sha256>`` with the SHA-256 of the returned DER checked here, ``/health``, ``/provisioners``
  (paginated), ``/intermediates.pem``, ``POST /1.0/sign``, ``/1.0/renew`` (mTLS), ``/1.0/revoke``.
* JWK provisioner keys: decrypt step's ``encryptedKey`` (JWE PBES2-HS256+A128KW, p2c 100000), generate and
  encrypt new ones, mint the one-time token (JWS) that ``/1.0/sign`` and ``/1.0/revoke`` accept.
* Keys and CSRs (EC P-256/P-384/P-521, RSA 2048/3072/4096, Ed25519), certificate inspection and the
  "does this certificate need to be (re)issued or renewed?" decision (``assess_certificate``).
* ``renew_if_needed``: what the renewal timer calls.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import binascii
import contextlib
import datetime
import grp
import hashlib
import http.client
import ipaddress
import json
import os
import pwd
import re
import shutil
import socket
import ssl
import tempfile
import time
from urllib.parse import urlencode, urlsplit

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
    from cryptography.x509.oid import NameOID
    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR = None
except ImportError as import_error:  # pragma: no cover - reported by the callers
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR = import_error

try:
    from jwcrypto import jwe, jwk, jwt
    from jwcrypto.common import JWException
    HAS_JWCRYPTO = True
    JWCRYPTO_IMPORT_ERROR = None
except ImportError as import_error:  # pragma: no cover - reported by the callers
    HAS_JWCRYPTO = False
    JWCRYPTO_IMPORT_ERROR = import_error

UTC = datetime.timezone.utc

KEY_TYPES = ('EC256', 'EC384', 'EC521', 'RSA2048', 'RSA3072', 'RSA4096', 'Ed25519')
DEFAULT_KEY_TYPE = 'EC256'
# Renew when less than this fraction of the certificate's total lifetime remains.
DEFAULT_RENEW_FRACTION = 1.0 / 3.0
# step's own default for the PBKDF2 iteration count of an encrypted provisioner key.
STEP_PBES2_COUNT = 100000
# Never run PBKDF2 with more iterations than this, whatever a JWE header asks for.
MAX_PBES2_COUNT = 2000000
JWE_ALGS = ['PBES2-HS256+A128KW', 'PBES2-HS384+A192KW', 'PBES2-HS512+A256KW',
            'A128GCM', 'A192GCM', 'A256GCM', 'A128CBC-HS256', 'A192CBC-HS384', 'A256CBC-HS512']
TRANSIENT_STATUS = (502, 503, 504)
TOKEN_LIFETIME = 300

# Revocation reason codes (RFC 5280) by name.
REVOCATION_REASONS = {
    'unspecified': 0, 'key_compromise': 1, 'ca_compromise': 2, 'affiliation_changed': 3, 'superseded': 4,
    'cessation_of_operation': 5, 'certificate_hold': 6, 'privilege_withdrawn': 9, 'aa_compromise': 10,
}


class StepCAError(Exception):
    """Any failure of the Step-CA client, with a message fit for an operator."""


class CAUnreachable(StepCAError):
    """The CA did not answer (connection refused/reset, timeout, 502/503/504 after the retries)."""


class CATLSError(StepCAError):
    """The CA's TLS certificate does not verify against the pinned root (never retried)."""


class CAWriteUncertain(CAUnreachable):
    """A write (POST) went out but no usable answer came back: the CA may have acted on it, so it is not retried."""


class FingerprintMismatch(StepCAError):
    """The root the CA offers does not have the expected SHA-256 fingerprint."""


class ProvisionerNotFound(StepCAError):
    """No provisioner with that name (and type) on the CA."""


class BadPassword(StepCAError):
    """The provisioner password does not decrypt the provisioner key."""


class CARequestError(StepCAError):
    """The CA answered with an HTTP error."""

    def __init__(self, message, status=None, detail=None):
        super(CARequestError, self).__init__(message)
        self.status = status
        self.detail = detail


class MissingDependency(StepCAError):
    """cryptography or jwcrypto is not installed."""


def require_libraries(jose=True):
    """Raise MissingDependency naming the Debian package and the pip package when a library is missing."""
    if not HAS_CRYPTOGRAPHY:
        raise MissingDependency('the Python library "cryptography" is required (Debian: python3-cryptography, '
                                'pip: cryptography): %s' % CRYPTOGRAPHY_IMPORT_ERROR)
    if jose and not HAS_JWCRYPTO:
        raise MissingDependency('the Python library "jwcrypto" is required (Debian: python3-jwcrypto, '
                                'pip: jwcrypto): %s' % JWCRYPTO_IMPORT_ERROR)


# ---------------------------------------------------------------------------------------------------------
# Small helpers: durations, times, fingerprints
# ---------------------------------------------------------------------------------------------------------

_DURATION_UNITS = {'ns': 1e-9, 'us': 1e-6, 'µs': 1e-6, 'ms': 1e-3, 's': 1.0, 'm': 60.0, 'h': 3600.0, 'd': 86400.0}
_DURATION_PART = re.compile(r'(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)')


def parse_duration(value):
    """Seconds (float) of a Go-style duration ("90s", "8h", "1h30m", also "2d"); a bare number is seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    if re.match(r'^\d+(\.\d+)?$', text):
        return float(text)
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise StepCAError('invalid duration %r: expected e.g. "90s", "30m", "8h", "1h30m" or "2d"' % (value,))
    return total


def format_duration(seconds):
    """A Go duration string step-ca accepts ("24h", "1h30m", "300s")."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    out = ''
    if hours:
        out += '%dh' % hours
    if minutes:
        out += '%dm' % minutes
    if secs or not out:
        out += '%ds' % secs
    return out


def parse_threshold(value):
    """Renewal threshold: None -> ('fraction', 1/3); "33%" -> ('fraction', 0.33); "8h" -> ('seconds', 28800)."""
    if value is None or value == '':
        return ('fraction', DEFAULT_RENEW_FRACTION)
    if isinstance(value, tuple):
        return value
    text = str(value).strip()
    match = re.match(r'^(\d+(?:\.\d+)?)\s*%$', text)
    if match:
        fraction = float(match.group(1)) / 100.0
        if not 0 < fraction < 1:
            raise StepCAError('invalid renewal threshold %r: a percentage must be between 0%% and 100%%' % (value,))
        return ('fraction', fraction)
    try:
        return ('seconds', parse_duration(text))
    except StepCAError:
        raise StepCAError('invalid renewal threshold %r: expected a duration such as "8h" or a percentage of '
                          'the lifetime such as "33%%"' % (value,)) from None


def utcnow():
    return datetime.datetime.now(UTC)


def iso(moment):
    return moment.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ') if moment else None


def normalize_fingerprint(value):
    """Lower-case hex without separators; raises on anything that is not a SHA-256."""
    text = re.sub(r'[\s:\-]', '', str(value or '')).lower()
    if not re.match(r'^[0-9a-f]{64}$', text):
        raise StepCAError('invalid root fingerprint %r: expected the 64 hex digits of a SHA-256' % (value,))
    return text


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b'=').decode('ascii')


def b64url_decode(text):
    text = text + '=' * (-len(text) % 4)
    return base64.urlsafe_b64decode(text.encode('ascii'))


# ---------------------------------------------------------------------------------------------------------
# Certificates
# ---------------------------------------------------------------------------------------------------------

_PEM_CERT = re.compile(b'-----BEGIN CERTIFICATE-----\\s.+?\\s-----END CERTIFICATE-----', re.DOTALL)


def to_bytes(data):
    return data.encode('utf-8') if not isinstance(data, bytes) else data


def load_certificates(data):
    """Every certificate in a PEM bundle (works with cryptography releases before load_pem_x509_certificates)."""
    require_libraries(jose=False)
    return [x509.load_pem_x509_certificate(block) for block in _PEM_CERT.findall(to_bytes(data))]


def load_certificate_file(path):
    with open(path, 'rb') as handle:
        certs = load_certificates(handle.read())
    if not certs:
        raise StepCAError('%s holds no PEM certificate' % path)
    return certs


def cert_pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def cert_fingerprint(cert):
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def _not_before(cert):
    value = getattr(cert, 'not_valid_before_utc', None)
    return value if value is not None else cert.not_valid_before.replace(tzinfo=UTC)


def _not_after(cert):
    value = getattr(cert, 'not_valid_after_utc', None)
    return value if value is not None else cert.not_valid_after.replace(tzinfo=UTC)


def key_type_of(key):
    """KEY_TYPES name of a public or private key (None for anything else)."""
    if isinstance(key, (ec.EllipticCurvePublicKey, ec.EllipticCurvePrivateKey)):
        return {'secp256r1': 'EC256', 'secp384r1': 'EC384', 'secp521r1': 'EC521'}.get(key.curve.name)
    if isinstance(key, (rsa.RSAPublicKey, rsa.RSAPrivateKey)):
        return 'RSA%d' % key.key_size
    if isinstance(key, (ed25519.Ed25519PublicKey, ed25519.Ed25519PrivateKey)):
        return 'Ed25519'
    return None


def normalize_key_type(value):
    if value is None:
        return DEFAULT_KEY_TYPE
    for name in KEY_TYPES:
        if str(value).replace('-', '').replace('_', '').lower() == name.lower():
            return name
    aliases = {'ec': 'EC256', 'p256': 'EC256', 'p384': 'EC384', 'p521': 'EC521', 'rsa': 'RSA2048', 'okp': 'Ed25519'}
    if str(value).lower().replace('-', '') in aliases:
        return aliases[str(value).lower().replace('-', '')]
    raise StepCAError('unknown key type %r: choose one of %s' % (value, ', '.join(KEY_TYPES)))


def _san_entry(value):
    """x509 GeneralName for a SAN string: IP address, e-mail (has @), URI (has ://) or DNS name."""
    value = str(value).strip()
    try:
        return x509.IPAddress(ipaddress.ip_address(value))
    except ValueError:
        pass
    if '://' in value:
        return x509.UniformResourceIdentifier(value)
    if '@' in value:
        return x509.RFC822Name(value)
    return x509.DNSName(value.lower())


def normalize_sans(sans):
    """Canonical, de-duplicated, order-preserving SAN strings (DNS lower-cased, IPs in canonical form)."""
    out = []
    for value in sans or []:
        value = str(value).strip()
        if not value:
            continue
        try:
            value = str(ipaddress.ip_address(value))
        except ValueError:
            if '://' not in value and '@' not in value:
                value = value.lower()
        if value not in out:
            out.append(value)
    return out


def wanted_sans(common_name, sans, include_cn=True):
    """The SANs a certificate for this request should carry: the CN first (unless left out), then ``sans``."""
    values = list(sans or [])
    if include_cn and common_name:
        values.insert(0, common_name)
    if not values and common_name:
        values = [common_name]
    return normalize_sans(values)


def certificate_sans(cert):
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    values = []
    for name in ext:
        if isinstance(name, x509.IPAddress):
            values.append(str(name.value))
        else:
            values.append(str(name.value))
    return normalize_sans(values)


def _common_name(name):
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return attrs[0].value if attrs else None


def certificate_info(cert, now=None):
    """Plain dict describing a certificate (what step_ca_certificate_info returns)."""
    now = now or utcnow()
    not_before, not_after = _not_before(cert), _not_after(cert)
    left = (not_after - now).total_seconds()
    return {
        'subject': cert.subject.rfc4514_string(),
        'common_name': _common_name(cert.subject),
        'sans': certificate_sans(cert),
        'issuer': cert.issuer.rfc4514_string(),
        'issuer_common_name': _common_name(cert.issuer),
        'serial': str(cert.serial_number),
        'serial_hex': '%x' % cert.serial_number,
        'not_before': iso(not_before),
        'not_after': iso(not_after),
        'lifetime_seconds': int((not_after - not_before).total_seconds()),
        'seconds_left': int(left),
        'days_left': round(left / 86400.0, 2),
        'expired': left <= 0,
        'key_type': key_type_of(cert.public_key()),
        'fingerprint': cert_fingerprint(cert),
    }


def _public_der(key):
    if hasattr(key, 'public_key'):
        key = key.public_key()
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def verify_issued_by(child, parent):
    """True when ``parent`` signed ``child`` (names match and the signature verifies)."""
    if child.issuer != parent.subject:
        return False
    public = parent.public_key()
    signature, tbs = child.signature, child.tbs_certificate_bytes
    try:
        if isinstance(public, rsa.RSAPublicKey):
            algorithm = child.signature_hash_algorithm
            if child.signature_algorithm_oid.dotted_string == '1.2.840.113549.1.1.10':
                pad = padding.PSS(mgf=padding.MGF1(algorithm), salt_length=algorithm.digest_size)
            else:
                pad = padding.PKCS1v15()
            public.verify(signature, tbs, pad, algorithm)
        elif isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(signature, tbs, ec.ECDSA(child.signature_hash_algorithm))
        elif isinstance(public, ed25519.Ed25519PublicKey):
            public.verify(signature, tbs)
        else:
            return False
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def chains_to(leaf, intermediates, roots):
    """True when ``leaf`` is signed by a root or by an intermediate that a root signed."""
    for root in roots:
        if verify_issued_by(leaf, root):
            return True
    for inter in intermediates:
        if verify_issued_by(leaf, inter) and any(verify_issued_by(inter, root) for root in roots):
            return True
    return False


# ---------------------------------------------------------------------------------------------------------
# Keys and CSRs
# ---------------------------------------------------------------------------------------------------------

def generate_private_key(key_type=DEFAULT_KEY_TYPE):
    require_libraries(jose=False)
    key_type = normalize_key_type(key_type)
    if key_type.startswith('EC'):
        curve = {'EC256': ec.SECP256R1, 'EC384': ec.SECP384R1, 'EC521': ec.SECP521R1}[key_type]()
        return ec.generate_private_key(curve)
    if key_type.startswith('RSA'):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[3:]))
    return ed25519.Ed25519PrivateKey.generate()


def private_key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load_private_key_file(path):
    with open(path, 'rb') as handle:
        return serialization.load_pem_private_key(handle.read(), password=None)


def make_csr(key, common_name, sans):
    """PEM CSR with the CN and SANs (step-ca requires the CSR SANs to equal the token's ``sans``)."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName([_san_entry(s) for s in sans]), critical=False)
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(key, algorithm).public_bytes(serialization.Encoding.PEM)


# ---------------------------------------------------------------------------------------------------------
# JOSE: provisioner keys and one-time tokens
# ---------------------------------------------------------------------------------------------------------

@contextlib.contextmanager
def pbes2_iterations(count):
    """Let jwcrypto run PBKDF2 with ``count`` iterations for the duration of the block.

    jwcrypto >= 1.5.1 refuses PBES2 headers with p2c above ``jwa.default_max_pbkdf2_iterations`` (16384),
    while step encrypts provisioner keys with 100000. Older releases (Debian bookworm: 1.1) have no limit
    and no such attribute, so there is nothing to raise."""
    try:
        from jwcrypto import jwa
    except ImportError:  # pragma: no cover
        jwa = None
    current = getattr(jwa, 'default_max_pbkdf2_iterations', None)
    if current is None or current >= count:
        yield
        return
    jwa.default_max_pbkdf2_iterations = count
    try:
        yield
    finally:
        jwa.default_max_pbkdf2_iterations = current


def _password_key(password):
    if isinstance(password, bytes):
        password = password.decode('utf-8')
    if hasattr(jwk.JWK, 'from_password'):
        return jwk.JWK.from_password(password)
    return jwk.JWK(kty='oct', k=b64url(password.encode('utf-8')))


def jwe_header(compact):
    try:
        return json.loads(b64url_decode(compact.split('.')[0]))
    except (ValueError, IndexError, binascii.Error):
        raise StepCAError('the encrypted provisioner key is not a compact JWE') from None


def decrypt_provisioner_key(encrypted_key, password, name='?'):
    """jwcrypto JWK (private) from step's ``encryptedKey``; BadPassword when the password does not fit."""
    require_libraries()
    header = jwe_header(encrypted_key)
    count = int(header.get('p2c', 0) or 0)
    if count > MAX_PBES2_COUNT:
        raise StepCAError('the encrypted key of provisioner %r asks for %d PBKDF2 iterations (more than %d)'
                          % (name, count, MAX_PBES2_COUNT))
    token = jwe.JWE()
    token.allowed_algs = JWE_ALGS
    try:
        with pbes2_iterations(max(count, STEP_PBES2_COUNT)):
            token.deserialize(encrypted_key, key=_password_key(password))
    except (JWException, ValueError, TypeError) as exc:
        raise BadPassword('the provisioner password does not decrypt the key of provisioner %r (%s)'
                          % (name, exc.__class__.__name__)) from None
    try:
        return jwk.JWK.from_json(token.payload.decode('utf-8') if isinstance(token.payload, bytes) else token.payload)
    except (JWException, ValueError, TypeError) as exc:
        raise StepCAError('the decrypted key of provisioner %r is not a JWK: %s' % (name, exc)) from None


def encrypt_provisioner_key(private_jwk, password, count=STEP_PBES2_COUNT):
    """Compact JWE of a private JWK in the format step writes (PBES2-HS256+A128KW, A256GCM, p2c 100000).

    Built with ``cryptography`` directly: jwcrypto releases before 1.5 (Debian bookworm ships 1.1) repeat
    p2c/p2s in the recipient header and then refuse to serialize a compact JWE with a chosen p2c."""
    require_libraries()
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
    from cryptography.hazmat.primitives.keywrap import aes_key_wrap
    alg = 'PBES2-HS256+A128KW'
    salt_input = os.urandom(16)
    header = {'alg': alg, 'cty': 'jwk+json', 'enc': 'A256GCM', 'p2c': int(count), 'p2s': b64url(salt_input)}
    protected = b64url(json.dumps(header, separators=(',', ':')).encode('utf-8'))
    if isinstance(password, str):
        password = password.encode('utf-8')
    kek = PBKDF2HMAC(algorithm=hashes.SHA256(), length=16, salt=alg.encode('ascii') + b'\x00' + salt_input,
                     iterations=int(count)).derive(password)
    cek = os.urandom(32)
    iv = os.urandom(12)
    sealed = AESGCM(cek).encrypt(iv, private_jwk.export(private_key=True).encode('utf-8'), protected.encode('ascii'))
    return '.'.join((protected, b64url(aes_key_wrap(kek, cek)), b64url(iv), b64url(sealed[:-16]), b64url(sealed[-16:])))


def generate_provisioner_key():
    """(private jwcrypto JWK, public JWK dict as ca.json holds it) for a new JWK provisioner (EC P-256)."""
    require_libraries()
    key = jwk.JWK.generate(kty='EC', crv='P-256')
    kid = key.thumbprint()
    private = json.loads(key.export(private_key=True))
    private.update({'kid': kid, 'use': 'sig', 'alg': 'ES256'})
    key = jwk.JWK(**private)
    return key, public_jwk_dict(key)


def public_jwk_dict(key):
    """The public part of a JWK with step's fields (use, kty, kid, crv, alg, x, y)."""
    public = json.loads(key.export_public())
    data = {'use': 'sig', 'kty': public['kty'], 'kid': public.get('kid') or key.thumbprint()}
    for field in ('crv', 'alg', 'x', 'y', 'n', 'e'):
        if field in public:
            data[field] = public[field]
    data.setdefault('alg', _jws_alg(public))
    return data


def _jws_alg(public):
    if public.get('alg'):
        return public['alg']
    if public.get('kty') == 'EC':
        return {'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512'}.get(public.get('crv'), 'ES256')
    if public.get('kty') == 'OKP':
        return 'EdDSA'
    return 'RS256'


def same_public_key(private_jwk, public_dict):
    """True when the private JWK's public part equals ``public_dict`` (ca.json's ``key``)."""
    mine = json.loads(private_jwk.export_public())
    return all(mine.get(field) == public_dict.get(field) for field in ('kty', 'crv', 'x', 'y', 'n', 'e'))


def make_token(key, issuer, subject, audience, sans=None, kid=None, lifetime=TOKEN_LIFETIME, now=None):
    """One-time token (JWS) for /1.0/sign or /1.0/revoke, signed by the provisioner's private key.

    step-ca finds the provisioner by ``iss`` + ``kid``, checks the signature, ``aud`` (the CA URL of the
    endpoint; the port is ignored), ``nbf``/``exp`` with a minute of leeway, and that ``sans`` equals the
    CSR's SANs. ``jti`` makes the token single-use."""
    require_libraries()
    now = int(now if now is not None else time.time())
    public = json.loads(key.export_public())
    claims = {'iss': issuer, 'sub': subject, 'aud': audience, 'iat': now, 'nbf': now, 'exp': now + int(lifetime),
              'jti': binascii.hexlify(os.urandom(32)).decode('ascii')}
    if sans:
        claims['sans'] = list(sans)
    header = {'alg': _jws_alg(public), 'typ': 'JWT', 'kid': kid or public.get('kid') or key.thumbprint()}
    token = jwt.JWT(header=header, claims=claims)
    token.make_signed_token(key)
    return token.serialize()


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


# ---------------------------------------------------------------------------------------------------------
# The decision
# ---------------------------------------------------------------------------------------------------------

def needs_renewal(cert, threshold=None, now=None):
    """(bool, reason) for the lifetime rule alone."""
    kind, amount = parse_threshold(threshold)
    now = now or utcnow()
    not_before, not_after = _not_before(cert), _not_after(cert)
    left = (not_after - now).total_seconds()
    total = (not_after - not_before).total_seconds()
    if kind == 'fraction':
        limit = total * amount
        rule = '%g%% of its %s lifetime' % (round(amount * 100, 2), format_duration(total))
    else:
        limit = amount
        rule = format_duration(amount)
    if left < limit:
        return True, 'remaining lifetime %s is below %s' % (format_duration(max(left, 0)), rule)
    return False, 'remaining lifetime %s, renewal below %s' % (format_duration(left), rule)


def read_intermediates(*paths):
    """Certificates after the first one in each readable file (the chain part of cert/chain files)."""
    out = []
    for path in paths:
        if not path or not os.path.exists(path):
            continue
        try:
            certs = load_certificate_file(path)
        except (StepCAError, ValueError, IOError, OSError):
            continue
        out.extend(certs[1:])
    return out


def assess_certificate(cert_path, key_path, common_name=None, sans=None, key_type=None, roots=None,
                       intermediates=None, threshold=None, now=None, include_cn=True):
    """What to do with the certificate at ``cert_path``: a dict with ``action`` and ``reason``.

    ``action``: ``issue`` (nothing usable there), ``reissue`` (new key + /sign: key missing or not matching,
    CN/SANs/key type changed, not signed by the current CA, expired), ``renew`` (valid, only the lifetime
    threshold is crossed) or ``none``. ``roots``/``intermediates``: certificates of the current CA; without
    roots the issuer is not checked. ``cert`` and ``info`` describe the current certificate when readable."""
    require_libraries(jose=False)
    now = now or utcnow()
    result = {'action': 'none', 'reason': '', 'cert': None, 'info': None}
    if not os.path.exists(cert_path):
        return dict(result, action='issue', reason='certificate %s does not exist' % cert_path)
    try:
        cert = load_certificate_file(cert_path)[0]
    except (StepCAError, ValueError, IOError, OSError) as exc:
        return dict(result, action='issue', reason='certificate %s is unreadable: %s' % (cert_path, exc))
    result['cert'] = cert
    result['info'] = info = certificate_info(cert, now)
    if not os.path.exists(key_path):
        return dict(result, action='reissue', reason='key %s does not exist' % key_path)
    try:
        key = load_private_key_file(key_path)
    except (ValueError, TypeError, IOError, OSError) as exc:
        return dict(result, action='reissue', reason='key %s is unreadable: %s' % (key_path, exc))
    if _public_der(key) != _public_der(cert.public_key()):
        return dict(result, action='reissue', reason='key %s does not match certificate %s' % (key_path, cert_path))
    if key_type is not None and normalize_key_type(key_type) != info['key_type']:
        return dict(result, action='reissue', reason='key type %s, wanted %s'
                    % (info['key_type'], normalize_key_type(key_type)))
    if common_name is not None and info['common_name'] != common_name:
        return dict(result, action='reissue', reason='common name %r, wanted %r' % (info['common_name'], common_name))
    if sans is not None or common_name is not None:
        want = wanted_sans(common_name, sans, include_cn)
        if sorted(want) != sorted(info['sans']):
            return dict(result, action='reissue', reason='SANs %s, wanted %s' % (info['sans'], want))
    if roots:
        if not chains_to(cert, list(intermediates or []), roots):
            return dict(result, action='reissue',
                        reason='certificate is not signed by the current CA (issuer %s)' % info['issuer'])
    if info['expired']:
        return dict(result, action='reissue', reason='certificate expired at %s' % info['not_after'])
    if now < _not_before(cert):
        return dict(result, action='reissue', reason='certificate is not valid before %s' % info['not_before'])
    renew, why = needs_renewal(cert, threshold, now)
    return dict(result, action='renew' if renew else 'none', reason=why)


# ---------------------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------------------

def _uid(owner):
    if owner is None or owner == '':
        return -1
    try:
        return int(owner)
    except ValueError:
        return pwd.getpwnam(owner).pw_uid


def _gid(group):
    if group is None or group == '':
        return -1
    try:
        return int(group)
    except ValueError:
        return grp.getgrnam(group).gr_gid


def read_file(path):
    try:
        with open(path, 'rb') as handle:
            return handle.read()
    except (IOError, OSError):
        return None


def atomic_write(path, data, mode=None, owner=None, group=None):
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename.

    The new file gets ``mode``/``owner``/``group`` when given, else those of the file it replaces (a new
    file: 0600 unless ``mode``), before it becomes visible. Returns False when the content was already
    ``data`` (nothing written)."""
    data = to_bytes(data)
    if read_file(path) == data:
        return False
    directory = os.path.dirname(os.path.abspath(path))
    current = _stat_or_none(path)
    mode, uid, gid = _attributes(path, mode, owner, group, 0o600, current=current)
    handle, tmp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), suffix='.tmp', dir=directory)
    try:
        with os.fdopen(handle, 'wb') as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        if uid != -1 or gid != -1:
            try:
                os.chown(tmp, uid, gid)
            except PermissionError:
                if current is None or (uid, gid) != (current.st_uid, current.st_gid):
                    raise
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return True


# ---------------------------------------------------------------------------------------------------------
# Key, certificate and chain swapped as one unit
# ---------------------------------------------------------------------------------------------------------
#
# <dir of cert_path>/.<cert basename>.versions/
#     v7/ key.pem cert.pem chain.pem     complete before it gets its name (written as .tmp-*, then renamed)
#     v8/ ...
#     live -> v8                         switched by renaming a temporary symlink over it: one atomic step
# cert_path  -> .<cert basename>.versions/live/cert.pem     (relative links: they resolve inside a container
# key_path   -> .../live/key.pem                             that bind-mounts the certificate's directory)
# chain_path -> .../live/chain.pem
#
# The configured paths stay what consumers read; at no moment do they hold a key of one version and a
# certificate of another. The live version and the one before it are kept, older ones pruned.

VERSIONS_KEPT = 2
DEFAULT_LOCK_FILE = '/run/phoenix-cert-renew.lock'
_VERSION = re.compile(r'^v(\d+)$')
_FILE_NAMES = (('key', 'key.pem'), ('cert', 'cert.pem'), ('chain', 'chain.pem'))


def versions_dir(cert_path):
    """The directory holding the versions of the certificate at ``cert_path``."""
    directory, base = os.path.split(os.path.abspath(cert_path))
    return os.path.join(directory, '.%s.versions' % base)


def _versions(store):
    try:
        names = os.listdir(store)
    except OSError:
        return []
    return sorted((int(m.group(1)), name) for name, m in ((n, _VERSION.match(n)) for n in names) if m)


def _link_target(store, name, path):
    return os.path.relpath(os.path.join(store, 'live', name), os.path.dirname(os.path.abspath(path)))


def _fsync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace_symlink(target, path):
    """Point ``path`` at ``target`` by renaming a temporary symlink over it (atomic, whatever was there)."""
    directory, base = os.path.split(os.path.abspath(path))
    tmp = os.path.join(directory, '.%s.%s.tmp' % (base, binascii.hexlify(os.urandom(6)).decode('ascii')))
    os.symlink(target, tmp)
    try:
        os.rename(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _write_new(path, data, mode, uid, gid):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, 'wb') as out:
        if uid != -1 or gid != -1:
            os.fchown(out.fileno(), uid, gid)
        os.fchmod(out.fileno(), mode)
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


def _stat_or_none(path):
    try:
        return os.stat(path)
    except OSError:
        return None


def _attributes(path, mode, owner, group, default_mode, current=None):
    """(mode, uid, gid) for a new file replacing ``path``: the given ones, else those of the current file
    (``current``, its os.stat, when the caller has it already)."""
    if current is None:
        current = _stat_or_none(path)
    if isinstance(mode, str):
        mode = int(mode, 8) if re.match(r'^0?[0-7]{3,4}$', mode) else None
    if mode is None:
        mode = (current.st_mode & 0o7777) if current else default_mode
    uid = _uid(owner) if owner not in (None, '') else (current.st_uid if current else -1)
    gid = _gid(group) if group not in (None, '') else (current.st_gid if current else -1)
    return mode, uid, gid


def _new_version(store, files):
    """Write ``files`` ({file name: (data, mode, uid, gid)}) into the next version directory; its name."""
    number = (_versions(store)[-1][0] + 1) if _versions(store) else 1
    tmp = tempfile.mkdtemp(prefix='.tmp-', dir=store)
    try:
        os.chmod(tmp, 0o755)
        for name, (data, mode, uid, gid) in files.items():
            _write_new(os.path.join(tmp, name), data, mode, uid, gid)
        _fsync_dir(tmp)
        name = 'v%d' % number
        os.rename(tmp, os.path.join(store, name))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return name


def _switch_live(store, version):
    _replace_symlink(version, os.path.join(store, 'live'))
    _fsync_dir(store)


def is_versioned(cert_path, key_path=None, chain_path=None):
    """True when every given path is this module's link into the ``live`` version."""
    store = versions_dir(cert_path)
    for kind, name in _FILE_NAMES:
        path = {'key': key_path, 'cert': cert_path, 'chain': chain_path}[kind]
        if path and not (os.path.islink(path) and os.readlink(path) == _link_target(store, name, path)):
            return False
    return True


def install_certificate(cert_path, key_path, leaf, chain=None, key_pem=None, chain_path=None, mode=None,
                        key_mode=None, owner=None, group=None, keep=VERSIONS_KEPT):
    """Put a new key (``key_pem``; None: keep the current key), leaf and chain in place as one unit.

    Writes them into a new version directory next to the certificate, then switches the ``live`` link in a
    single rename; ``cert_path``, ``key_path`` and ``chain_path`` are relative links through ``live``. Plain
    files found at those paths (an older layout, or files put there by hand) are first adopted unchanged as a
    version of their own, so that even the change of layout never shows a mismatched pair. Mode, owner and
    group default to those of the files replaced. The last ``keep`` versions (the live one included) stay,
    older ones are pruned; the files of the versions superseded are touched, so that a watcher of the configured path
    (systemd ``PathChanged=``, inotify follows the links to the live file) is notified. Returns the version."""
    leaf = to_bytes(leaf)
    paths = {'key': key_path, 'cert': cert_path, 'chain': chain_path}
    store = versions_dir(cert_path)
    if not os.path.isdir(store):
        os.mkdir(store, 0o755)
        os.chmod(store, 0o755)
    linked = {kind: os.path.islink(path) and os.readlink(path) == _link_target(store, name, path)
              for (kind, name), path in ((item, paths[item[0]]) for item in _FILE_NAMES) if path}

    # Adopt files that are not links into this store yet: a version holding exactly what is there now.
    foreign = [kind for kind, ok in linked.items() if not ok and os.path.lexists(paths[kind])]
    if foreign:
        files = {}
        for kind, name in _FILE_NAMES:
            path = paths[kind]
            if path and os.path.exists(path):
                current = os.stat(path)
                files[name] = (read_file(path) or b'', current.st_mode & 0o7777, current.st_uid, current.st_gid)
        _switch_live(store, _new_version(store, files))
        for kind, name in _FILE_NAMES:
            if kind in foreign and os.path.exists(os.path.join(store, 'live', name)):
                _replace_symlink(_link_target(store, name, paths[kind]), paths[kind])
                linked[kind] = True

    files = {}
    if key_pem is None:
        key_pem = read_file(key_path)
        if key_pem is None:
            raise StepCAError('cannot read the key %s to keep it' % key_path)
    contents = {'key': to_bytes(key_pem), 'cert': leaf, 'chain': leaf + to_bytes(chain or b'')}
    for kind, name in _FILE_NAMES:
        path = paths[kind]
        if not path:
            continue
        if kind == 'key':
            attrs = _attributes(path, key_mode, owner, group, 0o600)
        else:
            attrs = _attributes(path, mode, owner, group, 0o644)
        files[name] = (contents[kind],) + attrs
    version = _new_version(store, files)
    _switch_live(store, version)
    for kind, name in _FILE_NAMES:
        if paths[kind] and not linked[kind]:
            _replace_symlink(_link_target(store, name, paths[kind]), paths[kind])

    # Superseded versions: touched (watchers of the old live files wake up), pruned beyond ``keep``.
    numbers = _versions(store)
    for _number, name in numbers[:-1]:
        for _kind, file_name in _FILE_NAMES:
            with contextlib.suppress(OSError):
                os.utime(os.path.join(store, name, file_name))
    for _number, name in numbers[:-max(1, keep)]:
        shutil.rmtree(os.path.join(store, name), ignore_errors=True)
    for name in os.listdir(store):
        if name.startswith('.tmp-'):
            shutil.rmtree(os.path.join(store, name), ignore_errors=True)
    return version


class LockTimeout(StepCAError):
    """Another writer (the renewal timer, another run of the module) holds the certificates' lock."""


@contextlib.contextmanager
def certificate_lock(path=DEFAULT_LOCK_FILE, timeout=300, poll=0.2, clock=time.monotonic, sleep=time.sleep):
    """Hold the lock of the renewal timer (flock on ``path``) for the duration of the block.

    Yields True, or False when ``path`` is empty or its directory does not exist (no timer can run there).
    Raises LockTimeout after ``timeout`` seconds."""
    import fcntl
    if not path or not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        yield False
        return
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except PermissionError:
        fd = os.open(path, os.O_RDONLY)
    try:
        deadline = clock() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if clock() >= deadline:
                    raise LockTimeout('%s is still locked after %ds: the renewal timer (or another run) is writing '
                                      'certificates; try again when it is done' % (path, timeout)) from None
                sleep(poll)
        yield True
    finally:
        os.close(fd)


def renew_if_needed(ca_url, root_path, cert_path, key_path, chain_path=None, threshold=None, timeout=15,
                    retries=3, now=None, client=None):
    """Renew ``cert_path`` over mTLS when its remaining lifetime is below ``threshold``.

    What the renewal timer on a guest runs (holding the lock). The key stays; a new version with the key,
    the certificate and ``chain_path`` (leaf + intermediates) is swapped in as one unit (install_certificate),
    keeping owner and mode. Returns True when it renewed, False
    when nothing was due. Raises StepCAError when the certificate cannot be renewed (missing, expired,
    CA unreachable): a fresh enrolment (the step_ca_certificate module) is needed then."""
    require_libraries(jose=False)
    try:
        cert = load_certificate_file(cert_path)[0]
    except (IOError, OSError, ValueError) as exc:
        raise StepCAError('cannot read certificate %s: %s' % (cert_path, exc)) from None
    now = now or utcnow()
    if _not_after(cert) <= now:
        raise StepCAError('certificate %s expired at %s: it cannot authenticate a renewal, enrol it again'
                          % (cert_path, iso(_not_after(cert))))
    due, _why = needs_renewal(cert, threshold, now)
    if not due:
        return False
    client = client or StepCAClient(ca_url, root_path=root_path, timeout=timeout, retries=retries)
    leaf, rest = renew_certificate(client, cert_path, key_path)
    install_certificate(cert_path, key_path, leaf, rest, chain_path=chain_path)
    return True


def cli_renew(argv=None):
    """``python3 step_ca.py --ca-url URL --root R --cert C --key K [--chain F] [--threshold 33%]``.

    Prints one JSON line (renewed, serial, not_after); exit status 0 on success, 1 on error. The renewal
    timer decides from ``renewed`` whether to run the consumer hooks."""
    import argparse
    import sys
    parser = argparse.ArgumentParser(description='Renew a Step-CA certificate over mTLS when it is due.')
    parser.add_argument('--ca-url', required=True)
    parser.add_argument('--root', required=True)
    parser.add_argument('--cert', required=True)
    parser.add_argument('--key', required=True)
    parser.add_argument('--chain')
    parser.add_argument('--threshold')
    args = parser.parse_args(argv)
    try:
        renewed = renew_if_needed(args.ca_url, args.root, args.cert, args.key, args.chain, args.threshold)
        info = certificate_info(load_certificate_file(args.cert)[0])
    except StepCAError as exc:
        sys.stderr.write('error: %s\n' % exc)
        return 1
    sys.stdout.write(json.dumps({'renewed': renewed, 'cert': args.cert, 'serial': info['serial'],
                                 'not_after': info['not_after']}) + '\n')
    return 0


def key_matches_certificate(key, cert):
    """True when the private ``key`` belongs to ``cert``."""
    return _public_der(key) == _public_der(cert.public_key())


# ---------------------------------------------------------------------------------------------------------
# Provisioners in ca.json (the CA host side)
# ---------------------------------------------------------------------------------------------------------

DURATION_CLAIMS = ('minTLSCertDuration', 'maxTLSCertDuration', 'defaultTLSCertDuration',
                   'minUserSSHCertDuration', 'maxUserSSHCertDuration', 'defaultUserSSHCertDuration',
                   'minHostSSHCertDuration', 'maxHostSSHCertDuration', 'defaultHostSSHCertDuration')
BOOL_CLAIMS = ('disableRenewal', 'allowRenewalAfterExpiry', 'enableSSHCA', 'disableSmallstepExtensions')
# step-ca's built-in TLS claims (used when neither the provisioner nor authority.claims set them).
STEP_DEFAULT_TLS_CLAIMS = {'minTLSCertDuration': '5m', 'maxTLSCertDuration': '24h', 'defaultTLSCertDuration': '24h'}
ACME_CHALLENGES = ('http-01', 'dns-01', 'tls-alpn-01', 'device-attest-01', 'wire-oidc-01', 'wire-dpop-01')
_GO_DURATION = re.compile(r'^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$')


def go_duration(value):
    """A duration string step-ca (Go's time.ParseDuration) reads, e.g. "2d" -> "48h"; others unchanged."""
    return _go_duration(None, value)[0]


def _go_duration(name, value):
    """(Go duration string, seconds); days are turned into hours."""
    text = str(value).strip()
    seconds = parse_duration(text)
    if not _GO_DURATION.match(text):
        text = format_duration(seconds)
    return text, seconds


def normalize_claims(claims, current=None, global_claims=None):
    """Validated provisioner claims (durations as Go strings, booleans as bools).

    A duration equal in value to the one in ``current`` keeps the current spelling (so "24h0m0s" and "24h"
    do not flip-flop). Checks min <= default <= max with authority-wide and built-in values filling gaps."""
    current = current or {}
    out = {}
    seconds = {}
    for name, value in (claims or {}).items():
        if name in DURATION_CLAIMS:
            text, secs = _go_duration(name, value)
            if name in current:
                try:
                    if parse_duration(current[name]) == secs:
                        text = current[name]
                except StepCAError:
                    pass
            out[name], seconds[name] = text, secs
        elif name in BOOL_CLAIMS:
            if not isinstance(value, bool):
                if str(value).lower() in ('true', 'yes', '1', 'on'):
                    value = True
                elif str(value).lower() in ('false', 'no', '0', 'off'):
                    value = False
                else:
                    raise StepCAError('claim %s must be a boolean, got %r' % (name, value))
            out[name] = value
        else:
            raise StepCAError('unknown provisioner claim %r: known claims are %s'
                              % (name, ', '.join(DURATION_CLAIMS[:3] + BOOL_CLAIMS[:2] + DURATION_CLAIMS[3:] + BOOL_CLAIMS[2:])))
    effective = dict(STEP_DEFAULT_TLS_CLAIMS)
    effective.update({k: v for k, v in (global_claims or {}).items() if k in STEP_DEFAULT_TLS_CLAIMS})
    effective.update({k: v for k, v in out.items() if k in STEP_DEFAULT_TLS_CLAIMS})
    low = parse_duration(effective['minTLSCertDuration'])
    default = parse_duration(effective['defaultTLSCertDuration'])
    high = parse_duration(effective['maxTLSCertDuration'])
    if not low <= default <= high:
        values = (effective['minTLSCertDuration'], effective['defaultTLSCertDuration'], effective['maxTLSCertDuration'])
        raise StepCAError('TLS certificate claims must satisfy minTLSCertDuration (%s) <= defaultTLSCertDuration (%s) '
                          '<= maxTLSCertDuration (%s); values not set here come from authority.claims or step-ca '
                          'defaults (5m, 24h, 24h)' % values)
    return out


def find_provisioner(config, name):
    """(index, entry) of the provisioner called ``name`` in a parsed ca.json, or (None, None)."""
    for index, entry in enumerate(((config.get('authority') or {}).get('provisioners')) or []):
        if entry.get('name') == name:
            return index, entry
    return None, None


def desired_provisioner(current, name, ptype, password=None, claims=None, challenges=None, force_cn=None,
                        global_claims=None):
    """(entry, key_note) of the provisioner as it should be in ca.json.

    Fields this function does not manage (options, templates, ...) are kept from ``current``. For JWK the
    existing key is kept when ``password`` decrypts it and it matches the public key; otherwise a new
    EC P-256 key is generated and encrypted with ``password`` (PBES2-HS256+A128KW, p2c 100000)."""
    ptype = ptype.upper()
    entry = dict(current) if current and str(current.get('type', '')).upper() == ptype else {}
    entry['type'] = ptype
    entry['name'] = name
    note = None
    if ptype == 'JWK':
        if password is None or password == '':
            raise StepCAError('a JWK provisioner needs a password')
        keep = False
        if entry.get('encryptedKey') and entry.get('key'):
            try:
                keep = same_public_key(decrypt_provisioner_key(entry['encryptedKey'], password, name), entry['key'])
                note = 'kept the existing key' if keep else 'the existing key does not match its public key'
            except BadPassword:
                note = 'the existing key does not decrypt with this password: new key'
        if not keep:
            private, public = generate_provisioner_key()
            entry['key'] = public
            entry['encryptedKey'] = encrypt_provisioner_key(private, password)
            note = note or 'new key'
    elif ptype == 'ACME':
        if challenges is not None:
            bad = [c for c in challenges if c not in ACME_CHALLENGES]
            if bad:
                raise StepCAError('unknown ACME challenge(s) %s: choose from %s' % (bad, ', '.join(ACME_CHALLENGES)))
            entry['challenges'] = list(challenges)
        if force_cn is not None:
            entry['forceCN'] = bool(force_cn)
    else:
        raise StepCAError('unsupported provisioner type %r (JWK or ACME)' % ptype)
    if claims is not None:
        normalized = normalize_claims(claims, (current or {}).get('claims'), global_claims)
        if normalized:
            entry['claims'] = normalized
        else:
            entry.pop('claims', None)
    return entry, note


def redact_provisioner(entry):
    """The entry without secrets worth hiding: the encrypted key shortened to its first characters."""
    if not entry:
        return entry
    out = dict(entry)
    if out.get('encryptedKey'):
        out['encryptedKey'] = out['encryptedKey'][:24] + '...'
    return out


def dump_ca_config(config):
    """ca.json text the way step writes it (tab indented, no trailing newline)."""
    return json.dumps(config, indent='\t', ensure_ascii=False)


if __name__ == '__main__':
    # Copied to a guest, the file is also the renewal command: python3 step_ca.py --ca-url ... --cert ...
    raise SystemExit(cli_renew())
