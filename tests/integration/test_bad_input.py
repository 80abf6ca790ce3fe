# -*- coding: utf-8 -*-
"""Bad input to the Proxmox modules: a one-line error (fail_json, no traceback) and no API call at all."""

import copy

import pytest

from modrun import run_module

BAD_URLS = ['https://pve.example:80x6', 'https://[::1:8006/api2/json', 'https://[fe80::zz]:8006']


def failed_without_calls(pve, module, args, needle):
    pve.clear_log()
    result = run_module(module, args, env=pve.env)
    assert result.get('failed') is True, result
    msg = result['msg']
    assert '\n' not in msg.strip() and 'Traceback' not in msg and 'MODULE FAILURE' not in msg, msg
    assert needle in msg, msg
    assert pve.requests() == []
    return result


def guest_with(topology, gid=801, **changes):
    guest = copy.deepcopy(topology.guests[gid])
    guest.update(changes)
    return guest


@pytest.mark.parametrize('field, value, needle', [
    ('id', 'eight-o-one', 'guest.id must be an integer'),
    ('id', None, 'guest needs "id"'),
    ('clone_from', 'template', 'guest.clone_from must be an integer'),
    ('cores', 'many', 'guest.cores must be an integer'),
    ('disk_gb', 'big', 'guest.disk_gb must be a number'),
    ('memory_mb', [512], 'guest.memory_mb must be an integer'),
    ('network', 'eth0', 'guest.network must be a dict'),
    ('network', [{'cidr': '10.0.0.9/24'}], 'guest.network must be a dict'),
])
def test_proxmox_guest_rejects_a_malformed_guest(pve, topology, field, value, needle):
    failed_without_calls(pve, 'proxmox_guest', {'guest': guest_with(topology, **{field: value})}, needle)


@pytest.mark.parametrize('url', BAD_URLS)
@pytest.mark.parametrize('module', ['proxmox_guest', 'proxmox_guest_info', 'proxmox_firewall'])
def test_a_broken_api_url_is_one_line(pve, topology, module, url):
    args = {'api_url': url}
    if module == 'proxmox_guest':
        args['guest'] = topology.guests[801]
    if module == 'proxmox_firewall':
        args['vmid'] = 801
    failed_without_calls(pve, module, args, 'api_url')


def test_proxmox_firewall_rejects_a_non_integer_vmid_and_a_rule_that_is_not_a_dict(pve):
    failed_without_calls(pve, 'proxmox_firewall', {'vmid': 'eight'}, 'vmid')
    failed_without_calls(pve, 'proxmox_firewall', {'vmid': 801, 'rules': ['in ACCEPT']}, "option 'rules'")
