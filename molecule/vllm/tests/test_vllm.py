# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verify the vllm role on the molecule instance (testinfra).

The service runs the TEST DOUBLE (lab/vllmsim/fake_vllm_server.py) in place of vLLM: what is checked here is the role's
wiring (systemd unit and hardening, secrets, TLS, API key, renewal hook), not model serving.
"""

import json
import os
import shlex
import subprocess
import sys

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIO = os.path.dirname(HERE)
sys.path.insert(0, os.path.dirname(SCENARIO))

from phoenix_testinfra import assert_no_service_errors, wait_for  # noqa: E402

with open(os.path.join(SCENARIO, 'vars', 'guest_801.yml')) as handle:
    FIXTURE = yaml.safe_load(handle)

GUEST = FIXTURE['phoenix_guest']
SERVER = GUEST['vllm_engine_config']['ServerConfig']
MODEL = SERVER['served_model_name']
BASE = 'https://%s:%d' % (GUEST['fqdn'], SERVER['port'])
CA = FIXTURE['vllm_tls_ca']
CERT = FIXTURE['vllm_tls_cert']
KEY = FIXTURE['vllm_api_key']
DIMENSION = FIXTURE['vllm_expected_dimension']
UNIT = '/etc/systemd/system/vllm.service'
ENV_FILE = '/etc/vllm/vllm.env'


def curl(host, path, *extra, key=None, cacert=CA, data=None):
    """(HTTP status, body) of a request made on the instance with curl; status 0 when curl itself fails."""
    cmd = ['curl', '--silent', '--show-error', '--max-time', '10', '--output', '/tmp/molecule-body',
           '--write-out', '%{http_code}']
    if cacert:
        cmd += ['--cacert', cacert]
    if key:
        cmd += ['--header', 'Authorization: Bearer ' + key]
    if data is not None:
        cmd += ['--header', 'Content-Type: application/json', '--data', json.dumps(data)]
    cmd += list(extra) + [BASE + path]
    result = host.run(' '.join(shlex.quote(c) for c in cmd))
    body = host.run('cat /tmp/molecule-body 2>/dev/null; rm -f /tmp/molecule-body').stdout
    status = int(result.stdout.strip() or 0) if result.rc == 0 else 0
    return status, body, result


def show(host, *props):
    """Unit properties; a property listed several times (DeviceAllow) has its values joined by newlines."""
    out = host.check_output('systemctl show vllm.service ' + ' '.join('-p ' + p for p in props))
    values = {}
    for line in out.splitlines():
        name, value = line.split('=', 1) if '=' in line else (line, '')
        values[name] = values[name] + '\n' + value if name in values else value
    return values


def wait_restarted(host, before, timeout=45):
    """Wait until vllm.service runs a new invocation (InvocationID changed) and answers /health again."""

    def probe():
        state = show(host, 'InvocationID', 'ActiveState', 'MainPID')
        state['health'] = curl(host, '/health')[0]
        return state
    return wait_for(probe, lambda state: state['InvocationID'] != before and state['ActiveState'] == 'active'
                    and state['health'] == 200, 'vllm.service restarted (InvocationID other than %s)' % before,
                    timeout=timeout)


@pytest.fixture(scope='module', autouse=True)
def converged(host):
    """The tests start once the service answers /health after converge."""
    wait_for(lambda: curl(host, '/health')[0], lambda status: status == 200, 'vllm /health')


def test_unit_active_enabled_with_restart_policy(host):
    service = host.service('vllm')
    assert service.is_running
    assert service.is_enabled
    props = show(host, 'Restart', 'RestartUSec', 'User', 'Type')
    assert props['Restart'] == 'on-failure'
    assert props['RestartUSec'] == '10s'
    assert props['User'] == 'vllm'
    assert host.process.get(pid=int(show(host, 'MainPID')['MainPID'])).user == 'vllm'


def test_unit_hardening(host):
    props = show(host, 'NoNewPrivileges', 'ProtectSystem', 'PrivateTmp', 'ReadWritePaths', 'ProtectHome',
                 'DevicePolicy', 'DeviceAllow', 'Environment')
    assert props['NoNewPrivileges'] == 'yes'
    assert props['ProtectSystem'] == 'strict'
    assert props['PrivateTmp'] == 'yes'
    assert props['ProtectHome'] == 'yes'
    assert set(props['ReadWritePaths'].split()) == {'/var/lib/vllm', '/vllm_models'}
    # the fixture guest has GPU 0: its device node and the control nodes only
    assert props['DevicePolicy'] == 'closed'
    allowed = set(props['DeviceAllow'].splitlines())
    assert {'/dev/nvidia0 rw', '/dev/nvidiactl rw', '/dev/nvidia-uvm rw', '/dev/nvidia-uvm-tools rw'} <= allowed
    assert not any(rule.startswith('/dev/nvidia1') for rule in allowed)
    # model cache on the guest's ZFS volume mounted at /vllm_models
    assert 'HF_HOME=/vllm_models' in props['Environment']
    assert host.file('/vllm_models').user == 'vllm'


def test_executable_installed_by_the_role(host):
    """vllm_executable_src: the role copied the test double (made executable by prepare.yml) into the venv."""
    exe = host.file('/opt/vllm/venv/bin/vllm')
    assert exe.user == 'root' and exe.group == 'root' and exe.mode == 0o755
    assert exe.content_string.startswith('#!/usr/bin/python3\n')
    assert 'TEST DOUBLE for vLLM' in exe.content_string


def test_command_line_rendered_from_engine_config(host):
    args = host.check_output('ps -o args= -p %s' % show(host, 'MainPID')['MainPID']).split()
    assert args[1:4] == ['/opt/vllm/venv/bin/vllm', 'serve', GUEST['vllm_engine_config']['ModelConfig']['model']]
    for flag, value in (('--runner', 'pooling'), ('--served-model-name', MODEL), ('--port', '8000'),
                        ('--max-model-len', '8192'), ('--ssl-certfile', '/run/vllm/tls.crt'),
                        ('--ssl-keyfile', '/run/vllm/tls.key')):
        assert args[args.index(flag) + 1] == value


def test_secrets_only_in_the_environment_file(host):
    env = host.file(ENV_FILE)
    assert env.mode == 0o600
    assert env.user == 'root' and env.group == 'root'
    assert 'VLLM_API_KEY="%s"' % KEY in env.content_string
    assert KEY not in host.file(UNIT).content_string
    assert KEY not in host.check_output('systemctl show vllm.service')
    assert KEY not in host.check_output('ps -eo args')
    # the Hugging Face token, read from a file on the controller, lands in the same file only
    with open(os.path.join(SCENARIO, 'files', 'fake_hf_token')) as handle:
        token = handle.read().strip()
    assert 'HF_TOKEN="%s"' % token in env.content_string
    assert token not in host.file(UNIT).content_string
    assert token not in host.check_output('ps -eo args')
    assert '--api-key' not in host.check_output('ps -eo args')
    # the TLS key file stays root-only; the service reads a copy in its runtime directory
    assert host.file(FIXTURE['vllm_tls_key']).mode == 0o600
    runtime_key = host.file('/run/vllm/tls.key')
    assert runtime_key.mode == 0o640 and runtime_key.group == 'vllm'


def test_https_with_the_ca(host):
    assert curl(host, '/health')[0] == 200
    status, result = curl(host, '/health', cacert=None)[::2]
    assert status == 0 and result.rc == 60, 'the server certificate must not verify without the CA'


def test_models_and_embeddings_with_the_key(host):
    status, body = curl(host, '/v1/models', key=KEY)[:2]
    assert status == 200
    assert [m['id'] for m in json.loads(body)['data']] == [MODEL]
    status, body = curl(host, '/v1/embeddings', key=KEY, data={'model': MODEL, 'input': ['alpha', 'beta']})[:2]
    assert status == 200
    vectors = [item['embedding'] for item in json.loads(body)['data']]
    assert [len(v) for v in vectors] == [DIMENSION, DIMENSION]
    again = json.loads(curl(host, '/v1/embeddings', key=KEY, data={'model': MODEL, 'input': 'alpha'})[1])
    assert again['data'][0]['embedding'] == vectors[0]


@pytest.mark.parametrize('path', ['/v1/models', '/v1/embeddings'])
@pytest.mark.parametrize('key', [None, 'wrong-key'])
def test_401_without_the_key(host, path, key):
    data = {'model': MODEL, 'input': 'x'} if path.endswith('embeddings') else None
    assert curl(host, path, key=key, data=data)[0] == 401


def test_metrics_and_health_are_not_protected_by_the_key(host):
    # As in vLLM: --api-key / VLLM_API_KEY guards /v1/* only (docs/roles/vllm.md).
    assert curl(host, '/metrics')[0] == 200
    assert curl(host, '/health')[0] == 200


def test_certificate_watch_is_enabled(host):
    watch = host.service('vllm-tls-renewal.path')
    assert watch.is_running and watch.is_enabled
    assert 'PathChanged=%s' % CERT in host.file('/etc/systemd/system/vllm-tls-renewal.path').content_string


def test_restart_when_the_certificate_is_touched(host):
    before = show(host, 'InvocationID')['InvocationID']
    host.check_output('touch %s' % CERT)
    wait_restarted(host, before)


def test_restart_when_the_certificate_is_replaced(host):
    # what a renewal does: write a new file next to it, then rename it over the old one
    before = show(host, 'InvocationID')['InvocationID']
    host.check_output('cp -p {0} {0}.new && mv -f {0}.new {0}'.format(CERT))
    wait_restarted(host, before)
    assert curl(host, '/v1/models', key=KEY)[0] == 200


def test_failure_messages():
    """Readiness and nvidia preflight failures name the step, the URL or the devices (failures.yml)."""
    env = dict(os.environ)
    out = os.path.join(env['MOLECULE_EPHEMERAL_DIRECTORY'], 'failures.json')
    if os.path.exists(out):
        os.remove(out)
    run = subprocess.run(['ansible-playbook', '-i', env['MOLECULE_INVENTORY_FILE'],
                          os.path.join(SCENARIO, 'failures.yml')],
                         env=env, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    with open(out) as handle:
        failures = json.load(handle)

    dimension = failures['dimension']
    assert 'vLLM readiness step 3/3 (embeddings) failed' in dimension
    assert BASE + '/v1/embeddings' in dimension
    assert 'embedding vectors of dimension 512' in dimension
    assert '(1 vector(s), dimension %d)' % DIMENSION in dimension

    api_key = failures['api_key']
    assert 'vLLM readiness step 2/3 (models) failed' in api_key
    assert BASE + '/v1/models' in api_key and 'HTTP 401' in api_key
    assert 'not-the-key' not in api_key

    tls = failures['tls_name']
    assert 'vLLM readiness step 1/3 (health) failed' in tls
    assert 'https://127.0.0.2:8000/health' in tls
    assert 'CERTIFICATE_VERIFY_FAILED' in tls or 'certificate' in tls.lower()

    assert failures['nvidia_no_gpu'] == 'OK'

    devices = failures['nvidia_devices']
    assert 'NVIDIA preflight failed' in devices
    for node in ('/dev/nvidia0', '/dev/nvidia1', '/dev/nvidiactl', '/dev/nvidia-uvm'):
        assert node in devices

    smi = failures['nvidia_smi']
    assert 'NVIDIA preflight failed' in smi and 'nvidia-smi is not installed' in smi

    version = failures['nvidia_version']
    assert 'NVIDIA preflight failed' in version
    assert 'nvidia-smi reports driver 570.86.15, the host runs 580.76.05' in version

    assert failures['nvidia_ok'] == 'OK'


def test_check_mode_reports_no_change():
    """A --check run on the converged guest passes and would change nothing."""
    env = dict(os.environ)
    run = subprocess.run(['ansible-playbook', '--check', '-i', env['MOLECULE_INVENTORY_FILE'],
                          os.path.join(SCENARIO, 'converge.yml')],
                         env=env, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    recap = run.stdout[run.stdout.rindex('PLAY RECAP'):]
    assert 'changed=0' in recap and 'failed=0' in recap, recap


WATCH_SERVICE = '/etc/systemd/system/vllm-tls-renewal.service'
WATCH_PATH = '/etc/systemd/system/vllm-tls-renewal.path'


def converge(*args):
    """Run converge.yml on the instance (``args``: more ansible-playbook arguments); its output and its PLAY RECAP."""
    env = dict(os.environ)
    run = subprocess.run(['ansible-playbook'] + list(args) + ['-i', env['MOLECULE_INVENTORY_FILE'],
                                                              os.path.join(SCENARIO, 'converge.yml')],
                         env=env, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    return run.stdout, run.stdout[run.stdout.rindex('PLAY RECAP'):]


def watch_started(host):
    """When the certificate watch (vllm-tls-renewal.path) was last started (monotonic clock, microseconds)."""
    return host.check_output('systemctl show --value -p ActiveEnterTimestampMonotonic vllm-tls-renewal.path')


def test_drift_of_unit_and_secrets_is_shown_then_repaired_restarting_vllm_only(host):
    """A changed byte of the unit, the mode of the environment file and the owner of the renewal service: --check
    --diff finds them, shows the unit's change but no secret, and writes nothing; a converge repairs them and
    restarts vLLM (unit, secrets), while the certificate watch, whose path unit is unchanged, keeps running."""
    with open(os.path.join(SCENARIO, 'files', 'fake_hf_token')) as handle:
        token = handle.read().strip()
    host.check_output("sed -i 's/^RestartSec=10$/RestartSec=11/' %s" % UNIT)
    host.check_output('chmod 0644 %s' % ENV_FILE)
    host.check_output('chown vllm %s' % WATCH_SERVICE)
    before, watch_before = show(host, 'InvocationID')['InvocationID'], watch_started(host)

    out, recap = converge('--check', '--diff')
    assert 'changed=0' not in recap, recap
    assert '-RestartSec=11' in out and '+RestartSec=10' in out, out[-4000:]
    assert KEY not in out and token not in out
    # check mode wrote nothing and restarted nothing
    assert 'RestartSec=11' in host.file(UNIT).content_string
    assert host.file(ENV_FILE).mode == 0o644 and host.file(WATCH_SERVICE).user == 'vllm'
    assert show(host, 'InvocationID')['InvocationID'] == before

    recap = converge()[1]
    assert 'changed=0' not in recap, recap
    assert 'RestartSec=10\n' in host.file(UNIT).content_string
    assert host.file(ENV_FILE).mode == 0o600 and host.file(WATCH_SERVICE).user == 'root'
    wait_restarted(host, before)
    assert show(host, 'RestartUSec')['RestartUSec'] == '10s'
    assert watch_started(host) == watch_before, 'the certificate watch was restarted, its path unit did not change'


def test_drift_of_the_watch_and_a_directory_is_repaired_restarting_the_watch_only(host):
    """The mode of the path unit and of the model cache directory: a converge repairs both and restarts the
    certificate watch; vLLM, whose unit and secrets are unchanged, keeps running."""
    host.check_output('chmod 0600 %s' % WATCH_PATH)
    host.check_output('chmod 0700 /vllm_models')
    before, watch_before = show(host, 'InvocationID')['InvocationID'], watch_started(host)

    recap = converge()[1]
    assert 'changed=0' not in recap, recap
    assert host.file(WATCH_PATH).mode == 0o644
    models = host.file('/vllm_models')
    assert models.mode == 0o750 and models.user == 'vllm' and models.group == 'vllm'
    wait_for(lambda: watch_started(host), lambda started: started != watch_before, 'the certificate watch restarted')
    assert host.service('vllm-tls-renewal.path').is_running
    assert show(host, 'InvocationID')['InvocationID'] == before, 'vllm.service was restarted, nothing it reads changed'


def test_no_errors_logged(host):
    assert_no_service_errors(host, ['vllm'])
