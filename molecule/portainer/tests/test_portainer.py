# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verify the portainer role on the molecule instance (testinfra).

The service runs the Portainer API TEST DOUBLE (lab/portainersim) installed by the role's binary method: what is
checked here is the role's wiring (unit and hardening, TLS, admin, API token, environments), not Portainer.
"""

import json
import os
import ssl
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIO = os.path.dirname(HERE)
sys.path.insert(0, os.path.dirname(SCENARIO))

from phoenix_testinfra import assert_no_service_errors, wait_for  # noqa: E402

with open(os.path.join(SCENARIO, 'vars', 'portainer.yml')) as handle:
    VARS = yaml.safe_load(handle)
GUEST = VARS['phoenix_guest']
BASE = 'https://%s:9443' % GUEST['network']['ip']
CONTROLLER = os.path.join(os.environ.get('MOLECULE_EPHEMERAL_DIRECTORY', '/nonexistent'), 'portainer')


def instance_name(host):
    return host.backend.get_hostname()


def token_file(host):
    return os.path.join(CONTROLLER, instance_name(host) + '.token')


def api(host, method, path, key=None, body=None, jwt=None):
    """(status, decoded JSON or None) of a request from the controller, verified against the fetched CA."""
    context = ssl.create_default_context(cafile=os.path.join(CONTROLLER, instance_name(host) + '-ca.pem'))
    headers = {'Content-Type': 'application/json'}
    if key:
        headers['X-API-Key'] = key
    if jwt:
        headers['Authorization'] = 'Bearer ' + jwt
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(BASE + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, context=context, timeout=20) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, None


@pytest.fixture(scope='module', autouse=True)
def converged(host):
    """The tests start once the API answers over TLS after converge."""
    wait_for(lambda: api(host, 'GET', '/api/status'), lambda answer: answer[0] == 200, 'GET /api/status')


def test_service_active_enabled_as_its_user(host):
    service = host.service('portainer')
    assert service.is_running
    assert service.is_enabled
    props = dict(line.split('=', 1) for line in host.check_output(
        'systemctl show portainer.service -p User -p NoNewPrivileges -p ProtectSystem -p CapabilityBoundingSet'
        ' -p PrivateDevices -p RestrictNamespaces -p ExecStart').splitlines())
    assert props['User'] == 'portainer'
    assert props['NoNewPrivileges'] == 'yes'
    assert props['ProtectSystem'] == 'strict'
    assert props['CapabilityBoundingSet'] == ''
    assert props['PrivateDevices'] == 'yes'
    assert props['RestrictNamespaces'] == 'yes'
    for flag in ('/opt/portainer/portainer', '--bind-https :9443', '-H unix:///var/run/docker.sock',
                 '--data /var/lib/portainer', '--sslcert', '--sslkey'):
        assert flag in props['ExecStart']
    # the admin password file served the first start only: the running unit no longer names it
    assert '--admin-password-file' not in props['ExecStart']
    # the running process is the installed test double, as the service user
    pid = host.check_output('systemctl show -p MainPID --value portainer.service')
    assert host.check_output('ps -o user= -p %s' % pid) == 'portainer'


def test_release_installed_from_the_archive(host):
    assert host.file('/opt/portainer/portainer').mode & 0o111
    assert host.file('/opt/portainer/portainersim/server.py').exists
    assert host.file('/opt/portainer').user == 'root'
    assert host.file('/var/lib/portainer').user == 'portainer'
    assert host.file('/var/lib/portainer').mode == 0o700


def test_secrets_are_root_only(host):
    for path in ('/etc/portainer/tls/portainer.key', '/etc/portainer/agent.env'):
        secret = host.file(path)
        assert secret.user == 'root' and secret.mode == 0o600, path
    # grep's basic regular expressions: '..*' is one character or more
    assert host.file('/etc/portainer/agent.env').contains('^AGENT_SECRET="..*"$')


def test_admin_password_file_is_gone_after_the_bootstrap(host):
    assert not host.file('/etc/portainer/admin_password').exists
    assert host.file('/var/lib/portainer/.phoenix-admin-initialized').exists
    assert '--admin-password-file' not in host.file('/etc/systemd/system/portainer.service').content_string


def test_certificate_names(host):
    text = host.check_output('openssl x509 -noout -ext subjectAltName -in /etc/portainer/tls/portainer.crt')
    for name in ('DNS:' + GUEST['fqdn'], 'DNS:' + GUEST['traefik_service']['host'], 'DNS:localhost',
                 'IP Address:' + GUEST['network']['ip'], 'IP Address:127.0.0.1'):
        assert name in text


def test_status_over_tls_from_the_controller(host):
    status, body = api(host, 'GET', '/api/status')
    assert status == 200
    assert body['Version']


def test_tls_is_verified(host):
    """The API does not answer to a client that trusts only the system CAs (the certificate is the role's)."""
    with pytest.raises(urllib.error.URLError) as info:
        urllib.request.urlopen(BASE + '/api/status', context=ssl.create_default_context(), timeout=20)
    assert 'CERTIFICATE_VERIFY_FAILED' in str(info.value)


def test_admin_exists_and_logs_in(host):
    assert api(host, 'GET', '/api/users/admin/check')[0] == 204
    status, body = api(host, 'POST', '/api/auth', body={'username': 'admin',
                                                        'password': VARS['portainer_admin_password']})
    assert status == 200 and body['jwt']


def test_token_file_works(host):
    path = token_file(host)
    assert os.stat(path).st_mode & 0o777 == 0o600
    with open(path) as handle:
        key = handle.read().strip()
    status, me = api(host, 'GET', '/api/users/me', key=key)
    assert status == 200 and me['Username'] == 'admin'
    assert api(host, 'GET', '/api/users/me', key=key + 'x')[0] == 401
    # one token with the role's description: runs reuse it instead of piling up new ones
    status, tokens = api(host, 'GET', '/api/users/%d/tokens' % me['Id'], key=key)
    assert status == 200
    assert [t['description'] for t in tokens].count('thinkheads.phoenix') == 1


def test_endpoint_registered_and_is_the_local_swarm(host):
    with open(token_file(host)) as handle:
        key = handle.read().strip()
    status, endpoints = api(host, 'GET', '/api/endpoints', key=key)
    assert status == 200
    named = [e for e in endpoints if e['Name'] == VARS['portainer_endpoint_name']]
    assert len(named) == 1
    assert named[0]['URL'] == 'unix:///var/run/docker.sock'
    status, info = api(host, 'GET', '/api/endpoints/%d/docker/info' % named[0]['Id'], key=key)
    assert status == 200
    assert info['Swarm']['LocalNodeState'] == 'active' and info['Swarm']['ControlAvailable'] is True


def converge(*options):
    """ansible-playbook converge.yml with ``options`` against the instance; (completed process, its PLAY RECAP)."""
    env = dict(os.environ)
    run = subprocess.run(['ansible-playbook', *options, '-i', env['MOLECULE_INVENTORY_FILE'],
                          os.path.join(SCENARIO, 'converge.yml')],
                         env=env, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    return run, run.stdout[run.stdout.rindex('PLAY RECAP'):]


# The files the role converges in one task each (thinkheads.phoenix.file_set): unit, agent secret, bootstrap marker,
# data directory; the admin password file must stay absent after the bootstrap.
UNIT = '/etc/systemd/system/portainer.service'
AGENT_ENV = '/etc/portainer/agent.env'
MARKER = '/var/lib/portainer/.phoenix-admin-initialized'
DATA_DIR = '/var/lib/portainer'
PASSWORD_FILE = '/etc/portainer/admin_password'


def managed_state(host):
    state = {}
    for path in (UNIT, AGENT_ENV, MARKER, DATA_DIR):
        item = host.file(path)
        state[path] = (item.user, item.group, oct(item.mode), None if item.is_directory else item.sha256sum)
    state[PASSWORD_FILE] = host.file(PASSWORD_FILE).exists
    return state


def main_pid(host):
    return host.check_output('systemctl show -p MainPID --value portainer.service')


def test_drift_is_found_shown_and_repaired(host):
    """A changed byte, mode or owner of a managed file (and a stray admin password file) is reported by --check
    --diff without a write, then repaired; the unit's and agent secret's repair restarts the server. Neither secret
    shows in the output."""
    with open(os.path.join(CONTROLLER, 'agent_secret')) as handle:
        secrets = [handle.read().strip(), VARS['portainer_admin_password']]
    assert all(secrets)
    converged_state, pid = managed_state(host), main_pid(host)
    assert converged_state[PASSWORD_FILE] is False
    host.check_output("sed -i 's/^RestartSec=5$/RestartSec=7/' %s" % UNIT)
    host.check_output('chmod 0644 %s' % AGENT_ENV)
    host.check_output('chown nobody %s' % MARKER)
    host.check_output('chmod 0755 %s' % DATA_DIR)
    host.check_output('printf stale > %s' % PASSWORD_FILE)
    drifted = managed_state(host)
    assert all(drifted[path] != converged_state[path] for path in converged_state), drifted

    run, recap = converge('--check', '--diff')
    assert 'changed=0' not in recap and 'failed=0' in recap, recap
    assert '-RestartSec=7' in run.stdout and '+RestartSec=5' in run.stdout, run.stdout[-6000:]
    assert managed_state(host) == drifted
    assert main_pid(host) == pid
    assert not [secret for secret in secrets if secret in run.stdout + run.stderr]

    run, recap = converge('--diff')
    assert 'changed=0' not in recap and 'failed=0' in recap, recap
    assert not [secret for secret in secrets if secret in run.stdout + run.stderr]
    assert managed_state(host) == converged_state
    # the restart handler ran within the play; the new process and the API are polled all the same
    wait_for(lambda: main_pid(host), lambda value: value not in ('0', pid), 'a new portainer MainPID after the repair')
    wait_for(lambda: api(host, 'GET', '/api/status'), lambda answer: answer[0] == 200, 'GET /api/status')


def test_check_mode_reports_no_change(host):
    _output, recap = converge('--check')
    assert 'changed=0' in recap and 'failed=0' in recap, recap


def test_no_errors_logged(host):
    assert_no_service_errors(host, ['portainer', 'docker'], allowed=[
        # The swarm role asks a fresh node for its swarm (GET /swarm) before `docker swarm init`: dockerd logs the 503.
        r'(Error getting swarm|GET /v[0-9.]+/swarm returned error): This node is not a swarm manager',
    ])
