#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: proxmox_lxc_raw
short_description: Raw lxc.* options and ID maps in a Proxmox container's config file
version_added: 0.1.0
author:
  - Thinkheads platform team (@thinkheads)
description:
  - Proxmox's API cannot set raw C(lxc.*) keys (AppArmor profile, mount entries, cgroup device rules) or
    C(lxc.idmap) lines. This module edits the container's config file on a Proxmox host so that the main
    section holds exactly the C(lxc.*) lines the Phoenix config asks for (C(lxc_options), C(id_maps)).
  - The file is C(<pve_dir>/nodes/<node>/lxc/<vmid>.conf) of the node that holds the container, found in the
    cluster file system (C(/etc/pve) is the same on every node; C(/etc/pve/lxc) is only the local node's). So any
    node of the cluster can run the module, also for a container that was placed on or migrated to another node.
  - Snapshot sections and every other key are left untouched. Run it on the hypervisor.
  - The container must be restarted for the change to apply; the module returns C(restart_needed).
  - The edit happens under Proxmox's config lock (O(lock_dir)). A container whose config holds a C(lock) (a backup,
    clone or snapshot running) is left alone and the module fails naming the lock.
  - A container whose config file does not exist is an error, except in check mode, where it is taken as a
    container about to be created (its creation only predicted). The run then reports the lines it would write,
    with a diff from an empty file, at its O(node)'s place. The directory itself must exist in either mode.
options:
  vmid:
    description: Container ID.
    type: int
    required: true
  node:
    description:
      - The cluster node the container is placed on. Only used when no node's directory holds the file yet (check
        mode, the container's creation only predicted); a file found under another node is edited there.
      - Without it such a container is predicted in C(<pve_dir>/lxc), the local node's.
    type: str
  pve_dir:
    description: Where the Proxmox cluster file system is mounted.
    type: path
    default: /etc/pve
  conf_dir:
    description:
      - A directory that holds the container's config file, used as it is (no search of the nodes' directories);
        for example C(/etc/pve/lxc) for the local node's containers only.
      - Unset, the file is looked up under O(pve_dir) as described above.
    type: path
  lxc_options:
    description:
      - "Raw options as in the Phoenix config (C(lxc_options)): V(lxc.key=value), V(lxc.key: value) or
        V(lxc.key:value)."
    type: list
    elements: str
    default: []
  id_maps:
    description:
      - IDs mapped straight through from host to container (C(id_maps) in the Phoenix config), each
        C(type) (V(uid) or V(gid)), C(container_id), C(host_id), C(size). The remaining IDs get Proxmox's
        default unprivileged mapping (host ID = 100000 + container ID).
    type: list
    elements: dict
    default: []
  lock_dir:
    description:
      - Where Proxmox keeps the containers' config locks. The file is read and written while holding
        C(<lock_dir>/pve-config-<vmid>.lock), the lock every Proxmox tool takes before writing a container config,
        so an API change (C(pct set), a backup, a clone) cannot interleave with this edit.
      - The lock is local to the host the module runs on, as Proxmox's is (its API runs a container's writes on
        the node that holds it). For a container on another node the edit is still atomic (one rename in the
        cluster file system) but is not serialized with that node's own writers; the result's C(node) says where
        the file was.
    type: path
    default: /run/lock/lxc
  lock_timeout:
    description: Seconds to wait for the config lock before failing (Proxmox's own tools wait 10).
    type: int
    default: 10
extends_documentation_fragment:
  - thinkheads.phoenix.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
'''

EXAMPLES = r'''
- name: Raw LXC options of the Nginx gateway
  thinkheads.phoenix.proxmox_lxc_raw:
    vmid: 101
    lxc_options: "{{ phoenix_guest.lxc_options | default([]) }}"
    id_maps: "{{ phoenix_guest.id_maps | default([]) }}"
  delegate_to: "{{ groups['hypervisor'][0] }}"

- name: GPU passthrough for the vLLM container, with the host's video and render groups mapped straight through
  thinkheads.phoenix.proxmox_lxc_raw:
    vmid: 950
    lxc_options:
      - "lxc.cgroup2.devices.allow: c 195:* rwm"
      - "lxc.cgroup2.devices.allow: c 509:* rwm"
      - "lxc.mount.entry: /dev/nvidia0 dev/nvidia0 none bind,optional,create=file"
      - "lxc.mount.entry: /dev/nvidiactl dev/nvidiactl none bind,optional,create=file"
      - "lxc.mount.entry: /dev/nvidia-uvm dev/nvidia-uvm none bind,optional,create=file"
    id_maps:
      - {type: gid, container_id: 44, host_id: 44, size: 1}
      - {type: gid, container_id: 104, host_id: 104, size: 1}
  register: phoenix_lxc_raw

- name: Restart the container when its raw options changed
  ansible.builtin.command: pct reboot 950
  when: phoenix_lxc_raw.restart_needed
  changed_when: true

- name: Raw options of a container on another cluster node, from this host (its file is under nodes/pve2/lxc)
  thinkheads.phoenix.proxmox_lxc_raw:
    vmid: 952
    node: pve2
    lxc_options: ["lxc.apparmor.profile: unconfined"]
  delegate_to: "{{ groups['hypervisor'][0] }}"

- name: Predict the raw options of a container not created yet (check mode; exists is false), waiting longer for the lock
  thinkheads.phoenix.proxmox_lxc_raw:
    vmid: 953
    lxc_options: ["lxc.apparmor.profile: unconfined"]
    lock_timeout: 30
  check_mode: true
  diff: true
  register: phoenix_lxc_raw_plan
'''

RETURN = r'''
lines:
  description: The lxc.* lines of the main section after the run.
  returned: always
  type: list
  elements: str
  sample:
    - "lxc.apparmor.profile: unconfined"
    - "lxc.cgroup2.devices.allow: c 195:* rwm"
    - "lxc.idmap: u 0 100000 65536"
    - "lxc.idmap: g 0 100000 44"
    - "lxc.idmap: g 44 44 1"
    - "lxc.idmap: g 45 100045 65491"
restart_needed:
  description: Whether the file changed (the container applies it on its next start).
  returned: always
  type: bool
  sample: true
exists:
  description: Whether the container's config file exists (V(false) only in check mode; a missing file fails otherwise).
  returned: always
  type: bool
  sample: true
path:
  description: The config file edited (or, for a container not created yet, where it would be).
  returned: always
  type: str
  sample: /etc/pve/nodes/pve2/lxc/953.conf
node:
  description: The node whose directory holds the file (null when O(conf_dir) was given).
  returned: always
  type: str
  sample: pve2
'''

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.thinkheads.phoenix.plugins.module_utils.lxc_conf import (
    ConfigLock, LxcConfError, config_lock, current_lines, desired_lines, rewrite,
)
from ansible_collections.thinkheads.phoenix.plugins.module_utils.validation import check_options


def _edit(module, path, wanted):
    """(before, after) of the config file; written (atomically) unless in check mode. Runs under the lock."""
    with open(path) as handle:
        before = handle.read()
    after = rewrite(before, wanted)
    lock = config_lock(before)
    if after != before and lock:
        raise LxcConfError('its config is locked (%s): a Proxmox task (a %s) is using it; run again when it is done'
                           % (lock, lock))
    if after != before and not module.check_mode:
        tmp = '%s.phoenix-tmp' % path
        with open(tmp, 'w') as handle:
            handle.write(after)
        module.atomic_move(tmp, path)
    return before, after


def locate(pve_dir, vmid, conf_dir=None, node=None):
    """(directory, node) of container ``vmid``'s config: ``conf_dir`` as given; else the node directory of the
    cluster file system that holds the file; else (not created yet) ``node``'s, or the local node's."""
    if conf_dir:
        return conf_dir, None
    nodes_dir = os.path.join(pve_dir, 'nodes')
    holders = []
    if os.path.isdir(nodes_dir):
        holders = [name for name in sorted(os.listdir(nodes_dir))
                   if os.path.isfile(os.path.join(nodes_dir, name, 'lxc', '%d.conf' % vmid))]
    if holders:
        # one node holds a guest (pmxcfs keeps VMIDs cluster-wide); prefer the one asked for should there be more
        chosen = node if node in holders else holders[0]
        return os.path.join(nodes_dir, chosen, 'lxc'), chosen
    local = os.path.join(pve_dir, 'lxc')
    if os.path.isfile(os.path.join(local, '%d.conf' % vmid)):
        return local, None          # a tree without per-node directories: only the local node's
    if node and (os.path.isdir(os.path.join(nodes_dir, node, 'lxc')) or not os.path.isdir(local)):
        return os.path.join(nodes_dir, node, 'lxc'), node
    return local, None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            vmid=dict(type='int', required=True),
            conf_dir=dict(type='path'),
            node=dict(type='str'),
            pve_dir=dict(type='path', default='/etc/pve'),
            lxc_options=dict(type='list', elements='str', default=[]),
            id_maps=dict(type='list', elements='dict', default=[]),
            lock_dir=dict(type='path', default='/run/lock/lxc'),
            lock_timeout=dict(type='int', default=10),
        ),
        supports_check_mode=True,
    )
    check_options(module, 'proxmox_lxc_raw')
    vmid = module.params['vmid']
    conf_dir, node = locate(module.params['pve_dir'], vmid, module.params['conf_dir'], module.params['node'])
    path = os.path.join(conf_dir, '%d.conf' % vmid)
    if not os.path.isdir(conf_dir):
        module.fail_json(msg='%s is not a directory: set pve_dir to where the Proxmox cluster file system is '
                             '(/etc/pve on a Proxmox host), node to a node of the cluster, or conf_dir to the '
                             "directory of the container's config" % conf_dir)
    if module.params['lock_timeout'] < 0:
        module.fail_json(msg='lock_timeout must be >= 0 (got %d)' % module.params['lock_timeout'])
    try:
        wanted = desired_lines(module.params['lxc_options'], module.params['id_maps'])
    except LxcConfError as exc:
        module.fail_json(msg=str(exc))
    exists = os.path.isfile(path)
    if not exists and not module.check_mode:
        module.fail_json(msg='%s does not exist: create container %d first' % (path, vmid), exists=False)
    if exists:
        try:
            if module.check_mode:        # a read only: the file is only ever replaced whole (rename)
                before, after = _edit(module, path, wanted)
            else:
                with ConfigLock(module.params['lock_dir'], vmid, module.params['lock_timeout']):
                    before, after = _edit(module, path, wanted)
        except (LxcConfError, IOError, OSError) as exc:
            module.fail_json(msg='container %d: %s' % (vmid, exc))
    else:
        # check mode, container not created yet: the lines it would get, from an empty file
        before = ''
        after = rewrite(before, wanted) if wanted else ''
    changed = after != before
    result = dict(changed=changed, restart_needed=changed, exists=exists, lines=current_lines(after), path=path,
                  node=node,
                  diff=dict(before=before, after=after, before_header=path,
                            after_header=path if exists else '%s (once container %d is created)' % (path, vmid)))
    if not exists:
        result['msg'] = ('container %d does not exist yet (check mode): its config would get %d lxc.* line(s)'
                         % (vmid, len(wanted)))
    module.exit_json(**result)


if __name__ == '__main__':
    main()
