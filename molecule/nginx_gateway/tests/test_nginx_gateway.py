# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verify the nginx_gateway role on the molecule instance (testinfra).

The server names come from the fixture guests in vars/gateway.yml through the role's own filters. A TLS test
server stands in for Traefik (its certificate names app and granite-embedding, not unverified); every TLS
check trusts only the test root made in prepare.
"""

import json
import os
import shlex
import subprocess
import sys

import pytest

SCENARIO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(SCENARIO))

from phoenix_testinfra import assert_no_service_errors, wait_equal, wait_for  # noqa: E402

CA = '/usr/local/share/ca-certificates/phoenix-root-ca.crt'


def curl(host, url, *extra, port=443, cacert=CA):
    """(status, body, redirect) of a request made on the instance; status 0 when curl itself fails."""
    name = url.split('/')[2]
    cmd = ['curl', '--silent', '--show-error', '--max-time', '10', '--output', '/tmp/molecule-body',
           '--write-out', '%{http_code} %{redirect_url}', '--resolve', '%s:%d:127.0.0.1' % (name, port)]
    if cacert:
        cmd += ['--cacert', cacert]
    cmd += list(extra) + [url]
    result = host.run(' '.join(shlex.quote(c) for c in cmd))
    body = host.run('cat /tmp/molecule-body 2>/dev/null; rm -f /tmp/molecule-body').stdout
    status, _sep, redirect = result.stdout.partition(' ')
    return (int(status or 0) if result.rc == 0 else 0), body, redirect


@pytest.fixture(scope='module', autouse=True)
def converged(host):
    """Converge reloaded nginx: the tests start once a routed name answers through the gateway."""
    wait_for(lambda: curl(host, 'https://app.lab.test/v1/models'), lambda answer: answer[0] == 200,
             'https://app.lab.test/v1/models through the gateway')


def test_nginx_running(host):
    assert host.service('nginx').is_running and host.service('nginx').is_enabled
    assert host.run('nginx -t').rc == 0


def test_routed_name_is_proxied_to_traefik_over_verified_tls(host):
    status, body, _redirect = curl(host, 'https://app.lab.test/v1/models')
    assert status == 200, body
    assert json.loads(body) == {'backend': 'traefik', 'host': 'app.lab.test', 'path': '/v1/models'}
    assert curl(host, 'https://granite-embedding.lab.test/')[0] == 200


def test_traefik_certificate_must_name_the_host(host):
    # The stand-in's certificate does not name unverified.lab.test: nginx refuses the upstream.
    assert curl(host, 'https://unverified.lab.test/')[0] == 502


def test_http_redirects_to_https(host):
    status, _body, redirect = curl(host, 'http://app.lab.test/a?b=1', port=80, cacert=None)
    assert (status, redirect) == (301, 'https://app.lab.test/a?b=1')


def test_acme_challenge_goes_to_traefik_over_http(host):
    status, body, _redirect = curl(host, 'http://app.lab.test/.well-known/acme-challenge/token1', port=80,
                                   cacert=None)
    assert status == 200
    assert json.loads(body) == {'backend': 'acme', 'host': 'app.lab.test',
                                'path': '/.well-known/acme-challenge/token1'}


def test_unknown_host_is_404(host):
    status, _body, _redirect = curl(host, 'https://app.lab.test/', '--header', 'Host: nothing.lab.test')
    assert status == 404


def test_server_names_generated(host):
    conf = host.file('/etc/nginx/nginx.conf').content_string
    for name in ('app.lab.test', 'granite-embedding.lab.test', 'unverified.lab.test'):
        assert '            %s' % name in conf
    assert 'proxy_ssl_verify on;' in conf and 'proxy_ssl_name $host;' in conf


def test_broken_candidate_never_replaces_the_running_config(host):
    before = host.file('/etc/nginx/nginx.conf').sha256sum
    env = dict(os.environ)
    out = os.path.join(env['MOLECULE_EPHEMERAL_DIRECTORY'], 'broken.json')
    if os.path.exists(out):
        os.remove(out)
    run = subprocess.run(['ansible-playbook', '-i', env['MOLECULE_INVENTORY_FILE'],
                          os.path.join(SCENARIO, 'broken.yml')], env=env, capture_output=True, text=True,
                         check=False)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    with open(out) as handle:
        failure = json.load(handle)
    assert 'checked with nginx -t' in failure['task']
    assert 'phoenix_not_a_directive' in failure['msg'] + failure['stderr']
    assert host.file('/etc/nginx/nginx.conf').sha256sum == before
    assert curl(host, 'https://app.lab.test/')[0] == 200


def test_drift_is_found_and_repaired(host):
    conf = '/etc/nginx/nginx.conf'
    wanted = host.file(conf).sha256sum
    host.check_output("echo '# phoenix-drift' >> %s && chown nobody %s && chmod 0600 %s" % (conf, conf, conf))
    drifted = host.file(conf).sha256sum
    env = dict(os.environ)
    base = ['ansible-playbook', '-i', env['MOLECULE_INVENTORY_FILE']]
    # check mode shows the change and writes nothing
    run = subprocess.run(base + ['--check', '--diff', os.path.join(SCENARIO, 'converge.yml')], env=env,
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert '-# phoenix-drift' in run.stdout
    assert host.file(conf).sha256sum == drifted and host.file(conf).mode == 0o600
    # a real run puts back the content, owner and mode, and reloads nginx
    run = subprocess.run(base + [os.path.join(SCENARIO, 'converge.yml')], env=env, capture_output=True, text=True,
                         check=False)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert 'RUNNING HANDLER [thinkheads.phoenix.nginx_gateway : Reload nginx]' in run.stdout
    assert host.file(conf).sha256sum == wanted
    assert (host.file(conf).user, host.file(conf).group, host.file(conf).mode) == ('root', 'root', 0o644)
    wait_for(lambda: curl(host, 'https://app.lab.test/'), lambda answer: answer[0] == 200,
             'https://app.lab.test/ after the reload')


def served_serial(host):
    return host.run('echo | openssl s_client -connect 127.0.0.1:443 -servername app.lab.test 2>/dev/null'
                    ' | openssl x509 -noout -serial').stdout.strip()


def test_renewed_certificate_after_reload(host):
    expected = host.check_output('openssl x509 -noout -serial -in /etc/phoenix-test-pki/gateway-renewed.crt')
    assert served_serial(host) != expected
    host.check_output('install -m 0640 -g www-data /etc/phoenix-test-pki/gateway-renewed.key /etc/nginx/ssl/gateway.key'
                      ' && install -m 0644 /etc/phoenix-test-pki/gateway-renewed.crt /etc/nginx/ssl/gateway.crt'
                      ' && systemctl reload nginx')
    # `systemctl reload` returns before the old workers exit: until then a connection may still get the old one.
    wait_equal(lambda: served_serial(host), expected, 'the renewed certificate served after the reload')
    assert curl(host, 'https://app.lab.test/')[0] == 200


def test_no_errors_logged(host):
    assert_no_service_errors(host, ['nginx'], allowed=[
        # test_traefik_certificate_must_name_the_host: the stand-in's certificate does not name the host.
        r'upstream SSL certificate does not match "unverified\.lab\.test"',
    ])
