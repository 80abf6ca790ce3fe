"""The lab's names, addresses, paths and options, and the small helpers every step uses (say, run, _write)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "lab"
REPO_CACHE = ROOT / ".cache"
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"


CACHE = Path(os.environ.get("PHOENIX_LAB_CACHE", ROOT / ".cache" / "lab"))
CONFIG_DIR = Path(os.environ.get("PHOENIX_LAB_CONFIG_DIR", LAB / "etc"))
STACKS_DIR = Path(os.environ.get("PHOENIX_LAB_STACKS_DIR", LAB / "stacks"))
APIDOC = ROOT.parent / "shared" / "pve" / "apidoc.json"

LABEL = "org.thinkheads.phoenix.lab"
ROLE_LABEL = "org.thinkheads.phoenix.lab.role"
SPEC_LABEL = "org.thinkheads.phoenix.spec"
VMID_LABEL = "org.thinkheads.phoenix.vmid"
NETWORK = "phoenix-vmbr0"
HYPERVISOR = "phoenix-hypervisor"
HYPERVISOR_IMAGE = "phoenix-lab/hypervisor:latest"
GUEST_PREFIX = "phoenix-"
STATE_VOLUME = "phoenix-lab-pve"     # pvesim's state dir (/etc/pve lives in it)
MNT_VOLUME = "phoenix-lab-mnt"       # the hypervisor's /mnt/pve (guest bind mounts come from it)
NODE = "pve"
# `up --nodes 2` (make lab NODES=2): a two-node cluster. pvesim on the first hypervisor serves the whole cluster
# (one process, one state: what pmxcfs keeps in /etc/pve); the second node is a hypervisor container of its own that
# mounts the same state and /mnt/pve volumes (the cluster file system, shared storage) and answers SSH, so what the
# playbooks do on the node holding a guest runs there. lab/etc is rewritten for it under .cache/lab/cluster/etc.
CLUSTER_NODES = {"pve2": {"host": "phoenix-hypervisor-pve2", "ip": "10.77.0.14"}}
CLUSTER_STORAGE = "shared"           # pvesim's shared storage of a cluster (NFS-like, seen by every node)
CLUSTER_PLACEMENT = {1002: "pve2"}   # the Swarm worker away from the manager (1001 stays on the first node)
NODE_LABEL = "org.thinkheads.phoenix.lab.node"
TOKEN_ID = "root@pam!phoenix-lab"
API_PORT = 8006
# The lab's image mirror: lab/pvesim/image_server.py on the lab network's host address, serving the cloud image the
# lab's VM template 9000 is built from (a small qcow2); pvesim downloads it through download-url and trusts its CA
# (IMAGE_CA in the TLS folder it mounts) as a real node trusts its system store.
IMAGE_CA = "image-ca.pem"
LAB_IMAGES = ("noble-server-cloudimg-amd64.img",)
TASK_SECONDS = os.environ.get("PHOENIX_LAB_TASK_SECONDS", "0.05")
RUN_OPTIONS = dict(   # systemd as PID 1 on these machines (--privileged fails here)
    cap_add=["ALL"], cap_drop=["SYS_RESOURCE"],
    security_opt=["seccomp=unconfined", "apparmor=unconfined"], cgroupns="host",
    tmpfs={"/run": "rw,nosuid,nodev,mode=755", "/run/lock": "rw,nosuid,nodev,noexec"},
)
SSH_OPTIONS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
               "-o", "BatchMode=yes", "-o", "ConnectTimeout=5"]
# feature -> (service, TCP port, TLS): probed in the health table; "not deployed" until its role runs
SERVICE_PROBES = {
    "step_ca": ("step-ca", 9000, True),
    "traefik": ("traefik", 443, True),
    "nginx": ("nginx", 443, True),
    "vllm": ("vllm", 8000, True),
}
# Guests that are GPU guests in production (etc/): the lab has no GPU, so lab/etc drops their GPU settings
# (gpu_assignment, the nvidia feature, the model volume) and the health table says so. 801 keeps its vllm feature:
# the vllm role runs with the vLLM TEST DOUBLE (lab/vllmsim) in place of vLLM.
LAB_GPU_OFF = {
    "801": "vLLM test double, no GPU (production: vLLM on GPU 0)",
}
# The vLLM TEST DOUBLE: the role installs it as <vllm_venv>/bin/vllm (vllm_executable_src, vllm_install: false)
VLLM_DOUBLE = LAB / "vllmsim" / "fake_vllm_server.py"
# What the double answers on /v1/embeddings (ibm-granite/granite-embedding-english-r2's dimension); the role's
# readiness check requires it
VLLM_DIMENSION = 768

T0 = time.monotonic()


class LabError(Exception):
    pass


def say(phase: str, message: str = "") -> None:
    print(f"[lab {time.monotonic() - T0:7.1f}s] {phase}{': ' + message if message else ''}", flush=True)


def run(cmd: list[str], phase: str, env: dict | None = None, log: Path | None = None, quiet_prefix: str = "  ") -> str:
    """Run a command, echo its output prefixed with the phase, raise LabError on failure."""
    say(phase, " ".join(str(c) for c in cmd[:3]) + (" ..." if len(cmd) > 3 else ""))
    proc = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, **(env or {})}, cwd=ROOT, bufsize=1)
    lines = []
    with open(log, "w") if log else open(os.devnull, "w") as sink:
        for line in proc.stdout:
            lines.append(line)
            sink.write(line)
            print(f"{quiet_prefix}{phase}| {line.rstrip()}", flush=True)
    if proc.wait() != 0:
        raise LabError(f"{phase}: {' '.join(str(c) for c in cmd)} failed with exit code {proc.returncode}")
    return "".join(lines)


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.read_text() == text:
        return
    with open(path, "w") as handle:  # in place: a bind-mounted file keeps its inode
        handle.write(text)
    path.chmod(mode)
