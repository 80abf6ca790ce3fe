"""api_calls' inventory part: ansible-inventory --list timed for both inventory plugins on 100 guests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from .api_setup import INVENTORY_TEMPLATE, NODE, REPO, SECRET, STORAGE, TOKEN, USER, Sim

# --------------------------------------------------------------------------------------------------------------
# Inventory plugins
# --------------------------------------------------------------------------------------------------------------


def _no_pools(sim, req) -> list:
    return []


def pools_stand_in() -> bool:
    """Register GET /pools in this process's pvesim when it lacks the route; True when registered.

    The community inventory plugin always reads /pools last (for pool groups) and fails on pvesim's 501. The
    stand-in answers what PVE answers on a node without resource pools (an empty list); the request is still
    validated against the API schema and logged like any other.
    """
    from pvesim.routes import ROUTES

    if ("GET", "/pools") in ROUTES:
        return False
    ROUTES[("GET", "/pools")] = _no_pools
    return True


def create_lxcs(sim: Sim, guests: dict) -> None:
    """One LXC per generated guest (VMs included, as LXCs with the same ID and hostname), through the API."""
    from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox_guest import desired_lxc

    client = sim.client()
    upids = []
    for gid, guest in guests.items():
        params = {k: v for k, v in desired_lxc(guest, gpu_passthrough=False).items()
                  if not (k.startswith("mp") and k[2:].isdigit())}
        params.update(vmid=int(gid), ostemplate=INVENTORY_TEMPLATE, rootfs=f"{STORAGE}:8", unprivileged=1)
        upids.append(client.post(f"nodes/{NODE}/lxc", **params))
    for upid in upids:
        client.wait_task(upid, poll=0.01)


def run_inventory(cmd: list[str], env: dict, timeout: float) -> tuple[float, int, str]:
    """(wall seconds, hosts listed, error text)."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        return wall, 0, proc.stderr[-1500:]
    data = json.loads(proc.stdout)
    hosts = set(data.get("_meta", {}).get("hostvars", {}))
    for name, group in data.items():
        if name != "_meta" and isinstance(group, dict):
            hosts.update(group.get("hosts", []))
    return wall, len(hosts), ""


def inventories(workdir: Path, args, notes: list[str]) -> list[dict]:
    from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.model import load_config

    from .scale_configs import generate

    gen = generate(workdir / "inventory", args.inventory_guests, args.seed)
    guests = load_config(str(workdir / "inventory" / "etc"), str(workdir / "inventory" / "stacks")).guests
    binary = str(Path(sys.executable).parent / "ansible-inventory")
    base = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                ANSIBLE_DEPRECATION_WARNINGS="0")
    sim = Sim(workdir / "pvesim-inventory", args.task_seconds)
    rows = []
    if pools_stand_in():
        notes.append("inventory plugin: pvesim has no GET /pools, which community.proxmox's inventory plugin always "
                     "reads (its 501 fails the whole source); this run answers it with an empty list, as PVE does "
                     "without pools")
    try:
        started = time.perf_counter()
        create_lxcs(sim, guests)
        print(f"created {len(guests)} LXCs in pvesim in {time.perf_counter() - started:.1f}s", file=sys.stderr,
              flush=True)
        variants = [("thinkheads.phoenix.phoenix", "", [binary, "-i", str(gen["inventory"]), "--list"], base)]
        for facts in (False, True):
            source = workdir / f"facts-{str(facts).lower()}.proxmox.yml"
            source.write_text(json.dumps({
                "plugin": "community.proxmox.proxmox", "url": sim.url, "user": USER, "token_id": TOKEN,
                "token_secret": SECRET, "validate_certs": True, "want_facts": facts}) + "\n")
            # The plugin has no CA option; requests takes the CA from REQUESTS_CA_BUNDLE (verification stays on).
            env = dict(base, REQUESTS_CA_BUNDLE=sim.ca_file, ANSIBLE_INVENTORY_ENABLED="community.proxmox.proxmox")
            variants.append(("community.proxmox.proxmox", f"want_facts={str(facts).lower()}",
                             [binary, "-i", str(source), "--list"], env))
        for name, variant, cmd, env in variants:
            times, calls, hosts, error = [], [], 0, ""
            while len(times) < args.repeat:
                sim.clear()
                wall, hosts, error = run_inventory(cmd, env, args.timeout)
                calls.append(len(sim.log()))
                times.append(wall)
                if error:
                    break
            rows.append({"plugin": name, "variant": variant, "best_s": min(times),
                         "median_s": sorted(times)[len(times) // 2], "calls": max(calls), "hosts": hosts,
                         "guests": len(guests), "error": error, "runs": len(times)})
            print(f"inventory {name} {variant}: {min(times):.2f}s, {max(calls)} API calls", file=sys.stderr,
                  flush=True)
    finally:
        sim.stop()
    return rows
