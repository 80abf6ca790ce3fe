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


# -- the privileges the collection needs ---------------------------------------------------------------------------
#
# The one list of them: the pveum recipe in README.md, docs/proxmox.md and examples/single-node/README.md is
# pveum_recipe() (tests/unit/test_docs_recipes.py), and proxmox_privileges checks a token against it.
# (privilege, ACL path it is checked on, what needs it). Proxmox checks each call on the guest's, storage's or
# bridge's own path (/vms/801, /storage/local, /sdn/zones/localnetwork/vmbr0): granted on the path here, the
# privilege must propagate to reach them.
REQUIRED_PRIVILEGES = (
    ('VM.Allocate', '/vms', 'create, clone into, convert and destroy guests'),
    ('VM.Audit', '/vms', 'read configs, status and guest firewalls'),
    ('VM.Clone', '/vms', 'clone templates'),
    ('VM.Config.CDROM', '/vms', "the VMs' cloud-init drive"),
    ('VM.Config.CPU', '/vms', 'cores'),
    ('VM.Config.Cloudinit', '/vms', 'cloud-init options'),
    ('VM.Config.Disk', '/vms', 'disks, resizes'),
    ('VM.Config.HWType', '/vms', 'VM hardware type options'),
    ('VM.Config.Memory', '/vms', 'memory, swap'),
    ('VM.Config.Network', '/vms', 'NICs, guest firewall rules and options'),
    ('VM.Config.Options', '/vms', 'every other option (tags, onboot, startup, ...)'),
    ('VM.Migrate', '/vms', 'migrate a guest back to its configured cluster node (phoenix_migrate)'),
    ('VM.PowerMgmt', '/vms', 'start, shut down, stop, reboot'),
    ('VM.Snapshot', '/vms', 'snapshots'),
    ('Datastore.AllocateSpace', '/storage', 'disks on the storages'),
    ('Datastore.AllocateTemplate', '/storage', 'downloading cloud images and OS templates'),
    ('Datastore.Audit', '/storage', 'reading storages and their content'),
    ('SDN.Use', '/sdn/zones/localnetwork', 'attaching guests to a bridge (vmbr0)'),
    ('Sys.Audit', '/', 'cluster resources, task status and logs, cluster firewall reads'),
    ('Sys.Modify', '/', 'cluster firewall aliases and IP sets, downloads to a node'),
)

# Every privilege Proxmox VE knows (pve-access-control src/PVE/AccessControl.pm $privgroups and
# Permissions.Modify): a name outside it is a typo.
PVE_PRIVILEGES = frozenset('''
VM.Allocate VM.Audit VM.Backup VM.Clone VM.Config.CDROM VM.Config.CPU VM.Config.Cloudinit VM.Config.Disk
VM.Config.HWType VM.Config.Memory VM.Config.Network VM.Config.Options VM.Console VM.GuestAgent.Audit
VM.GuestAgent.FileRead VM.GuestAgent.FileSystemMgmt VM.GuestAgent.FileWrite VM.GuestAgent.Unrestricted VM.Migrate
VM.PowerMgmt VM.Replicate VM.Snapshot VM.Snapshot.Rollback
Sys.AccessNetwork Sys.Audit Sys.Console Sys.Incoming Sys.Modify Sys.PowerMgmt Sys.Syslog
Datastore.Allocate Datastore.AllocateSpace Datastore.AllocateTemplate Datastore.Audit
SDN.Allocate SDN.Audit SDN.Use
Realm.Allocate Realm.AllocateUser User.Modify Group.Allocate Pool.Allocate Pool.Audit
Mapping.Audit Mapping.Modify Mapping.Use Permissions.Modify
'''.split())

ROLE = 'PhoenixProvisioner'


def default_privileges():
    """The privileges the collection needs, in the recipe's order."""
    return [priv for priv, _path, _why in REQUIRED_PRIVILEGES]


def privilege_path(priv):
    """The ACL path a privilege is checked on (the collection's table, else by its group)."""
    for name, path, _why in REQUIRED_PRIVILEGES:
        if name == priv:
            return path
    group = priv.split('.', 1)[0]
    return {'VM': '/vms', 'Datastore': '/storage', 'SDN': '/sdn/zones/localnetwork', 'Mapping': '/mapping',
            'Pool': '/pool'}.get(group, '/')


def pveum_recipe(privileges=None):
    """The role line of the recipe the docs give (the role holds these privileges)."""
    return 'pveum role add %s -privs "%s"' % (ROLE, ' '.join(privileges or default_privileges()))


def missing_privileges(privileges, held):
    """[{privilege, path, reason}] for each of ``privileges`` not held, by ``held`` = {path: {priv: propagate}}.

    A privilege counts only when it propagates (Proxmox checks the guest's or storage's own path, below the one
    checked here); one granted without propagation is named as such.
    """
    missing = []
    for priv in privileges:
        path = privilege_path(priv)
        flags = held.get(path) or {}
        if priv not in flags:
            missing.append(dict(privilege=priv, path=path, reason='not granted'))
        elif str(flags[priv]) in ('0', 'False', 'false'):
            missing.append(dict(privilege=priv, path=path, reason='granted without propagation'))
    return missing


def missing_message(authid, missing, privileges=None):
    """One message naming every missing privilege and its path, and how to grant them."""
    def one(item):
        note = '' if item['reason'] == 'not granted' else ' (%s)' % item['reason']
        return '%s on %s%s' % (item['privilege'], item['path'], note)

    listed = ', '.join(one(m) for m in missing)
    return ('%s lacks %d Proxmox privilege%s the collection needs: %s. Nothing was written. Grant them on / '
            '(propagated), for example: %s; pveum acl modify / --%s %s --roles %s'
            % (authid, len(missing), '' if len(missing) == 1 else 's', listed, pveum_recipe(privileges),
               'tokens' if '!' in str(authid) else 'users', authid, ROLE))
