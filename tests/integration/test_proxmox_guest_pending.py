# -*- coding: utf-8 -*-
"""proxmox_guest and the changes Proxmox keeps pending on a running guest until it restarts.

A running CT takes hostname, tags, memory or a new dev[n] at once, but keeps features (the docker feature's
keyctl) or a changed dev[n] (a second GPU moving the control devices) in [pve:pending]; a running VM keeps cores.
The module reports them (pending, reboot_required, a warning), never writes them again, and restarts the guest
to apply them with restart_pending.
"""

import copy

import pytest

from pve_env import REAL_PVE
from modrun import run_module

OSTEMPLATE = 'local:vztmpl/ubuntu-24.04-standard_24.04-2_amd64.tar.zst'
needs_pvesim = pytest.mark.skipif(REAL_PVE, reason='reads pvesim state (current=1) through its control interface')


def run(pve, args, check=False):
    return run_module('proxmox_guest', args, check=check, env=pve.env)


def ct(topology, vmid, **extra):
    guest = copy.deepcopy(topology.guests[900])
    guest.update(id=vmid, name='pending-%d' % vmid, hostname='pending-%d' % vmid, is_template=False, gpus=[0],
                 features=['base_setup'])
    guest['network'] = dict(guest['network'], mac=None, cidr='10.0.0.%d/24' % (vmid % 200))
    guest.update(extra)
    return guest


def args(guest, **extra):
    out = {'guest': guest, 'storage': 'local-lvm', 'ostemplate': OSTEMPLATE}
    out.update(extra)
    return out


def live_config(pve, kind, vmid):
    """The running config (current=1: without the pending values)."""
    from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox import PveClient
    client = PveClient(pve.url, api_token_id=pve.token_id, api_token_secret=pve.token_secret, ca_file=pve.ca_file)
    return client.get('nodes/pve/%s/%d/config' % (kind, vmid), current=1)


def started(pve, guest):
    result = run(pve, args(guest, state='started'))
    assert result.get('failed') is not True, result
    assert result['pending'] == [] and result['reboot_required'] is False, result
    return result


def test_pending_keys_are_reported_not_rewritten_and_a_restart_applies_them(pve, topology):
    base = ct(topology, 761)
    started(pve, base)
    # the docker feature (nesting + keyctl) and a second GPU: /dev/nvidia1 takes dev1, the control devices move up
    guest = dict(base, features=['base_setup', 'docker'], gpus=[0, 1], memory_mb=base['memory_mb'] * 2)
    first = run(pve, args(guest))
    assert first['changed'] is True, first
    assert {'features', 'dev1', 'dev5'} <= set(first['pending']), first
    assert 'memory' not in first['pending'] and 'dev6' not in first['pending']   # hotplugged: memory, a new dev
    assert first['reboot_required'] is True
    assert any('keeps these changes pending until it restarts: ' in w and 'features' in w and 'dev1' in w
               for w in first['warnings']), first['warnings']
    assert first['config']['features'] == 'nesting=1,keyctl=1'     # the config as it will be
    if not REAL_PVE:
        live = live_config(pve, 'lxc', 761)
        assert 'features' not in live and live['dev1'] == '/dev/nvidiactl'
        assert live['memory'] == guest['memory_mb'] and live['dev6'] == '/dev/nvidia-caps/nvidia-cap2'

    pve.clear_log()
    second = run(pve, args(guest))
    assert second['changed'] is False and pve.writes() == [], second     # nothing is written twice
    assert second['pending'] == first['pending'] and second['reboot_required'] is True
    assert any('restart_pending' in w for w in second['warnings'])

    check = run(pve, args(guest, restart_pending=True), check=True)
    assert check['changed'] is True and check['restarted'] is True, check
    assert check['pending_applied'] == first['pending']
    assert check['pending'] == [] and check['reboot_required'] is False
    assert pve.writes() == []

    restart = run(pve, args(guest, restart_pending=True))
    assert restart['changed'] is True and restart['restarted'] is True, restart
    assert restart['pending'] == [] and restart['reboot_required'] is False
    writes = pve.writes()
    assert [(w['method'], w['path']) for w in writes] == [('POST', '/nodes/pve/lxc/761/status/reboot')], \
        writes
    assert not restart.get('warnings')
    if not REAL_PVE:
        live = live_config(pve, 'lxc', 761)
        assert live['features'] == 'nesting=1,keyctl=1' and live['dev1'] == '/dev/nvidia1'

    pve.clear_log()
    again = run(pve, args(guest, restart_pending=True))
    assert again['changed'] is False and again['pending'] == [] and not again.get('warnings'), again
    assert pve.writes() == []


def test_check_mode_predicts_pending_keys_and_a_stopped_guest_takes_changes_at_once(pve, topology):
    base = ct(topology, 762, gpus=[])
    started(pve, base)
    guest = dict(base, network=dict(base['network'], nameservers=['10.0.0.2']), cores=(base.get('cores') or 1) + 1)
    pve.clear_log()
    check = run(pve, args(guest), check=True)
    assert check['changed'] is True and pve.writes() == []
    assert check['pending'] == ['nameserver'] and check['reboot_required'] is True, check   # cores go live on a CT
    assert any('nameserver' in w for w in check['warnings'])

    stopped = run(pve, args(guest, state='stopped'))
    assert stopped['changed'] is True and stopped['pending'] == ['nameserver'], stopped     # a CT's stop keeps them
    assert stopped['reboot_required'] is False and not stopped.get('warnings')
    restarted = run(pve, args(guest, state='started'))
    assert restarted['pending'] == [] and restarted['reboot_required'] is False, restarted  # the start applied them
    # a stopped guest takes a change at once: nothing is pending afterwards
    run(pve, args(guest, state='stopped'))
    feature = run(pve, args(dict(guest, features=['base_setup', 'docker']), state='stopped'))
    assert feature['changed'] is True and feature['pending'] == [] and feature['reboot_required'] is False, feature


def test_vm_cores_stay_pending_until_the_restart(pve, topology):
    base = copy.deepcopy(topology.guests[9000])
    # built from a cloud image pvesim ships (the project's own noble image needs a download)
    base.update(id=1061, name='pending-vm', hostname='pending-vm', is_template=False,
                template_image='debian-12-genericcloud-amd64.qcow2')
    base['network'] = dict(base['network'], mac=None, cidr='10.0.0.161/24')
    started(pve, base)
    guest = dict(base, cores=(base.get('cores') or 1) + 1, hostname='pending-vm2')
    check = run(pve, args(guest), check=True)
    assert check['pending'] == ['cores'] and check['reboot_required'] is True, check      # name is live at once
    first = run(pve, args(guest))
    assert first['changed'] is True and first['pending'] == ['cores'] and first['reboot_required'] is True, first
    restart = run(pve, args(guest, restart_pending=True, state='started'))
    assert restart['restarted'] is True and restart['pending_applied'] == ['cores'] and restart['pending'] == []
    if not REAL_PVE:
        assert live_config(pve, 'qemu', 1061)['cores'] == guest['cores']
    again = run(pve, args(guest, restart_pending=True, state='started'))
    assert again['changed'] is False and again['pending'] == [], again


def test_bad_restart_pending_fails_before_any_api_call(pve, topology):
    pve.clear_log()
    result = run(pve, args(ct(topology, 763), restart_pending='sometimes'))
    assert result.get('failed') is True
    assert 'restart_pending' in result['msg'] and 'bool' in result['msg'], result['msg']
    assert pve.requests() == []
