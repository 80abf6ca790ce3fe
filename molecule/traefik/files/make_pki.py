# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test PKI for the molecule scenarios, made on the instance with python3-cryptography (one round trip).

Usage: make_pki.py DIR NAME=DNS[,DNS...] ...
Writes DIR/ca.crt (a throwaway root standing in for Step-CA) and, per NAME, DIR/NAME.crt (leaf + nothing
else: the root signs leaves directly) and DIR/NAME.key. An existing DIR/ca.key is reused, so certificates
made by later calls chain to the same root.
"""
import datetime
import ipaddress
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def write(path, data, mode):
    with open(path, 'wb') as handle:
        handle.write(data)
    os.chmod(path, mode)


def key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def main(directory, specs):
    os.makedirs(directory, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key_path = os.path.join(directory, 'ca.key')
    if os.path.exists(ca_key_path):
        with open(ca_key_path, 'rb') as handle:
            ca_key = serialization.load_pem_private_key(handle.read(), None)
        with open(os.path.join(directory, 'ca.crt'), 'rb') as handle:
            ca_cert = x509.load_pem_x509_certificate(handle.read())
    else:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'Phoenix molecule routing root')])
        ca_cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(ca_key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=7))
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                                  critical=True)
                   .sign(ca_key, hashes.SHA256()))
        write(ca_key_path, key_pem(ca_key), 0o600)
        write(os.path.join(directory, 'ca.crt'), ca_cert.public_bytes(serialization.Encoding.PEM), 0o644)
    for spec in specs:
        name, _sep, names = spec.partition('=')
        sans = []
        for item in names.split(','):
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(item)))
            except ValueError:
                sans.append(x509.DNSName(item))
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names.split(',')[0])]))
                .issuer_name(ca_cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=2))
                .add_extension(x509.SubjectAlternativeName(sans), critical=False)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .sign(ca_key, hashes.SHA256()))
        write(os.path.join(directory, name + '.key'), key_pem(key), 0o600)
        write(os.path.join(directory, name + '.crt'), cert.public_bytes(serialization.Encoding.PEM), 0o644)


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2:])
