"""Guest snapshots: list, create, config, delete, rollback."""

from __future__ import annotations

import time

from ..conf import Section
from ..errors import fail, param_fail
from ..routes import Request, guest_paths, route
from ..state import Sim
from .common import _load, _start_task, _unlock_on_error
from .config import _config_data
from .power import _do_start, _do_stop

# --------------------------------------------------------------------------------------
# snapshots


@route("GET", *guest_paths("/snapshot"))
def snapshot_list(sim: Sim, req: Request):
    kind, vmid, conf = _load(sim, req)
    result = []
    for name, snap in conf.snapshots.items():
        item = {"name": name, "description": snap.description or ""}
        if snap.options.get("snaptime"):
            item["snaptime"] = int(snap.options["snaptime"])
        if snap.options.get("parent"):
            item["parent"] = snap.options["parent"]
        if kind == "qemu":
            item["vmstate"] = 1 if snap.options.get("vmstate") else 0
        result.append(item)
    current = {"name": "current", "description": "You are here!", "running": 1 if sim.is_running(vmid) else 0}
    if conf.options.get("parent"):
        current["parent"] = conf.options["parent"]
    result.append(current)
    return result


@route("POST", *guest_paths("/snapshot"))
def snapshot_create(sim: Sim, req: Request):
    kind, vmid, conf = _load(sim, req)
    name = req.params["snapname"]
    if name == "current":
        param_fail({"snapname": "invalid snapshot name 'current'"})
    sim.check_lock(kind, conf)
    if name in conf.snapshots:
        fail(f"snapshot name '{name}' already used")
    description = req.params.get("description")
    vmstate = req.flag("vmstate")
    sim.set_lock(kind, vmid, "snapshot")

    def body(task):
        with sim.lock:
            fresh = sim.load_conf(kind, vmid)
            # pve-guest-common src/PVE/AbstractConfig.pm __snapshot_prepare (in the snapshot task)
            if fresh.options.get("template") == "1":
                raise RuntimeError("you can't take a snapshot if it's a template")
            fresh.options.pop("lock", None)
            snap = Section(dict(fresh.options), description, [list(x) for x in fresh.main.lxc])
            snap.options["snaptime"] = str(int(time.time()))
            if vmstate and kind == "qemu" and sim.is_running(vmid):
                snap.options["vmstate"] = f"local-lvm:vm-{vmid}-state-{name}"
            fresh.snapshots[name] = snap
            fresh.options["parent"] = name
            sim.save_conf(kind, vmid, fresh)
            task.log.append(f"snapshot '{name}' created")

    return _start_task(sim, req, kind, "snapshot", vmid, body, _unlock_on_error(sim, kind, vmid))


def _get_snapshot(conf, name):
    snap = conf.snapshots.get(name)
    if snap is None:
        fail(f"snapshot '{name}' does not exist")
    return snap


@route("GET", *guest_paths("/snapshot/{snapname}"))
def snapshot_index(sim: Sim, req: Request):
    kind, vmid, conf = _load(sim, req)
    _get_snapshot(conf, req.params["snapname"])
    return [{"cmd": "rollback"}, {"cmd": "config"}]


@route("GET", *guest_paths("/snapshot/{snapname}/config"))
def snapshot_config(sim: Sim, req: Request):
    kind, vmid, conf = _load(sim, req)
    snap = _get_snapshot(conf, req.params["snapname"])
    return _config_data(sim, kind, conf, snap)


@route("PUT", *guest_paths("/snapshot/{snapname}/config"))
def snapshot_config_update(sim: Sim, req: Request):
    kind, vmid, conf = _load(sim, req)
    snap = _get_snapshot(conf, req.params["snapname"])
    sim.check_lock(kind, conf)
    if "description" in req.params:
        snap.description = req.params["description"] or None
    sim.save_conf(kind, vmid, conf)
    return None


@route("DELETE", *guest_paths("/snapshot/{snapname}"))
def snapshot_delete(sim: Sim, req: Request):
    kind, vmid, conf = _load(sim, req)
    name = req.params["snapname"]
    _get_snapshot(conf, name)
    if not req.flag("force"):
        sim.check_lock(kind, conf)
    sim.set_lock(kind, vmid, "snapshot-delete")

    def body(task):
        with sim.lock:
            fresh = sim.load_conf(kind, vmid)
            snap = fresh.snapshots.pop(name)
            parent = snap.options.get("parent")
            for other in [fresh.main, *fresh.snapshots.values()]:
                if other.options.get("parent") == name:
                    if parent:
                        other.options["parent"] = parent
                    else:
                        other.options.pop("parent", None)
            fresh.options.pop("lock", None)
            sim.save_conf(kind, vmid, fresh)
            task.log.append(f"snapshot '{name}' removed")

    return _start_task(sim, req, kind, "delsnapshot", vmid, body, _unlock_on_error(sim, kind, vmid))


@route("POST", *guest_paths("/snapshot/{snapname}/rollback"))
def snapshot_rollback(sim: Sim, req: Request):
    kind, vmid, conf = _load(sim, req)
    name = req.params["snapname"]
    _get_snapshot(conf, name)
    sim.check_lock(kind, conf)
    start = req.flag("start")
    sim.set_lock(kind, vmid, "rollback")

    def body(task):
        if sim.is_running(vmid):
            _do_stop(sim, kind, vmid, task)
        with sim.lock:
            fresh = sim.load_conf(kind, vmid)
            snap = fresh.snapshots[name]
            options = {k: v for k, v in snap.options.items() if k not in ("snaptime", "vmstate")}
            options["parent"] = name
            fresh.main = Section(options, fresh.main.description, [list(x) for x in snap.lxc])
            sim.save_conf(kind, vmid, fresh)
            task.log.append(f"rolled back to snapshot '{name}'")
        if start:
            _do_start(sim, kind, vmid, task)

    return _start_task(sim, req, kind, "rollback", vmid, body, _unlock_on_error(sim, kind, vmid))
