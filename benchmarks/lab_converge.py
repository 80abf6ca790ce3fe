#!/usr/bin/env python
"""The lab's converge times: cold start, first site.yml, no-op site.yml, and `ansible -m ping` on the same hosts.

    .venv/bin/python benchmarks/lab_converge.py [--keep] [--json FILE]
    .venv/bin/python benchmarks/lab_converge.py --reuse    # only steps 3 and 4, on the lab that runs (make lab)

1. ``lab/lab.py down`` (no lab left), then a cold start: engine check, image check (``build.sh``: built images
   are reused), secrets, inventory, the internal network, the hypervisor container, until the Proxmox API
   answers (``cold_start_s``).
2. ``playbooks/site.yml`` on the empty lab: every guest created, started and reachable (``first_site_s``).
3. ``playbooks/site.yml`` again with nothing to change (``noop_site_s``; its total ``changed`` is printed).
4. ``ansible 'all:!templates' -m ansible.builtin.ping``: every host site.yml reaches over SSH (the guests that
   run, and the hypervisor), with the same inventory, forks and SSH settings (``ping_s``).

Each playbook/ping is one whole process (start-up included), as ``lab/lab.py up`` runs it. The lab is removed
at the end unless ``--keep``. The last line is
``cold_start_s=<a> first_site_s=<b> noop_site_s=<c> ping_s=<d> noop_over_ping=<e>`` (target: noop_over_ping <= 12).

Where the no-op's time goes: the no-op run has ansible.posix's ``profile_tasks`` and ``profile_roles`` callbacks
enabled beside the collection's own; the benchmark prints their summaries (the 15 slowest tasks, every role's total)
and the number of task results per host, read from the run's log.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "lab"))

import lab  # noqa: E402 - lab/lab.py


def quiet(func, *args, **kwargs):
    """Run a lab.py step, keeping its progress output for a failure report."""
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            return func(*args, **kwargs)
    except Exception:
        sys.stdout.write(buf.getvalue()[-4000:])
        raise


def cold_start(paths, topo):
    started = time.monotonic()
    subprocess.run([str(lab.LAB / "engine" / "ensure-engine.sh")], check=True, capture_output=True)
    client = lab.engine()
    subprocess.run([str(lab.LAB / "images" / "build.sh")], check=True, capture_output=True,
                   env={**os.environ, "PHOENIX_LAB_SKIP_ENGINE": "1"})
    secrets = lab.ensure_secrets(paths, topo)
    lab.write_inventory(paths, topo, secrets)
    quiet(lab.ensure_network, client, topo)
    container = quiet(lab.ensure_hypervisor, client, paths, topo, secrets)
    lab.wait_for_api(lab.Api(paths, topo, secrets), container)
    quiet(lab.ensure_node_hosts, client, paths, topo, secrets)
    return time.monotonic() - started, client, secrets


def ping(paths, topo, secrets):
    ansible = REPO / ".venv" / "bin" / "ansible"
    env = {"ANSIBLE_FORKS": str(len(topo["guests"]) + 1), **os.environ, **lab.pve_env(paths, topo, secrets),
           "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")}
    started = time.monotonic()
    proc = subprocess.run([str(ansible if ansible.exists() else "ansible"), "-i", str(paths.inventory),
                           "all:!templates", "-m", "ansible.builtin.ping"], capture_output=True, text=True,
                          env=env, cwd=REPO, check=False)
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"ansible ping failed:\n{proc.stdout[-3000:]}{proc.stderr[-2000:]}")
    hosts = sum(1 for line in proc.stdout.splitlines() if "| SUCCESS" in line)
    return elapsed, hosts


PROFILE_ENV = {"ANSIBLE_CALLBACKS_ENABLED": "thinkheads.phoenix.plan,ansible.posix.profile_tasks,ansible.posix.profile_roles",
               "PROFILE_TASKS_TASK_OUTPUT_LIMIT": "15"}
RESULT = re.compile(r"^(ok|changed|skipping|failed|fatal): \[([^\]]+?)(?: -> [^\]]+)?\]", re.M)


@contextlib.contextmanager
def environment(values: dict[str, str]):
    """os.environ with values set (lab.run_playbook passes os.environ on), restored afterwards."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def profile(log: str) -> str:
    """The profile callbacks' summaries and the task results per host, from a run's log."""
    text = Path(log).read_text()
    recap = text.rfind("PLAY RECAP")
    # both summaries follow the recap, each under a line of '=' characters
    summaries = [line for line in text[recap:].splitlines()[1:] if line.strip() and " : ok=" not in line]
    results: dict[str, int] = {}
    for _status, host in RESULT.findall(text):
        results[host] = results.get(host, 0) + 1
    per_host = ", ".join(f"{host}={count}" for host, count in sorted(results.items(), key=lambda item: -item[1]))
    return "\n".join(summaries + [f"task results per host ({sum(results.values())} in all): {per_host}"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--keep", action="store_true", help="leave the lab running at the end")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--reuse", action="store_true",
                        help="measure only the no-op and the ping, on the converged lab that runs (kept running)")
    args = parser.parse_args(argv)

    paths, topo = lab.Paths(), lab.load_topology()
    print(f"machine: {platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}", flush=True)
    if not args.reuse:
        quiet(lab.cmd_down, None)
    mirror = None
    cold = first_s = None
    try:
        if args.reuse:
            secrets = lab.ensure_secrets(paths, topo)
        else:
            cold, _client, secrets = cold_start(paths, topo)
        # the guests' images, served to pvesim as `lab.py up` does (phoenix_images in the extra vars)
        mirror = quiet(lab.start_image_mirror, paths, topo)
        if not args.reuse:
            print(f"cold start (no lab -> Proxmox API answering): {cold:.1f}s", flush=True)
            first = quiet(lab.run_playbook, paths, topo, secrets)
            first_s = first["seconds"]
            print(f"first site.yml: {first_s:.1f}s, changed={first['changed']}", flush=True)
        with environment(PROFILE_ENV):
            noop = quiet(lab.run_playbook, paths, topo, secrets)
        drift = ", ".join("%s=%d" % (h, c["changed"]) for h, c in noop["recap"].items() if c["changed"])
        print(f"no-op site.yml: {noop['seconds']:.1f}s, changed={noop['changed']} ({drift or 'no host changed'})",
              flush=True)
        print("where the no-op's time goes (ansible.posix profile_tasks, profile_roles):")
        print(profile(noop["log"]), flush=True)
        ping_s, hosts = ping(paths, topo, secrets)
        print(f"ansible -m ping: {ping_s:.1f}s on {hosts} hosts", flush=True)
    finally:
        if mirror is not None:
            mirror.stop()
        if not (args.keep or args.reuse):
            quiet(lab.cmd_down, None)
    figures = {"cold_start_s": None if cold is None else round(cold, 1),
               "first_site_s": None if first_s is None else round(first_s, 1),
               "noop_site_s": round(noop["seconds"], 1), "ping_s": round(ping_s, 1),
               "noop_over_ping": round(noop["seconds"] / ping_s, 2), "noop_changed": noop["changed"]}
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1) + "\n")
    print(" ".join(f"{k}={v}" for k, v in figures.items() if k != "noop_changed" and v is not None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
