# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""FirewallManager: the proxmox_firewall module's API work. It reads the current firewall, plans with the pure
functions of module_utils/proxmox_firewall.py and writes the plan (or, in check mode, only reports it)."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox import PveClient, proxmox_argument_spec
from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox_firewall import (
    adopt_macro_spelling, api_rule, current_rule, describe, desired_options, plan_options, plan_rules, update_params,
)


class FirewallManager:
    """One guest's firewall (options and rules) or the cluster's aliases and IP sets, planned and written."""

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
