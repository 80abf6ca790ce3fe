# -*- coding: utf-8 -*-
"""proxmox_lxc_raw on a container config file in the layout Proxmox (and pvesim) keep."""

import fcntl
import os
import threading
import time

from modrun import run_module

CONF = """arch: amd64
cores: 2
hostname: nginx
lxc.apparmor.profile: generated
net0: name=eth0,bridge=vmbr0,ip=10.0.0.153/24
unprivileged: 1

[before-upgrade]
arch: amd64
lxc.apparmor.profile: generated
"""

ARGS = {'vmid': 101, 'lxc_options': ['lxc.apparmor.profile=unconfined', 'lxc.mount.auto:sys:rw'],
        'id_maps': [{'type': 'gid', 'container_id': 33, 'host_id': 33, 'size': 1}]}


def setup_conf(tmp_path):
    (tmp_path / '101.conf').write_text(CONF)
    return dict(ARGS, conf_dir=str(tmp_path), lock_dir=str(tmp_path / 'lock'))


def test_change_then_idempotent(tmp_path):
    args = setup_conf(tmp_path)
    first = run_module('proxmox_lxc_raw', args)
    assert first['changed'] is True and first['restart_needed'] is True
    text = (tmp_path / '101.conf').read_text()
    main, snapshot = text.split('[before-upgrade]')
    assert 'lxc.apparmor.profile: unconfined' in main and 'generated' not in main
    assert 'lxc.mount.auto: sys:rw' in main
    assert 'lxc.idmap: g 0 100000 33\nlxc.idmap: g 33 33 1\nlxc.idmap: g 34 100034 65502' in main
    assert 'lxc.idmap: u 0 100000 65536' in main
    assert 'lxc.apparmor.profile: generated' in snapshot          # snapshots are never rewritten
    assert 'net0: name=eth0,bridge=vmbr0,ip=10.0.0.153/24' in main
    second = run_module('proxmox_lxc_raw', args)
    assert second['changed'] is False
    assert (tmp_path / '101.conf').read_text() == text


def test_check_mode_writes_nothing_and_shows_a_diff(tmp_path):
    args = setup_conf(tmp_path)
    result = run_module('proxmox_lxc_raw', args, check=True)
    assert result['changed'] is True
    assert 'lxc.apparmor.profile: unconfined' in result['diff']['after']
    assert 'lxc.apparmor.profile: generated' in result['diff']['before']
    assert (tmp_path / '101.conf').read_text() == CONF


def test_removed_option_is_removed(tmp_path):
    args = setup_conf(tmp_path)
    run_module('proxmox_lxc_raw', args)
    result = run_module('proxmox_lxc_raw', dict(args, lxc_options=[], id_maps=[]))
    assert result['changed'] is True
    main = (tmp_path / '101.conf').read_text().split('[before-upgrade]')[0]
    assert 'lxc.' not in main


def test_bad_option_fails_clearly_without_writing(tmp_path):
    args = setup_conf(tmp_path)
    result = run_module('proxmox_lxc_raw', dict(args, lxc_options=['apparmor.profile=unconfined']))
    assert result.get('failed') is True
    assert result['msg'] == '"apparmor.profile=unconfined" is not an lxc.* option (expected lxc.key=value)'
    assert (tmp_path / '101.conf').read_text() == CONF


def test_missing_container_fails_clearly(tmp_path):
    result = run_module('proxmox_lxc_raw', dict(ARGS, vmid=999, conf_dir=str(tmp_path)))
    assert result.get('failed') is True
    assert 'create container 999 first' in result['msg']


def test_missing_container_in_check_mode_is_an_empty_file(tmp_path):
    """Check mode for a container that proxmox_guest would create in the same run: the lines from nothing."""
    args = dict(ARGS, conf_dir=str(tmp_path))
    result = run_module('proxmox_lxc_raw', args, check=True)
    assert result.get('failed') is not True, result
    assert result['changed'] is True and result['exists'] is False
    assert result['diff']['before'] == ''
    assert result['diff']['after'].startswith('lxc.apparmor.profile: unconfined\nlxc.mount.auto: sys:rw\n')
    assert 'lxc.idmap: g 33 33 1' in result['lines']
    assert 'container 101 does not exist yet (check mode)' in result['msg']
    assert list(tmp_path.iterdir()) == []


def test_missing_container_without_lines_in_check_mode_is_unchanged(tmp_path):
    result = run_module('proxmox_lxc_raw', {'vmid': 101, 'conf_dir': str(tmp_path)}, check=True)
    assert result['changed'] is False and result['exists'] is False and result['lines'] == []


def test_missing_container_fails_outside_check_mode(tmp_path):
    result = run_module('proxmox_lxc_raw', dict(ARGS, conf_dir=str(tmp_path)))
    assert result.get('failed') is True
    assert result['msg'] == '%s/101.conf does not exist: create container 101 first' % tmp_path
    assert list(tmp_path.iterdir()) == []


def test_missing_conf_dir_fails_in_either_mode(tmp_path):
    for check in (True, False):
        result = run_module('proxmox_lxc_raw', dict(ARGS, conf_dir=str(tmp_path / 'nope')), check=check)
        assert result.get('failed') is True
        assert 'conf_dir %s is not a directory' % (tmp_path / 'nope') in result['msg']


def _hold_lock(lock_dir, vmid, release):
    """Hold PVE's config lock for a container in a thread, as a Proxmox task would, until ``release`` is set."""
    os.makedirs(lock_dir, exist_ok=True)
    held = threading.Event()

    def hold():
        with open(os.path.join(lock_dir, 'pve-config-%d.lock' % vmid), 'w') as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            held.set()
            release.wait(120)
    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert held.wait(60), 'the lock holder thread did not take the lock within 60 s'
    return thread


def _wait_until_opened_elsewhere(path, timeout=120):
    """Until another process has the lock file open (the module, polling for the lock)."""
    path = os.path.realpath(path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in os.listdir('/proc'):
            if not pid.isdigit() or int(pid) == os.getpid():
                continue
            try:
                fds = os.listdir('/proc/%s/fd' % pid)
                if any(os.readlink('/proc/%s/fd/%s' % (pid, fd)) == path for fd in fds):
                    return True
            except OSError:
                continue
        time.sleep(0.1)
    return False


def test_waits_for_the_config_lock(tmp_path):
    args = setup_conf(tmp_path)
    release = threading.Event()
    holder = _hold_lock(args['lock_dir'], 101, release)
    result = {}
    runner = threading.Thread(target=lambda: result.update(run_module('proxmox_lxc_raw', dict(args, lock_timeout=60))))
    runner.start()
    # The module polls the lock: once it has the lock file open, it must not write while the lock is held.
    assert _wait_until_opened_elsewhere(os.path.join(args['lock_dir'], 'pve-config-101.lock'))
    time.sleep(1.0)
    assert (tmp_path / '101.conf').read_text() == CONF
    release.set()
    runner.join(300)
    holder.join()
    assert not runner.is_alive(), 'the module still running 300 s after the lock was released'
    assert result['changed'] is True and not result.get('failed'), result


def test_a_held_config_lock_times_out_without_writing(tmp_path):
    args = setup_conf(tmp_path)
    release = threading.Event()
    holder = _hold_lock(args['lock_dir'], 101, release)
    try:
        result = run_module('proxmox_lxc_raw', dict(args, lock_timeout=1))
    finally:
        release.set()
        holder.join()
    assert result.get('failed') and 'could not take the config lock' in result['msg'], result
    assert 'pve-config-101.lock' in result['msg'] and 'Traceback' not in result['msg']
    assert (tmp_path / '101.conf').read_text() == CONF


def test_a_locked_config_is_not_edited(tmp_path):
    args = setup_conf(tmp_path)
    (tmp_path / '101.conf').write_text('lock: backup\n' + CONF)
    result = run_module('proxmox_lxc_raw', args)
    assert result.get('failed') and 'locked (backup)' in result['msg'], result
    assert (tmp_path / '101.conf').read_text() == 'lock: backup\n' + CONF
    # A locked config whose lines already match needs no write: unchanged, not an error.
    (tmp_path / '101.conf').write_text('lock: backup\narch: amd64\nlxc.apparmor.profile: unconfined\n')
    result = run_module('proxmox_lxc_raw', dict(args, lxc_options=['lxc.apparmor.profile=unconfined'], id_maps=[]))
    assert result['changed'] is False and not result.get('failed'), result


def test_negative_lock_timeout_fails_clearly(tmp_path):
    args = setup_conf(tmp_path)
    result = run_module('proxmox_lxc_raw', dict(args, lock_timeout=-1))
    assert result.get('failed') and 'lock_timeout must be at least 0' in result['msg']
    assert (tmp_path / '101.conf').read_text() == CONF


# -- clusters: the file of the node that holds the container ----------------------------------------------------


def cluster_tree(tmp_path, holder='pve2', vmid=101):
    """A cluster file system as pmxcfs shows it on pve1: nodes/<node>/lxc per node, lxc a link to pve1's."""
    pve = tmp_path / 'pve'
    for node in ('pve1', 'pve2', 'pve3'):
        (pve / 'nodes' / node / 'lxc').mkdir(parents=True)
    (pve / 'lxc').symlink_to(os.path.join('nodes', 'pve1', 'lxc'))
    if holder:
        (pve / 'nodes' / holder / 'lxc' / ('%d.conf' % vmid)).write_text(CONF)
    return pve


def test_the_container_is_edited_on_the_node_that_holds_it(tmp_path):
    pve = cluster_tree(tmp_path)
    # the configured node (pve1, the local one) is stale: the container was moved to pve2
    args = dict(ARGS, pve_dir=str(pve), node='pve1', lock_dir=str(tmp_path / 'lock'))
    first = run_module('proxmox_lxc_raw', args)
    assert first.get('failed') is not True, first
    assert first['changed'] is True and first['node'] == 'pve2', first
    held = pve / 'nodes' / 'pve2' / 'lxc' / '101.conf'
    assert first['path'] == str(held)
    assert 'lxc.apparmor.profile: unconfined' in held.read_text()
    assert sorted(os.listdir(str(pve / 'lxc'))) == [] and sorted(os.listdir(str(pve / 'nodes' / 'pve3' / 'lxc'))) == []
    second = run_module('proxmox_lxc_raw', dict(args, node=None))
    assert second['changed'] is False and second['node'] == 'pve2'


def test_a_container_of_the_local_node_is_found_through_its_node_directory(tmp_path):
    pve = cluster_tree(tmp_path, holder='pve1')
    result = run_module('proxmox_lxc_raw', dict(ARGS, pve_dir=str(pve), lock_dir=str(tmp_path / 'lock')))
    assert result['changed'] is True and result['node'] == 'pve1', result
    assert 'lxc.apparmor.profile: unconfined' in (pve / 'lxc' / '101.conf').read_text()


def test_a_container_not_created_yet_is_predicted_on_its_node(tmp_path):
    pve = cluster_tree(tmp_path, holder=None)
    args = dict(ARGS, pve_dir=str(pve), node='pve3')
    predicted = run_module('proxmox_lxc_raw', args, check=True)
    assert predicted['changed'] is True and predicted['exists'] is False, predicted
    assert predicted['path'] == str(pve / 'nodes' / 'pve3' / 'lxc' / '101.conf') and predicted['node'] == 'pve3'
    assert predicted['diff']['after_header'].startswith(predicted['path'])
    failed = run_module('proxmox_lxc_raw', args)
    assert failed.get('failed') is True
    assert failed['msg'] == '%s/nodes/pve3/lxc/101.conf does not exist: create container 101 first' % pve
    assert not any(files for _root, _dirs, files in os.walk(str(pve)))
