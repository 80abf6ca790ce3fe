# -*- coding: utf-8 -*-
"""proxmox_guest when a write's answer is lost, when a guest is locked, and when it is run with an API token.

- A create, clone or config update whose answer is lost after Proxmox ran it (pvesim's `after_write` fault: the
  write runs, the reply is 596) is not sent again: the module re-reads the guest and continues, so the run
  succeeds with exactly one create/clone and no "already exists".
- A write refused with "CT is locked (backup)" is waited out (a warning names the lock), up to lock_timeout.
- Options only root@pam itself may write (dev[n], bind mounts, features beyond nesting) fail the run before any
  write when it authenticates with an API token.
"""

import copy
import threading
import time

import pytest

from pve_env import REAL_PVE
from modrun import run_module

OSTEMPLATE = 'local:vztmpl/ubuntu-24.04-standard_24.04-2_amd64.tar.zst'
pytestmark = pytest.mark.skipif(REAL_PVE, reason='injects faults through pvesim')


def guest(topology, gid, new_id, **extra):
    data = copy.deepcopy(topology.guests[gid])
    data.update(id=new_id, name='g%d' % new_id, hostname='g%d' % new_id, is_template=False)
    data.update(extra)
    return data


def run(pve, data, check=False, token=False, **extra):
    args = {'guest': data, 'storage': 'local-lvm', 'ostemplate': OSTEMPLATE}
    args.update(extra)
    return run_module('proxmox_guest', args, check=check, env=pve.token_env if token else pve.env)


@pytest.fixture(scope='module')
def template_900(pve, topology):
    result = run(pve, topology.guests[900])
    assert result.get('failed') is not True, result
    return 900


def posts(pve, path_end):
    return [r for r in pve.writes() if r['method'] == 'POST' and r['path'].endswith(path_end)]


def exists(pve, vmid):
    return any(g['vmid'] == vmid for g in pve.control.state()['guests'])


def test_create_whose_answer_is_lost_continues_from_the_guest(pve, topology):
    data = guest(topology, 900, 950)
    pve.clear_log()
    pve.control.set_faults(after_write={'method': 'POST', 'path': '/nodes/pve/lxc'})
    try:
        result = run(pve, data)
    finally:
        pve.control.clear_faults()
    assert result.get('failed') is not True, result
    assert result['created'] is True and result['exists'] is True
    assert [r['status'] for r in posts(pve, '/nodes/pve/lxc')] == [596]         # sent once, never repeated
    assert not any('already exists' in str(r) for r in pve.requests())
    assert any('answer lost' in w for w in result['warnings']), result['warnings']
    assert any('ran although its answer was lost' in w for w in result['warnings'])
    assert exists(pve, 950)
    pve.clear_log()
    again = run(pve, data)
    assert again['changed'] is False and pve.writes() == []


def test_clone_whose_answer_is_lost_continues_from_the_clone(pve, topology, template_900):
    data = guest(topology, 102, 952)                        # clones 900, has a bind mount (root@pam's login)
    pve.clear_log()
    pve.control.set_faults(after_write={'method': 'POST', 'path': r'/nodes/pve/lxc/900/clone'})
    try:
        result = run(pve, data, state='started')
    finally:
        pve.control.clear_faults()
    assert result.get('failed') is not True, result
    assert result['created'] is True and result['config']['mp0'].startswith('/mnt/pve/')
    assert [r['status'] for r in posts(pve, '/clone')] == [596]
    assert [r['path'] for r in posts(pve, '/status/start')] == ['/nodes/pve/lxc/952/status/start']
    assert not any('already exists' in str(r) for r in pve.requests())
    assert exists(pve, 952) and len([g for g in pve.control.state()['guests'] if g['name'] == 'g952']) == 1
    pve.clear_log()
    assert run(pve, data, state='started')['changed'] is False and pve.writes() == []


def test_config_update_whose_answer_is_lost_is_not_repeated(pve, topology, template_900):
    data = guest(topology, 900, 954)
    assert run(pve, data).get('failed') is not True
    data['memory_mb'] = 1536
    pve.clear_log()
    pve.control.set_faults(after_write={'method': 'PUT', 'path': r'/nodes/pve/lxc/954/config'})
    try:
        result = run(pve, data)
    finally:
        pve.control.clear_faults()
    assert result.get('failed') is not True, result
    assert result['changed'] is True and result['changes'] == {'memory': 1536}
    assert [r['status'] for r in pve.writes()] == [596]                 # the one PUT; re-read, nothing left
    assert any('the update had been applied' in w for w in result['warnings'])
    assert result['config']['memory'] == 1536
    pve.clear_log()
    assert run(pve, data)['changed'] is False and pve.writes() == []


def test_a_backup_lock_is_waited_out(pve, topology, template_900):
    data = guest(topology, 900, 955)
    assert run(pve, data).get('failed') is not True
    data['memory_mb'] = 768
    pve.clear_log()
    pve.control.set_faults(lock={'vmid': 955, 'reason': 'backup'})

    def end_the_backup():
        """Remove the lock once the module has been refused by it (the backup ends)."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(r['status'] == 500 for r in pve.writes()):
            time.sleep(0.1)
        time.sleep(0.5)
        pve.control.clear_faults()

    thread = threading.Thread(target=end_the_backup)
    thread.start()
    try:
        result = run(pve, data)
    finally:
        thread.join()
    assert result.get('failed') is not True, result
    assert result['config']['memory'] == 768
    assert any("CT is locked (backup)" in w and "lock 'backup'" in w for w in result['warnings']), result['warnings']
    puts = [r['status'] for r in pve.writes()]
    assert puts[-1] == 200 and set(puts[:-1]) == {500}


def test_a_lock_that_outlasts_lock_timeout_fails_naming_it(pve, topology, template_900):
    data = guest(topology, 900, 955)
    assert run(pve, data).get('failed') is not True
    data['memory_mb'] = 640
    pve.control.set_faults(lock={'vmid': 955, 'reason': 'backup'})
    try:
        pve.clear_log()
        result = run(pve, data, lock_timeout=1)
    finally:
        pve.control.clear_faults()
    assert result['failed'] is True
    assert "still locked after" in result['msg'] and "lock 'backup'" in result['msg'], result['msg']
    assert all(r['status'] == 500 for r in pve.writes())


# -- root-only options with an API token ----------------------------------------------------------------------


@pytest.mark.parametrize('check', [False, True])
def test_token_run_that_would_pass_gpus_through_fails_before_any_write(pve, topology, template_900, check):
    data = guest(topology, 901, 956)                        # clones 900 and adds dev0.. for GPU 0
    pve.clear_log()
    result = run(pve, data, check=check, token=True)
    assert result['failed'] is True
    assert result['msg'].startswith('lxc 956: Proxmox lets only root@pam itself (not an API token such as '
                                    'root@pam!phoenix) change these options: dev0: device passthrough /dev/nvidia0')
    assert 'api_password' in result['msg'] and 'pct set 956' in result['msg']
    assert result['root_only'][:2] == ['dev0', 'dev1']
    assert pve.writes() == [] and not exists(pve, 956)


def test_token_run_with_a_bind_mount_fails_before_any_write_then_root_sets_it(pve, topology, template_900):
    data = guest(topology, 102, 957)
    pve.clear_log()
    result = run(pve, data, token=True)
    assert result['failed'] is True and "mp0: bind mount of host path /mnt/pve/" in result['msg'], result
    assert pve.writes() == [] and not exists(pve, 957)
    # root@pam sets it; afterwards a token run has nothing root-only to write and converges
    assert run(pve, data)['created'] is True
    pve.clear_log()
    again = run(pve, data, token=True)
    assert again.get('failed') is not True and again['changed'] is False, again
    # a changed bind mount is a write again: refused, still before any write
    data['mount_points'][0]['host_path'] = '/mnt/pve/elsewhere'
    pve.clear_log()
    moved = run(pve, data, token=True)
    assert moved['failed'] is True and 'mp0: bind mount of host path /mnt/pve/elsewhere' in moved['msg']
    assert pve.writes() == []


def test_token_create_with_the_docker_feature_fails_naming_keyctl(pve, topology):
    data = guest(topology, 900, 958, clone_from=None, features=['docker'])
    pve.clear_log()
    result = run(pve, data, token=True)
    assert result['failed'] is True and 'features: feature keyctl' in result['msg'], result['msg']
    assert pve.writes() == []
