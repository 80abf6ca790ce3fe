"""api_calls' setup: names and targets, pvesim in process (Sim), the project's guests and both tools' playbook tasks."""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


USER = "root@pam"
TOKEN = "bench"
SECRET = "5e0c6d1a-api-calls-benchmark"
# Both tools log in as root@pam itself: Proxmox refuses bind mounts, dev[n] and features beyond nesting to API
# tokens (pve-container check_ct_modify_config_perm), and the project's guests have them. The token stays for reads.
PASSWORD = "api-calls-benchmark-root"
NODE = "pve"
STORAGE = "local-lvm"
LXC_TEMPLATE = "local:vztmpl/ubuntu-24.04-standard_24.04-2_amd64.tar.zst"
# The cloud image a VM that is not cloned is built from: create.yml first brings the guest's image onto a storage
# (proxmox_image) and passes its volume; every fresh pvesim holds this one (pvesim/storage.py, STATIC_VOLUMES).
VM_IMAGE = "local:import/debian-12-genericcloud-amd64.qcow2"
INVENTORY_TEMPLATE = "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst"
EXPECTED_GUESTS = (900, 103, 102, 101, 901, 801, 9000, 1001, 1002)
TARGET_UNCHANGED_PER_GUEST = 2.0
TOOLS = ("ours", "community")
RUNS = ("create", "unchanged")


# --------------------------------------------------------------------------------------------------------------
# pvesim
# --------------------------------------------------------------------------------------------------------------


class Sim:
    """A fresh pvesim with its control interface; stop() when done."""

    def __init__(self, root: Path, task_seconds: float) -> None:
        from pvesim.control import Control
        from pvesim.server import start_server

        root.mkdir(parents=True)
        self.root = root
        self.server = start_server(root, tokens=[f"{USER}!{TOKEN}={SECRET}"], passwords=[f"{USER}:{PASSWORD}"],
                                   control=True, task_seconds=task_seconds, strict=True)
        self.url = self.server.url
        self.port = self.server.port
        self.ca_file = str(self.server.ca_file)
        self.control = Control(self.url, ca_file=self.ca_file)

    def log(self) -> list[dict]:
        return self.control.requests()

    def clear(self) -> None:
        self.control.clear_requests()

    def client(self):
        from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox import PveClient

        return PveClient(self.url, api_user=USER, api_password=PASSWORD, ca_file=self.ca_file, node=NODE)

    def stop(self) -> None:
        self.server.stop()


# --------------------------------------------------------------------------------------------------------------
# Playbooks
# --------------------------------------------------------------------------------------------------------------


def load_guests() -> dict:
    from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.model import load_config

    return load_config(str(REPO / "etc"), str(REPO / "stacks")).guests


def our_tasks(guests: dict) -> list[tuple[int, str, str, dict]]:
    """(guest id, step, module, arguments): one proxmox_guest task per guest, as playbooks/create.yml runs it."""
    tasks = []
    for gid, guest in guests.items():
        args = {"guest": guest, "state": "present", "storage": STORAGE}
        if guest["type"] == "lxc" and not guest.get("clone_from"):
            args["ostemplate"] = LXC_TEMPLATE
        elif guest["type"] == "vm" and not guest.get("clone_from") and guest.get("image"):
            args["image"] = VM_IMAGE
        tasks.append((gid, "provision", "thinkheads.phoenix.proxmox_guest", args))
    return tasks


def _lxc_settings(desired: dict) -> dict:
    """community.proxmox.proxmox options for the keys desired_lxc() manages (GPU dev[n] has no option there)."""
    settings = {
        "hostname": desired["hostname"],
        "cores": desired["cores"],
        "memory": desired["memory"],
        "netif": {"net0": desired["net0"]},
        "onboot": bool(desired["onboot"]),
        "tags": desired["tags"].split(";"),
        "description": desired["description"],
        # Workaround: left at its default, cmode is sent as 'default' by every update (PUT config), which PVE's
        # schema rejects (enum shell, console, tty). tty is PVE's own default. probe_default_cmode() records it.
        "cmode": "tty",
    }
    if "swap" in desired:
        settings["swap"] = desired["swap"]
    if "nameserver" in desired:
        settings["nameserver"] = desired["nameserver"]
    if "startup" in desired:
        settings["startup"] = desired["startup"].split(",")
    if "features" in desired:
        settings["features"] = desired["features"].split(",")
    mounts = {k: v for k, v in desired.items() if k.startswith("mp") and k[2:].isdigit()}
    if mounts:
        settings["mounts"] = mounts
    return settings


def _qemu_settings(desired: dict) -> dict:
    """community.proxmox.proxmox_kvm options for the keys desired_qemu() manages."""
    settings = {
        "name": desired["name"],
        "cores": desired["cores"],
        "memory": desired["memory"],
        "net": {"net0": desired["net0"]},
        "onboot": bool(desired["onboot"]),
        "tags": desired["tags"].split(";"),
        "description": desired["description"],
        "agent": desired["agent"],
    }
    if "ipconfig0" in desired:
        settings["ipconfig"] = {"ipconfig0": desired["ipconfig0"]}
    if "nameserver" in desired:
        settings["nameservers"] = desired["nameserver"].split()
    if "startup" in desired:
        settings["startup"] = desired["startup"]
    if "ciuser" in desired:
        settings["ciuser"] = desired["ciuser"]
    if "sshkeys" in desired:
        settings["sshkeys"] = desired["sshkeys"]
    return settings


def community_tasks(guests: dict) -> tuple[list[tuple[int, str, str, dict]], list[str]]:
    """The same guests with community.proxmox: create or clone, settings (clones), template (templates).

    Returns the tasks and what they leave out compared with proxmox_guest.
    """
    from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox_guest import (
        desired_lxc,
        desired_qemu,
    )

    tasks: list[tuple[int, str, str, dict]] = []
    skipped: list[str] = []
    for gid, guest in guests.items():
        src = guest.get("clone_from")
        disk_gb = int(guest.get("disk_gb") or 8)
        if guest["type"] == "lxc":
            module = "community.proxmox.proxmox"
            desired = desired_lxc(guest)
            settings = _lxc_settings(desired)
            devs = sorted(k for k in desired if k.startswith("dev") and k[3:].isdigit())
            if devs:
                skipped.append(f"{gid}: GPU passthrough {', '.join(devs)} (the proxmox module has no dev[n] option)")
            if src:
                tasks.append((gid, "clone", module, {
                    "vmid": gid, "node": NODE, "hostname": desired["hostname"], "clone": int(src),
                    "clone_type": "full", "storage": STORAGE, "description": desired["description"]}))
                tasks.append((gid, "settings", module, dict(settings, vmid=gid, node=NODE, update=True)))
                src_disk = int(guests.get(int(src), {}).get("disk_gb") or 8)
                if disk_gb > src_disk:
                    skipped.append(f"{gid}: growing the root disk {src_disk}G -> {disk_gb}G after the clone "
                                   "(no LXC resize in community.proxmox)")
            else:
                tasks.append((gid, "create", module, dict(
                    settings, vmid=gid, node=NODE, ostemplate=LXC_TEMPLATE, update=True, unprivileged=True,
                    disk_volume={"storage": STORAGE, "size": disk_gb})))
        else:
            module = "community.proxmox.proxmox_kvm"
            desired = desired_qemu(guest)
            settings = _qemu_settings(desired)
            if src:
                source = guests.get(int(src), {})
                tasks.append((gid, "clone", module, {
                    "vmid": int(src), "clone": source.get("hostname") or str(src), "newid": gid,
                    "name": desired["name"], "node": NODE, "full": True, "storage": STORAGE, "state": "present"}))
                tasks.append((gid, "settings", module, dict(settings, vmid=gid, node=NODE, update=True,
                                                            update_unsafe=True)))
                src_disk = int(source.get("disk_gb") or 8)
                if disk_gb > src_disk:
                    skipped.append(f"{gid}: growing scsi0 {src_disk}G -> {disk_gb}G after the clone "
                                   "(would be one more community.proxmox.proxmox_disk task)")
            else:
                tasks.append((gid, "create", module, dict(
                    settings, vmid=gid, node=NODE, state="present", scsihw="virtio-scsi-pci",
                    scsi={"scsi0": f"{STORAGE}:{disk_gb}"}, ide={"ide2": f"{STORAGE}:cloudinit"},
                    boot="order=scsi0", serial={"serial0": "socket"})))
        if guest.get("is_template"):
            tasks.append((gid, "template", module, {"vmid": gid, "node": NODE, "state": "template"}))
    return tasks, [f"left out {item}" for item in skipped]


def write_playbook(path: Path, tasks: list[tuple[int, str, str, dict]], sim: Sim) -> None:
    """A localhost play, one task per (guest, step); failures are recorded, the play goes on."""
    defaults = {
        "thinkheads.phoenix.proxmox_guest": {
            "api_url": sim.url, "api_user": USER, "api_password": PASSWORD, "ca_file": sim.ca_file, "node": NODE},
    }
    community = {"api_host": "127.0.0.1", "api_port": sim.port, "api_user": USER, "api_password": PASSWORD,
                 "ca_path": sim.ca_file, "validate_certs": True}
    defaults["community.proxmox.proxmox"] = community
    defaults["community.proxmox.proxmox_kvm"] = community
    play = {
        "name": "api_calls benchmark",
        "hosts": "localhost",
        "connection": "local",
        "gather_facts": False,
        "vars": {"ansible_python_interpreter": sys.executable},
        "module_defaults": defaults,
        "tasks": [{"name": f"{gid} {step}", module: args, "ignore_errors": True}
                  for gid, step, module, args in tasks],
    }
    text = json.dumps([play], indent=1, default=str)
    # JSON is YAML. Ansible templates task arguments, so a guest value with a Jinja2 delimiter would change.
    if "{{" in text or "{%" in text:
        raise SystemExit(f"{path.name}: a task argument contains a Jinja2 delimiter; the benchmark cannot pass it")
    path.write_text(text + "\n")
