"""Fixtures: one pvesim server (TLS, token + password auth, control interface) for the session."""

from __future__ import annotations

import http.cookiejar

import pytest
from pvesim_testlib import PASSWORD, TEMPLATE, TOKEN_ID, TOKEN_SECRET, Api

from pvesim.control import Control
from pvesim.server import start_server


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    state_dir = tmp_path_factory.mktemp("pvesim")
    srv = start_server(
        state_dir=state_dir,
        tokens=[f"{TOKEN_ID}={TOKEN_SECRET}"],
        passwords=[f"root@pam:{PASSWORD}"],
        task_seconds=0.1,
        control=True,
    )
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def api(server) -> Api:
    return Api(server.api_url, server.ca_file, {"Authorization": f"PVEAPIToken={TOKEN_ID}={TOKEN_SECRET}"})


@pytest.fixture(scope="session")
def anon(server) -> Api:
    client = Api(server.api_url, server.ca_file)
    # stays anonymous: a login through it (test_ticket_login_cookie_and_csrf, root fixtures) must not leave the
    # ticket cookie in its jar, which would authenticate every later request of whichever test comes next
    client.session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    return client


@pytest.fixture
def control(server):
    ctl = Control(server.url, ca_file=server.ca_file)
    ctl.clear_faults()
    yield ctl
    ctl.clear_faults()


@pytest.fixture
def make_ct(api):
    """Create (and wait for) an LXC container; returns its vmid."""

    def create(vmid: int, **extra) -> int:
        params = {
            "vmid": vmid, "ostemplate": TEMPLATE, "hostname": f"ct{vmid}", "memory": 512, "cores": 1,
            "rootfs": "local-lvm:8", "net0": f"name=eth0,bridge=vmbr0,ip=10.0.0.{vmid % 250}/24,gw=10.0.0.1",
        }
        params.update(extra)
        status = api.run("POST", "/nodes/pve/lxc", **params)
        assert status["exitstatus"] == "OK", status
        return vmid

    return create
