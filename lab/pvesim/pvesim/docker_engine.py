"""The Docker backend's engine side: the Engine API client over a Unix socket, the lab's labels and run options,
and the pure mapping of a guest's config to a container spec (NICs, SSH keys, limits, its digest)."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import socket
from urllib.parse import quote, unquote, urlencode

from .backend import Guest

LAB_LABEL = "org.thinkheads.phoenix.lab"
VMID_LABEL = "org.thinkheads.phoenix.vmid"
KIND_LABEL = "org.thinkheads.phoenix.kind"
SPEC_LABEL = "org.thinkheads.phoenix.spec"
NEVER = "0001-01-01T00:00:00Z"

# What systemd-as-PID-1 (and a nested dockerd in the QEMU image) needs on these machines:
# --privileged fails (no CAP_SYS_RESOURCE), this set works.
DEFAULT_RUN_OPTIONS = {
    "CapAdd": ["ALL"],
    "CapDrop": ["SYS_RESOURCE"],
    "SecurityOpt": ["seccomp=unconfined", "apparmor=unconfined"],
    "CgroupnsMode": "host",
    "Binds": ["/sys/fs/cgroup:/sys/fs/cgroup:rw"],
    "Tmpfs": {"/run": "rw,nosuid,nodev,mode=755", "/run/lock": "rw,nosuid,nodev,noexec"},
}
# The QEMU image declares VOLUME /var/lib/docker (its dockerd cannot keep images on overlayfs):
# Docker makes an anonymous volume for it, removed with the container.
QEMU_RUN_OPTIONS: dict = {}
# How the lab images take root's SSH keys (lab/images/README.md): this variable, one key a line,
# added to /root/.ssh/authorized_keys at each boot.
KEYS_ENV = "PHOENIX_SSH_AUTHORIZED_KEY"
NIC_MODELS = ("virtio", "e1000", "e1000e", "rtl8139", "vmxnet3", "i82551", "i82557b", "i82559er", "ne2k_isa",
              "ne2k_pci", "pcnet", "e1000-82540em", "e1000-82544gc", "e1000-82545em")


class EngineError(RuntimeError):
    def __init__(self, status: int, message: str):
        super().__init__(f"docker engine: {message} (HTTP {status})" if status else f"docker engine: {message}")
        self.status = status
        self.message = message


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


class EngineClient:
    """The few Docker Engine API calls the backend needs (one connection per call: thread-safe)."""

    def __init__(self, socket_path: str | None = None, timeout: float = 300.0):
        if socket_path is None:
            host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
            if not host.startswith("unix://"):
                raise ValueError(f"only unix:// Docker hosts are supported, not {host}")
            socket_path = host[len("unix://"):]
        self.socket_path = socket_path
        self.timeout = timeout
        self._version: tuple[int, int] | None = None

    def call(self, method: str, path: str, body=None, query: dict | None = None):
        """One API call: (status, decoded JSON or raw bytes); EngineError on a status >= 400."""
        if query:
            path += "?" + urlencode({k: v for k, v in query.items() if v is not None})
        headers = {}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
            headers["Content-Length"] = str(len(payload))
        conn = _UnixConnection(self.socket_path, self.timeout)
        try:
            try:
                conn.request(method, path, body=payload, headers=headers)
                response = conn.getresponse()
                raw = response.read()
            except OSError as exc:
                raise EngineError(0, f"cannot reach {self.socket_path}: {exc}") from exc
        finally:
            conn.close()
        text = raw.decode("utf-8", "replace")
        if response.status >= 400:
            try:
                message = json.loads(text).get("message") or text
            except ValueError:
                message = text.strip() or response.reason
            raise EngineError(response.status, f"{method} {path}: {message}")
        if response.getheader("Content-Type", "").startswith("application/json") and text.strip():
            return response.status, json.loads(text)
        return response.status, raw

    def api_version(self) -> tuple[int, int]:
        if self._version is None:
            _status, info = self.call("GET", "/version")
            major, minor = str(info.get("ApiVersion", "1.41")).split(".")[:2]
            self._version = (int(major), int(minor))
        return self._version

    def inspect(self, name: str) -> dict | None:
        try:
            return self.call("GET", f"/containers/{quote(name)}/json")[1]
        except EngineError as exc:
            if exc.status == 404:
                return None
            raise

    def network(self, name: str) -> dict | None:
        try:
            return self.call("GET", f"/networks/{quote(name)}")[1]
        except EngineError as exc:
            if exc.status == 404:
                return None
            raise

    def info(self) -> dict:
        return self.call("GET", "/info")[1]


# ------------------------------------------------------------------------------------------
# Guest config -> container settings (pure functions)


def parse_property_string(text: str, default_key: str | None = None) -> dict[str, str]:
    out: dict[str, str] = {}
    for index, part in enumerate(str(text or "").split(",")):
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep:
            if index == 0 and default_key:
                out[default_key] = key
            else:
                out[key] = ""
            continue
        out[key.strip()] = value.strip()
    return out


def _nic_index(key: str) -> int:
    return int(key[3:])


def guest_nics(guest: Guest) -> list[dict]:
    """[{index, bridge, ip (CIDR or None), gw, mac}] in net0, net1, ... order."""
    nics = []
    for key in sorted((k for k in guest.config if re.fullmatch(r"net\d+", k)), key=_nic_index):
        net = parse_property_string(guest.config[key])
        index = _nic_index(key)
        if guest.kind == "lxc":
            ip, gw, mac = net.get("ip"), net.get("gw"), net.get("hwaddr")
        else:
            ipconf = parse_property_string(guest.config.get(f"ipconfig{index}", ""))
            ip, gw = ipconf.get("ip"), ipconf.get("gw")
            mac = next((net[m] for m in NIC_MODELS if net.get(m)), None)
        if ip in ("dhcp", "manual", "auto", ""):
            ip = None
        nics.append({"index": index, "bridge": net.get("bridge"), "ip": ip, "gw": gw,
                     "mac": mac.lower() if mac else None})
    return nics


def ssh_keys_of(guest: Guest, secrets: dict | None) -> list[str]:
    text = ""
    if guest.kind == "lxc":
        text = (secrets or {}).get("ssh-public-keys") or ""
    else:
        text = unquote(guest.config.get("sshkeys", ""))
    return [line.strip() for line in str(text).splitlines() if line.strip()]


def container_spec(guest: Guest, image: str, network_for, ncpu: int) -> dict:
    """Everything the backend sets on a guest's container, from the guest's config."""
    config = guest.config
    nics = [dict(nic, network=network_for(nic["bridge"])) for nic in guest_nics(guest) if nic["bridge"]]
    hostname = config.get("hostname") if guest.kind == "lxc" else config.get("name")
    hostname = (hostname or f"{'CT' if guest.kind == 'lxc' else 'VM'}{guest.vmid}").split(".")[0]
    cores = float(config.get("cores") or (1 if guest.kind == "lxc" else 1))
    if guest.kind == "qemu":
        cores *= float(config.get("sockets") or 1)
    if config.get("cpulimit") and float(config["cpulimit"]) > 0:
        cores = min(cores, float(config["cpulimit"]))
    memory = int(config.get("memory") or (512 if guest.kind == "lxc" else 2048))
    swap = int(config.get("swap") or (512 if guest.kind == "lxc" else 0)) if guest.kind == "lxc" else 0
    return {
        "image": image,
        "hostname": hostname,
        "nics": nics,
        "dns": config.get("nameserver", "").split(),
        "dns_search": config.get("searchdomain", "").split(),
        "nano_cpus": int(min(cores, max(ncpu, 1)) * 1e9),
        "memory": memory * 1024 * 1024,
        "memory_swap": (memory + swap) * 1024 * 1024,
    }


def spec_digest(spec: dict) -> str:
    """What can only be set when a container is created (limits are updated in place)."""
    fixed = {k: spec.get(k) for k in ("image", "hostname", "nics", "dns", "dns_search", "keys")}
    return hashlib.sha1(json.dumps(fixed, sort_keys=True).encode()).hexdigest()[:16]
