# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Native Step-CA client: the one place that talks to step-ca's HTTP API.

Used by the step_ca_* modules, by the step_certificates role (the package is copied to guests as plain Python
files) and by the renewal timer on guests. It must not import ansible, and it must run on Python 3.9+ with only
the standard library, ``cryptography`` (keys, CSRs, X.509) and ``jwcrypto`` (JWE/JWS), both packaged by Debian.
Inside the package the modules import each other relatively, so the same files work as
``ansible_collections.thinkheads.phoenix.plugins.module_utils.step_ca`` and as a top-level ``step_ca`` package.

The parts, each importable on its own (this package re-exports their public names):

* ``common``: constants, the errors (``StepCAError`` and its kinds), ``require_libraries``, durations,
  thresholds, times, fingerprints, base64url.
* ``x509``: certificates (load, inspect, SANs, chain checks), keys and CSRs (EC P-256/P-384/P-521,
  RSA 2048/3072/4096, Ed25519).
* ``jose``: JWK provisioner keys: decrypt step's ``encryptedKey`` (JWE PBES2-HS256+A128KW, p2c 100000),
  generate and encrypt new ones, mint the one-time token (JWS) that ``/1.0/sign`` and ``/1.0/revoke`` accept.
* ``client``: ``StepCAClient``, HTTP over TLS verified against the pinned root (``ssl`` + ``http.client``),
  retries with backoff on transient failures (writes only when they were certainly not sent), a per-endpoint
  request counter; ``GET /root/<sha256>`` (the DER's SHA-256 checked here), ``/health``, ``/provisioners``
  (paginated), ``/intermediates.pem``, ``POST /1.0/sign``, ``/1.0/renew`` (mTLS), ``/1.0/revoke``; and
  ``issue_certificate``, ``renew_certificate``, ``revoke_certificate``.
* ``files``: atomic writes, the key/certificate/chain swap as one unit (versioned directories), the lock
  shared with the renewal timer.
* ``renew``: "does this certificate need to be (re)issued or renewed?" (``assess_certificate``,
  ``needs_renewal``) and ``renew_if_needed``, what the renewal timer calls.
* ``provisioners``: provisioner entries of ca.json on the CA host (claims, the desired entry, redaction).

On a guest, ``python3 -m step_ca --ca-url URL --root R --cert C --key K`` (from the library directory) renews
one certificate when it is due (``renew.cli_renew``).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from .common import (  # noqa: F401
    b64url, b64url_decode, BadPassword, CARequestError, CATLSError, CAUnreachable, CAWriteUncertain,
    DEFAULT_KEY_TYPE, DEFAULT_RENEW_FRACTION, FingerprintMismatch, format_duration, HAS_CRYPTOGRAPHY,
    HAS_JWCRYPTO, iso, JWE_ALGS, KEY_TYPES, MAX_PBES2_COUNT, MissingDependency, normalize_fingerprint,
    parse_duration, parse_threshold, ProvisionerNotFound, require_libraries, REVOCATION_REASONS, STEP_PBES2_COUNT,
    StepCAError, to_bytes, TOKEN_LIFETIME, TRANSIENT_STATUS, UTC, utcnow,
)
from .x509 import (  # noqa: F401
    cert_fingerprint, cert_pem, certificate_info, certificate_sans, chains_to, generate_private_key,
    key_matches_certificate, key_type_of, load_certificate_file, load_certificates, load_private_key_file,
    make_csr, normalize_key_type, normalize_sans, private_key_pem, verify_issued_by, wanted_sans,
)
from .jose import (  # noqa: F401
    decrypt_provisioner_key, encrypt_provisioner_key, generate_provisioner_key, jwe_header, make_token,
    pbes2_iterations, public_jwk_dict, same_public_key,
)
from .client import (  # noqa: F401
    issue_certificate, read_sign_response, renew_certificate, revoke_certificate, StepCAClient,
)
from .files import (  # noqa: F401
    atomic_write, certificate_lock, DEFAULT_LOCK_FILE, install_certificate, is_versioned, LockTimeout, read_file,
    versions_dir, VERSIONS_KEPT,
)
from .renew import (  # noqa: F401
    assess_certificate, cli_renew, needs_renewal, read_intermediates, renew_if_needed,
)
from .provisioners import (  # noqa: F401
    ACME_CHALLENGES, BOOL_CLAIMS, desired_provisioner, dump_ca_config, DURATION_CLAIMS, find_provisioner,
    go_duration, normalize_claims, redact_provisioner, STEP_DEFAULT_TLS_CLAIMS,
)

__all__ = [
    'ACME_CHALLENGES', 'assess_certificate', 'atomic_write', 'b64url', 'b64url_decode', 'BadPassword',
    'BOOL_CLAIMS', 'CARequestError', 'CATLSError', 'CAUnreachable', 'CAWriteUncertain', 'cert_fingerprint',
    'cert_pem', 'certificate_info', 'certificate_lock', 'certificate_sans', 'chains_to', 'cli_renew',
    'decrypt_provisioner_key', 'DEFAULT_KEY_TYPE', 'DEFAULT_LOCK_FILE', 'DEFAULT_RENEW_FRACTION',
    'desired_provisioner', 'dump_ca_config', 'DURATION_CLAIMS', 'encrypt_provisioner_key', 'find_provisioner',
    'FingerprintMismatch', 'format_duration', 'generate_private_key', 'generate_provisioner_key', 'go_duration',
    'HAS_CRYPTOGRAPHY', 'HAS_JWCRYPTO', 'install_certificate', 'is_versioned', 'iso', 'issue_certificate',
    'JWE_ALGS', 'jwe_header', 'key_matches_certificate', 'key_type_of', 'KEY_TYPES', 'load_certificate_file',
    'load_certificates', 'load_private_key_file', 'LockTimeout', 'make_csr', 'make_token', 'MAX_PBES2_COUNT',
    'MissingDependency', 'needs_renewal', 'normalize_claims', 'normalize_fingerprint', 'normalize_key_type',
    'normalize_sans', 'parse_duration', 'parse_threshold', 'pbes2_iterations', 'private_key_pem',
    'ProvisionerNotFound', 'public_jwk_dict', 'read_file', 'read_intermediates', 'read_sign_response',
    'redact_provisioner', 'renew_certificate', 'renew_if_needed', 'require_libraries', 'REVOCATION_REASONS',
    'revoke_certificate', 'same_public_key', 'STEP_DEFAULT_TLS_CLAIMS', 'STEP_PBES2_COUNT', 'StepCAClient',
    'StepCAError', 'to_bytes', 'TOKEN_LIFETIME', 'TRANSIENT_STATUS', 'UTC', 'utcnow', 'verify_issued_by',
    'versions_dir', 'VERSIONS_KEPT', 'wanted_sans',
]
