"""The lab.py commands: up, down, health, status."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import docker
import docker.errors
import docker.types

from . import settings
from .files import Paths, engine, ensure_secrets, write_inventory
from .health import health, read_secrets
from .hosts import Api, ensure_hypervisor, ensure_network, ensure_node_hosts, restart_guests, run_playbook, wait_for_api
from .settings import API_PORT, IMAGE_CA, LAB, LAB_IMAGES, LABEL, T0, LabError, _write, run, say
from .topology import cluster_config_dir, load_topology, running_nodes, use_config_dir

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
        say("cluster", f"{nodes} nodes ({', '.join(topo['nodes'])}), configs {settings.CONFIG_DIR}")
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
