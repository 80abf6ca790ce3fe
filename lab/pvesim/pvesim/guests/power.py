"""Guest status (current, start, stop, reboot), destroy and disk resize."""

from __future__ import annotations

import re
import time

from ..conf import GuestConf
from ..errors import fail, param_fail
from ..formats import parse_size
from ..pending import apply_all
from ..routes import Request, guest_paths, route
from ..state import TYPE_NAMES, Sim, format_size
from .common import _load, _start_task, _text, _unlock_on_error

# --------------------------------------------------------------------------------------
# status


def _status(sim: Sim, kind: str, vmid: int, conf: GuestConf, brief: bool = False) -> dict:
    options = conf.options
    running = sim.is_running(vmid)
    started = sim.runtime.get(str(vmid), {}).get("started", time.time())
    if kind == "lxc":
        name = options.get("hostname") or f"CT{vmid}"
        memory = int(options.get("memory", "512"))
        rootfs = sim.parse_option("lxc", "rootfs", options.get("rootfs", ""))
        maxdisk = parse_size(rootfs.get("size", "0")) or 0
        cpus = int(float(options.get("cores", "0"))) or 1
    else:
        name = options.get("name") or f"VM{vmid}"
        mem = options.get("memory", "2048")
        memory = int(re.sub(r"^(current=)?(\d+).*$", r"\2", mem)) if re.match(r"^(current=)?\d+", mem) else 2048
        maxdisk = 0
        for key in sorted(options):
            if re.fullmatch(r"(scsi|virtio|sata|ide)\d+", key) and "media=cdrom" not in options[key]:
                maxdisk = parse_size(sim.parse_option("qemu", key, options[key]).get("size", "0")) or 0
                break
        cpus = int(options.get("cores", "1")) * int(options.get("sockets", "1"))
    data = {
        "vmid": int(vmid), "name": name, "status": "running" if running else "stopped",
        "uptime": int(time.time() - started) if running else 0, "cpus": cpus, "cpu": 0.01 if running else 0,
        "maxmem": memory * 1024**2, "mem": (memory * 1024**2) // 8 if running else 0,
        "maxdisk": maxdisk, "disk": maxdisk // 10 if running else 0,
        "netin": 0, "netout": 0, "diskread": 0, "diskwrite": 0, "type": kind,
    }
    if kind == "lxc":
        swap = int(options.get("swap", "512"))
        data.update({"maxswap": swap * 1024**2, "swap": 0})
    if options.get("template") == "1":
        data["template"] = 1
    if options.get("lock"):
        data["lock"] = options["lock"]
    if options.get("tags"):
        data["tags"] = options["tags"]
    if brief:
        return data
    data["ha"] = {"managed": 0}
    if kind == "qemu":
        data["qmpstatus"] = data["status"]
        agent = sim.parse_option("qemu", "agent", options.get("agent", "0"))
        if agent.get("enabled") == "1":
            data["agent"] = 1
        if running:
            data["running-qemu"] = "9.2.0"
            data["running-machine"] = "pc-i440fx-9.2+pve1"
    data.update(sim.backend.status(sim.guest(kind, vmid, conf)) or {})
    return data


@route("GET", *guest_paths("/status"))
def status_index(sim: Sim, req: Request):
    _load(sim, req)
    names = ["current", "start", "stop", "shutdown", "reboot", "suspend", "resume"]
    return [{"subdir": n} for n in names]


@route("GET", *guest_paths("/status/current"))
def status_current(sim: Sim, req: Request):
    kind, vmid, conf = _load(sim, req)
    return _status(sim, kind, vmid, conf)


def _apply_pending(sim, kind, vmid, task):
    """Apply every pending change (call with sim.lock held); the backend hears of them before it starts."""
    conf = sim.load_conf(kind, vmid)
    if not conf.pending:
        return None
    changed, deleted = apply_all(sim, kind, conf)
    sim.save_conf(kind, vmid, conf)
    task.log.append(f"applied pending changes: {', '.join(sorted(set(changed) | set(deleted)))}")
    return (sim.guest(kind, vmid, conf), changed, deleted) if changed or deleted else None


def _do_start(sim, kind, vmid, task):
    with sim.lock:
        # pve-container src/PVE/LXC.pm vm_start; qemu-server src/PVE/QemuServer.pm vm_start_nolock
        applied = _apply_pending(sim, kind, vmid, task)
        guest = sim.guest(kind, vmid)
    if applied:
        sim.backend.config_changed(*applied)
    sim.backend.start(guest)
    with sim.lock:
        sim.set_running(vmid, True)
        sim.save()
    task.log.append(f"starting {TYPE_NAMES[kind]} {vmid}")


def _do_stop(sim, kind, vmid, task):
    with sim.lock:
        guest = sim.guest(kind, vmid)
    sim.backend.stop(guest)
    with sim.lock:
        sim.set_running(vmid, False)
        sim.save()
        # qemu-server src/PVE/QemuServer.pm vm_stop_cleanup applies pending changes (a CT keeps them until start)
        applied = _apply_pending(sim, kind, vmid, task) if kind == "qemu" else None
    if applied:
        sim.backend.config_changed(*applied)
    task.log.append(f"stopped {TYPE_NAMES[kind]} {vmid}")


def _check_lock_unless_skip(sim, req, kind, conf):
    if not req.flag("skiplock"):
        sim.check_lock(kind, conf)


@route("POST", *guest_paths("/status/start"))
def status_start(sim: Sim, req: Request):
    kind, vmid, conf = _load(sim, req)
    _check_lock_unless_skip(sim, req, kind, conf)
    if kind == "lxc":
        if sim.is_running(vmid):
            fail(f"CT {vmid} already running")
        if conf.options.get("template") == "1":
            fail("you can't start a CT if it's a template")

    def body(task):
        if kind == "qemu":
            with sim.lock:
                current = sim.load_conf(kind, vmid)
                if current.options.get("template") == "1":
                    raise RuntimeError("you can't start a vm if it's a template")
                if sim.is_running(vmid):
                    raise RuntimeError(f"VM {vmid} already running")
        _do_start(sim, kind, vmid, task)

    return _start_task(sim, req, kind, "start", vmid, body, flock=True)


@route("POST", *guest_paths("/status/stop"), *guest_paths("/status/shutdown"))
def status_stop(sim: Sim, req: Request):
    kind, vmid, conf = _load(sim, req)
    action = "shutdown" if req.template.endswith("shutdown") else "stop"
    if not req.flag("skiplock"):
        sim.check_lock(kind, conf)
    if not sim.is_running(vmid) and (kind == "lxc" or action == "shutdown"):
        fail(f"{TYPE_NAMES[kind]} {vmid} not running")

    def body(task):
        if sim.is_running(vmid):
            _do_stop(sim, kind, vmid, task)

    return _start_task(sim, req, kind, action, vmid, body, flock=True)


@route("POST", *guest_paths("/status/reboot"))
def status_reboot(sim: Sim, req: Request):
    kind, vmid, conf = _load(sim, req)
    sim.check_lock(kind, conf)
    if not sim.is_running(vmid):
        fail(f"{TYPE_NAMES[kind]} {vmid} not running")

    def body(task):
        _do_stop(sim, kind, vmid, task)
        _do_start(sim, kind, vmid, task)

    return _start_task(sim, req, kind, "reboot", vmid, body, flock=True)


# --------------------------------------------------------------------------------------
# destroy


@route("DELETE", *guest_paths(""))
def destroy(sim: Sim, req: Request):
    kind, vmid, conf = _load(sim, req)
    if not req.flag("skiplock"):
        sim.check_lock(kind, conf)
    if conf.options.get("protection") == "1":
        fail(f"can't remove {TYPE_NAMES[kind]} {vmid} - protection mode enabled")
    running = sim.is_running(vmid)
    if running:
        if kind == "lxc" and not req.flag("force"):
            fail(f"unable to destroy CT {vmid} - container is running")
        if kind == "qemu":
            fail(f"VM {vmid} is running - destroy failed")
    sim.set_lock(kind, vmid, "destroyed")

    def body(task):
        with sim.lock:
            guest = sim.guest(kind, vmid)
        if sim.is_running(vmid):
            _do_stop(sim, kind, vmid, task)
        sim.backend.destroy(guest)
        with sim.lock:
            current = sim.load_conf(kind, vmid, missing_ok=True)
            if current is not None:
                for key in sim.disk_keys(kind, current.options):
                    volid, _parsed = sim.disk_volume(kind, key, current.options[key])
                    if volid:
                        task.log.append(f"  Logical volume \"{volid.split(':', 1)[1]}\" successfully removed.")
            sim.remove_conf(kind, vmid)
            # qemu-server src/PVE/API2/Qemu.pm destroy_vm, pve-container src/PVE/API2/LXC.pm destroy_vm: both call
            # remove_vmfw_conf, so the .fw goes with the guest
            sim.firewall["guests"].pop(str(vmid), None)
            sim.secrets.pop(str(vmid), None)
            sim.set_running(vmid, False)
            sim.save()

    return _start_task(sim, req, kind, "destroy", vmid, body, _unlock_on_error(sim, kind, vmid))


# --------------------------------------------------------------------------------------
# resize


@route("PUT", *guest_paths("/resize"))
def resize(sim: Sim, req: Request):
    kind, vmid, conf = _load(sim, req)
    disk = req.params["disk"]
    size_text = _text(req.params["size"])
    digest = req.params.get("digest")
    if digest and digest != conf.digest:
        fail("detected modified configuration - file changed by other user? Try again.")
    if not req.flag("skiplock"):
        sim.check_lock(kind, conf)
    if disk not in conf.options:
        fail(f"disk '{disk}' does not exist")
    match = re.fullmatch(r"(\+)?(\d+(?:\.\d+)?)([KMGT])?", size_text)
    if not match:
        param_fail({"size": "invalid format"})
    parsed = sim.parse_option(kind, disk, conf.options[disk])
    if kind == "qemu" and parsed.get("media") == "cdrom":
        fail("you can't resize a cdrom")
    current = parse_size(parsed.get("size", "0")) or 0
    request = parse_size(match.group(2) + (match.group(3) or "")) or 0
    newsize = current + request if match.group(1) else request
    if kind == "lxc":
        if newsize < current:
            fail("unable to shrink disk size")
        if newsize == current:
            fail("disk is already at specified size")

    def body(task):
        if kind == "qemu" and newsize < current:
            raise RuntimeError("shrinking disks is not supported")
        with sim.lock:
            fresh = sim.load_conf(kind, vmid)
            data = sim.parse_option(kind, disk, fresh.options[disk])
            data["size"] = format_size(newsize)
            fresh.options[disk] = sim.print_option(kind, disk, data, first=("mp",) if kind == "lxc" else ())
            sim.save_conf(kind, vmid, fresh)
            task.log.append(f"resized {disk} to {format_size(newsize)}")
            guest = sim.guest(kind, vmid, fresh)
        sim.backend.config_changed(guest, {disk: fresh.options[disk]}, [])

    return _start_task(sim, req, kind, "resize", vmid, body, flock=True)
