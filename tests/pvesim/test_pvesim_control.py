"""The control interface: request log, faults, state."""

import time

from pvesim_testlib import TEMPLATE


def test_request_log_masks_secrets(api, control):
    control.clear_requests()
    api.post("/nodes/pve/lxc", vmid=860, ostemplate=TEMPLATE, rootfs="local-lvm:2", password="topsecret1")
    api.get("/version")
    log = control.requests()
    assert [(e["method"], e["path"]) for e in log] == [("POST", "/nodes/pve/lxc"), ("GET", "/version")]
    assert log[0]["params"]["password"] == "********" and log[0]["status"] == 200
    assert log[0]["user"] == "root@pam!phoenix" and log[0]["template"] == "/nodes/{node}/lxc"
    assert control.requests(method="GET") == log[1:]


def test_latency_and_error_rate(api, control):
    control.set_faults(latency_ms=150)
    started = time.monotonic()
    api.get("/version")
    assert time.monotonic() - started >= 0.15
    control.set_faults(latency_ms=0, error_rate=1.0, error_status=503)
    response = api.get("/version")
    assert response.status_code == 503 and response.json()["message"] == "simulated failure\n"
    control.clear_faults()
    assert api.get("/version").status_code == 200


def test_lock_fault(api, control, make_ct):
    vmid = make_ct(861)
    control.set_faults(lock={"vmid": vmid, "reason": "backup"})
    response = api.put(f"/nodes/pve/lxc/{vmid}/config", memory=1024)
    assert response.json()["message"] == "CT is locked (backup)\n"
    control.clear_faults()
    assert api.put(f"/nodes/pve/lxc/{vmid}/config", memory=1024).status_code == 200


def test_state_summary(control, make_ct):
    make_ct(862)
    state = control.state()
    assert state["node"] == "pve" and state["backend"] == "memory" and state["strict"] is True
    guest = next(g for g in state["guests"] if g["vmid"] == 862)
    assert guest["type"] == "lxc" and guest["status"] == "stopped" and guest["conf"].endswith("/lxc/862.conf")


def test_control_is_off_by_default(tmp_path):
    from pvesim.server import start_server

    srv = start_server(tmp_path, tls=False)
    try:
        import urllib.error
        import urllib.request

        try:
            urllib.request.urlopen(srv.url + "/_sim/state", timeout=5)
            raise AssertionError("control interface answered")
        except urllib.error.HTTPError as exc:
            assert exc.code == 404
    finally:
        srv.stop()
