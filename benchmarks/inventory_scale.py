#!/usr/bin/env python
"""Inventory scale benchmark for the thinkheads.phoenix inventory plugin.

For each size N, generate a valid Phoenix config set with N guests (about 85% LXC containers and 15% VMs,
with dependencies, clones, templates, GPU guests, Traefik services, firewall rules and Docker stacks),
then time, side by side with the floor (ansible-core's own cost: a plain YAML inventory with the same host names),
``ansible-inventory -i bench.phoenix.yml --list`` and ``ansible-playbook -l <one guest>`` of a one-task play, and
record the children's peak RSS. The last line gives our time over the floor's for both commands.

Standard library only. Run from anywhere: ``.venv/bin/python benchmarks/inventory_scale.py`` (``make bench``).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
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


def stack_name(index: int) -> str:
    return f"bench_stack_{index:04d}"


def stack_router(index: int) -> str:
    return f"bench-stack-{index:04d}"


def build_stacks(count: int, net: Network) -> tuple[dict, dict[str, tuple[str, dict]]]:
    """Return (phoenix_stacks_config.json content, {name: (docker-compose.yml text, phoenix.json content)})."""
    config: dict = {}
    files: dict[str, tuple[str, dict]] = {}
    for index in range(count):
        name, router = stack_name(index), stack_router(index)
        environments: dict = {
            "production": {"variables": [{"name": "APP_PORT", "value": "8080"}], "files": []},
        }
        if index % 3 == 0:
            environments["testing"] = {"variables": [{"name": "APP_PORT", "value": "8081"}], "files": []}
        config[name] = {
            "description": f"Benchmark stack {index}.",
            "compose_file_path": f"stacks/{name}/docker-compose.yml",
            "environments": environments,
        }
        compose = (
            "services:\n"
            "  app:\n"
            f"    image: registry.invalid/bench/{router}:1.0\n"
            "    restart: unless-stopped\n"
            "    environment:\n"
            "      - APP_PORT=${APP_PORT}\n"
            "    volumes:\n"
            f"      - {name}_data:/data\n"
            "\n"
            "volumes:\n"
            f"  {name}_data:\n"
            "    external: true\n"
        )
        labels = [
            "traefik.enable=true",
            f"traefik.http.routers.{router}.rule=Host(`{router}.{DOMAIN}`)",
            f"traefik.http.routers.{router}.entrypoints=websecure",
            f"traefik.http.routers.{router}.tls=true",
            f"traefik.http.routers.{router}.tls.certresolver=internal-resolver",
            f"traefik.http.services.{router}.loadbalancer.server.port=8080",
        ]
        phoenix = {
            "description": f"Benchmark stack {index}.",
            "environments": {
                "production": {
                    "variables": [],
                    "files": [],
                    "services": {"app": {"traefik_labels": labels}},
                    "firewall_rules": [
                        {
                            "type": "in",
                            "action": "ACCEPT",
                            "source": str(net.subnet),
                            "proto": "tcp",
                            "port": "8080",
                            "comment": f"Allow access to {router}",
                        }
                    ],
                }
            },
        }
        files[name] = (compose, phoenix)
    return {"docker_stacks": config}, files


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


def build_hypervisor(net: Network, primary_ip: str, traefik_ctid: str, vllm_ctids: list[str]) -> dict:
    """The hypervisor config; its size does not grow with the guest count, so the timings measure guests."""
    subnet = str(net.subnet)
    return {
        "version": "1.0.0",
        "author": "inventory_scale benchmark",
        "domain_name": DOMAIN,
        "users": {"username": "phoenix_admin", "password_hash": "NOT_SET", "sudo_access": True, "ssh_public_key": ""},
        "core_paths": {
            "lxc_config_file": "/usr/local/phoenix_hypervisor/etc/phoenix_lxc_configs.json",
            "vm_config_file": "/usr/local/phoenix_hypervisor/etc/phoenix_vm_configs.json",
        },
        "timezone": "America/New_York",
        "network": {
            "external_registry_url": "docker.io/SirHeads",
            "portainer_server_ip": primary_ip,
            "portainer_server_port": 9443,
            "portainer_agent_port": 9001,
            "interfaces": {
                "name": "vmbr0",
                "address": f"{net.hypervisor}/{net.prefix}",
                "gateway": net.gateway,
                "dns_nameservers": [net.hypervisor, "8.8.8.8"],
            },
            "default_subnet": subnet,
            "nfs_server": net.hypervisor,
            "fallback_dns": "8.8.8.8",
        },
        "docker": {
            "portainer_server_image": "portainer/portainer-ce:latest",
            "portainer_agent_image": "portainer/agent:latest",
        },
        "nfs": {
            "exports": [
                {
                    "path": "/quickOS/vm-persistent-data",
                    "clients": [net.hypervisor, primary_ip],
                    "options": ["rw", "sync", "no_subtree_check", "no_root_squash"],
                }
            ]
        },
        "zfs": {
            "arc_max_gb": 32,
            "pools": [{"name": "quickOS", "raid_level": "single", "disks": ["/dev/disk/by-id/nvme-bench-0"]}],
            "datasets": [
                {
                    "name": "lxc-disks",
                    "pool": "quickOS",
                    "properties": "recordsize=16K,compression=lz4",
                    "proxmox_storage_type": "zfspool",
                    "proxmox_content_type": "images,rootdir",
                    "storage_class": "direct",
                },
                {
                    "name": "vm-disks",
                    "pool": "quickOS",
                    "properties": "recordsize=128K,compression=lz4",
                    "proxmox_storage_type": "zfspool",
                    "proxmox_content_type": "images",
                    "storage_class": "direct",
                },
            ],
        },
        "proxmox_storage_ids": {"quickos_vm": "quickOS-vm-disks", "quickos_lxc": "quickOS-lxc-disks"},
        "mount_point_base": "/mnt/pve",
        "proxmox_defaults": {
            "zfs_lxc_pool": "quickOS/lxc-disks",
            "lxc": {
                "cores": 2,
                "memory_mb": 2048,
                "network_config": f"{net.subnet.network_address + 110}/{net.prefix},{net.gateway},8.8.8.8",
                "features": "nesting=1",
                "security": "default",
                "nesting": 1,
            },
        },
        "nvidia_driver": {"install": True, "version": "580.76.05", "cuda_version": "12.8", "install_vllm_libs": True},
        "behavior": {"rollback_on_failure": False, "debug_mode": False},
        "shared_volumes": {
            "ssl_certs": {"host_path": "/mnt/pve/quickOS/shared-prod-data/ssl", "mounts": {traefik_ctid: "/certs"}},
            "vllm_models": {
                "host_path": "/mnt/pve/fastData/shared-bulk-data/vllm_models",
                "mounts": {ctid: "/vllm_models" for ctid in vllm_ctids[:5]},
            },
            "firewall": {
                "enabled": True,
                "default_input_policy": "DROP",
                "default_output_policy": "ACCEPT",
                "global_firewall_rules": [
                    {"type": "in", "action": "ACCEPT", "proto": "tcp", "port": "443", "comment": "HTTPS"},
                    {
                        "type": "in",
                        "action": "ACCEPT",
                        "source": subnet,
                        "dest": net.hypervisor,
                        "proto": "udp",
                        "port": "53",
                        "comment": "Allow internal guests to query DNS on Host",
                    },
                ],
            },
        },
        "portainer_api": {"admin_user": "admin", "portainer_hostname": f"portainer.{DOMAIN}"},
        "vm_defaults": {"ubuntu_release": "noble"},
        "dns_server": {"enabled": True, "upstream_servers": ["8.8.8.8", "1.1.1.1"], "authoritative_zones": []},
        "step_ca": {
            "root_ca_name": "ThinkHeads Internal CA",
            "intermediate_ca_name": "ThinkHeads Internal CA Intermediate CA",
            "dns_name": f"ca.{DOMAIN}",
            "provisioner_name": "admin@thinkheads.ai",
        },
    }


def split_guests(guests: int) -> tuple[int, int]:
    """(LXC count, VM count): about 15% VMs, at least two (one template plus the Portainer primary)."""
    vms = max(2, round(guests * 0.15))
    return guests - vms, vms


def write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")


def generate(root: Path, guests: int, seed: int, cache: bool = False) -> dict:
    """Write etc/, stacks/ and bench.phoenix.yml for `guests` guests under root; return a summary."""
    if guests < 3:
        raise SystemExit("need at least 3 guests (one LXC, one VM template and the Portainer primary)")
    rng = random.Random(seed * 1_000_003 + guests)
    net = Network(guests)
    n_lxc, n_vm = split_guests(guests)
    if LXC_BASE_ID + n_lxc > VM_BASE_ID:
        raise SystemExit(f"{n_lxc} LXCs would collide with VM IDs starting at {VM_BASE_ID}")
    n_stacks = max(2, guests // 50)
    etc, stacks_dir = root / "etc", root / "stacks"
    etc.mkdir(parents=True)
    stacks_dir.mkdir()

    dep_pool: list[int] = []  # non-template guests built so far, in ascending ID order
    depth: dict[int, int] = {}
    lxcs = build_lxcs(rng, n_lxc, net, dep_pool, depth)
    stacks_config, stack_files = build_stacks(n_stacks, net)
    vms = build_vms(rng, n_vm, net, list(stack_files), dep_pool, depth)

    primary_ip = next(vm["network_config"]["ip"] for vm in vms if vm.get("portainer_role") == "primary")
    traefik_ctid = next(ctid for ctid, g in lxcs.items() if "traefik" in g["features"])
    vllm_ctids = [ctid for ctid, g in lxcs.items() if "vllm" in g["features"]]
    hypervisor = build_hypervisor(net, primary_ip.split("/")[0], traefik_ctid, vllm_ctids)

    write_json(etc / "phoenix_hypervisor_config.json", hypervisor)
    write_json(
        etc / "phoenix_lxc_configs.json",
        {
            "$schema": "/usr/local/phoenix_hypervisor/etc/phoenix_lxc_configs.schema.json",
            "nvidia_driver_version": "580.76.05",
            "nvidia_repo_url": "https://developer.download.nvidia.com/compute/cuda/repos/ubuntu2404/x86_64/",
            "nvidia_runfile_url": "https://us.download.nvidia.com/XFree86/Linux-x86_64/580.76.05/"
            "NVIDIA-Linux-x86_64-580.76.05.run",
            "lxc_configs": lxcs,
        },
    )
    write_json(
        etc / "phoenix_vm_configs.json",
        {
            "vm_defaults": {
                "template": "ubuntu-24.04-standard",
                "cores": 2,
                "memory_mb": 4096,
                "disk_size_gb": 50,
                "storage_pool": "quickOS-vm-disks",
                "network_bridge": "vmbr0",
            },
            "vms": vms,
        },
    )
    write_json(etc / "phoenix_stacks_config.json", stacks_config)
    for name, (compose, phoenix) in stack_files.items():
        (stacks_dir / name).mkdir()
        (stacks_dir / name / "docker-compose.yml").write_text(compose)
        write_json(stacks_dir / name / "phoenix.json", phoenix)

    inventory = root / "bench.phoenix.yml"
    inventory.write_text(
        "plugin: thinkheads.phoenix.phoenix\n"
        f"config_dir: {json.dumps(str(etc))}\n"
        f"stacks_dir: {json.dumps(str(stacks_dir))}\n"
    )
    # As the project's inventory/phoenix.yml: the validated model is kept between runs (the untimed first run
    # stores it). --no-cache times the cold path instead.
    if cache:
        with inventory.open("a") as handle:
            handle.write("cache: true\ncache_plugin: ansible.builtin.jsonfile\n"
                         f"cache_connection: {json.dumps(str(root / 'cache'))}\ncache_timeout: 0\n")
    return {
        "inventory": inventory,
        "guest_ids": set(lxcs) | {str(vm["vmid"]) for vm in vms},
        "names": {**{ctid: lxc["name"] for ctid, lxc in lxcs.items()}, **{str(vm["vmid"]): vm["name"] for vm in vms}},
        "lxc": n_lxc,
        "vm": n_vm,
        "stacks": n_stacks,
    }


# --------------------------------------------------------------------------------------------------------------
# Measurement
# --------------------------------------------------------------------------------------------------------------


def run_inventory(cmd: list[str], env: dict, stdout, timeout: float) -> tuple[float, float, float, int, bytes]:
    """Run once; return (wall seconds, CPU seconds, peak RSS in MiB, exit status, stderr)."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=stdout, stderr=err)
        watchdog = threading.Timer(timeout, proc.kill)
        watchdog.start()
        try:
            # wait4 gives this child's own rusage (ru_maxrss), unlike getrusage(RUSAGE_CHILDREN)'s running maximum.
            status, usage = os.wait4(proc.pid, 0)[1:]
        finally:
            watchdog.cancel()
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4; keep Popen from waiting again
        err.seek(0)
        # ru_maxrss is in KiB on Linux (bytes on macOS).
        peak_mib = usage.ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)
        return elapsed, usage.ru_utime + usage.ru_stime, peak_mib, proc.returncode, err.read()


def describe_exit(rc: int, timeout: float) -> str:
    if rc == -9:
        return f"was killed (SIGKILL: the --timeout of {timeout:g}s, or out of memory)"
    return f"exited {rc}" if rc >= 0 else f"was killed by signal {-rc}"


def fail(message: str, stderr: bytes | None = None) -> None:
    print(f"FAIL: {message}", file=sys.stderr)
    if stderr is not None:
        print("---- ansible-inventory stderr (last 20000 characters) ----", file=sys.stderr)
        print(stderr.decode(errors="replace")[-20000:] or "(empty)", file=sys.stderr)
    raise SystemExit(1)


def listed_hosts(data: dict) -> set[str]:
    hosts = set(data.get("_meta", {}).get("hostvars", {}))
    for group, body in data.items():
        if group != "_meta" and isinstance(body, dict):
            hosts.update(body.get("hosts", []))
    return hosts


PLAY = """\
- name: One task on the limited host
  hosts: all
  gather_facts: false
  tasks:
    - name: Name the host
      ansible.builtin.debug:
        msg: "{{ inventory_hostname }}"
"""
# The untimed check that a play sees the plugin's phoenix_guest (derived on access) for the limited guest.
CHECK_PLAY = """\
- name: Read phoenix_guest
  hosts: all
  gather_facts: false
  tasks:
    - name: Print the guest's name and ID
      ansible.builtin.debug:
        msg: "guest={{ phoenix_guest.id }}:{{ phoenix_guest.name }}:{{ hostvars[inventory_hostname].phoenix_guest.type }}"
"""


def write_floor(gen: dict, hosts: set[str]) -> Path:
    """The floor: a plain YAML inventory with the same host names and only ansible_host per host."""
    plain = Path(gen["inventory"]).parent / "plain.yml"
    lines = ["all:", "  hosts:"]
    for index, host in enumerate(sorted(hosts)):
        lines.append(f"    '{host}': {{ansible_host: 10.{index // 65536 % 256}.{index // 256 % 256}.{index % 256}}}")
    plain.write_text("\n".join(lines) + "\n")
    return plain


def timed(cmd: list[str], env: dict, args, what: str) -> tuple[float, float, float]:
    """One timed run with the output sent to /dev/null: (wall s, CPU s, peak MiB); a failure stops the benchmark."""
    with open(os.devnull, "wb") as devnull:
        elapsed, cpu, peak, rc, err = run_inventory(cmd, env, devnull, args.timeout)
    if rc != 0:
        fail(f"{what} {describe_exit(rc, args.timeout)}", err)
    return elapsed, cpu, peak


def check_play(size: int, gen: dict, args, env: dict, limit: str) -> None:
    """Untimed: a play limited to one guest sees its phoenix_guest (ID and name from the generated config)."""
    workdir = Path(gen["inventory"]).parent
    check = workdir / "check.yml"
    check.write_text(CHECK_PLAY)
    cmd = [str(args.ansible_playbook), "-i", str(gen["inventory"]), "-l", limit, str(check)]
    with tempfile.TemporaryFile() as out:
        rc, err = run_inventory(cmd, env, out, args.timeout)[3:]
        out.seek(0)
        text = out.read().decode(errors="replace")
    want = f"guest={limit}:{gen['names'][limit]}:"
    if rc != 0 or want not in text:
        fail(f"the play limited to guest {limit} did not print {want!r} for {size} guests ({describe_exit(rc, 0)})",
             err + text[-4000:].encode())


def measure(size: int, gen: dict, args, env: dict) -> dict:
    cmd = [str(args.ansible_inventory), "-i", str(gen["inventory"]), "--list", *(["--export"] if args.export else [])]
    # One untimed verification run (also warms the page cache and .pyc files): the output must hold every guest.
    with tempfile.TemporaryFile() as out:
        rc, err = run_inventory(cmd, env, out, args.timeout)[3:]
        if rc != 0:
            fail(f"ansible-inventory {describe_exit(rc, args.timeout)} for {size} guests", err)
        out.seek(0)
        try:
            data = json.load(out)
        except ValueError as exc:
            fail(f"ansible-inventory printed invalid JSON for {size} guests: {exc}", err)
    hosts = listed_hosts(data)
    guests = hosts & gen["guest_ids"]
    missing = gen["guest_ids"] - hosts
    if missing:
        sample = ", ".join(sorted(missing, key=int)[:10])
        message = f"expected {size} guest hosts, found {len(guests)} ({len(hosts)} hosts in all)"
        fail(f"{message}; missing e.g. {sample}", err)
    others = sorted(hosts - gen["guest_ids"])
    if len(others) != 1:
        print(f"warning: expected 1 hypervisor host besides the guests, found {len(others)}: {others[:5]}")
    limit = str(int(min(gen["guest_ids"], key=int)) + 1)  # an ordinary guest (the first one is a template)
    check_play(size, gen, args, env, limit)

    workdir = Path(gen["inventory"]).parent
    play = workdir / "play.yml"
    play.write_text(PLAY)
    plain = write_floor(gen, hosts)
    commands = {
        "list": cmd,
        "floor_list": [str(args.ansible_inventory), "-i", str(plain), "--list", *(["--export"] if args.export else [])],
        "play": [str(args.ansible_playbook), "-i", str(gen["inventory"]), "-l", limit, str(play)],
        "floor_play": [str(args.ansible_playbook), "-i", str(plain), "-l", limit, str(play)],
    }
    runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name in commands}
    timed(commands["floor_list"], env, args, f"the floor's ansible-inventory for {size} hosts")  # warm-up
    timed(commands["floor_play"], env, args, f"the floor's ansible-playbook for {size} hosts")  # warm-up
    # Side by side: each round runs ours and the floor back to back, so both see the same machine load.
    for _run in range(args.repeat):
        for name, command in commands.items():
            runs[name].append(timed(command, env, args, f"{name} for {size} guests"))
    result: dict = {"guests": size, "lxc": gen["lxc"], "vm": gen["vm"], "stacks": gen["stacks"],
                    "hosts": len(hosts), "limit": limit}
    for name, samples in runs.items():
        times = [t for t, _c, _p in samples]
        result[name] = {
            "runs_s": [round(t, 4) for t in times],
            "cpu_s": [round(c, 4) for _t, c, _p in samples],  # user+sys: less disturbed than wall time by other load
            "best_s": round(min(times), 4),
            "median_s": round(statistics.median(times), 4),
            "best_cpu_s": round(min(c for _t, c, _p in samples), 4),
            "peak_mb": round(max(p for _t, _c, p in samples), 1),
        }
    for name in ("list", "play"):
        result[f"{name}_over_floor"] = round(result[name]["best_s"] / result[f"floor_{name}"]["best_s"], 3)
        result[f"{name}_cpu_over_floor"] = round(
            result[name]["best_cpu_s"] / result[f"floor_{name}"]["best_cpu_s"], 3)
    result["peak_mb"] = result["list"]["peak_mb"]
    result["model_s"] = measure_model(gen, env)
    result["graph_s"] = measure_graph(size, gen, args, env)
    if args.profile:
        profile(size, commands, args, env)
    return result


def profile(size: int, commands: dict[str, list[str]], args, env: dict) -> None:
    """cProfile of ansible-core with the plugin for both commands: the functions that took the most time."""
    args.profile.mkdir(parents=True, exist_ok=True)
    python = str(REPO / ".venv" / "bin" / "python")
    for name in ("list", "play"):
        out = args.profile / f"{name}_{size}.prof"
        command = [python, "-m", "cProfile", "-o", str(out), *commands[name]]
        timed(command, env, args, f"the profiled {name} for {size} guests")
        report = subprocess.run(
            [python, "-c", "import pstats, sys; pstats.Stats(sys.argv[1]).sort_stats(sys.argv[2]).print_stats(int(sys.argv[3]))",
             str(out), "cumulative", "30"],
            capture_output=True, text=True, check=False)
        (args.profile / f"{name}_{size}.txt").write_text(report.stdout)
        print(f"---- profile: {name} for {size} guests (top 30 by cumulative time; {out}) ----")
        print("\n".join(line[:160] for line in report.stdout.splitlines()[6:40]))


def measure_graph(size: int, gen: dict, args, env: dict) -> float:
    """ansible-inventory --graph on the same inventory: parsing and grouping without serializing host variables."""
    cmd = [str(args.ansible_inventory), "-i", str(gen["inventory"]), "--graph"]
    times = []
    for _run in range(args.repeat):
        with open(os.devnull, "wb") as devnull:
            result = run_inventory(cmd, env, devnull, args.timeout)
        if result[3] != 0:
            fail(f"ansible-inventory --graph {describe_exit(result[3], args.timeout)} for {size} guests", result[4])
        times.append(result[0])
    return round(min(times), 4)


def measure_model(gen: dict, env: dict) -> float:
    """Seconds the collection's config model takes to load and validate the configs (in a fresh process)."""
    etc = Path(gen["inventory"]).parent / "etc"
    code = (
        "import sys, time; sys.path.insert(0, sys.argv[1]);"
        "from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.model import load_config;"
        "load_config(sys.argv[2]); t = time.perf_counter(); c = load_config(sys.argv[2]);"
        "print(time.perf_counter() - t); sys.exit(1 if c.report.errors else 0)"
    )
    python = REPO / ".venv" / "bin" / "python"
    out = subprocess.run([str(python), "-c", code, str(REPO / "collections"), str(etc)], env=env,
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        fail("the config model rejected the generated configs", out.stderr.encode() + out.stdout.encode())
    return round(float(out.stdout.strip().splitlines()[-1]), 4)


def summarize(results: dict[int, dict]) -> tuple[str, dict[str, dict]]:
    """The final line and the targets it could evaluate (each ratio at most TARGET_OVER_FLOOR)."""
    parts, targets = [], {}
    for name, size in (("list", 1000), ("list", 5000), ("play", 5000)):
        if size in results:
            ratio = results[size][f"{name}_over_floor"]
            key = f"{name}_over_floor_{size}"
            parts.append(f"{key}={ratio:.2f}")
            targets[key] = {"value": ratio, "limit": f"<= {TARGET_OVER_FLOOR}", "pass": ratio <= TARGET_OVER_FLOOR}
    if 5000 in results:
        parts.append(f"peak_mb_5000={results[5000]['peak_mb']:.0f}")
    if not parts:
        for size in sorted(results):
            parts.append(f"list_over_floor_{size}={results[size]['list_over_floor']:.2f} "
                         f"play_over_floor_{size}={results[size]['play_over_floor']:.2f} "
                         f"peak_mb_{size}={results[size]['peak_mb']:.0f}")
    return " ".join(parts), targets


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text!r}") from None
    if not sizes or sizes[0] < 3:
        raise argparse.ArgumentTypeError("sizes must be integers >= 3")
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=parse_sizes, default=list(DEFAULT_SIZES), help="comma-separated guest counts")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per size (best and median reported)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the results to this JSON file")
    parser.add_argument("--enforce", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--seed", type=int, default=20240601, help="random seed for the generated configs")
    parser.add_argument("--timeout", type=float, default=600, help="seconds allowed per ansible-inventory run")
    parser.add_argument(
        "--export", action="store_true", help="time --list --export (group vars not merged into hosts, as AWX runs it)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the generated config sets and print where")
    parser.add_argument("--generate-only", type=Path, metavar="DIR", help="write DIR/<N>/ config sets and stop")
    parser.add_argument(
        "--ansible-inventory", type=Path, default=REPO / ".venv" / "bin" / "ansible-inventory", help="binary to time"
    )
    parser.add_argument(
        "--ansible-playbook", type=Path, default=None, help="ansible-playbook to time (default: next to ansible-inventory)"
    )
    parser.add_argument("--no-cache", action="store_true",
                        help="time the plugin without its model cache (inventory/phoenix.yml keeps it on)")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="also cProfile both commands with the plugin at each size; stats and top-30 text in DIR")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    if args.generate_only:
        for size in args.sizes:
            gen = generate(args.generate_only / str(size), size, args.seed)
            print(f"{size}: {gen['lxc']} LXC, {gen['vm']} VM, {gen['stacks']} stacks -> {gen['inventory']}")
        return 0

    if args.ansible_playbook is None:
        args.ansible_playbook = args.ansible_inventory.parent / "ansible-playbook"
    for binary in (args.ansible_inventory, args.ansible_playbook):
        if not os.access(binary, os.X_OK):
            fail(f"{binary} not found or not executable; create the project virtualenv first")
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_INVENTORY_UNPARSED_FAILED="true")
    env.setdefault("ANSIBLE_NOCOLOR", "1")

    workdir = Path(tempfile.mkdtemp(prefix="phoenix-inventory-bench-"))
    results: dict[int, dict] = {}
    try:
        for size in args.sizes:
            gen = generate(workdir / str(size), size, args.seed, cache=not args.no_cache)
            results[size] = measure(size, gen, args, env)
            print(f"measured {size} guests: list {results[size]['list']['best_s']:.3f}s "
                  f"(floor {results[size]['floor_list']['best_s']:.3f}s)", file=sys.stderr, flush=True)
    finally:
        if args.keep:
            print(f"config sets kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    header = (f"{'guests':>7} | {'list s':>7} | {'floor':>7} | {'ratio':>5} | {'cpu ratio':>9} | {'play -l s':>9} | "
              f"{'floor':>7} | {'ratio':>5} | {'cpu ratio':>9} | {'peak MB':>7} | {'floor MB':>8} | {'model s':>7} | "
              f"{'--graph s':>9}")
    print(header)
    print("-" * len(header))
    for size, r in results.items():
        print(f"{size:>7} | {r['list']['best_s']:>7.3f} | {r['floor_list']['best_s']:>7.3f} | "
              f"{r['list_over_floor']:>5.2f} | {r['list_cpu_over_floor']:>9.2f} | {r['play']['best_s']:>9.3f} | "
              f"{r['floor_play']['best_s']:>7.3f} | {r['play_over_floor']:>5.2f} | {r['play_cpu_over_floor']:>9.2f} | "
              f"{r['peak_mb']:>7.1f} | {r['floor_list']['peak_mb']:>8.1f} | {r['model_s']:>7.3f} | {r['graph_s']:>9.3f}")
    print("list: ansible-inventory --list; play -l: ansible-playbook -l <one guest> of a one-task play; floor: the same "
          "command on a plain YAML inventory with the same host names (only ansible_host); best of "
          f"{args.repeat} side-by-side rounds (cpu ratio: user+sys); model cache "
          + ("off (--no-cache)" if args.no_cache else "on, as in inventory/phoenix.yml (stored by an untimed run)"))
    line, targets = summarize(results)
    for name, target in targets.items():
        verdict = "PASS" if target["pass"] else "FAIL"
        print(f"target {name} {target['limit']}: {target['value']:.2f} {verdict}")
    if args.json:
        payload = {
            "sizes": args.sizes,
            "repeat": args.repeat,
            "commands": ["ansible-inventory --list" + (" --export" if args.export else ""),
                         "ansible-playbook -l <one guest> <one-task play>"],
            "seed": args.seed,
            "model_cache": not args.no_cache,
            "results": [results[size] for size in args.sizes],
            "targets": targets,
            "summary": line,
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    print(line)
    return 1 if args.enforce and not all(t["pass"] for t in targets.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
