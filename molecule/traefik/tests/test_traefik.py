# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verify the traefik role on the molecule instance (testinfra).

Routes come from the fixture guests and stacks in vars/traefik.yml through the role's own filters; the backends
are loopback test servers (files/backend.py); every TLS check trusts only the test root made in prepare.
"""

import json
import os
import shlex
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from phoenix_testinfra import assert_no_service_errors, wait_equal, wait_for  # noqa: E402

CA = '/usr/local/share/ca-certificates/phoenix-root-ca.crt'
PKI = '/etc/phoenix-test-pki'


def curl(host, url, *extra, resolve=None, cacert=CA):
    """(status, body) of a request made on the instance; status 0 when curl itself fails (TLS, refused)."""
    cmd = ['curl', '--silent', '--show-error', '--max-time', '10', '--output', '/tmp/molecule-body',
           '--write-out', '%{http_code}']
    if cacert:
        cmd += ['--cacert', cacert]
    if resolve:
        cmd += ['--resolve', resolve]
    cmd += list(extra) + [url]
    result = host.run(' '.join(shlex.quote(c) for c in cmd))
    body = host.run('cat /tmp/molecule-body 2>/dev/null; rm -f /tmp/molecule-body').stdout
    return (int(result.stdout.strip() or 0) if result.rc == 0 else 0), body


def https(host, name, path='/'):
    return curl(host, 'https://%s%s' % (name, path), resolve='%s:443:127.0.0.1' % name)


def served_serial(host, name):
    out = host.run('echo | openssl s_client -connect 127.0.0.1:443 -servername %s 2>/dev/null '
                   '| openssl x509 -noout -serial' % name).stdout
    return out.strip()


def main_pid(host):
    return host.check_output('systemctl show -p MainPID --value traefik.service').strip()


@pytest.fixture(scope='module', autouse=True)
def converged(host):
    """Traefik's file provider loads the routes converge wrote on its own time: the tests start once it has."""
    wait_for(lambda: curl(host, 'http://127.0.0.1:8082/ping', cacert=None), lambda answer: answer == (200, 'OK'),
             'Traefik /ping')
    for name in ('plain.lab.test', 'granite-embedding.lab.test', 'qdrant.lab.test'):
        wait_for(lambda n=name: https(host, n), lambda answer: answer[0] == 200, 'the route of %s' % name)


def test_service_runs_unprivileged(host):
    service = host.service('traefik')
    assert service.is_running and service.is_enabled
    props = host.check_output('systemctl show traefik.service -p User -p AmbientCapabilities '
                              '-p CapabilityBoundingSet -p NoNewPrivileges -p ProtectSystem -p PrivateDevices')
    assert 'User=traefik' in props
    assert 'AmbientCapabilities=cap_net_bind_service' in props
    assert 'CapabilityBoundingSet=cap_net_bind_service' in props
    assert 'NoNewPrivileges=yes' in props and 'ProtectSystem=strict' in props
    owner = host.check_output('ps -o user= -p %s' % main_pid(host)).strip()
    assert owner == 'traefik'
    assert host.file('/usr/local/bin/traefik').linked_to == '/usr/local/lib/traefik/3.7.15/traefik'


def test_ping(host):
    assert curl(host, 'http://127.0.0.1:8082/ping', cacert=None) == (200, 'OK')


def test_https_guest_route_verified_against_the_root(host):
    status, body = https(host, 'granite-embedding.lab.test', '/v1/models')
    assert status == 200, body
    answer = json.loads(body)
    assert answer == {'backend': 'granite-embedding', 'host': 'granite-embedding.lab.test', 'path': '/v1/models'}


def test_backend_with_a_certificate_for_another_name_is_refused(host):
    status, _body = https(host, 'wrong-name.lab.test')
    assert status == 500


def test_http_guest_route(host):
    status, body = https(host, 'plain.lab.test')
    assert status == 200 and json.loads(body)['backend'] == 'plain'


def test_stack_route_goes_to_the_swarm_edge_with_the_host(host):
    status, body = https(host, 'qdrant.lab.test', '/collections')
    assert status == 200, body
    assert json.loads(body) == {'backend': 'swarm-edge', 'host': 'qdrant.lab.test', 'path': '/collections'}


def test_unknown_host_is_404(host):
    status, _body = curl(host, 'https://plain.lab.test/', '--header', 'Host: nothing.lab.test',
                         resolve='plain.lab.test:443:127.0.0.1')
    assert status == 404


def test_http_redirects_to_https(host):
    result = host.run('curl -s -o /dev/null -w "%{http_code} %{redirect_url}" --resolve plain.lab.test:80:127.0.0.1 '
                      'http://plain.lab.test/x')
    assert result.stdout == '301 https://plain.lab.test/x'


def test_generated_routes_file(host):
    routes = host.file('/etc/traefik/dynamic/phoenix-routes.yml')
    assert routes.mode == 0o640 and routes.user == 'root' and routes.group == 'traefik'
    text = routes.content_string
    for name in ('guest-granite-embedding', 'guest-plain', 'guest-wrong-name', 'stack-qdrant',
                 'phoenix-swarm-edge', 'https://127.0.0.1:8443', 'certResolver: internal-resolver'):
        assert name in text
    static = host.file('/etc/traefik/traefik.yml').content_string
    assert 'caSystemCertPool: true' in static and 'certificatesDuration: 24' in static
    assert 'dashboard: false' in static


def test_renewed_certificate_is_served_without_restart(host):
    before_pid = main_pid(host)
    before = served_serial(host, 'plain.lab.test')
    expected = host.check_output('openssl x509 -noout -serial -in %s/traefik-renewed.crt' % PKI).strip()
    assert before != expected
    host.check_output('install -m 0644 %s/traefik-renewed.crt /etc/traefik/certs/traefik.crt.new && '
                      'install -m 0640 -g traefik %s/traefik-renewed.key /etc/traefik/certs/traefik.key && '
                      'mv -f /etc/traefik/certs/traefik.crt.new /etc/traefik/certs/traefik.crt' % (PKI, PKI))
    wait_equal(lambda: served_serial(host, 'plain.lab.test'), expected, 'the renewed certificate served by Traefik')
    assert main_pid(host) == before_pid
    assert https(host, 'plain.lab.test')[0] == 200


@pytest.mark.parametrize('path', ['/etc/traefik', '/etc/traefik/dynamic'])
def test_config_not_writable_by_the_service(host, path):
    directory = host.file(path)
    assert directory.user == 'root' and directory.group == 'traefik' and directory.mode == 0o750


def test_no_errors_logged(host):
    # Catches, for one, a dynamic configuration file Traefik rejects ("... cannot be a standalone element").
    assert_no_service_errors(host, ['traefik'], allowed=[
        # test_backend_with_a_certificate_for_another_name_is_refused: the backend's certificate names another host.
        r'ERR 500 Internal Server Error error="tls: failed to verify certificate: x509: certificate is valid for '
        r'other-name\.lab\.test, not wrong-name\.lab\.test"',
    ])
