"""The server's control interface (/_sim/: request log, faults, state summary; no auth, only with --control),
a mixin of server.SimServer."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from .errors import ApiError

if TYPE_CHECKING:
    from .server import _Handler


class ControlApi:
    """SimServer's /_sim/ endpoints (SimServer provides sim)."""

    # -- control interface (/_sim/, no auth, only with --control) -------------------------

    def handle_control(self, handler: _Handler, method: str, path: str, query: str):
        sim = self.sim
        try:
            body = {}
            length = int(handler.headers.get("Content-Length") or 0)
            if length:
                body = json.loads(handler.rfile.read(length).decode("utf-8") or "{}")
            if path == "/_sim/requests" and method == "GET":
                with sim.lock:
                    data = list(sim.request_log)
            elif path == "/_sim/requests" and method == "DELETE":
                with sim.lock:
                    sim.request_log.clear()
                data = None
            elif path == "/_sim/faults" and method == "GET":
                data = sim.faults.to_json()
            elif path == "/_sim/faults" and method == "POST":
                data = self._set_faults(body)
            elif path == "/_sim/faults" and method == "DELETE":
                with sim.lock:
                    for spec in sim.faults.locks:
                        try:
                            sim.apply_lock_fault(int(spec["vmid"]), None)
                        except ApiError:
                            pass
                    sim.faults.clear()
                data = None
            elif path == "/_sim/state" and method == "GET":
                data = self.state_summary()
            else:
                handler._send_json(404, {"data": None, "message": f"no control endpoint {method} {path}"})
                return
            handler._send_json(200, {"data": data})
        except ApiError as exc:
            handler._send_error(exc)
        except (ValueError, KeyError, TypeError) as exc:
            handler._send_error(ApiError(400, f"bad control request: {exc}"))

    def _set_faults(self, body: dict) -> dict:
        sim = self.sim
        faults = sim.faults
        with sim.lock:
            if "latency_ms" in body:
                faults.latency_ms = float(body["latency_ms"] or 0)
            if "error_rate" in body:
                faults.error_rate = float(body["error_rate"] or 0)
            if "error_status" in body:
                faults.error_status = int(body["error_status"] or 500)
            if "error_message" in body:
                faults.error_message = str(body["error_message"])
            if "seed" in body:
                faults.rng.seed(body["seed"])
            fail_task = body.get("fail_task")
            if fail_task:
                faults.fail_tasks.extend(fail_task if isinstance(fail_task, list) else [fail_task])
            warn_task = body.get("warn_task")
            if warn_task:
                faults.warn_tasks.extend(warn_task if isinstance(warn_task, list) else [warn_task])
            unknown = body.get("unknown_status")
            if unknown:
                for spec in unknown if isinstance(unknown, list) else [unknown]:
                    seconds = spec.get("seconds")
                    until = None if seconds is None else time.time() + float(seconds)
                    faults.unknown_status.append({"vmid": int(spec["vmid"]), "seconds": seconds, "until": until})
            after_write = body.get("after_write")
            if after_write:
                specs = after_write if isinstance(after_write, list) else [after_write]
                faults.after_write.extend(dict(spec, times=int(spec.get("times", 1))) for spec in specs)
            lock = body.get("lock")
            if lock:
                for spec in lock if isinstance(lock, list) else [lock]:
                    sim.apply_lock_fault(int(spec["vmid"]), spec.get("reason") or "backup")
                    faults.locks.append(spec)
            return faults.to_json()

    def state_summary(self) -> dict:
        sim = self.sim
        with sim.lock:
            guests_out = []
            for kind, vmid, name in sim.cluster_guests():
                conf = sim.load_conf(kind, vmid, missing_ok=True, node=name)
                if conf is None:
                    continue
                guests_out.append({
                    "vmid": vmid, "type": kind, "node": name,
                    "status": "running" if sim.is_running(vmid) else "stopped",
                    "name": conf.options.get("hostname") or conf.options.get("name"),
                    "lock": conf.options.get("lock"), "template": conf.options.get("template") == "1",
                    "digest": conf.digest, "conf": str(sim.conf_path(kind, vmid, name)),
                })
            tasks = sim.tasks.list()
            return {
                "node": sim.local_node,
                "nodes": sim.nodes,
                "apidoc": sim.schema.source,
                "strict": sim.strict,
                "backend": sim.backend.name,
                "state_dir": str(sim.dir),
                "guests": guests_out,
                "tasks": {"total": len(tasks), "running": [t.upid for t in tasks if t.status == "running"]},
                "requests": len(sim.request_log),
                "faults": sim.faults.to_json(),
                "firewall": {"cluster_rules": len(sim.firewall.get("cluster", {}).get("rules", [])),
                             "guests": sorted(sim.firewall.get("guests", {}))},
            }
