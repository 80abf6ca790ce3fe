# -*- coding: utf-8 -*-
"""Progress on long waits (issue #19): create.yml runs the image download, a new guest's creation and a start in
the background (async) by default and prints an ASYNC POLL line every ``phoenix_progress_interval`` seconds (15;
INTERVAL here).

This module's pvesim runs every Proxmox task for TASK_SECONDS, 2.5 times the poll interval, so each of those
waits spans at least one poll even when the controller is slow to start polling (Ansible's first status read comes
one interval after the background job has been handed back, which a loaded machine delays). The interval is not
shorter: Ansible's async_wrapper hands the job back after at most 2.5 s whether or not the job has written its status
file yet, so the first read must come late enough for a job started on a loaded machine to have written it. Check mode (Ansible
refuses async there) still works and writes nothing, and a second run reconciles the existing, running guests in the
foreground (no poll, no added interval).
"""

import os
import re
import subprocess
import sys

import pytest

from image_server import NOBLE
from pve_env import REAL_PVE, REPO, ROOT_PASSWORD, TOKEN_ID, TOKEN_SECRET, Pve

pytestmark = [pytest.mark.walkthrough,
              pytest.mark.skipif(REAL_PVE, reason='needs slow Proxmox tasks: runs against pvesim only')]
BIN = os.path.dirname(sys.executable)
OSTEMPLATE = 'local:vztmpl/ubuntu-24.04-standard_24.04-2_amd64.tar.zst'
INTERVAL = 4
TASK_SECONDS = 2.5 * INTERVAL
GUESTS = '900,103,9000'       # an LXC template, a container cloned from it (started), a VM template (cloud image)


@pytest.fixture(scope='module')
def pve(tmp_path_factory, image_server):
    """pvesim whose tasks (create, clone, start, download) each take TASK_SECONDS."""
    from pvesim.control import Control
    from pvesim.server import start_server
    state = tmp_path_factory.mktemp('pvesim-slow')
    server = start_server(state, tokens=['%s=%s' % (TOKEN_ID, TOKEN_SECRET)], passwords=['root@pam:' + ROOT_PASSWORD],
                          control=True, task_seconds=TASK_SECONDS, strict=True, download_ca=image_server.ca_file)
    try:
        control = Control(server.url, ca_file=str(server.ca_file))
        yield Pve(server.url, str(server.ca_file), TOKEN_ID, TOKEN_SECRET, control=control, state_dir=str(state),
                  server=server, password=ROOT_PASSWORD, images=image_server)
    finally:
        server.stop()


def playbook(pve, *extra):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
               ANSIBLE_FORCE_COLOR='0', **pve.env)
    cmd = [os.path.join(BIN, 'ansible-playbook'), 'playbooks/create.yml', '-l', GUESTS,
           '-e', 'ansible_connection=local', '-e', 'ansible_python_interpreter=%s' % sys.executable,
           '-e', 'phoenix_create_conf_dir=%s/etc/pve/lxc' % pve.state_dir,
           '-e', 'phoenix_create_storage=local-lvm',
           '-e', 'phoenix_create_apply_features=false', '-e', 'phoenix_create_gpu_preflight=false',
           '-e', 'phoenix_create_ostemplate=%s' % OSTEMPLATE, '-e', 'phoenix_progress_interval=%d' % INTERVAL]
    cmd += pve.image_vars(NOBLE) + list(extra)
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)
    result.out = result.stdout + result.stderr
    return result


def task_section(result, title):
    """The output of one task (from its TASK line to the next TASK/PLAY line)."""
    start = result.stdout.index('TASK [%s' % title)
    following = [pos for pos in (result.stdout.find('\nTASK [', start + 1), result.stdout.find('\nPLAY ', start + 1))
                 if pos > 0]
    return result.stdout[start:min(following) if following else len(result.stdout)]


def polls(text, host):
    return len(re.findall(r'^ASYNC POLL on %s: jid=\S+ started=True finished=False' % host, text, re.M))


def recap(result, host):
    match = re.search(r'^%s\s+:\s+(.*)$' % re.escape(str(host)), result.stdout, re.M)
    assert match, 'no recap line for %s:\n%s' % (host, result.stdout[-3000:])
    return dict((k, int(v)) for k, v in re.findall(r'(\w+)=(\d+)', match.group(1)))


def test_check_mode_runs_in_the_foreground_and_writes_nothing(pve):
    pve.clear_log()
    dry = playbook(pve, '--check', '--diff')
    assert dry.returncode == 0, dry.out[-6000:]
    assert 'ASYNC' not in dry.stdout
    assert 'check mode and async cannot be used' not in dry.out
    assert pve.writes() == []
    for host in GUESTS.split(','):
        assert recap(dry, host)['failed'] == 0 and recap(dry, host)['changed'] >= 1
    assert 'changed: [103' in task_section(dry, 'Start the guest')


def test_long_waits_print_a_poll_line_per_interval_then_a_converge_polls_nothing(pve):
    real = playbook(pve)
    assert real.returncode == 0, real.out[-6000:]
    image = task_section(real, "Bring the new guest's cloud image")
    assert polls(image, 9000) >= 1, image
    assert 'ASYNC OK on 9000' in image and 'changed: [9000' in image
    create = task_section(real, 'Create or reconcile the guest')
    for host in GUESTS.split(','):
        assert polls(create, host) >= 1, create
        assert 'ASYNC OK on %s' % host in create
        assert recap(real, host)['failed'] == 0
    start = task_section(real, 'Start the guest')
    assert polls(start, 103) >= 1 and 'changed: [103' in start, start
    assert os.path.exists(os.path.join(pve.state_dir, 'etc', 'pve', 'qemu-server', '9000.conf'))
    assert pve.api_get('nodes/pve/lxc/103/status/current')['status'] == 'running'

    pve.clear_log()
    again = playbook(pve)
    assert again.returncode == 0, again.out[-6000:]
    assert 'ASYNC' not in again.stdout, again.stdout[-4000:]
    for host in GUESTS.split(','):
        assert recap(again, host)['changed'] == 0, again.stdout[-4000:]
    assert pve.writes() == []
