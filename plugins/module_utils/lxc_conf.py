# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Raw ``lxc.*`` lines of a Proxmox container config (/etc/pve/lxc/<vmid>.conf).

The API cannot set them, so they are edited in the file. Only the main section (before the first
``[snapshot]`` section) is touched; every other line is kept as it is.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import errno
import fcntl
import os
import re
import time

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


def config_lock(text):
    """The ``lock:`` value of the main section (create, backup, disk, ...), or None."""
    for line in text.splitlines():
        if _SECTION_RE.match(line):
            break
        key, sep, value = line.partition(':')
        if sep and key.strip() == 'lock':
            return value.strip() or None
    return None


class ConfigLock:
    """PVE's per-container config lock: an exclusive flock on ``<lock_dir>/pve-config-<vmid>.lock``.

    Every PVE tool that writes a container config holds it (pve-guest-common AbstractConfig.pm lock_config,
    with the path from pve-container src/PVE/LXC/Config.pm config_file_lock: /run/lock/lxc), so a file edited
    under it cannot interleave with an API write. Waits up to ``timeout`` seconds, as PVE's lock_config (10 s).
    """

    def __init__(self, lock_dir, vmid, timeout=10.0, sleep=time.sleep, clock=time.monotonic):
        self.path = os.path.join(lock_dir, 'pve-config-%d.lock' % int(vmid))
        self.lock_dir = lock_dir
        self.timeout = float(timeout)
        self._sleep = sleep
        self._clock = clock
        self._fd = None

    def __enter__(self):
        if not os.path.isdir(self.lock_dir):
            os.makedirs(self.lock_dir, mode=0o755)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = self._clock() + self.timeout
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except (IOError, OSError) as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
            if self._clock() >= deadline:
                os.close(self._fd)
                self._fd = None
                raise LxcConfError('could not take the config lock %s within %ss: another Proxmox task or tool is '
                                   'writing this container\'s config; try again when it is done'
                                   % (self.path, int(self.timeout) if self.timeout.is_integer() else self.timeout))
            self._sleep(0.1)

    def __exit__(self, *exc_info):
        if self._fd is not None:
            os.close(self._fd)     # closing the descriptor releases the flock
            self._fd = None
        return False
