"""The one-node lab tests' clients: a throwaway container on the lab network, SSH to a guest, certificates read
off the wire, and the services' error logs."""

from __future__ import annotations

import subprocess

from lab_checks import REPO, docker

# Each service the lab tests drive, and how to print what it logged at error level since a Unix time ({since}):
# (container, shell command). Traefik and the edge log "ERR" (or level=error in the common format), step-ca
# level=error, Nginx its error.log levels error and worse, dnsmasq and Portainer the journal's priority err.
SERVICE_ERRORS = {
    "Traefik (102)": ("phoenix-102", "journalctl -u traefik --since @{since} --no-pager -o cat "
                                     "| sed 's/\\x1b\\[[0-9;]*m//g' | grep -E ' ERR |level=error' || true"),
    "Swarm edge (1001)": ("phoenix-1001", "docker logs --since {since} phoenix-swarm-edge 2>&1 "
                                          "| sed 's/\\x1b\\[[0-9;]*m//g' | grep -E ' ERR |level=error' || true"),
    "Nginx (101)": ("phoenix-101", "awk -v since=\"$(date -u -d @{since} '+%Y/%m/%d %H:%M:%S')\" "
                                   "'substr($0, 1, 19) >= since && /\\[(error|crit|alert|emerg)\\]/' "
                                   "/var/log/nginx/error.log"),
    "step-ca (103)": ("phoenix-103", "journalctl -u step-ca --since @{since} --no-pager -o cat "
                                     "| grep -E 'level=(error|fatal)' || true"),
    "dnsmasq (hypervisor)": ("phoenix-hypervisor", "journalctl -u dnsmasq --since @{since} -p err --no-pager -o cat"),
    "Portainer (1001)": ("phoenix-1001", "journalctl -u portainer --since @{since} -p err --no-pager -o cat"),
}


def service_errors(since: int) -> dict[str, list[str]]:
    """{service: error lines logged since the Unix time ``since``} for every service of SERVICE_ERRORS that logged
    one. A service whose guest is gone (after `lab.py down`) is not asked."""
    found = {}
    for service, (container, command) in SERVICE_ERRORS.items():
        proc = docker("exec", container, "bash", "-c", command.format(since=since))
        if proc.returncode != 0 and "No such container" in proc.stderr:
            continue
        assert proc.returncode == 0, f"reading the log of {service}: {proc.stderr}"
        lines = [line for line in proc.stdout.splitlines() if line.strip() and "-- No entries --" not in line]
        if lines:
            found[service] = lines
    return found


def client(script: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run a shell script in a throwaway client container on the lab network that uses only the lab DNS (the
    hypervisor) and trusts only the lab's Step-CA root (mounted at /root-ca.pem; curl --capath /nonexistent drops
    the system store). ``env``: environment variables of the script."""
    root = REPO / ".cache" / "lab" / "inventory" / "pki" / "root_ca.crt"
    assert root.exists(), f"{root} is missing: the step_ca role fetches it"
    env_args = [arg for key, value in (env or {}).items() for arg in ("-e", f"{key}={value}")]
    return docker("run", "--rm", "--network", "phoenix-vmbr0", "--ip", "10.77.0.250", "--dns", "10.77.0.13",
                  *env_args, "-v", f"{root}:/root-ca.pem:ro", "--entrypoint", "/bin/bash", "phoenix-lab/guest:latest",
                  "-c", script)


def ssh(ip: str, command: str) -> subprocess.CompletedProcess:
    key = REPO / ".cache" / "lab" / "ssh" / "id_ed25519"
    return subprocess.run(["ssh", "-i", str(key), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                           "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", f"root@{ip}", command],
                          capture_output=True, text=True, timeout=300, check=False)


# On a guest: renew every certificate now through the installed timer's own script, with a copy of its
# configurations whose threshold (renew when less than a year is left) exceeds any lifetime, so that a certificate
# issued a moment ago is due too (the renewal path is the timer's: mTLS /renew, atomic swap, hooks), and print the
# serials before and after.
FORCED_RENEWAL = r"""set -e
rm -rf /tmp/phoenix-force && mkdir -p /tmp/phoenix-force
for f in /etc/phoenix-certs/*.json; do
  python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); d["renew_before"] = "8760h"; json.dump(d, sys.stdout)' \
    "$f" > "/tmp/phoenix-force/$(basename "$f")"
done
before=$(phoenix-cert-renew --list | python3 -c 'import json, sys; print(*[json.loads(l)["serial"] for l in sys.stdin])')
phoenix-cert-renew --config-dir /tmp/phoenix-force
after=$(phoenix-cert-renew --list | python3 -c 'import json, sys; print(*[json.loads(l)["serial"] for l in sys.stdin])')
echo "before $before"
echo "after $after"
"""


# The certificate each hop serves for a routed name, read off the wire: the gateway (101) to clients, Traefik
# (102) to the gateway, the Swarm edge (1001) to Traefik.
HOPS = {"10.77.0.153": "10.77.0.153:443", "10.77.0.12": "10.77.0.12:443", "10.77.0.111": "10.77.0.111:8443"}


def served_serial(address: str, server_name: str = "app.internal.thinkheads.ai") -> str:
    """The serial (hex, upper case, no leading zeros) of the certificate served at address for server_name, or the error."""
    proc = subprocess.run(["bash", "-c", f"echo | timeout 10 openssl s_client -connect {address} -servername "
                           f"{server_name} 2>/dev/null | openssl x509 -noout -serial"],
                          capture_output=True, text=True, timeout=30, check=False)
    serial = proc.stdout.strip().removeprefix("serial=").upper().lstrip("0")   # openssl pads to whole bytes
    return serial or f"no certificate ({proc.stderr.strip()})"


def route_status(host: str) -> str:
    """`<address> <HTTP status>` of https://host/ from the lab client: DNS through the hypervisor, TLS verified."""
    proc = client(f"echo $(dig +short {host}) $(curl -sS -o /dev/null -w '%{{http_code}}' --max-time 5 "
                  f"--capath /nonexistent --cacert /root-ca.pem https://{host}/ 2>&1)")
    return proc.stdout.strip() or proc.stderr.strip()
