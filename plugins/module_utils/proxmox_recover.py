# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Writes that survive a lost answer: after PveAmbiguousWrite, re-read what Proxmox has and continue from it.

pveproxy waits 30 s for pvedaemon and then answers 596 (pve-http-server ``src/PVE/APIServer/AnyEvent.pm``
proxy_request); a read timeout or a 502/504 from a proxy in front is just as open. The write may have run, so
sending it again blindly makes a create or clone fail with "CT 801 already exists". Instead:

- create / clone (:func:`create_guest`): the guest now exists with lock ``create`` (``clone`` for a VM clone)
  while its task runs -> wait for the task (listed under ``/nodes/{node}/tasks``) until the lock is gone; it
  exists unlocked -> done; it does not exist and no such task runs -> the write never ran, send it again
  (Proxmox refuses a second guest with the same ID, so this cannot make two).
- a clone with ``target`` (onto another cluster node): the new guest's config is written on the source node and
  moved to the target node when the task ends (pve-container API2/LXC.pm and qemu-server API2/Qemu.pm clone_vm,
  move_config_to_node), so it is looked for on both nodes; the task is the source node's.
- config updates: the caller re-reads the config and compares (see the proxmox_guest module).
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import re
import time

from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox import PveError, guest_missing

# Locks a guest carries while its create or clone task runs (pve-container API2/LXC.pm create_vm / clone_vm:
# 'create'; qemu-server API2/Qemu.pm clone_vm: 'clone' on the new VM).
CREATING_LOCKS = ('create', 'clone')
# How much older than this run a task may look and still be taken for its own (clocks of controller and node).
CLOCK_SLACK = 120
_EXISTS_RE = re.compile(r'\b(?:CT|VM) (\d+) already exists')


def _node_of(client, path):
    """The node a call goes to ('nodes/<node>/...'), else the client's."""
    parts = str(path).strip('/').split('/')
    return parts[1] if len(parts) > 1 and parts[0] == 'nodes' else client.node


def guest_config(client, kind, vmid, node=None):
    """The guest's config on ``node`` (default: the client's), or None when it does not exist there."""
    try:
        return client.get('nodes/%s/%s/%d/config' % (node or client.node, kind, int(vmid)))
    except PveError as exc:
        if guest_missing(exc, vmid):
            return None
        raise


def running_tasks(client, task_type, task_vmid, since, node=None):
    """Running tasks of ``task_type`` for ``task_vmid`` started after ``since`` (less the clock slack)."""
    try:
        tasks = client.get('nodes/%s/tasks' % (node or client.node), vmid=int(task_vmid), typefilter=task_type,
                           source='all', limit=50) or []
    except PveError:
        return []
    return [t for t in tasks if t.get('type') == task_type and not t.get('endtime')
            and int(t.get('starttime') or 0) >= since - CLOCK_SLACK and str(t.get('upid', '')).startswith('UPID:')]


def follow_creation(client, kind, vmid, task_type, task_vmid, since, poll=1.0, node=None, target=None):
    """After an ambiguous create/clone: 'done' once the guest exists unlocked, 'absent' when the write never ran.

    Waits (at most task_timeout) for a create/clone task that is still running; PveError when the guest
    appeared and then vanished (its task failed), naming the task's error when it can be found. ``target``: the
    node a clone goes to, where its config is once the task has ended (the task runs on ``node``).
    """
    seen = False
    waited = 0.0
    while True:
        config = guest_config(client, kind, vmid, node)
        if config is None and target and target != (node or client.node):
            config = guest_config(client, kind, vmid, target)
        running = running_tasks(client, task_type, task_vmid, since, node)
        if config is None and not running:
            if seen:
                raise PveError('%s %d appeared and was removed again: its %s task failed (see the node\'s task log)'
                               % (kind, vmid, task_type))
            return 'absent'
        if config is not None:
            seen = True
            if config.get('lock') not in CREATING_LOCKS:
                return 'done'
        if running:
            try:
                client.wait_task(running[0]['upid'])
            except PveError:
                if seen:
                    raise
            continue                # re-read: the task may not have been ours
        if waited >= client.task_timeout:
            raise PveError('%s %d is still locked (%s) %ds after its %s was sent, and no %s task runs for it'
                           % (kind, vmid, config.get('lock'), int(waited), task_type, task_type))
        client.pause(poll)
        waited += poll


def create_guest(client, kind, vmid, path, params, task_type, task_vmid=None):
    """POST a create or clone; its UPID, or None when a lost answer was recovered and the guest is there.

    ``task_type``: vzcreate, qmcreate, vzclone or qmclone; ``task_vmid``: the ID the task is listed under (the
    new guest for a create, the source for a clone).
    """
    task_vmid = vmid if task_vmid is None else task_vmid
    since = time.time()
    for attempt in (1, 2, 3):
        try:
            return client.post(path, **params)
        except PveError as exc:
            match = _EXISTS_RE.search(exc.message or '')
            repeated = attempt > 1 and match is not None and int(match.group(1)) == int(vmid)
            if not exc.ambiguous and not repeated:
                raise
            client.notes.append('POST %s: %s; re-reading %s %d and its %s task instead of sending it again'
                                % (path, 'answer lost (%s)' % exc.message if exc.ambiguous else exc.message.strip(),
                                   kind, vmid, task_type))
        if follow_creation(client, kind, vmid, task_type, task_vmid, since, node=_node_of(client, path),
                           target=params.get('target')) == 'done':
            client.notes.append('%s %d: the %s ran although its answer was lost; continued from it'
                                % (kind, vmid, task_type))
            return None
    raise PveError('POST %s: %s %d was not created after 3 attempts whose answers were lost' % (path, kind, vmid))
