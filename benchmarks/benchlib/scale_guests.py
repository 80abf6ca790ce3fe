"""inventory_scale's generated guests: the address plan, firewall rules, dependencies, LXC containers and VMs."""

from __future__ import annotations

import ipaddress
import random
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOMAIN = "internal.thinkheads.ai"
DEFAULT_SIZES = (10, 1000, 5000)
LXC_BASE_ID = 100
VM_BASE_ID = 100000
TEMPLATE_EVERY = 50
TRAEFIK_EVERY = 20
TARGET_OVER_FLOOR = 1.25  # our time / the floor's (same host names, plain YAML), per command and size
LXC_TARBALL = "/fastData/shared-iso/template/cache/ubuntu-24.04-standard_24.04-2_amd64.tar.zst"
TCP_PORTS = ("22", "80,443", "8000:8010", "9100", "6333,6334")
UDP_PORTS = ("53", "123", "5000:5010")
TRAEFIK_PORTS = (80, 443, 8000, 8080, 9000, 11434)


# --------------------------------------------------------------------------------------------------------------
# Config generation
# --------------------------------------------------------------------------------------------------------------


class Network:
    """Address plan: the hypervisor, the gateway and one unique static address per guest."""

    def __init__(self, guests: int) -> None:
        # A /16 holds about 65k usable addresses once .0/.255 hosts are skipped; past that use a /12.
        self.subnet = ipaddress.ip_network("10.0.0.0/16" if guests <= 60000 else "10.0.0.0/12")
        self.prefix = self.subnet.prefixlen
        base = self.subnet.network_address
        self.gateway = str(base + 1)
        self.hypervisor = str(base + 13)
        self._next = int(base) + 256  # guests start at x.x.1.1; x.x.0.0/24 is left to the host and gateway
        self._blocks = self.subnet.num_addresses // 256

    def next_ip(self) -> str:
        while True:
            addr = ipaddress.ip_address(self._next)
            self._next += 1
            if addr not in self.subnet:
                raise RuntimeError(f"subnet {self.subnet} exhausted")
            if int(addr) & 0xFF not in (0, 255):  # skip addresses ending in .0 and .255
                return str(addr)

    def random_cidr(self, rng: random.Random) -> str:
        """A source/destination CIDR inside the subnet: the subnet itself, a /24 in it, or the hypervisor."""
        pick = rng.random()
        if pick < 0.4:
            return str(self.subnet)
        if pick < 0.9:
            block = self.subnet.network_address + 256 * rng.randrange(self._blocks)
            return f"{block}/24"
        return f"{self.hypervisor}/32"


def mac_for(index: int) -> str:
    return f"52:54:00:{(index >> 16) & 0xFF:02X}:{(index >> 8) & 0xFF:02X}:{index & 0xFF:02X}"


def firewall_rules(rng: random.Random, net: Network) -> list[dict]:
    """2-4 distinct rules (a repeated rule is a config warning)."""
    rules: dict[tuple, dict] = {}
    wanted = rng.randint(2, 4)
    while len(rules) < wanted:
        direction = rng.choice(("in", "in", "in", "out"))
        proto = rng.choice(("tcp", "tcp", "tcp", "udp", "icmp"))
        rule = {"type": direction, "action": "ACCEPT", "proto": proto}
        if proto != "icmp":
            rule["port"] = rng.choice(TCP_PORTS if proto == "tcp" else UDP_PORTS)
        rule["source" if direction == "in" else "dest"] = net.random_cidr(rng)
        rule["comment"] = f"bench {direction} {proto}"
        rules.setdefault(tuple(sorted(rule.items())), rule)
    return list(rules.values())


def pick_dependencies(rng: random.Random, candidates: list[int]) -> list[str]:
    """0-2 distinct guests, all with lower IDs than the guest being built (so the graph is a DAG)."""
    count = min(len(candidates), rng.choices((0, 1, 2), weights=(4, 4, 2))[0])
    return [str(i) for i in sorted(rng.sample(candidates, count))]


def vllm_engine_config(ctid: int, gpus: int) -> dict:
    return {
        "ModelConfig": {
            "model": "Qwen/Qwen2.5-7B-Instruct-AWQ",
            "trust_remote_code": True,
            "dtype": "auto",
            "max_model_len": 4096,
        },
        "CacheConfig": {"quantization": "awq_marlin", "gpu_memory_utilization": 0.5},
        "ParallelConfig": {"tensor_parallel_size": gpus},
        "ServerConfig": {"host": "0.0.0.0", "port": 8000, "served_model_name": f"model-{ctid}"},
    }


def build_lxcs(rng: random.Random, count: int, net: Network, dep_pool: list[int], depth: dict[int, int]) -> dict:
    lxcs: dict[str, dict] = {}
    templates: list[int] = []
    traefik_host = None
    for index in range(count):
        ctid = LXC_BASE_ID + index
        is_template = index % TEMPLATE_EVERY == 0
        if is_template:
            features = ["base_setup"]
            role = "tmpl"
        elif traefik_host is None:
            features = ["base_setup", "traefik"]
            role = "traefik"
            traefik_host = ctid
        else:
            roll = rng.random()
            if roll < 0.15:
                features = ["base_setup", "nvidia"] + (["vllm"] if rng.random() < 0.5 else [])
                role = "vllm" if "vllm" in features else "gpu"
            elif roll < 0.40:
                features = ["base_setup", "docker"]
                role = "docker"
            else:
                features = ["base_setup"]
                role = "base"
        guest: dict = {
            "name": f"{role}-{ctid}",
            "start_at_boot": not is_template,
            "boot_order": 0,
            "boot_delay": 0 if is_template else rng.choice((0, 2, 5)),
            "memory_mb": rng.choice((2048, 4096, 8192)),
            "cores": rng.choice((1, 2, 4)),
            "storage_pool": "quickOS-lxc-disks",
            "storage_size_gb": rng.choice((16, 32, 64)),
            "network_config": {
                "name": "eth0",
                "bridge": "vmbr0",
                "ip": f"{net.next_ip()}/{net.prefix}",
                "gw": net.gateway,
                "nameservers": net.hypervisor,
            },
            "mac_address": mac_for(index + 1),
            "gpu_assignment": "none",
            "portainer_role": "none",
            "unprivileged": True,
            "features": features,
            "lxc_options": ["lxc.apparmor.profile=unconfined"],
            "apparmor_profile": "unconfined",
            "apparmor_manages_nesting": True,
            "enable_lifecycle_snapshots": is_template,
            "firewall": {"enabled": True, "rules": firewall_rules(rng, net)},
        }
        # Templates: the first builds from the tarball; later ones mostly chain from an earlier template.
        # Ordinary guests mostly clone from an earlier template; a few still build from the tarball.
        if templates and rng.random() < (0.5 if is_template else 0.85):
            guest["clone_from_ctid"] = str(rng.choice(templates))
        else:
            guest["template"] = LXC_TARBALL
        if is_template:
            guest["template_snapshot_name"] = "final-form"
            templates.append(ctid)
        if "nvidia" in features:
            gpus = rng.choice((1, 2))
            guest["gpu_assignment"] = "0" if gpus == 1 else "0, 1"
            guest["memory_mb"] = 32768
            if "vllm" in features:
                guest["application_script"] = "phoenix_hypervisor_lxc_vllm.sh"
                guest["vllm_engine_config"] = vllm_engine_config(ctid, gpus)
        if not is_template and index % TRAEFIK_EVERY == 2:
            port = 8000 if "vllm" in features else rng.choice(TRAEFIK_PORTS)
            guest["traefik_service"] = {"name": f"svc-{ctid}", "port": port}
        deps = [] if is_template else pick_dependencies(rng, dep_pool)
        if deps:
            guest["dependencies"] = deps
        depth[ctid] = 1 + max((depth[int(d)] for d in deps), default=-1)
        guest["boot_order"] = depth[ctid]
        if not is_template:
            dep_pool.append(ctid)
        lxcs[str(ctid)] = guest
    return lxcs


def build_vms(
    rng: random.Random, count: int, net: Network, stacks: list[str], dep_pool: list[int], depth: dict[int, int]
) -> list[dict]:
    vms: list[dict] = []
    templates: list[int] = []
    primary: int | None = None
    workers: list[dict] = []
    for index in range(count):
        vmid = VM_BASE_ID + index
        is_template = index % TEMPLATE_EVERY == 0
        vm: dict = {"vmid": vmid}
        if is_template:
            vm.update(
                name=f"vm-tmpl-{vmid}",
                is_template=True,
                template_image="noble-server-cloudimg-amd64.img",
                template_snapshot_name="initial_clean_state",
            )
        else:
            role = "primary" if primary is None else "agent"
            vm.update(
                name=f"{'manager' if role == 'primary' else 'worker'}-{vmid}",
                clone_from_vmid=rng.choice(templates),
                cores=rng.choice((2, 4)),
                memory_mb=rng.choice((4096, 8192)),
                disk_size_gb=rng.choice((32, 64)),
                start_at_boot=True,
                boot_delay=2,
                features=["base_setup", "docker"],
                portainer_role=role,
            )
            deps = pick_dependencies(rng, dep_pool)
            if role == "agent":
                deps = sorted({str(primary), *deps[:1]}, key=int)
            else:
                primary = vmid
            if deps:
                vm["dependencies"] = deps
            depth[vmid] = 1 + max((depth[int(d)] for d in deps), default=-1)
            vm["boot_order"] = depth[vmid]
            dep_pool.append(vmid)
            workers.append(vm)
        vm["network_config"] = {"ip": f"{net.next_ip()}/{net.prefix}", "gw": net.gateway, "nameserver": net.hypervisor}
        vm["mac_address"] = mac_for(0x800000 + index)
        vm["user_config"] = {"username": "phoenix_user"}
        if not is_template:
            vm["volumes"] = [
                {
                    "type": "nfs",
                    "name": "persistent-storage",
                    "path": f"/quickOS/vm-persistent-data/{vmid}",
                    "mount_point": "/persistent-storage",
                    "server": net.hypervisor,
                }
            ]
            vm["firewall"] = {"enabled": True, "rules": firewall_rules(rng, net)}
        if is_template:
            templates.append(vmid)
        vms.append(vm)
    # Each stack is deployed on exactly one Docker VM, spread round-robin (the primary takes the first).
    for index, name in enumerate(stacks):
        workers[index % len(workers)].setdefault("docker_stacks", []).append(name)
    return vms
