"""Version, access tickets, nodes, storage, tasks, cluster resources and next free ID."""

from __future__ import annotations

import time

from .errors import ApiError, fail
from .formats import split_list
from .routes import Request, route
from .state import GIB, Sim

PVE_VERSION = {"version": "9.0.10", "release": "9.0", "repoid": "deb1ca707ec72a89"}
NODE_CPUS = 16
NODE_MEM = 64 * GIB


@route("GET", "/version")
def version(sim: Sim, req: Request):
    return dict(PVE_VERSION)


@route("GET", "/access/ticket")
def ticket_get(sim: Sim, req: Request):
    return None


@route("POST", "/access/ticket")
def ticket_create(sim: Sim, req: Request):
    username = req.params["username"]
    if "@" not in username and req.params.get("realm"):
        username = f"{username}@{req.params['realm']}"
    auth = req.extra["auth"]
    if not auth.check_password(username, req.params["password"]):
        raise ApiError(401, "authentication failure")
    ticket = auth.create_ticket(username)
    req.extra["set_cookie"] = ticket
    return {
        "username": username,
        "ticket": ticket,
        "CSRFPreventionToken": auth.create_csrf_token(username),
        "cap": {"vms": {}, "storage": {}, "access": {}, "nodes": {}, "dc": {}, "sdn": {}, "mapping": {}},
    }


def _node_entry(sim: Sim, node: str) -> dict:
    return {
        "node": node, "status": "online", "type": "node", "id": f"node/{node}",
        "maxcpu": NODE_CPUS, "cpu": 0.02, "maxmem": NODE_MEM, "mem": 4 * GIB,
        "maxdisk": 100 * GIB, "disk": 10 * GIB, "uptime": int(time.time() - sim.started), "level": "",
        "ssl_fingerprint": "00:" * 31 + "00",
    }


@route("GET", "/nodes")
def nodes(sim: Sim, req: Request):
    return [_node_entry(sim, node) for node in sim.nodes]


@route("GET", "/nodes/{node}")
def node_index(sim: Sim, req: Request):
    return [{"name": n} for n in ("lxc", "qemu", "status", "storage", "tasks", "version")]


@route("GET", "/nodes/{node}/version")
def node_version(sim: Sim, req: Request):
    return dict(PVE_VERSION)


@route("GET", "/nodes/{node}/status")
def node_status(sim: Sim, req: Request):
    return {
        "uptime": int(time.time() - sim.started),
        "cpu": 0.02,
        "wait": 0,
        "loadavg": ["0.10", "0.12", "0.09"],
        "kversion": "Linux 6.14.11-2-pve #1 SMP PREEMPT_DYNAMIC PMX 6.14.11-2 (2025-09-12T09:46Z)",
        "pveversion": f"pve-manager/{PVE_VERSION['version']}/{PVE_VERSION['repoid']}",
        "cpuinfo": {"cpus": NODE_CPUS, "cores": 8, "sockets": 1, "model": "pvesim virtual CPU", "mhz": "3000.000",
                    "hvm": "1", "flags": "", "user_hz": 100},
        "memory": {"total": NODE_MEM, "used": 4 * GIB, "free": NODE_MEM - 4 * GIB, "available": NODE_MEM - 4 * GIB},
        "swap": {"total": 8 * GIB, "used": 0, "free": 8 * GIB},
        "rootfs": {"total": 100 * GIB, "used": 10 * GIB, "free": 90 * GIB, "avail": 90 * GIB},
        "ksm": {"shared": 0},
        "boot-info": {"mode": "efi", "secureboot": 0},
        "current-kernel": {"sysname": "Linux", "release": "6.14.11-2-pve", "machine": "x86_64",
                           "version": "#1 SMP PREEMPT_DYNAMIC PMX 6.14.11-2"},
    }


@route("GET", "/nodes/{node}/storage")
def storage_list(sim: Sim, req: Request):
    wanted = set(split_list(req.params.get("content")))
    result = []
    for storage in sim.storages:
        if req.params.get("storage") and req.params["storage"] != storage:
            continue
        status = sim.storage_status(storage)
        if wanted and not wanted & set(status["content"].split(",")):
            continue
        result.append(status)
    return result


@route("GET", "/nodes/{node}/storage/{storage}")
def storage_index(sim: Sim, req: Request):
    sim.storage(req.params["storage"])
    return [{"subdir": s} for s in ("content", "status")]


@route("GET", "/nodes/{node}/storage/{storage}/status")
def storage_status(sim: Sim, req: Request):
    return sim.storage_status(req.params["storage"])


@route("GET", "/nodes/{node}/storage/{storage}/content")
def storage_content(sim: Sim, req: Request):
    storage = req.params["storage"]
    sim.storage(storage)
    content = req.params.get("content")
    vmid = req.params.get("vmid")
    result = []
    for volume in sim.storage_volumes(storage):
        if content and volume["content"] != content:
            continue
        if vmid is not None and volume.get("vmid") != int(vmid):
            continue
        result.append(dict(volume))
    return result


@route("GET", "/nodes/{node}/storage/{storage}/content/{volume}")
def storage_volume(sim: Sim, req: Request):
    storage = req.params["storage"]
    volume = req.params["volume"]
    volid = volume if ":" in volume else f"{storage}:{volume}"
    for item in sim.storage_volumes(storage, internal=True):
        if item["volid"] == volid:
            from .images import volid_path

            # pve-storage API2/Storage/Content.pm info: size is the image's virtual size (qemu-img), used the file's
            return {"path": volid_path(sim, volid), "size": item.get("virtual_size", item["size"]),
                    "used": item["size"], "format": item["format"]}
    fail(f"volume '{volid}' does not exist")


# -- tasks -----------------------------------------------------------------------------


def _task(sim: Sim, req: Request):
    upid = req.params["upid"]
    task = sim.tasks.get(upid)
    # pve-manager PVE/API2/Tasks.pm read_task_status/read_task_log: the task file is looked for on the node in
    # the path (proxyto node), so another node's UPID is no task there
    if task is None or task.node != sim.node:
        fail(f"no such task '{upid}'" if upid.startswith("UPID:") else f"unable to parse worker upid '{upid}'")
    return task


@route("GET", "/nodes/{node}/tasks")
def task_list(sim: Sim, req: Request):
    vmid = req.params.get("vmid")
    typefilter = req.params.get("typefilter")
    userfilter = req.params.get("userfilter")
    source = req.params.get("source", "archive")
    errors_only = req.flag("errors")
    start = req.int("start", 0)
    limit = req.int("limit", 50)
    result = []
    for task in sim.tasks.list():
        if task.node != sim.node:
            continue
        if vmid is not None and task.id != str(vmid):
            continue
        if typefilter and typefilter not in task.type:
            continue
        if userfilter and userfilter not in task.user:
            continue
        if source == "active" and task.status != "running":
            continue
        if source == "archive" and task.status == "running":
            continue
        if errors_only and task.exitstatus == "OK":
            continue
        info = task.info()
        if info.get("exitstatus") is not None:
            info["status"] = info.pop("exitstatus")
        else:
            info.pop("status", None)
        result.append(info)
    return result[start: start + limit] if limit else result[start:]


@route("GET", "/nodes/{node}/tasks/{upid}")
def task_index(sim: Sim, req: Request):
    _task(sim, req)
    return [{"name": "log"}, {"name": "status"}]


@route("GET", "/nodes/{node}/tasks/{upid}/status")
def task_status(sim: Sim, req: Request):
    return _task(sim, req).info()


@route("GET", "/nodes/{node}/tasks/{upid}/log")
def task_log(sim: Sim, req: Request):
    task = _task(sim, req)
    start = req.int("start", 0)
    limit = req.int("limit", 50)
    lines = list(task.log) if task.status != "running" else list(task.log)
    if not lines:
        lines = ["no content"]
    selected = lines[start: start + limit] if limit else lines[start:]
    return [{"n": start + i + 1, "t": text} for i, text in enumerate(selected)]


@route("DELETE", "/nodes/{node}/tasks/{upid}")
def task_stop(sim: Sim, req: Request):
    _task(sim, req)
    return None


# -- cluster ---------------------------------------------------------------------------


@route("GET", "/cluster/resources")
def cluster_resources(sim: Sim, req: Request):
    from .guests.power import _status

    # pve-manager PVE/API2/Cluster.pm resources: every guest of the cluster's vmlist with the node that holds it,
    # every node, and each storage once per node it is available on (a shared one too, with `shared` 1)
    wanted = req.params.get("type")
    result = []
    if wanted in (None, "vm"):
        for kind, vmid, name in sim.cluster_guests():
            conf = sim.load_conf(kind, vmid, missing_ok=True, node=name)
            if conf is None:
                continue
            if sim.status_unknown(vmid):
                # pve-manager PVE/API2Tools.pm extract_vm_stats: no RRD data from pvestatd yet, so only the
                # guest's identity and status 'unknown' (Cluster.pm resources adds lock and tags from the config)
                item = {"id": f"{kind}/{vmid}", "vmid": vmid, "node": name, "type": kind, "status": "unknown"}
                item.update({k: conf.options[k] for k in ("lock", "tags") if conf.options.get(k)})
                result.append(item)
                continue
            with sim.on_node(name):
                item = _status(sim, kind, vmid, conf, brief=True)
            item.update({"id": f"{kind}/{vmid}", "node": name, "maxcpu": item.pop("cpus")})
            item.setdefault("template", 0)
            item.pop("maxswap", None)
            item.pop("swap", None)
            result.append(item)
    if wanted in (None, "node"):
        for name in sim.nodes:
            node = _node_entry(sim, name)
            node.pop("ssl_fingerprint")
            node["cgroup-mode"] = 2
            result.append(node)
    if wanted in (None, "storage"):
        for name in sim.nodes:
            with sim.on_node(name):
                for storage in sim.storages:
                    status = sim.storage_status(storage)
                    result.append({
                        "id": f"storage/{name}/{storage}", "type": "storage", "storage": storage, "node": name,
                        "status": "available", "plugintype": status["type"], "content": status["content"],
                        "shared": status["shared"], "maxdisk": status["total"], "disk": status["used"],
                    })
    return result


@route("GET", "/cluster/status")
def cluster_status(sim: Sim, req: Request):
    # pve-manager PVE/API2/Cluster.pm get_status: a `cluster` entry only when the nodes form a
    # corosync cluster (a lone node lists only itself), then one `node` entry per member; `local` marks the
    # node that answered (the first node here: pvesim is reached through it)
    result = []
    if len(sim.nodes) > 1:
        result.append({"type": "cluster", "id": "cluster", "name": "pvesim", "nodes": len(sim.nodes),
                       "quorate": 1, "version": len(sim.nodes)})
    for index, name in enumerate(sim.nodes, start=1):
        result.append({"type": "node", "id": f"node/{name}", "name": name, "nodeid": index if len(sim.nodes) > 1
                       else 0, "ip": f"127.0.0.{index}", "online": 1, "local": int(name == sim.local_node),
                       "level": ""})
    return result


@route("GET", "/cluster/nextid")
def nextid(sim: Sim, req: Request):
    vmid = req.params.get("vmid")
    if vmid is not None:
        if sim.guest_kind(int(vmid)) is None:
            return str(vmid)
        raise ApiError(400, "Parameter verification failed.", {"vmid": f"VM {vmid} already exists"})
    used = {vmid for _kind, vmid in sim.all_guests()}  # the whole cluster's
    candidate = 100
    while candidate in used:
        candidate += 1
    return str(candidate)


@route("GET", "/cluster")
def cluster_index(sim: Sim, req: Request):
    return [{"name": n} for n in ("firewall", "nextid", "resources", "status")]


# -- pools: none exist (pvesim has no pool support; the inventory plugins list them) ----


@route("GET", "/pools")
def pools_index(sim: Sim, req: Request):
    poolid = req.params.get("poolid")
    if poolid is not None:
        fail(f"pool '{poolid}' does not exist")
    return []


@route("GET", "/pools/{poolid}")
def pool_get(sim: Sim, req: Request):
    fail(f"pool '{req.params['poolid']}' does not exist")
