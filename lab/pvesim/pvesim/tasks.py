"""Asynchronous tasks with PVE UPIDs, status and log."""

from __future__ import annotations

import itertools
import os
import threading
import time
from dataclasses import dataclass, field

__all__ = ["Task", "TaskManager", "make_upid", "parse_upid", "CONTEXT", "current_node"]

_counter = itertools.count(1)

# the node a request or task runs on (a cluster's API call is handled by the node in its path, and so are its
# tasks); unset outside requests and tasks
CONTEXT = threading.local()


def current_node(default: str) -> str:
    return getattr(CONTEXT, "node", None) or default


def make_upid(node: str, task_type: str, task_id: str, user: str, starttime: int | None = None) -> tuple[str, dict]:
    starttime = int(starttime or time.time())
    pid = (os.getpid() * 64 + next(_counter)) & 0xFFFFFFFF
    pstart = int(time.monotonic() * 100) & 0xFFFFFFFF
    upid = f"UPID:{node}:{pid:08X}:{pstart:08X}:{starttime:08X}:{task_type}:{task_id}:{user}:"
    return upid, {"pid": pid, "pstart": pstart, "starttime": starttime}


def parse_upid(upid: str) -> dict | None:
    parts = upid.split(":")
    if len(parts) < 9 or parts[0] != "UPID":
        return None
    try:
        return {
            "node": parts[1],
            "pid": int(parts[2], 16),
            "pstart": int(parts[3], 16),
            "starttime": int(parts[4], 16),
            "type": parts[5],
            "id": parts[6],
            "user": ":".join(parts[7:-1]),
        }
    except ValueError:
        return None


@dataclass
class Task:
    upid: str
    node: str
    type: str
    id: str
    user: str
    pid: int
    pstart: int
    starttime: int
    vmids: tuple[int, ...] = ()
    flock: bool = False  # holds the guest's file lock (start/stop/resize): other writes wait
    status: str = "running"
    exitstatus: str | None = None
    endtime: int | None = None
    log: list[str] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event, repr=False)

    def info(self) -> dict:
        data = {
            "upid": self.upid, "node": self.node, "pid": self.pid, "pstart": self.pstart,
            "starttime": self.starttime, "type": self.type, "id": self.id, "user": self.user,
        }
        if self.status == "running":
            data["status"] = "running"
        else:
            data["status"] = "stopped"
            data["exitstatus"] = self.exitstatus
            data["endtime"] = self.endtime
        return data

    def to_json(self) -> dict:
        return {**self.info(), "log": self.log, "vmids": list(self.vmids)}

    @classmethod
    def from_json(cls, data: dict) -> Task:
        task = cls(
            upid=data["upid"], node=data["node"], type=data["type"], id=data["id"], user=data["user"],
            pid=data["pid"], pstart=data["pstart"], starttime=data["starttime"], vmids=tuple(data.get("vmids") or ()),
            status="stopped", exitstatus=data.get("exitstatus") or "unexpected status", endtime=data.get("endtime"),
            log=list(data.get("log") or []),
        )
        task.done.set()
        return task


class TaskManager:
    """Runs task bodies in threads after `duration` seconds; keeps the last `keep` tasks."""

    def __init__(self, node: str, duration: float, on_change=None, keep: int = 500):
        self.node = node
        self.duration = duration
        self.on_change = on_change or (lambda: None)
        self.keep = keep
        self.tasks: dict[str, Task] = {}
        self._lock = threading.Lock()
        self.fail_hook = None  # callable(task) -> error message or None
        self.warn_hook = None  # callable(task) -> warning texts (the task ends with WARNINGS: n) or None

    def load(self, items: list[dict]):
        for item in items:
            task = Task.from_json(item)
            self.tasks[task.upid] = task

    def dump(self) -> list[dict]:
        with self._lock:
            return [t.to_json() for t in self.tasks.values()]

    def get(self, upid: str) -> Task | None:
        return self.tasks.get(upid)

    def list(self) -> list[Task]:
        with self._lock:
            return sorted(self.tasks.values(), key=lambda t: (t.starttime, t.pid), reverse=True)

    def running_for(self, vmid: int) -> list[Task]:
        return [t for t in self.tasks.values() if t.status == "running" and vmid in t.vmids]

    def start(self, task_type: str, task_id, user: str, body, on_error=None, vmids=(), duration=None) -> Task:
        """Create a task; after `duration` run `body(task)` in a thread.

        `body` may append to task.log and raises to fail the task; `on_error(task, message)`
        then cleans up. Returns the task (running).
        """
        node = current_node(self.node)
        upid, meta = make_upid(node, task_type, str(task_id), user)
        task = Task(upid=upid, node=node, type=task_type, id=str(task_id), user=user, vmids=tuple(vmids), **meta)
        with self._lock:
            self.tasks[upid] = task
            if len(self.tasks) > self.keep:
                for old in sorted(self.tasks.values(), key=lambda t: t.starttime)[: len(self.tasks) - self.keep]:
                    if old.status != "running":
                        del self.tasks[old.upid]
        delay = self.duration if duration is None else duration
        thread = threading.Thread(
            target=self._run, args=(task, body, on_error, delay), name=f"task-{task_type}", daemon=True
        )
        thread.start()
        return task

    def _run(self, task: Task, body, on_error, delay: float):
        CONTEXT.node = task.node
        if delay > 0:
            time.sleep(delay)
        error = None
        warnings = []
        try:
            injected = self.fail_hook(task) if self.fail_hook else None
            if injected:
                raise RuntimeError(injected)
            body(task)
            warnings = (self.warn_hook(task) if self.warn_hook else None) or []
        except Exception as exc:  # the task's failure, reported as its exitstatus
            error = str(exc).strip() or exc.__class__.__name__
            if on_error is not None:
                try:
                    on_error(task, error)
                except Exception as cleanup_exc:  # noqa: BLE001 - logged into the task
                    task.log.append(f"cleanup failed: {cleanup_exc}")
        if error is None and warnings:
            # pve-common RESTEnvironment.pm warn() logs "WARN: ..." and counts; fork_worker ends the log with
            # "TASK WARNINGS: n", which UPID.pm read_status reads back as the exit status "WARNINGS: n"
            task.log.extend(f"WARN: {text}" for text in warnings)
            task.log.append(f"TASK WARNINGS: {len(warnings)}")
            task.exitstatus = f"WARNINGS: {len(warnings)}"
        elif error is None:
            task.log.append("TASK OK")
            task.exitstatus = "OK"
        else:
            task.log.append(f"TASK ERROR: {error}")
            task.exitstatus = error
        task.endtime = int(time.time())
        task.status = "stopped"
        task.done.set()
        self.on_change()
