"""Control fault warn_task: the next matching task ends with `WARNINGS: n`, as PVE's tasks do when they warned."""

from __future__ import annotations

from pvesim_testlib import TEMPLATE


def test_warn_task_ends_the_task_with_warnings(api, control, make_ct):
    make_ct(640)
    warnings = ["unable to apply cgroup limit", "fstrim skipped"]
    control.set_faults(warn_task={"vmid": 640, "type": "start", "warnings": warnings, "times": 1})
    status = api.run("POST", "/nodes/pve/lxc/640/status/start")
    assert status["status"] == "stopped"
    assert status["exitstatus"] == "WARNINGS: 2"
    log = [line["t"] for line in api.data("GET", f"/nodes/pve/tasks/{status['upid']}/log")]
    assert log[-3:] == ["WARN: unable to apply cgroup limit", "WARN: fstrim skipped", "TASK WARNINGS: 2"]
    # the task did its work: the container runs
    assert api.data("GET", "/nodes/pve/lxc/640/status/current")["status"] == "running"
    # used up after `times`; the task list shows the status like PVE (and errors=1 still lists it)
    assert control.faults()["warn_task"] == []
    listed = {t["upid"]: t for t in api.data("GET", "/nodes/pve/tasks", vmid=640, errors=1)}
    assert listed[status["upid"]]["status"] == "WARNINGS: 2"
    assert api.run("POST", "/nodes/pve/lxc/640/status/stop")["exitstatus"] == "OK"


def test_warn_task_with_a_count_and_a_task_type_suffix(api, control):
    control.set_faults(warn_task={"vmid": 641, "type": "create", "warnings": 1})
    status = api.run("POST", "/nodes/pve/lxc", vmid=641, ostemplate=TEMPLATE, rootfs="local-lvm:4")
    assert status["type"] == "vzcreate"
    assert status["exitstatus"] == "WARNINGS: 1"
    log = [line["t"] for line in api.data("GET", f"/nodes/pve/tasks/{status['upid']}/log")]
    assert log[-2:] == ["WARN: simulated warning 1", "TASK WARNINGS: 1"]
    # created all the same: the config exists and is unlocked
    assert "lock" not in api.data("GET", "/nodes/pve/lxc/641/config")


def test_a_failing_task_is_not_turned_into_warnings(api, control, make_ct):
    make_ct(642)
    control.set_faults(warn_task={"vmid": 642, "warnings": 1}, fail_task={"vmid": 642, "message": "boom"})
    status = api.run("POST", "/nodes/pve/lxc/642/status/start")
    assert status["exitstatus"] == "boom"
