"""Pending changes: what a config update on a running guest applies at once, hotplugs, or keeps for the restart.

PVE writes every update into the pending section first (`[pve:pending]` for LXC, `[PENDING]` for QEMU, with
`delete: key1,!key2` listing pending deletions, `!` meaning force), then:

- a stopped guest gets the changes applied at once;
- a running guest gets the "fast-plug" options applied at once and the hotpluggable ones plugged live; the rest
  stays pending until the guest is started again (LXC and QEMU apply pending at start; QEMU also when it stops,
  so a reboot or a stop + start applies everything).

`GET config` shows the pending values merged in unless `current=1`; `GET pending` lists current, pending and
deleted values per key. The rules below are PVE's, from the files and functions named next to them.
"""

from __future__ import annotations

import re

from .conf import GuestConf, Section

__all__ = [
    "LXC_FASTPLUG", "QEMU_FASTPLUG", "apply_all", "merged_section", "parse_deletes", "pending_deletes",
    "pending_items", "stage", "working_copy",
]

# pve-container src/PVE/LXC/Config.pm $LXC_FASTPLUG_OPTIONS: applied at once on a running CT
LXC_FASTPLUG = frozenset({"description", "onboot", "startup", "protection", "hostname", "hookscript", "cores",
                          "tags", "lock"})
# qemu-server src/PVE/QemuServer.pm $fast_plug_option, which also takes every $confdesc_cloudinit option
QEMU_FASTPLUG = frozenset({"description", "hookscript", "lock", "migrate_downtime", "migrate_speed", "name",
                           "onboot", "protection", "shares", "startup", "tags", "vmstatestorage",
                           "citype", "ciuser", "cipassword", "ciupgrade", "cicustom", "searchdomain", "nameserver",
                           "sshkeys"})
_QEMU_FASTPLUG_RE = re.compile(r"ipconfig\d+")
_QEMU_DRIVE_RE = re.compile(r"(ide|sata|scsi|virtio|efidisk|tpmstate)\d+")
# qemu-server src/PVE/QemuServer.pm vmconfig_update_disk: sub-options a running disk cannot change
_QEMU_DISK_COLD = ("aio", "discard", "iothread", "queues", "product", "cache", "ssd", "vendor", "ro")
_UNUSED_RE = re.compile(r"unused\d+")


# -- the pending section ------------------------------------------------------------------------------------------


def parse_deletes(text: str | None) -> dict[str, bool]:
    """`a,!b` -> {'a': False, 'b': True} (pve-guest-common src/PVE/AbstractConfig.pm parse_pending_delete)."""
    out: dict[str, bool] = {}
    for entry in re.split(r"[,;\s]+", text or ""):
        if entry:
            out[entry.lstrip("!")] = entry.startswith("!")
    return out


def _print_deletes(deletes: dict[str, bool]) -> str:
    # pve-guest-common src/PVE/AbstractConfig.pm print_pending_delete: sorted, force marked with '!'
    return ",".join(("!" if deletes[k] else "") + k for k in sorted(deletes))


def pending_deletes(conf: GuestConf) -> dict[str, bool]:
    return parse_deletes(conf.pending.options.get("delete")) if conf.pending else {}


def _pending_values(conf: GuestConf) -> dict[str, str]:
    if not conf.pending:
        return {}
    return {k: v for k, v in conf.pending.options.items() if k != "delete"}


def _store(conf: GuestConf, values: dict[str, str], deletes: dict[str, bool]):
    options = dict(values)
    if deletes:
        options["delete"] = _print_deletes(deletes)
    conf.pending = Section(options) if options else None


def merged_section(conf: GuestConf) -> Section:
    """The main section with the pending values in and the pending deletions out, as GET config shows it.

    pve-guest-common src/PVE/AbstractConfig.pm load_current_config (a deletion drops only a true value there).
    """
    merged = conf.main.copy()
    merged.options.update(_pending_values(conf))
    for key in pending_deletes(conf):
        if merged.options.get(key) not in (None, "", "0"):
            del merged.options[key]
    return merged


def working_copy(conf: GuestConf, reverts=()) -> GuestConf:
    """`conf` after `revert` (pending entries dropped), as one section with the pending changes merged in."""
    values, deletes = _pending_values(conf), pending_deletes(conf)
    for key in reverts:
        # pve-container src/PVE/LXC/Config.pm update_pct_config; qemu-server src/PVE/API2/Qemu.pm update_vm_api
        values.pop(key, None)
        deletes.pop(key, None)
    _store(conf, values, deletes)
    return GuestConf(conf.kind, main=merged_section(conf), special=conf.special, snapshots=conf.snapshots,
                     digest=conf.digest)


def stage(sim, kind: str, conf: GuestConf, work: GuestConf, selection: set[str], running: bool):
    """Write the difference between `conf` and the updated `work` copy as pending, then apply what PVE would.

    Returns (changed, deleted): what reached the main section (the running config). `selection` holds the keys
    the request named (PVE's $modified).
    """
    main = conf.options
    old_values = _pending_values(conf)
    old_deletes = pending_deletes(conf)
    changed: dict[str, str] = {}
    if (work.main.description or None) != (conf.main.description or None):
        # the description is a fast-plug option for LXC and QEMU: it never waits
        conf.main.description = work.main.description or None
        changed["description"] = work.main.description or ""
    values = {}
    for key, value in work.options.items():
        if key == "delete" or main.get(key) == value:
            continue  # pve-guest-common AbstractConfig.pm cleanup_pending: a pending value equal to the current goes
        if _UNUSED_RE.fullmatch(key) and key not in main and key not in old_values:
            continue  # registered when the deletion of its disk is applied
        values[key] = value
    deletes = {key: old_deletes.get(key, False) for key in main if key not in work.options}
    _store(conf, values, deletes)
    if running:
        live_values, live_deletes = _hotplug_selection(sim, kind, conf, selection)
    elif kind == "lxc":
        # pve-container src/PVE/LXC/Config.pm update_pct_config -> vmconfig_apply_pending($selection)
        live_values = {k for k in values if k in selection}
        live_deletes = {k for k in deletes if k in selection}
    else:
        # qemu-server src/PVE/API2/Qemu.pm update_vm_api -> vmconfig_apply_pending (everything)
        live_values, live_deletes = set(values), set(deletes)
    applied, deleted = _apply(sim, kind, conf, live_values, live_deletes)
    changed.update(applied)
    return changed, deleted


def apply_all(sim, kind: str, conf: GuestConf):
    """Apply every pending change (at start; for QEMU also at stop). Returns (changed, deleted)."""
    return _apply(sim, kind, conf, set(_pending_values(conf)), set(pending_deletes(conf)))


def _apply(sim, kind: str, conf: GuestConf, value_keys: set[str], delete_keys: set[str]):
    main = conf.options
    values, deletes = _pending_values(conf), pending_deletes(conf)
    changed: dict[str, str] = {}
    deleted: list[str] = []
    for key in sorted(delete_keys & set(deletes)):
        del deletes[key]
        value = main.pop(key, None)
        if value is None:
            continue
        deleted.append(key)
        _register_unused(sim, kind, main, key, value)
    for key in sorted(value_keys & set(values)):
        main[key] = values.pop(key)
        changed[key] = main[key]
    _store(conf, values, deletes)
    return changed, deleted


def _register_unused(sim, kind: str, main: dict, key: str, value: str):
    """A deleted disk's volume stays as unusedN (pve-container vmconfig_apply_pending add_unused_volume;
    qemu-server vmconfig_delete_or_detach_drive -> vmconfig_register_unused_drive)."""
    if _UNUSED_RE.fullmatch(key) or not sim.disk_keys(kind, {key: value}):
        return
    volid, _parsed = sim.disk_volume(kind, key, value)
    if not volid or "cloudinit" in volid or ",media=cdrom" in value or volid in main.values():
        return
    index = 0
    while f"unused{index}" in main:
        index += 1
    main[f"unused{index}"] = volid


# -- what a running guest takes live ------------------------------------------------------------------------------


def _hotplug_selection(sim, kind: str, conf: GuestConf, selection: set[str]):
    main = conf.options
    values, deletes = _pending_values(conf), pending_deletes(conf)
    if kind == "lxc":
        # pve-container src/PVE/LXC/Config.pm vmconfig_hotplug_pending (only the keys of this update)
        live_values = {k for k in values if k in selection and _lxc_live(k, main, False)}
        live_deletes = {k for k in deletes if k in selection and _lxc_live(k, main, True)}
        return live_values, live_deletes
    # qemu-server src/PVE/QemuServer.pm vmconfig_hotplug_pending: fast-plug values go whatever the selection
    features = hotplug_features(main.get("hotplug"))
    live_values = {k for k in values if _qemu_fastplug(k)}
    live_values |= {k for k in values if k in selection and _qemu_live(sim, k, values[k], main, features)}
    live_deletes = {k for k in deletes if k in selection and _qemu_live(sim, k, None, main, features)}
    return live_values, live_deletes


def _lxc_live(key: str, main: dict, delete: bool) -> bool:
    if key in LXC_FASTPLUG:
        return True
    if delete:
        # the deletion loop matches net(\d) - one digit - in PVE
        return key in ("swap", "cpulimit", "cpuunits") or bool(re.fullmatch(r"unused\d+|net\d", key))
    if key in ("cpulimit", "cpuunits", "memory", "swap") or re.fullmatch(r"net\d+", key):
        return True
    if re.fullmatch(r"(mp|dev)\d+", key):
        return key not in main  # a new mount point or device is hotplugged, a changed one waits
    return False


def hotplug_features(value: str | None) -> set[str]:
    """qemu-server src/PVE/QemuServer.pm parse_hotplug_features: '1' (the default) is network,disk,usb."""
    value = "1" if value is None else str(value)
    if value == "0":
        return set()
    if value == "1":
        value = "network,disk,usb"
    return {f for f in re.split(r"[,;\s]+", value) if f}


def _qemu_fastplug(key: str) -> bool:
    return key in QEMU_FASTPLUG or bool(_QEMU_FASTPLUG_RE.fullmatch(key))


def _qemu_live(sim, key: str, value: str | None, main: dict, features: set[str]) -> bool:
    """Whether a running VM takes this change (value None: a deletion)."""
    delete = value is None
    if _qemu_fastplug(key) or key in ("cpuunits", "cpulimit"):
        return True
    if key == "hotplug":
        cold = re.compile(r"cpu|memory")
        return not cold.search(main.get("hotplug") or "") and (delete or not cold.search(value))
    if key == "tablet":
        return "usb" in features
    if re.fullmatch(r"usb\d+", key):
        # usb hotplug also needs QEMU >= 7.1, which pvesim always reports
        return "usb" in features and main.get("ostype") in ("l26", "win8", "win10", "win11")
    if key == "vcpus":
        return "cpu" in features
    if key == "memory":
        return "memory" in features
    if key == "balloon":
        if delete:
            return main.get("balloon") != "0"
        return (main.get("balloon") != "0") == (value != "0")  # enabling/disabling the device waits
    if re.fullmatch(r"net\d+", key):
        return "network" in features if delete else _qemu_net_live(sim, key, value, main, features)
    if _QEMU_DRIVE_RE.fullmatch(key):
        if delete:
            return "disk" in features and not re.fullmatch(r"(efidisk|ide|sata|tpmstate)\d+", key)
        return _qemu_disk_live(sim, key, value, main, features)
    if delete:
        return bool(_UNUSED_RE.fullmatch(key))  # qemu-server update_vm_api deletes unusedN directly
    if key == "agent":
        return _qemu_agent_live(sim, value, main)
    return False


def _qemu_net_live(sim, key, value, main, features) -> bool:
    # qemu-server src/PVE/QemuServer.pm vmconfig_update_net: bridge, tag, firewall, rate change live; a new NIC
    # or another model, MAC, queues or MTU needs network hotplug
    if key in main:
        old = sim.parse_option("qemu", key, main[key])
        new = sim.parse_option("qemu", key, value)
        if any(old.get(k) != new.get(k) for k in ("model", "macaddr", "queues", "mtu")) or not (
                old.get("bridge") and new.get("bridge")):
            return "network" in features
        return True
    return "network" in features


def _qemu_disk_live(sim, key, value, main, features) -> bool:
    # qemu-server src/PVE/QemuServer.pm vmconfig_hotplug_pending / vmconfig_update_disk
    if key in ("efidisk0", "tpmstate0"):
        return False
    new = sim.parse_option("qemu", key, value)
    if key in main:
        old = sim.parse_option("qemu", key, main[key])
        if (old.get("media") or "disk") != (new.get("media") or "disk"):
            return False  # PVE refuses to change the media type of a plugged drive
        if old.get("media") == "cdrom":
            return True  # the medium is changed live
        if old.get("file") != new.get("file"):
            return "disk" in features
        return all(old.get(k) == new.get(k) for k in _QEMU_DISK_COLD)
    return "disk" in features and not re.fullmatch(r"(ide|sata)\d+", key)


def _qemu_agent_live(sim, value, main) -> bool:
    # qemu-server src/PVE/QemuServer.pm vmconfig_update_agent: only fstrim_cloned_disks changes live
    if not main.get("agent"):
        return False
    old = sim.parse_option("qemu", "agent", main["agent"])
    new = sim.parse_option("qemu", "agent", value)
    return all(old.get(k) == new.get(k) for k in (set(old) | set(new)) - {"fstrim_cloned_disks"})


# -- GET pending ----------------------------------------------------------------------------------------------------


def pending_items(current: dict, pending: dict, deletes: dict[str, bool]) -> list[dict]:
    """GET .../pending: one entry per key with `value` (current), `pending` and `delete` (1, 2 when forced).

    pve-guest-common src/PVE/GuestHelpers.pm config_with_pending_array (`current` includes the digest).
    """
    result = []
    for key in sorted(current):
        if isinstance(current[key], (list, dict)):
            continue  # raw lxc.* lines are left out
        item = {"key": key, "value": current[key]}
        if key in pending:
            item["pending"] = pending[key]
        if key in deletes:
            item["delete"] = 2 if deletes[key] else 1
        result.append(item)
    for key in sorted(set(pending) - set(current)):
        result.append({"key": key, "pending": pending[key]})
    for key in sorted(set(deletes) - set(current)):
        result.append({"key": key, "delete": 2 if deletes[key] else 1})
    return result
