"""The lab end to end: `lab/lab.py up` from nothing, health, a converging second run, `down`.

Needs a Docker engine (started by lab/engine/ensure-engine.sh when none runs) and takes a few
minutes (image builds on a fresh machine: about 3 more). Skipped where no engine can be started,
or with PHOENIX_LAB_TESTS=0. Warning: it removes a running lab first and at the end (`lab.py down`).
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LAB_PY = REPO / "lab" / "lab.py"
PYTHON = REPO / ".venv" / "bin" / "python"
LABEL = "org.thinkheads.phoenix.lab=1"
RECAP = re.compile(r"^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def lab(*args, timeout=1800):
    python = str(PYTHON if PYTHON.exists() else sys.executable)
    return subprocess.run([python, str(LAB_PY), *args], cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          check=False)


def docker(*args):
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120, check=False)


def show(proc):
    return f"exit {proc.returncode}\n--- stdout (end) ---\n{proc.stdout[-6000:]}\n--- stderr ---\n{proc.stderr[-3000:]}"


@pytest.fixture(scope="module")
def engine():
    if os.environ.get("PHOENIX_LAB_TESTS", "1") == "0":
        pytest.skip("PHOENIX_LAB_TESTS=0")
    script = REPO / "lab" / "engine" / "ensure-engine.sh"
    if not script.exists():
        pytest.skip("lab/engine/ensure-engine.sh is missing")
    try:
        proc = subprocess.run([str(script)], capture_output=True, text=True, timeout=300, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"no Docker engine can be started here: {exc}")
    if proc.returncode != 0:
        last = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or ["no output"]
        pytest.skip(f"no Docker engine can be started here (ensure-engine.sh exit {proc.returncode}: {last[0]})")


@pytest.fixture(scope="module")
def first_up(engine):
    down = lab("down", timeout=300)
    assert down.returncode == 0, show(down)
    proc = lab("up")
    yield proc
    lab("down", timeout=300)


def test_up_from_nothing_is_healthy(first_up):
    assert first_up.returncode == 0, show(first_up)
    out = first_up.stdout
    assert "PLAY RECAP" in out
    assert re.search(r"health: all \d+ healthy", out), show(first_up)
    table = out[out.rindex("\nGUEST "):].splitlines()
    for name in ("phoenix-hypervisor", "103 step-ca", "102 traefik", "101 nginx-gateway", "801 embedding",
                 "1001 swarm-manager", "1002 swarm-worker"):
        row = next((line for line in table if line.startswith(name)), None)
        assert row is not None, f"{name} is not in the health table\n{show(first_up)}"
        assert " running " in row and " ok " in row and row.rstrip().endswith("ok"), row
    for name in ("900 template-base", "901 template-service", "9000 "):
        row = next(line for line in table if line.startswith(name))
        assert " template " in row, row


def test_progress_shows_phases_and_elapsed_time(first_up):
    phases = set(re.findall(r"^\[lab\s+[\d.]+s\] (\w+):", first_up.stdout, re.M))
    assert {"engine", "images", "network", "hypervisor", "api", "site", "health", "up"} <= phases, phases


def test_guests_have_their_static_ips_and_macs(first_up):
    inspect = docker("inspect", "phoenix-103", "phoenix-1001")
    assert inspect.returncode == 0, inspect.stderr
    found = {}
    for item in json.loads(inspect.stdout):
        net = item["NetworkSettings"]["Networks"]["phoenix-vmbr0"]
        found[item["Name"]] = (net["IPAddress"], net["MacAddress"], item["Config"]["Labels"]["org.thinkheads.phoenix.lab"])
    assert found["/phoenix-103"] == ("10.77.0.10", "52:54:00:00:01:03", "1")
    assert found["/phoenix-1001"] == ("10.77.0.111", "52:54:00:00:10:01", "1")


def test_lab_networks_are_internal(first_up):
    names = docker("network", "ls", "--filter", f"label={LABEL}", "--format", "{{.Name}}").stdout.split()
    assert "phoenix-vmbr0" in names
    for name in names:
        inspect = json.loads(docker("network", "inspect", name).stdout)[0]
        assert inspect["Internal"] is True, name


ROUTES = ("app.internal.thinkheads.ai", "qdrant.internal.thinkheads.ai", "portainer.internal.thinkheads.ai")


def client(script: str) -> subprocess.CompletedProcess:
    """Run a shell script in a throwaway client container on the lab network that uses only the lab DNS (the
    hypervisor) and trusts only the lab's Step-CA root (mounted at /root-ca.pem; curl --capath /nonexistent drops
    the system store)."""
    root = REPO / ".cache" / "lab" / "inventory" / "pki" / "root_ca.crt"
    assert root.exists(), f"{root} is missing: the step_ca role fetches it"
    return docker("run", "--rm", "--network", "phoenix-vmbr0", "--ip", "10.77.0.250", "--dns", "10.77.0.13",
                  "-v", f"{root}:/root-ca.pem:ro", "--entrypoint", "/bin/bash", "phoenix-lab/guest:latest",
                  "-c", script)


def test_routes_answer_through_gateway_and_traefik_with_verified_tls(first_up):
    """client -> DNS (hypervisor) -> Nginx gateway (101, TLS) -> Traefik (102, TLS) -> Swarm edge on 1001 (TLS) ->
    stack tasks on 1002 by task address, or -> Portainer on 1001; every hop verified against the Step-CA root."""
    assert first_up.returncode == 0, "the first run failed"
    script = "set -e\n" + "".join(
        f"echo {host} $(dig +short {host}) "
        f"$(curl -sS -o /dev/null -w '%{{http_code}}' --capath /nonexistent --cacert /root-ca.pem https://{host}/)\n"
        for host in ROUTES)
    script += ("echo unknown $(curl -sS -o /dev/null -w '%{http_code}' --capath /nonexistent --cacert /root-ca.pem "
               "-H 'Host: unknown.internal.thinkheads.ai' https://app.internal.thinkheads.ai/)\n"
               "echo http $(curl -sS -o /dev/null -w '%{http_code}' http://app.internal.thinkheads.ai/)\n"
               "echo issuer $(echo | openssl s_client -connect app.internal.thinkheads.ai:443 "
               "-servername app.internal.thinkheads.ai 2>/dev/null | openssl x509 -noout -issuer)\n")
    proc = client(script)
    assert proc.returncode == 0, show(proc)
    answers = dict(line.split(" ", 1) for line in proc.stdout.strip().splitlines())
    for host in ROUTES:
        address, status = answers[host].rsplit(" ", 1)
        assert address == "10.77.0.153", f"{host} resolves to {address}, not the gateway\n{proc.stdout}"
        assert status == "200", f"{host}: HTTP {status}\n{proc.stdout}"
    assert answers["unknown"] == "404", proc.stdout
    assert answers["http"] == "301", proc.stdout
    assert "ThinkHeads Internal Intermediate CA" in answers["issuer"], proc.stdout


def ssh(ip: str, command: str) -> subprocess.CompletedProcess:
    key = REPO / ".cache" / "lab" / "ssh" / "id_ed25519"
    return subprocess.run(["ssh", "-i", str(key), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                           "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", f"root@{ip}", command],
                          capture_output=True, text=True, timeout=300, check=False)


# On a guest: renew every certificate now through the installed timer's own script, with a copy of its
# configurations whose threshold is 99.9% of the lifetime (the renewal path is the timer's: mTLS /renew, atomic
# swap, hooks), and print the serials before and after.
FORCED_RENEWAL = r"""set -e
rm -rf /tmp/phoenix-force && mkdir -p /tmp/phoenix-force
for f in /etc/phoenix-certs/*.json; do
  python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); d["renew_before"] = "99.9%"; json.dump(d, sys.stdout)' \
    "$f" > "/tmp/phoenix-force/$(basename "$f")"
done
before=$(phoenix-cert-renew --list | python3 -c 'import json, sys; print(*[json.loads(l)["serial"] for l in sys.stdin])')
phoenix-cert-renew --config-dir /tmp/phoenix-force
after=$(phoenix-cert-renew --list | python3 -c 'import json, sys; print(*[json.loads(l)["serial"] for l in sys.stdin])')
echo "before $before"
echo "after $after"
"""


def test_gateway_and_traefik_renewals_under_a_request_loop_lose_no_request(first_up):
    """Renew the gateway's (101) and Traefik's (102) certificates while a client sends a steady, bounded loop of
    requests through both: every request succeeds over verified TLS, and both serve the new certificates."""
    assert first_up.returncode == 0, "the first run failed"
    loop = ("ok=0; bad=0; for i in $(seq 1 120); do "
            "code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 --capath /nonexistent --cacert /root-ca.pem "
            "https://app.internal.thinkheads.ai/ 2>/dev/null || true); "
            "if [ \"$code\" = 200 ]; then ok=$((ok+1)); else bad=$((bad+1)); echo \"request $i: $code\"; fi; "
            "sleep 0.1; done; echo \"ok=$ok bad=$bad\"")
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        requests = pool.submit(client, loop)
        time.sleep(2)
        renewals = {ip: ssh(ip, FORCED_RENEWAL) for ip in ("10.77.0.153", "10.77.0.12")}
        result = requests.result(timeout=300)
    for ip, proc in renewals.items():
        assert proc.returncode == 0, f"renewal on {ip}: {show(proc)}"
        lines = dict(line.split(" ", 1) for line in proc.stdout.strip().splitlines() if line.startswith(("before", "after")))
        assert lines["before"] != lines["after"], f"{ip} kept its certificate: {proc.stdout}"
    assert result.returncode == 0, show(result)
    assert result.stdout.strip().splitlines()[-1] == "ok=120 bad=0", result.stdout


def test_health_table_has_a_row_per_route(first_up):
    table = first_up.stdout[first_up.stdout.rindex("\nGUEST "):]
    for host in ROUTES:
        row = next((line for line in table.splitlines() if line.startswith(host)), None)
        assert row is not None, f"no health row for {host}\n{table}"
        assert " HTTP 200 " in row and "ThinkHeads Internal Intermediate CA" in row and row.rstrip().endswith("ok")


def test_gpu_guest_stops_at_the_nvidia_preflight(first_up, tmp_path):
    """create.yml -l 801 with 801 as a GPU guest: the lab hypervisor has no NVIDIA devices, so the run stops
    in the first play, names the missing device nodes and changes nothing."""
    assert first_up.returncode == 0, "the first run failed"
    config_dir = tmp_path / "etc"
    shutil.copytree(REPO / "lab" / "etc", config_dir)
    lxc_file = config_dir / "phoenix_lxc_configs.json"
    data = json.loads(lxc_file.read_text())
    guest = data["lxc_configs"]["801"]
    guest["gpu_assignment"] = "0"
    guest["features"] = [*guest["features"], "nvidia"]
    lxc_file.write_text(json.dumps(data, indent=2))
    inventory = tmp_path / "inventory"
    # pki/ holds the root the step_ca role fetched: not an inventory source
    shutil.copytree(REPO / ".cache" / "lab" / "inventory", inventory, ignore=shutil.ignore_patterns("pki"))
    plugin_file = inventory / "phoenix.yml"
    plugin_file.write_text(plugin_file.read_text().replace(str(REPO / "lab" / "etc"), str(config_dir)))
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    proc = subprocess.run([str(REPO / ".venv" / "bin" / "ansible-playbook"), "-i", str(inventory),
                           "-e", f"@{REPO / '.cache' / 'lab' / 'extra-vars.yml'}", "playbooks/create.yml",
                           "-l", "801"], cwd=REPO, capture_output=True, text=True, timeout=600, check=False, env=env)
    assert proc.returncode != 0, show(proc)
    assert "NVIDIA preflight failed for guest 801" in proc.stdout, show(proc)
    assert "/dev/nvidia0" in proc.stdout and "/dev/nvidiactl" in proc.stdout, show(proc)
    assert "Nothing was changed" in proc.stdout
    recap = RECAP.findall(proc.stdout)
    assert recap and all(int(c) == 0 for _h, c, _u, _f in recap), show(proc)
    assert "Provision the selected guests" not in proc.stdout, "the run went past the checks"


def test_health_table_reports_the_gpu_guest_without_gpu(first_up):
    table = first_up.stdout[first_up.stdout.rindex("\nGUEST "):]
    row = next(line for line in table.splitlines() if line.startswith("801 embedding"))
    assert "GPU off in the lab" in row, row


def test_second_up_converges_with_no_change(first_up):
    assert first_up.returncode == 0, "the first run failed"
    proc = lab("up", "--no-build")
    assert proc.returncode == 0, show(proc)
    recap = RECAP.findall(proc.stdout)
    assert recap, show(proc)
    changed = {host: int(c) for host, c, _u, _f in recap if int(c)}
    assert not changed, f"second site.yml run changed {changed}\n{show(proc)}"
    assert all(int(u) == 0 and int(f) == 0 for _h, _c, u, f in recap)
    assert "hypervisor: phoenix-hypervisor is running" in proc.stdout


def test_down_leaves_nothing(first_up):
    proc = lab("down", timeout=300)
    assert proc.returncode == 0, show(proc)
    for kind in ("container", "network", "volume"):
        args = [kind, "ls", "--filter", f"label={LABEL}", "--format", "{{.Name}}"]
        if kind == "container":
            args.insert(2, "-a")
        left = docker(*args).stdout.split()
        assert left == [], f"{kind}s left: {left}"
    names = docker("ps", "-a", "--format", "{{.Names}}").stdout.split()
    assert not [n for n in names if re.fullmatch(r"phoenix-(hypervisor|\d+)", n)], names
