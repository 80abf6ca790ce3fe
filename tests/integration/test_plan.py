# -*- coding: utf-8 -*-
"""The platform plan against pvesim and portainersim: on a deployed single-node example (templates, the CA guest and
the Swarm manager VM created; its Qdrant stack deployed by sync.yml's stack play through the Portainer test double,
which runs it on an in-memory Docker engine, tests/unit/fake_docker.py), one guest's memory, one of its firewall
rules and one value of the stack's environment are changed in the configs; `site.yml --check --diff` and
`plan.yml --check --diff` end with one table naming exactly those three changes, and neither pvesim nor the
Portainer double logs a write. plan.yml without --check stops before anything runs."""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from pve_env import REAL_PVE, REPO
from image_server import NOBLE
from fake_docker import FakeEngine, start_double

from ansible_collections.thinkheads.phoenix.plugins.module_utils.portainer import PortainerClient

pytestmark = pytest.mark.skipif(REAL_PVE, reason='deploys and changes guests: pvesim only')
BIN = os.path.dirname(sys.executable)
OSTEMPLATE = 'local:vztmpl/ubuntu-24.04-standard_24.04-2_amd64.tar.zst'
PORTAINER_PASSWORD = 'plan-portainer-password-1234'
QDRANT_KEY = 'plan-qdrant-key-8d1e5a'


class Portainer:
    """The Portainer test double in process on an in-memory Docker engine, with an API key in a file."""

    def __init__(self, tmp):
        self.engine = FakeEngine()
        self.httpd, self.url = start_double(tmp / 'data', self.engine, PORTAINER_PASSWORD, ban=300.0)
        key = PortainerClient(self.url, username='admin', password=PORTAINER_PASSWORD).create_token(
            1, 'plan', PORTAINER_PASSWORD)['rawAPIKey']
        self.token_file = tmp / 'portainer.token'
        self.token_file.write_text(key)

    def vars(self):
        """What the stack play reads from the Swarm manager's host variables (the portainer role sets them), the
        stack's secret, and the passwords the later plays' role argument checks (tagged always) want."""
        # the double answers plain HTTP on loopback: no CA file
        return ['-e', json.dumps({'portainer_api_url': self.url, 'portainer_api_token_file': str(self.token_file),
                                  'portainer_api_ca_path': '',
                                  'vault_qdrant_api_key': QDRANT_KEY,
                                  'phoenix_portainer_admin_password': PORTAINER_PASSWORD,
                                  'phoenix_step_ca_provisioner_password': 'plan-provisioner-password'})]

    def writes(self):
        return [(r['method'], r['path']) for r in self.httpd.sim.requests if r['method'] in ('POST', 'PUT', 'DELETE')]

    def clear_log(self):
        del self.httpd.sim.requests[:]

    def close(self):
        self.httpd.shutdown()
        self.engine.close()


@pytest.fixture(scope='module')
def portainer(tmp_path_factory):
    double = Portainer(tmp_path_factory.mktemp('plan-portainer'))
    yield double
    double.close()


@pytest.fixture(scope='module')
def topology(tmp_path_factory):
    root = tmp_path_factory.mktemp('plan')
    for name in ('etc', 'stacks'):
        shutil.copytree(os.path.join(REPO, 'examples', 'single-node', name), root / name)
    (root / 'inventory').mkdir()
    (root / 'inventory' / 'phoenix.yml').write_text(
        'plugin: thinkheads.phoenix.phoenix\nconfig_dir: ../etc\nstacks_dir: ../stacks\nenvironment: production\n')
    return root


def playbook(pve, topology, name, *extra, portainer=None):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
               ANSIBLE_FORCE_COLOR='0', **pve.env)
    cmd = [os.path.join(BIN, 'ansible-playbook'), 'playbooks/%s' % name,
           '-i', str(topology / 'inventory' / 'phoenix.yml'),
           '-e', 'ansible_connection=local', '-e', 'ansible_python_interpreter=%s' % sys.executable, '-e', 'phoenix_progress=false',
           '-e', 'phoenix_create_conf_dir=%s/etc/pve/lxc' % pve.state_dir,
           '-e', 'phoenix_create_apply_features=false', '-e', 'phoenix_create_gpu_preflight=false',
           '-e', 'phoenix_create_ostemplate=%s' % OSTEMPLATE] + pve.image_vars(NOBLE) + list(extra)
    if portainer is not None:
        cmd += portainer.vars()
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


LIMIT = ['-l', '103,1001', '--tags', 'guests,firewall,stacks']


@pytest.fixture(scope='module')
def deployed(pve, topology, portainer):
    result = playbook(pve, topology, 'create.yml', '-l', '900,103,102,9000,1001')
    assert result.returncode == 0, result.out[-5000:]
    # the stack, deployed for real by the stack play through the Portainer double
    stack = playbook(pve, topology, 'sync.yml', '-l', '1001', '--tags', 'stacks', portainer=portainer)
    assert stack.returncode == 0, stack.out[-5000:]
    assert 'qdrant_service_qdrant' in portainer.engine.stack_services('qdrant_service'), stack.out[-3000:]
    again = playbook(pve, topology, 'site.yml', *LIMIT, '--check', '--diff', portainer=portainer)
    assert again.returncode == 0, again.out[-5000:]
    assert 'PLAN: no changes (check mode, nothing was written)' in again.stdout, again.stdout[-4000:]
    # the changes: 103's memory, the port of its third firewall rule, the stack's log level
    path = topology / 'etc' / 'phoenix_lxc_configs.json'
    data = json.loads(path.read_text())
    guest = data['lxc_configs']['103']
    guest['memory_mb'] = 2048
    guest['firewall']['rules'][2]['dport'] = '9443'
    path.write_text(json.dumps(data, indent=2))
    path = topology / 'etc' / 'phoenix_stacks_config.json'
    data = json.loads(path.read_text())
    variables = data['docker_stacks']['qdrant_service']['environments']['production']['variables']
    level = [v for v in variables if v['name'] == 'QDRANT__LOG_LEVEL']
    assert level and level[0]['value'] == 'INFO'
    level[0]['value'] = 'DEBUG'
    path.write_text(json.dumps(data, indent=2))
    return True


@pytest.mark.parametrize('name', ['site.yml', 'plan.yml'])
def test_plan_names_exactly_the_changed_guest_key_firewall_rule_and_stack(pve, topology, portainer, deployed, name):
    pve.clear_log()
    portainer.clear_log()
    deploys = len(portainer.engine.cli_calls)
    result = playbook(pve, topology, name, *LIMIT, '--check', '--diff', portainer=portainer)
    assert result.returncode == 0, result.out[-5000:]
    assert pve.writes() == []
    assert portainer.writes() == [] and len(portainer.engine.cli_calls) == deploys
    assert QDRANT_KEY not in result.out
    env = portainer.engine.stack_services('qdrant_service')['qdrant_service_qdrant']['Spec']['TaskTemplate'][
        'ContainerSpec']['Env']
    assert 'QDRANT__LOG_LEVEL=INFO' in env, env           # the running stack is the deployed one
    rows = plan_rows(result.stdout)
    assert [r[:3] for r in rows] == [('103', 'guest', 'memory'), ('103', 'firewall', 'rules[3]'),
                                     ('1001', 'stack', 'qdrant_service env.QDRANT__LOG_LEVEL')], rows
    assert rows[0][3:] == ('1024', '2048')
    assert rows[1][3:] == ('in ACCEPT ... dport=9000 # Step-CA API (certi...',
                           'in ACCEPT ... dport=9443 # Step-CA API (certi...'), rows[1]
    assert rows[2][3:] == ('INFO', 'DEBUG'), rows[2]
    assert re.search(r'^PLAN: 3 changes on 2 hosts \(check mode, nothing was written\)$', result.stdout, re.M)
    assert re.search(r'^by kind: firewall 1, guest 1, stack 1$', result.stdout, re.M)
    print(result.stdout[result.stdout.rindex('PLAN: ') - 100:])


def test_no_plan_outside_check_mode_and_plan_yml_refuses_it(pve, topology, portainer, deployed):
    pve.clear_log()
    portainer.clear_log()
    refused = playbook(pve, topology, 'plan.yml', *LIMIT, portainer=portainer)
    assert refused.returncode != 0
    assert 'plan.yml only shows what site.yml would change' in ' '.join(refused.stdout.split())
    assert 'PLAN: ' not in refused.stdout
    assert pve.writes() == [] and portainer.writes() == []
