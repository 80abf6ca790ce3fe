# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""JOSE: the JWK provisioner keys (JWE-encrypted in ca.json) and the one-time tokens (JWS) the CA accepts."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import binascii
import contextlib
import json
import os
import time

try:
    from cryptography.hazmat.primitives import hashes
except ImportError:  # pragma: no cover - require_libraries() says what is missing
    pass

try:
    from jwcrypto import jwe, jwk, jwt
    from jwcrypto.common import JWException
except ImportError:  # pragma: no cover - require_libraries() says what is missing
    pass

from .common import (
    b64url, b64url_decode, BadPassword, JWE_ALGS, MAX_PBES2_COUNT, require_libraries, STEP_PBES2_COUNT,
    StepCAError, TOKEN_LIFETIME,
)

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
