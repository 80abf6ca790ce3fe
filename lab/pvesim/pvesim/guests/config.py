"""The guest list, LXC/QEMU create, and the config and pending endpoints."""

from __future__ import annotations

import hashlib
import re
import time

from ..conf import GuestConf, Section
from ..errors import fail, param_fail
from ..formats import split_list
from ..images import parse_volname, parse_volume_id
from ..pending import merged_section, pending_deletes, pending_items, stage, working_copy
from ..privs import check_ct_root_only, is_root, update_deletes
from ..routes import Request, guest_paths, route
from ..state import Sim
from .common import (
    LXC_CREATE_ONLY,
    MASKED,
    QEMU_CREATE_ONLY,
    QEMU_DRIVE_RE,
    ROOT_ONLY_PATH,
    _apply_options,
    _load,
    _ostype,
    _start_task,
    _text,
    _typed,
)
from .power import _do_start, _status

# --------------------------------------------------------------------------------------
# listing and create


@route("GET", "/nodes/{node}/lxc", "/nodes/{node}/qemu")
def list_guests(sim: Sim, req: Request):
    result = []
    for kind, vmid in sim.all_guests(sim.node):
        if kind != req.kind:
            continue
        conf = sim.load_conf(kind, vmid, missing_ok=True)
        if conf is not None:
            result.append(_status(sim, kind, vmid, conf, brief=True))
    return result


@route("POST", "/nodes/{node}/lxc")
def lxc_create(sim: Sim, req: Request):
    params = {k: v for k, v in req.params.items() if k not in LXC_CREATE_ONLY}
    vmid = int(req.params["vmid"])
    if req.flag("restore"):
        fail("pvesim: restoring from a backup is not implemented")
    ostemplate = req.params["ostemplate"]
    storage = req.get("storage", "local")
    unprivileged = params.pop("unprivileged", None)
    unprivileged = True if unprivileged is None else _text(unprivileged) == "1"
    sim.check_vmid_unused(vmid)
    # pve-container src/PVE/API2/LXC.pm create_vm -> src/PVE/LXC.pm check_ct_modify_config_perm (root-only options)
    check_ct_root_only(req.authid, None, params, [], unprivileged)
    if not sim.volume_exists(ostemplate):
        fail(f"volume '{ostemplate}' does not exist")
    params.setdefault("rootfs", f"{storage}:4")
    conf = GuestConf("lxc")
    log = [f"extracting archive '{ostemplate}'"]
    conf.options.update({"arch": "amd64", "ostype": _ostype(ostemplate)})
    _apply_options(sim, "lxc", vmid, conf, params, [], False, log)
    # pve-container API2/LXC.pm create_vm ("set some defaults"): hostname ||= CT<vmid>, memory ||= 512, swap //= 512
    if not conf.options.get("hostname"):
        conf.options["hostname"] = f"CT{vmid}"
    if not conf.options.get("memory") or conf.options["memory"] == "0":
        conf.options["memory"] = "512"
    conf.options.setdefault("swap", "512")
    if unprivileged:
        conf.options["unprivileged"] = "1"
    conf.options["lock"] = "create"
    sim.save_conf("lxc", vmid, conf)
    secrets = {"password": req.params.get("password"), "ssh-public-keys": req.params.get("ssh-public-keys")}
    if secrets["ssh-public-keys"]:
        sim.secrets[str(vmid)] = {"ssh-public-keys": secrets["ssh-public-keys"]}
    start = req.flag("start")

    def body(task):
        task.log.extend(log)
        task.log.append("Total bytes read: 524288000 (500MiB, 12MiB/s)")
        with sim.lock:
            guest = sim.guest("lxc", vmid)
        sim.backend.create(guest, secrets)
        with sim.lock:
            sim.set_lock("lxc", vmid, None)
        if start:
            _do_start(sim, "lxc", vmid, task)

    def on_error(task, message):
        with sim.lock:
            sim.remove_conf("lxc", vmid)
            sim.secrets.pop(str(vmid), None)

    return _start_task(sim, req, "lxc", "create", vmid, body, on_error)


@route("POST", "/nodes/{node}/qemu")
def qemu_create(sim: Sim, req: Request):
    params = {k: v for k, v in req.params.items() if k not in QEMU_CREATE_ONLY}
    vmid = int(req.params["vmid"])
    if req.params.get("archive"):
        fail("pvesim: restoring from a backup is not implemented")
    sim.check_vmid_unused(vmid)
    conf = GuestConf("qemu")
    log = []
    ctime = int(time.time())
    conf.options.update({
        "meta": f"creation-qemu=9.2.0,ctime={ctime}",
        "smbios1": f"uuid={_uuid(vmid, ctime)}",
        "vmgenid": _uuid(vmid, ctime + 1),
    })
    # qemu-server src/PVE/API2/Qemu.pm create_vm: check_storage_access, then check_drive_param, before the worker
    _check_import_from(sim, req, params)
    errors: list[str] = []
    _apply_options(sim, "qemu", vmid, conf, params, [], False, log, errors)
    conf.options["lock"] = "create"
    sim.save_conf("qemu", vmid, conf)
    start = req.flag("start")

    def body(task):
        task.log.extend(log)
        if errors:
            # create_vm's worker: "unable to create VM <vmid> - <create_disks' error>"
            raise RuntimeError(f"unable to create VM {vmid} - {errors[0]}")
        with sim.lock:
            guest = sim.guest("qemu", vmid)
        sim.backend.create(guest, {"cipassword": req.params.get("cipassword")})
        with sim.lock:
            sim.set_lock("qemu", vmid, None)
        if start:
            _do_start(sim, "qemu", vmid, task)

    def on_error(task, message):
        with sim.lock:
            sim.remove_conf("qemu", vmid)

    return _start_task(sim, req, "qemu", "create", vmid, body, on_error)


def _check_import_from(sim: Sim, req: Request, params: dict):
    """qemu-server src/PVE/API2/Qemu.pm create_vm's checks of `import-from` drives, in PVE's order: first
    check_storage_access (source type and access) for every drive, then check_drive_param (the syntax)."""
    drives = [k for k in sorted(params) if QEMU_DRIVE_RE.fullmatch(k)]
    parsed_drives = {k: sim.parse_option("qemu", k, _text(params[k])) for k in drives}
    for key in drives:
        source = parsed_drives[key].get("import-from")
        if not source:
            continue
        if parse_volume_id(source) is not None:
            # check_storage_access: checked_parse_volname, then the vtype must be images or import
            info = parse_volname(sim, source)
            if info["vtype"] not in ("images", "import"):
                param_fail({key: f"{source} has wrong type '{info['vtype']}' - needs to be 'images' or 'import'"})
        elif not is_root(req.authid):
            # check_storage_access -> pve-storage src/PVE/Storage.pm check_volume_access: a path is root@pam's only
            # (PVE's die has no newline, so Perl appends where it died)
            fail(ROOT_ONLY_PATH)
    for key in drives:
        drive = parsed_drives[key]
        if not drive.get("import-from"):
            continue
        # check_drive_param: the target must be written <storage ID>:0 (Drive.pm NEW_DISK_RE with size 0)
        match = re.fullmatch(r"(([^/:\s]+):)?(\d+(\.\d+)?)", drive.get("file", ""))
        if not match or float(match.group(3)) != 0:
            param_fail({key: "'import-from' requires special syntax - use <storage ID>:0,import-from=<source>"})
        if key == "efidisk0":
            for required in ("efitype", "pre-enrolled-keys"):
                if drive.get(required) is None:
                    param_fail({key: f"need to specify '{required}' when using 'import-from'"})
        elif key == "tpmstate0" and drive.get("version") is None:
            param_fail({key: "need to specify 'version' when using 'import-from'"})


def _uuid(vmid, salt) -> str:
    digest = hashlib.sha1(f"{vmid}-{salt}".encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-4{digest[13:16]}-a{digest[17:20]}-{digest[20:32]}"


# --------------------------------------------------------------------------------------
# config


@route("GET", *guest_paths(""))
def guest_index(sim: Sim, req: Request):
    _load(sim, req)
    subdirs = ["config", "pending", "status", "snapshot", "firewall", "rrd", "rrddata", "clone", "resize", "template"]
    return [{"subdir": s} for s in subdirs]


@route("GET", *guest_paths("/config"))
def get_config(sim: Sim, req: Request):
    kind, vmid, conf = _load(sim, req)
    if req.params.get("snapshot") and req.flag("current"):
        # pve-container src/PVE/API2/LXC/Config.pm vm_config; qemu-server src/PVE/API2/Qemu.pm vm_config
        message = "cannot use 'snapshot' parameter with 'current'"
        param_fail({"snapshot": message, "current": message})
    # pve-guest-common src/PVE/AbstractConfig.pm load_current_config: pending values merged in unless current=1
    section = conf.main if req.flag("current") else merged_section(conf)
    if req.params.get("snapshot"):
        snap = conf.snapshots.get(req.params["snapshot"])
        if snap is None:
            fail(f"snapshot '{req.params['snapshot']}' does not exist")
        section = snap
    return _config_data(sim, kind, conf, section)


def _config_data(sim, kind, conf, section: Section) -> dict:
    data = _typed(sim, kind, section.options)
    if kind == "qemu" and "cipassword" in data:
        data["cipassword"] = MASKED
    if section.description:
        data["description"] = section.description + "\n"
    if kind == "lxc" and section.lxc:
        data["lxc"] = [list(x) for x in section.lxc]
    data["digest"] = conf.digest
    return data


@route("GET", *guest_paths("/pending"))
def get_pending(sim: Sim, req: Request):
    kind, vmid, conf = _load(sim, req)
    current = _config_data(sim, kind, conf, conf.main)
    pending = _typed(sim, kind, {k: v for k, v in (conf.pending.options if conf.pending else {}).items()
                                 if k != "delete"})
    if kind == "qemu" and "cipassword" in pending:
        pending["cipassword"] = MASKED + " "  # qemu-server src/PVE/API2/Qemu.pm vm_pending masks it so
    return pending_items(current, pending, pending_deletes(conf))


def _update_config(sim: Sim, req: Request, log: list[str] | None = None):
    kind, vmid, conf = _load(sim, req)
    skipped = ("node", "vmid", "digest", "delete", "revert", "skiplock", "background_delay", "force")
    params = {k: v for k, v in req.params.items() if k not in skipped}
    deletes = split_list(req.params.get("delete"))
    if not params and not deletes and not req.params.get("revert"):
        fail("no options specified")
    if not req.flag("skiplock"):
        sim.check_lock(kind, conf)
    digest = req.params.get("digest")
    if digest and digest != conf.digest:
        fail("detected modified configuration - file changed by other user? Try again.")
    if kind == "lxc":
        # pve-container src/PVE/API2/LXC/Config.pm update_vm -> src/PVE/LXC.pm check_ct_modify_config_perm
        check_ct_root_only(req.authid, conf.options, params, update_deletes(req.params),
                           conf.options.get("unprivileged") == "1")
    if kind == "qemu":
        # qemu-server src/PVE/API2/Qemu.pm update_vm runs the same check_storage_access / check_drive_param
        _check_import_from(sim, req, params)
    log = log if log is not None else []
    running = sim.is_running(vmid)
    # the update is made on the config with its pending changes merged in, then what differs goes to the pending
    # section and is applied as PVE would (pending.py: fast-plug, hotplug, or wait for the restart)
    work = working_copy(conf, split_list(req.params.get("revert")))
    _apply_options(sim, kind, vmid, work, params, deletes, running, log)
    changed, deleted = stage(sim, kind, conf, work, set(params) | set(deletes), running)
    sim.save_conf(kind, vmid, conf)
    if changed or deleted:
        sim.backend.config_changed(sim.guest(kind, vmid, conf), changed, deleted)
    return kind, vmid


@route("PUT", *guest_paths("/config"))
def put_config(sim: Sim, req: Request):
    _update_config(sim, req)
    return None


@route("POST", "/nodes/{node}/qemu/{vmid}/config")
def post_qemu_config(sim: Sim, req: Request):
    log: list[str] = []
    kind, vmid = _update_config(sim, req, log)
    return _start_task(sim, req, kind, "config", vmid, lambda task: task.log.extend(log), flock=True)
