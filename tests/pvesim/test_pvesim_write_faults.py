"""Clone locks and refusals, and the control fault "596 after the write ran"."""

import pytest
from pvesim_testlib import PASSWORD, TEMPLATE, Api


def test_second_clone_of_a_ct_gets_the_disk_lock(api, make_ct, server):
    vmid = make_ct(610)
    server.sim.tasks.duration = 0.5            # keep the first clone running while the second one comes
    try:
        first = api.data("POST", f"/nodes/pve/lxc/{vmid}/clone", newid=611)
        assert api.data("GET", f"/nodes/pve/lxc/{vmid}/config")["lock"] == "disk"
        response = api.post(f"/nodes/pve/lxc/{vmid}/clone", newid=612)
        assert (response.status_code, response.json()["message"]) == (500, "CT is locked (disk)\n")
        assert api.wait(first)["exitstatus"] == "OK"
    finally:
        server.sim.tasks.duration = 0.1
    assert "lock" not in api.data("GET", f"/nodes/pve/lxc/{vmid}/config")
    assert api.get("/nodes/pve/lxc/612/config").status_code == 500
    assert api.run("POST", f"/nodes/pve/lxc/{vmid}/clone", newid=612)["exitstatus"] == "OK"


def test_template_source_is_locked_too(api, make_ct, server):
    vmid = make_ct(613)
    api.post(f"/nodes/pve/lxc/{vmid}/template")
    api.wait_template("lxc", vmid)
    server.sim.tasks.duration = 0.5
    try:
        first = api.data("POST", f"/nodes/pve/lxc/{vmid}/clone", newid=614)
        response = api.post(f"/nodes/pve/lxc/{vmid}/clone", newid=615)
        assert response.json()["message"] == "CT is locked (disk)\n"
        assert api.wait(first)["exitstatus"] == "OK"
    finally:
        server.sim.tasks.duration = 0.1


def test_clone_of_a_bind_mount_refused(api, anon, server, make_ct):
    data = anon.data("POST", "/access/ticket", username="root@pam", password=PASSWORD)
    root = Api(server.api_url, server.ca_file, {"CSRFPreventionToken": data["CSRFPreventionToken"]})
    root.session.cookies.set("PVEAuthCookie", data["ticket"])
    api.wait(root.data("POST", "/nodes/pve/lxc", vmid=616, ostemplate=TEMPLATE, rootfs="local-lvm:2",
                       mp0="/srv/shared,mp=/shared"))
    response = api.post("/nodes/pve/lxc/616/clone", newid=617)
    assert (response.status_code, response.json()["message"]) == (500, "unable to clone mountpoint 'mp0' (type bind)\n")
    assert api.get("/nodes/pve/lxc/617/config").status_code == 500
    assert "lock" not in api.data("GET", "/nodes/pve/lxc/616/config")


def test_596_after_the_write_ran(api, control):
    control.set_faults(after_write={"method": "POST", "path": "/nodes/pve/lxc"})
    assert control.faults()["after_write"] == [{"method": "POST", "path": "/nodes/pve/lxc", "times": 1}]
    control.clear_requests()
    response = api.post("/nodes/pve/lxc", vmid=618, ostemplate=TEMPLATE, rootfs="local-lvm:2")
    assert (response.status_code, response.reason, response.text) == (596, "Connection timed out", "")
    log = control.requests(method="POST")
    assert [(e["path"], e["status"], e.get("fault")) for e in log] == [("/nodes/pve/lxc", 596, "after_write")]
    # the create ran: the guest exists (locked while its task runs) and its task is listed
    config = api.data("GET", "/nodes/pve/lxc/618/config")
    tasks = api.data("GET", "/nodes/pve/tasks", vmid=618, typefilter="vzcreate", source="all")
    assert len(tasks) == 1 and config["lock"] == "create"
    api.wait(tasks[0]["upid"])
    # used up: the same write again gets PVE's own answer
    response = api.post("/nodes/pve/lxc", vmid=618, ostemplate=TEMPLATE, rootfs="local-lvm:2")
    assert response.json()["message"] == "CT 618 already exists on node 'pve'\n"
    assert control.faults()["after_write"] == []


@pytest.mark.parametrize("spec", [{"path": r"/nodes/pve/lxc/\d+/config", "times": 2}])
def test_596_after_write_path_pattern_and_times(api, control, make_ct, spec):
    make_ct(619)
    control.set_faults(after_write=spec)
    assert api.get("/nodes/pve/lxc/619/config").status_code == 200          # reads are never hit
    for memory in (700, 800):
        assert api.put("/nodes/pve/lxc/619/config", memory=memory).status_code == 596
        assert api.data("GET", "/nodes/pve/lxc/619/config")["memory"] == memory   # yet it was written
    assert api.put("/nodes/pve/lxc/619/config", memory=900).status_code == 200
    control.set_faults(after_write={"path": "/nodes/pve/lxc/619/config"})
    control.clear_faults()
    assert control.faults()["after_write"] == []
