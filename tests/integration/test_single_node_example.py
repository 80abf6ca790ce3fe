# -*- coding: utf-8 -*-
"""examples/single-node: the walkthrough of its README, command by command, against a fresh pvesim.

The commands between the README's ``walkthrough`` markers are run as written, by bash, with HOME set to a
temporary folder (``~/phoenix-home`` is the user's copy). Only the ``export`` line is replaced: the connection
settings point at pvesim (never at the README's example address), with the README's token ID. The copy's
group_vars get what a test host needs instead of SSH: local connections, no feature roles (they need real guests),
pvesim's container-config folder. Then the platform's guests exist, a second create.yml changes nothing and writes
nothing, and validate.yml reports the example clean.
"""

import os
import re
import shlex
import subprocess
import sys

import pytest

from pve_env import REAL_PVE, REPO
from image_server import NOBLE

pytestmark = [pytest.mark.walkthrough,
              pytest.mark.skipif(REAL_PVE, reason='creates the example platform: pvesim only')]
BIN = os.path.dirname(sys.executable)
EXAMPLE = os.path.join(REPO, 'examples', 'single-node')
TOKEN_ID, TOKEN_SECRET = 'phoenix@pve!ansible', 'the-secret'


def walkthrough():
    text = open(os.path.join(EXAMPLE, 'README.md')).read()
    block = re.search(r'<!-- walkthrough:start -->\s*```sh\n(.*?)```\s*<!-- walkthrough:end -->', text, re.S)
    assert block, 'examples/single-node/README.md has no walkthrough block'
    commands, pending = [], ''
    for line in block.group(1).splitlines():
        pending += line.rstrip('\\').rstrip() + ' ' if line.endswith('\\') else line
        if not line.endswith('\\'):
            commands.append(pending.strip())
            pending = ''
    return [c for c in commands if c]


@pytest.fixture(scope='module')
def pvesim(tmp_path_factory, image_server):
    from pvesim.control import Control
    from pvesim.server import start_server
    state = tmp_path_factory.mktemp('pvesim')
    server = start_server(state, tokens=['%s=%s' % (TOKEN_ID, TOKEN_SECRET)], control=True, task_seconds=0.05,
                          strict=True, download_ca=image_server.ca_file)
    try:
        yield server, Control(server.url, ca_file=str(server.ca_file)), str(state)
    finally:
        server.stop()


def download_on_the_host(server, image_server):
    """What the README's host section does with pvesh: Proxmox downloads the Ubuntu cloud image as import content
    (here from the loopback image server, checksum verified)."""
    from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox import PveClient
    client = PveClient(server.url, api_token_id=TOKEN_ID, api_token_secret=TOKEN_SECRET, ca_file=str(server.ca_file))
    client.wait_task(client.post('nodes/pve/storage/local/download-url', content='import',
                                 filename='noble-server-cloudimg-amd64.qcow2', url=image_server.url(NOBLE),
                                 checksum=image_server.sha256(NOBLE), **{'checksum-algorithm': 'sha256'}))


def recaps(stdout):
    out = {}
    for host, counts in re.findall(r'^(\S+)\s+:\s+(ok=.*)$', stdout, re.M):
        out[host] = dict((k, int(v)) for k, v in re.findall(r'(\w+)=(\d+)', counts))
    return out


def test_readme_walkthrough_works_as_written(pvesim, tmp_path, image_server):
    server, control, state = pvesim
    readme = open(os.path.join(EXAMPLE, 'README.md')).read()
    assert 'download-url --content import --filename noble-server-cloudimg-amd64.qcow2' in readme
    download_on_the_host(server, image_server)
    control.clear_requests()
    commands = walkthrough()
    exports = [c for c in commands if c.startswith('export ')]
    assert len(exports) == 1, commands
    named = set(re.findall(r'(PHOENIX_PVE_\w+)=', exports[0]))
    assert named == {'PHOENIX_PVE_URL', 'PHOENIX_PVE_TOKEN_ID', 'PHOENIX_PVE_TOKEN_SECRET', 'PHOENIX_PVE_NODE',
                     'PHOENIX_PVE_CA_FILE'}
    assert "PHOENIX_PVE_TOKEN_ID='%s'" % TOKEN_ID in exports[0]
    home = tmp_path / 'home'
    home.mkdir()
    env = dict(os.environ, HOME=str(home), ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
               ANSIBLE_FORCE_COLOR='0', PHOENIX_PVE_URL=server.url, PHOENIX_PVE_TOKEN_ID=TOKEN_ID,
               PHOENIX_PVE_TOKEN_SECRET=TOKEN_SECRET, PHOENIX_PVE_NODE='pve', PHOENIX_PVE_CA_FILE=str(server.ca_file))
    env.pop('ANSIBLE_INVENTORY', None)
    test_vars = ('\n# test host: no SSH, no feature roles\nansible_connection: local\n'
                 'ansible_python_interpreter: %s\nphoenix_create_apply_features: false\n'
                 'phoenix_create_conf_dir: %s/etc/pve/lxc\n'
                 # pvesim's tasks end at once: poll the background jobs every 2 s, not every 15 s (the default)
                 'phoenix_progress_interval: 2\n' % (sys.executable, state))
    outputs = []
    for command in commands:
        if command.startswith('export '):
            continue
        run = subprocess.run(['bash', '-c', command], cwd=REPO, env=env, capture_output=True, text=True,
                             timeout=900, check=False)
        outputs.append((command, run))
        assert run.returncode == 0, '%s\n%s\n%s' % (command, run.stdout[-5000:], run.stderr[-3000:])
        assert 'Traceback' not in run.stdout + run.stderr, command
        if command.startswith('cp '):       # the user's copy now exists: give it the test host's settings
            with open(home / 'phoenix-home' / 'inventory' / 'group_vars' / 'all.yml', 'a') as handle:
                handle.write(test_vars)
        if '--check' in shlex.split(command):
            assert control.requests() and not [r for r in control.requests() if r['method'] != 'GET'], \
                'the dry run wrote to Proxmox'

    by_cmd = dict((c, r) for c, r in outputs)
    validate = [r for c, r in by_cmd.items() if 'validate.yml' in c][0]
    assert 'Phoenix configuration: 0 error(s), 0 warning(s)' in validate.stdout
    graph = [r for c, r in by_cmd.items() if 'ansible-inventory' in c][0].stdout
    for host in ('900', '103', '102', '101', '9000', '1001'):
        assert '|--%s\n' % host in graph, graph

    # Every guest of the example exists on "Proxmox", owned by Phoenix.
    assert sorted(int(g['vmid']) for g in control.state()['guests']) == [101, 102, 103, 900, 1001, 9000]

    # A second full run converges: nothing changed, nothing written.
    control.clear_requests()
    full = [c for c in commands if c.endswith('playbooks/create.yml')][0]
    again = subprocess.run(['bash', '-c', full], cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
                           check=False)
    assert again.returncode == 0, again.stdout[-5000:] + again.stderr[-3000:]
    changed = dict((h, c['changed']) for h, c in recaps(again.stdout).items() if c.get('changed'))
    assert changed == {}, again.stdout[-6000:]
    assert [r for r in control.requests() if r['method'] != 'GET'] == []
