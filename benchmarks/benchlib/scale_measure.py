"""inventory_scale's measurements: timed inventory and play runs, the floor, profiles, the summary."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from .scale_guests import REPO, TARGET_OVER_FLOOR

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
