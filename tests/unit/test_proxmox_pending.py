# -*- coding: utf-8 -*-
"""Pending changes from GET .../pending, and which writes a running guest keeps pending (no API)."""

from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox_guest import (
    config_from_pending, predict_pending,
)


def test_config_from_pending_merges_like_get_config():
    items = [
        {'key': 'digest', 'value': 'abc'},
        {'key': 'hostname', 'value': 'a'},
        {'key': 'features', 'pending': 'nesting=1,keyctl=1'},
        {'key': 'dev1', 'value': '/dev/nvidiactl', 'pending': '/dev/nvidia1'},
        {'key': 'mp0', 'value': '/srv/a,mp=/a', 'delete': 1},
        {'key': 'onboot', 'delete': 2},
    ]
    config, pending = config_from_pending(items)
    assert config == {'digest': 'abc', 'hostname': 'a', 'features': 'nesting=1,keyctl=1', 'dev1': '/dev/nvidia1'}
    assert pending == ['dev1', 'features', 'mp0', 'onboot']
    assert config_from_pending([]) == ({}, [])


def test_lxc_prediction_follows_pve_fastplug_and_hotplug_lists():
    current = {'dev0': '/dev/nvidia0', 'mp0': '/srv/a,mp=/a'}
    changes = {'hostname': 'x', 'cores': 2, 'memory': 1024, 'net0': 'name=eth0', 'features': 'nesting=1',
               'nameserver': '10.0.0.2', 'dev0': '/dev/nvidia1', 'dev1': '/dev/nvidiactl', 'mp0': '/srv/b,mp=/b'}
    assert predict_pending('lxc', changes, ['mp1', 'net1', 'swap', 'searchdomain'], current) == \
        ['dev0', 'features', 'mp0', 'mp1', 'nameserver', 'searchdomain']
    assert predict_pending('lxc', {}, ['net10'], {}) == ['net10']     # PVE hotplugs deletions of net0-net9 only


def test_qemu_prediction_uses_the_hotplug_option():
    changes = {'name': 'x', 'cores': 4, 'memory': 4096, 'net0': 'virtio,bridge=vmbr0', 'ciuser': 'a',
               'ipconfig0': 'ip=dhcp', 'agent': 'enabled=1,fstrim_cloned_disks=1'}
    assert predict_pending('qemu', changes, [], {'agent': 'enabled=1'}) == ['cores', 'memory']
    assert predict_pending('qemu', changes, [], {'agent': '0', 'hotplug': 'network,disk,usb,memory'}) == \
        ['agent', 'cores']
    assert predict_pending('qemu', {'net0': 'virtio,bridge=vmbr1'}, ['net1'], {'hotplug': '0'}) == ['net0', 'net1']
