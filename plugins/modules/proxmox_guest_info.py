#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: proxmox_guest_info
short_description: The guests that exist on a Proxmox cluster
version_added: 0.1.0
author:
  - Thinkheads platform team (@thinkheads)
description:
  - One read of C(/cluster/resources) listing every LXC and VM with its type, node, status and template flag.
  - A guest listed with status C(unknown) (just created, Proxmox has no statistics for it yet) is read from its
    C(status/current) instead, so its status is never taken from C(unknown).
  - Used by C(playbooks/create.yml) to check, before anything is changed, that the dependencies and clone
    sources of the guests being created exist.
extends_documentation_fragment:
  - thinkheads.phoenix.proxmox
  - thinkheads.phoenix.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
requirements:
  - proxmoxer
  - requests
'''

EXAMPLES = r'''
- name: Existing guests
  thinkheads.phoenix.proxmox_guest_info:
  register: pve_guests

- name: Guests of a cluster, asked through one node with an API token
  thinkheads.phoenix.proxmox_guest_info:
    api_url: https://pve1.example.com:8006
    api_token_id: phoenix@pve!ansible
    api_token_secret: "{{ vault_pve_token_secret }}"
    ca_file: /etc/ssl/pve-root.pem
  register: pve_guests

- name: Stop when guest 801 is missing
  thinkheads.phoenix.proxmox_guest_info:
  register: pve_guests
  failed_when: 801 not in pve_guests.ids
'''

RETURN = r'''
guests:
  description: Existing guests keyed by ID (as a string).
  returned: always
  type: dict
  sample: {"801": {"type": "lxc", "node": "pve", "status": "running", "template": false, "name": "granite-embedding"}}
ids:
  description: Existing guest IDs.
  returned: always
  type: list
  elements: int
  sample: [101, 102, 103, 801, 900, 901, 1001, 1002, 9000]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox import (
    HAS_PROXMOXER, PveClient, PveError, proxmox_argument_spec,
)
from ansible_collections.thinkheads.phoenix.plugins.module_utils.validation import check_options


def main():
    module = AnsibleModule(argument_spec=proxmox_argument_spec(), supports_check_mode=True,
                           required_one_of=[('api_token_id', 'api_password')])
    check_options(module, 'proxmox_guest_info')
    if not HAS_PROXMOXER:
        module.fail_json(msg='the Python library proxmoxer is required on the host running this module')
    try:
        client = PveClient(**module.params)
        resources = client.guest_resources()
    except PveError as exc:
        module.fail_json(msg=exc.message, status=exc.status, errors=exc.errors)
    guests = {}
    for res in resources:
        if res.get('vmid') is None:
            continue
        guests[str(res['vmid'])] = {
            'type': res.get('type'), 'node': res.get('node'), 'status': res.get('status'),
            'template': str(res.get('template', 0)) == '1', 'name': res.get('name'),
        }
    module.exit_json(changed=False, guests=guests, ids=sorted(int(k) for k in guests))


if __name__ == '__main__':
    main()
