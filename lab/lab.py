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
import importlib
import os
import sys
from pathlib import Path

VENV_PYTHON = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "python"

try:
    importlib.import_module("docker")  # labctl needs the Docker SDK: checked before labctl is imported
except ImportError:  # pragma: no cover - re-run with the project's virtual environment
    if VENV_PYTHON.exists() and Path(sys.executable).resolve() != VENV_PYTHON.resolve() \
            and not os.environ.get("PHOENIX_LAB_REEXEC"):
        os.environ["PHOENIX_LAB_REEXEC"] = "1"
        os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), *sys.argv])
    sys.exit("lab.py needs the docker Python SDK: run `make venv` and use .venv/bin/python")

# The lab's code lives in lab/labctl (one module per concern); lab.py is the entry point that Makefile, tests and
# benchmarks run or import, so every name of those modules is also an attribute of this module (`lab.LAB`,
# `lab.load_topology`, `lab.health`: the function), looked up in them.
from labctl import commands as _commands  # noqa: E402
from labctl import files as _files  # noqa: E402
from labctl import health as _health  # noqa: E402
from labctl import hosts as _hosts  # noqa: E402
from labctl import settings as _settings  # noqa: E402
from labctl import topology as _topology  # noqa: E402
from labctl.commands import cmd_down, cmd_health, cmd_status, cmd_up  # noqa: E402
from labctl.settings import LabError, say  # noqa: E402

_MODULES = (_settings, _topology, _files, _hosts, _health, _commands)


def __getattr__(name: str):
    for module in _MODULES:
        if hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(f"module 'lab' has no attribute {name!r}")


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
