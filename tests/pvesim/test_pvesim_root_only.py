"""Root-only container options: dev[n], bind mounts and features beyond nesting are refused to API tokens
(even root@pam's) with PVE's 403 texts, on create and on PUT config; root@pam's own ticket may set them."""

import pytest
from pvesim_testlib import PASSWORD, TEMPLATE, Api

DEV = "Permission check failed (configuring device passthrough is only allowed for root@pam)\n"
BIND = "Permission check failed (mount point type bind is only allowed for root@pam)\n"
FEATURES = "Permission check failed (changing feature flags (except nesting) is only allowed for root@pam)\n"
PRIVILEGED = "Permission check failed (changing feature flags for privileged container is only allowed for root@pam)\n"


@pytest.fixture(scope="module")
def root(server, anon) -> Api:
    """root@pam with a ticket (password login), as PVE's root-only checks want it."""
    data = anon.data("POST", "/access/ticket", username="root@pam", password=PASSWORD)
    client = Api(server.api_url, server.ca_file, {"CSRFPreventionToken": data["CSRFPreventionToken"]})
    client.session.cookies.set("PVEAuthCookie", data["ticket"])
    return client


def _create(client, vmid, **extra):
    params = {"vmid": vmid, "ostemplate": TEMPLATE, "rootfs": "local-lvm:2", "hostname": f"ct{vmid}"}
    params.update(extra)
    return client.post("/nodes/pve/lxc", **params)


@pytest.mark.parametrize("extra, message", [
    ({"dev0": "/dev/nvidia0"}, DEV),
    ({"mp0": "/srv/data,mp=/data"}, BIND),
    ({"features": "nesting=1,keyctl=1"}, FEATURES),
    ({"features": "fuse=1"}, FEATURES),
    ({"features": "nesting=1", "unprivileged": 0}, PRIVILEGED),
])
def test_token_create_refused(api, control, extra, message):
    control.clear_requests()
    response = _create(api, 601, **extra)
    assert (response.status_code, response.json()["message"]) == (403, message)
    assert response.reason == message.strip()
    assert api.get("/nodes/pve/lxc/601/config").status_code == 500  # nothing was created


def test_token_may_set_nesting_and_volume_mounts(api, control):
    status = api.wait(api.data("POST", "/nodes/pve/lxc", vmid=602, ostemplate=TEMPLATE, rootfs="local-lvm:2",
                               features="nesting=1", mp0="local-lvm:1,mp=/data"))
    assert status["exitstatus"] == "OK"
    config = api.data("GET", "/nodes/pve/lxc/602/config")
    assert config["features"] == "nesting=1" and config["mp0"].startswith("local-lvm:vm-602-disk-")


def test_root_ticket_create_and_token_put(api, root, control):
    status = api.wait(_create(root, 603, dev0="/dev/nvidia0", mp0="/srv/data,mp=/data",
                              features="nesting=1,keyctl=1").json()["data"])
    assert status["exitstatus"] == "OK" and status["user"] == "root@pam"
    config = api.data("GET", "/nodes/pve/lxc/603/config")
    assert (config["dev0"], config["mp0"], config["features"]) == ("/dev/nvidia0", "/srv/data,mp=/data",
                                                                   "nesting=1,keyctl=1")
    # a token may change other keys, re-send unchanged features and toggle nesting alone
    assert api.put("/nodes/pve/lxc/603/config", memory=1024, features="nesting=1,keyctl=1").status_code == 200
    assert api.put("/nodes/pve/lxc/603/config", features="nesting=0,keyctl=1").status_code == 200
    for params, message in (
        ({"dev1": "/dev/nvidiactl"}, DEV),
        ({"delete": "dev0"}, DEV),
        ({"mp1": "/srv/other,mp=/other"}, BIND),
        ({"features": "nesting=0"}, FEATURES),          # drops keyctl
        ({"delete": "features"}, FEATURES),
    ):
        response = api.put("/nodes/pve/lxc/603/config", **params)
        assert (response.status_code, response.json()["message"]) == (403, message), params
    # deleting a bind mount needs no root; root@pam's ticket may do the rest
    assert api.put("/nodes/pve/lxc/603/config", delete="mp0").status_code == 200
    assert root.put("/nodes/pve/lxc/603/config", dev1="/dev/nvidiactl", delete="features").status_code == 200
    config = api.data("GET", "/nodes/pve/lxc/603/config")
    assert config["dev1"] == "/dev/nvidiactl" and "features" not in config and "mp0" not in config


def test_privileged_ct_features_root_only(api, root):
    api.wait(_create(root, 604, unprivileged=0).json()["data"])
    response = api.put("/nodes/pve/lxc/604/config", features="nesting=1")
    assert (response.status_code, response.json()["message"]) == (403, PRIVILEGED)
    assert root.put("/nodes/pve/lxc/604/config", features="nesting=1").status_code == 200
