# -*- coding: utf-8 -*-
"""The Portainer client (module_utils/portainer.py) against the Portainer API test double, in process.

No Docker here: auth (JWT and X-API-Key), admin init (409 when an admin exists), tokens, environments by
name, Portainer's error shapes, TLS verification with ca_path, and retries with backoff on 502/503/504.
The stack endpoints, which deploy for real, are covered by tests/swarm.
"""

import json
import os
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from fake_docker import FakeEngine, unreachable_socket
from phoenix_testlib import REPO

sys.path.insert(0, os.path.join(REPO, 'lab', 'portainersim'))

from portainersim import server as sim  # noqa: E402

from ansible_collections.thinkheads.phoenix.plugins.module_utils.portainer import (  # noqa: E402
    PortainerClient, PortainerError, path_template,
)

PASSWORD = 'unit-admin-password-1234'


def start(tmp_path, admin=True, tls=False):
    args = ['--data', str(tmp_path / 'data'), '-H', 'unix:///nonexistent.sock']
    if admin:
        (tmp_path / 'pw').write_text(PASSWORD)
        args += ['--admin-password-file', str(tmp_path / 'pw')]
    httpd = ThreadingHTTPServer(('127.0.0.1', 0), sim.Handler)
    httpd.sim = sim.Sim(sim.parse_args(args))
    httpd.daemon_threads = True
    cert = None
    if tls:
        cert, key = sim._self_signed(str(tmp_path / 'data'))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = '%s://127.0.0.1:%d' % ('https' if tls else 'http', httpd.server_address[1])
    return httpd, url, cert


@pytest.fixture
def portainer(tmp_path):
    httpd, url, _cert = start(tmp_path)
    yield url, httpd
    httpd.shutdown()


def test_jwt_login_token_and_api_key(portainer):
    url, httpd = portainer
    client = PortainerClient(url, username='admin', password=PASSWORD)
    assert client.status()['Version'].startswith('2.')
    assert client.admin_exists() is True
    assert client.admin_init('admin', 'another-password-123') == (None, False)
    me = client.me()
    assert me['Id'] == 1 and me['Username'] == 'admin' and 'Password' not in me
    created = client.create_token(me['Id'], 'phoenix', PASSWORD)
    assert created['rawAPIKey'].startswith('ptr_') and created['apiKey']['description'] == 'phoenix'
    assert 'digest' not in client.tokens(me['Id'])[0]
    keyed = PortainerClient(url, api_key=created['rawAPIKey'])
    assert keyed.me()['Id'] == 1
    with pytest.raises(PortainerError) as err:     # token creation needs a JWT, not an API key
        keyed.create_token(1, 'again', PASSWORD)
    assert err.value.status == 401
    assert client.calls['POST /api/auth'] == 1                 # one login, then the JWT is reused
    assert keyed.calls == {'GET /api/users/me': 1, 'POST /api/users/{id}/tokens': 1}
    assert [r['path'] for r in httpd.sim.requests][:2] == ['/api/system/status', '/api/users/admin/check']


def test_errors_have_portainers_words(portainer):
    url, _httpd = portainer
    with pytest.raises(PortainerError) as err:
        PortainerClient(url, username='admin', password='wrong-password').me()
    assert err.value.status == 422 and 'Invalid credentials' in str(err.value)
    with pytest.raises(PortainerError) as err:
        PortainerClient(url, api_key='ptr_nope').stacks()
    assert err.value.status == 401
    client = PortainerClient(url, username='admin', password=PASSWORD)
    with pytest.raises(PortainerError, match='no environment named "nope" \\(known: primary\\)'):
        client.resolve_endpoint('nope')
    assert client.resolve_endpoint('primary') == 1
    with pytest.raises(PortainerError) as err:
        client.stack_file(42)
    assert err.value.status == 404 and 'Unable to find a stack' in str(err.value)


def test_admin_init_on_a_fresh_instance(tmp_path):
    httpd, url, _cert = start(tmp_path, admin=False)
    try:
        client = PortainerClient(url, username='admin', password=PASSWORD)
        assert client.admin_exists() is False
        with pytest.raises(PortainerError) as err:
            client.admin_init('admin', 'short')
        assert err.value.status == 400
        user, created = client.admin_init('admin', PASSWORD)
        assert created and user['Id'] == 1 and user['Role'] == 1
        assert client.admin_init('admin', PASSWORD) == (None, False)
    finally:
        httpd.shutdown()


def test_endpoints_by_name(portainer, tmp_path):
    url, _httpd = portainer
    client = PortainerClient(url, username='admin', password=PASSWORD)
    with pytest.raises(PortainerError) as err:          # Portainer pings the engine before it saves the environment
        client.create_endpoint('second', 1, url=unreachable_socket(tmp_path))
    assert err.value.status == 500 and 'Unable to initiate communications with environment' in str(err.value)
    engine = FakeEngine()
    try:
        created = client.create_endpoint('second', 1, url=engine.url)
    finally:
        engine.close()
    assert created['Name'] == 'second' and created['Type'] == 1
    with pytest.raises(PortainerError) as err:
        client.create_endpoint('second', 1)
    assert err.value.status == 409
    with pytest.raises(PortainerError, match='Unable to get environment type'):
        client.create_endpoint('agent', 2, url='tcp://127.0.0.1:1')        # the agent must answer
    assert client.endpoint_by_name('second')['Id'] == created['Id']
    assert client.calls['GET /api/endpoints'] == 1


def test_tls_is_verified_by_default(tmp_path):
    httpd, url, cert = start(tmp_path, tls=True)
    sleeps = []
    try:
        # never retried, and said so
        with pytest.raises(PortainerError, match=r'^TLS verification failed for %s/api/system/status: .*certificate '
                                                 r'verify failed' % url):
            PortainerClient(url, sleep=sleeps.append).status()
        # the self-signed certificate names portainersim, not 127.0.0.1: trusted CA, but still no name match
        with pytest.raises(PortainerError, match=r'^TLS verification failed for .*(match|mismatch)'):
            PortainerClient(url, ca_path=cert, sleep=sleeps.append).status()
        assert sleeps == []
        assert PortainerClient(url, validate_certs=False).status()['Version']
    finally:
        httpd.shutdown()


def test_retries_with_backoff_on_transient_answers():
    answers = [503, 502, 200]

    class Flaky(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):  # noqa: N802
            code = answers.pop(0)
            body = json.dumps({'Version': '2.21.4'} if code == 200 else {'message': 'busy'}).encode()
            self.send_response(code)
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(('127.0.0.1', 0), Flaky)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    sleeps = []
    try:
        client = PortainerClient('http://127.0.0.1:%d' % httpd.server_address[1], api_key='k', sleep=sleeps.append)
        assert client.status() == {'Version': '2.21.4'}
        assert sleeps == [0.5, 1.0] and client.calls == {'GET /api/system/status': 3}
        answers[:] = [503] * 5
        with pytest.raises(PortainerError) as err:
            PortainerClient('http://127.0.0.1:%d' % httpd.server_address[1], api_key='k', api_retries=1,
                            sleep=sleeps.append).status()
        assert err.value.status == 503 and 'busy' in str(err.value)
    finally:
        httpd.shutdown()
    sleeps[:] = []
    with pytest.raises(PortainerError, match='unreachable .*3 attempts'):
        PortainerClient('http://127.0.0.1:9', api_key='k', api_retries=2, sleep=sleeps.append).status()
    assert sleeps == [0.5, 1.0]


def test_path_templates_and_url_checks():
    assert path_template('/api/stacks/12/file?x=1') == '/api/stacks/{id}/file'
    assert path_template('/api/endpoints/3/docker/services') == '/api/endpoints/{id}/docker/services'
    with pytest.raises(PortainerError, match='not set'):
        PortainerClient(None)
    with pytest.raises(PortainerError, match='must start with https://'):
        PortainerClient('portainer:9443')
    assert PortainerClient('https://p:9443/api/').base == 'https://p:9443'


def fault(url, **spec):
    """Arm a portainersim network fault (POST /sim/faults)."""
    PortainerClient(url).request('POST', '/sim/faults', body=spec, auth=False)


def test_a_write_is_retried_only_when_it_was_certainly_not_sent(portainer):
    url, httpd = portainer
    client = PortainerClient(url, username='admin', password=PASSWORD, sleep=lambda s: None)
    client.login()
    # the connection closes after Portainer carried the request out: not sent again, and said so
    fault(url, method='POST', path='/api/users/1/tokens', fault='drop')
    with pytest.raises(PortainerError) as err:
        client.create_token(1, 'lost-answer', PASSWORD)
    assert err.value.unsure and 'may have been carried out' in str(err.value)
    assert client.calls['POST /api/users/{id}/tokens'] == 1
    assert [t['description'] for t in client.tokens(1)] == ['lost-answer']      # it was carried out, once
    # a proxy's 502/504 may come after the request was passed on: not repeated either
    client.create_token(1, 'second', PASSWORD)
    for status in ('502', '504'):
        fault(url, method='DELETE', path='/api/users/1/tokens/.*', fault=status)
        with pytest.raises(PortainerError) as err:
            client.delete_token(1, client.tokens(1)[0]['id'])
        assert err.value.unsure and err.value.status == int(status)
    assert client.calls['DELETE /api/users/{id}/tokens/{id}'] == 2 and client.tokens(1) == []
    # a 503 is an answer without processing: a write is repeated
    fault(url, method='POST', path='/api/users/1/tokens', fault='503')
    assert client.create_token(1, 'after-503', PASSWORD)['rawAPIKey']
    assert client.calls['POST /api/users/{id}/tokens'] == 4
    # reading requests are repeated after any of these
    fault(url, method='GET', path='/api/users/1/tokens', fault='drop')
    fault(url, method='GET', path='/api/users/1/tokens', fault='504')
    assert [t['description'] for t in client.tokens(1)] == ['after-503']
    assert client.calls['GET /api/users/{id}/tokens'] == 7


def test_a_write_after_a_read_timeout_is_not_repeated(portainer):
    url, httpd = portainer
    # The delayed answers come twice the client's timeout late; the one undelayed retry has the whole timeout (2 s)
    # to answer on a loaded machine.
    client = PortainerClient(url, username='admin', password=PASSWORD, api_timeout=2, sleep=lambda s: None)
    client.login()
    fault(url, method='POST', path='/api/users/1/tokens', fault='delay', seconds=4)
    with pytest.raises(PortainerError) as err:
        client.create_token(1, 'slow', PASSWORD)
    assert err.value.unsure and 'did not answer POST /api/users/{id}/tokens (timed out)' in str(err.value)
    assert client.calls['POST /api/users/{id}/tokens'] == 1
    fault(url, method='GET', path='/api/users/1/tokens', fault='delay', seconds=4)
    assert [t['description'] for t in client.tokens(1)] == ['slow'] and client.calls['GET /api/users/{id}/tokens'] == 2


def test_a_refused_write_is_retried():
    sleeps = []
    with pytest.raises(PortainerError) as err:
        PortainerClient('http://127.0.0.1:9', api_key='k', api_retries=2, sleep=sleeps.append).request(
            'POST', '/api/stacks/create/swarm/string', body={})
    assert not err.value.unsure and 'unreachable' in str(err.value) and sleeps == [0.5, 1.0]
