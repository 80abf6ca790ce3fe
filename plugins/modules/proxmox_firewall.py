#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: proxmox_firewall
short_description: A Proxmox guest firewall (options and ordered rules), or cluster aliases and IP sets
version_added: 0.1.0
author:
  - Thinkheads platform team (@thinkheads)
description:
  - O(scope=guest) reconciles one guest's firewall options (enable, input/output policy) and its rules as an
    ordered list. Rules are moved into place, updated in place, inserted, and rules not listed are deleted.
    Unchanged rules are not touched.
  - O(scope=cluster) reconciles cluster-wide firewall aliases and IP sets (with their entries); aliases and
    IP sets not listed are left alone unless O(purge=true).
  - A guest's firewall is one cluster-wide file in Proxmox (C(/etc/pve/firewall/<vmid>.fw)). Any node's path
    reads and writes it, wherever the guest lives, so the guest is read and written on O(node) with no lookup of
    its node. Proxmox does not check that the guest exists (a missing guest reads as an empty firewall, and a
    write would create the file), so the module does.
  - A run that finds nothing to change in a non-empty firewall makes two read calls and no write. Before any
    write, and when the firewall reads back empty, one C(GET /cluster/resources) confirms that a node holds the
    guest (its firewall is then addressed on that node). O(guest_exists=true) skips that lookup.
  - A guest that no node holds is an error before any write, except in check mode, where its firewall is taken
    as empty (the state of a guest that is about to be created). The run then reports the options and rules it
    would set, with a diff from nothing. A guest known not to exist yet (O(guest_exists=false), as
    C(playbooks/create.yml) passes in check mode) costs the lookup alone.
extends_documentation_fragment:
  - thinkheads.phoenix.proxmox
  - thinkheads.phoenix.attributes
options:
  scope:
    description: What to manage.
    type: str
    choices: [guest, cluster]
    default: guest
  vmid:
    description: Guest ID (O(scope=guest)).
    type: int
  kind:
    description: Guest type (O(scope=guest)). V(vm) is accepted for V(qemu).
    type: str
    choices: [lxc, qemu, vm]
    default: lxc
  enabled:
    description: Turn the guest firewall on or off.
    type: bool
  policy_in:
    description: Default policy for incoming traffic.
    type: str
    choices: [ACCEPT, DROP, REJECT]
  policy_out:
    description: Default policy for outgoing traffic.
    type: str
    choices: [ACCEPT, DROP, REJECT]
  rules:
    description:
      - The complete, ordered rule list (the first rule is evaluated first). Normalized Phoenix rules
        (C(phoenix_guest.firewall.rules)) are accepted as they are; C(port) and C(enabled) are read as
        Proxmox's C(dport) and C(enable).
      - Omit to leave rules alone; V([]) deletes every rule.
    type: list
    elements: dict
  aliases:
    description: Cluster aliases (O(scope=cluster)), each C(name), C(cidr) and optional C(comment).
    type: list
    elements: dict
  ipsets:
    description: Cluster IP sets (O(scope=cluster)), each C(name), optional C(comment) and C(entries) (CIDRs).
    type: list
    elements: dict
  purge:
    description: With O(scope=cluster), delete aliases and IP sets that are not listed.
    type: bool
    default: false
  guest_exists:
    description:
      - What the caller already knows about the guest (O(scope=guest)), such as the C(exists) that
        M(thinkheads.phoenix.proxmox_guest) returned.
      - V(true) is trusted (no cluster lookup, also before writes). V(false) (a guest whose creation check mode
        only predicted) has one C(GET /cluster/resources) confirm that no node has it, and the firewall is
        planned from nothing without reading it; should a node have it after all, it is read there as usual.
      - Unset, the module looks the guest up in C(/cluster/resources) when it is about to write or the firewall
        reads back empty.
    type: bool
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
requirements:
  - proxmoxer
  - requests
seealso:
  - module: thinkheads.phoenix.proxmox_guest
'''

EXAMPLES = r'''
- name: Guest firewall from the Phoenix config
  thinkheads.phoenix.proxmox_firewall:
    vmid: "{{ phoenix_guest.id }}"
    kind: "{{ phoenix_guest.type }}"
    enabled: "{{ phoenix_guest.firewall.enabled }}"
    policy_in: DROP
    rules: "{{ phoenix_guest.firewall.rules }}"

- name: Cluster aliases and IP sets
  thinkheads.phoenix.proxmox_firewall:
    scope: cluster
    aliases:
      - {name: traefik, cidr: 10.0.0.12, comment: Traefik}
    ipsets:
      - name: phoenix-guests
        entries: [10.0.0.0/24]

- name: Qdrant's firewall - HTTPS from Traefik only, everything else dropped (diff shows the rule changes)
  thinkheads.phoenix.proxmox_firewall:
    api_url: https://10.0.0.13:8006
    api_token_id: phoenix@pve!ansible
    api_token_secret: "{{ vault_pve_token_secret }}"
    vmid: 953
    kind: lxc
    enabled: true
    policy_in: DROP
    policy_out: ACCEPT
    rules:
      - {type: in, action: ACCEPT, proto: tcp, dport: 6333, source: 10.0.0.12, comment: Traefik to Qdrant}
      - {type: in, action: ACCEPT, macro: SSH, source: 10.0.0.13, comment: SSH from the hypervisor}
      - {type: in, action: ACCEPT, proto: icmp}
  diff: true
  register: phoenix_fw

- name: Firewall drift of a VM, without changing anything
  thinkheads.phoenix.proxmox_firewall:
    vmid: 1002
    kind: qemu
    enabled: true
    rules: "{{ phoenix_guest.firewall.rules }}"
  check_mode: true
  register: phoenix_fw_drift

- name: Firewall of a guest whose creation check mode only predicted (one read, none of its firewall)
  thinkheads.phoenix.proxmox_firewall:
    vmid: "{{ phoenix_guest.id }}"
    kind: "{{ phoenix_guest.type }}"
    node: "{{ phoenix_guest.node | default(omit, true) }}"
    enabled: true
    rules: "{{ phoenix_guest.firewall.rules }}"
    guest_exists: "{{ phoenix_create_guest.exists }}"
  check_mode: true

- name: Cluster aliases exactly as listed (others deleted)
  thinkheads.phoenix.proxmox_firewall:
    scope: cluster
    aliases:
      - {name: hypervisor, cidr: 10.0.0.13, comment: Proxmox host}
      - {name: traefik, cidr: 10.0.0.12, comment: Traefik}
      - {name: gateway, cidr: 10.0.0.153, comment: Nginx gateway}
    purge: true
'''

RETURN = r'''
operations:
  description: The writes made (or planned in check mode), in order, for example C(move 3 -> 0), C(delete 5).
  returned: always
  type: list
  elements: str
  sample: ["move 2 -> 0", "insert 1: in ACCEPT proto=tcp source=10.0.0.12 dport=6333 # Traefik to Qdrant",
           "delete 3: in ACCEPT proto=tcp dport=22"]
rules:
  description: The guest's rules after the run, one readable line each.
  returned: when O(scope=guest) and O(rules) is given
  type: list
  elements: str
  sample: ["in ACCEPT proto=tcp source=10.0.0.12 dport=6333 # Traefik to Qdrant",
           "in ACCEPT source=10.0.0.13 macro=SSH # SSH from the hypervisor", "in ACCEPT proto=icmp"]
api_calls:
  description: Number of Proxmox API calls the run made.
  returned: always
  type: int
  sample: 2
guest_exists:
  description:
    - Whether the guest exists on Proxmox (V(false) only in check mode; a missing guest fails otherwise).
    - V(true) without a lookup when the firewall was unchanged and not empty, or O(guest_exists=true) was given.
  returned: when O(scope=guest)
  type: bool
  sample: true
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox import (
    HAS_PROXMOXER, PveError, proxmox_argument_spec,
)
from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox_firewall import rule_input_errors
from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox_firewall_manager import FirewallManager
from ansible_collections.thinkheads.phoenix.plugins.module_utils.validation import check_options


def main():
    argument_spec = proxmox_argument_spec()
    argument_spec.update(
        scope=dict(type='str', default='guest', choices=['guest', 'cluster']),
        vmid=dict(type='int'),
        kind=dict(type='str', default='lxc', choices=['lxc', 'qemu', 'vm']),
        enabled=dict(type='bool'),
        policy_in=dict(type='str', choices=['ACCEPT', 'DROP', 'REJECT']),
        policy_out=dict(type='str', choices=['ACCEPT', 'DROP', 'REJECT']),
        rules=dict(type='list', elements='dict'),
        aliases=dict(type='list', elements='dict'),
        ipsets=dict(type='list', elements='dict'),
        purge=dict(type='bool', default=False),
        guest_exists=dict(type='bool'),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_one_of=[('api_token_id', 'api_password')])
    check_options(module, 'proxmox_firewall')
    if not HAS_PROXMOXER:
        module.fail_json(msg='the Python library proxmoxer is required on the host running this module')
    errors = rule_input_errors(module.params['rules'])
    if errors:
        module.fail_json(msg='; '.join(errors))
    runner = None
    try:
        runner = FirewallManager(module)
        result = runner.run()
    except PveError as exc:
        wrote = bool(runner and runner.changed and not module.check_mode)
        module.fail_json(msg=exc.message, status=exc.status, errors=exc.errors,
                         operations=runner.ops if runner else [], changed=wrote)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
