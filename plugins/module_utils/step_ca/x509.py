# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Certificates, keys and CSRs: loading, inspecting, SANs, chain checks, key generation."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import ipaddress
import re

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
    from cryptography.x509.oid import NameOID
except ImportError:  # pragma: no cover - require_libraries() says what is missing
    pass

from .common import DEFAULT_KEY_TYPE, iso, KEY_TYPES, require_libraries, StepCAError, to_bytes, UTC, utcnow

# ---------------------------------------------------------------------------------------------------------
# Certificates
# ---------------------------------------------------------------------------------------------------------

_PEM_CERT = re.compile(b'-----BEGIN CERTIFICATE-----\\s.+?\\s-----END CERTIFICATE-----', re.DOTALL)


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


def key_matches_certificate(key, cert):
    """True when the private ``key`` belongs to ``cert``."""
    return _public_der(key) == _public_der(cert.public_key())
