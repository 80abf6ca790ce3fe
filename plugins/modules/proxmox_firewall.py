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
    HAS_PROXMOXER, PveClient, PveError, proxmox_argument_spec,
)
from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox_firewall import (
    adopt_macro_spelling, api_rule, current_rule, describe, desired_options, plan_options, plan_rules,
    rule_input_errors, update_params,
)
from ansible_collections.thinkheads.phoenix.plugins.module_utils.validation import check_options


class FirewallRunner:

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.client = PveClient(**dict((k, module.params[k]) for k in proxmox_argument_spec()))
        self.ops = []
        self.changed = False
        self.diff = {'before': {}, 'after': {}}

    def write(self, method, path, **params):
        self.changed = True
        if not self.module.check_mode:
            return getattr(self.client, method)(path, **params)
        return None

    # -- guest -------------------------------------------------------------------------------------

    def guest(self):
        kind = 'qemu' if self.params['kind'] in ('qemu', 'vm') else 'lxc'
        if self.params['vmid'] is None:
            self.module.fail_json(msg='vmid is required with scope=guest')
        vmid = self.params['vmid']
        # A guest's firewall is one cluster-wide file (/etc/pve/firewall/<vmid>.fw): every node's path reads and
        # writes it, wherever the guest lives. Proxmox does not check that the guest exists: a missing one reads
        # as an empty firewall, and a write would create the file. Existence is therefore checked here.
        desired_opts = {'enable': self.params['enabled'], 'policy_in': self.params['policy_in'],
                        'policy_out': self.params['policy_out']}
        hint = self.params['guest_exists']
        exists = True if hint else None
        if hint is False:
            # known to be absent (its creation only predicted): the one cluster-wide lookup confirms it
            exists = self.exists(vmid, kind)
        if exists is False:
            current_opts, raw = {}, []
        else:
            base = self.base(kind, vmid)
            current_opts = self.client.get(base + '/options') or {}
            raw = []
            if self.params['rules'] is not None:
                raw = sorted(self.client.get(base + '/rules') or [], key=lambda r: int(r.get('pos', 0)))
        opt_changes = plan_options(desired_opts, current_opts)
        current = [current_rule(r) for r in raw]
        desired = None
        rule_ops = []
        if self.params['rules'] is not None:
            desired = adopt_macro_spelling([api_rule(r) for r in self.params['rules']], current)
            rule_ops = plan_rules(desired, current)
        empty = not raw and not [k for k in current_opts if k != 'digest']
        if exists is None and (opt_changes or rule_ops or empty):
            # about to write, or nothing read back (what a missing guest reads as): one cluster-wide lookup
            exists = self.exists(vmid, kind)
        if exists is False:
            self.missing(vmid, kind)
        base = self.base(kind, vmid)
        result = {'guest_exists': exists is not False}
        if result['guest_exists']:
            self.diff['before']['options'] = dict((k, current_opts.get(k)) for k in desired_opts
                                                  if desired_opts[k] is not None)
            self.diff['after']['options'] = dict(self.diff['before']['options'], **opt_changes)
        else:
            self.diff['before']['options'] = {}
            self.diff['after']['options'] = desired_options(desired_opts)
        if opt_changes:
            self.ops.append('options %s' % ', '.join('%s=%s' % kv for kv in sorted(opt_changes.items())))
            params = dict(opt_changes)
            if current_opts.get('digest'):
                params['digest'] = current_opts['digest']
            self.write('put', base + '/options', **params)
        if desired is not None:
            self.diff['before']['rules'] = [describe(r) for r in current]
            self.diff['after']['rules'] = [describe(r) for r in desired]
            work = list(current)
            for op in rule_ops:
                self.apply_rule_op(base, op, work)
            result['rules'] = [describe(r) for r in desired]
        return result

    def base(self, kind, vmid):
        """The firewall's path, on the node that holds the guest when a lookup found it (any node answers)."""
        return 'nodes/%s/%s/%d/firewall' % (self.client.node, kind, vmid)

    def exists(self, vmid, kind):
        """Whether /cluster/resources lists the guest (of this kind) on some node; that node is then used."""
        found = self.client.locate(vmid)
        if found and found.get('node') and found.get('type') == kind:
            self.client.node = str(found['node'])
            return True
        return False

    def missing(self, vmid, kind):
        """A guest no node has: an error before any write, except in check mode (its creation is only predicted)."""
        if self.module.check_mode:
            return
        self.module.fail_json(
            msg='guest %d (%s) does not exist on any node of the cluster: create it first '
                '(thinkheads.phoenix.proxmox_guest, playbooks/create.yml), then set its firewall' % (vmid, kind),
            vmid=vmid, guest_exists=False, operations=[], changed=False)

    def apply_rule_op(self, base, op, work):
        if op[0] == 'move':
            self.ops.append('move %d -> %d' % (op[1], op[2]))
            self.write('put', '%s/rules/%d' % (base, op[1]), moveto=op[2])
            work.insert(op[2], work.pop(op[1]))
        elif op[0] == 'update':
            self.ops.append('update %d: %s' % (op[1], describe(op[2])))
            self.write('put', '%s/rules/%d' % (base, op[1]), **update_params(op[2], work[op[1]]))
            work[op[1]] = op[2]
        elif op[0] == 'insert':
            # Proxmox adds a new rule at the top whatever 'pos' says; a move puts it in place. 'moveto' counts
            # in the list before the move, where the new rule still sits at 0: index i is reached with i + 1.
            self.ops.append('insert %d: %s' % (op[1], describe(op[2])))
            self.write('post', base + '/rules', **op[2])
            if op[1] > 0:
                self.write('put', '%s/rules/0' % base, moveto=op[1] + 1)
            work.insert(op[1], op[2])
        else:
            self.ops.append('delete %d: %s' % (op[1], describe(work[op[1]])))
            self.write('delete', '%s/rules/%d' % (base, op[1]))
            work.pop(op[1])

    # -- cluster -----------------------------------------------------------------------------------

    def cluster(self):
        base = 'cluster/firewall'
        if self.params['aliases'] is not None:
            current = dict((a['name'].lower(), a) for a in self.client.get(base + '/aliases') or [])
            self.diff['before']['aliases'] = sorted('%s=%s' % (a['name'], a.get('cidr')) for a in current.values())
            wanted = set()
            for alias in self.params['aliases']:
                name, cidr = alias.get('name'), alias.get('cidr')
                if not name or not cidr:
                    self.module.fail_json(msg='every alias needs "name" and "cidr"')
                wanted.add(name.lower())
                have = current.get(name.lower())
                comment = alias.get('comment') or ''
                if have is None:
                    self.ops.append('alias add %s=%s' % (name, cidr))
                    self.write('post', base + '/aliases', name=name, cidr=cidr, comment=comment or None)
                elif have.get('cidr') != cidr or (have.get('comment') or '') != comment:
                    self.ops.append('alias update %s=%s' % (name, cidr))
                    self.write('put', '%s/aliases/%s' % (base, name), cidr=cidr, comment=comment)
            if self.params['purge']:
                for key, have in sorted(current.items()):
                    if key not in wanted:
                        self.ops.append('alias delete %s' % have['name'])
                        self.write('delete', '%s/aliases/%s' % (base, have['name']))
            self.diff['after']['aliases'] = sorted('%s=%s' % (a['name'], a['cidr']) for a in self.params['aliases'])
        if self.params['ipsets'] is not None:
            current = dict((s['name'].lower(), s) for s in self.client.get(base + '/ipset') or [])
            wanted = set()
            for ipset in self.params['ipsets']:
                name = ipset.get('name')
                if not name:
                    self.module.fail_json(msg='every ipset needs "name"')
                wanted.add(name.lower())
                entries = [str(e) for e in ipset.get('entries') or []]
                if name.lower() not in current:
                    self.ops.append('ipset add %s' % name)
                    self.write('post', base + '/ipset', name=name, comment=ipset.get('comment') or None)
                    have_entries = []
                else:
                    have_entries = [e['cidr'] for e in self.client.get('%s/ipset/%s' % (base, name)) or []]
                for cidr in entries:
                    if cidr not in have_entries:
                        self.ops.append('ipset %s add %s' % (name, cidr))
                        self.write('post', '%s/ipset/%s' % (base, name), cidr=cidr)
                for cidr in have_entries:
                    if cidr not in entries:
                        self.ops.append('ipset %s delete %s' % (name, cidr))
                        self.write('delete', '%s/ipset/%s/%s' % (base, name, cidr.replace('/', '%2F')))
            if self.params['purge']:
                for key, have in sorted(current.items()):
                    if key not in wanted:
                        for entry in self.client.get('%s/ipset/%s' % (base, have['name'])) or []:
                            cidr = entry['cidr'].replace('/', '%2F')
                            self.write('delete', '%s/ipset/%s/%s' % (base, have['name'], cidr))
                        self.ops.append('ipset delete %s' % have['name'])
                        self.write('delete', '%s/ipset/%s' % (base, have['name']))
        return {}

    def run(self):
        extra = self.guest() if self.params['scope'] == 'guest' else self.cluster()
        result = dict(changed=self.changed, operations=self.ops, api_calls=len(self.client.calls), **extra)
        if not extra.get('guest_exists', True):
            result['msg'] = ('guest %d does not exist yet (check mode): its firewall would be set from nothing'
                             % self.params['vmid'])
        result['diff'] = self.diff
        return result


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
        runner = FirewallRunner(module)
        result = runner.run()
    except PveError as exc:
        wrote = bool(runner and runner.changed and not module.check_mode)
        module.fail_json(msg=exc.message, status=exc.status, errors=exc.errors,
                         operations=runner.ops if runner else [], changed=wrote)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
