# -*- coding: utf-8 -*-
"""Desired Proxmox configs from Phoenix guests, config change plans, firewall rule plans (no API)."""

import random

import pytest

from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox import PveError, guest_missing
from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox_firewall import (
    api_rule, current_rule, desired_options, plan_options, plan_rules,
)
from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox_guest import (
    desired_lxc, desired_qemu, disk_size_gb, keep_current_macs, ostemplate_volid, parse_property_string,
    plan_config,
)


@pytest.fixture(scope='module')
def guests():
    from phoenix_testlib import ETC, STACKS
    from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.model import load_config
    return load_config(ETC, STACKS).guests


def test_lxc_801(guests):
    config = desired_lxc(guests[801])
    net0 = parse_property_string(config['net0'])
    assert net0 == {'name': 'eth0', 'bridge': 'vmbr0', 'firewall': '1', 'gw': '10.0.0.1',
                    'hwaddr': guests[801]['network']['mac'], 'ip': '10.0.0.141/24'}
    assert config['dev0'] == '/dev/nvidia0'
    assert '/dev/nvidiactl' in config.values() and '/dev/nvidia-uvm' in config.values()
    assert config['hostname'] == 'granite-embedding'
    assert config['onboot'] == 1


def test_gpu_passthrough_can_be_turned_off(guests):
    assert not [k for k in desired_lxc(guests[801], gpu_passthrough=False) if k.startswith('dev')]


def test_vm_1001_cloud_init(guests):
    config = desired_qemu(guests[1001], ssh_keys=['ssh-ed25519 AAAA test'])
    assert config['ipconfig0'] == 'ip=10.0.0.111/24,gw=10.0.0.1'
    assert config['sshkeys'] == 'ssh-ed25519 AAAA test'
    assert parse_property_string(config['net0'])['bridge'] == 'vmbr0'


def test_plan_is_empty_for_an_identical_config(guests):
    desired = desired_lxc(guests[801])
    current = dict(desired)
    current['net0'] += ',type=veth'     # Proxmox adds type=veth by itself
    current['rootfs'] = 'local-lvm:vm-801-disk-0,size=64G'
    current['digest'] = 'abc'
    current['tags'] = ';'.join(reversed(desired['tags'].split(';')))
    assert plan_config('lxc', desired, current) == ({}, [])


def test_plan_detects_removed_sub_option_and_key(guests):
    desired = desired_lxc(guests[801])
    current = dict(desired)
    current['net0'] += ',tag=5'          # a sub-option the config does not have
    current['mp3'] = '/srv/old,mp=/old'  # a mount point that was removed from the config
    current['onboot'] = 1
    del desired['onboot']                # managed, but not in this guest's config
    current['swap'] = 1024               # set by Proxmox at creation: Proxmox's unless the config sets swap_mb
    changes, deletes = plan_config('lxc', desired, current)
    assert changes == {'net0': desired['net0']}
    assert deletes == ['mp3', 'onboot']


def test_plan_detects_value_changes(guests):
    desired = desired_lxc(guests[801])
    current = dict(desired, memory=1024, cores=1)
    changes, deletes = plan_config('lxc', desired, current)
    assert changes == {'memory': desired['memory'], 'cores': desired['cores']}
    assert deletes == []


def test_disk_sizes():
    assert disk_size_gb('lxc', {'rootfs': 'local-lvm:vm-801-disk-0,size=8G'}) == ('rootfs', 8.0)
    assert disk_size_gb('qemu', {'scsi0': 'local-lvm:vm-1001-disk-0,size=32768M'}) == ('scsi0', 32.0)


def test_template_paths_become_volume_ids():
    assert ostemplate_volid('/fastData/shared-iso/template/cache/ubuntu-24.04-standard_24.04-2_amd64.tar.zst') == \
        'local:vztmpl/ubuntu-24.04-standard_24.04-2_amd64.tar.zst'
    assert ostemplate_volid('local:vztmpl/x.tar.zst', 'other') == 'local:vztmpl/x.tar.zst'


def _apply(current, ops):
    work = list(current)
    for op in ops:
        if op[0] == 'move':
            work.insert(op[2], work.pop(op[1]))
        elif op[0] == 'update':
            work[op[1]] = op[2]
        elif op[0] == 'insert':
            work.insert(op[1], op[2])
        else:
            work.pop(op[1])
    return work


def test_rule_plan_converges_for_random_lists():
    rng = random.Random(7)
    pool = [{'type': 'in', 'action': 'ACCEPT', 'dport': str(p)} for p in range(6)]
    for _round in range(3000):
        current = [rng.choice(pool) for _i in range(rng.randint(0, 6))]
        desired = [rng.choice(pool) for _i in range(rng.randint(0, 6))]
        ops = plan_rules(desired, current)
        assert _apply(current, ops) == desired
        assert plan_rules(desired, desired) == []
        assert all(op[1] > op[2] for op in ops if op[0] == 'move')


def test_rule_plan_moves_a_moved_rule_and_deletes_a_removed_one():
    a, b, c = ({'type': 'in', 'action': 'ACCEPT', 'dport': p} for p in ('22', '80', '443'))
    assert plan_rules([c, a, b], [a, b, c]) == [('move', 2, 0)]
    assert plan_rules([a, c], [a, b, c]) == [('move', 2, 1), ('delete', 2)]
    assert plan_rules([a, b], [a, c]) == [('update', 1, b)]


def test_phoenix_rules_map_to_proxmox_fields():
    rule = api_rule({'type': 'in', 'action': 'accept', 'proto': 'tcp', 'dport': '22', 'source': '10.0.0.0/24',
                     'enabled': True, 'comment': 'ssh'})
    assert rule == {'type': 'in', 'action': 'ACCEPT', 'enable': '1', 'proto': 'tcp', 'dport': '22',
                    'source': '10.0.0.0/24', 'comment': 'ssh'}
    assert current_rule(dict(rule, pos=0, ipversion=4, digest='x', enable=1)) == rule


def test_firewall_options_plan():
    assert plan_options({'enable': True, 'policy_in': 'DROP', 'policy_out': None}, {'enable': 1}) == {}
    assert plan_options({'enable': True, 'policy_in': 'ACCEPT'}, {}) == {'enable': '1', 'policy_in': 'ACCEPT'}


def test_firewall_options_from_nothing():
    assert desired_options({'enable': True, 'policy_in': 'drop', 'policy_out': None}) == {'enable': '1',
                                                                                          'policy_in': 'DROP'}
    assert desired_options({'enable': False}) == {'enable': '0'}


@pytest.mark.parametrize('message, vmid, missing', [
    # PVE::AbstractConfig::load_config, for containers and VMs (pvesim answers the same, firewall paths too)
    ("GET nodes/pve/lxc/801/config failed (HTTP 500): Configuration file 'nodes/pve/lxc/801.conf' does not exist",
     801, True),
    ("GET nodes/pve/qemu/1001/firewall/options failed (HTTP 500): "
     "Configuration file 'nodes/pve/qemu-server/1001.conf' does not exist", 1001, True),
    ("POST nodes/pve/lxc/901/clone failed (HTTP 500): Configuration file 'nodes/pve/lxc/901.conf' does not exist",
     None, True),
    # another guest, or another thing that does not exist
    ("GET nodes/pve/lxc/801/config failed (HTTP 500): Configuration file 'nodes/pve/lxc/802.conf' does not exist",
     801, False),
    ("POST nodes/pve/lxc failed (HTTP 500): volume 'local:vztmpl/x.tar.zst' does not exist", None, False),
    ("GET pools failed (HTTP 500): pool 'x' does not exist", None, False),
])
def test_guest_missing_recognizes_proxmox_wording(message, vmid, missing):
    assert guest_missing(PveError(message, status=500), vmid) is missing
    assert guest_missing(PveError(message, status=400), vmid) is False


def _without_mac(guest):
    import copy
    guest = copy.deepcopy(guest)
    guest['network'].pop('mac', None)
    return guest


def test_vm_without_mac_keeps_the_mac_proxmox_assigned(guests):
    desired = desired_qemu(_without_mac(guests[1001]))
    current = dict(desired, net0='virtio=BC:24:11:91:04:5B,bridge=vmbr0,firewall=1')
    kept = keep_current_macs('qemu', desired, current)
    assert parse_property_string(kept['net0'])['virtio'] == 'BC:24:11:91:04:5B'
    assert plan_config('qemu', kept, current) == ({}, [])
    # a changed bridge is written with the same MAC (no new NIC)
    changed = dict(current, net0='virtio=BC:24:11:91:04:5B,bridge=vmbr1,firewall=1')
    changes, _deletes = plan_config('qemu', keep_current_macs('qemu', desired, changed), changed)
    assert parse_property_string(changes['net0']) == {'virtio': 'BC:24:11:91:04:5B', 'bridge': 'vmbr0',
                                                      'firewall': '1'}


def test_lxc_without_mac_keeps_hwaddr(guests):
    desired = desired_lxc(_without_mac(guests[801]))
    assert 'hwaddr' not in parse_property_string(desired['net0'])
    current = dict(desired, net0=desired['net0'] + ',hwaddr=BC:24:11:00:00:01,type=veth')
    kept = keep_current_macs('lxc', desired, current)
    assert plan_config('lxc', kept, current) == ({}, [])


def test_a_configured_mac_wins_and_nothing_is_kept_for_a_new_guest(guests):
    desired = desired_lxc(guests[801])
    current = dict(desired, net0=desired['net0'].replace(guests[801]['network']['mac'], 'BC:24:11:00:00:01'))
    assert keep_current_macs('lxc', desired, current) == desired
    assert keep_current_macs('qemu', desired_qemu(_without_mac(guests[1001])), None) == \
        desired_qemu(_without_mac(guests[1001]))


@pytest.mark.parametrize('url, port', [('https://pve:8006', 8006), ('pve.example', 8006),
                                       ('https://[fe80::1]:9443/api2/json', 9443)])
def test_api_urls(url, port):
    from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox import parse_api_url
    assert parse_api_url(url)[1] == port


@pytest.mark.parametrize('url', ['https://pve:80x6', 'https://[::1:8006', 'http://pve:8006', 'https://:8006'])
def test_broken_api_urls_raise_one_line(url):
    from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox import parse_api_url
    with pytest.raises(PveError) as info:
        parse_api_url(url)
    assert 'api_url' in info.value.message and '\n' not in info.value.message


def test_owner_tag():
    from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox_guest import owned
    assert owned({'tags': 'docker;phoenix'}) and owned({'tags': 'phoenix'})
    assert not owned({'tags': 'phoenix-old;prod'}) and not owned({}) and not owned(None)
