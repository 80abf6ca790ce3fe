# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Constants, errors and small helpers (durations, times, fingerprints, base64url) of the Step-CA client."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import datetime
import re

# Imported here only to learn whether the libraries are there (require_libraries).
try:
    from cryptography import x509  # noqa: F401 pylint: disable=unused-import
    from cryptography.exceptions import InvalidSignature  # noqa: F401 pylint: disable=unused-import
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: F401 pylint: disable=unused-import
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa  # noqa: F401 pylint: disable=unused-import
    from cryptography.x509.oid import NameOID  # noqa: F401 pylint: disable=unused-import
    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR = None
except ImportError as import_error:  # pragma: no cover - reported by the callers
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR = import_error

try:
    from jwcrypto import jwe, jwk, jwt  # noqa: F401 pylint: disable=unused-import
    from jwcrypto.common import JWException  # noqa: F401 pylint: disable=unused-import
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


def to_bytes(data):
    return data.encode('utf-8') if not isinstance(data, bytes) else data
