# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Proxmox firewall rules as an ordered list: canonical form and the edit plan between two lists.

Pure functions; the proxmox_firewall module applies the plan through the PVE client.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

RULE_FIELDS = ('type', 'action', 'enable', 'proto', 'dport', 'sport', 'source', 'dest', 'iface', 'macro', 'log',
               'icmp-type', 'comment')


def api_rule(rule):
    """A normalized Phoenix rule (see the config model) -> Proxmox API fields, canonical strings."""
    out = {}
    for key in RULE_FIELDS:
        if key == 'enable':
            value = rule.get('enable', rule.get('enabled', True))
            out['enable'] = '1' if str(value).lower() in ('1', 'true', 'yes', 'on') else '0'
            continue
        value = rule.get(key, rule.get('icmp_type') if key == 'icmp-type' else None)
        if value is None and key == 'dport':
            value = rule.get('port')
        if key == 'comment' and value is not None:
            value = str(value).strip()      # Proxmox reads a rule's comment back trimmed (parse_fw_rule)
        if value in (None, ''):
            continue
        out[key] = str(value)
    if out.get('type') != 'group' and 'action' in out:
        out['action'] = out['action'].upper()
    return out


# Keys a rule given to the module may have: Proxmox's rule fields plus the Phoenix spellings.
RULE_INPUT_KEYS = tuple(sorted(RULE_FIELDS + ('enabled', 'port', 'icmp_type')))


def rule_input_errors(rules):
    """One message per rule with an unknown key, or with no type/action."""
    errors = []
    for index, rule in enumerate(rules or []):
        if not isinstance(rule, dict):
            errors.append('rules[%d] must be a dict, got %s' % (index, type(rule).__name__))
            continue
        unknown = sorted(str(k) for k in rule if k not in RULE_INPUT_KEYS)
        if unknown:
            errors.append('rules[%d]: unknown key%s %s (known: %s)' % (
                index, 's' if len(unknown) > 1 else '', ', '.join('"%s"' % k for k in unknown),
                ', '.join(RULE_INPUT_KEYS)))
        elif not rule.get('type') or not rule.get('action'):
            errors.append('rules[%d] needs "type" and "action"' % index)
    return errors


def adopt_macro_spelling(desired, current):
    """Desired rules with each macro spelled as the current rules spell it.

    Proxmox looks macros up case-insensitively and stores the preferred name (``ssh`` -> ``SSH``).
    """
    spelling = dict((r['macro'].lower(), r['macro']) for r in current if r.get('macro'))
    out = []
    for rule in desired:
        if rule.get('macro') and rule['macro'].lower() in spelling:
            rule = dict(rule, macro=spelling[rule['macro'].lower()])
        out.append(rule)
    return out


def current_rule(rule):
    """A rule as GET .../firewall/rules returns it -> the same canonical form."""
    out = {}
    for key in RULE_FIELDS:
        value = rule.get(key)
        if key == 'enable':
            out['enable'] = '1' if str(value if value is not None else '0') in ('1', 'true') else '0'
            continue
        if value in (None, ''):
            continue
        out[key] = str(value)
    return out


def describe(rule):
    """One readable line per rule, for diffs."""
    parts = ['%s %s' % (rule.get('type', '?'), rule.get('action', '?'))]
    for key in ('proto', 'source', 'dest', 'sport', 'dport', 'iface', 'macro', 'log', 'icmp-type'):
        if key in rule:
            parts.append('%s=%s' % (key, rule[key]))
    if rule.get('enable') == '0':
        parts.append('disabled')
    if rule.get('comment'):
        parts.append('# %s' % rule['comment'])
    return ' '.join(parts)


def plan_rules(desired, current):
    """Operations turning ``current`` into ``desired`` (both canonical lists, in order).

    Returns a list of ('update', pos, rule) / ('insert', pos, rule) / ('move', from, to) / ('delete', pos)
    applied one after another (positions refer to the list as it is at that step). Moves only go upwards,
    where Proxmox's ``moveto`` semantics are unambiguous.
    """
    work = list(current)
    ops = []
    for index, want in enumerate(desired):
        if index < len(work) and work[index] == want:
            continue
        later = next((j for j in range(index + 1, len(work)) if work[j] == want), None)
        if later is not None:
            ops.append(('move', later, index))
            work.insert(index, work.pop(later))
            continue
        if index < len(work) and work[index] not in desired[index + 1:]:
            # The rule here is not wanted anywhere below: rewrite it in place.
            ops.append(('update', index, want))
            work[index] = want
            continue
        ops.append(('insert', index, want))
        work.insert(index, want)
    for pos in range(len(work) - 1, len(desired) - 1, -1):
        ops.append(('delete', pos))
        work.pop(pos)
    return ops


def update_params(want, have):
    """PUT parameters to turn rule ``have`` into ``want`` (values to set, fields to delete)."""
    params = dict((k, v) for k, v in want.items() if have.get(k) != v)
    removed = [k for k in have if k not in want and k in RULE_FIELDS and k not in ('type', 'action', 'enable')]
    if removed:
        params['delete'] = ','.join(sorted(removed))
    return params


BOOLEAN_OPTIONS = ('enable', 'dhcp', 'ndp', 'ipfilter', 'macfilter', 'radv')


def option_text(key, value):
    """A desired firewall option as Proxmox stores it ('1'/'0' for switches, upper-case policies)."""
    if key in BOOLEAN_OPTIONS:
        return '1' if str(value).lower() in ('1', 'true', 'yes', 'on') else '0'
    return str(value).upper() if key.startswith('policy_') else str(value)


def desired_options(desired):
    """The options a firewall gets from nothing (a guest about to be created): every value that is set."""
    return dict((key, option_text(key, value)) for key, value in desired.items() if value is not None)


def plan_options(desired, current):
    """Firewall options to PUT (only those that differ)."""
    changes = {}
    for key, value in desired.items():
        if value is None:
            continue
        have = current.get(key)
        if key in BOOLEAN_OPTIONS:
            want_text = option_text(key, value)
            have_text = '1' if str(have).lower() in ('1', 'true') else '0'
        else:
            want_text = option_text(key, value)
            have_text = str(have).upper() if (key.startswith('policy_') and have is not None) else (
                None if have is None else str(have))
            if have is None and key == 'policy_in':
                have_text = 'DROP'
            if have is None and key == 'policy_out':
                have_text = 'ACCEPT'
        if want_text != have_text:
            changes[key] = want_text
    return changes
