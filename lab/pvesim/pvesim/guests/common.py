"""What every guest endpoint shares: task names, option typing, new disks and NICs, the config writer."""

from __future__ import annotations

import hashlib
import os
import re
import time
from urllib.parse import unquote

from ..conf import GuestConf
from ..errors import fail, param_fail
from ..formats import split_list
from ..images import find_volume, parse_volname, qcow2_info, volid_path
from ..routes import Request
from ..state import GIB, Sim, format_size, random_mac

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


def decode_sshkeys(value: str) -> str:
    """The `sshkeys` option is stored URL-encoded (as PVE expects it)."""
    return unquote(value)
