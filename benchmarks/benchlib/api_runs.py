"""api_calls' playbook runs: timed ansible-playbook, API calls attributed to tasks, categories, end state."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

from .api_setup import NODE, REPO, RUNS, Sim, community_tasks, our_tasks, write_playbook


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
