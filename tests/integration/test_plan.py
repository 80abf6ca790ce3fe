# -*- coding: utf-8 -*-
"""The platform plan against pvesim: on a deployed single-node example (templates and the CA guest created), one
guest's memory and one of its firewall rules are changed in the configs; `site.yml --check --diff` and
`plan.yml --check --diff` end with one table naming exactly those two changes, and pvesim logs no write.
plan.yml without --check stops before anything runs."""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from pve_env import REAL_PVE, REPO

pytestmark = pytest.mark.skipif(REAL_PVE, reason='deploys and changes guests: pvesim only')
BIN = os.path.dirname(sys.executable)
OSTEMPLATE = 'local:vztmpl/ubuntu-24.04-standard_24.04-2_amd64.tar.zst'


@pytest.fixture(scope='module')
def topology(tmp_path_factory):
    root = tmp_path_factory.mktemp('plan')
    for name in ('etc', 'stacks'):
        shutil.copytree(os.path.join(REPO, 'examples', 'single-node', name), root / name)
    (root / 'inventory').mkdir()
    (root / 'inventory' / 'phoenix.yml').write_text(
        'plugin: thinkheads.phoenix.phoenix\nconfig_dir: ../etc\nstacks_dir: ../stacks\nenvironment: production\n')
    return root


def playbook(pve, topology, name, *extra):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
               ANSIBLE_FORCE_COLOR='0', **pve.env)
    cmd = [os.path.join(BIN, 'ansible-playbook'), 'playbooks/%s' % name,
           '-i', str(topology / 'inventory' / 'phoenix.yml'),
           '-e', 'ansible_connection=local', '-e', 'ansible_python_interpreter=%s' % sys.executable,
           '-e', 'phoenix_create_conf_dir=%s/etc/pve/lxc' % pve.state_dir,
           '-e', 'phoenix_create_apply_features=false', '-e', 'phoenix_create_gpu_preflight=false',
           '-e', 'phoenix_create_ostemplate=%s' % OSTEMPLATE] + list(extra)
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)
    result.out = result.stdout + result.stderr
    return result


def plan_rows(stdout):
    """[(host, kind, change, before, after)] of the PLAN table."""
    assert 'PLAN: ' in stdout, stdout[-4000:]
    lines = stdout[stdout.rindex('PLAN: '):].splitlines()
    out = []
    for line in lines[3:]:
        if line.startswith('by kind:') or not line.strip():
            break
        out.append(tuple(cell.strip() for cell in line.split(' | ')))
    return out


@pytest.fixture(scope='module')
def deployed(pve, topology):
    result = playbook(pve, topology, 'create.yml', '-l', '900,103')
    assert result.returncode == 0, result.out[-5000:]
    again = playbook(pve, topology, 'site.yml', '-l', '103', '--tags', 'guests,firewall', '--check', '--diff')
    assert again.returncode == 0, again.out[-5000:]
    assert 'PLAN: no changes (check mode, nothing was written)' in again.stdout, again.stdout[-4000:]
    # the changes: 103's memory, and the port of its third firewall rule
    path = topology / 'etc' / 'phoenix_lxc_configs.json'
    data = json.loads(path.read_text())
    guest = data['lxc_configs']['103']
    guest['memory_mb'] = 2048
    guest['firewall']['rules'][2]['dport'] = '9443'
    path.write_text(json.dumps(data, indent=2))
    return True


@pytest.mark.parametrize('name', ['site.yml', 'plan.yml'])
def test_plan_names_exactly_the_changed_guest_key_and_firewall_rule(pve, topology, deployed, name):
    pve.clear_log()
    result = playbook(pve, topology, name, '-l', '103', '--tags', 'guests,firewall', '--check', '--diff')
    assert result.returncode == 0, result.out[-5000:]
    assert pve.writes() == []
    rows = plan_rows(result.stdout)
    assert [r[:3] for r in rows] == [('103', 'guest', 'memory'), ('103', 'firewall', 'rules[3]')], rows
    assert rows[0][3:] == ('1024', '2048')
    assert rows[1][3:] == ('in ACCEPT ... dport=9000 # Step-CA API (certi...',
                           'in ACCEPT ... dport=9443 # Step-CA API (certi...'), rows[1]
    assert re.search(r'^PLAN: 2 changes on 1 host \(check mode, nothing was written\)$', result.stdout, re.M)
    print(result.stdout[result.stdout.rindex('PLAN: ') - 100:])


def test_no_plan_outside_check_mode_and_plan_yml_refuses_it(pve, topology, deployed):
    pve.clear_log()
    refused = playbook(pve, topology, 'plan.yml', '-l', '103', '--tags', 'guests,firewall')
    assert refused.returncode != 0
    assert 'plan.yml only shows what site.yml would change' in ' '.join(refused.stdout.split())
    assert 'PLAN: ' not in refused.stdout
    assert pve.writes() == []
