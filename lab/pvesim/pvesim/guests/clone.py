"""Templates and clones (full and linked) of LXC containers and QEMU VMs."""

from __future__ import annotations

import copy
import re
import time

from ..conf import GuestConf, Section
from ..errors import fail
from ..privs import mount_type
from ..routes import Request, guest_paths, route
from ..state import TYPE_NAMES, Sim, random_mac
from .common import LXC_NET_ORDER, SNAPSHOT_ONLY, _load, _start_task, _text, _unlock_on_error
from .config import _uuid
from .snapshots import _get_snapshot

# --------------------------------------------------------------------------------------
# template and clone


@route("POST", *guest_paths("/template"))
def make_template(sim: Sim, req: Request):
    kind, vmid, conf = _load(sim, req)
    # qemu-server src/PVE/API2/Qemu.pm template ($load_and_check) and pve-container src/PVE/API2/LXC.pm template:
    # lock, then snapshots (neither kind converts a guest that has snapshots), then template, then running
    sim.check_lock(kind, conf)
    if conf.snapshots:
        fail(f"unable to create template, because {TYPE_NAMES[kind]} contains snapshots")
    if conf.options.get("template") == "1":
        fail("you can't convert a template to a template")
    if sim.is_running(vmid):
        fail("you can't convert a VM to template if VM is running" if kind == "qemu"
             else "you can't convert a CT to template if the CT is running")
    sim.set_lock(kind, vmid, "template" if kind == "qemu" else "create")

    def body(task):
        with sim.lock:
            fresh = sim.load_conf(kind, vmid)
            for key in sim.disk_keys(kind, fresh.options):
                volid, parsed = sim.disk_volume(kind, key, fresh.options[key])
                if not volid or "cloudinit" in volid or parsed.get("media") == "cdrom":
                    continue
                base = volid.replace(f"vm-{vmid}-disk-", f"base-{vmid}-disk-")
                fresh.options[key] = fresh.options[key].replace(volid, base, 1)
                task.log.append(f"renamed volume {volid} to {base}")
            fresh.options.pop("lock", None)
            fresh.options["template"] = "1"
            sim.save_conf(kind, vmid, fresh)

    upid = _start_task(sim, req, kind, "template", vmid, body, _unlock_on_error(sim, kind, vmid))
    # pve-container API2/LXC.pm template: the vztemplate worker is forked inside lock_config and its UPID dropped
    # (returns null); qemu-server API2/Qemu.pm template returns the qmtemplate UPID
    return upid if kind == "qemu" else None


@route("POST", *guest_paths("/clone"))
def clone(sim: Sim, req: Request):
    kind, vmid, conf = _load(sim, req)
    newid = int(req.params["newid"])
    snapname = req.params.get("snapname")
    storage = req.params.get("storage")
    target = req.params.get("target")
    # pve-container src/PVE/API2/LXC.pm clone_vm, qemu-server src/PVE/API2/Qemu.pm clone_vm: `target` naming the
    # node itself (or localhost) is no target; another node must be a cluster member (PVE::Cluster
    # check_node_exists), a `storage` given with it must be shared
    if target in (sim.node, "localhost"):
        target = None
    if target and target not in sim.nodes:
        fail(f"no such cluster node '{target}'")
    if storage:
        scfg = sim.storage(storage)
        if target and not scfg["shared"]:
            fail(f"can't clone to non-shared storage '{storage}'")
    is_template = conf.options.get("template") == "1"
    full = req.params.get("full")
    full = (not is_template) if full is None else _text(full) == "1"
    if storage and not full:
        fail("parameter 'storage' not allowed for linked clones")
    sim.check_lock(kind, conf)
    sim.check_vmid_unused(newid)
    source = conf.main
    if snapname:
        source = _get_snapshot(conf, snapname)
    if kind == "lxc" and full and sim.is_running(vmid) and not snapname:
        fail("Full clone of a running container is only possible from a snapshot")
    newconf = GuestConf(kind)
    options = {k: v for k, v in source.options.items() if k not in SNAPSHOT_ONLY}
    newconf.main = Section(options, source.description, [list(x) for x in source.lxc])
    if req.params.get("description") is not None:
        newconf.main.description = req.params["description"]
    name_key = "hostname" if kind == "lxc" else "name"
    new_name = req.params.get(name_key)
    if new_name:
        options[name_key] = new_name
    elif kind == "qemu":
        options["name"] = f"Copy-of-VM-{options.get('name', vmid)}"
    if target:
        # the same clone_vm functions: every volume of the source must be on shared storage ($sharedvm; qemu-server
        # check_storage_access_clone), else "can't clone VM to node 'b' (VM uses local storage)"
        for key in sim.disk_keys(kind, options):
            if key.startswith("unused"):
                continue
            volid, parsed = sim.disk_volume(kind, key, options[key])
            if volid and not sim.storage(volid.split(":")[0])["shared"]:
                fail(f"can't clone {TYPE_NAMES[kind]} to node '{target}' ({TYPE_NAMES[kind]} uses local storage)")
    log = [f"create {'full' if full else 'linked'} clone of {TYPE_NAMES[kind]} {vmid} to {newid}"]
    pending_disks = []
    taken: set[str] = set()
    for key in sim.disk_keys(kind, options):
        if key.startswith("unused"):
            del options[key]
            continue
        if kind == "lxc" and mount_type(options[key]) != "volume":
            # pve-container src/PVE/API2/LXC.pm clone_vm: only volume mount points can be cloned
            fail(f"unable to clone mountpoint '{key}' (type {mount_type(options[key])})")
        volid, parsed = sim.disk_volume(kind, key, options[key])
        if not volid:
            continue
        volkey = "volume" if kind == "lxc" else "file"
        if "cloudinit" in volid:
            parsed[volkey] = sim.alloc_volume(volid.split(":")[0], newid, "images", suffix="cloudinit", taken=taken)
        elif parsed.get("media") == "cdrom":
            continue
        elif full:
            target_storage = storage or volid.split(":")[0]
            pending_disks.append((key, target_storage))
            continue
        else:
            # a linked clone needs the storage's 'clone' feature: a base volume, or (LVM-thin) a snapshot
            # (pve-storage LvmThinPlugin.pm / Plugin.pm volume_has_feature)
            lvmthin = sim.storages.get(volid.split(":")[0], {}).get("type") == "lvmthin"
            if f"base-{vmid}-" not in volid and not (snapname and lvmthin):
                if kind == "lxc":
                    fail(f"Linked clone feature for '{volid}' is not available")
                # qemu-server src/PVE/API2/Qemu.pm clone_vm
                what = " a snapshot of" if snapname else ""
                fail(f"Linked clone feature is not supported for{what} '{volid}' ({key})")
            src_storage, name = volid.split(":", 1)
            allocated = sim.alloc_volume(src_storage, newid, "rootdir" if kind == "lxc" else "images", taken=taken)
            parsed[volkey] = f"{src_storage}:{name}/{allocated.split(':', 1)[1]}"
        options[key] = sim.print_option(kind, key, parsed, first=("mp",) if kind == "lxc" else ())
    # new MAC addresses
    for key in [k for k in options if re.fullmatch(r"net\d+", k)]:
        parsed = sim.parse_option(kind, key, options[key])
        if kind == "lxc":
            parsed["hwaddr"] = random_mac()
            options[key] = sim.print_option(kind, key, parsed, first=LXC_NET_ORDER)
        else:
            model = parsed.pop("model", "virtio")
            parsed.pop("macaddr", None)
            rest = sim.print_option(kind, key, parsed, first=("bridge",))
            options[key] = f"{model}={random_mac()}" + (f",{rest}" if rest else "")
    if kind == "qemu":
        ctime = int(time.time())
        options["vmgenid"] = _uuid(newid, ctime)
        options["smbios1"] = f"uuid={_uuid(newid, ctime + 1)}"
    options["lock"] = "create" if kind == "lxc" else "clone"
    content = "rootdir" if kind == "lxc" else "images"
    for _key, target_storage in pending_disks:
        if content not in sim.storage(target_storage)["content"].split(","):
            what = "container directories" if kind == "lxc" else "VM images"
            fail(f"storage '{target_storage}' does not support {what}")
    # allocate full-clone disks now so that parallel clones do not pick the same names
    sim.save_conf(kind, newid, newconf)
    try:
        for key, target_storage in pending_disks:
            volid, parsed = sim.disk_volume(kind, key, options[key])
            volkey = "volume" if kind == "lxc" else "file"
            parsed[volkey] = sim.alloc_volume(target_storage, newid, content, taken=taken)
            options[key] = sim.print_option(kind, key, parsed, first=("mp",) if kind == "lxc" else ())
            log.append(f"create full clone of drive {key} ({volid}) to {parsed[volkey]}")
        sim.save_conf(kind, newid, newconf)
    except Exception:
        sim.remove_conf(kind, newid)
        raise
    # pve-firewall src/PVE/Firewall/Helpers.pm clone_vmfw_conf (called by qemu-server API2/Qemu.pm and pve-container
    # API2/LXC.pm clone_vm before the disks are copied): the clone gets a copy of the source's <vmid>.fw, or none
    fw_guests = sim.firewall.setdefault("guests", {})
    fw_guests.pop(str(newid), None)
    if str(vmid) in fw_guests:
        fw_guests[str(newid)] = copy.deepcopy(fw_guests[str(vmid)])
    # pve-container src/PVE/API2/LXC.pm clone_vm: the source CT (a template too) holds lock 'disk' until the clone
    # task ends, so a second clone of it meanwhile answers 'CT is locked (disk)'; qemu-server only flocks the source
    source_locked = kind == "lxc"
    if source_locked:
        sim.set_lock(kind, vmid, "disk")

    def body(task):
        task.log.extend(log)
        with sim.lock:
            guest = sim.guest(kind, newid)
            inherited = dict(sim.secrets.get(str(vmid), {}))
            if inherited:
                # the clone's root keys are the source's (the rootfs is copied), so a clone of a clone has them too
                sim.secrets[str(newid)] = inherited
        sim.backend.create(guest, inherited)
        with sim.lock:
            sim.set_lock(kind, newid, None)
            if source_locked:
                sim.set_lock(kind, vmid, None)
            if target:
                # clone_vm of both: the new config is written on this node, then moved to the target node
                sim.move_conf(kind, newid, sim.node, target)
                task.log.append(f"moved {TYPE_NAMES[kind]} {newid} config to node '{target}'")

    def on_error(task, message):
        with sim.lock:
            sim.remove_conf(kind, newid)
            if source_locked:
                sim.set_lock(kind, vmid, None)

    return _start_task(sim, req, kind, "clone", vmid, body, on_error, vmids=(vmid, newid))
