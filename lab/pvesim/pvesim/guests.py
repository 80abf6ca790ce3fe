"""LXC containers and QEMU VMs: create, config, status, snapshots, templates, clones, destroy."""

from __future__ import annotations

import copy
import hashlib
import os
import re
import time
from urllib.parse import unquote

from .access import check_perm
from .conf import GuestConf, Section
from .errors import ApiError, fail, param_fail
from .formats import parse_size, split_list
from .images import find_volume, parse_volname, parse_volume_id, qcow2_info, volid_path
from .pending import apply_all, merged_section, pending_deletes, pending_items, stage, working_copy
from .privs import check_ct_root_only, is_root, mount_type, update_deletes
from .routes import Request, guest_paths, route
from .state import GIB, TYPE_NAMES, Sim, format_size, random_mac

NEW_DISK_RE = re.compile(r"^([a-z][a-z0-9\-_.]*[a-z0-9]):(\d+(?:\.\d+)?)$", re.I)
TASK_NAMES = {
    "lxc": {"create": "vzcreate", "start": "vzstart", "stop": "vzstop", "shutdown": "vzshutdown",
            "reboot": "vzreboot", "destroy": "vzdestroy", "clone": "vzclone", "template": "vztemplate",
            "snapshot": "vzsnapshot", "delsnapshot": "vzdelsnapshot", "rollback": "vzrollback", "resize": "resize",
            "migrate": "vzmigrate"},
    "qemu": {"create": "qmcreate", "start": "qmstart", "stop": "qmstop", "shutdown": "qmshutdown",
             "reboot": "qmreboot", "destroy": "qmdestroy", "clone": "qmclone", "template": "qmtemplate",
             "snapshot": "qmsnapshot", "delsnapshot": "qmdelsnapshot", "rollback": "qmrollback", "resize": "resize",
             "config": "qmconfig", "migrate": "qmigrate"},
}
# parameters of create/update that are not config options
LXC_CREATE_ONLY = {"node", "vmid", "ostemplate", "password", "ssh-public-keys", "start", "storage", "pool", "force",
                   "unique", "restore", "ignore-unpack-errors", "bwlimit", "ha-managed"}
QEMU_CREATE_ONLY = {"node", "vmid", "start", "storage", "pool", "force", "unique", "archive", "bwlimit",
                    "live-restore", "import-working-storage", "ha-managed"}
MASKED = "**********"
LXC_NET_ORDER = ("name", "bridge", "firewall", "gw", "hwaddr", "ip")
SNAPSHOT_ONLY = ("lock", "parent", "snaptime", "vmstate", "template")
QEMU_DRIVE_RE = re.compile(r"(ide\d+|sata\d+|scsi\d+|virtio\d+|efidisk0|tpmstate0)")
# pve-storage src/PVE/Storage.pm check_volume_access (a die without newline: Perl adds the place, as of that line)
ROOT_ONLY_PATH = "Only root can pass arbitrary filesystem paths. at /usr/share/perl5/PVE/Storage.pm line 651."


def _text(value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _load(sim: Sim, req: Request) -> tuple[str, int, GuestConf]:
    vmid = int(req.params["vmid"])
    return req.kind, vmid, sim.load_conf(req.kind, vmid)


def _tname(kind: str, action: str) -> str:
    return TASK_NAMES[kind][action]


def _typed(sim: Sim, kind: str, options: dict) -> dict:
    """Config values typed as PVE returns them (integers and booleans as numbers)."""
    out = {}
    for key, value in options.items():
        schema = sim.option_schema(kind, key) or {}
        typ = schema.get("type")
        if typ in ("integer", "boolean") and re.fullmatch(r"[+-]?\d+", value):
            out[key] = int(value)
        elif typ == "number" and re.fullmatch(r"[+-]?\d+(\.\d+)?", value):
            out[key] = float(value) if "." in value else int(value)
        else:
            out[key] = value
    return out


def _normalize_tags(value: str) -> str:
    tags = []
    for tag in split_list(value):
        if tag not in tags:
            tags.append(tag)
    return ";".join(sorted(tags))


def _start_task(sim, req, kind, action, vmid, body, on_error=None, vmids=None, flock=False):
    task = sim.tasks.start(
        _tname(kind, action), vmid, req.authid, body, on_error, vmids=vmids or (int(vmid),)
    )
    task.flock = flock
    return task.upid


def _unlock_on_error(sim, kind, vmid):
    def on_error(task, message):
        with sim.lock:
            sim.set_lock(kind, vmid, None)

    return on_error


def _disk_size_text(size_gb: str) -> str:
    return format_size(int(float(size_gb) * GIB))


def _render_bytes(value: float) -> str:
    """pve-common src/PVE/Format.pm render_bytes with precision 1."""
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
    index = 0
    while value > 1023 and index < len(units) - 1:
        value /= 1024
        index += 1
    return f"{value:.1f} {units[index]}"


def _import_source_size(sim: Sim, vmid: int, source: str, log: list[str]) -> int:
    """The size of an `import-from` source as qemu-server's create_disks finds it in the create task, or raise
    with its error (qemu-server src/PVE/API2/Qemu.pm create_disks and import_from_volid)."""
    if source.startswith("/"):
        # pve-storage Storage.pm abs_filesystem_path, then file_size_info of the untrusted file
        if not os.path.isfile(source):
            raise RuntimeError(f"can't find file '{source}'")
        with open(source, "rb") as handle:
            info = qcow2_info(handle.read(64))
        size = info["virtual_size"] if info else os.path.getsize(source)
        # qemu-server src/PVE/QemuServer/ImportDisk.pm do_import
        log.append(f"importing disk '{source}' to VM {vmid} ...")
        return size
    parsed = parse_volname(sim, source)
    image = find_volume(sim, source) or sim.referenced_volumes().get(source)
    if parsed["vtype"] == "import" and image is None:
        # create_disks: an import volume is untrusted, so file_size_info(..., 1) stats it first
        raise RuntimeError(f"failed to stat '{volid_path(sim, source)}'")
    if image is None:
        # import_from_volid: volume_size_info finds nothing
        raise RuntimeError(f"cannot import from '{source}' - could not get size of {source}")
    size = int(image.get("virtual_size", image["size"]))
    # qemu-server src/PVE/QemuServer.pm clone_disk and QemuImage.pm convert's progress lines
    log.append(f"create full clone of drive ({source})")
    log.append(f"transferred 0.0 B of {_render_bytes(size)} (0.00%)")
    log.append(f"transferred {_render_bytes(size)} of {_render_bytes(size)} (100.00%)")
    return size


def _allocate_new_disks(sim: Sim, kind: str, vmid: int, options: dict, keys: list[str], log: list[str],
                        errors: list[str] | None = None):
    """Turn `STORAGE:SIZE` (GiB) disk options into allocated volumes with size=.

    A failing `import-from` source raises at once, unless `errors` collects it for the create task to fail with."""
    taken = {sim.disk_volume(kind, k, options[k])[0] for k in sim.disk_keys(kind, options)} - {None}
    for key in keys:
        value = options[key]
        parsed = sim.parse_option(kind, key, value)
        volkey = "volume" if kind == "lxc" else "file"
        vol = parsed.get(volkey, "")
        if kind == "qemu" and re.fullmatch(r"[a-z][a-z0-9\-_.]*[a-z0-9]:cloudinit", vol, re.I):
            storage = vol.split(":")[0]
            parsed[volkey] = sim.alloc_volume(storage, vmid, "images", suffix="cloudinit", taken=taken)
            parsed["media"] = "cdrom"
            options[key] = sim.print_option(kind, key, parsed)
            continue
        match = NEW_DISK_RE.match(vol)
        if not match:
            if kind == "qemu" and vol and ":" in vol and "media" in parsed and not sim.volume_exists(vol):
                fail(f"volume '{vol}' does not exist")
            continue
        storage, size_gb = match.groups()
        if kind == "qemu" and parsed.get("import-from"):
            source = parsed.pop("import-from")
            try:
                size = _import_source_size(sim, vmid, source, log)
            except RuntimeError as exc:
                if errors is None:
                    fail(str(exc))
                errors.append(str(exc))
                size = 0
        else:
            size = int(float(size_gb) * GIB)
        if key in ("efidisk0", "tpmstate0"):
            size = 4 * 1024**2
        content = "rootdir" if kind == "lxc" else "images"
        parsed[volkey] = sim.alloc_volume(storage, vmid, content, taken=taken)
        parsed["size"] = format_size(size)
        options[key] = sim.print_option(kind, key, parsed, first=("mp",) if kind == "lxc" else ())
        if kind == "qemu":
            # qemu-server src/PVE/API2/Qemu.pm create_disks
            log.append(f"{key}: successfully created disk '{options[key]}'")
        else:
            log.append(f"allocated volume {parsed[volkey]} ({format_size(size)}) for {key}")


def _complete_nets(sim: Sim, kind: str, options: dict, keys):
    for key in keys:
        if not re.fullmatch(r"net\d+", key):
            continue
        parsed = sim.parse_option(kind, key, options[key])
        if kind == "lxc":
            parsed.setdefault("hwaddr", random_mac())
            parsed.setdefault("type", "veth")
            options[key] = sim.print_option(kind, key, parsed, first=LXC_NET_ORDER)
        else:
            model = parsed.pop("model", None)
            mac = parsed.pop("macaddr", None) or random_mac()
            rest = sim.print_option(kind, key, parsed, first=("bridge",))
            options[key] = f"{model}={mac}" + (f",{rest}" if rest else "")


def _ostype(template: str) -> str:
    name = template.split("/")[-1].split("-")[0].lower()
    known = {"debian", "ubuntu", "centos", "fedora", "opensuse", "archlinux", "alpine", "gentoo", "nixos", "devuan"}
    return name if name in known else "unmanaged"


def _cipassword_hash(password: str) -> str:
    salt = hashlib.sha256(str(time.time()).encode()).hexdigest()[:16]
    return "$5$" + salt + "$" + hashlib.sha256((salt + password).encode()).hexdigest()


def _apply_options(sim: Sim, kind: str, vmid: int, conf: GuestConf, params: dict, deletes: list[str],
                   running: bool, log: list[str], errors: list[str] | None = None) -> tuple[dict, list]:
    """Apply set/delete to the config (the shared part of create and update)."""
    options = conf.options
    changed = {}
    for key in deletes:
        if key in params:
            param_fail({"delete": f"you can't use '-{key}' and -delete {key}' at the same time"})
        if sim.option_schema(kind, key) is None and key != "description":
            param_fail({"delete": f"unknown option '{key}'"})
        if kind == "lxc" and key in ("memory", "rootfs", "ostype"):
            fail(f"unable to delete required option '{key}'")
        if kind == "lxc" and key == "unprivileged":
            fail(f"unable to delete read-only option: '{key}'")
    for key, value in params.items():
        value = _text(value)
        if key == "description":
            conf.main.description = value or None
            changed[key] = value
            continue
        # pve-container src/PVE/LXC/Config.pm update_pct_config: unprivileged in any update, same value or not
        if kind == "lxc" and key == "unprivileged":
            fail(f"unable to modify read-only option: '{key}'")
        if key == "tags":
            value = _normalize_tags(value)
        if kind == "qemu" and key == "cipassword":
            value = _cipassword_hash(value)
        options[key] = value
        changed[key] = value
    new_disks = [k for k in params if k in options and (sim.disk_keys(kind, {k: 1}))]
    _allocate_new_disks(sim, kind, vmid, options, new_disks, log, errors)
    _complete_nets(sim, kind, options, list(params))
    for key in new_disks + [k for k in params if k.startswith("net")]:
        changed[key] = options[key]
    deleted = []
    for key in deletes:
        if key == "description":
            if conf.main.description:
                conf.main.description = None
                deleted.append(key)
            continue
        if key not in options:
            log.append(f"cannot delete '{key}' - not set in current configuration!")
            continue
        value = options.pop(key)
        deleted.append(key)
        if sim.disk_keys(kind, {key: value}) and not key.startswith("unused"):
            volid, _parsed = sim.disk_volume(kind, key, value)
            if volid and "cloudinit" not in volid and ",media=cdrom" not in value:
                index = 0
                while f"unused{index}" in options:
                    index += 1
                options[f"unused{index}"] = volid
    return changed, deleted


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


# --------------------------------------------------------------------------------------
# snapshots


@route("GET", *guest_paths("/snapshot"))
def snapshot_list(sim: Sim, req: Request):
    kind, vmid, conf = _load(sim, req)
    result = []
    for name, snap in conf.snapshots.items():
        item = {"name": name, "description": snap.description or ""}
        if snap.options.get("snaptime"):
            item["snaptime"] = int(snap.options["snaptime"])
        if snap.options.get("parent"):
            item["parent"] = snap.options["parent"]
        if kind == "qemu":
            item["vmstate"] = 1 if snap.options.get("vmstate") else 0
        result.append(item)
    current = {"name": "current", "description": "You are here!", "running": 1 if sim.is_running(vmid) else 0}
    if conf.options.get("parent"):
        current["parent"] = conf.options["parent"]
    result.append(current)
    return result


@route("POST", *guest_paths("/snapshot"))
def snapshot_create(sim: Sim, req: Request):
    kind, vmid, conf = _load(sim, req)
    name = req.params["snapname"]
    if name == "current":
        param_fail({"snapname": "invalid snapshot name 'current'"})
    sim.check_lock(kind, conf)
    if name in conf.snapshots:
        fail(f"snapshot name '{name}' already used")
    description = req.params.get("description")
    vmstate = req.flag("vmstate")
    sim.set_lock(kind, vmid, "snapshot")

    def body(task):
        with sim.lock:
            fresh = sim.load_conf(kind, vmid)
            # pve-guest-common src/PVE/AbstractConfig.pm __snapshot_prepare (in the snapshot task)
            if fresh.options.get("template") == "1":
                raise RuntimeError("you can't take a snapshot if it's a template")
            fresh.options.pop("lock", None)
            snap = Section(dict(fresh.options), description, [list(x) for x in fresh.main.lxc])
            snap.options["snaptime"] = str(int(time.time()))
            if vmstate and kind == "qemu" and sim.is_running(vmid):
                snap.options["vmstate"] = f"local-lvm:vm-{vmid}-state-{name}"
            fresh.snapshots[name] = snap
            fresh.options["parent"] = name
            sim.save_conf(kind, vmid, fresh)
            task.log.append(f"snapshot '{name}' created")

    return _start_task(sim, req, kind, "snapshot", vmid, body, _unlock_on_error(sim, kind, vmid))


def _get_snapshot(conf, name):
    snap = conf.snapshots.get(name)
    if snap is None:
        fail(f"snapshot '{name}' does not exist")
    return snap


@route("GET", *guest_paths("/snapshot/{snapname}"))
def snapshot_index(sim: Sim, req: Request):
    kind, vmid, conf = _load(sim, req)
    _get_snapshot(conf, req.params["snapname"])
    return [{"cmd": "rollback"}, {"cmd": "config"}]


@route("GET", *guest_paths("/snapshot/{snapname}/config"))
def snapshot_config(sim: Sim, req: Request):
    kind, vmid, conf = _load(sim, req)
    snap = _get_snapshot(conf, req.params["snapname"])
    return _config_data(sim, kind, conf, snap)


@route("PUT", *guest_paths("/snapshot/{snapname}/config"))
def snapshot_config_update(sim: Sim, req: Request):
    kind, vmid, conf = _load(sim, req)
    snap = _get_snapshot(conf, req.params["snapname"])
    sim.check_lock(kind, conf)
    if "description" in req.params:
        snap.description = req.params["description"] or None
    sim.save_conf(kind, vmid, conf)
    return None


@route("DELETE", *guest_paths("/snapshot/{snapname}"))
def snapshot_delete(sim: Sim, req: Request):
    kind, vmid, conf = _load(sim, req)
    name = req.params["snapname"]
    _get_snapshot(conf, name)
    if not req.flag("force"):
        sim.check_lock(kind, conf)
    sim.set_lock(kind, vmid, "snapshot-delete")

    def body(task):
        with sim.lock:
            fresh = sim.load_conf(kind, vmid)
            snap = fresh.snapshots.pop(name)
            parent = snap.options.get("parent")
            for other in [fresh.main, *fresh.snapshots.values()]:
                if other.options.get("parent") == name:
                    if parent:
                        other.options["parent"] = parent
                    else:
                        other.options.pop("parent", None)
            fresh.options.pop("lock", None)
            sim.save_conf(kind, vmid, fresh)
            task.log.append(f"snapshot '{name}' removed")

    return _start_task(sim, req, kind, "delsnapshot", vmid, body, _unlock_on_error(sim, kind, vmid))


@route("POST", *guest_paths("/snapshot/{snapname}/rollback"))
def snapshot_rollback(sim: Sim, req: Request):
    kind, vmid, conf = _load(sim, req)
    name = req.params["snapname"]
    _get_snapshot(conf, name)
    sim.check_lock(kind, conf)
    start = req.flag("start")
    sim.set_lock(kind, vmid, "rollback")

    def body(task):
        if sim.is_running(vmid):
            _do_stop(sim, kind, vmid, task)
        with sim.lock:
            fresh = sim.load_conf(kind, vmid)
            snap = fresh.snapshots[name]
            options = {k: v for k, v in snap.options.items() if k not in ("snaptime", "vmstate")}
            options["parent"] = name
            fresh.main = Section(options, fresh.main.description, [list(x) for x in snap.lxc])
            sim.save_conf(kind, vmid, fresh)
            task.log.append(f"rolled back to snapshot '{name}'")
        if start:
            _do_start(sim, kind, vmid, task)

    return _start_task(sim, req, kind, "rollback", vmid, body, _unlock_on_error(sim, kind, vmid))


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


def decode_sshkeys(value: str) -> str:
    """The `sshkeys` option is stored URL-encoded (as PVE expects it)."""
    return unquote(value)


__all__ = ["decode_sshkeys", "ApiError"]
