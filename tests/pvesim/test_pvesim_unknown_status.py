"""/cluster/resources lists a guest pvestatd has not reported yet with status `unknown` and only its identity."""

from __future__ import annotations

import time

from pvesim_testlib import TEMPLATE, TOKEN_ID, TOKEN_SECRET, Api

from pvesim.server import start_server


def _entry(api, vmid):
    return next(r for r in api.data("GET", "/cluster/resources", type="vm") if r["vmid"] == vmid)


def test_unknown_status_fault_hides_the_statistics(api, control, make_ct):
    make_ct(670, tags="web")
    api.run("POST", "/nodes/pve/lxc/670/status/start")
    control.set_faults(unknown_status={"vmid": 670})
    assert _entry(api, 670) == {"id": "lxc/670", "vmid": 670, "node": "pve", "type": "lxc", "status": "unknown",
                                "tags": "web"}
    # status/current still answers (it reads the guest itself)
    assert api.data("GET", "/nodes/pve/lxc/670/status/current")["status"] == "running"
    control.clear_faults()
    assert _entry(api, 670)["status"] == "running"


def test_unknown_status_fault_for_some_seconds(api, control, make_ct):
    make_ct(671)
    control.set_faults(unknown_status={"vmid": 671, "seconds": 0.3})
    assert _entry(api, 671)["status"] == "unknown"
    time.sleep(0.4)
    assert _entry(api, 671)["status"] == "stopped"


def test_status_delay_after_creation(tmp_path):
    srv = start_server(state_dir=tmp_path, tokens=[f"{TOKEN_ID}={TOKEN_SECRET}"], task_seconds=0.05,
                       status_delay=0.6)
    try:
        api = Api(srv.api_url, srv.ca_file, {"Authorization": f"PVEAPIToken={TOKEN_ID}={TOKEN_SECRET}"})
        api.run("POST", "/nodes/pve/lxc", vmid=672, ostemplate=TEMPLATE, rootfs="local-lvm:4")
        assert _entry(api, 672)["status"] == "unknown"
        time.sleep(0.7)
        assert _entry(api, 672)["status"] == "stopped"
    finally:
        srv.stop()
