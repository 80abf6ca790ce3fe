"""Docker backend: every guest is a container on the Docker engine.

The lab runs pvesim inside the `phoenix-hypervisor` container with the host's Docker socket
bind-mounted, so this module talks to the Docker Engine API over a Unix socket with the
standard library only (the hypervisor image has no Docker SDK or CLI).

The engine client and the pure config -> container mapping are in docker_engine.py; this module
keeps the backend itself (DockerBackend).

Mapping (see the README's "Docker backend" section):

- create/clone -> a container `phoenix-<vmid>` (created, not started) from the LXC or QEMU
  image, on the Docker network standing in for the guest's bridge (`vmbr0` -> `phoenix-vmbr0`),
  with the static IP and MAC of `net0` (LXC `ip=`/`hwaddr=`; QEMU `ipconfig0` and the model
  key of `net0`, e.g. `virtio=MAC`), the hostname, `nameserver`/`searchdomain` as DNS
  settings, `cores`/`memory` (+ LXC `swap`) as CPU and memory limits, and the SSH keys of
  the create call (LXC `ssh-public-keys`, QEMU `sshkeys`) for root (the lab images add
  `PHOENIX_SSH_AUTHORIZED_KEY` to /root/.ssh/authorized_keys at boot).
  A QEMU guest's `ciuser` is created at its first start, with the same keys and sudo.
- config change -> a container that never ran is re-created with the new settings (no data
  to lose); one that ran keeps its filesystem: limits are updated and a changed address is
  applied by reconnecting it to the network. Hostname and MAC changes of such a container
  need a destroy/create of the guest.
- start/stop/destroy -> start, stop, remove (with anonymous volumes). Templates are never started.
- status -> the container's name, state and addresses (extra keys of status/current).
- `lxc.*` lines, `mp[n]` and `dev[n]` are not applied (except `mp[n]` under a mapped path, see
  `path_map`), and no disk is copied on clones: a clone is a new container with the copied config.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import threading
import time
from pathlib import Path
from urllib.parse import quote

from .backend import Backend, Guest
from .docker_engine import (
    DEFAULT_RUN_OPTIONS, KEYS_ENV, KIND_LABEL, LAB_LABEL, NEVER, QEMU_RUN_OPTIONS, SPEC_LABEL, VMID_LABEL, EngineClient,
    EngineError, container_spec, parse_property_string, spec_digest, ssh_keys_of,
)
from .docker_engine import guest_nics

# guest_nics, spec_digest, ssh_keys_of: reached through this module by the tests
__all__ = ["DockerBackend", "EngineClient", "EngineError", "container_spec", "DEFAULT_RUN_OPTIONS", "guest_nics",
           "spec_digest", "ssh_keys_of"]


# ------------------------------------------------------------------------------------------


class DockerBackend(Backend):
    """Guests as containers (see the module docstring)."""

    name = "docker"

    def __init__(
        self,
        lxc_image: str = "phoenix-lab/guest:latest",
        qemu_image: str = "phoenix-lab/vm:latest",
        bridges: dict[str, str] | None = None,
        prefix: str = "phoenix-",
        labels: dict[str, str] | None = None,
        state_dir=None,
        client: EngineClient | None = None,
        run_options: dict | None = None,
        qemu_run_options: dict | None = None,
        path_map: dict[str, str] | None = None,
        start_timeout: float = 60.0,
        authorized_keys: list[str] | None = None,
    ):
        self.client = client or EngineClient()
        self.lxc_image = lxc_image
        self.qemu_image = qemu_image
        self.bridges = dict(bridges or {})
        self.prefix = prefix
        self.labels = {LAB_LABEL: "1"} if labels is None else dict(labels)
        self.run_options = dict(DEFAULT_RUN_OPTIONS if run_options is None else run_options)
        self.qemu_run_options = dict(QEMU_RUN_OPTIONS if qemu_run_options is None else qemu_run_options)
        # hypervisor path prefix -> Docker volume: mp[n] bind mounts below the prefix become
        # bind mounts of the same directory inside that volume (the hypervisor mounts it there)
        self.path_map = dict(path_map or {})
        self.start_timeout = start_timeout
        # keys for every guest's root, besides those of the create call (the lab operator's key)
        self.authorized_keys = [k.strip() for k in authorized_keys or [] if k.strip()]
        self.state_file = Path(state_dir) / "sim" / "docker-backend.json" if state_dir else None
        self._lock = threading.Lock()
        self._guest_locks: dict[int, threading.Lock] = {}
        self._keys: dict[str, list[str]] = self._load_keys()
        self._ncpu: int | None = None

    # -- helpers ---------------------------------------------------------------------------

    def container_name(self, vmid: int) -> str:
        return f"{self.prefix}{vmid}"

    def network_for(self, bridge: str) -> str:
        return self.bridges.get(bridge) or f"{self.prefix}{bridge}"

    def _guest_lock(self, vmid: int) -> threading.Lock:
        with self._lock:
            return self._guest_locks.setdefault(int(vmid), threading.Lock())

    def _load_keys(self) -> dict[str, list[str]]:
        if self.state_file and self.state_file.is_file():
            try:
                return dict(json.loads(self.state_file.read_text()).get("ssh_keys", {}))
            except (OSError, ValueError):
                return {}
        return {}

    def _save_keys(self):
        if not self.state_file:
            return
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"ssh_keys": self._keys}, indent=1, sort_keys=True))
        os.replace(tmp, self.state_file)

    def _set_keys(self, vmid: int, keys: list[str]):
        with self._lock:
            if self._keys.get(str(vmid)) != keys:
                self._keys[str(vmid)] = keys
                self._save_keys()

    def _drop_keys(self, vmid: int):
        with self._lock:
            if self._keys.pop(str(vmid), None) is not None:
                self._save_keys()

    def ncpu(self) -> int:
        if self._ncpu is None:
            self._ncpu = int(self.client.info().get("NCPU") or os.cpu_count() or 1)
        return self._ncpu

    def spec(self, guest: Guest) -> dict:
        image = self.lxc_image if guest.kind == "lxc" else self.qemu_image
        spec = container_spec(guest, image, self.network_for, self.ncpu())
        spec["keys"] = self.keys_for(guest.vmid)
        return spec

    def keys_for(self, vmid: int) -> list[str]:
        keys = list(self._keys.get(str(vmid), []))
        return keys + [k for k in self.authorized_keys if k not in keys]

    @staticmethod
    def is_template(guest: Guest) -> bool:
        return str(guest.config.get("template", "0")) == "1"

    # -- networks ------------------------------------------------------------------------------

    def ensure_network(self, nic: dict):
        """The network for a bridge: created --internal (lab traffic never leaves the machine)."""
        if self.client.network(nic["network"]) is not None:
            return
        body = {"Name": nic["network"], "Driver": "bridge", "Internal": True, "CheckDuplicate": True,
                "Labels": dict(self.labels)}
        if nic["ip"]:
            subnet = ipaddress.ip_interface(nic["ip"]).network
            gateway = nic["gw"] or str(next(subnet.hosts()))
            body["IPAM"] = {"Driver": "default", "Config": [{"Subnet": str(subnet), "Gateway": gateway}]}
        try:
            self.client.call("POST", "/networks/create", body)
        except EngineError as exc:
            if exc.status != 409:
                raise

    def _endpoint(self, nic: dict) -> dict:
        endpoint: dict = {}
        if nic["ip"]:
            endpoint["IPAMConfig"] = {"IPv4Address": nic["ip"].split("/")[0]}
        if nic["mac"] and self.client.api_version() >= (1, 44):
            endpoint["MacAddress"] = nic["mac"]
        return endpoint

    # -- container lifecycle -------------------------------------------------------------------

    def _mounts(self, guest: Guest) -> list[str]:
        binds = []
        if not self.path_map:
            return binds
        for key in sorted(k for k in guest.config if re.fullmatch(r"mp\d+", k)):
            mp = parse_property_string(guest.config[key], "volume")
            source, target = mp.get("volume", ""), mp.get("mp")
            if not source.startswith("/") or not target:
                continue
            for prefix, volume in self.path_map.items():
                prefix = prefix.rstrip("/")
                if source == prefix or source.startswith(prefix + "/"):
                    info = self.client.call("GET", f"/volumes/{quote(volume)}")[1]
                    os.makedirs(source, exist_ok=True)  # the hypervisor mounts the volume at prefix
                    host_path = info["Mountpoint"].rstrip("/") + source[len(prefix):]
                    binds.append(f"{host_path}:{target}:{'ro' if mp.get('ro') == '1' else 'rw'}")
                    break
        return binds

    def _create_container(self, guest: Guest, spec: dict):
        name = self.container_name(guest.vmid)
        labels = dict(self.labels)
        labels.update({VMID_LABEL: str(guest.vmid), KIND_LABEL: guest.kind, SPEC_LABEL: spec_digest(spec)})
        host_config = {k: (list(v) if isinstance(v, list) else dict(v) if isinstance(v, dict) else v)
                       for k, v in self.run_options.items()}
        host_config.update({
            "NanoCpus": spec["nano_cpus"],
            "Memory": spec["memory"],
            "MemorySwap": spec["memory_swap"],
            "RestartPolicy": {"Name": "no"},
        })
        host_config["Binds"] = list(host_config.get("Binds", [])) + self._mounts(guest)
        if spec["dns"]:
            host_config["Dns"] = spec["dns"]
        if spec["dns_search"]:
            host_config["DnsSearch"] = spec["dns_search"]
        body = {"Image": spec["image"], "Hostname": spec["hostname"], "Labels": labels, "HostConfig": host_config,
                "Env": [f"{KEYS_ENV}={chr(10).join(spec['keys'])}"] if spec["keys"] else []}
        if guest.kind == "qemu":
            host_config.update(self.qemu_run_options)
        nics = spec["nics"]
        for nic in nics:
            self.ensure_network(nic)
        if nics:
            first = nics[0]
            host_config["NetworkMode"] = first["network"]
            body["NetworkingConfig"] = {"EndpointsConfig": {first["network"]: self._endpoint(first)}}
            if first["mac"] and self.client.api_version() < (1, 44):
                body["MacAddress"] = first["mac"]
        else:
            host_config["NetworkMode"] = "none"
        try:
            self.client.call("POST", "/containers/create", body, query={"name": name})
        except EngineError as exc:
            if exc.status == 404 and "image" in exc.message.lower():
                raise EngineError(404, f"image {spec['image']} is missing: build the lab images first "
                                       "(lab/images/build.sh)") from exc
            raise
        for nic in nics[1:]:
            self.client.call("POST", f"/networks/{quote(nic['network'])}/connect",
                             {"Container": name, "EndpointConfig": self._endpoint(nic)})

    def _remove(self, name: str):
        try:
            self.client.call("DELETE", f"/containers/{quote(name)}", query={"force": "1", "v": "1"})
        except EngineError as exc:
            if exc.status != 404:
                raise

    def ensure(self, guest: Guest) -> dict:
        """Create the container, or bring an existing one in line with the guest's config."""
        spec = self.spec(guest)
        name = self.container_name(guest.vmid)
        current = self.client.inspect(name)
        if current is None:
            self._create_container(guest, spec)
            return self.client.inspect(name)
        labels = current["Config"].get("Labels") or {}
        state = current["State"]
        never_ran = not state.get("Running") and state.get("StartedAt", NEVER).startswith("0001-")
        if labels.get(SPEC_LABEL) != spec_digest(spec) and never_ran:
            self._remove(name)
            self._create_container(guest, spec)
            return self.client.inspect(name)
        self._update_limits(current, spec)
        self._update_networks(current, spec)
        return current

    def _update_limits(self, current: dict, spec: dict):
        host = current["HostConfig"]
        want = {"NanoCpus": spec["nano_cpus"], "Memory": spec["memory"], "MemorySwap": spec["memory_swap"]}
        if any(int(host.get(k) or 0) != v for k, v in want.items()):
            self.client.call("POST", f"/containers/{current['Id']}/update", want)

    def _update_networks(self, current: dict, spec: dict):
        attached = (current.get("NetworkSettings") or {}).get("Networks") or {}
        for nic in spec["nics"]:
            endpoint = attached.get(nic["network"])
            want_ip = nic["ip"].split("/")[0] if nic["ip"] else None
            have_ip = ((endpoint or {}).get("IPAMConfig") or {}).get("IPv4Address") if endpoint else None
            if endpoint is not None and (want_ip is None or want_ip == have_ip):
                continue
            self.ensure_network(nic)
            if endpoint is not None:
                self.client.call("POST", f"/networks/{quote(nic['network'])}/disconnect",
                                 {"Container": current["Id"], "Force": True})
            self.client.call("POST", f"/networks/{quote(nic['network'])}/connect",
                             {"Container": current["Id"], "EndpointConfig": self._endpoint(nic)})

    def _wait_running(self, name: str):
        deadline = time.monotonic() + self.start_timeout
        while True:
            info = self.client.inspect(name)
            state = (info or {}).get("State") or {}
            if state.get("Running"):
                return info
            if info is None or state.get("Status") in ("exited", "dead"):
                raise EngineError(0, f"container {name} did not start: {state.get('Status', 'missing')}, "
                                     f"exit code {state.get('ExitCode')} {state.get('Error', '')}".strip())
            if time.monotonic() > deadline:
                raise EngineError(0, f"container {name} did not start within {self.start_timeout:g}s")
            time.sleep(0.2)

    def _exec(self, name: str, cmd: list[str]) -> int:
        _s, created = self.client.call("POST", f"/containers/{quote(name)}/exec",
                                       {"Cmd": cmd, "AttachStdout": True, "AttachStderr": True})
        self.client.call("POST", f"/exec/{created['Id']}/start", {"Detach": False, "Tty": False})
        _s, info = self.client.call("GET", f"/exec/{created['Id']}/json")
        return int(info.get("ExitCode") or 0)

    def _cloud_init_user(self, guest: Guest, name: str):
        """What cloud-init does for a VM's `ciuser`: the user, its keys, passwordless sudo."""
        user = guest.config.get("ciuser")
        if guest.kind != "qemu" or not user or user == "root" or not re.fullmatch(r"[a-z_][a-z0-9_-]*", user):
            return
        keys = "\n".join(self.keys_for(guest.vmid))
        script = (
            'u="$1"; id -u "$u" >/dev/null 2>&1 || useradd -m -s /bin/bash "$u" || exit 1; '
            'h=$(getent passwd "$u" | cut -d: -f6); install -d -m 700 -o "$u" -g "$u" "$h/.ssh"; '
            'printf "%s\\n" "$2" > "$h/.ssh/authorized_keys"; chown "$u:$u" "$h/.ssh/authorized_keys"; '
            'chmod 600 "$h/.ssh/authorized_keys"; '
            'if [ -d /etc/sudoers.d ]; then echo "$u ALL=(ALL) NOPASSWD:ALL" > /etc/sudoers.d/90-cloud-init-users; '
            'chmod 440 /etc/sudoers.d/90-cloud-init-users; fi'
        )
        self._exec(name, ["sh", "-c", script, "cloud-init", user, keys])

    # -- Backend hooks -------------------------------------------------------------------------

    def create(self, guest: Guest, secrets: dict) -> None:
        with self._guest_lock(guest.vmid):
            self._set_keys(guest.vmid, ssh_keys_of(guest, secrets))
            self._remove(self.container_name(guest.vmid))  # a leftover of an earlier guest with this ID
            self._create_container(guest, self.spec(guest))

    def config_changed(self, guest: Guest, changed: dict, deleted: list) -> None:
        with self._guest_lock(guest.vmid):
            if guest.kind == "qemu" and ("sshkeys" in changed or "sshkeys" in deleted):
                self._set_keys(guest.vmid, ssh_keys_of(guest, None))
            if str(guest.config.get("lock", "")) in ("create", "clone"):
                return  # the create/clone task creates the container with the final config
            if self.client.inspect(self.container_name(guest.vmid)) is not None:
                self.ensure(guest)

    def start(self, guest: Guest) -> None:
        if self.is_template(guest):
            raise RuntimeError(f"guest {guest.vmid} is a template; templates are never started")
        name = self.container_name(guest.vmid)
        with self._guest_lock(guest.vmid):
            info = self.ensure(guest)
            first_start = info["State"].get("StartedAt", NEVER).startswith("0001-")
            if not info["State"].get("Running"):
                self.client.call("POST", f"/containers/{quote(name)}/start")
            self._wait_running(name)
            if first_start:
                self._cloud_init_user(guest, name)

    def stop(self, guest: Guest) -> None:
        name = self.container_name(guest.vmid)
        with self._guest_lock(guest.vmid):
            try:
                self.client.call("POST", f"/containers/{quote(name)}/stop", query={"t": "10"})
            except EngineError as exc:
                if exc.status != 404:
                    raise

    def destroy(self, guest: Guest) -> None:
        with self._guest_lock(guest.vmid):
            self._remove(self.container_name(guest.vmid))
            self._drop_keys(guest.vmid)

    def status(self, guest: Guest) -> dict:
        try:
            info = self.client.inspect(self.container_name(guest.vmid))
        except EngineError:
            return {}
        if info is None:
            return {}
        networks = (info.get("NetworkSettings") or {}).get("Networks") or {}
        return {
            "container": info["Name"].lstrip("/"),
            "container-state": info["State"].get("Status"),
            "container-ips": [n["IPAddress"] for n in networks.values() if n.get("IPAddress")],
        }
