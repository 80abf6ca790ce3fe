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
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO / "lab" / "pvesim"))
sys.path.insert(0, str(REPO / "collections"))

# the setup, the runs and the report live in benchmarks/benchlib (api_*.py)
from benchlib.api_setup import EXPECTED_GUESTS, RUNS, TARGET_UNCHANGED_PER_GUEST, TOOLS, load_guests
from benchlib.api_runs import provision
from benchlib.api_inventory import inventories
from benchlib.api_report import print_report


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
