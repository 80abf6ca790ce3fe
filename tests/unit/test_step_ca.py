# -*- coding: utf-8 -*-
"""The Step-CA client's logic without a CA: durations, thresholds, the (re)issue decision, JOSE, files, retries.

The same code against a real step-ca: tests/stepca."""

import datetime
import http.client
import http.server
import json
import os
import socket
import ssl
import stat
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from phoenix_testlib import REPO  # also puts the collection on sys.path
from ansible_collections.thinkheads.phoenix.plugins.module_utils import step_ca

UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


# -- a small PKI built with cryptography --------------------------------------------------------------------

def make_cert(subject, issuer_cert, issuer_key, key, not_before=NOW - datetime.timedelta(hours=1),
              lifetime=datetime.timedelta(hours=24), sans=(), ca=False):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (x509.CertificateBuilder().subject_name(name)
               .issuer_name(issuer_cert.subject if issuer_cert is not None else name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(not_before).not_valid_after(not_before + lifetime)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName([step_ca.x509._san_entry(s) for s in sans]),
                                        critical=False)
    signer = issuer_key if issuer_key is not None else key
    algorithm = None if step_ca.key_type_of(signer) == 'Ed25519' else hashes.SHA256()
    return builder.sign(signer, algorithm)


class PKI:
    def __init__(self, name='Test'):
        self.root_key = step_ca.generate_private_key('EC256')
        self.root = make_cert('%s Root CA' % name, None, None, self.root_key, lifetime=datetime.timedelta(days=3650),
                              not_before=NOW - datetime.timedelta(days=1), ca=True)
        self.inter_key = step_ca.generate_private_key('EC256')
        self.inter = make_cert('%s Intermediate CA' % name, self.root, self.root_key, self.inter_key, ca=True,
                               lifetime=datetime.timedelta(days=3650), not_before=NOW - datetime.timedelta(days=1))

    def leaf(self, directory, cn='svc.test', sans=('svc.test', 'alt.test'), key_type='EC256', **kwargs):
        key = step_ca.generate_private_key(key_type)
        cert = make_cert(cn, self.inter, self.inter_key, key, sans=sans, **kwargs)
        paths = {name: os.path.join(str(directory), name) for name in ('c.crt', 'k.key', 'chain.crt')}
        step_ca.atomic_write(paths['k.key'], step_ca.private_key_pem(key))
        step_ca.atomic_write(paths['c.crt'], step_ca.cert_pem(cert), 0o644)
        step_ca.atomic_write(paths['chain.crt'], step_ca.cert_pem(cert) + step_ca.cert_pem(self.inter), 0o644)
        return cert, paths

    def assess(self, paths, now=NOW, **kwargs):
        args = dict(common_name='svc.test', sans=['alt.test'], key_type='EC256', roots=[self.root],
                    intermediates=step_ca.read_intermediates(paths['chain.crt']), now=now)
        args.update(kwargs)
        return step_ca.assess_certificate(paths['c.crt'], paths['k.key'], **args)


@pytest.fixture(scope='module')
def pki():
    return PKI()


def test_module_utils_does_not_import_ansible():
    """Roles copy the step_ca package to guests, where the renewal timer imports it without Ansible: no file of it
    imports ansible (or the collection by its full name); the files import each other relatively."""
    package = os.path.join(REPO, 'plugins', 'module_utils', 'step_ca')
    files = sorted(name for name in os.listdir(package) if name.endswith('.py'))
    assert '__init__.py' in files and len(files) > 2
    found = []
    for name in files:
        with open(os.path.join(package, name)) as handle:
            found += ['%s: %s' % (name, line.strip()) for line in handle
                      if line.strip().startswith(('import ansible', 'from ansible'))]
    assert not found


# -- durations and thresholds -------------------------------------------------------------------------------

@pytest.mark.parametrize('text, seconds', [('90s', 90), ('30m', 1800), ('8h', 28800), ('1h30m', 5400),
                                           ('2d', 172800), ('1.5h', 5400), ('300', 300), ('500ms', 0.5)])
def test_parse_duration(text, seconds):
    assert step_ca.parse_duration(text) == seconds


@pytest.mark.parametrize('text', ['soon', '', '5 m', 'h', '1h-2m'])
def test_parse_duration_rejects(text):
    with pytest.raises(step_ca.StepCAError, match='invalid duration'):
        step_ca.parse_duration(text)


def test_parse_threshold():
    assert step_ca.parse_threshold(None) == ('fraction', 1.0 / 3.0)
    assert step_ca.parse_threshold('33%') == ('fraction', 0.33)
    assert step_ca.parse_threshold('8h') == ('seconds', 28800.0)
    for bad in ('0%', '100%', '150%', 'later'):
        with pytest.raises(step_ca.StepCAError, match='invalid renewal threshold'):
            step_ca.parse_threshold(bad)


def test_format_duration():
    assert [step_ca.format_duration(s) for s in (0, 59, 60, 3600, 5430, 172800)] == \
        ['0s', '59s', '1m', '1h', '1h30m30s', '48h']
    assert [step_ca.go_duration(v) for v in ('2d', '5m', '1h30m', '1d12h')] == ['48h', '5m', '1h30m', '36h']


def test_default_threshold_is_a_third_of_the_lifetime(pki, tmp_path):
    cert, _paths = pki.leaf(tmp_path, not_before=NOW, lifetime=datetime.timedelta(hours=24))
    assert step_ca.needs_renewal(cert, None, NOW + datetime.timedelta(hours=15))[0] is False      # 9h left
    due, why = step_ca.needs_renewal(cert, None, NOW + datetime.timedelta(hours=17))              # 7h left
    assert due is True and why == 'remaining lifetime 7h is below 33.33% of its 24h lifetime'
    assert step_ca.needs_renewal(cert, '50%', NOW + datetime.timedelta(hours=11))[0] is False
    assert step_ca.needs_renewal(cert, '50%', NOW + datetime.timedelta(hours=13))[0] is True
    assert step_ca.needs_renewal(cert, '2h', NOW + datetime.timedelta(hours=21))[0] is False
    assert step_ca.needs_renewal(cert, '2h', NOW + datetime.timedelta(hours=23))[0] is True


# -- the decision -------------------------------------------------------------------------------------------

def test_assess_none_when_everything_matches(pki, tmp_path):
    _cert, paths = pki.leaf(tmp_path)
    result = pki.assess(paths)
    assert result['action'] == 'none', result['reason']
    assert result['info']['sans'] == ['svc.test', 'alt.test'] and result['info']['key_type'] == 'EC256'


def test_assess_missing_and_unreadable(pki, tmp_path):
    paths = {'c.crt': str(tmp_path / 'c.crt'), 'k.key': str(tmp_path / 'k.key'), 'chain.crt': None}
    assert pki.assess(paths)['action'] == 'issue'
    (tmp_path / 'c.crt').write_text('garbage')
    result = pki.assess(paths)
    assert result['action'] == 'issue' and 'unreadable' in result['reason']


@pytest.mark.parametrize('change, reason', [
    (dict(sans=['alt.test', 'new.test']), 'SANs'),
    (dict(common_name='other.test'), 'common name'),
    (dict(key_type='RSA2048'), 'key type EC256, wanted RSA2048'),
])
def test_assess_reissues_on_identity_changes(pki, tmp_path, change, reason):
    _cert, paths = pki.leaf(tmp_path)
    result = pki.assess(paths, **change)
    assert result['action'] == 'reissue' and reason in result['reason']


def test_assess_san_order_and_case_do_not_matter(pki, tmp_path):
    _cert, paths = pki.leaf(tmp_path, sans=('svc.test', 'alt.test', '10.0.0.1'))
    assert pki.assess(paths, sans=['10.0.0.1', 'ALT.test'])['action'] == 'none'


def test_assess_key_mismatch_and_missing_key(pki, tmp_path):
    _cert, paths = pki.leaf(tmp_path)
    other = step_ca.generate_private_key('EC256')
    step_ca.atomic_write(paths['k.key'], step_ca.private_key_pem(other))
    result = pki.assess(paths)
    assert result['action'] == 'reissue' and 'does not match' in result['reason']
    os.unlink(paths['k.key'])
    assert pki.assess(paths)['action'] == 'reissue'


def test_assess_issuer_changed(pki, tmp_path):
    _cert, paths = pki.leaf(tmp_path)
    new_ca = PKI('New')
    result = pki.assess(paths, roots=[new_ca.root], intermediates=[new_ca.inter])
    assert result['action'] == 'reissue' and 'not signed by the current CA' in result['reason']
    # Same names, different keys: a rebuilt CA with the same name is also "another issuer".
    same_name = PKI('Test')
    assert pki.assess(paths, roots=[same_name.root], intermediates=[same_name.inter])['action'] == 'reissue'


def test_assess_expired_and_renew(pki, tmp_path):
    _cert, paths = pki.leaf(tmp_path, not_before=NOW, lifetime=datetime.timedelta(hours=24))
    assert pki.assess(paths, now=NOW + datetime.timedelta(hours=25))['action'] == 'reissue'
    result = pki.assess(paths, now=NOW + datetime.timedelta(hours=20))
    assert result['action'] == 'renew' and 'below' in result['reason']
    assert pki.assess(paths, now=NOW + datetime.timedelta(hours=20), threshold='2h')['action'] == 'none'


@pytest.mark.parametrize('key_type', step_ca.KEY_TYPES)
def test_every_key_type_makes_a_csr(key_type):
    key = step_ca.generate_private_key(key_type)
    assert step_ca.key_type_of(key) == key_type
    csr = x509.load_pem_x509_csr(step_ca.make_csr(key, 'a.test', ['a.test', '10.1.2.3', 'x@y.test']))
    sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(n.value) for n in sans] == ['a.test', '10.1.2.3', 'x@y.test']
    assert csr.is_signature_valid


def test_chains_to(pki, tmp_path):
    cert, _paths = pki.leaf(tmp_path)
    assert step_ca.chains_to(cert, [pki.inter], [pki.root]) is True
    assert step_ca.chains_to(cert, [], [pki.root]) is False
    assert step_ca.chains_to(pki.inter, [], [pki.root]) is True


# -- JOSE ---------------------------------------------------------------------------------------------------

def test_provisioner_key_roundtrip_with_steps_iteration_count():
    from jwcrypto import jwa
    private, public = step_ca.generate_provisioner_key()
    encrypted = step_ca.encrypt_provisioner_key(private, 'secret')
    header = step_ca.jwe_header(encrypted)
    assert header['alg'] == 'PBES2-HS256+A128KW' and header['enc'] == 'A256GCM' and header['p2c'] == 100000
    limit = getattr(jwa, 'default_max_pbkdf2_iterations', None)
    decrypted = step_ca.decrypt_provisioner_key(encrypted, 'secret', 'svc')
    assert step_ca.same_public_key(decrypted, public)
    assert getattr(jwa, 'default_max_pbkdf2_iterations', None) == limit            # restored afterwards
    assert public['kid'] == decrypted.thumbprint() and public['alg'] == 'ES256' and 'd' not in public
    with pytest.raises(step_ca.BadPassword, match="does not decrypt the key of provisioner 'svc'"):
        step_ca.decrypt_provisioner_key(encrypted, 'wrong', 'svc')


def test_iteration_limit_is_left_alone_where_jwcrypto_has_none(monkeypatch):
    """jwcrypto 1.1 (Debian bookworm) has no default_max_pbkdf2_iterations: nothing to raise or restore."""
    from jwcrypto import jwa
    monkeypatch.delattr(jwa, 'default_max_pbkdf2_iterations', raising=False)
    with step_ca.pbes2_iterations(100000):
        assert not hasattr(jwa, 'default_max_pbkdf2_iterations')
    assert not hasattr(jwa, 'default_max_pbkdf2_iterations')


def test_iteration_limit_is_raised_only_inside_the_block(monkeypatch):
    from jwcrypto import jwa
    monkeypatch.setattr(jwa, 'default_max_pbkdf2_iterations', 16384, raising=False)
    with step_ca.pbes2_iterations(600000):
        assert jwa.default_max_pbkdf2_iterations == 600000
    assert jwa.default_max_pbkdf2_iterations == 16384


def test_token_claims_and_signature():
    from jwcrypto import jwk, jwt
    private, public = step_ca.generate_provisioner_key()
    token = step_ca.make_token(private, 'services', 'svc.test', 'https://ca.test:9000/1.0/sign',
                               sans=['svc.test', '10.0.0.1'], now=1000)
    parsed = jwt.JWT(jwt=token, key=jwk.JWK(**public), check_claims=False)
    header, claims = json.loads(parsed.header), json.loads(parsed.claims)
    assert header == {'alg': 'ES256', 'typ': 'JWT', 'kid': public['kid']}
    assert claims['iss'] == 'services' and claims['sub'] == 'svc.test'
    assert claims['aud'] == 'https://ca.test:9000/1.0/sign' and claims['sans'] == ['svc.test', '10.0.0.1']
    assert (claims['iat'], claims['nbf'], claims['exp']) == (1000, 1000, 1300)
    assert len(claims['jti']) == 64
    assert step_ca.make_token(private, 'services', 'x', 'aud') != step_ca.make_token(private, 'services', 'x', 'aud')


def test_fingerprints():
    value = 'AB:' * 31 + 'AB'
    assert step_ca.normalize_fingerprint(value) == 'ab' * 32
    with pytest.raises(step_ca.StepCAError, match='invalid root fingerprint'):
        step_ca.normalize_fingerprint('abc')


# -- provisioner entries --------------------------------------------------------------------------------------

def test_claims_validation():
    assert step_ca.normalize_claims({'maxTLSCertDuration': '2d', 'disableRenewal': 'no'}) == \
        {'maxTLSCertDuration': '48h', 'disableRenewal': False}
    kept = step_ca.normalize_claims({'defaultTLSCertDuration': '24h'}, {'defaultTLSCertDuration': '24h0m0s'})
    assert kept == {'defaultTLSCertDuration': '24h0m0s'}
    with pytest.raises(step_ca.StepCAError, match='<= maxTLSCertDuration'):
        step_ca.normalize_claims({'defaultTLSCertDuration': '48h'})                # above step-ca's 24h max
    assert step_ca.normalize_claims({'defaultTLSCertDuration': '48h'}, None, {'maxTLSCertDuration': '72h'})
    with pytest.raises(step_ca.StepCAError, match='unknown provisioner claim'):
        step_ca.normalize_claims({'maxTLS': '1h'})


def test_desired_provisioner_keeps_a_key_that_decrypts():
    claims = {'maxTLSCertDuration': '1h', 'defaultTLSCertDuration': '1h'}
    entry, note = step_ca.desired_provisioner(None, 'svc', 'JWK', 'pw', claims)
    assert note == 'new key' and entry['claims'] == {'maxTLSCertDuration': '1h', 'defaultTLSCertDuration': '1h'}
    entry = dict(entry, options={'x509': {'templateFile': 't.tpl'}})
    again, note = step_ca.desired_provisioner(entry, 'svc', 'JWK', 'pw', claims)
    assert again == entry and note == 'kept the existing key'
    other, note = step_ca.desired_provisioner(entry, 'svc', 'JWK', 'new-pw')
    assert other['key'] != entry['key'] and 'does not decrypt' in note and other['options'] == entry['options']
    acme, _note = step_ca.desired_provisioner(None, 'acme', 'ACME', challenges=['http-01'], force_cn=True)
    assert acme == {'type': 'ACME', 'name': 'acme', 'challenges': ['http-01'], 'forceCN': True}
    with pytest.raises(step_ca.StepCAError, match='unknown ACME challenge'):
        step_ca.desired_provisioner(None, 'acme', 'ACME', challenges=['http-02'])
    assert step_ca.redact_provisioner(entry)['encryptedKey'].endswith('...')


# -- files ----------------------------------------------------------------------------------------------------

def test_atomic_write_keeps_mode_and_reports_no_change(tmp_path):
    path = str(tmp_path / 'f')
    assert step_ca.atomic_write(path, b'one') is True
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600                        # new files are private
    os.chmod(path, 0o640)
    assert step_ca.atomic_write(path, b'two') is True
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert step_ca.atomic_write(path, b'two') is False
    assert step_ca.atomic_write(path, 'three', mode='0644') is True
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert sorted(os.listdir(str(tmp_path))) == ['f']                          # no temporary files left


# -- transport: retries and errors against a local TLS server ----------------------------------------------

class Served(tuple):
    """(url, root PEM, answers to give) of the local TLS server; ``seen``: the requests it received."""

    def __new__(cls, values, seen):
        self = super(Served, cls).__new__(cls, values)
        self.seen = seen
        return self


@pytest.fixture
def tls_server(tmp_path):
    root_key = step_ca.generate_private_key('EC256')
    root = make_cert('Local Root', None, None, root_key, ca=True, not_before=step_ca.utcnow() - datetime.timedelta(1),
                     lifetime=datetime.timedelta(days=3))
    key = step_ca.generate_private_key('EC256')
    cert = make_cert('127.0.0.1', root, root_key, key, sans=['127.0.0.1'],
                     not_before=step_ca.utcnow() - datetime.timedelta(1), lifetime=datetime.timedelta(days=3))
    (tmp_path / 'srv.crt').write_bytes(step_ca.cert_pem(cert))
    (tmp_path / 'srv.key').write_bytes(step_ca.private_key_pem(key))
    answers = []
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append((self.command, self.path))
            status, body = answers.pop(0) if answers else (200, {'status': 'ok'})
            if status == 'drop':                          # read the request, answer nothing, hang up
                self.close_connection = True
                self.connection.close()
                return
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header('Content-Length', str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            self.rfile.read(int(self.headers.get('Content-Length') or 0))
            self.do_GET()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(('127.0.0.1', 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(tmp_path / 'srv.crt'), str(tmp_path / 'srv.key'))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield Served(('https://127.0.0.1:%d' % server.server_address[1], step_ca.cert_pem(root), answers), seen)
    server.shutdown()


def test_transient_errors_are_retried_with_backoff(tls_server):
    url, root, answers = tls_server
    answers.extend([(503, {'message': 'busy'}), (502, {'message': 'gateway'})])
    sleeps = []
    client = step_ca.StepCAClient(url, root_pem=root, retries=3, backoff=0.5, sleep=sleeps.append)
    assert client.health() == {'status': 'ok'}
    assert sleeps == [0.5, 1.0] and client.requests == {'/health': 3}


def test_http_errors_are_not_retried_and_name_the_endpoint(tls_server):
    url, root, answers = tls_server
    answers.append((401, {'message': 'invalid token'}))
    client = step_ca.StepCAClient(url, root_pem=root, sleep=lambda s: None)
    with pytest.raises(step_ca.CARequestError) as info:
        client.health()
    assert str(info.value) == 'Step-CA at %s refused GET /health (HTTP 401): invalid token' % url
    assert info.value.status == 401 and client.requests == {'/health': 1}


def test_persistent_503_is_reported_as_unreachable(tls_server):
    url, root, answers = tls_server
    answers.extend([(503, {'message': 'down'})] * 3)
    client = step_ca.StepCAClient(url, root_pem=root, retries=2, sleep=lambda s: None)
    with pytest.raises(step_ca.CAUnreachable, match='answered HTTP 503 to GET /health: down'):
        client.health()


def test_tls_must_verify_against_the_pinned_root(tls_server):
    url, _root, _answers = tls_server
    other = PKI('Other').root
    client = step_ca.StepCAClient(url, root_pem=step_ca.cert_pem(other), sleep=lambda s: None)
    sleeps = []
    client = step_ca.StepCAClient(url, root_pem=step_ca.cert_pem(other), sleep=sleeps.append)
    with pytest.raises(step_ca.CATLSError) as info:
        client.health()
    assert str(info.value) == 'TLS verification failed for %s/health: unable to get local issuer certificate' % url
    assert sleeps == [] and client.requests == {'/health': 1}                 # never retried


def test_invalid_url():
    with pytest.raises(step_ca.StepCAError, match='expected https://'):
        step_ca.StepCAClient('http://ca.test:9000')


# -- retries of writes: only when the request was certainly not sent -------------------------------------------

def test_write_answered_503_is_not_retried(tls_server):
    url, root, answers = tls_server
    answers.append((503, {'message': 'busy'}))
    sleeps = []
    client = step_ca.StepCAClient(url, root_pem=root, retries=3, sleep=sleeps.append)
    with pytest.raises(step_ca.CAWriteUncertain, match='answered HTTP 503 to POST /1.0/sign: busy; not retried'):
        client.sign(b'csr', 'token')
    assert sleeps == [] and client.requests == {'/1.0/sign': 1}
    assert tls_server.seen == [('POST', '/1.0/sign')]


def test_write_without_answer_is_not_sent_twice(tls_server):
    url, root, answers = tls_server
    answers.append(('drop', None))
    client = step_ca.StepCAClient(url, root_pem=root, retries=3, sleep=lambda s: None)
    with pytest.raises(step_ca.CAWriteUncertain) as info:
        client.sign(b'csr', 'token')
    assert 'POST /1.0/sign was sent but no answer came back' in str(info.value)
    assert 'not retried' in str(info.value)
    assert tls_server.seen == [('POST', '/1.0/sign')]                         # the CA saw it once


def test_read_without_answer_is_retried(tls_server):
    url, root, answers = tls_server
    answers.append(('drop', None))
    client = step_ca.StepCAClient(url, root_pem=root, retries=3, sleep=lambda s: None)
    assert client.health() == {'status': 'ok'}
    assert tls_server.seen == [('GET', '/health'), ('GET', '/health')]


def test_write_is_retried_when_the_connection_was_refused():
    sleeps = []
    client = step_ca.StepCAClient('https://127.0.0.1:%d' % _closed_port(), root_pem=b'x', retries=2,
                                  backoff=0.5, sleep=sleeps.append)
    client._context = lambda *args: ssl.create_default_context()
    with pytest.raises(step_ca.CAUnreachable) as info:
        client.sign(b'csr', 'token')
    assert not isinstance(info.value, step_ca.CAWriteUncertain)
    assert 'connection refused (after 3 attempts)' in str(info.value)
    assert sleeps == [0.5, 1.0] and client.requests == {'/1.0/sign': 3}


def test_write_is_retried_after_a_connect_timeout(tls_server, monkeypatch):
    url, root, _answers = tls_server
    real_connect = http.client.HTTPSConnection.connect
    failures = [socket.timeout('timed out')]

    def connect(self):
        if failures:
            raise failures.pop()
        return real_connect(self)

    monkeypatch.setattr(http.client.HTTPSConnection, 'connect', connect)
    sleeps = []
    client = step_ca.StepCAClient(url, root_pem=root, retries=3, backoff=0.5, sleep=sleeps.append)
    assert client.sign(b'csr', 'token') == {'status': 'ok'}
    assert sleeps == [0.5] and tls_server.seen == [('POST', '/1.0/sign')]


def _closed_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]
