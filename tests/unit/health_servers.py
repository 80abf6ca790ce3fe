# -*- coding: utf-8 -*-
"""Loopback servers for the phoenix_health tests: a test PKI (root CA, server certificates), HTTP(S) servers
with canned routes, a small DNS server and free ports."""

import datetime
import http.server
import json
import os
import socket
import socketserver
import ssl
import struct
import threading
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

LOOPBACK = '127.0.0.1'


# --------------------------------------------------------------------------------------------------
# a test PKI: root CA -> server certificate for every name the checks use


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca(tmp, label):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(label)).issuer_name(_name(label))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    path = os.path.join(tmp, '%s-root.pem' % label.replace(' ', '-'))
    with open(path, 'wb') as handle:
        handle.write(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert, path


def make_server_cert(tmp, ca_key, ca_cert, names, label):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(names[0])).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_path = os.path.join(tmp, '%s.crt' % label)
    key_path = os.path.join(tmp, '%s.key' % label)
    with open(cert_path, 'wb') as handle:
        handle.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, 'wb') as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return cert_path, key_path


# --------------------------------------------------------------------------------------------------
# servers


class _Handler(http.server.BaseHTTPRequestHandler):
    routes = {}   # (host or '*', path) -> (status, body)
    delay = 0.0
    gate = None   # called before each answer (a threading.Barrier's wait: answer only once N requests are in)

    def do_GET(self):  # noqa: N802 - http.server's naming
        if self.delay:
            time.sleep(self.delay)
        if self.gate:
            self.gate()
        host = (self.headers.get('Host') or '').split(':')[0]
        answer = self.routes.get((host, self.path)) or self.routes.get(('*', self.path)) \
            or self.routes.get((host, '*')) or (404, b'not found')
        status, body = answer
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        if callable(body):
            body = body(self)
        self.send_response(status)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class _ThreadingHTTPServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def serve_http(routes, tls=None, delay=0.0, host=LOOPBACK, gate=None):
    handler = type('Handler', (_Handler,), {'routes': routes, 'delay': delay,
                                            'gate': staticmethod(gate) if gate else None})
    server = _ThreadingHTTPServer((host, 0), handler)
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, kwargs={'poll_interval': 0.05}, daemon=True).start()
    return server


class DnsServer:
    """A tiny authoritative DNS server on loopback UDP: A records from a dict, NXDOMAIN otherwise."""

    def __init__(self, records):
        self.records = records
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOPBACK, 0))
        self.port = self.sock.getsockname()[1]
        self.queries = []
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while True:
            try:
                data, peer = self.sock.recvfrom(512)
            except OSError:
                return
            qid = struct.unpack('!H', data[:2])[0]
            offset, labels = 12, []
            while data[offset]:
                labels.append(data[offset + 1:offset + 1 + data[offset]].decode())
                offset += 1 + data[offset]
            question = data[12:offset + 5]
            name = '.'.join(labels)
            self.queries.append(name)
            address = self.records.get(name)
            flags = 0x8180 if address else 0x8183
            answer = b''
            if address:
                # answer with a compression pointer to the question's name (offset 12)
                answer = struct.pack('!HHHIH', 0xC00C, 1, 1, 60, 4) + socket.inet_aton(address)
            header = struct.pack('!HHHHHH', qid, flags, 1, 1 if address else 0, 0, 0)
            self.sock.sendto(header + question + answer, peer)

    def close(self):
        self.sock.close()


def free_port():
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]
