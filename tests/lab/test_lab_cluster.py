"""The two-node lab (`make lab NODES=2`, `lab/lab.py up --nodes 2`) end to end: a Proxmox cluster of phoenix-hypervisor
(node pve, pvesim for the whole cluster) and phoenix-hypervisor-pve2 (node pve2, the same cluster file system), the
Swarm manager 1001 on pve and the worker 1002 on pve2, every route answering, a second converge with changed=0, and
`down` leaving nothing.

Skipped unless PHOENIX_LAB_NODES=2 (the CI runs the one-node lab, tests/lab/test_lab.py, for time). Like that test
it needs a Docker engine, takes several minutes, and removes a running lab first and at the end (`lab.py down`).
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest

# the helpers beside this file, shared with test_lab.py (pytest puts tests/lab on sys.path)
from lab_checks import CACHE, REPO, assert_converged_without_change, assert_down_leaves_nothing, docker, lab, pve_get, show

SECOND = ("phoenix-hypervisor-pve2", "pve2", "10.77.0.14")
UP_TIMEOUT = 2400  # seconds allowed to `up --nodes 2`

pytestmark = pytest.mark.skipif(os.environ.get("PHOENIX_LAB_NODES") != "2",
                                reason="the two-node lab runs only with PHOENIX_LAB_NODES=2")


def table_of(stdout: str) -> list[str]:
    """The rows of lab.py's health table (up to the blank line after it: playbooks/health.yml's table follows)."""
    rows = stdout[stdout.rindex("\nGUEST "):].splitlines()[1:]
    return rows[:rows.index("")] if "" in rows else rows


def row_of(table: list[str], name: str) -> str:
    row = next((line for line in table if line.startswith(name + " ")), None)
    assert row is not None, f"{name} is not in the health table\n" + "\n".join(table)
    return row


@pytest.fixture(scope="module")
def cluster_up():
    script = REPO / "lab" / "engine" / "ensure-engine.sh"
    proc = subprocess.run([str(script)], capture_output=True, text=True, timeout=300, check=False)
    if proc.returncode != 0:
        reason = f"no Docker engine can be started here (ensure-engine.sh exit {proc.returncode})"
        if os.environ.get("PHOENIX_REQUIRE_LAB") == "1":     # as in test_lab.py: required means required
            pytest.fail(f"PHOENIX_REQUIRE_LAB=1 and the two-node lab cannot run: {reason}", pytrace=False)
        pytest.skip(reason)
    down = lab("down", timeout=300)
    assert down.returncode == 0, show(down)
    proc = lab("up", "--nodes", "2", timeout=UP_TIMEOUT)
    print(f"\nlab.py up --nodes 2 from nothing: {proc.seconds}s (exit {proc.returncode})")
    yield proc
    lab("down", timeout=300)


def test_up_with_two_nodes_is_healthy(cluster_up):
    assert cluster_up.returncode == 0, show(cluster_up)
    assert re.search(r"health: all \d+ healthy", cluster_up.stdout), show(cluster_up)
    table = table_of(cluster_up.stdout)
    assert re.match(r"phoenix-hypervisor\s+host\s+pve\s+10\.77\.0\.13\s+running\s", row_of(table, "phoenix-hypervisor"))
    second = row_of(table, SECOND[0])
    assert re.match(rf"{SECOND[0]}\s+host\s+{SECOND[1]}\s+{re.escape(SECOND[2])}\s+running\s+ok\s", second), second
    # the NODE column is where /cluster/resources finds each guest
    for name, node in (("1001 swarm-manager", "pve"), ("1002 swarm-worker", "pve2"), ("103 step-ca", "pve"),
                       ("9000 ubuntu-2404-cloud-template", "pve")):
        row = row_of(table, name)
        assert re.search(rf"\s{node}\s", row) and row.rstrip().endswith("ok"), row


def test_manager_and_worker_are_on_different_nodes(cluster_up):
    assert cluster_up.returncode == 0, "the first run failed"
    nodes = {int(r["vmid"]): r["node"] for r in pve_get("/cluster/resources?type=vm")}
    assert nodes[1001] != nodes[1002], nodes
    assert (nodes[1001], nodes[1002]) == ("pve", "pve2"), nodes
    assert {r["node"] for r in pve_get("/nodes")} == {"pve", "pve2"}


def test_second_node_is_its_own_host_on_the_cluster_file_system(cluster_up):
    """pve2's container is reached as pve2 (SSH, the lab key) and sees the worker's config in the cluster file
    system, where proxmox_lxc_raw and the node-local tasks of create.yml find a guest of that node."""
    assert cluster_up.returncode == 0, "the first run failed"
    key = CACHE / "ssh" / "id_ed25519"
    proc = subprocess.run(["ssh", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o",
                           "BatchMode=yes", "-o", "ConnectTimeout=5", "-i", str(key), f"root@{SECOND[2]}",
                           "hostname; test -f /etc/pve/nodes/pve2/qemu-server/1002.conf && echo worker-config; "
                           "test -e /etc/pve/nodes/pve2/qemu-server/1001.conf || echo no-manager-config"],
                          capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["pve2", "worker-config", "no-manager-config"], proc.stdout
    inventory = (CACHE / "inventory" / "cluster-nodes.yml").read_text()
    assert SECOND[0] in inventory and "phoenix_pve_node_hosts" in inventory


def test_routes_answer_through_the_gateway(cluster_up):
    """Every routed name (the stacks on the worker on pve2 included) answers 200 through Nginx -> Traefik, TLS
    verified against the lab's Step-CA root (the lab's health table asks each one)."""
    assert cluster_up.returncode == 0, "the first run failed"
    routes = [line for line in table_of(cluster_up.stdout) if re.match(r"\S+\s+route\s", line)]
    assert len(routes) >= 4, "\n".join(table_of(cluster_up.stdout))
    bad = [line for line in routes if " HTTP 200 " not in line or not line.rstrip().endswith("ok")]
    assert not bad, "\n".join(bad)
    assert any(line.startswith("app.internal.thinkheads.ai ") for line in routes), "\n".join(routes)


def test_a_one_node_up_refuses_the_running_cluster(cluster_up):
    assert cluster_up.returncode == 0, "the first run failed"
    proc = lab("up", "--nodes", "1", "--no-build", "--no-engine", timeout=300)
    assert proc.returncode == 1, show(proc)
    assert "a lab of 2 node(s) exists" in proc.stdout, show(proc)
    assert docker("inspect", "-f", "{{.State.Running}}", SECOND[0]).stdout.strip() == "true"


def test_second_up_converges_with_no_change(cluster_up):
    assert cluster_up.returncode == 0, "the first run failed"
    proc = lab("up", "--nodes", "2", "--no-build", timeout=UP_TIMEOUT)
    print(f"\nlab.py up --nodes 2, second converge: {proc.seconds}s (exit {proc.returncode})")
    assert_converged_without_change(proc, SECOND[0])


def test_down_leaves_nothing(cluster_up):
    assert_down_leaves_nothing()
