# -*- coding: utf-8 -*-
"""proxmox_lxc_raw on a container config file in the layout Proxmox (and pvesim) keep."""

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
    return dict(ARGS, conf_dir=str(tmp_path))


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
        assert result['msg'].startswith('%s is not a directory' % (tmp_path / 'nope'))
