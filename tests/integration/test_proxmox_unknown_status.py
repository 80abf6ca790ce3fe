# -*- coding: utf-8 -*-
"""/cluster/resources shows a just-created guest with status 'unknown' until pvestatd reports it (pve-manager
PVE/API2Tools.pm extract_vm_stats). The collection never takes that for 'stopped': proxmox_guest_info reads such a
guest's status/current instead. pvesim's control fault unknown_status makes a guest show so.
"""

import pytest

from modrun import run_module
from phoenix_testlib import wait_equal
from pve_env import REAL_PVE

pytestmark = pytest.mark.skipif(REAL_PVE, reason='injects the unknown status through pvesim')
OSTEMPLATE = 'local:vztmpl/ubuntu-24.04-standard_24.04-2_amd64.tar.zst'


def client_for(pve):
    from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox import PveClient
    return PveClient(api_url=pve.url, api_token_id=pve.token_id, api_token_secret=pve.token_secret,
                     ca_file=pve.ca_file)


def test_guest_info_reads_status_current_for_unknown_guests(pve):
    client = client_for(pve)
    client.wait_task(client.post('nodes/pve/lxc', vmid=680, hostname='web', ostemplate=OSTEMPLATE,
                                 rootfs='local-lvm:4'), poll=0.05)
    client.wait_task(client.post('nodes/pve/lxc/680/status/start'), poll=0.05)
    client.wait_task(client.post('nodes/pve/lxc', vmid=681, ostemplate=OSTEMPLATE, rootfs='local-lvm:4'), poll=0.05)
    client.post('nodes/pve/lxc/681/template')
    # Proxmox answers the LXC conversion with no task ID and converts in the background: wait until it has.
    wait_equal(lambda: client.get('nodes/pve/lxc/681/config').get('template'), 1, 'template: 1 in 681.conf')
    pve.control.set_faults(unknown_status=[{'vmid': 680}, {'vmid': 681}])
    try:
        raw = dict((r['vmid'], r) for r in client.get('cluster/resources', type='vm'))
        assert raw[680]['status'] == 'unknown' and 'template' not in raw[681]
        result = run_module('proxmox_guest_info', {}, env=pve.env)
    finally:
        pve.control.clear_faults()
    assert result['guests']['680'] == {'type': 'lxc', 'node': 'pve', 'status': 'running', 'template': False,
                                       'name': 'web'}
    assert result['guests']['681']['template'] is True
    assert result['guests']['681']['status'] == 'stopped'


def test_find_guest_still_finds_an_unknown_guest(pve):
    client = client_for(pve)
    client.wait_task(client.post('nodes/pve/lxc', vmid=682, ostemplate=OSTEMPLATE, rootfs='local-lvm:4'), poll=0.05)
    pve.control.set_faults(unknown_status={'vmid': 682})
    try:
        assert client.find_guest(682) == ('lxc', 'pve')
        assert [g['status'] for g in client.guest_resources() if g['vmid'] == 682] == ['stopped']
    finally:
        pve.control.clear_faults()
