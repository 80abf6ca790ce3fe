"""The one-node lab tests' workflow helpers: the guide's new guest and stack, a user's copy of the lab configs,
playbook runs, and pvesim's and the Swarm's state (to prove a plan wrote nothing)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from lab_checks import CACHE, RECAP, REPO, docker, show


def swarm_service_versions() -> str:
    """Each Swarm service of the lab with the version of its spec (a deploy, even of the same spec, raises it)."""
    proc = docker("exec", "phoenix-1001", "sh", "-c",
                  "docker service inspect --format '{{.Spec.Name}} {{.Version.Index}}' $(docker service ls -q)")
    assert proc.returncode == 0, show(proc)
    return "\n".join(sorted(proc.stdout.split("\n")))


def plan_table_rows(stdout: str) -> list[tuple[str, ...]]:
    """[(host, kind, change, before, after)] of the PLAN table that ends a check-mode run."""
    assert "PLAN: " in stdout, stdout[-4000:]
    rows = []
    for line in stdout[stdout.rindex("PLAN: "):].splitlines()[3:]:
        if line.startswith("by kind:") or not line.strip():
            break
        rows.append(tuple(cell.strip() for cell in line.split(" | ")))
    return rows


NEW_GUEST = {
    "name": "hello", "clone_from_ctid": "900", "start_at_boot": True, "boot_order": 7, "boot_delay": 5,
    "memory_mb": 512, "cores": 1, "storage_pool": "local-lvm", "storage_size_gb": 8, "unprivileged": True,
    "network_config": {"name": "eth0", "bridge": "vmbr0", "ip": "10.77.0.145/24", "gw": "10.77.0.1",
                       "nameservers": "10.77.0.13"},
    "mac_address": "52:54:00:00:08:05", "gpu_assignment": "none", "portainer_role": "none",
    "features": ["base_setup"], "dependencies": ["102"],
    "traefik_service": {"name": "hello", "port": 8080},
    "firewall": {"enabled": True, "policy_in": "DROP", "policy_out": "ACCEPT", "rules": [
        {"type": "in", "action": "ACCEPT", "proto": "tcp", "dport": "22", "source": "10.77.0.0/24",
         "comment": "SSH to hello from the internal network"},
        {"type": "in", "action": "ACCEPT", "proto": "tcp", "dport": "8080", "source": "10.77.0.12",
         "comment": "hello from Traefik"}]},
}


NEW_STACK_COMPOSE = """services:
  web:
    image: phoenix-lab/guest:latest
    command: ["python3", "-m", "http.server", "8080"]
    deploy:
      placement:
        constraints:
          - node.labels.phoenix.role == worker
"""


# the guide's four labels, nothing more; the firewall rule is what section 2 of the guide adds for the port
NEW_STACK_MANIFEST = {
    "description": "The guide's example service.",
    "environments": {"production": {
        "services": {"web": {"traefik_labels": [
            "traefik.enable=true",
            "traefik.http.routers.my-app.rule=Host(`my-app.internal.thinkheads.ai`)",
            "traefik.http.routers.my-app.entrypoints=websecure",
            "traefik.http.services.my-app.loadbalancer.server.port=8080"]}},
        "firewall_rules": [{"type": "in", "action": "ACCEPT", "proto": "tcp", "dport": "8080",
                            "source": "10.77.0.0/24", "comment": "my-app from the Swarm edge"}]}},
}


def copy_lab_configs(root: Path) -> Path:
    """The lab's configs, stacks and inventory under root, the inventory pointing at the copies."""
    shutil.copytree(REPO / "lab" / "etc", root / "etc")
    shutil.copytree(REPO / "lab" / "stacks", root / "stacks")
    shutil.copytree(CACHE / "inventory", root / "inventory")
    plugin = root / "inventory" / "phoenix.yml"
    plugin.write_text(plugin.read_text().replace(str(REPO / "lab" / "etc"), str(root / "etc"))
                      .replace(str(REPO / "lab" / "stacks"), str(root / "stacks")))
    return root


def edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2) + "\n")


def playbook(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run([str(REPO / ".venv" / "bin" / "ansible-playbook"), "-i", str(root / "inventory" / "phoenix.yml"),
                           "-e", f"@{CACHE / 'extra-vars.yml'}", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=1200, check=False, env=env)


def recap_of(proc: subprocess.CompletedProcess) -> dict[str, tuple[int, int, int]]:
    return {h: (int(c), int(u), int(f)) for h, c, u, f in RECAP.findall(proc.stdout)}


def pvesim_state() -> str:
    """A digest of every file pvesim keeps its state in (guest configs, firewall, tasks, the docker backend)."""
    proc = docker("exec", "phoenix-hypervisor", "bash", "-c",
                  "cd /var/lib/pvesim && find . -type f -print0 | sort -z | xargs -0 sha256sum")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout
