# -*- coding: utf-8 -*-
"""proxmox_guest, proxmox_firewall and proxmox_guest_info against a Proxmox API (pvesim by default).

The guests are the project's own topology (etc/): template 900 -> template 901 -> GPU guest 801.
"""

import copy

import pytest

from pve_env import REAL_PVE
from modrun import run_module

OSTEMPLATE = 'local:vztmpl/ubuntu-24.04-standard_24.04-2_amd64.tar.zst'
needs_pvesim = pytest.mark.skipif(REAL_PVE, reason='injects faults through pvesim')


def guest_args(topology, gid, **extra):
    args = {'guest': topology.guests[gid], 'storage': 'local-lvm', 'ostemplate': OSTEMPLATE}
    args.update(extra)
    return args


def run(pve, module, args, check=False):
    return run_module(module, args, check=check, env=pve.env)


@pytest.fixture(scope='module')
def templates(pve, topology):
    for gid in (900, 901):
        result = run(pve, 'proxmox_guest', guest_args(topology, gid))
        assert result['changed'] is True, result
        assert result['created'] is True
    return True


@pytest.fixture(scope='module')
def guest_801(pve, topology, templates):
    """801 exists (created by the first test that needs it)."""
    run(pve, 'proxmox_guest', guest_args(topology, 801, state='started'))
    return 801


def test_guest_info_lists_the_templates(pve, templates):
    result = run(pve, 'proxmox_guest_info', {})
    assert result['guests']['900']['template'] is True
    assert result['guests']['901']['type'] == 'lxc'


def test_801_create_then_unchanged_without_writes(pve, topology, templates):
    first = run(pve, 'proxmox_guest', guest_args(topology, 801, state='started'))
    assert first['changed'] is True and first['created'] is True, first
    assert first['config']['memory'] == topology.guests[801]['memory_mb']
    assert first['config']['dev0'] == '/dev/nvidia0'
    pve.clear_log()
    second = run(pve, 'proxmox_guest', guest_args(topology, 801, state='started'))
    assert second['changed'] is False, second
    assert pve.writes() == []
    assert second['api_calls'] <= 2


def test_check_mode_reports_a_memory_change_with_a_diff_and_writes_nothing(pve, topology, guest_801):
    guest = copy.deepcopy(topology.guests[801])
    guest['memory_mb'] = guest['memory_mb'] * 2
    pve.clear_log()
    result = run(pve, 'proxmox_guest', guest_args(topology, 801, guest=guest), check=True)
    assert result['changed'] is True
    assert result['changes'] == {'memory': guest['memory_mb']}
    assert result['diff']['before']['memory'] == topology.guests[801]['memory_mb']
    assert result['diff']['after']['memory'] == guest['memory_mb']
    assert pve.writes() == []


def test_removed_mount_and_changed_sub_option_are_reconciled(pve, topology, guest_801):
    guest = copy.deepcopy(topology.guests[801])
    guest['mount_points'] = [{'host_path': '/srv/models', 'container_path': '/models'}]
    result = run(pve, 'proxmox_guest', guest_args(topology, 801, guest=guest))
    assert result['changed'] is True and 'mp0' in result['changes']
    result = run(pve, 'proxmox_guest', guest_args(topology, 801))
    assert result['changed'] is True and result['deleted'] == ['mp0']
    assert run(pve, 'proxmox_guest', guest_args(topology, 801))['changed'] is False


def test_firewall_rules_removed_and_moved(pve, topology, guest_801):
    rules = topology.guests[801]['firewall']['rules']
    assert len(rules) >= 2
    args = {'vmid': 801, 'kind': 'lxc', 'enabled': True, 'policy_in': 'DROP', 'rules': rules}
    first = run(pve, 'proxmox_firewall', args)
    assert first['changed'] is True
    pve.clear_log()
    again = run(pve, 'proxmox_firewall', args)
    assert again['changed'] is False and pve.writes() == []
    moved = run(pve, 'proxmox_firewall', dict(args, rules=list(reversed(rules))))
    assert moved['changed'] is True
    assert any(op.startswith('move') for op in moved['operations'])
    assert moved['rules'] == list(reversed(again['rules']))
    assert run(pve, 'proxmox_firewall', dict(args, rules=list(reversed(rules))))['changed'] is False
    removed = run(pve, 'proxmox_firewall', dict(args, rules=rules[:1]))
    assert removed['changed'] is True
    assert [op for op in removed['operations'] if op.startswith('delete')]
    assert removed['rules'] == [again['rules'][0]]
    assert run(pve, 'proxmox_firewall', dict(args, rules=rules[:1]), check=True)['changed'] is False


def test_firewall_check_mode_writes_nothing(pve, topology, guest_801):
    rules = topology.guests[801]['firewall']['rules']
    pve.clear_log()
    result = run(pve, 'proxmox_firewall', {'vmid': 801, 'rules': rules + rules[:1]}, check=True)
    assert result['changed'] is True
    assert pve.writes() == []
    assert len(result['diff']['after']['rules']) == len(rules) + 1
    assert result['diff']['after']['rules'][-1] == result['diff']['after']['rules'][0]


@needs_pvesim
def test_failed_clone_task_fails_the_module_then_a_rerun_converges(pve, topology, templates):
    pve.control.set_faults(fail_task={'vmid': 102, 'type': 'vzclone', 'message': 'disk quota exceeded'})
    try:
        result = run(pve, 'proxmox_guest', guest_args(topology, 102))
    finally:
        pve.control.clear_faults()
    assert result.get('failed') is True
    assert 'disk quota exceeded' in result['msg']
    rerun = run(pve, 'proxmox_guest', guest_args(topology, 102))
    assert rerun.get('failed') is not True, rerun
    assert run(pve, 'proxmox_guest', guest_args(topology, 102))['changed'] is False


def test_bad_input_fails_before_any_api_call(pve, topology):
    guest = dict(topology.guests[801])
    del guest['network']
    pve.clear_log()
    result = run(pve, 'proxmox_guest', {'guest': guest})
    assert result.get('failed') is True
    assert result['msg'] == 'guest is missing "network": pass the normalized guest (phoenix_guest host variable)'
    assert pve.requests() == []


def test_proxmox_validation_errors_are_shown_verbatim(pve, topology, templates):
    guest = copy.deepcopy(topology.guests[103])
    guest['clone_from'] = None
    pve.clear_log()
    result = run(pve, 'proxmox_guest', guest_args(topology, 103, guest=guest, storage='no such storage'))
    assert result.get('failed') is True
    assert result['status'] == 400
    assert result['errors'] and result['msg'].startswith('POST nodes/pve/lxc failed (HTTP 400)')
    print(result['msg'])


def test_absent_destroys(pve, topology, templates):
    assert run(pve, 'proxmox_guest', guest_args(topology, 102, state='absent'))['changed'] is True
    assert run(pve, 'proxmox_guest', guest_args(topology, 102, state='absent'))['changed'] is False
    assert '102' not in run(pve, 'proxmox_guest_info', {})['guests']


@needs_pvesim
def test_raw_lxc_lines_written_on_the_hypervisor_reach_the_api(pve, topology, guest_801):
    from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox import PveClient
    conf_dir = '%s/etc/pve/lxc' % pve.state_dir
    args = {'vmid': 801, 'conf_dir': conf_dir, 'lxc_options': ['lxc.apparmor.profile=unconfined'],
            'id_maps': [{'type': 'gid', 'container_id': 33, 'host_id': 33, 'size': 1}]}
    assert run(pve, 'proxmox_lxc_raw', args)['changed'] is True
    assert run(pve, 'proxmox_lxc_raw', args)['changed'] is False
    client = PveClient(pve.url, api_token_id=pve.token_id, api_token_secret=pve.token_secret, ca_file=pve.ca_file)
    config = client.get('nodes/pve/lxc/801/config')
    raw = [tuple(item) for item in config.get('lxc', [])]
    assert ('lxc.apparmor.profile', 'unconfined') in raw
    assert ('lxc.idmap', 'g 33 33 1') in raw
    # the API-managed keys are untouched by the raw lines: proxmox_guest has nothing to do
    assert run(pve, 'proxmox_guest', guest_args(topology, 801))['changed'] is False
