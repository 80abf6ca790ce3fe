"""The health table: guests, hypervisors, routes and the services behind them."""

from __future__ import annotations

import concurrent.futures
import datetime
import json
import os
import socket
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import docker
import docker.errors
import docker.types

from .files import Paths
from .hosts import Api
from .settings import API_PORT, GUEST_PREFIX, HYPERVISOR, LAB_GPU_OFF, NODE, ROOT, SERVICE_PROBES, SSH_OPTIONS, say

# --------------------------------------------------------------------------------------------------
# Health


def ssh_ok(paths: Paths, ip: str, command: str = "true") -> tuple[bool, str]:
    try:
        proc = subprocess.run(["ssh", *SSH_OPTIONS, "-i", str(paths.ssh_key), f"root@{ip}", command],
                              capture_output=True, text=True, timeout=20, check=False)
    except subprocess.TimeoutExpired:
        return False, "timeout"
    return proc.returncode == 0, (proc.stdout.strip() or proc.stderr.strip())


def tls_probe(ip: str, port: int, timeout: float = 3) -> str | None:
    """'issuer, expires DATE' of the certificate served on ip:port; None when nothing answers."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((ip, port), timeout=timeout) as sock:
            with context.wrap_socket(sock) as tls:
                der = tls.getpeercert(binary_form=True)
    except OSError:
        return None
    try:
        from cryptography import x509
        cert = x509.load_der_x509_certificate(der)
        issuer = cert.issuer.rfc4514_string()
        expiry = cert.not_valid_after_utc.strftime("%Y-%m-%d")
        return f"issuer {issuer}, expires {expiry}"
    except Exception:  # noqa: BLE001 - a health probe reports, never fails
        return "TLS"


def port_open(ip: str, port: int, timeout: float = 3) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=timeout):
            return True
    except OSError:
        return False


def guest_health(client, paths: Paths, api: Api | None, guest: dict, node: str | None = None) -> dict:
    """`node`: where /cluster/resources finds the guest (None: not found there; its status is asked on NODE)."""
    name = f"{GUEST_PREFIX}{guest['vmid']}"
    row = {"guest": f"{guest['vmid']} {guest['name']}", "kind": guest["kind"], "node": node or "-",
           "ip": guest["ip"] or "-", "state": "missing", "ssh": "-", "services": "-", "healthy": False}
    pve_status = None
    if api is not None:
        try:
            pve_status = api.get(f"/nodes/{node or NODE}/{guest['kind']}/{guest['vmid']}/status/current")
        except (urllib.error.URLError, OSError, ValueError):
            pve_status = None
    try:
        container = client.containers.get(name)
    except docker.errors.NotFound:
        container = None
    if guest["template"]:
        exists = pve_status is not None and str(pve_status.get("template", "")) in ("1", "True", "true")
        row.update(state="template" if exists else "missing", healthy=exists)
        return row
    if container is None:
        return row
    row["state"] = container.status
    if container.status != "running" or (pve_status or {}).get("status") != "running":
        row["state"] = f"{container.status} (pve: {(pve_status or {}).get('status', 'unknown')})"
        return row
    ok, detail = ssh_ok(paths, guest["ip"]) if guest["ip"] else (False, "no IP")
    row["ssh"] = "ok" if ok else f"FAIL {detail[:40]}"
    services, healthy = [], ok
    for feature in guest["features"]:
        probe = SERVICE_PROBES.get(feature)
        if not probe:
            continue
        service, port, tls = probe
        result = tls_probe(guest["ip"], port) if tls else ("open" if port_open(guest["ip"], port) else None)
        if result:
            services.append(f"{service}:{port} {result}")
        elif (ROOT / "roles" / feature).is_dir():
            services.append(f"{service}:{port} DOWN")
            healthy = False
        else:
            services.append(f"{service} (role not yet)")
    if str(guest["vmid"]) in LAB_GPU_OFF:
        services.append(LAB_GPU_OFF[str(guest["vmid"])])
    if guest["kind"] == "qemu" and ok:
        up, detail = ssh_ok(paths, guest["ip"], "systemctl is-active docker")
        services.append(f"dockerd {'active' if up else 'DOWN'}")
        healthy = healthy and up
    row.update(services="; ".join(services) or "-", healthy=healthy)
    return row


def hypervisor_health(client, paths: Paths, api: Api | None, topo: dict, host: dict | None = None) -> dict:
    host = host or topo["hypervisors"][0]
    row = {"guest": host["name"], "kind": "host", "node": host["node"], "ip": host["ip"], "state": "missing",
           "ssh": "-", "services": "-", "healthy": False}
    try:
        container = client.containers.get(host["name"])
    except docker.errors.NotFound:
        return row
    row["state"] = container.status
    if container.status != "running":
        return row
    if not host["api"]:
        # another node of the cluster: reachable as itself, and its /etc/pve is the cluster's (the first node's
        # directory, which pvesim makes there, is visible)
        ok, detail = ssh_ok(paths, host["ip"], f"test -d /etc/pve/nodes/{NODE} && hostname")
        row["ssh"] = "ok" if ok else f"FAIL {detail[:40]}"
        row["services"] = (f"/etc/pve shared with {HYPERVISOR} (nodes/{NODE} seen); API on {topo['ip']}"
                           if ok else "no cluster file system")
        row["healthy"] = ok and detail == host["node"]
        return row
    ok, detail = ssh_ok(paths, host["ip"])
    row["ssh"] = "ok" if ok else f"FAIL {detail[:40]}"
    api_ok = False
    if api is not None:
        try:
            version = api.get("/version")
            api_ok = True
        except (urllib.error.URLError, OSError, ValueError):
            version = None
    probe = tls_probe(topo["ip"], API_PORT)
    row["services"] = (f"pvesim:{API_PORT} {'API ' + version.get('version', '?') if api_ok else 'API DOWN'}"
                       f"{', ' + probe if probe else ''}")
    row["healthy"] = ok and api_ok
    return row


def _unsafe_hook(obj: dict):
    return obj["__ansible_unsafe"] if set(obj) == {"__ansible_unsafe"} else obj


def route_rows(paths: Paths, topo: dict) -> list[dict]:
    """One row per routed hostname (thinkheads.phoenix routing: guest traefik_service and stack Host() rules):
    resolved through the lab DNS (the hypervisor), fetched through the Nginx gateway over TLS verified by the lab's
    Step-CA root only; the HTTP status, the certificate's issuer and its days to expiry."""
    root = paths.inventory_dir / "pki" / "root_ca.crt"
    if not paths.inventory.exists():
        return []
    proc = subprocess.run([str(ROOT / ".venv" / "bin" / "ansible-inventory"), "-i", str(paths.inventory), "--list"],
                          capture_output=True, text=True, check=False, cwd=ROOT,
                          env={**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")})
    if proc.returncode != 0:
        return [{"guest": "routes", "kind": "route", "ip": "-", "state": "-", "ssh": "-",
                 "services": f"inventory failed: {proc.stderr.strip()[-80:]}", "healthy": False}]
    hostvars = json.loads(proc.stdout, object_hook=_unsafe_hook)["_meta"]["hostvars"]
    # the listing holds each guest as JSON text (phoenix_guest_json); phoenix_guest is the template plays resolve
    guests = [json.loads(v["phoenix_guest_json"]) for v in hostvars.values() if "phoenix_guest_json" in v]
    stacks = hostvars.get(HYPERVISOR, {}).get("phoenix_stacks") or {}
    # the collection's module_utils, through the committed collections/ symlink tree
    sys.path.insert(0, str(ROOT / "collections"))
    from ansible_collections.thinkheads.phoenix.plugins.module_utils import health as checks  # noqa: E402
    from ansible_collections.thinkheads.phoenix.plugins.module_utils import routing  # noqa: E402

    plan = routing.route_plan(guests, stacks)
    if not plan.get("gateway") or not plan.get("routes"):
        return []
    # a vLLM guest's route is asked for /health (vLLM serves nothing on /), every other route for /
    vllm_ids = {g["id"] for g in guests if "vllm" in (g.get("features") or [])}
    paths_of = {host: "/health" for route in plan["routes"] if route.get("kind") == "guest"
                and route.get("guest_id") in vllm_ids for host in route["hosts"]}
    rows = []

    def probe(hostname: str) -> dict:
        path = paths_of.get(hostname, "/")
        row = {"guest": hostname, "kind": "route", "ip": "-", "state": "-", "ssh": "-", "services": "-",
               "healthy": False}
        try:
            address = checks.resolve(hostname, nameservers=[topo["ip"]])[0]
            row["ip"] = address
        except (LookupError, OSError, IndexError) as exc:
            row["services"] = f"DNS {exc}"[:100]
            return row
        try:
            status, _body, _issuer = checks.http_get(address, 443, path, host=hostname, ca_file=str(root), timeout=10)
            pem = ssl.get_server_certificate((address, 443), timeout=10)
        except (OSError, ssl.SSLError) as exc:
            row["services"] = f"HTTPS FAIL {exc}"[:100]
            return row
        from cryptography import x509

        cert = x509.load_pem_x509_certificate(pem.encode())
        issuer = ",".join(a.rfc4514_string() for a in cert.issuer if a.oid == x509.NameOID.COMMON_NAME)
        left = cert.not_valid_after_utc - datetime.datetime.now(datetime.timezone.utc)
        expiry = f"{left.days} days" if left.days >= 2 else f"{left.total_seconds() / 3600:.1f} hours"
        row.update(state=f"HTTP {status}", services=f"GET {path}: issuer {issuer}, {expiry} to expiry",
                   healthy=200 <= status < 400)
        return row

    hostnames = routing.routed_hostnames(plan)
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        rows = list(pool.map(probe, hostnames))
    return rows


def health(client, paths: Paths, topo: dict, secrets: dict | None) -> bool:
    api = Api(paths, topo, secrets) if secrets and paths.ca_file.exists() else None
    nodes = guest_nodes(api)
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(hypervisor_health, client, paths, api, topo, host) for host in topo["hypervisors"]]
        futures += [pool.submit(guest_health, client, paths, api, guest, nodes.get(guest["vmid"]))
                    for guest in topo["guests"]]
        rows = [f.result() for f in futures]
    rows += route_rows(paths, topo)
    columns = [("guest", "GUEST"), ("kind", "TYPE"), ("node", "NODE"), ("ip", "IP"), ("state", "STATE"),
               ("ssh", "SSH"), ("services", "SERVICES")]
    widths = {key: max(len(title), *(len(str(r.get(key, "-"))) for r in rows)) for key, title in columns}
    print()
    print("  ".join(title.ljust(widths[key]) for key, title in columns) + "  HEALTH")
    for row in rows:
        print("  ".join(str(row.get(key, "-")).ljust(widths[key]) for key, _t in columns)
              + ("  ok" if row["healthy"] else "  UNHEALTHY"))
    bad = [r["guest"] for r in rows if not r["healthy"]]
    print()
    if bad:
        say("health", f"UNHEALTHY: {', '.join(bad)}")
        return False
    say("health", f"all {len(rows)} healthy")
    return True


def guest_nodes(api: Api | None) -> dict[int, str]:
    """vmid -> the node /cluster/resources lists the guest on (empty when the API does not answer)."""
    if api is None:
        return {}
    try:
        return {int(r["vmid"]): str(r["node"]) for r in api.get("/cluster/resources?type=vm") if r.get("node")}
    except (urllib.error.URLError, OSError, ValueError, KeyError, TypeError):
        return {}


def read_secrets(paths: Paths) -> dict | None:
    try:
        return {"public_key": Path(str(paths.ssh_key) + ".pub").read_text().strip(),
                "token_secret": paths.token_file.read_text().strip()}
    except OSError:
        return None
