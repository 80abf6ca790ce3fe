"""inventory_scale's generated config set: the Docker stacks, the hypervisor and generate(root, guests, seed)."""

from __future__ import annotations

import json
import random
from pathlib import Path

from .scale_guests import DOMAIN, LXC_BASE_ID, VM_BASE_ID, Network, build_lxcs, build_vms


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
