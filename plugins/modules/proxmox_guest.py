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

import re
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox import (
    HAS_PROXMOXER, PveClient, PveError, guest_missing, proxmox_argument_spec,
)
from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox_privs import root_only_message, root_only_writes
from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox_recover import create_guest
from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox_guest import (
    OWNER_TAG, desired_lxc, desired_qemu, disk_size_gb, encode_for_api, guest_input_errors, keep_current_macs,
    managed_view, ostemplate_volid, owned, plan_config, config_from_pending, predict_pending,
)
from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox_image import volume_names
from ansible_collections.thinkheads.phoenix.plugins.module_utils.validation import check_options


class GuestRunner:

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.guest = module.params['guest']
        self.client = PveClient(**dict((k, module.params[k]) for k in proxmox_argument_spec()))
        self.kind = 'lxc' if self.guest.get('type', 'lxc') == 'lxc' else 'qemu'
        self.vmid = int(self.guest['id'])
        # the configured node, and the node the guest is on (found through /cluster/resources when it is not there)
        self.want_node = str(self.guest.get('node') or self.client.node)
        self.node = self.want_node
        self.result = dict(changed=False, vmid=self.vmid, kind=self.kind, created=False, changes={}, deleted=[],
                           tasks=[])
        self.before = {}
        self.after = {}
        self.dirty = False      # written since the config was last read
        self.pending = []       # keys Proxmox keeps pending (from the last read)
        self.planned = ({}, [])  # the config write reconcile made or, in check mode, would make
        self.known_status = None

    # -- API helpers -------------------------------------------------------------------------------

    @property
    def base(self):
        return 'nodes/%s/%s/%d' % (self.node, self.kind, self.vmid)

    def task(self, upid):
        self.dirty = True
        if isinstance(upid, str) and upid.startswith('UPID:'):
            self.result['tasks'].append(upid)
            self.client.wait_task(upid)

    def current_config(self, locate=False):
        """The config as GET .../config shows it (pending values in), read with the pending keys from GET .../pending.

        With ``locate``, a guest that is not on its node is looked for in the whole cluster (one GET
        /cluster/resources) and read where it lives."""
        self.dirty = False
        try:
            items = self.client.get(self.base + '/pending')
        except PveError as exc:
            if "hostname lookup '%s' failed" % self.node in (exc.message or ''):
                # pveproxy cannot resolve a node that is not in the cluster
                self.module.fail_json(msg='%s %d: node %s is not a node of the cluster (Proxmox: %s). Set the guest\'s '
                                          'node to one of the cluster\'s nodes. Nothing was written'
                                      % (self.kind, self.vmid, self.node, exc.message.strip()), **self.result)
            if not guest_missing(exc, self.vmid):
                raise
            found = self.client.locate(self.vmid) if locate else None
            if not found or not found.get('node') or found['node'] == self.node or found.get('type') != self.kind:
                self.pending = []
                return None
            self.node = str(found['node'])
            if found.get('status') in ('running', 'stopped'):
                self.known_status = found['status']
            return self.current_config()
        config, self.pending = config_from_pending(items)
        return config

    def desired(self):
        if self.kind == 'lxc':
            return desired_lxc(self.guest, gpu_passthrough=self.params['gpu_passthrough'])
        return desired_qemu(self.guest, ssh_keys=self.params['ssh_public_keys'])

    def storage(self):
        return self.params['storage'] or self.guest.get('storage_pool') or 'local-lvm'

    # -- create ------------------------------------------------------------------------------------

    def create(self, desired):
        src = self.guest.get('clone_from')
        if src:
            self.clone(int(src))
            return
        if self.kind == 'lxc':
            template = self.params['ostemplate'] or ostemplate_volid(self.guest.get('template'),
                                                                     self.params['template_storage'])
            if not template:
                self.module.fail_json(msg='guest %d has neither clone_from_ctid nor a template; set ostemplate'
                                      % self.vmid, **self.result)
            params = dict((k, encode_for_api(k, v)) for k, v in desired.items())
            params.update(vmid=self.vmid, ostemplate=template,
                          rootfs='%s:%d' % (self.storage(), int(self.guest.get('disk_gb') or 8)),
                          unprivileged=1 if self.guest.get('unprivileged', True) else 0)
            if self.params['password']:
                params['password'] = self.params['password']
            if self.params['ssh_public_keys']:
                params['ssh-public-keys'] = '\n'.join(self.params['ssh_public_keys'])
            self.task(create_guest(self.client, 'lxc', self.vmid, 'nodes/%s/lxc' % self.node, params, 'vzcreate'))
        else:
            params = dict((k, encode_for_api(k, v)) for k, v in desired.items())
            params.update(self.qemu_disks())
            params.update(vmid=self.vmid)
            self.task(create_guest(self.client, 'qemu', self.vmid, 'nodes/%s/qemu' % self.node, params,
                                   'qmcreate'))

    def image(self):
        """The import-from source of a new VM's boot disk, or None for an empty disk."""
        if self.params['image']:
            return self.params['image']
        name = self.guest.get('template_image')
        if not name:
            return None
        content, filename = volume_names(name, 'import', self.guest.get('template_image_format') or 'qcow2')[0]
        return '%s:%s/%s' % (self.params['image_storage'], content, filename)

    def qemu_disks(self):
        """The create parameters of a new VM's disks, cloud-init drive and console."""
        image = self.image()
        disks = dict(scsihw='virtio-scsi-pci', ide2='%s:cloudinit' % self.storage(), boot='order=scsi0',
                     serial0='socket')
        if image:
            # qemu-server src/PVE/API2/Qemu.pm: a disk imported on create is written '<storage>:0,import-from=<src>'
            disks.update(scsi0='%s:0,import-from=%s' % (self.storage(), image), vga='serial0')
        else:
            disks['scsi0'] = '%s:%d' % (self.storage(), int(self.guest.get('disk_gb') or 8))
        return disks

    def source_node(self, src):
        """The node the clone source lives on: where /cluster/resources finds it, else this guest's node."""
        found = self.client.locate(src)
        return str(found['node']) if found and found.get('node') else self.node

    def clone(self, src):
        src_node = self.source_node(src)
        src_base = 'nodes/%s/%s/%d' % (src_node, self.kind, src)
        params = {'newid': self.vmid, 'full': 1 if self.params['full_clone'] else 0}
        if src_node != self.node:
            # cloned onto this guest's node from the source's (Proxmox allows it from shared storage only)
            params['target'] = self.node
        params['hostname' if self.kind == 'lxc' else 'name'] = self.guest['hostname']
        if self.params['full_clone']:
            params['storage'] = self.storage()
        if self.params['clone_snapshot']:
            params['snapname'] = self.params['clone_snapshot']
        try:
            upid = create_guest(self.client, self.kind, self.vmid, src_base + '/clone', params,
                                'vzclone' if self.kind == 'lxc' else 'qmclone', src)
        except PveError as exc:
            if guest_missing(exc, src):
                self.module.fail_json(msg='guest %d clones from %d, which does not exist on node %s; create it first '
                                      '(playbooks/create.yml orders guests by dependency)'
                                      % (self.vmid, src, src_node), **self.result)
            if 'target' in params and re.search(r'uses local storage|non-shared storage', exc.message or ''):
                self.module.fail_json(
                    msg='guest %d belongs on node %s, but its clone source %d is on node %s and Proxmox clones onto '
                        'another node only from shared storage (Proxmox: %s). Put the clone source on a shared '
                        'storage (and the clone\'s storage_pool too), or place the guest on node %s. Nothing was '
                        'written' % (self.vmid, self.node, src, src_node, exc.message.strip(), src_node),
                    **self.result)
            raise
        self.client.forget()
        self.task(upid)

    # -- reconcile ---------------------------------------------------------------------------------

    def reconcile(self, current, desired):
        if self.kind == 'lxc' and current is not None:
            want = 1 if self.guest.get('unprivileged', True) else 0
            have = int(current.get('unprivileged', 0) or 0)
            if want != have:
                self.module.fail_json(msg='guest %d is %s but the config asks for %s; unprivileged can only be chosen '
                                      'when the container is created (destroy and re-create it)' % (
                                          self.vmid, 'unprivileged' if have else 'privileged',
                                          'unprivileged' if want else 'privileged'), **self.result)
        desired = keep_current_macs(self.kind, desired, current)
        changes, deletes = plan_config(self.kind, desired, current or {})
        self.planned = (changes, deletes)
        if changes or deletes:
            self.result['changed'] = True
            self.result['changes'].update(changes)
            self.result['deleted'] = sorted(set(self.result['deleted']) | set(deletes))
            if not self.module.check_mode:
                params = dict((k, encode_for_api(k, v)) for k, v in changes.items())
                if deletes:
                    params['delete'] = ','.join(deletes)
                if current and current.get('digest'):
                    params['digest'] = current['digest']
                self.put_config(params, desired)
        self.grow_disk(current or {})

    def grow_disk(self, current):
        want = self.guest.get('disk_gb')
        if not want or not current:
            return
        key, have = disk_size_gb(self.kind, current)
        if key is None or have is None:
            return
        if have > float(want) + 0.001:
            self.module.warn('guest %d: %s is %gG, larger than the configured %sG; Proxmox cannot shrink disks'
                             % (self.vmid, key, have, want))
        elif have + 0.001 < float(want):
            self.result['changed'] = True
            self.result['changes']['%s_size' % key] = '%dG' % int(want)
            if not self.module.check_mode:
                self.task(self.client.put(self.base + '/resize', disk=key, size='%dG' % int(want)))

    # -- power -------------------------------------------------------------------------------------

    def status(self):
        self.known_status = (self.client.get(self.base + '/status/current') or {}).get('status')
        return self.known_status

    def power(self, state, is_template):
        if is_template:
            if state in ('started', 'restarted'):
                self.module.warn('guest %d is a template; templates are never started' % self.vmid)
            return
        status = 'stopped' if self.result['created'] and self.module.check_mode else self.status()
        if state == 'restarted' and status == 'running':
            self.result['changed'] = True
            self.result['power'] = 'restarted'
            if not self.module.check_mode:
                self.task(self.client.post(self.base + '/status/reboot'))
            return
        if state in ('started', 'restarted') and status != 'running':
            self.result['changed'] = True
            self.result['power'] = 'started'
            self.known_status = 'running'
            if not self.module.check_mode:
                self.task(self.client.post(self.base + '/status/start'))
        elif state == 'stopped' and status == 'running':
            self.result['changed'] = True
            self.result['power'] = 'stopped'
            self.known_status = 'stopped'
            if not self.module.check_mode:
                self.stop()

    def stop(self):
        try:
            self.task(self.client.post(self.base + '/status/shutdown', timeout=self.params['shutdown_timeout'],
                                       forceStop=1))
        except PveError:
            self.task(self.client.post(self.base + '/status/stop'))

    # -- pending changes ---------------------------------------------------------------------------

    def predicted_pending(self, current):
        """Check mode: the keys that would be pending after the writes and power change this run would make."""
        changes, deletes = self.planned
        written = set(changes) | set(deletes)
        if self.result.get('power') in ('started', 'restarted'):
            return []                   # a start (or a reboot) applies every pending change
        if self.result.get('power') == 'stopped':
            return [] if self.kind == 'qemu' else list(self.pending)    # a VM's stop applies them too
        if not written:
            return list(self.pending)
        would = predict_pending(self.kind, changes, deletes, current)
        if (would or self.pending) and self.status() == 'running':
            return sorted((set(self.pending) - written) | set(would))
        # a stopped guest takes the write at once (a VM's update applies all of its pending changes)
        return [] if self.kind == 'qemu' else sorted(set(self.pending) - written)

    def settle_pending(self, current, is_template):
        """Report (and with restart_pending, apply by a reboot) the changes Proxmox keeps pending."""
        self.result.update(pending=[], reboot_required=False, restarted=False)
        if is_template or not self.result.get('exists'):
            return current
        if self.module.check_mode:
            pending = self.predicted_pending(current)
        else:
            if self.pending and self.result.get('power'):
                current = self.current_config()         # the start (or a VM's stop) applied them
            pending = list(self.pending)
        if not pending:
            return current
        running = (self.known_status or self.status()) == 'running'
        if running and self.params['restart_pending']:
            self.result.update(changed=True, restarted=True, pending_applied=pending)
            if self.module.check_mode:
                return current
            self.task(self.client.post(self.base + '/status/reboot'))
            current = self.current_config()
            pending = list(self.pending)
            if pending:
                self.module.warn('%s %d: still pending after the reboot: %s'
                                 % (self.kind, self.vmid, ', '.join(pending)))
        elif running:
            self.module.warn(
                '%s %d is running and Proxmox keeps these changes pending until it restarts: %s. Restart it, or run '
                'with restart_pending: true (playbooks: -e phoenix_restart_pending=true)'
                % (self.kind, self.vmid, ', '.join(pending)))
        self.result.update(pending=pending, reboot_required=running and bool(pending))
        return current

    def make_template(self, current):
        if str((current or {}).get('template', '0')) == '1':
            return
        self.result['changed'] = True
        self.result['changes']['template'] = 1
        if not self.module.check_mode:
            if not self.result['created'] and self.status() == 'running':
                self.stop()
            reply = self.client.post(self.base + '/template')
            if isinstance(reply, str) and reply.startswith('UPID:'):
                self.task(reply)            # qemu: the qmtemplate task
            else:
                self.wait_for_template()    # lxc: null reply, a detached vztemplate worker

    def wait_for_template(self):
        """Poll the config until it shows template: 1, for at most task_timeout seconds."""
        self.dirty = True
        timeout = self.params['task_timeout']
        deadline = time.monotonic() + timeout
        while True:
            config = self.current_config() or {}
            if str(config.get('template', '0')) == '1':
                return
            if time.monotonic() >= deadline:
                self.module.fail_json(
                    msg="%s %d is not a template %d s after POST %s/template (Proxmox answers it with no task ID and "
                        "converts in the background): see the vztemplate task in the node's task log"
                        % (self.kind, self.vmid, timeout, self.base), **self.result)
            time.sleep(0.5)

    # -- entry -------------------------------------------------------------------------------------

    def run(self):
        state = self.params['state']
        current = self.current_config(locate=True)
        if current is not None and not owned(current) and not self.params['adopt']:
            name = current.get('hostname') or current.get('name') or ''
            self.result.pop('changed')
            self.module.fail_json(
                msg="%s %d (%r) exists on node %s but Phoenix did not make it (its tags lack '%s'): refusing to %s "
                    "it. To take it over, set adopt: true (playbooks: -e phoenix_adopt=true); it is then tagged '%s'"
                    % (self.kind, self.vmid, str(name), self.node, OWNER_TAG,
                       'destroy' if state == 'absent' else 'reconcile', OWNER_TAG),
                changed=False, **self.result)
        if state == 'absent':
            return self.absent(current)
        if current is not None and self.node != self.want_node:
            current = self.placement(current)
        desired = self.desired()
        self.check_root_only(current, desired)
        self.before = managed_view(self.kind, current) if current else {}
        if current is None:
            self.result.update(changed=True, created=True, changes=dict(desired))
            if self.kind == 'qemu' and not self.guest.get('clone_from'):
                self.result['changes'].update(self.qemu_disks())
            if self.module.check_mode:
                self.result['msg'] = ('%s %d does not exist yet (check mode): it would be created, then configured'
                                      % (self.kind, self.vmid))
            else:
                self.create(desired)
                current = self.current_config()
        self.result['exists'] = current is not None
        self.reconcile(current, desired)
        if not self.module.check_mode and self.dirty:
            current = self.current_config()
        is_template = bool(self.guest.get('is_template'))
        if is_template:
            self.make_template(current)
        if state in ('started', 'stopped', 'restarted'):
            self.power(state, is_template)
        current = self.settle_pending(current, is_template)
        if self.module.check_mode or not self.result['changed']:
            after = dict(self.before)
            after.update(self.result['changes'])
            for key in self.result['deleted']:
                after.pop(key, None)
        else:
            after = managed_view(self.kind, current or {})
        self.result['config'] = after
        drift = self.result.get('node_drift')
        self.result['node'] = drift['to'] if drift and drift['migrated'] else self.node
        self.result['diff'] = dict(before=self.before, after=after,
                                   before_header='%s %d' % (self.kind, self.vmid),
                                   after_header='%s %d' % (self.kind, self.vmid))
        if drift and drift['migrated']:
            self.result['diff']['before'] = dict(self.before, node=drift['from'])
            self.result['diff']['after'] = dict(after, node=drift['to'])
        return self.result

    # -- placement ---------------------------------------------------------------------------------

    def placement(self, current):
        """The guest lives on another node than configured: report it, or with ``migrate`` move it there."""
        drift = {'from': self.node, 'to': self.want_node, 'migrated': bool(self.params['migrate'])}
        self.result['node_drift'] = drift
        if not self.params['migrate']:
            self.module.warn('%s %d is on node %s, not on its configured node %s; it is reconciled where it is. Run '
                             'with migrate: true (playbooks: -e phoenix_migrate=true) to migrate it to %s'
                             % (self.kind, self.vmid, self.node, self.want_node, self.want_node))
            return current
        self.result['changed'] = True
        running = (self.known_status or self.status()) == 'running'
        params = {'target': self.want_node}
        if running and self.kind == 'lxc':
            params['restart'] = 1       # pve-container: a running CT migrates only in restart mode
        elif running:
            params.update({'online': 1, 'with-local-disks': 1})     # qemu-server: live, local disks copied
        drift['mode'] = 'restart' if 'restart' in params else 'online' if 'online' in params else 'offline'
        if self.module.check_mode:
            return current      # the rest of the run reads the guest where it is
        self.task(self.client.post(self.base + '/migrate', **params))
        self.client.forget()
        self.node = self.want_node
        return self.current_config()

    def absent(self, current):
        self.result['exists'] = current is not None and self.module.check_mode
        if current is None:
            return self.result
        self.result['changed'] = True
        self.result['diff'] = dict(before=managed_view(self.kind, current), after={})
        if self.module.check_mode:
            return self.result
        if str(current.get('template', '0')) != '1' and self.status() == 'running':
            self.task(self.client.post(self.base + '/status/stop'))
        self.task(self.client.delete(self.base, purge=1, **{'destroy-unreferenced-disks': 1}))
        return self.result

    # -- root-only options and lost answers ----------------------------------------------------------

    def check_root_only(self, current, desired):
        """Fail before any write when this run would write LXC options that only root@pam itself may write."""
        authid = self.client.authid
        if self.kind != 'lxc' or authid == 'root@pam':
            return
        action = 'change'
        if current is not None:
            base, unprivileged = current, str(current.get('unprivileged', '0')) == '1'
        elif self.guest.get('clone_from'):
            # the clone copies its source's config; the update after it writes the difference
            try:
                src = int(self.guest['clone_from'])
                base = self.client.get('nodes/%s/lxc/%d/config' % (self.source_node(src), src))
            except PveError as exc:
                if guest_missing(exc):
                    return          # the clone itself fails with its own message
                raise
            base = dict((k, v) for k, v in base.items() if k not in ('lock', 'template', 'parent', 'digest'))
            unprivileged = str(base.get('unprivileged', '0')) == '1'
        else:
            base, unprivileged, action = None, bool(self.guest.get('unprivileged', True)), 'set'
        if base is None:
            changes, deletes = desired, []
        else:
            changes, deletes = plan_config(self.kind, keep_current_macs(self.kind, desired, base), base)
        found = root_only_writes(authid, changes, deletes, base, unprivileged)
        if found:
            self.module.fail_json(msg=root_only_message(self.kind, self.vmid, authid, found, action),
                                  root_only=[key for key, _why in found], **self.result)

    def put_config(self, params, desired):
        """PUT the config; after a lost answer re-read it and send only what is still missing."""
        path = self.base + '/config'
        notes = len(self.client.notes)
        try:
            self.task(self.client.put(path, **params))
            return
        except PveError as exc:
            # a lock that came and went rewrote the config, so the digest read before it no longer matches
            stale = ('detected modified configuration' in (exc.message or '')
                     and any('to go away' in note for note in self.client.notes[notes:]))
            if not exc.ambiguous and not stale:
                raise
            self.client.notes.append(
                'PUT %s: %s; re-reading the config instead of sending it again' % (
                    path, 'answer lost (%s)' % exc.message if exc.ambiguous
                    else 'the config changed while it was locked'))
        fresh = self.current_config() or {}
        self.dirty = True
        changes, deletes = plan_config(self.kind, keep_current_macs(self.kind, desired, fresh), fresh)
        if not changes and not deletes:
            self.client.notes.append('PUT %s: the update had been applied; nothing left to write' % path)
            return
        params = dict((k, encode_for_api(k, v)) for k, v in changes.items())
        if deletes:
            params['delete'] = ','.join(deletes)
        if fresh.get('digest'):
            params['digest'] = fresh['digest']
        self.task(self.client.put(path, **params))


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
        runner = GuestRunner(module)
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
