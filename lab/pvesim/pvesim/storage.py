"""The simulated storages and volumes: the storage table, the static volumes, and the Sim methods that find,
list and allocate volumes (a mixin of state.Sim)."""

from __future__ import annotations

import re

from .errors import fail
from .formats import parse_size

GIB = 1024**3

STORAGES = {
    "local": {
        "type": "dir", "path": "/var/lib/vz", "content": "backup,import,iso,vztmpl", "shared": 0,
        "total": 100 * GIB,
    },
    "local-lvm": {
        "type": "lvmthin", "vgname": "pve", "thinpool": "data", "content": "images,rootdir", "shared": 0,
        "total": 400 * GIB,
    },
}

# a cluster (more than one node) also has a storage every node mounts: what guests need for clone `target` and
# for migrating without copying disks (pve-storage: `shared 1` in storage.cfg; NFS is a shared directory storage)
SHARED_STORAGES = {
    "shared": {
        "type": "nfs", "path": "/mnt/pve/shared", "server": "10.0.0.250", "export": "/export/pve",
        "content": "images,import,iso,rootdir,vztmpl", "shared": 1, "total": 1024 * GIB,
    },
}

STATIC_VOLUMES = [
    {"volid": "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst", "content": "vztmpl", "format": "tzst",
     "size": 126 * 1024**2},
    {"volid": "local:vztmpl/ubuntu-24.04-standard_24.04-2_amd64.tar.zst", "content": "vztmpl", "format": "tzst",
     "size": 141 * 1024**2},
    {"volid": "local:vztmpl/alpine-3.20-default_20240908_amd64.tar.xz", "content": "vztmpl", "format": "txz",
     "size": 3 * 1024**2},
    {"volid": "local:iso/debian-12.7.0-amd64-netinst.iso", "content": "iso", "format": "iso", "size": 631 * 1024**2},
    {"volid": "local:import/debian-12-genericcloud-amd64.qcow2", "content": "import", "format": "qcow2",
     "size": 2 * GIB},
]


LXC_DISK_RE = re.compile(r"^(rootfs|mp\d+)$")
QEMU_DISK_RE = re.compile(r"^(ide\d+|sata\d+|scsi\d+|virtio\d+|efidisk0|tpmstate0)$")
UNUSED_RE = re.compile(r"^unused\d+$")


def format_size(size: int) -> str:
    """Bytes -> PVE's size text (8G, 512M, ...), exact units only."""
    size = int(size)
    for unit in ("T", "G", "M", "K"):
        factor = 1024 ** {"K": 1, "M": 2, "G": 3, "T": 4}[unit]
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


class StorageMixin:
    """Sim's storage and volume methods (Sim provides storages, lock, parse_option and the guest configs)."""

    # -- storage and volumes ---------------------------------------------------------

    def storage(self, storage: str) -> dict:
        scfg = self.storages.get(storage)
        if scfg is None:
            fail(f"storage '{storage}' does not exist")
        return scfg

    def disk_keys(self, kind: str, options: dict) -> list[str]:
        """Disk option keys in PVE's volume order (rootfs first, then by bus and number)."""
        pattern = LXC_DISK_RE if kind == "lxc" else QEMU_DISK_RE
        keys = [k for k in options if pattern.match(k) or UNUSED_RE.match(k)]

        def order(key):
            match = re.match(r"^([a-z]+)(\d*)$", key)
            name, num = match.group(1), int(match.group(2) or 0)
            return (key.startswith("unused"), name != "rootfs", name, num)

        return sorted(keys, key=order)

    def disk_volume(self, kind: str, key: str, value: str) -> tuple[str | None, dict]:
        """(volid, parsed) for a disk option; volid None for non-volume entries (paths, none, cdrom)."""
        parsed = self.parse_option(kind, key, value)
        volid = parsed.get("volume") or parsed.get("file") or value.split(",")[0]
        if not volid or volid in ("none", "cdrom") or volid.startswith("/") or ":" not in volid:
            return None, parsed
        return volid, parsed

    def referenced_volumes(self) -> dict[str, dict]:
        """Every volume that a config (current, snapshots, unused) refers to, on the current node's storages:
        a local storage holds the volumes of the node's guests, a shared one those of every node."""
        found: dict[str, dict] = {}
        for kind, vmid, where in self.cluster_guests():
            conf = self.load_conf(kind, vmid, missing_ok=True, node=where)
            if conf is None:
                continue
            sections = [conf.main, *conf.snapshots.values(), *([conf.pending] if conf.pending else [])]
            for section in sections:
                for key in self.disk_keys(kind, section.options):
                    volid, parsed = self.disk_volume(kind, key, section.options[key])
                    if not volid:
                        continue
                    storage, _sep, name = volid.partition(":")
                    if storage not in self.storages or volid in found:
                        continue
                    if not self.storages[storage]["shared"] and where != self.node:
                        continue
                    owner = re.search(r"(?:vm|base)-(\d+)-", name.split("/")[-1])
                    size = parse_size(parsed.get("size", "")) or 0
                    content = "rootdir" if kind == "lxc" else "images"
                    if parsed.get("media") == "cdrom" and "cloudinit" not in name:
                        content = "iso"
                    found[volid] = {
                        "volid": volid, "size": size, "vmid": int(owner.group(1)) if owner else vmid,
                        "content": content, "format": "raw", "ctime": int(self.started),
                    }
        return found

    def storage_volumes(self, storage: str, internal: bool = False) -> list[dict]:
        """The storage's content as GET .../content lists it; `internal` keeps pvesim's extra fields (digests,
        virtual_size) of downloaded volumes."""
        items = [dict(v, ctime=int(self.started)) for v in STATIC_VOLUMES if v["volid"].startswith(storage + ":")]
        known = {v["volid"] for v in items}
        for _key, info in sorted(self.volumes.items()):
            volid = info["volid"]
            if volid.startswith(storage + ":") and volid not in known:
                if not self.storages[storage]["shared"] and info.get("node", self.local_node) != self.node:
                    continue
                entry = dict(info)
                entry.pop("node", None)
                known.add(volid)
                if not internal:
                    entry.pop("digests", None)
                    entry.pop("virtual_size", None)
                items.append(entry)
        for volid, info in self.referenced_volumes().items():
            if volid.startswith(storage + ":") and info["content"] != "iso":
                items.append(info)
        return sorted(items, key=lambda v: v["volid"])

    def volume_key(self, volid: str) -> str:
        """Key of a downloaded volume in `volumes`: its volid, prefixed by the node for another node's local
        storage (each node has its own `local`)."""
        storage = volid.split(":", 1)[0]
        if self.node == self.local_node or self.storages.get(storage, {}).get("shared"):
            return volid
        return f"{self.node}/{volid}"

    def volume_exists(self, volid: str) -> bool:
        storage = volid.split(":", 1)[0]
        return any(v["volid"] == volid for v in self.storage_volumes(storage))

    def alloc_volume(self, storage: str, vmid: int, content: str, prefix: str = "vm", suffix: str = "",
                     taken: set[str] | None = None) -> str:
        """A free volume name on `storage`; `taken` adds volids not yet written to a config."""
        scfg = self.storage(storage)
        if content not in scfg["content"].split(","):
            what = {"rootdir": "container directories", "images": "VM images"}.get(content, content)
            fail(f"storage '{storage}' does not support {what}")
        known = set(self.referenced_volumes()) | set(taken or ())
        used = {v.split(":", 1)[1].split("/")[-1] for v in known if v.startswith(storage + ":")}
        if suffix:
            name = f"{prefix}-{vmid}-{suffix}"
        else:
            index = 0
            while any(re.match(rf"(vm|base)-{vmid}-disk-{index}(\.|$)", u) for u in used):
                index += 1
            name = f"{prefix}-{vmid}-disk-{index}"
        volid = f"{storage}:{vmid}/{name}.raw" if scfg["type"] in ("dir", "nfs") else f"{storage}:{name}"
        if taken is not None:
            taken.add(volid)
        return volid

    def storage_status(self, storage: str) -> dict:
        scfg = self.storage(storage)
        used = sum(v["size"] for v in self.storage_volumes(storage))
        return {
            "storage": storage, "type": scfg["type"], "content": scfg["content"], "shared": scfg["shared"],
            "active": 1, "enabled": 1, "total": scfg["total"], "used": used, "avail": scfg["total"] - used,
            "used_fraction": used / scfg["total"],
        }
