#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: proxmox_guest
short_description: One Proxmox LXC container or VM from a Phoenix guest definition
version_added: 0.1.0
author:
  - Thinkheads platform team (@thinkheads)
description:
  - Creates (from an OS template, or by cloning C(clone_from_ctid) / C(clone_from_vmid)), reconciles,
    starts, stops or destroys one guest described by the normalized Phoenix guest that the
    C(thinkheads.phoenix.phoenix) inventory plugin puts in C(phoenix_guest).
  - Reconciles exactly the keys it manages and nothing else. LXC - C(hostname), C(cores), C(memory), C(swap),
    C(net0) (name, bridge, ip, gw, hwaddr, firewall), C(nameserver), C(onboot), C(startup) (order, up),
    C(features), C(tags), C(description), bind mounts C(mp[n]) from C(mount_points), GPU passthrough
    C(dev[n]) from C(gpus). VM - C(name), C(cores), C(memory), C(net0), cloud-init C(ciuser), C(sshkeys),
    C(ipconfig0), C(nameserver), C(onboot), C(startup), C(agent), C(tags), C(description).
    Removed sub-options of a property string and managed keys no longer wanted are removed (C(delete)).
  - A template guest (C(is_template), or C(template_snapshot_name)) is converted into a Proxmox template once it is
    complete, and never takes a snapshot - Proxmox refuses to convert a guest that has snapshots and to snapshot a
    template (qemu-server and pve-container C(template), pve-guest-common C(AbstractConfig.pm)). Its clones are
    made from the template itself, which is the clean state C(template_snapshot_name) names.
  - The root disk is grown to C(storage_size_gb) / C(disk_size_gb); Proxmox cannot shrink disks, so a smaller
    size is reported as a warning. C(unprivileged) can only be chosen at creation; a difference is an error.
  - A run that finds nothing to change makes no write call (one C(GET) of the config with its pending changes,
    C(.../pending), plus one of the status for O(state=started) or O(state=stopped), or when changes are pending).
  - Proxmox applies some changes to a running guest only when it restarts and keeps them pending until then
    (LXC - C(features), C(nameserver), a changed or removed C(mp[n]) or C(dev[n]); VM - C(cores), C(memory),
    C(agent)). The module compares the config with its pending values in, so a pending change is not written
    again, returns the pending keys in RV(pending) with RV(reboot_required) and warns naming them; with
    O(restart_pending=true) it reboots the guest to apply them.
extends_documentation_fragment:
  - thinkheads.phoenix.proxmox
  - thinkheads.phoenix.attributes
options:
  guest:
    description:
      - The normalized Phoenix guest (the C(phoenix_guest) host variable), at least C(id), C(type), C(name),
        C(hostname) and C(network).
    type: dict
    required: true
  state:
    description:
      - V(present) creates and reconciles without changing the power state; V(started) and V(stopped) also
        set it; V(absent) stops and destroys the guest (its disks included).
      - V(restarted) reconciles, then reboots a running guest (C(status/reboot), waited for) or starts a stopped
        one; it always reports a change. Use it when something outside the API changed what the guest reads at
        start, such as the raw C(lxc.*) lines of M(thinkheads.phoenix.proxmox_lxc_raw). Templates are never
        started.
    type: str
    choices: [present, started, stopped, restarted, absent]
    default: present
  ostemplate:
    description:
      - LXC OS template volume (V(local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst)) for a guest that is not
        cloned. Defaults to the guest's C(template), turned into a volume ID on O(template_storage).
    type: str
  template_storage:
    description: Storage holding OS templates, used when O(ostemplate) comes from a file path.
    type: str
    default: local
  storage:
    description: Storage for the root disk. Defaults to the guest's C(storage_pool).
    type: str
  image:
    description:
      - Source of the boot disk of a VM created without a clone source - what Proxmox's C(import-from) takes, the
        volume ID of an C(import) volume (V(local:import/noble-server-cloudimg-amd64.qcow2)) or, for root@pam
        only, an absolute path on the node.
      - Defaults, for a VM whose guest has C(template_image), to that image on O(image_storage) as
        M(thinkheads.phoenix.proxmox_image) stores it (a C(.img) name becomes C(.qcow2), or the extension of the
        guest's C(template_image_format)). Use M(thinkheads.phoenix.proxmox_image) first to make sure it is there.
      - The VM is created with C(scsi0) imported from it (then grown to C(disk_size_gb)), a cloud-init drive,
        C(serial0=socket) and C(vga=serial0) (cloud images write their console there), C(agent=1) and
        C(boot=order=scsi0). Without an image a VM gets an empty C(scsi0) disk.
      - Read only when the VM is created; a second run imports nothing.
    type: str
  image_storage:
    description: Storage holding the guest's C(template_image) when O(image) is not given.
    type: str
    default: local
  clone_snapshot:
    description: Snapshot of the clone source to clone from (for a source that is not a template).
    type: str
  full_clone:
    description: Full clone (V(true)) or linked clone (V(false), only from a template).
    type: bool
    default: true
  gpu_passthrough:
    description: Pass the guest's GPUs (and the NVIDIA control devices) through as C(dev[n]) entries.
    type: bool
    default: true
  password:
    description: Root password of a new LXC.
    type: str
  ssh_public_keys:
    description: Public keys for root of a new LXC, or cloud-init keys of a VM (reconciled for VMs).
    type: list
    elements: str
    default: []
  adopt:
    description:
      - Take over a guest Phoenix did not make. Every guest the module creates or reconciles carries the PVE tag
        C(phoenix); an existing guest without it (made by hand, by another tool, or by the old C(phoenix) CLI) is
        neither reconciled nor destroyed, and the module fails naming it. With V(true) the guest is reconciled
        (and so tagged C(phoenix)) or destroyed. Playbooks pass C(phoenix_adopt).
    type: bool
    default: false
  shutdown_timeout:
    description: Seconds to wait for a clean shutdown before the guest is stopped hard.
    type: int
    default: 60
  migrate:
    description:
      - When the guest lives on another node of the cluster than its configured one (C(guest.node), else O(node)),
        migrate it there (C(POST .../migrate), waiting for the task); a running container in restart mode, a running
        VM online with its local disks. Without it such a guest is only reported (RV(node_drift), a warning) and
        reconciled where it is.
      - Playbooks pass C(phoenix_migrate).
    type: bool
    default: false
  restart_pending:
    description:
      - Reboot a running guest whose config has changes Proxmox keeps pending until a restart (this run's or
        earlier ones), and wait for the reboot task, so that they are live when the module returns. With V(false)
        the module only warns and returns RV(reboot_required). Playbooks pass C(phoenix_restart_pending).
      - Templates and stopped guests are never restarted (a start applies pending changes).
    type: bool
    default: false
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
requirements:
  - proxmoxer
  - requests
seealso:
  - module: thinkheads.phoenix.proxmox_firewall
  - plugin: thinkheads.phoenix.phoenix
    plugin_type: inventory
'''

EXAMPLES = r'''
- name: Provision the guest
  thinkheads.phoenix.proxmox_guest:
    api_url: https://pve.internal.thinkheads.ai:8006
    api_token_id: root@pam!phoenix
    api_token_secret: "{{ vault_pve_token_secret }}"
    ca_file: /etc/phoenix/pve-ca.pem
    guest: "{{ phoenix_guest }}"
    state: started
  delegate_to: localhost

- name: Restart the container so raw lxc.* lines written on the hypervisor apply
  thinkheads.phoenix.proxmox_guest:
    guest: "{{ phoenix_guest }}"
    state: restarted
  delegate_to: localhost
  when: phoenix_raw_result is changed

- name: Destroy guest 801
  thinkheads.phoenix.proxmox_guest:
    guest: "{{ hostvars['801'].phoenix_guest }}"
    state: absent
'''

RETURN = r'''
vmid:
  description: The guest ID.
  returned: always
  type: int
  sample: 801
kind:
  description: C(lxc) or C(qemu).
  returned: always
  type: str
  sample: lxc
created:
  description: Whether the guest was created (or would be, in check mode).
  returned: always
  type: bool
  sample: false
changes:
  description: Config values written (or that would be written in check mode).
  returned: always
  type: dict
  sample: {memory: 8192, cores: 4, onboot: 1}
deleted:
  description: Managed config keys removed.
  returned: always
  type: list
  elements: str
  sample: [mp1]
config:
  description: The managed part of the guest config after the run (in check mode, as it would be).
  returned: unless O(state=absent)
  type: dict
  sample: {hostname: qdrant, cores: 4, memory: 8192, swap: 512, onboot: 1, unprivileged: 1,
           net0: "name=eth0,bridge=vmbr0,ip=10.0.0.153/24,gw=10.0.0.1,firewall=1", features: "nesting=1,keyctl=1"}
exists:
  description:
    - Whether the guest exists on Proxmox after the run. V(false) in check mode for a guest that does not
      exist yet - its creation is only predicted (C(created), C(changes), the diff from an empty config), so
      tasks that need the guest itself (SSH, its firewall reads, raw C(lxc.*) lines) have nothing to act on.
  returned: always
  type: bool
  sample: true
pending:
  description:
    - Config keys whose new value (or removal) Proxmox keeps pending and that are not live after the run (in
      check mode, that would not be). Empty after a restart that applied them.
  returned: unless O(state=absent)
  type: list
  elements: str
  sample: [features, dev1]
reboot_required:
  description: Whether the guest is running with pending changes, which it gets only when it restarts.
  returned: unless O(state=absent)
  type: bool
  sample: false
power:
  description: >-
    The power change made (or that would be made, in check mode): V(started), V(stopped) or V(restarted); absent
    when the power state was left as it was.
  returned: when the power state changed
  type: str
  sample: restarted
restarted:
  description: Whether the guest was rebooted (or would be, in check mode) to apply pending changes.
  returned: unless O(state=absent)
  type: bool
  sample: true
pending_applied:
  description: The pending keys the restart applied (or would apply, in check mode).
  returned: when RV(restarted) is true
  type: list
  elements: str
  sample: [features, dev1]
node:
  description: The node the guest lives on after the run (in check mode, would live on).
  returned: always
  type: str
  sample: pve2
node_drift:
  description: >-
    The guest was found on another node than its configured one: C({from, to}) (the node it was found on and the
    configured node), and whether it was (or, in check mode, would be) C(migrated).
  returned: when the guest was found on another node
  type: dict
  sample: {"from": "pve3", "to": "pve1", "migrated": true}
api_calls:
  description: Number of Proxmox API calls the run made.
  returned: always
  type: int
  sample: 7
tasks:
  description: UPIDs of the Proxmox tasks the run started.
  returned: always
  type: list
  elements: str
  sample: ["UPID:pve2:0003A5F1:01C2B3D4:6751A2B0:vzreboot:801:phoenix@pve!ansible:"]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox import (
    HAS_PROXMOXER, PveError, proxmox_argument_spec,
)
from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox_guest import guest_input_errors
from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox_guest_manager import GuestManager
from ansible_collections.thinkheads.phoenix.plugins.module_utils.validation import check_options


def main():
    argument_spec = proxmox_argument_spec()
    argument_spec.update(
        guest=dict(type='dict', required=True),
        state=dict(type='str', default='present', choices=['present', 'started', 'stopped', 'restarted', 'absent']),
        ostemplate=dict(type='str'),
        template_storage=dict(type='str', default='local'),
        storage=dict(type='str'),
        image=dict(type='str'),
        image_storage=dict(type='str', default='local'),
        clone_snapshot=dict(type='str'),
        full_clone=dict(type='bool', default=True),
        gpu_passthrough=dict(type='bool', default=True),
        password=dict(type='str', no_log=True),
        ssh_public_keys=dict(type='list', elements='str', default=[], no_log=False),
        shutdown_timeout=dict(type='int', default=60),
        adopt=dict(type='bool', default=False),
        restart_pending=dict(type='bool', default=False),
        migrate=dict(type='bool', default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_one_of=[('api_token_id', 'api_password')])
    check_options(module, 'proxmox_guest')
    if not HAS_PROXMOXER:
        module.fail_json(msg='the Python library proxmoxer is required on the host running this module')
    errors = guest_input_errors(module.params['guest'])
    if errors:
        module.fail_json(msg='; '.join(errors))
    runner = None
    try:
        runner = GuestManager(module)
        result = runner.run()
    except PveError as exc:
        for note in (runner.client.notes if runner else []):
            module.warn(note)
        extra = dict(runner.result) if runner else {}
        extra.pop('changed', None)
        module.fail_json(msg=exc.message, status=exc.status, errors=exc.errors, changed=bool(extra.get('tasks')),
                         api_calls=len(runner.client.calls) if runner else 0, **extra)
    result['api_calls'] = len(runner.client.calls)
    for note in runner.client.notes:
        module.warn(note)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
