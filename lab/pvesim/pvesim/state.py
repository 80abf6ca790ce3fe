"""The simulated node: storages, guest config files, runtime state, tasks, faults.

The storages and volumes are in storage.py (StorageMixin, a base of Sim).

Guest configs live in `<state-dir>/etc/pve/{lxc,qemu-server}/<vmid>.conf` and are re-read
on every use, so an edit made by hand (or by a host-side Ansible task) is what the API
sees next. Everything else (running flags, tasks, firewall, secrets) is kept in memory
and saved to `<state-dir>/sim/state.json`.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import secrets as pysecrets
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from .backend import Backend, Guest, MemoryBackend
from .conf import GuestConf, parse_conf, write_conf
from .errors import ApiError, fail
from .schema import ApiSchema, parse_property_string, print_property_string
from .storage import GIB, SHARED_STORAGES, STORAGES, StorageMixin, format_size
from .tasks import CONTEXT, TaskManager, current_node


__all__ = ["Sim", "format_size", "STORAGES", "SHARED_STORAGES", "GIB"]  # GIB: imported from here by the guest modules


CONF_DIRS = {"lxc": "lxc", "qemu": "qemu-server"}
TYPE_NAMES = {"lxc": "CT", "qemu": "VM"}


def random_mac() -> str:
    tail = pysecrets.token_bytes(3)
    return "BC:24:11:" + ":".join(f"{b:02X}" for b in tail)


class Faults:
    def __init__(self):
        self.clear()

    def clear(self):
        self.latency_ms = 0
        self.error_rate = 0.0
        self.error_status = 500
        self.error_message = "simulated failure"
        self.fail_tasks: list[dict] = []
        self.warn_tasks: list[dict] = []
        self.unknown_status: list[dict] = []
        self.locks: list[dict] = []
        self.after_write: list[dict] = []
        self.rng = random.Random()

    def to_json(self) -> dict:
        return {
            "latency_ms": self.latency_ms, "error_rate": self.error_rate, "error_status": self.error_status,
            "error_message": self.error_message, "fail_task": self.fail_tasks, "warn_task": self.warn_tasks,
            "unknown_status": self.unknown_status, "lock": self.locks,
            "after_write": self.after_write,
        }

    def take_after_write(self, method: str, path: str) -> dict | None:
        """The first `after_write` fault matching a write that has just run (used up after `times`)."""
        if method == "GET":
            return None
        for spec in self.after_write:
            if spec.get("method") and str(spec["method"]).upper() != method:
                continue
            if spec.get("path") and not re.fullmatch(str(spec["path"]), path):
                continue
            spec["times"] = int(spec.get("times", 1)) - 1
            if spec["times"] <= 0:
                self.after_write.remove(spec)
            return spec
        return None


class Sim(StorageMixin):
    def __init__(
        self,
        state_dir: str | os.PathLike,
        schema: ApiSchema,
        node: str = "pve",
        task_seconds: float = 0.2,
        nodes: list[str] | None = None,
        backend: Backend | None = None,
        strict: bool = True,
        status_delay: float | None = None,
        download_ca: str | None = None,
    ):
        self.dir = Path(state_dir)
        self.schema = schema
        # the cluster's nodes, each with its configs in etc/pve/nodes/<node>/{lxc,qemu-server}; the first is the
        # local node, whose directories etc/pve/{lxc,qemu-server} also name (_link_local_node)
        self.nodes = list(dict.fromkeys(nodes or [node]))
        self.local_node = self.nodes[0]
        self.storages = dict(STORAGES)
        if len(self.nodes) > 1:
            self.storages.update(SHARED_STORAGES)
        self.strict = strict
        self.backend = backend or MemoryBackend()
        self.lock = threading.RLock()
        self.etc = self.dir / "etc" / "pve"
        self._link_local_node()
        for name in self.nodes:
            for kind in CONF_DIRS:
                self.conf_dir(kind, name).mkdir(parents=True, exist_ok=True)
        self.simdir = self.dir / "sim"
        self.simdir.mkdir(parents=True, exist_ok=True)
        self.state_file = self.simdir / "state.json"
        self.tasks = TaskManager(self.local_node, task_seconds, on_change=self.save)
        self.tasks.fail_hook = self._injected_task_failure
        self.tasks.warn_hook = self._injected_task_warnings
        # /cluster/resources shows a new guest as `unknown` until pvestatd has reported it (status_unknown)
        self.status_delay = float(status_delay or 0)
        self.created_at: dict[int, float] = {}
        self.faults = Faults()
        self.request_log: list[dict] = []
        self.started = time.time()
        self.runtime: dict[str, dict] = {}
        self.firewall: dict = {"cluster": {}, "guests": {}}
        self.secrets: dict[str, dict] = {}
        # storage content added by download-url / aplinfo (images.py): volid -> {volid, content, format, size,
        # ctime, digests, virtual_size}
        self.volumes: dict[str, dict] = {}
        self.download_ca = download_ca  # extra CA bundle download-url trusts besides the system store
        self.ticket_secret = pysecrets.token_bytes(32)
        self._load()

    # -- persistence ----------------------------------------------------------------

    def _load(self):
        if not self.state_file.is_file():
            self.save()
            return
        data = json.loads(self.state_file.read_text(encoding="utf-8"))
        self.runtime = data.get("runtime") or {}
        self.firewall = data.get("firewall") or {"cluster": {}, "guests": {}}
        self.secrets = data.get("secrets") or {}
        self.volumes = data.get("volumes") or {}
        if data.get("ticket_secret"):
            self.ticket_secret = bytes.fromhex(data["ticket_secret"])
        self.tasks.load(data.get("tasks") or [])
        # guests whose config vanished while we were down are not running any more
        for vmid in list(self.runtime):
            if self.guest_kind(int(vmid)) is None:
                del self.runtime[vmid]

    def save(self):
        with self.lock:
            data = {
                "node": self.local_node,
                "nodes": self.nodes,
                "runtime": self.runtime,
                "firewall": self.firewall,
                "secrets": self.secrets,
                "volumes": self.volumes,
                "ticket_secret": self.ticket_secret.hex(),
                "tasks": self.tasks.dump(),
            }
            tmp = self.state_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
            os.replace(tmp, self.state_file)

    # -- guests and their config files -----------------------------------------------

    @property
    def node(self) -> str:
        """The node the current request or task runs on (the local node outside them)."""
        return current_node(self.local_node)

    @contextmanager
    def on_node(self, node: str | None):
        """Run as `node` (what a request to /nodes/<node>/... or that node's task sees)."""
        before = getattr(CONTEXT, "node", None)
        CONTEXT.node = node or before
        try:
            yield
        finally:
            CONTEXT.node = before

    def _link_local_node(self):
        """/etc/pve/{lxc,qemu-server} and /etc/pve/nodes/<local node>/{lxc,qemu-server} name one directory."""
        # pve-cluster src/pmxcfs/pmxcfs.c create_symlinks: lxc and qemu-server are links to nodes/<nodename>/...,
        # so a guest's file is reachable under the node that holds it, as on every node of the cluster. A state
        # directory written before pvesim made these links keeps its real etc/pve/lxc and gets the link the other
        # way round: both names still reach the same files.
        for kind_dir in CONF_DIRS.values():
            short = self.etc / kind_dir
            full = self.etc / "nodes" / self.local_node / kind_dir
            if short.is_symlink() or full.is_symlink():
                continue
            full.parent.mkdir(parents=True, exist_ok=True)
            if short.is_dir():
                if full.is_dir() and not any(full.iterdir()):
                    full.rmdir()
                if not full.exists():
                    full.symlink_to(Path("..") / ".." / kind_dir)
                continue
            full.mkdir(exist_ok=True)
            short.symlink_to(Path("nodes") / self.local_node / kind_dir)

    def conf_dir(self, kind: str, node: str | None = None) -> Path:
        node = node or self.node
        if node == self.local_node:
            return self.etc / CONF_DIRS[kind]
        return self.etc / "nodes" / node / CONF_DIRS[kind]

    def conf_path(self, kind: str, vmid: int, node: str | None = None) -> Path:
        return self.conf_dir(kind, node) / f"{int(vmid)}.conf"

    def guest_location(self, vmid: int) -> tuple[str, str] | None:
        """(kind, node) of a guest anywhere in the cluster (VMIDs are cluster-wide, pmxcfs' vmlist)."""
        for name in self.nodes:
            for kind in CONF_DIRS:
                if self.conf_path(kind, vmid, name).is_file():
                    return kind, name
        return None

    def guest_kind(self, vmid: int) -> str | None:
        found = self.guest_location(vmid)
        return found[0] if found else None

    def guest_node(self, vmid: int) -> str | None:
        found = self.guest_location(vmid)
        return found[1] if found else None

    def cluster_guests(self) -> list[tuple[str, int, str]]:
        """(kind, vmid, node) of every guest in the cluster, by ID."""
        found = []
        for name in self.nodes:
            for kind in CONF_DIRS:
                for path in self.conf_dir(kind, name).glob("*.conf"):
                    if path.stem.isdigit():
                        found.append((kind, int(path.stem), name))
        return sorted(found, key=lambda item: item[1])

    def all_guests(self, node: str | None = None) -> list[tuple[str, int]]:
        """(kind, vmid) of the guests on `node`, or of the whole cluster when None."""
        return [(kind, vmid) for kind, vmid, name in self.cluster_guests() if node is None or name == node]

    def load_conf(self, kind: str, vmid: int, missing_ok: bool = False, node: str | None = None) -> GuestConf | None:
        node = node or self.node
        path = self.conf_path(kind, vmid, node)
        try:
            raw = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            if missing_ok:
                return None
            fail(f"Configuration file 'nodes/{node}/{CONF_DIRS[kind]}/{int(vmid)}.conf' does not exist")
        return parse_conf(raw, kind)

    def move_conf(self, kind: str, vmid: int, source: str, target: str):
        """Move a guest's config file to another node's directory: what makes a migration (or a clone with
        `target`) final (pve-guest-common PVE/AbstractConfig.pm move_config_to_node: a rename within pmxcfs)."""
        dest = self.conf_path(kind, vmid, target)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.conf_path(kind, vmid, source), dest)

    def save_conf(self, kind: str, vmid: int, conf: GuestConf) -> str:
        path = self.conf_path(kind, vmid)
        if not path.exists():
            self.created_at[int(vmid)] = time.time()
        return write_conf(path, conf)

    def status_unknown(self, vmid: int) -> bool:
        """Whether /cluster/resources shows the guest as `unknown`: pvestatd has not reported it yet (for
        status_delay seconds after its config appeared), or the control fault unknown_status says so."""
        now = time.time()
        for spec in self.faults.unknown_status:
            if int(spec["vmid"]) == int(vmid) and (spec.get("until") is None or now < spec["until"]):
                return True
        return now < self.created_at.get(int(vmid), 0.0) + self.status_delay

    def remove_conf(self, kind: str, vmid: int):
        try:
            self.conf_path(kind, vmid).unlink()
        except FileNotFoundError:
            pass

    def check_lock(self, kind: str, conf: GuestConf):
        lock = conf.options.get("lock")
        if lock:
            fail(f"{TYPE_NAMES[kind]} is locked ({lock})")

    def set_lock(self, kind: str, vmid: int, lock: str | None):
        conf = self.load_conf(kind, vmid, missing_ok=True)
        if conf is None:
            return
        if lock:
            conf.options["lock"] = lock
        else:
            conf.options.pop("lock", None)
        self.save_conf(kind, vmid, conf)

    def check_vmid_unused(self, vmid: int):
        found = self.guest_location(vmid)
        if found:
            fail(f"{TYPE_NAMES[found[0]]} {vmid} already exists on node '{found[1]}'")

    def guest(self, kind: str, vmid: int, conf: GuestConf | None = None) -> Guest:
        conf = conf or self.load_conf(kind, vmid)
        return Guest(
            vmid=int(vmid), kind=kind, node=self.node, config=dict(conf.options),
            conf_path=str(self.conf_path(kind, vmid)), lxc=[list(x) for x in conf.main.lxc],
        )

    def is_running(self, vmid: int) -> bool:
        return self.runtime.get(str(vmid), {}).get("status") == "running"

    def set_running(self, vmid: int, running: bool):
        if running:
            self.runtime[str(vmid)] = {"status": "running", "started": time.time()}
        else:
            self.runtime.pop(str(vmid), None)

    # -- property strings of guest options ----------------------------------------

    def option_schema(self, kind: str, key: str) -> dict | None:
        return self.schema.property_schema(f"/nodes/{{node}}/{kind}/{{vmid}}/config", "PUT", key) or (
            self.schema.property_schema(f"/nodes/{{node}}/{kind}", "POST", key)
        )

    def parse_option(self, kind: str, key: str, value: str) -> dict:
        schema = self.option_schema(kind, key) or {}
        fmt = schema.get("format")
        if not isinstance(fmt, dict):
            return {}
        try:
            return parse_property_string(fmt, value, key)
        except ValueError:
            return {}

    def print_option(self, kind: str, key: str, data: dict, first: tuple[str, ...] = ()) -> str:
        schema = self.option_schema(kind, key) or {}
        fmt = schema.get("format") if isinstance(schema.get("format"), dict) else {}
        return print_property_string(fmt, data, first)

    # -- faults ----------------------------------------------------------------------

    def _take_task_fault(self, specs: list[dict], task) -> dict | None:
        """The first fault spec matching the task (by `vmid` and `type`), used up after `times` matches."""
        with self.lock:
            for spec in specs:
                vmid = spec.get("vmid")
                if vmid is not None and str(vmid) != task.id and int(vmid) not in task.vmids:
                    continue
                wanted = spec.get("type")
                if wanted and wanted != task.type and not task.type.endswith(str(wanted)):
                    continue
                if spec.get("times") is not None:
                    spec["times"] = int(spec["times"]) - 1
                    if spec["times"] <= 0:
                        specs.remove(spec)
                return spec
        return None

    def _injected_task_failure(self, task) -> str | None:
        spec = self._take_task_fault(self.faults.fail_tasks, task)
        return None if spec is None else spec.get("message") or "simulated task failure"

    def _injected_task_warnings(self, task) -> list[str] | None:
        spec = self._take_task_fault(self.faults.warn_tasks, task)
        if spec is None:
            return None
        warnings = spec.get("warnings", 1)
        if isinstance(warnings, (int, float)) and not isinstance(warnings, bool):
            return [f"simulated warning {n}" for n in range(1, max(1, int(warnings)) + 1)]
        if isinstance(warnings, str):
            return [warnings]
        return [str(text) for text in warnings] or ["simulated warning 1"]

    def apply_lock_fault(self, vmid: int, reason: str | None):
        kind = self.guest_kind(vmid)
        if kind is None:
            raise ApiError(400, f"no guest {vmid}")
        self.set_lock(kind, vmid, reason)

    # -- misc ------------------------------------------------------------------------

    def digest_of(self, items) -> str:
        """PVE's digest over a list of dicts or a dict (sorted key:value lines)."""
        sha = hashlib.sha1()
        for entry in items if isinstance(items, list) else [items]:
            for key in sorted(entry):
                value = entry[key]
                if value is None or isinstance(value, (dict, list)):
                    continue
                sha.update(f"{key}:{value}\n".encode())
        return sha.hexdigest()
