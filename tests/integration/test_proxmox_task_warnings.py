# -*- coding: utf-8 -*-
"""A Proxmox task that logged warnings ends with exit status 'WARNINGS: n' (pve-common RESTEnvironment.pm): it
succeeded. The client's wait_task returns it with the 'WARN: ...' lines, and proxmox_guest shows them as module
warnings instead of failing. pvesim's control fault warn_task makes the next matching task end so.
"""

import pytest

from modrun import run_module
from pve_env import REAL_PVE

pytestmark = pytest.mark.skipif(REAL_PVE, reason='injects task warnings through pvesim')
OSTEMPLATE = 'local:vztmpl/ubuntu-24.04-standard_24.04-2_amd64.tar.zst'


def client_for(pve):
    from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox import PveClient
    return PveClient(api_url=pve.url, api_token_id=pve.token_id, api_token_secret=pve.token_secret,
                     ca_file=pve.ca_file)


def test_wait_task_takes_warnings_as_success_and_notes_them(pve):
    pve.control.set_faults(warn_task={'vmid': 650, 'type': 'vzcreate', 'times': 1,
                                      'warnings': ['storage local-lvm is 91% full', 'template is outdated']})
    client = client_for(pve)
    upid = client.post('nodes/pve/lxc', vmid=650, ostemplate=OSTEMPLATE, rootfs='local-lvm:4')
    status = client.wait_task(upid, poll=0.05)
    assert status['exitstatus'] == 'WARNINGS: 2'
    assert status['warnings'] == ['storage local-lvm is 91% full', 'template is outdated']
    assert client.notes == ['task vzcreate 650 ended with WARNINGS: 2: storage local-lvm is 91% full; '
                            'template is outdated']
    # a plain OK task adds no note
    client.wait_task(client.post('nodes/pve/lxc/650/status/start'), poll=0.05)
    assert len(client.notes) == 1


def test_proxmox_guest_shows_task_warnings_as_module_warnings(pve, topology):
    pve.control.set_faults(warn_task={'vmid': 900, 'type': 'vzcreate', 'times': 1, 'warnings': ['disk is thin']})
    try:
        result = run_module('proxmox_guest', {'guest': topology.guests.get(900), 'storage': 'local-lvm',
                                              'ostemplate': OSTEMPLATE}, env=pve.env)
    finally:
        pve.control.clear_faults()
    assert result.get('failed') is not True, result
    assert result['created'] is True and result['changed'] is True
    assert 'task vzcreate 900 ended with WARNINGS: 1: disk is thin' in result.get('warnings', []), result
