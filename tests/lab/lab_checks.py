"""What the lab tests share (one node and two): lab.py and docker runs, the Proxmox API, polling, and the checks
both make: a second converge changes nothing, `down` leaves nothing."""

from __future__ import annotations

import json
import re
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LAB_PY = REPO / "lab" / "lab.py"
PYTHON = REPO / ".venv" / "bin" / "python"
CACHE = REPO / ".cache" / "lab"
LABEL = "org.thinkheads.phoenix.lab=1"
RECAP = re.compile(r"^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def lab(*args, timeout=1800):
    """`lab.py <args>` with the project's interpreter; the result carries its duration (``seconds``)."""
    python = str(PYTHON if PYTHON.exists() else sys.executable)
    started = time.monotonic()
    proc = subprocess.run([python, str(LAB_PY), *args], cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          check=False)
    proc.seconds = round(time.monotonic() - started, 1)
    return proc


def docker(*args):
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120, check=False)


def show(proc):
    return f"exit {proc.returncode}\n--- stdout (end) ---\n{proc.stdout[-6000:]}\n--- stderr ---\n{proc.stderr[-3000:]}"


def poll(read, accept, timeout: float = 45, interval: float = 1):
    """read() until accept(value) or the deadline; returns the last value (the caller asserts on it)."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if accept(value) or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def pve_get(path: str):
    """GET of the lab's Proxmox API (the first hypervisor) with the lab's token, TLS verified against pvesim's CA."""
    secret = (CACHE / "pve-token-secret").read_text().strip()
    request = urllib.request.Request(f"https://10.77.0.13:8006/api2/json{path}",
                                     headers={"Authorization": f"PVEAPIToken=root@pam!phoenix-lab={secret}"})
    context = ssl.create_default_context(cafile=str(CACHE / "tls" / "ca.pem"))
    with urllib.request.urlopen(request, timeout=10, context=context) as response:
        return json.loads(response.read())["data"]


def assert_converged_without_change(proc, hypervisor: str) -> None:
    """A second `lab.py up` succeeded, its site.yml recap has no change, nothing unreachable or failed, and it kept
    the hypervisor container (``hypervisor``) running."""
    assert proc.returncode == 0, show(proc)
    recap = RECAP.findall(proc.stdout)
    assert recap, show(proc)
    changed = {host: int(c) for host, c, _u, _f in recap if int(c)}
    assert not changed, f"second site.yml run changed {changed}\n{show(proc)}"
    assert all(int(u) == 0 and int(f) == 0 for _h, _c, u, f in recap), show(proc)
    assert f"hypervisor: {hypervisor} is running" in proc.stdout


def assert_down_leaves_nothing() -> None:
    """`lab.py down` succeeds and leaves no container, network or volume with the lab's label, nor a container named
    like a lab hypervisor (phoenix-hypervisor, phoenix-hypervisor-<node>) or guest (phoenix-<vmid>)."""
    proc = lab("down", timeout=300)
    assert proc.returncode == 0, show(proc)
    for kind in ("container", "network", "volume"):
        args = [kind, "ls", "--filter", f"label={LABEL}", "--format", "{{.Name}}"]
        if kind == "container":
            args.insert(2, "-a")
        left = docker(*args).stdout.split()
        assert left == [], f"{kind}s left: {left}"
    names = docker("ps", "-a", "--format", "{{.Names}}").stdout.split()
    assert not [n for n in names if n.startswith("phoenix-hypervisor") or re.fullmatch(r"phoenix-\d+", n)], names
