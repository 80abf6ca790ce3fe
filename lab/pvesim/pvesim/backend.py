"""Backends: what a guest's lifecycle does outside the simulated API.

pvesim owns the API state (config files, tasks, locks, running flags). A backend is told
about lifecycle events so it can mirror them somewhere real (the Docker backend runs each
guest as a container). Methods run inside the guest's task thread, after `--task-seconds`
have passed and while the guest is still locked; raising an exception fails the task and
its text becomes the task's exitstatus. `config_changed` runs in the API request (config
updates are synchronous in PVE) and an exception there answers 500.

Interface (all take a :class:`Guest`):

- ``create(guest, secrets)``: a guest was created (create or clone). `secrets` holds what
  PVE never writes to the config: ``password`` and ``ssh-public-keys`` for LXC.
- ``start(guest)`` / ``stop(guest)``: start, or stop/shutdown (``reboot`` is stop + start).
- ``destroy(guest)``: the guest is being removed.
- ``config_changed(guest, changed, deleted)``: options set (dict) and deleted (list) that went live. A change a
  running guest keeps pending (pending.py) is reported by the start that applies it, before ``start``; the
  guest's `config` is always the main section, never the pending values.
- ``status(guest) -> dict``: optional runtime facts merged into status/current
  (for example ``{"ips": [...]}``); return ``{}`` when there are none.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

__all__ = ["Backend", "Guest", "MemoryBackend"]


@dataclass
class Guest:
    vmid: int
    kind: str  # "lxc" or "qemu"
    node: str
    config: dict[str, str]  # the main section of the config file (raw strings)
    conf_path: str
    lxc: list[list[str]] = field(default_factory=list)  # raw lxc.* lines (LXC only)


class Backend:
    """Base class: every hook does nothing."""

    name = "none"

    def create(self, guest: Guest, secrets: dict) -> None:
        pass

    def start(self, guest: Guest) -> None:
        pass

    def stop(self, guest: Guest) -> None:
        pass

    def destroy(self, guest: Guest) -> None:
        pass

    def config_changed(self, guest: Guest, changed: dict, deleted: list) -> None:
        pass

    def status(self, guest: Guest) -> dict:
        return {}


class MemoryBackend(Backend):
    """Records every event in `events` (a list of (event, vmid, detail) tuples)."""

    name = "memory"

    def __init__(self):
        self.events: list[tuple[str, int, dict]] = []
        self._lock = threading.Lock()

    def _record(self, event: str, guest: Guest, **detail):
        with self._lock:
            self.events.append((event, guest.vmid, detail))

    def create(self, guest, secrets):
        self._record("create", guest, kind=guest.kind, secrets=sorted(k for k, v in secrets.items() if v))

    def start(self, guest):
        self._record("start", guest)

    def stop(self, guest):
        self._record("stop", guest)

    def destroy(self, guest):
        self._record("destroy", guest)

    def config_changed(self, guest, changed, deleted):
        self._record("config", guest, changed=sorted(changed), deleted=sorted(deleted))
