# -*- coding: utf-8 -*-
"""proxmox_guest, proxmox_firewall and proxmox_guest_info against a Proxmox API (pvesim by default).

The guests are the project's own topology (etc/): template 900 -> template 901 -> GPU guest 801.
"""

import copy
import os

import pytest

from pve_env import REAL_PVE
from modrun import run_module

OSTEMPLATE = 'local:vztmpl/ubuntu-24.04-standard_24.04-2_amd64.tar.zst'
needs_pvesim = pytest.mark.skipif(REAL_PVE, reason='injects faults through pvesim')


def guest_args(topology, gid, **extra):
    args = {'guest': topology.guests.get(gid), 'storage': 'local-lvm', 'ostemplate': OSTEMPLATE}
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
    assert second['api_calls'] <= 2 + pve.login_calls


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
    assert result['msg'] == ('invalid option: guest needs "network" (pass the normalized guest: the phoenix_guest '
                             'host variable)')
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
    lock_dir = os.path.join(pve.state_dir, 'run', 'lock', 'lxc')
    os.makedirs(lock_dir, exist_ok=True)
    args = {'vmid': 801, 'conf_dir': conf_dir, 'lock_dir': lock_dir,
            'lxc_options': ['lxc.apparmor.profile=unconfined'],
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


def test_create_keeps_what_proxmox_sets_at_creation(pve, topology):
    """PVE gives a new CT swap: 512 (and hostname/memory defaults); a config without swap_mb leaves it alone."""
    guest = copy.deepcopy(topology.guests[900])
    guest.update(id=960, name='swapless', hostname='swapless', is_template=False)
    guest.pop('swap_mb', None)
    guest['network'] = dict(guest['network'], mac=None, cidr='10.0.0.96/24')
    pve.clear_log()
    created = run(pve, 'proxmox_guest', guest_args(topology, 960, guest=guest))
    assert created['changed'] is True and created['created'] is True, created
    assert created['deleted'] == [], created
    writes = pve.writes()
    assert [w['method'] for w in writes] == ['POST'], writes
    if not REAL_PVE:
        assert created['config'].get('swap') in (512, '512')
    pve.clear_log()
    check = run(pve, 'proxmox_guest', guest_args(topology, 960, guest=guest), check=True)
    assert check['changed'] is False and pve.writes() == []
    again = run(pve, 'proxmox_guest', guest_args(topology, 960, guest=guest))
    assert again['changed'] is False and again['deleted'] == [] and pve.writes() == []
    # managed once the config says so
    managed = run(pve, 'proxmox_guest', guest_args(topology, 960, guest=dict(guest, swap_mb=0)))
    assert managed['changed'] is True and managed['changes'] == {'swap': 0}
    assert run(pve, 'proxmox_guest', guest_args(topology, 960, guest=guest, state='absent'))['changed'] is True


def test_firewall_rules_in_proxmox_lax_form_converge(pve, topology, guest_801):
    """Proxmox stores the macro by its preferred name (ssh -> SSH), trims comments, adds ipversion."""
    rules = [{'type': 'in', 'action': 'accept', 'macro': 'ssh', 'source': '10.0.0.0/24',
              'comment': '  ssh from the LAN  '},
             {'type': 'in', 'action': 'ACCEPT', 'proto': 'tcp', 'dport': '443', 'enabled': True}]
    args = {'vmid': 801, 'kind': 'lxc', 'rules': rules}
    first = run(pve, 'proxmox_firewall', args)
    assert first['changed'] is True, first
    assert first['diff']['after']['rules'][0] == 'in ACCEPT source=10.0.0.0/24 macro=ssh # ssh from the LAN'
    pve.clear_log()
    check = run(pve, 'proxmox_firewall', args, check=True)
    assert check['changed'] is False and check['operations'] == [], check
    again = run(pve, 'proxmox_firewall', args)
    assert again['changed'] is False and again['operations'] == [], again
    assert again['rules'][0] == 'in ACCEPT source=10.0.0.0/24 macro=SSH # ssh from the LAN'
    assert pve.writes() == []


def test_firewall_unknown_rule_keys_fail_before_any_call(pve, guest_801):
    pve.clear_log()
    result = run(pve, 'proxmox_firewall', {'vmid': 801, 'rules': [
        {'type': 'in', 'action': 'ACCEPT', 'proto': 'tcp', 'dport': '22', 'pos': 3}]})
    assert result.get('failed') is True
    assert result['msg'] == ('rules[0]: unknown key "pos" (known: action, comment, dest, dport, enable, enabled, '
                             'icmp-type, icmp_type, iface, log, macro, port, proto, source, sport, type)')
    assert pve.requests() == []


def _lxc_template_guest(topology, vmid):
    guest = copy.deepcopy(topology.guests[900])
    guest.update(id=vmid, name='tmpl%d' % vmid, hostname='tmpl%d' % vmid, is_template=True)
    guest['network'] = dict(guest['network'], mac=None, cidr='10.0.0.%d/24' % (vmid - 900))
    return guest


def test_lxc_template_conversion_is_waited_for(pve, topology):
    """POST .../lxc/{vmid}/template answers null (no UPID): the module waits until the config shows template: 1."""
    guest = _lxc_template_guest(topology, 961)
    check = run(pve, 'proxmox_guest', guest_args(topology, 961, guest=guest), check=True)
    assert check['changed'] is True and check['changes']['template'] == 1 and check['exists'] is False
    result = run(pve, 'proxmox_guest', guest_args(topology, 961, guest=guest))
    assert result.get('failed') is not True, result
    assert result['changed'] is True and result['changes']['template'] == 1
    info = run(pve, 'proxmox_guest_info', {})
    assert info['guests']['961']['template'] is True           # converted when the module returned
    pve.clear_log()
    again = run(pve, 'proxmox_guest', guest_args(topology, 961, guest=guest))
    assert again['changed'] is False and pve.writes() == []
    run(pve, 'proxmox_guest', guest_args(topology, 961, guest=guest, state='absent'))


@needs_pvesim
def test_lxc_template_conversion_that_never_finishes_fails_clearly(pve, topology):
    guest = _lxc_template_guest(topology, 962)
    pve.control.set_faults(fail_task={'vmid': 962, 'type': 'vztemplate', 'message': 'rename failed'})
    try:
        result = run(pve, 'proxmox_guest', guest_args(topology, 962, guest=guest, task_timeout=2))
    finally:
        pve.control.clear_faults()
    assert result.get('failed') is True
    assert result['msg'] == ('lxc 962 is not a template 2 s after POST nodes/pve/lxc/962/template (Proxmox answers '
                             'it with no task ID and converts in the background): see the vztemplate task in the '
                             "node's task log")
    run(pve, 'proxmox_guest', guest_args(topology, 962, guest=guest, state='absent'))


def test_a_guest_phoenix_did_not_make_is_left_alone_unless_adopted(pve, topology):
    """Phoenix tags what it creates ('phoenix'); an existing guest without the tag is neither reconciled nor
    destroyed unless adopt is asked for."""
    from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox import PveClient
    client = PveClient(pve.url, api_token_id=pve.token_id, api_token_secret=pve.token_secret, ca_file=pve.ca_file)
    client.wait_task(client.post('nodes/pve/lxc', vmid=963, ostemplate=OSTEMPLATE, rootfs='local-lvm:4',
                                 hostname='someone-elses', tags='prod'))
    guest = copy.deepcopy(topology.guests[900])
    guest.update(id=963, name='adopted', hostname='adopted', is_template=False)
    guest['network'] = dict(guest['network'], mac=None, cidr='10.0.0.63/24')
    expected = ("lxc 963 ('someone-elses') exists on node pve but Phoenix did not make it (its tags lack 'phoenix'): "
                'refusing to %s it. To take it over, set adopt: true (playbooks: -e phoenix_adopt=true); it is then '
                "tagged 'phoenix'")
    for state, verb, check in (('present', 'reconcile', False), ('present', 'reconcile', True),
                               ('absent', 'destroy', False), ('absent', 'destroy', True)):
        pve.clear_log()
        result = run(pve, 'proxmox_guest', guest_args(topology, 963, guest=guest, state=state), check=check)
        assert result.get('failed') is True, result
        assert result['msg'] == expected % verb
        assert pve.writes() == []
    adopted = run(pve, 'proxmox_guest', guest_args(topology, 963, guest=guest, adopt=True))
    assert adopted['changed'] is True and 'phoenix' in adopted['config']['tags'].split(';')
    pve.clear_log()
    again = run(pve, 'proxmox_guest', guest_args(topology, 963, guest=guest))
    assert again['changed'] is False and pve.writes() == []
    assert run(pve, 'proxmox_guest', guest_args(topology, 963, guest=guest, state='absent'))['changed'] is True


def test_restarted_reboots_a_running_guest_and_starts_a_stopped_one(pve, topology, guest_801):
    # check mode: the reboot is predicted, nothing is written
    pve.clear_log()
    predicted = run(pve, 'proxmox_guest', guest_args(topology, 801, state='restarted'), check=True)
    assert predicted['changed'] is True and predicted['power'] == 'restarted'
    assert pve.writes() == []
    # a running guest is rebooted (one write: status/reboot, waited for), and stays running
    result = run(pve, 'proxmox_guest', guest_args(topology, 801, state='restarted'))
    assert result['changed'] is True and result['power'] == 'restarted', result
    assert [w['path'] for w in pve.writes()] == ['/nodes/pve/lxc/801/status/reboot']
    assert run(pve, 'proxmox_guest', guest_args(topology, 801, state='started'))['changed'] is False
    # a stopped guest is started
    run(pve, 'proxmox_guest', guest_args(topology, 801, state='stopped'))
    started = run(pve, 'proxmox_guest', guest_args(topology, 801, state='restarted'))
    assert started['changed'] is True and started['power'] == 'started'
    assert run(pve, 'proxmox_guest', guest_args(topology, 801, state='started'))['changed'] is False
    # a bad state is refused before any call
    pve.clear_log()
    bad = run(pve, 'proxmox_guest', guest_args(topology, 801, state='rebooted'))
    assert bad.get('failed') and 'state' in bad['msg'] and pve.requests() == []
