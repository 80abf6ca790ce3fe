# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The platform plan: what a check-mode run would change, as rows of one table (host, kind, change, before, after).

``plan_rows`` turns one changed task result into rows, from what the module reports: ``diff`` (a dict of
before/after dicts, before/after texts, or a list of them), else ``changes``; ``render_table`` prints the rows.
The callback plugin thinkheads.phoenix.plan collects them over a run (controller side only).
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import difflib
import json
import re

import yaml

# module -> kind of change
KIND_BY_MODULE = {
    'proxmox_guest': 'guest', 'proxmox_lxc_raw': 'guest', 'proxmox_image': 'image',
    'proxmox_firewall': 'firewall', 'portainer_stack': 'stack', 'portainer_bootstrap': 'portainer',
    'step_ca_certificate': 'certificate', 'step_ca_bootstrap': 'certificate', 'step_ca_provisioner': 'certificate',
}
# role -> kind of change, for the role's template, copy, file, ... tasks
KIND_BY_ROLE = {
    'dns': 'dns', 'traefik': 'route', 'swarm_edge': 'route', 'nginx_gateway': 'gateway',
    'step_ca': 'certificate', 'step_certificates': 'certificate', 'trusted_ca': 'certificate',
    'portainer': 'portainer', 'swarm': 'swarm', 'docker': 'docker', 'nvidia': 'nvidia', 'vllm': 'vllm',
}
ABSENT = '-'
# the headers of portainer_stack's two diffs: 'stack NAME compose (deployed)', 'stack NAME env (wanted, ...)'
STACK_HEADER = re.compile(r'^stack (\S+) (compose|env)\b')
MAX_LINES = 8          # changed lines shown per text diff; the rest is one row


def short_name(name):
    return str(name or '').rsplit('.', 1)[-1]


def kind_of(action, role=None):
    """The kind of a change made by module ``action`` (FQCN or short) in ``role`` (name or None)."""
    module = short_name(action)
    if module in KIND_BY_MODULE:
        return KIND_BY_MODULE[module]
    if role and short_name(role) in KIND_BY_ROLE:
        return KIND_BY_ROLE[short_name(role)]
    return short_name(role) if role else module


def show(value):
    """A value as one line of text ('-' when absent)."""
    if value is None:
        return ABSENT
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, separators=(',', ':'))
    return str(value)


def _seq_rows(what, before, after):
    """Rows for two sequences of lines/items: replaced ones paired, removed ones to '-', added ones from '-'."""
    rows = []
    matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == 'equal':
            continue
        olds, news = before[i1:i2], after[j1:j2]
        for index in range(max(len(olds), len(news))):
            old = olds[index] if index < len(olds) else None
            new = news[index] if index < len(news) else None
            line = (j1 + index + 1) if new is not None else (i1 + index + 1)
            rows.append(('%s[%d]' % (what, line),) + _focus(show(old), show(new)))
    return rows


def _focus(old, new):
    """A changed line with the words both sides share in the middle cut out (the first two kept): the cells then
    show what differs, e.g. 'in ACCEPT ... dport=9000 # API' -> 'in ACCEPT ... dport=9443 # API'."""
    if ABSENT in (old, new) or len(old) + len(new) <= 60:
        return (old, new)
    was, will = old.split(), new.split()       # indentation is no shared word
    same = 0
    while same < min(len(was), len(will)) and was[same] == will[same]:
        same += 1
    if same <= 3:
        return (old, new)
    return (' '.join(was[:2] + ['...'] + was[same:]), ' '.join(will[:2] + ['...'] + will[same:]))


def _text_rows(what, before, after):
    rows = _seq_rows(what, str(before or '').splitlines(), str(after or '').splitlines())
    if len(rows) > MAX_LINES:
        rows = rows[:MAX_LINES] + [('%s (+%d more lines)' % (what, len(rows) - MAX_LINES), '', '')]
    return rows


def _flatten(value, prefix=''):
    """{'options': {'enable': '1'}} -> {'options.enable': '1'}; lists stay whole."""
    if not isinstance(value, dict):
        return {prefix: value} if prefix else {}
    out = {}
    for key, sub in value.items():
        name = '%s.%s' % (prefix, key) if prefix else str(key)
        if isinstance(sub, dict) and sub:
            out.update(_flatten(sub, name))
        else:
            out[name] = sub
    return out


def _dict_rows(before, after, prefix=''):
    rows = []
    old, new = _flatten(before or {}), _flatten(after or {})
    for key in sorted(set(old) | set(new)):
        name = '%s%s' % (prefix, key)
        was, will = old.get(key), new.get(key)
        if was == will:
            continue
        if isinstance(was, list) or isinstance(will, list):
            rows.extend(_seq_rows(name, [show(v) for v in was or []], [show(v) for v in will or []]))
        else:
            rows.append((name, show(was), show(will)))
    return rows


def diff_rows(diff, label=''):
    """(change, before, after) rows of one Ansible ``diff`` (a dict or a list of them)."""
    rows = []
    for one in diff if isinstance(diff, list) else [diff]:
        if not isinstance(one, dict):
            continue
        header = one.get('after_header') or one.get('before_header') or label or ''
        before, after = one.get('before'), one.get('after')
        if isinstance(before, dict) or isinstance(after, dict):
            rows.extend(_dict_rows(before, after, ('%s: ' % label) if label else ''))
        elif before is not None or after is not None:
            rows.extend(_text_rows(header or 'content', before, after))
    return rows


def _env_map(text):
    """portainer_stack's env diff text (a YAML mapping, secrets masked) as {name: value}, all strings; None when
    it is not one."""
    try:
        value = yaml.load(text or '', Loader=yaml.BaseLoader)
    except yaml.YAMLError:
        return None
    if value is None:
        return {}
    return value if isinstance(value, dict) else None


def stack_rows(diff):
    """(change, before, after) rows of portainer_stack's diff: a changed compose line as 'NAME compose[LINE]', a
    changed environment value by its variable, 'NAME env.VARIABLE' (masked values stay masked); a diff of another
    shape as diff_rows makes it."""
    rows = []
    for one in diff if isinstance(diff, list) else [diff]:
        header = isinstance(one, dict) and STACK_HEADER.match(one.get('after_header') or one.get('before_header') or '')
        if not header:
            rows.extend(diff_rows(one))
            continue
        name, part = header.groups()
        if part == 'env':
            old, new = _env_map(one.get('before')), _env_map(one.get('after'))
            if old is not None and new is not None:
                rows.extend(_dict_rows(old, new, '%s env.' % name))
                continue
        rows.extend(_text_rows('%s %s' % (name, part), one.get('before'), one.get('after')))
    return rows


def plan_rows(host, action, role, task_name, result, label=''):
    """Rows {host, kind, change, before, after} for one task result (none when it changed nothing)."""
    if not result.get('changed') or result.get('skipped') or result.get('failed'):
        return []
    kind = kind_of(action, role)
    module = short_name(action)
    if result.get('_ansible_no_log'):
        found = [(task_name, 'hidden (no_log)', 'hidden (no_log)')]
    else:
        if module == 'portainer_stack' and not label:
            label = str((result.get('invocation') or {}).get('module_args', {}).get('name') or result.get('name') or '')
        if module == 'portainer_stack' and label:
            label = 'stack ' + label.split(' ', 1)[0]
        if module == 'portainer_stack':
            found = stack_rows(result['diff']) if result.get('diff') else []
        else:
            found = diff_rows(result.get('diff'), label) if result.get('diff') else []
        if not found and isinstance(result.get('changes'), dict) and result['changes']:
            found = [(key, '?', show(value)) for key, value in sorted(result['changes'].items())]
        if module == 'proxmox_guest' and result.get('created'):
            found.insert(0, ('guest %s' % result.get('vmid', host), 'absent', 'created'))
        if module == 'proxmox_guest' and not found:
            found = [('power', ABSENT, show(result.get('power') or 'changed'))]
        if not found:
            found = [(label or task_name, '', 'changed (no diff)')]
    return [dict(host=str(host), kind=kind, change=change, before=before, after=after)
            for change, before, after in found]


def _cell(text, width):
    text = ' '.join(str(text).split())
    return text if len(text) <= width else text[:width - 3] + '...'


def merge_rows(rows):
    """The rows without repeats: the same change predicted by two tasks (a guest reconciled, then started) is one."""
    seen = set()
    out = []
    for row in rows:
        key = tuple(row[k] for k in ('host', 'kind', 'change', 'before', 'after'))
        if key not in seen:
            seen.add(key)
            out.append(row)
    return out


def render_table(rows, widths=(10, 11, 40, 48, 48)):
    """The plan as text: a title line, the table, a count per kind."""
    rows = merge_rows(rows)
    if not rows:
        return 'PLAN: no changes (check mode, nothing was written)'
    heads = ('HOST', 'KIND', 'CHANGE', 'BEFORE', 'AFTER')
    cells = [[_cell(r[k], w) for k, w in zip(('host', 'kind', 'change', 'before', 'after'), widths)] for r in rows]
    sizes = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(heads)]

    def line(values):
        return ' | '.join(v.ljust(sizes[i]) for i, v in enumerate(values)).rstrip()

    hosts = sorted(set(r['host'] for r in rows))
    counts = {}
    for row in rows:
        counts[row['kind']] = counts.get(row['kind'], 0) + 1
    out = ['PLAN: %d change%s on %d host%s (check mode, nothing was written)'
           % (len(rows), '' if len(rows) == 1 else 's', len(hosts), '' if len(hosts) == 1 else 's'),
           line(heads), '-+-'.join('-' * s for s in sizes)]
    out.extend(line(c) for c in cells)
    out.append('by kind: ' + ', '.join('%s %d' % (k, counts[k]) for k in sorted(counts)))
    return '\n'.join(out)
