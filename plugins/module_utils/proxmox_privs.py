# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Container options that Proxmox lets only ``root@pam`` itself write, checked before any write.

Proxmox's rule (pve-container ``src/PVE/LXC.pm`` check_ct_modify_config_perm, run by the create and config
update calls): unless the authenticated identity is exactly ``root@pam`` (a password/ticket login; an API token
``root@pam!id`` is another identity, whatever its privileges), it refuses with HTTP 403

- setting or removing any ``dev[n]`` (device passthrough),
- setting an ``mp[n]`` that is not a storage volume (a bind mount of a host path, or a device),
- on a privileged container, any change of ``features``; on an unprivileged one, a change of a feature other
  than ``nesting`` (``keyctl``, ``fuse``, ``mknod``, ``mount``, ``force_rw_sys``), removals included.

Only what is actually written is checked: an option that already has the wanted value is not sent, so a token
can keep reconciling a guest whose devices and bind mounts were once set by root.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import re

ROOT = 'root@pam'
_FEATURE_RE = re.compile(r'^\s*([a-z_]+)\s*=\s*(\S*)\s*$')


def _features(text):
    out = {}
    for part in re.split(r'[,;\s]+', str(text or '')):
        match = _FEATURE_RE.match(part)
        if match:
            out[match.group(1)] = match.group(2)
    return out


def _mount_source(value):
    first = str(value or '').split(',', 1)[0]
    return first[len('volume='):] if first.startswith('volume=') else first


def root_only_writes(authid, changes, deletes, current, unprivileged):
    """[(key, why)] for each LXC config write in ``changes``/``deletes`` that only root@pam may make.

    ``current`` is the config before the write (None for a create), ``unprivileged`` whether the container is.
    Empty when ``authid`` is root@pam.
    """
    if authid == ROOT:
        return []
    found = []
    sets = [(key, False) for key in sorted(changes or {})]
    removals = [(key, True) for key in sorted(deletes or ())]
    for key, removal in sets + removals:
        if re.match(r'^dev\d+$', key):
            found.append((key, 'device passthrough %s' % ('(removal)' if removal else (changes[key] or ''))))
        elif re.match(r'^mp\d+$', key) and not removal and _mount_source(changes[key]).startswith('/'):
            found.append((key, 'bind mount of host path %s' % _mount_source(changes[key])))
        elif key == 'features':
            old = _features((current or {}).get('features'))
            new = {} if removal else _features(changes[key])
            if not unprivileged:
                found.append((key, 'feature flags of a privileged container'))
                continue
            if removal or not old:
                other = sorted(k for k in (old if removal else new) if k != 'nesting')
            else:
                other = sorted(k for k in set(old) | set(new) if k != 'nesting' and old.get(k, '') != new.get(k, ''))
            if other:
                found.append((key, 'feature%s %s (only nesting is open to others)'
                              % ('s' if len(other) > 1 else '', ', '.join(other))))
    return found


def root_only_message(kind, vmid, authid, found, action):
    """One message naming the options, the identity and the ways out."""
    listed = '; '.join('%s: %s' % (key, why) for key, why in found)
    token = '!' in str(authid or '')
    return ('%s %d: Proxmox lets only root@pam itself (not %s) %s these options: %s. Nothing was written. Either run '
            'this guest as root@pam with its password (api_user: root@pam and api_password, or PHOENIX_PVE_USER and '
            'PHOENIX_PVE_PASSWORD; playbooks: phoenix_pve_api_user and phoenix_pve_api_password), or set them once '
            "by hand as root on the host (pct set %d ...); the module then finds them in place and writes nothing "
            'for them' % (kind, vmid, 'an API token such as %s' % authid if token else 'the user %s' % authid, action,
                          listed, vmid))
