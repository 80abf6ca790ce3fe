#!/usr/bin/env python
"""Proxmox API calls and wall time: thinkheads.phoenix versus community.proxmox, against pvesim.

(a) Provision the guests of the project's etc/ (LXCs 900, 103, 102, 101, 901, 801 and VMs 9000, 1001, 1002)
through real ``ansible-playbook`` runs on a fresh pvesim: once with ``thinkheads.phoenix.proxmox_guest`` (one task
per guest) and once with ``community.proxmox.proxmox`` / ``proxmox_kvm`` (the same guests as plain create / clone
tasks with equivalent settings, plus the update and template tasks those modules need to get there).
(b) Run exactly the same playbook again, with nothing left to change.
(c) Time ``ansible-inventory --list`` for 100 guests: ``thinkheads.phoenix.phoenix`` (reads the JSON configs,
no API calls) and ``community.proxmox.proxmox`` (reads 100 LXCs from pvesim's API).

API calls are taken from pvesim's request log. Standard library plus the project's virtualenv (ansible-core,
the ``ansible`` package with community.proxmox and ansible.posix, proxmoxer). Run from anywhere:
``.venv/bin/python benchmarks/api_calls.py``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO / "lab" / "pvesim"))
sys.path.insert(0, str(REPO / "collections"))

USER = "root@pam"
TOKEN = "bench"
SECRET = "5e0c6d1a-api-calls-benchmark"
# Both tools log in as root@pam itself: Proxmox refuses bind mounts, dev[n] and features beyond nesting to API
# tokens (pve-container check_ct_modify_config_perm), and the project's guests have them. The token stays for reads.
PASSWORD = "api-calls-benchmark-root"
NODE = "pve"
STORAGE = "local-lvm"
LXC_TEMPLATE = "local:vztmpl/ubuntu-24.04-standard_24.04-2_amd64.tar.zst"
INVENTORY_TEMPLATE = "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst"
EXPECTED_GUESTS = (900, 103, 102, 101, 901, 801, 9000, 1001, 1002)
TARGET_UNCHANGED_PER_GUEST = 2.0
TOOLS = ("ours", "community")
RUNS = ("create", "unchanged")


# --------------------------------------------------------------------------------------------------------------
# pvesim
# --------------------------------------------------------------------------------------------------------------


class Sim:
    """A fresh pvesim with its control interface; stop() when done."""

    def __init__(self, root: Path, task_seconds: float) -> None:
        from pvesim.control import Control
        from pvesim.server import start_server

        root.mkdir(parents=True)
        self.root = root
        self.server = start_server(root, tokens=[f"{USER}!{TOKEN}={SECRET}"], passwords=[f"{USER}:{PASSWORD}"],
                                   control=True, task_seconds=task_seconds, strict=True)
        self.url = self.server.url
        self.port = self.server.port
        self.ca_file = str(self.server.ca_file)
        self.control = Control(self.url, ca_file=self.ca_file)

    def log(self) -> list[dict]:
        return self.control.requests()

    def clear(self) -> None:
        self.control.clear_requests()

    def client(self):
        from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox import PveClient

        return PveClient(self.url, api_user=USER, api_password=PASSWORD, ca_file=self.ca_file, node=NODE)

    def stop(self) -> None:
        self.server.stop()


# --------------------------------------------------------------------------------------------------------------
# Playbooks
# --------------------------------------------------------------------------------------------------------------


def load_guests() -> dict:
    from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.model import load_config

    return load_config(str(REPO / "etc"), str(REPO / "stacks")).guests


def our_tasks(guests: dict) -> list[tuple[int, str, str, dict]]:
    """(guest id, step, module, arguments): one proxmox_guest task per guest, as playbooks/create.yml runs it."""
    tasks = []
    for gid, guest in guests.items():
        args = {"guest": guest, "state": "present", "storage": STORAGE}
        if guest["type"] == "lxc" and not guest.get("clone_from"):
            args["ostemplate"] = LXC_TEMPLATE
        tasks.append((gid, "provision", "thinkheads.phoenix.proxmox_guest", args))
    return tasks


def _lxc_settings(desired: dict) -> dict:
    """community.proxmox.proxmox options for the keys desired_lxc() manages (GPU dev[n] has no option there)."""
    settings = {
        "hostname": desired["hostname"],
        "cores": desired["cores"],
        "memory": desired["memory"],
        "netif": {"net0": desired["net0"]},
        "onboot": bool(desired["onboot"]),
        "tags": desired["tags"].split(";"),
        "description": desired["description"],
        # Workaround: left at its default, cmode is sent as 'default' by every update (PUT config), which PVE's
        # schema rejects (enum shell, console, tty). tty is PVE's own default. probe_default_cmode() records it.
        "cmode": "tty",
    }
    if "swap" in desired:
        settings["swap"] = desired["swap"]
    if "nameserver" in desired:
        settings["nameserver"] = desired["nameserver"]
    if "startup" in desired:
        settings["startup"] = desired["startup"].split(",")
    if "features" in desired:
        settings["features"] = desired["features"].split(",")
    mounts = {k: v for k, v in desired.items() if k.startswith("mp") and k[2:].isdigit()}
    if mounts:
        settings["mounts"] = mounts
    return settings


def _qemu_settings(desired: dict) -> dict:
    """community.proxmox.proxmox_kvm options for the keys desired_qemu() manages."""
    settings = {
        "name": desired["name"],
        "cores": desired["cores"],
        "memory": desired["memory"],
        "net": {"net0": desired["net0"]},
        "onboot": bool(desired["onboot"]),
        "tags": desired["tags"].split(";"),
        "description": desired["description"],
        "agent": desired["agent"],
    }
    if "ipconfig0" in desired:
        settings["ipconfig"] = {"ipconfig0": desired["ipconfig0"]}
    if "nameserver" in desired:
        settings["nameservers"] = desired["nameserver"].split()
    if "startup" in desired:
        settings["startup"] = desired["startup"]
    if "ciuser" in desired:
        settings["ciuser"] = desired["ciuser"]
    if "sshkeys" in desired:
        settings["sshkeys"] = desired["sshkeys"]
    return settings


def community_tasks(guests: dict) -> tuple[list[tuple[int, str, str, dict]], list[str]]:
    """The same guests with community.proxmox: create or clone, settings (clones), template (templates).

    Returns the tasks and what they leave out compared with proxmox_guest.
    """
    from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox_guest import (
        desired_lxc,
        desired_qemu,
    )

    tasks: list[tuple[int, str, str, dict]] = []
    skipped: list[str] = []
    for gid, guest in guests.items():
        src = guest.get("clone_from")
        disk_gb = int(guest.get("disk_gb") or 8)
        if guest["type"] == "lxc":
            module = "community.proxmox.proxmox"
            desired = desired_lxc(guest)
            settings = _lxc_settings(desired)
            devs = sorted(k for k in desired if k.startswith("dev") and k[3:].isdigit())
            if devs:
                skipped.append(f"{gid}: GPU passthrough {', '.join(devs)} (the proxmox module has no dev[n] option)")
            if src:
                tasks.append((gid, "clone", module, {
                    "vmid": gid, "node": NODE, "hostname": desired["hostname"], "clone": int(src),
                    "clone_type": "full", "storage": STORAGE, "description": desired["description"]}))
                tasks.append((gid, "settings", module, dict(settings, vmid=gid, node=NODE, update=True)))
                src_disk = int(guests.get(int(src), {}).get("disk_gb") or 8)
                if disk_gb > src_disk:
                    skipped.append(f"{gid}: growing the root disk {src_disk}G -> {disk_gb}G after the clone "
                                   "(no LXC resize in community.proxmox)")
            else:
                tasks.append((gid, "create", module, dict(
                    settings, vmid=gid, node=NODE, ostemplate=LXC_TEMPLATE, update=True, unprivileged=True,
                    disk_volume={"storage": STORAGE, "size": disk_gb})))
        else:
            module = "community.proxmox.proxmox_kvm"
            desired = desired_qemu(guest)
            settings = _qemu_settings(desired)
            if src:
                source = guests.get(int(src), {})
                tasks.append((gid, "clone", module, {
                    "vmid": int(src), "clone": source.get("hostname") or str(src), "newid": gid,
                    "name": desired["name"], "node": NODE, "full": True, "storage": STORAGE, "state": "present"}))
                tasks.append((gid, "settings", module, dict(settings, vmid=gid, node=NODE, update=True,
                                                            update_unsafe=True)))
                src_disk = int(source.get("disk_gb") or 8)
                if disk_gb > src_disk:
                    skipped.append(f"{gid}: growing scsi0 {src_disk}G -> {disk_gb}G after the clone "
                                   "(would be one more community.proxmox.proxmox_disk task)")
            else:
                tasks.append((gid, "create", module, dict(
                    settings, vmid=gid, node=NODE, state="present", scsihw="virtio-scsi-pci",
                    scsi={"scsi0": f"{STORAGE}:{disk_gb}"}, ide={"ide2": f"{STORAGE}:cloudinit"},
                    boot="order=scsi0", serial={"serial0": "socket"})))
        if guest.get("is_template"):
            tasks.append((gid, "template", module, {"vmid": gid, "node": NODE, "state": "template"}))
    return tasks, [f"left out {item}" for item in skipped]


def write_playbook(path: Path, tasks: list[tuple[int, str, str, dict]], sim: Sim) -> None:
    """A localhost play, one task per (guest, step); failures are recorded, the play goes on."""
    defaults = {
        "thinkheads.phoenix.proxmox_guest": {
            "api_url": sim.url, "api_user": USER, "api_password": PASSWORD, "ca_file": sim.ca_file, "node": NODE},
    }
    community = {"api_host": "127.0.0.1", "api_port": sim.port, "api_user": USER, "api_password": PASSWORD,
                 "ca_path": sim.ca_file, "validate_certs": True}
    defaults["community.proxmox.proxmox"] = community
    defaults["community.proxmox.proxmox_kvm"] = community
    play = {
        "name": "api_calls benchmark",
        "hosts": "localhost",
        "connection": "local",
        "gather_facts": False,
        "vars": {"ansible_python_interpreter": sys.executable},
        "module_defaults": defaults,
        "tasks": [{"name": f"{gid} {step}", module: args, "ignore_errors": True}
                  for gid, step, module, args in tasks],
    }
    text = json.dumps([play], indent=1, default=str)
    # JSON is YAML. Ansible templates task arguments, so a guest value with a Jinja2 delimiter would change.
    if "{{" in text or "{%" in text:
        raise SystemExit(f"{path.name}: a task argument contains a Jinja2 delimiter; the benchmark cannot pass it")
    path.write_text(text + "\n")


def _epoch(stamp: str) -> float:
    value = datetime.datetime.fromisoformat(stamp.rstrip("Z"))
    return value.replace(tzinfo=datetime.timezone.utc).timestamp()


def run_playbook(path: Path, env: dict, timeout: float) -> tuple[float, list[dict], str]:
    """(wall seconds, task records, error text) of one ansible-playbook run with the ansible.posix.json callback."""
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", str(path)]
    env = dict(env, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_CALLBACK_RESULT_FORMAT="json")
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False)
    wall = time.perf_counter() - start
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        return wall, [], f"ansible-playbook exited {proc.returncode}: {proc.stderr[-2000:] or proc.stdout[-2000:]}"
    records = []
    for play in data.get("plays", []):
        for task in play.get("tasks", []):
            result = task.get("hosts", {}).get("localhost", {})
            gid, step = task["task"]["name"].split(" ", 1)
            duration = task["task"]["duration"]
            records.append({
                "guest": int(gid), "step": step,
                "start": _epoch(duration["start"]), "end": _epoch(duration.get("end") or duration["start"]),
                "changed": bool(result.get("changed")), "failed": bool(result.get("failed")),
                "msg": str(result.get("msg") or ""), "api_calls": result.get("api_calls"),
            })
    error = "" if proc.returncode == 0 else f"ansible-playbook exited {proc.returncode}: {proc.stderr[-1000:]}"
    return wall, records, error


def attribute(records: list[dict], log: list[dict]) -> dict:
    """Requests per task record index (by time window); -1 for requests outside every task."""
    calls: dict[int, list[dict]] = defaultdict(list)
    for entry in log:
        owner = -1
        for index, rec in enumerate(records):
            if rec["start"] - 0.05 <= entry["time"] <= rec["end"] + 0.05:
                owner = index
                break
        calls[owner].append(entry)
    return calls


def category(entry: dict) -> str:
    """A short name for the kind of request."""
    method, path = entry["method"], entry["path"].strip("/")
    if path.startswith("api2/json/"):
        path = path[len("api2/json/"):]
    parts = path.split("/")
    if method != "GET":
        if "tasks" not in parts and len(parts) >= 4 and parts[0] == "nodes":
            return f"{method} {'/'.join(parts[4:]) or parts[2]}"
        return f"{method} {path}"
    if path == "version":
        return "GET version"
    if path.startswith("cluster/resources"):
        return "GET cluster/resources"
    if path == "nodes":
        return "GET nodes"
    if "tasks" in parts:
        return "GET task " + parts[-1]
    if "storage" in parts:
        return "GET storage content"
    if len(parts) >= 5 and parts[0] == "nodes":
        return "GET " + "/".join(parts[4:])
    return "GET " + path


def repeated_reads(entries: list[dict]) -> list[dict]:
    """GETs that repeat an earlier successful GET of the same path with no write in between."""
    seen: set[str] = set()
    out = []
    for entry in entries:
        if entry["method"] != "GET":
            seen.clear()
            continue
        ok = (entry.get("status") or 200) < 400
        if ok and entry["path"] in seen and "/tasks/" not in entry["path"]:
            out.append(entry)
        if ok:
            seen.add(entry["path"])
    return out


def is_write(entry: dict) -> bool:
    """A request that changes Proxmox state (the password login's POST /access/ticket changes none)."""
    return entry["method"] != "GET" and not entry["path"].rstrip("/").endswith("/access/ticket")


def summarize_run(tool: str, run: str, wall: float, records: list[dict], log: list[dict], guests: int,
                  error: str) -> dict:
    writes = [e for e in log if is_write(e)]
    calls = attribute(records, log)
    per_guest: dict[int, int] = Counter()
    per_task = []
    for index, rec in enumerate(records):
        per_guest[rec["guest"]] += len(calls.get(index, []))
        per_task.append(dict(rec, calls=len(calls.get(index, [])),
                             writes=sum(1 for e in calls.get(index, []) if is_write(e))))
    probes = [e for e in log if e["method"] == "GET" and e.get("status") == 500
              and e["path"].endswith(("/config", "/pending"))]
    rejected = [e for e in log if (e.get("status") or 200) >= 400 and e not in probes]
    repeated = [e for index in range(len(records)) for e in repeated_reads(calls.get(index, []))]
    return {
        "tool": tool, "run": run, "wall_s": wall, "error": error,
        "tasks": len(records), "failed": sum(1 for r in records if r["failed"]),
        "changed": sum(1 for r in records if r["changed"]), "calls": len(log),
        "gets": len(log) - len(writes), "writes": len(writes), "guests": guests,
        "per_guest_calls": len(log) / guests, "task_s": sum(r["end"] - r["start"] for r in records),
        "unattributed": len(calls.get(-1, [])), "by_guest": dict(per_guest), "per_task": per_task,
        "categories": dict(Counter(category(e) for e in log).most_common()),
        "write_list": [f"{e['method']} {e['path']} {sorted(e.get('params') or {})}" for e in writes],
        "rejected": [f"{e['method']} {e['path']} -> {e.get('status')}" for e in rejected],
        "missing_probes": len(probes), "missing_probe_paths": len({e["path"] for e in probes}),
        "repeated_reads": dict(Counter(category(e) for e in repeated).most_common()),
    }


def end_state(sim: Sim, guests: dict) -> dict:
    """Per guest, what still differs from proxmox_guest's desired config after both runs (empty: equivalent)."""
    from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox import PveError
    from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox_guest import (
        desired_lxc,
        desired_qemu,
        disk_size_gb,
        plan_config,
    )

    client = sim.client()
    out = {}
    for gid, guest in guests.items():
        kind = "lxc" if guest["type"] == "lxc" else "qemu"
        try:
            current = client.get(f"nodes/{NODE}/{kind}/{gid}/config")
        except PveError as exc:
            out[gid] = [f"missing ({exc.message.strip()[:80]})"]
            continue
        desired = desired_lxc(guest) if kind == "lxc" else desired_qemu(guest)
        changes, deletes = plan_config(kind, desired, current)
        diffs = sorted(changes) + [f"-{key}" for key in deletes]
        key, size = disk_size_gb(kind, current)
        if size is not None and guest.get("disk_gb") and abs(size - float(guest["disk_gb"])) > 0.001:
            diffs.append(f"{key} {size:g}G (want {guest['disk_gb']}G)")
        if bool(guest.get("is_template")) != (str(current.get("template", 0)) == "1"):
            diffs.append("template")
        out[gid] = diffs
    return out


def probe_default_cmode(sim: Sim, tasks: list, workdir: Path, env: dict, timeout: float) -> str:
    """Re-run the first LXC update task with cmode left at the module default; the error text, if any."""
    probe = [(gid, "probe", module, {k: v for k, v in task_args.items() if k != "cmode"})
             for gid, step, module, task_args in tasks
             if module == "community.proxmox.proxmox" and task_args.get("update")][:1]
    if not probe:
        return ""
    book = workdir / "community-probe.yml"
    write_playbook(book, probe, sim)
    sim.clear()
    wall, records, error = run_playbook(book, env, timeout)
    rejected = [f"{e['method']} {e['path']} -> {e.get('status')}" for e in sim.log() if (e.get("status") or 0) >= 400]
    failed = [r["msg"] for r in records if r["failed"]]
    if not failed and not error:
        return ""
    return (f"task '{probe[0][0]} {probe[0][1]}' with cmode left at its default: {(failed or [error])[0][:400]}"
            f" ({', '.join(rejected) or 'no request rejected'}; {wall:.1f}s)")


def provision(tool: str, guests: dict, workdir: Path, args) -> tuple[list[dict], list[str]]:
    """Both runs of one tool on a fresh pvesim."""
    sim = Sim(workdir / f"pvesim-{tool}", args.task_seconds)
    try:
        if tool == "ours":
            tasks, skipped = our_tasks(guests), []
        else:
            tasks, skipped = community_tasks(guests)
        book = workdir / f"{tool}.yml"
        write_playbook(book, tasks, sim)
        env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                   ANSIBLE_DEPRECATION_WARNINGS="0", ANSIBLE_HOST_KEY_CHECKING="0")
        results = []
        for run in RUNS:
            sim.clear()
            wall, records, error = run_playbook(book, env, args.timeout)
            log = sim.log()
            results.append(summarize_run(tool, run, wall, records, log, len(guests), error))
            print(f"{tool} {run}: {len(log)} API calls, {wall:.1f}s", file=sys.stderr, flush=True)
        results[-1]["end_state"] = end_state(sim, guests)
        if tool == "community":
            finding = probe_default_cmode(sim, tasks, workdir, env, args.timeout)
            if finding:
                skipped.append(f"proxmox updates are rejected by the API schema unless cmode is set: {finding}")
        return results, skipped
    finally:
        sim.stop()


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
    from inventory_scale import generate

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


# --------------------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------------------


def print_report(results: list[dict], skipped: list[str], inventory_rows: list[dict]) -> None:
    print(f"{'tool':<10} | {'run':<9} | {'tasks':>5} | {'failed':>6} | {'changed':>7} | {'API calls':>9} | "
          f"{'GET':>5} | {'writes':>6} | {'calls/guest':>11} | {'wall s':>7} | {'in tasks s':>10}")
    print("-" * 107)
    for r in results:
        print(f"{r['tool']:<10} | {r['run']:<9} | {r['tasks']:>5} | {r['failed']:>6} | {r['changed']:>7} | "
              f"{r['calls']:>9} | {r['gets']:>5} | {r['writes']:>6} | {r['per_guest_calls']:>11.2f} | "
              f"{r['wall_s']:>7.1f} | {r['task_s']:>10.1f}")
    print()
    print("API calls per guest (attributed to tasks by time):")
    ids = list(results[0]["by_guest"]) if results else []
    print(f"{'tool':<10} | {'run':<9} | " + " | ".join(f"{gid:>5}" for gid in ids))
    for r in results:
        print(f"{r['tool']:<10} | {r['run']:<9} | " + " | ".join(f"{r['by_guest'].get(gid, 0):>5}" for gid in ids))
    print()
    for r in results:
        cats = ", ".join(f"{name} {count}" for name, count in r["categories"].items())
        print(f"{r['tool']} {r['run']} by request: {cats}")
    print()
    if inventory_rows:
        print(f"{'inventory plugin':<28} | {'variant':<16} | {'guests':>6} | {'hosts':>5} | {'API calls':>9} | "
              f"{'best s':>6} | {'median s':>8}")
        print("-" * 96)
        for row in inventory_rows:
            print(f"{row['plugin']:<28} | {row['variant'] or '-':<16} | {row['guests']:>6} | {row['hosts']:>5} | "
                  f"{row['calls']:>9} | {row['best_s']:>6.2f} | {row['median_s']:>8.2f}")
        print()
    for r in results:
        if "end_state" in r:
            diffs = {gid: d for gid, d in r["end_state"].items() if d}
            text = "; ".join(f"{gid}: {', '.join(d)}" for gid, d in diffs.items()) or "none"
            print(f"{r['tool']} end state, differences from proxmox_guest's desired config: {text}")
    print()
    print("Findings:")
    for line in findings(results, skipped, inventory_rows):
        print(f"- {line}")
    print()


def findings(results: list[dict], skipped: list[str], inventory_rows: list[dict]) -> list[str]:
    out = [f"community.proxmox {item}" for item in skipped]
    for r in results:
        if r["error"]:
            out.append(f"{r['tool']} {r['run']}: {r['error']}")
        for task in r["per_task"]:
            if task["failed"]:
                out.append(f"{r['tool']} {r['run']} task '{task['guest']} {task['step']}' failed: {task['msg'][:400]}")
        if r["rejected"]:
            out.append(f"{r['tool']} {r['run']}: requests answered with an error: "
                       f"{'; '.join(sorted(set(r['rejected'])))}")
        if r["missing_probes"] > r["missing_probe_paths"]:
            out.append(f"{r['tool']} {r['run']}: {r['missing_probes']} GET config answered 500 (guest does not exist "
                       f"yet) for {r['missing_probe_paths']} guests: "
                       f"{r['missing_probes'] - r['missing_probe_paths']} are retries of that same request")
        if r["repeated_reads"]:
            text = ", ".join(f"{name} {count}" for name, count in r["repeated_reads"].items())
            out.append(f"{r['tool']} {r['run']}: {sum(r['repeated_reads'].values())} repeated reads (the same GET "
                       f"again within one task, no write in between): {text}")
        if r["run"] == "unchanged":
            changed = [f"{t['guest']} {t['step']}" for t in r["per_task"] if t["changed"]]
            if changed:
                out.append(f"{r['tool']} unchanged run reports changed for: {', '.join(changed)}")
            if r["writes"]:
                out.append(f"{r['tool']} unchanged run writes: {'; '.join(r['write_list'][:12])}"
                           + (" ..." if len(r["write_list"]) > 12 else ""))
        if r["tool"] == "ours":
            counted = sum(t["api_calls"] or 0 for t in r["per_task"])
            if counted != r["calls"]:
                out.append(f"ours {r['run']}: modules counted {counted} API calls, pvesim logged {r['calls']}")
        if r["unattributed"]:
            out.append(f"{r['tool']} {r['run']}: {r['unattributed']} requests outside every task's time window")
    for row in inventory_rows:
        if row["error"]:
            out.append(f"inventory {row['plugin']} {row['variant']} failed: {row['error']}")
        elif row["hosts"] < row["guests"]:
            out.append(f"inventory {row['plugin']} {row['variant']} listed {row['hosts']} of {row['guests']} guests")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enforce", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the results to this JSON file")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (playbooks, pvesim state)")
    parser.add_argument("--task-seconds", type=float, default=0.02, help="pvesim task duration")
    parser.add_argument("--inventory-guests", type=int, default=100, help="guests for the inventory comparison")
    parser.add_argument("--repeat", type=int, default=3, help="timed ansible-inventory runs per plugin")
    parser.add_argument("--seed", type=int, default=20240601, help="seed of the generated inventory configs")
    parser.add_argument("--timeout", type=float, default=300, help="seconds allowed per ansible run")
    parser.add_argument("--tools", type=lambda text: [t for t in text.split(",") if t], default=list(TOOLS),
                        help="comma-separated: ours,community (default both; the summary needs both)")
    parser.add_argument("--skip-inventory", action="store_true", help="leave out the inventory comparison")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    guests = load_guests()
    missing = [gid for gid in EXPECTED_GUESTS if gid not in guests]
    if missing:
        print(f"note: etc/ lacks guests {missing}; benchmarking the {len(guests)} it has", file=sys.stderr)
    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="phoenix-api-calls-"))
    results: list[dict] = []
    skipped: list[str] = []
    inventory_rows: list[dict] = []
    try:
        for tool in args.tools:
            tool_results, tool_skipped = provision(tool, guests, workdir, args)
            results += tool_results
            skipped += tool_skipped
        if not args.skip_inventory:
            inventory_rows = inventories(workdir, args, skipped)
    finally:
        if args.keep:
            print(f"work directory kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    print_report(results, skipped, inventory_rows)
    by = {(r["tool"], r["run"]): r for r in results}
    if any((tool, run) not in by for tool in TOOLS for run in RUNS):
        print(f"elapsed {time.perf_counter() - started:.1f}s (no summary: it needs both tools)")
        return 0
    ours_c, ours_u = by["ours", "create"], by["ours", "unchanged"]
    cpx_c, cpx_u = by["community", "create"], by["community", "unchanged"]
    targets = {
        f"ours unchanged calls per guest <= {TARGET_UNCHANGED_PER_GUEST:g}":
            ours_u["per_guest_calls"] <= TARGET_UNCHANGED_PER_GUEST and not ours_u["failed"],
        "ours create calls < community create calls": ours_c["calls"] < cpx_c["calls"] and not ours_c["failed"],
        "ours unchanged calls < community unchanged calls": ours_u["calls"] < cpx_u["calls"],
    }
    for name, ok in targets.items():
        print(f"target {name}: {'PASS' if ok else 'FAIL'}")
    print(f"elapsed {time.perf_counter() - started:.1f}s")
    line = (f"ours_unchanged_calls_per_guest={ours_u['per_guest_calls']:.2f} "
            f"cpx_unchanged_calls_per_guest={cpx_u['per_guest_calls']:.2f} "
            f"ours_create_calls={ours_c['calls']} cpx_create_calls={cpx_c['calls']}")
    if args.json:
        payload = {"results": results, "community_left_out": skipped, "inventory": inventory_rows,
                   "targets": targets, "summary": line, "task_seconds": args.task_seconds}
        args.json.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    print(line)
    return 1 if args.enforce and not all(targets.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
