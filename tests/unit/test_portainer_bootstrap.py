# -*- coding: utf-8 -*-
"""portainer_bootstrap through ansible, against the Portainer API test double in process (no Docker needed):
admin init on a fresh instance and safe repeat, token created once then reused from its 0600 file, environments
registered by name, check mode without writes, a clear error on bad input before any request."""

import os
import stat

import pytest

from fake_docker import FakeEngine
from modrun import run_module
from test_portainer_client import PASSWORD, start


@pytest.fixture
def fresh(tmp_path):
    httpd, url, _cert = start(tmp_path, admin=False)
    engine = FakeEngine()
    httpd.engine = engine
    yield url, httpd, tmp_path
    httpd.shutdown()
    engine.close()


def writes(httpd):
    return [(r['method'], r['path']) for r in httpd.sim.requests if r['method'] != 'GET']


def test_bootstrap_fresh_then_idempotent(fresh):
    url, httpd, tmp_path = fresh
    token_file = str(tmp_path / 'out' / 'portainer.token')
    args = {'url': url, 'password': PASSWORD, 'token_file': token_file, 'return_api_key': True,
            'endpoints': [{'name': 'primary', 'type': 'local'}, {'name': 'docker2', 'type': 'local',
                                                                 'url': httpd.engine.url}]}
    checked = run_module('portainer_bootstrap', args, check=True)
    assert checked['changed'] and checked['admin_created'] and not checked.get('failed')
    assert writes(httpd) == [] and not os.path.exists(token_file)
    first = run_module('portainer_bootstrap', args)
    assert first['changed'] and first['admin_created'] and first['token_created'], first
    assert first['endpoints']['docker2'] == 2 and first['endpoints']['primary'] == 1
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    with open(token_file) as handle:
        assert handle.read().strip() == first['api_key'] and first['api_key'].startswith('ptr_')
    del httpd.sim.requests[:]
    again = run_module('portainer_bootstrap', args)
    assert again['changed'] is False and again['token_created'] is False and again['admin_created'] is False
    assert writes(httpd) == []
    rotated = run_module('portainer_bootstrap', dict(args, rotate_token=True))
    assert rotated['changed'] and rotated['token_created'] and rotated['api_key'] != first['api_key']
    assert len(httpd.sim.store.db['tokens']) == 1          # the older token with the same description is gone


def test_bad_input_and_wrong_password(fresh):
    url, httpd, _tmp = fresh
    bad = run_module('portainer_bootstrap', {'url': url, 'password': PASSWORD, 'endpoints': [{'name': 'a',
                                                                                              'type': 'agent'}]})
    assert bad['failed'] and 'needs a url' in bad['msg'] and httpd.sim.requests == []
    run_module('portainer_bootstrap', {'url': url, 'password': PASSWORD})
    wrong = run_module('portainer_bootstrap', {'url': url, 'password': 'not-the-password-at-all'})
    assert wrong['failed'] and 'Invalid credentials' in wrong['msg']


def test_api_key_only_when_asked_and_never_in_a_failure(fresh):
    url, httpd, tmp_path = fresh
    token_file = str(tmp_path / 'out' / 'portainer.token')
    args = {'url': url, 'password': PASSWORD, 'token_file': token_file}
    first = run_module('portainer_bootstrap', args)
    assert first['token_created'] and 'api_key' not in first, first
    with open(token_file) as handle:
        token = handle.read().strip()
    assert token.startswith('ptr_') and token not in repr(first)
    asked = run_module('portainer_bootstrap', dict(args, return_api_key=True))
    assert asked['api_key'] == token
    gone = [{'name': 'gone', 'type': 'local', 'url': 'unix:///nonexistent.sock'}]
    failed = run_module('portainer_bootstrap', dict(args, return_api_key=True, endpoints=gone))
    assert failed['failed'] and 'api_key' not in failed and token not in repr(failed), failed


def _ca_and_agent(tmp_path, name):
    """A CA, and a TLS listener (the agent's port) with a certificate of that CA for 127.0.0.1."""
    import datetime
    import ipaddress
    import socket
    import ssl
    import threading
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def cert(subject, issuer, key, sign_key, ca):
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address('127.0.0.1'))]), critical=False)
        return builder.sign(sign_key, hashes.SHA256())

    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    ca_cert = cert(ca_name, ca_name, ca_key, ca_key, True)
    leaf = cert(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'agent')]), ca_name, leaf_key, ca_key, False)

    def pem(certificate):
        return certificate.public_bytes(serialization.Encoding.PEM)
    (tmp_path / (name + '.pem')).write_bytes(pem(ca_cert))
    (tmp_path / (name + '-leaf.pem')).write_bytes(pem(leaf) + leaf_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(tmp_path / (name + '-leaf.pem')))
    listener = socket.create_server(('127.0.0.1', 0))

    def serve():
        while True:
            try:
                conn, _addr = listener.accept()
            except OSError:
                return
            try:
                context.wrap_socket(conn, server_side=True).close()
            except (OSError, ssl.SSLError):
                conn.close()
    threading.Thread(target=serve, daemon=True).start()
    return str(tmp_path / (name + '.pem')), 'tcp://127.0.0.1:%d' % listener.getsockname()[1], listener


def test_agent_registered_with_tls_verification_against_a_ca(fresh):
    url, httpd, tmp_path = fresh
    ca, agent_url, listener = _ca_and_agent(tmp_path, 'phoenix-root')
    other_ca, _url, other = _ca_and_agent(tmp_path, 'another-root')
    try:
        base = {'url': url, 'password': PASSWORD}
        unverified = run_module('portainer_bootstrap', dict(base, endpoints=[
            {'name': 'no-ca', 'type': 'agent', 'url': agent_url, 'tls': True}]))
        assert unverified['failed'] and 'needs tls_ca_cert' in unverified['msg']
        wrong = run_module('portainer_bootstrap', dict(base, endpoints=[
            {'name': 'w', 'type': 'agent', 'url': agent_url, 'tls': True, 'tls_ca_cert': other_ca}]))
        assert wrong['failed'] and 'Unable to get environment type' in wrong['msg'], wrong
        good = run_module('portainer_bootstrap', dict(base, endpoints=[
            {'name': 'agent-1', 'type': 'agent', 'url': agent_url, 'tls': True, 'tls_ca_cert': ca}]))
        assert not good.get('failed'), good
        endpoint = [e for e in httpd.sim.store.db['endpoints'] if e['Name'] == 'agent-1'][0]
        assert endpoint['TLSConfig']['TLS'] is True and endpoint['TLSConfig']['TLSSkipVerify'] is False
        with open(endpoint['TLSConfig']['TLSCACert']) as stored, open(ca) as given:
            assert stored.read() == given.read()
    finally:
        listener.close()
        other.close()
