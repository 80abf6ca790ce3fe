# -*- coding: utf-8 -*-
"""Privileges, once: proxmox_privileges reads GET /access/permissions for the API token and names every missing
privilege with its path; create.yml's preflight runs it before any write. A pvesim of its own gives one token too
few privileges (a privilege-separated token, `--acl`), and one of them without propagation."""

import os
import shutil
import subprocess
import sys

import pytest

from modrun import run_module
from pve_env import REAL_PVE, REPO, ROOT_PASSWORD, TOKEN_ID, TOKEN_SECRET

from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox_privs import default_privileges

pytestmark = pytest.mark.skipif(REAL_PVE, reason='gives a token too few privileges: pvesim only')
BIN = os.path.dirname(sys.executable)
SMALL_ID, SMALL_SECRET = 'phoenix@pve!ansible', 'small-token-secret'
# the recipe's privileges without VM.Snapshot and SDN.Use; Sys.Modify granted on / without propagation
SMALL_PRIVS = [p for p in default_privileges() if p not in ('VM.Snapshot', 'SDN.Use', 'Sys.Modify')]


@pytest.fixture(scope='module')
def sim(tmp_path_factory):
    from pvesim.control import Control
    from pvesim.server import start_server
    state = tmp_path_factory.mktemp('pvesim-privs')
    server = start_server(state, tokens=['%s=%s' % (TOKEN_ID, TOKEN_SECRET), '%s=%s' % (SMALL_ID, SMALL_SECRET)],
                          passwords=['root@pam:' + ROOT_PASSWORD], control=True, task_seconds=0.05,
                          acls=['%s:/:%s' % (SMALL_ID, ','.join(SMALL_PRIVS)), '%s:/:Sys.Modify:0' % SMALL_ID])
    try:
        yield server, Control(server.url, ca_file=str(server.ca_file))
    finally:
        server.stop()


def env(server, token_id, secret):
    return {'PHOENIX_PVE_URL': server.url, 'PHOENIX_PVE_TOKEN_ID': token_id, 'PHOENIX_PVE_TOKEN_SECRET': secret,
            'PHOENIX_PVE_CA_FILE': str(server.ca_file)}


def writes(control):
    return [r for r in control.requests() if r['method'] != 'GET' and r['path'] != '/access/ticket']


@pytest.mark.parametrize('check', [False, True])
def test_a_token_with_every_privilege_passes(sim, check):
    server, control = sim
    control.clear_requests()
    result = run_module('proxmox_privileges', {}, check=check, env=env(server, TOKEN_ID, TOKEN_SECRET))
    assert result.get('failed') is not True, result
    assert result['changed'] is False and result['missing'] == [] and result['authid'] == TOKEN_ID
    assert result['privileges']['SDN.Use'] == '/sdn/zones/localnetwork' and result['privileges']['VM.Audit'] == '/vms'
    paths = sorted(r['params'].get('path') for r in control.requests() if r['path'] == '/access/permissions')
    assert paths == ['/', '/sdn/zones/localnetwork', '/storage', '/vms']       # one read per path
    assert writes(control) == []


def test_root_password_login_holds_every_privilege(sim):
    server, control = sim
    result = run_module('proxmox_privileges', {}, env={
        'PHOENIX_PVE_URL': server.url, 'PHOENIX_PVE_USER': 'root@pam', 'PHOENIX_PVE_PASSWORD': ROOT_PASSWORD,
        'PHOENIX_PVE_CA_FILE': str(server.ca_file)})
    assert result.get('failed') is not True and result['missing'] == [] and result['authid'] == 'root@pam', result


@pytest.mark.parametrize('check', [False, True])
def test_a_token_with_too_few_privileges_fails_naming_every_one(sim, check):
    server, control = sim
    control.clear_requests()
    result = run_module('proxmox_privileges', {}, check=check, env=env(server, SMALL_ID, SMALL_SECRET))
    assert result.get('failed') is True, result
    assert result['missing'] == [
        {'privilege': 'VM.Snapshot', 'path': '/vms', 'reason': 'not granted'},
        {'privilege': 'SDN.Use', 'path': '/sdn/zones/localnetwork', 'reason': 'not granted'},
        {'privilege': 'Sys.Modify', 'path': '/', 'reason': 'granted without propagation'},
    ]
    assert result['msg'].startswith(
        'phoenix@pve!ansible lacks 3 Proxmox privileges the collection needs: VM.Snapshot on /vms, SDN.Use on '
        '/sdn/zones/localnetwork, Sys.Modify on / (granted without propagation). Nothing was written.'), result['msg']
    assert 'pveum acl modify / --tokens phoenix@pve!ansible --roles PhoenixProvisioner' in result['msg']
    assert 'Traceback' not in str(result)
    assert writes(control) == []


def test_a_narrower_list_passes_with_the_small_token(sim):
    server, control = sim
    result = run_module('proxmox_privileges', {'privileges': ['VM.Audit', 'VM.Allocate', 'Datastore.Audit']},
                        env=env(server, SMALL_ID, SMALL_SECRET))
    assert result.get('failed') is not True and result['missing'] == [], result
    assert sorted(result['permissions']) == ['/storage', '/vms']


def test_create_playbook_stops_in_its_preflight_before_any_write(sim, tmp_path):
    server, control = sim
    root = tmp_path / 'topology'
    for name in ('etc', 'stacks'):
        shutil.copytree(os.path.join(REPO, 'examples', 'single-node', name), root / name)
    (root / 'inventory').mkdir()
    (root / 'inventory' / 'phoenix.yml').write_text(
        'plugin: thinkheads.phoenix.phoenix\nconfig_dir: ../etc\nstacks_dir: ../stacks\nenvironment: production\n')
    run_env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
                   **env(server, SMALL_ID, SMALL_SECRET))
    control.clear_requests()
    result = subprocess.run(
        [os.path.join(BIN, 'ansible-playbook'), 'playbooks/create.yml', '-i', str(root / 'inventory' / 'phoenix.yml'),
         '-e', 'ansible_connection=local', '-e', 'ansible_python_interpreter=%s' % sys.executable, '-e', 'phoenix_progress=false',
         '-e', 'phoenix_create_apply_features=false', '-e', 'phoenix_create_gpu_preflight=false'],
        cwd=REPO, env=run_env, capture_output=True, text=True, timeout=600, check=False)
    out = ' '.join((result.stdout + result.stderr).split())
    assert result.returncode != 0, out[-4000:]
    assert 'phoenix@pve!ansible lacks 3 Proxmox privileges the collection needs: VM.Snapshot on /vms' in out, out[-4000:]
    assert 'TASK [Read the guests that exist on Proxmox]' not in result.stdout      # it stopped at the first task
    assert writes(control) == []
    assert [r['path'] for r in control.requests()] == ['/access/permissions'] * 4
