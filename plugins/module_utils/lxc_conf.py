# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Raw ``lxc.*`` lines of a Proxmox container config (/etc/pve/lxc/<vmid>.conf).

The API cannot set them, so they are edited in the file. Only the main section (before the first
``[snapshot]`` section) is touched; every other line is kept as it is.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import re

ID_RANGE = 65536
_SECTION_RE = re.compile(r'^\[[^\]]+\]\s*$')


class LxcConfError(Exception):
    pass


def parse_lxc_option(text):
    """'lxc.apparmor.profile=unconfined', 'lxc.apparmor.profile: unconfined' or 'lxc.mount.auto:sys:rw'
    -> ('lxc.apparmor.profile', 'unconfined')."""
    text = str(text).strip()
    key_end = len(text)
    for sep in ('=', ':'):
        pos = text.find(sep)
        if 0 < pos < key_end:
            key_end = pos
    key = text[:key_end].strip()
    value = text[key_end + 1:].strip() if key_end < len(text) else ''
    if not key.startswith('lxc.') or not re.match(r'^lxc(\.[A-Za-z0-9_]+)+$', key):
        raise LxcConfError('"%s" is not an lxc.* option (expected lxc.key=value)' % text)
    return key, value


def idmap_lines(id_maps, base=100000, size=ID_RANGE):
    """Full lxc.idmap lines for an unprivileged container with some IDs mapped straight through.

    id_maps: [{'type': 'uid'|'gid', 'container_id': 33, 'host_id': 33, 'size': 1}, ...]. IDs not listed
    map to base + id, as Proxmox does by default.
    """
    lines = []
    for kind, letter in (('uid', 'u'), ('gid', 'g')):
        holes = sorted((int(m['container_id']), int(m['host_id']), int(m.get('size', 1)))
                       for m in id_maps if m.get('type') == kind)
        cursor = 0
        for container_id, host_id, count in holes:
            if container_id < cursor or container_id + count > size or count < 1:
                raise LxcConfError('%s map %d+%d overlaps another map or leaves 0-%d'
                                   % (kind, container_id, count, size - 1))
            if container_id > cursor:
                lines.append('lxc.idmap: %s %d %d %d' % (letter, cursor, base + cursor, container_id - cursor))
            lines.append('lxc.idmap: %s %d %d %d' % (letter, container_id, host_id, count))
            cursor = container_id + count
        if cursor < size:
            lines.append('lxc.idmap: %s %d %d %d' % (letter, cursor, base + cursor, size - cursor))
    return lines


def desired_lines(lxc_options, id_maps):
    lines = []
    for option in lxc_options or []:
        key, value = parse_lxc_option(option)
        lines.append('%s: %s' % (key, value))
    if id_maps:
        lines.extend(idmap_lines(id_maps))
    return lines


def rewrite(text, wanted, managed_keys=None):
    """New file text where the main section's lxc.* lines are exactly ``wanted`` (appended at its end).

    ``managed_keys``: only lxc.* lines with these keys are replaced (None: every lxc.* line).
    """
    lines = text.splitlines()
    end = len(lines)
    for index, line in enumerate(lines):
        if _SECTION_RE.match(line):
            end = index
            break
    main, rest = lines[:end], lines[end:]
    kept = []
    for line in main:
        key = line.split(':', 1)[0].strip()
        if key.startswith('lxc.') and (managed_keys is None or key in managed_keys):
            continue
        kept.append(line)
    while kept and not kept[-1].strip():
        kept.pop()
    new_main = kept + list(wanted)
    out = new_main + ([''] if rest else []) + rest
    return '\n'.join(out) + '\n'


def current_lines(text):
    out = []
    for line in text.splitlines():
        if _SECTION_RE.match(line):
            break
        if line.split(':', 1)[0].strip().startswith('lxc.'):
            out.append(line)
    return out
