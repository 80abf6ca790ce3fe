# -*- coding: utf-8 -*-
"""Check mode for guests that do not exist yet (README: "the first guest: dry run, then for real").

The modules take a guest that Proxmox does not have as an empty one in check mode (proxmox_guest predicts its
creation, proxmox_firewall its options and rules, proxmox_lxc_raw its raw lines) and write nothing; outside
check mode proxmox_firewall and proxmox_lxc_raw fail with a clear message. create.yml then dry-runs a new LXC
and a new VM (exit 0, no write, every predicted change listed), creates them, and a second run changes nothing.
Every test module gets its own pvesim, so the guests here start absent.
"""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from modrun import run_module
from pve_env import REAL_PVE, REPO
from image_server import NOBLE

pytestmark = pytest.mark.skipif(REAL_PVE, reason='needs guests that do not exist: runs against pvesim only')
BIN = os.path.dirname(sys.executable)
OSTEMPLATE = 'local:vztmpl/ubuntu-24.04-standard_24.04-2_amd64.tar.zst'
RAW_LINE = 'lxc.apparmor.profile=unconfined'


def run(pve, module, args, check=False):
    return run_module(module, args, check=check, env=pve.env)


@pytest.fixture(scope='module')
def inventory(tmp_path_factory):
    """The project's topology, with raw lxc.* options on 801 (so that create.yml has raw lines to predict)."""
    root = tmp_path_factory.mktemp('topology')
    shutil.copytree(os.path.join(REPO, 'etc'), root / 'etc')
    shutil.copytree(os.path.join(REPO, 'stacks'), root / 'stacks')
    path = root / 'etc' / 'phoenix_lxc_configs.json'
    data = json.loads(path.read_text())
    data['lxc_configs']['801']['lxc_options'] = [RAW_LINE]
    path.write_text(json.dumps(data, indent=2))
    (root / 'inventory').mkdir()
    (root / 'inventory' / 'phoenix.yml').write_text(
        'plugin: thinkheads.phoenix.phoenix\nconfig_dir: ../etc\nstacks_dir: ../stacks\nenvironment: production\n')
    return str(root / 'inventory' / 'phoenix.yml')


def playbook(pve, inventory, name, *extra):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
               ANSIBLE_FORCE_COLOR='0', **pve.env)
    cmd = [os.path.join(BIN, 'ansible-playbook'), 'playbooks/%s' % name, '-i', inventory,
           # the guests and the hypervisor are simulated: run every task on the controller
           '-e', 'ansible_connection=local', '-e', 'ansible_python_interpreter=%s' % sys.executable, '-e', 'phoenix_progress=false',
           '-e', 'phoenix_create_conf_dir=%s/etc/pve/lxc' % pve.state_dir,
           '-e', 'phoenix_create_storage=local-lvm',
           '-e', 'phoenix_create_apply_features=false', '-e', 'phoenix_create_gpu_preflight=false',
           '-e', 'phoenix_create_ostemplate=%s' % OSTEMPLATE]
    cmd += pve.image_vars(NOBLE) + list(extra)
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)
    result.out = result.stdout + result.stderr
    return result


def flat(text):
    """Output with every run of white space made one space (the YAML callback wraps long messages)."""
    return ' '.join(text.split())


def recap(result, host):
    """{'ok': 3, 'changed': 1, ...} from the PLAY RECAP line of ``host``."""
    match = re.search(r'^%s\s+:\s+(.*)$' % re.escape(str(host)), result.stdout, re.M)
    assert match, 'no recap line for %s:\n%s' % (host, result.stdout[-3000:])
    return dict((k, int(v)) for k, v in re.findall(r'(\w+)=(\d+)', match.group(1)))


def task_section(result, title):
    """The output of one task (from its TASK line to the next TASK/PLAY line)."""
    start = result.stdout.index('TASK [%s' % title)
    following = [pos for pos in (result.stdout.find('\nTASK [', start + 1), result.stdout.find('\nPLAY ', start + 1))
                 if pos > 0]
    return result.stdout[start:min(following) if following else len(result.stdout)]


# -- modules -----------------------------------------------------------------------------------


@pytest.mark.parametrize('gid', [801, 1001])
def test_guest_module_predicts_a_creation_in_check_mode(pve, topology, gid):
    pve.clear_log()
    result = run(pve, 'proxmox_guest', {'guest': topology.guests[gid], 'state': 'started', 'storage': 'local-lvm',
                                        'ostemplate': OSTEMPLATE}, check=True)
    assert result['changed'] is True and result['created'] is True, result
    assert result['exists'] is False
    assert result['power'] == 'started'
    assert result['diff']['before'] == {}
    assert result['diff']['after']['memory'] == topology.guests[gid]['memory_mb']
    assert 'does not exist yet (check mode)' in result['msg']
    assert pve.writes() == []


@pytest.mark.parametrize('gid', [801, 1001])
def test_firewall_module_sets_a_missing_guest_from_nothing_in_check_mode(pve, topology, gid):
    guest = topology.guests[gid]
    rules = guest['firewall']['rules']
    args = {'vmid': gid, 'kind': guest['type'], 'enabled': True, 'policy_in': 'DROP', 'policy_out': 'ACCEPT',
            'rules': rules}
    pve.clear_log()
    result = run(pve, 'proxmox_firewall', args, check=True)
    assert result.get('failed') is not True, result
    assert result['changed'] is True and result['guest_exists'] is False
    assert result['diff']['before'] == {'options': {}, 'rules': []}
    assert result['diff']['after']['options'] == {'enable': '1', 'policy_in': 'DROP', 'policy_out': 'ACCEPT'}
    assert len(result['diff']['after']['rules']) == len(rules)
    assert result['operations'][0] == 'options enable=1'
    assert len([op for op in result['operations'] if op.startswith('insert')]) == len(rules)
    assert 'does not exist yet (check mode)' in result['msg']
    # Proxmox answers a missing guest's firewall as empty (options, rules): the one GET /cluster/resources that
    # follows finds no node with the guest
    assert result['api_calls'] == 3 + pve.login_calls, result['api_calls']
    reads = [(r['method'], r['path']) for r in pve.requests() if r['path'] != '/access/ticket']
    assert reads[-1] == ('GET', '/cluster/resources'), reads
    assert pve.writes() == []


@pytest.mark.parametrize('gid', [801, 1001])
def test_firewall_of_a_guest_known_to_be_missing_costs_one_read(pve, topology, gid):
    # what create.yml and sync.yml pass in check mode for a guest whose creation is only predicted
    guest = topology.guests[gid]
    args = {'vmid': gid, 'kind': guest['type'], 'enabled': True, 'policy_in': 'DROP',
            'rules': guest['firewall']['rules'], 'guest_exists': False}
    pve.clear_log()
    result = run(pve, 'proxmox_firewall', args, check=True)
    assert result.get('failed') is not True, result
    assert result['changed'] is True and result['guest_exists'] is False, result
    assert result['diff']['before'] == {'options': {}, 'rules': []}
    assert len(result['diff']['after']['rules']) == len(guest['firewall']['rules'])
    assert result['api_calls'] == 1 + pve.login_calls, result['api_calls']
    reads = [(r['method'], r['path']) for r in pve.requests() if r['path'] != '/access/ticket']
    assert reads == [('GET', '/cluster/resources')], reads
    # outside check mode the same guest is a clear error, still without a write
    failed = run(pve, 'proxmox_firewall', args)
    assert failed.get('failed') is True and failed['guest_exists'] is False, failed
    assert failed['msg'].startswith('guest %d (%s) does not exist on any node of the cluster: create it first'
                                    % (gid, 'lxc' if guest['type'] == 'lxc' else 'qemu')), failed['msg']
    assert pve.writes() == []


@pytest.mark.parametrize('gid', [801, 1001])
def test_firewall_module_fails_clearly_for_a_missing_guest(pve, topology, gid):
    guest = topology.guests[gid]
    pve.clear_log()
    result = run(pve, 'proxmox_firewall', {'vmid': gid, 'kind': guest['type'], 'enabled': True,
                                           'rules': guest['firewall']['rules']})
    assert result.get('failed') is True
    kind = 'lxc' if guest['type'] == 'lxc' else 'qemu'
    assert result['msg'].startswith('guest %d (%s) does not exist on any node of the cluster: create it first'
                                    % (gid, kind)), result
    assert result['guest_exists'] is False and result['changed'] is False
    assert 'module_stderr' not in result and 'Traceback' not in str(result.get('exception', ''))
    assert pve.writes() == []


def test_raw_lines_of_a_missing_container_in_check_mode_then_a_clear_error(pve):
    conf_dir = '%s/etc/pve/lxc' % pve.state_dir
    args = {'vmid': 801, 'conf_dir': conf_dir, 'lxc_options': [RAW_LINE]}
    predicted = run(pve, 'proxmox_lxc_raw', args, check=True)
    assert predicted['changed'] is True and predicted['exists'] is False, predicted
    assert predicted['diff']['before'] == ''
    assert predicted['diff']['after'] == 'lxc.apparmor.profile: unconfined\n'
    assert not os.path.exists(os.path.join(conf_dir, '801.conf'))
    failed = run(pve, 'proxmox_lxc_raw', args)
    assert failed.get('failed') is True
    assert failed['msg'] == '%s/801.conf does not exist: create container 801 first' % conf_dir
    assert not os.path.exists(os.path.join(conf_dir, '801.conf'))


# -- create.yml --------------------------------------------------------------------------------

ALL = '900,901,103,102,101,801,9000,1001,1002'


def test_site_dry_run_of_the_whole_platform_from_nothing(pve, inventory):
    """Every guest absent, clone sources included: site.yml (create.yml, then sync.yml) predicts every guest, writes
    nothing, and runs no role, on a guest that does not exist or for one (the CA, the Swarm manager)."""
    pve.clear_log()
    result = playbook(pve, inventory, 'site.yml', '-l', ALL, '--check', '--diff',
                      '-e', 'phoenix_create_apply_features=true')
    assert result.returncode == 0, result.out[-6000:]
    assert pve.writes() == []
    for host in ALL.split(','):
        assert recap(result, host)['failed'] == 0 and recap(result, host)['unreachable'] == 0
        assert recap(result, host)['changed'] >= 1
    for message in ('guest 801 does not exist yet (check mode): skipping waiting for it to answer',
                    'guest 1002 does not exist yet (check mode): skipping waiting for it to answer',
                    'guest 103 does not exist yet (check mode): skipping the certificate authority (step_ca)',
                    'guest 102 does not exist yet (check mode): skipping trusting the Phoenix root CA',
                    'guest 801 does not exist yet (check mode): skipping its feature roles (nvidia, vllm)',
                    'guest 1001 does not exist yet (check mode): skipping trusting the Phoenix root CA (trusted_ca), '
                    'its feature roles (docker)',
                    'guest 1002 does not exist yet (check mode): skipping joining it to the Docker Swarm',
                    'guest 1002 does not exist yet (check mode): skipping deploying its stacks',
                    'guest 102 does not exist yet (check mode): skipping Traefik (traefik), its service certificates',
                    'guest 101 does not exist yet (check mode): skipping its service certificates (step_certificates), '
                    'the Nginx gateway (nginx_gateway)'):
        assert message in flat(result.stdout), message
    # the firewalls of guests that do not exist yet are planned from nothing: none of them is read
    assert not [r['path'] for r in pve.requests() if '/firewall/' in r['path'] and '/cluster/' not in r['path']]
    assert 'guest 900 does not exist yet' not in result.stdout        # a template is never waited for
    assert 'TASK [thinkheads.phoenix.' not in result.stdout            # no role task ran


def test_sync_dry_run_for_guests_that_do_not_exist_then_a_clear_error(pve, inventory):
    pve.clear_log()
    dry = playbook(pve, inventory, 'sync.yml', '-l', '801,1001', '--check', '--diff')
    assert dry.returncode == 0, dry.out[-6000:]
    assert pve.writes() == []
    assert recap(dry, 801)['changed'] == 1 and recap(dry, 1001)['changed'] == 1      # the firewalls, from nothing
    assert recap(dry, 1001)['unreachable'] == 0
    for message in ('guest 1001 does not exist yet (check mode): skipping joining it to the Docker Swarm',
                    'guest 1001 does not exist yet (check mode): skipping Portainer',
                    'guest 1001 does not exist yet (check mode): skipping its service certificates '
                    '(step_certificates), the Swarm edge (swarm_edge)'):
        assert message in flat(dry.stdout), message
    assert 'TASK [thinkheads.phoenix.' not in dry.stdout                # no role task ran

    real = playbook(pve, inventory, 'sync.yml', '-l', '801')
    assert real.returncode != 0
    assert 'guest 801 (lxc) does not exist on any node of the cluster: create it first' in flat(real.stdout)
    assert 'Traceback' not in real.out
    assert pve.writes() == []


@pytest.fixture(scope='module')
def clone_sources(pve, inventory):
    result = playbook(pve, inventory, 'create.yml', '-l', '900,901,103,102,9000')
    assert result.returncode == 0, result.out[-4000:]
    return True


def test_new_lxc_dry_run_then_real_run_then_nothing_to_do(pve, inventory, clone_sources):
    conf = os.path.join(pve.state_dir, 'etc', 'pve', 'lxc', '801.conf')
    assert not os.path.exists(conf)
    pve.clear_log()
    dry = playbook(pve, inventory, 'create.yml', '-l', '801', '--check', '--diff')
    assert dry.returncode == 0, dry.out[-6000:]
    assert pve.writes() == []
    assert not os.path.exists(conf)
    assert recap(dry, 801)['failed'] == 0
    create = task_section(dry, 'Create or reconcile the guest')
    assert 'changed: [801' in create and '+    hostname: granite-embedding' in create
    raw = task_section(dry, 'Apply raw lxc.* options')
    assert 'changed: [801' in raw and '+lxc.apparmor.profile: unconfined' in raw
    firewall = task_section(dry, 'Reconcile the guest firewall')
    assert 'changed: [801' in firewall and '+        policy_in: DROP' in firewall
    assert '-    rules: []' in firewall and 'vLLM API from Traefik' in firewall
    start = task_section(dry, 'Start the guest')
    assert 'changed: [801' in start
    assert 'guest 801 does not exist yet (check mode): skipping waiting for it to answer' in flat(dry.stdout)

    real = playbook(pve, inventory, 'create.yml', '-l', '801')
    assert real.returncode == 0, real.out[-6000:]
    assert recap(real, 801)['failed'] == 0 and recap(real, 801)['changed'] >= 1
    assert 'lxc.apparmor.profile: unconfined' in open(conf).read()
    assert 'guest 801 does not exist yet' not in real.stdout

    pve.clear_log()
    again = playbook(pve, inventory, 'create.yml', '-l', '801')
    assert again.returncode == 0, again.out[-6000:]
    assert recap(again, 801)['changed'] == 0, again.stdout[-4000:]
    assert pve.writes() == []


def test_new_vm_dry_run_then_real_run_then_nothing_to_do(pve, inventory, clone_sources):
    conf = os.path.join(pve.state_dir, 'etc', 'pve', 'qemu-server', '1001.conf')
    assert not os.path.exists(conf)
    pve.clear_log()
    dry = playbook(pve, inventory, 'create.yml', '-l', '1001', '--check', '--diff')
    assert dry.returncode == 0, dry.out[-6000:]
    assert pve.writes() == []
    assert recap(dry, 1001)['failed'] == 0
    create = task_section(dry, 'Create or reconcile the guest')
    assert 'changed: [1001' in create and '+    name: swarm-manager' in create
    assert 'skipping: [1001]' in task_section(dry, 'Apply raw lxc.* options')
    firewall = task_section(dry, 'Reconcile the guest firewall')
    assert 'changed: [1001' in firewall and "+        enable: '1'" in firewall
    assert 'changed: [1001' in task_section(dry, 'Start the guest')
    assert 'guest 1001 does not exist yet (check mode): skipping waiting for it to answer' in flat(dry.stdout)

    real = playbook(pve, inventory, 'create.yml', '-l', '1001')
    assert real.returncode == 0, real.out[-6000:]
    assert os.path.exists(conf)
    assert recap(real, 1001)['changed'] >= 1

    pve.clear_log()
    again = playbook(pve, inventory, 'create.yml', '-l', '1001')
    assert again.returncode == 0, again.out[-6000:]
    assert recap(again, 1001)['changed'] == 0, again.stdout[-4000:]
    assert pve.writes() == []
