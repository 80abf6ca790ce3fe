"""The lab's topology, read from the lab configs, and the two-node cluster's configs."""

from __future__ import annotations

import json
import os
from pathlib import Path

from . import settings
from .settings import CACHE, CLUSTER_NODES, CLUSTER_PLACEMENT, CLUSTER_STORAGE, HYPERVISOR, LAB, LABEL, NODE, ROLE_LABEL, LabError, _write

# --------------------------------------------------------------------------------------------------
# The lab's topology, read from the lab configs (the inventory plugin is the full model; this is
# only what the lab needs before Ansible runs and for the health table)


def load_topology(config_dir: Path | None = None) -> dict:
    config_dir = config_dir or settings.CONFIG_DIR
    hyp = json.loads((config_dir / "phoenix_hypervisor_config.json").read_text())
    iface = hyp["network"]["interfaces"]
    address = iface["address"]
    ip, prefix = address.split("/")
    subnet = hyp["network"].get("default_subnet") or _network_of(address)
    guests = []
    lxc = json.loads((config_dir / "phoenix_lxc_configs.json").read_text()).get("lxc_configs", {})
    for vmid, conf in lxc.items():
        guests.append(_guest(int(vmid), "lxc", conf))
    vms = json.loads((config_dir / "phoenix_vm_configs.json").read_text()).get("vms", [])
    for conf in vms:
        guests.append(_guest(int(conf["vmid"]), "qemu", conf))
    guests.sort(key=lambda g: (g["template"] is False, g["vmid"]))
    cluster = sorted((hyp.get("cluster") or {}).get("nodes") or {})
    hypervisors = [{"name": HYPERVISOR, "node": NODE, "ip": ip, "api": True}]
    hypervisors += [{"name": CLUSTER_NODES[n]["host"], "node": n, "ip": CLUSTER_NODES[n]["ip"], "api": False}
                    for n in cluster if n in CLUSTER_NODES]
    return {"ip": ip, "prefix": int(prefix), "subnet": subnet, "gateway": iface.get("gateway"),
            "bridge": iface.get("name", "vmbr0"), "guests": guests, "domain": hyp.get("domain_name", ""),
            "hypervisors": hypervisors, "nodes": [h["node"] for h in hypervisors]}


def cluster_config_dir(nodes: int, source: Path = LAB / "etc", target: Path | None = None) -> Path:
    """The lab configs for `nodes` Proxmox nodes: lab/etc itself for one; for two a copy under .cache/lab/cluster/etc
    whose hypervisor config describes the cluster (nodes pve and pve2, the shared storage), whose VMs' disks are on
    the shared storage (Proxmox clones onto another node only from shared storage: the template 9000 lives on pve)
    and which places the Swarm worker 1002 on pve2."""
    if nodes == 1:
        return source
    if nodes != 1 + len(CLUSTER_NODES):
        raise LabError(f"the lab runs 1 or {1 + len(CLUSTER_NODES)} nodes, not {nodes}")
    target = target or CACHE / "cluster" / "etc"
    target.mkdir(parents=True, exist_ok=True)
    for file in sorted(source.glob("*.json")):
        data = json.loads(file.read_text())
        if isinstance(data, dict) and isinstance(data.get("$schema"), str) \
                and not data["$schema"].startswith(("http:", "https:", "/")):
            data["$schema"] = os.path.relpath((file.parent / data["$schema"]).resolve(), target)
        if file.name == "phoenix_hypervisor_config.json":
            data["cluster"] = {
                "node": NODE,
                "nodes": {NODE: {"description": f"{HYPERVISOR}: pvesim serves the cluster's API"},
                          **{n: {"description": f"{c['host']}: the cluster file system and SSH"}
                             for n, c in CLUSTER_NODES.items()}},
                "shared_storages": [CLUSTER_STORAGE],
            }
        elif file.name == "phoenix_vm_configs.json":
            data.setdefault("vm_defaults", {})["storage_pool"] = CLUSTER_STORAGE
            for vm in data.get("vms") or []:
                if "storage_pool" in vm:
                    vm["storage_pool"] = CLUSTER_STORAGE
                if int(vm["vmid"]) in CLUSTER_PLACEMENT:
                    vm["node"] = CLUSTER_PLACEMENT[int(vm["vmid"])]
        _write(target / file.name, json.dumps(data, indent=2) + "\n")
    return target


def use_config_dir(config_dir: Path) -> None:
    settings.CONFIG_DIR = config_dir


def running_nodes(client) -> int:
    """How many Proxmox nodes the existing lab has (its hypervisor containers), 0 when none exists."""
    containers = client.containers.list(all=True, filters={"label": [f"{LABEL}=1", f"{ROLE_LABEL}=hypervisor"]})
    return len(containers)


def _network_of(cidr: str) -> str:
    import ipaddress
    return str(ipaddress.ip_interface(cidr).network)


def _guest(vmid: int, kind: str, conf: dict) -> dict:
    ip = str((conf.get("network_config") or {}).get("ip") or "")
    return {"vmid": vmid, "kind": kind, "name": conf.get("name", str(vmid)), "template": bool(conf.get("is_template")),
            "ip": ip.split("/", maxsplit=1)[0] if ip and ip != "dhcp" else None, "features": list(conf.get("features") or []),
            "user": (conf.get("user_config") or {}).get("username")}
