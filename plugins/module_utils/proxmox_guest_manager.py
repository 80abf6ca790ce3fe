# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""GuestManager: the proxmox_guest module's API work (create or clone, reconcile, migrate, power, pending, template,
destroy) on top of the pure desired-config and plan functions of module_utils/proxmox_guest.py."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import re
import time

from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox import (
    PveClient, PveError, guest_missing, proxmox_argument_spec,
)
from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox_privs import root_only_message, root_only_writes
from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox_recover import create_guest
from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox_guest import (
    OWNER_TAG, desired_lxc, desired_qemu, disk_size_gb, encode_for_api, keep_current_macs,
    managed_view, ostemplate_volid, owned, plan_config, config_from_pending, predict_pending,
)
from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox_image import volume_names


class GuestManager:
    """One Proxmox guest (LXC container or QEMU VM) brought to its desired config, node, power and template state."""

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
