#!/usr/bin/env python
"""Inventory scale benchmark for the thinkheads.phoenix inventory plugin.

For each size N, generate a valid Phoenix config set with N guests (about 85% LXC containers and 15% VMs,
with dependencies, clones, templates, GPU guests, Traefik services, firewall rules and Docker stacks),
then time, side by side with the floor (ansible-core's own cost: a plain YAML inventory with the same host names),
``ansible-inventory -i bench.phoenix.yml --list`` and ``ansible-playbook -l <one guest>`` of a one-task play, and
record the children's peak RSS. The last line gives our time over the floor's for both commands.

Standard library only. Run from anywhere: ``.venv/bin/python benchmarks/inventory_scale.py`` (``make bench``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

# the generator and the measurements live in benchmarks/benchlib (scale_*.py)
from benchlib.scale_configs import generate
from benchlib.scale_guests import DEFAULT_SIZES, REPO
from benchlib.scale_measure import fail, measure, parse_sizes, summarize


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=parse_sizes, default=list(DEFAULT_SIZES), help="comma-separated guest counts")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per size (best and median reported)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the results to this JSON file")
    parser.add_argument("--enforce", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--seed", type=int, default=20240601, help="random seed for the generated configs")
    parser.add_argument("--timeout", type=float, default=600, help="seconds allowed per ansible-inventory run")
    parser.add_argument(
        "--export", action="store_true", help="time --list --export (group vars not merged into hosts, as AWX runs it)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the generated config sets and print where")
    parser.add_argument("--generate-only", type=Path, metavar="DIR", help="write DIR/<N>/ config sets and stop")
    parser.add_argument(
        "--ansible-inventory", type=Path, default=REPO / ".venv" / "bin" / "ansible-inventory", help="binary to time"
    )
    parser.add_argument(
        "--ansible-playbook", type=Path, default=None, help="ansible-playbook to time (default: next to ansible-inventory)"
    )
    parser.add_argument("--no-cache", action="store_true",
                        help="time the plugin without its model cache (inventory/phoenix.yml keeps it on)")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="also cProfile both commands with the plugin at each size; stats and top-30 text in DIR")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    if args.generate_only:
        for size in args.sizes:
            gen = generate(args.generate_only / str(size), size, args.seed)
            print(f"{size}: {gen['lxc']} LXC, {gen['vm']} VM, {gen['stacks']} stacks -> {gen['inventory']}")
        return 0

    if args.ansible_playbook is None:
        args.ansible_playbook = args.ansible_inventory.parent / "ansible-playbook"
    for binary in (args.ansible_inventory, args.ansible_playbook):
        if not os.access(binary, os.X_OK):
            fail(f"{binary} not found or not executable; create the project virtualenv first")
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_INVENTORY_UNPARSED_FAILED="true")
    env.setdefault("ANSIBLE_NOCOLOR", "1")

    workdir = Path(tempfile.mkdtemp(prefix="phoenix-inventory-bench-"))
    results: dict[int, dict] = {}
    try:
        for size in args.sizes:
            gen = generate(workdir / str(size), size, args.seed, cache=not args.no_cache)
            results[size] = measure(size, gen, args, env)
            print(f"measured {size} guests: list {results[size]['list']['best_s']:.3f}s "
                  f"(floor {results[size]['floor_list']['best_s']:.3f}s)", file=sys.stderr, flush=True)
    finally:
        if args.keep:
            print(f"config sets kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    header = (f"{'guests':>7} | {'list s':>7} | {'floor':>7} | {'ratio':>5} | {'cpu ratio':>9} | {'play -l s':>9} | "
              f"{'floor':>7} | {'ratio':>5} | {'cpu ratio':>9} | {'peak MB':>7} | {'floor MB':>8} | {'model s':>7} | "
              f"{'--graph s':>9}")
    print(header)
    print("-" * len(header))
    for size, r in results.items():
        print(f"{size:>7} | {r['list']['best_s']:>7.3f} | {r['floor_list']['best_s']:>7.3f} | "
              f"{r['list_over_floor']:>5.2f} | {r['list_cpu_over_floor']:>9.2f} | {r['play']['best_s']:>9.3f} | "
              f"{r['floor_play']['best_s']:>7.3f} | {r['play_over_floor']:>5.2f} | {r['play_cpu_over_floor']:>9.2f} | "
              f"{r['peak_mb']:>7.1f} | {r['floor_list']['peak_mb']:>8.1f} | {r['model_s']:>7.3f} | {r['graph_s']:>9.3f}")
    print("list: ansible-inventory --list; play -l: ansible-playbook -l <one guest> of a one-task play; floor: the same "
          "command on a plain YAML inventory with the same host names (only ansible_host); best of "
          f"{args.repeat} side-by-side rounds (cpu ratio: user+sys); model cache "
          + ("off (--no-cache)" if args.no_cache else "on, as in inventory/phoenix.yml (stored by an untimed run)"))
    line, targets = summarize(results)
    for name, target in targets.items():
        verdict = "PASS" if target["pass"] else "FAIL"
        print(f"target {name} {target['limit']}: {target['value']:.2f} {verdict}")
    if args.json:
        payload = {
            "sizes": args.sizes,
            "repeat": args.repeat,
            "commands": ["ansible-inventory --list" + (" --export" if args.export else ""),
                         "ansible-playbook -l <one guest> <one-task play>"],
            "seed": args.seed,
            "model_cache": not args.no_cache,
            "results": [results[size] for size in args.sizes],
            "targets": targets,
            "summary": line,
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    print(line)
    return 1 if args.enforce and not all(t["pass"] for t in targets.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
