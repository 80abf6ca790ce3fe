"""Migration to another node of the cluster, and the LXC interfaces endpoint."""

from __future__ import annotations

import re

from ..access import check_perm
from ..conf import GuestConf
from ..errors import ApiError, fail
from ..privs import mount_type
from ..routes import Request, guest_paths, route
from ..state import TYPE_NAMES, Sim
from .common import _load, _start_task
from .power import _do_start, _do_stop

# --------------------------------------------------------------------------------------
# migration to another node of the cluster

LOCAL_DEVICE_RE = re.compile(r"^(hostpci\d+|usb\d+|parallel\d+|serial\d+)$")


def _local_device(key: str, value: str) -> bool:
    if key.startswith("serial"):
        return value.startswith("/dev/")  # `socket` is not a host device
    if key.startswith("usb"):
        return "host=" in value and "mapping=" not in value  # `spice` is not one either
    return "mapping=" not in value  # a mapped PCI device (resource mapping) may migrate; pvesim has no mappings


def _migrate_blockers(sim: Sim, kind: str, vmid: int, conf: GuestConf, running: bool, params: dict) -> list[str]:
    """What stops the migration, checked in the task as PVE's migration prepare step does (log lines)."""
    options = conf.options
    if kind == "lxc":
        if running and params["online"]:
            # pve-container src/PVE/LXC/Migrate.pm prepare: no live migration of containers
            return ["lxc live migration is currently not implemented"]
        for key in sim.disk_keys(kind, options):
            mtype = mount_type(options[key])
            parsed = sim.parse_option(kind, key, options[key])
            # same prepare: a bind or device mount point migrates only when marked shared
            if mtype != "volume" and str(parsed.get("shared", "0")) != "1":
                return [f"cannot migrate local {mtype} mount point '{key}'"]
        return []
    # qemu-server src/PVE/QemuMigrate.pm prepare (QemuMigrate/Helpers.pm check_local_resources): PCI/USB
    # passthrough and host serial/parallel devices block a running VM, a stopped one unless `force`
    local = [k for k in sorted(options) if LOCAL_DEVICE_RE.match(k) and _local_device(k, options[k])]
    if local and (running or not params["force"]):
        return [f"can't migrate VM which uses local devices: {', '.join(local)}"]
    errors = []
    referenced = sim.referenced_volumes()
    for key in sim.disk_keys(kind, options):
        volid, parsed = sim.disk_volume(kind, key, options[key])
        if not volid or sim.storage(volid.split(":")[0])["shared"]:
            continue
        # qemu-server src/PVE/QemuMigrate.pm scan_local_volumes: local volumes are copied, except these
        name = volid.split(":", 1)[1]
        if parsed.get("media") == "cdrom" and "cloudinit" not in volid:
            errors.append(f"can't migrate local disk '{volid}': local cdrom image")
        elif "/" in name and name.split("/")[0].startswith("base-"):
            errors.append(f"can't migrate local disk '{volid}': can't migrate '{volid}' as it's a clone of "
                          f"'{name.split('/')[0]}'")
        elif options.get("template") == "1" and any(v.startswith(volid + "/") for v in referenced):
            errors.append(f"can't migrate local disk '{volid}': referenced by linked clone(s)")
        elif (running and not key.startswith("unused") and "cloudinit" not in volid
              and not params["with-local-disks"]):
            errors.append(f"can't migrate local disk '{volid}': can't live migrate attached local disks without "
                          "with-local-disks option")
    if errors:
        return [*errors, "can't migrate VM - check log"]
    return []


@route("POST", *guest_paths("/migrate"))
def migrate(sim: Sim, req: Request):
    kind = req.kind
    vmid = int(req.params["vmid"])
    # pve-container src/PVE/API2/LXC.pm migrate_vm and qemu-server src/PVE/API2/Qemu.pm migrate_vm: permissions
    # check ['perm', '/vms/{vmid}', ['VM.Migrate']], before anything else
    check_perm(req, f"/vms/{vmid}", "VM.Migrate")
    target = req.params["target"]
    source = sim.node
    # pve-container src/PVE/API2/LXC.pm migrate_vm, qemu-server src/PVE/API2/Qemu.pm migrate_vm: the target is
    # another cluster node (PVE::Cluster check_node_exists)
    if target == source:
        raise ApiError(400, "Parameter verification failed.", {"target": "target is local node."})
    if target not in sim.nodes:
        fail(f"no such cluster node '{target}'")
    if kind == "qemu" and req.flag("force") and req.authid != "root@pam":
        raise ApiError(400, "Parameter verification failed.", {"force": "Only root may use this option."})
    conf = sim.load_conf(kind, vmid)
    running = sim.is_running(vmid)
    params = {"online": req.flag("online"), "restart": req.flag("restart"), "force": req.flag("force"),
              "with-local-disks": req.flag("with-local-disks")}
    if kind == "lxc":
        # migrate_vm of pve-container: a running CT moves only in restart mode (stop, move, start on the target)
        if running and not params["online"] and not params["restart"]:
            fail("can't migrate running container without --online or --restart")
    else:
        sim.check_lock(kind, conf)
        # migrate_vm of qemu-server: a running VM needs `online`; a stopped one migrates offline whatever is asked
        if running and not params["online"]:
            fail("can't migrate running VM without --online")
        if not running:
            params["online"] = False
    log = []
    if kind == "qemu" and not running and req.flag("online"):
        log.append("VM isn't running. Doing offline migration instead.")

    def body(task):
        task.log.extend(log)
        task.log.append(f"starting migration of {TYPE_NAMES[kind]} {vmid} to node '{target}'")
        with sim.lock:
            current = sim.load_conf(kind, vmid, node=source)
            # both prepare steps: check_lock, then the blockers; phase1 sets lock 'migrate'
            if current.options.get("lock"):
                raise RuntimeError(f"{TYPE_NAMES[kind]} is locked ({current.options['lock']})")
            was_running = sim.is_running(vmid)
            problems = _migrate_blockers(sim, kind, vmid, current, was_running, params)
            if problems:
                task.log.extend(problems[:-1])
                raise RuntimeError(problems[-1])
            sim.set_lock(kind, vmid, "migrate")
        if kind == "lxc" and was_running:
            # pve-container src/PVE/LXC/Migrate.pm phase1: restart mode shuts the CT down first ...
            task.log.append(f"shutdown CT {vmid}")
            _do_stop(sim, kind, vmid, task)
        with sim.lock:
            # ... phase3 moves the config to the target node (PVE::AbstractConfig move_config_to_node) and the
            # final step removes the lock (qemu-server QemuMigrate.pm phase3_cleanup)
            sim.move_conf(kind, vmid, source, target)
            with sim.on_node(target):
                sim.set_lock(kind, vmid, None)
            sim.save()
        if kind == "lxc" and was_running:
            # ... and final_cleanup starts it on the target node
            with sim.on_node(target):
                task.log.append(f"start container on target node '{target}'")
                _do_start(sim, kind, vmid, task)
        task.log.append(f"migration finished successfully ({'online' if params['online'] else 'offline'})")

    def on_error(task, message):
        with sim.lock:
            if sim.conf_path(kind, vmid, source).is_file():
                current = sim.load_conf(kind, vmid, node=source)
                if current.options.get("lock") == "migrate":
                    sim.set_lock(kind, vmid, None)

    return _start_task(sim, req, kind, "migrate", vmid, body, on_error)


# --------------------------------------------------------------------------------------
# LXC interfaces (addresses from the config; a backend may add real ones)


@route("GET", "/nodes/{node}/lxc/{vmid}/interfaces")
def lxc_interfaces(sim: Sim, req: Request):
    kind, vmid, conf = _load(sim, req)
    if not sim.is_running(vmid):
        fail(f"CT {vmid} not running")
    result = [_interface("lo", "00:00:00:00:00:00", "127.0.0.1/8", "::1/128")]
    for key in sorted(k for k in conf.options if re.fullmatch(r"net\d+", k)):
        net = sim.parse_option("lxc", key, conf.options[key])
        inet = net["ip"] if net.get("ip") and net["ip"] not in ("dhcp", "manual") else None
        inet6 = net["ip6"] if net.get("ip6") and net["ip6"] not in ("dhcp", "manual", "auto") else None
        result.append(_interface(net.get("name", key), net.get("hwaddr", "").lower(), inet, inet6))
    return result


def _interface(name: str, mac: str, inet: str | None, inet6: str | None) -> dict:
    """One interface as pve-container LXC.pm get_interfaces lists it: the old inet/inet6/hwaddr keys and
    the newer hardware-address and ip-addresses (both required by the schema)."""
    item = {"name": name, "hwaddr": mac, "hardware-address": mac, "ip-addresses": []}
    for family, cidr in (("inet", inet), ("inet6", inet6)):
        if cidr:
            address, _sep, prefix = cidr.partition("/")
            item[family] = cidr
            item["ip-addresses"].append({"ip-address-type": family, "ip-address": address, "prefix": int(prefix)})
    return item
