# -*- coding: utf-8 -*-
"""A stand-in for an image mirror (such as cloud-images.ubuntu.com): an HTTPS server with its own CA that serves
cloud images and OS templates, for the tests (on loopback) and the lab (on the lab network's host address).

pvesim verifies it against ``ca_file`` (pvesim --download-ca, as a real Proxmox node verifies a download against
its trust store), so a verified https download runs end to end without leaving this machine.
"""

import datetime
import hashlib
import http.server
import os
import ssl
import struct
import threading

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

NOBLE = 'noble-server-cloudimg-amd64.img'
GIB = 1024 ** 3


def tiny_qcow2(virtual_size=2 * GIB):
    """A qcow2 header (version 3) for an empty disk of ``virtual_size`` bytes, padded to one cluster."""
    header = b'QFI\xfb' + struct.pack('>IQIIQIIQQIIQQQQII', 3, 0, 0, 16, virtual_size, 0, 0, 0, 0, 0, 0, 0,
                                      0, 0, 0, 4, 104)
    return header.ljust(65536, b'\0')


def _name(text):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


def _cert(subject, issuer, key, signer, ca, sans=None):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if sans:
        import ipaddress
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address(s)) if s[0].isdigit() else x509.DNSName(s) for s in sans]),
            critical=False)
    return builder.sign(signer, hashes.SHA256())


class ImageServer:
    """Serve ``files`` ({name: bytes}) at https://127.0.0.1:<port>/images/<name>."""

    def __init__(self, directory, files=None, host='127.0.0.1', port=0):
        self.directory = str(directory)
        os.makedirs(os.path.join(self.directory, 'images'), exist_ok=True)
        self.requests = []
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = _cert('Phoenix test image CA', 'Phoenix test image CA', ca_key, ca_key, True)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _cert(host, 'Phoenix test image CA', key, ca_key, False, sans=[host, 'localhost'])
        self.ca_file = os.path.join(self.directory, 'ca.crt')
        with open(self.ca_file, 'wb') as handle:
            handle.write(ca.public_bytes(serialization.Encoding.PEM))
        cert_file = os.path.join(self.directory, 'server.crt')
        key_file = os.path.join(self.directory, 'server.key')
        with open(cert_file, 'wb') as handle:
            handle.write(cert.public_bytes(serialization.Encoding.PEM))
        with open(key_file, 'wb') as handle:
            handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        for name, data in (files or {}).items():
            self.add(name, data)
        owner = self
        serve_dir = self.directory

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=serve_dir, **kwargs)

            def do_GET(self):
                owner.requests.append(self.path)
                return super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer((host, port), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.base = 'https://%s:%d/images/' % (host, self.httpd.server_address[1])
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def add(self, name, data):
        with open(os.path.join(self.directory, 'images', name), 'wb') as handle:
            handle.write(data)

    def url(self, name):
        return self.base + name

    def sha256(self, name):
        with open(os.path.join(self.directory, 'images', name), 'rb') as handle:
            return hashlib.sha256(handle.read()).hexdigest()

    def source(self, name):
        """The phoenix_images entry for ``name``."""
        return {'url': self.url(name), 'checksum': self.sha256(name), 'checksum_algorithm': 'sha256'}

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
