"""`GET /access/permissions`: root@pam holds every privilege, a token without an ACL its user's, a token with one
(privilege-separated) its own within its user's; paths, propagation and asking about others as PVE does."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from pvesim_testlib import PASSWORD, PVESIM, TOKEN_ID, TOKEN_SECRET, Api

from pvesim.access import ALL_PRIVILEGES, Acl, parse_acl_spec
from pvesim.server import start_server

SMALL = "phoenix@pve!small"
USER_TOKEN = "phoenix@pve!ansible"


@pytest.fixture(scope="module")
def acl_server(tmp_path_factory):
    srv = start_server(
        state_dir=tmp_path_factory.mktemp("pvesim-acl"),
        tokens=[f"{TOKEN_ID}={TOKEN_SECRET}", f"{SMALL}=s1", f"{USER_TOKEN}=s2", "other@pve!tk=s3"],
        passwords=[f"root@pam:{PASSWORD}", "phoenix@pve:pw"],
        acls=["phoenix@pve:/:VM.Audit,VM.Allocate,Sys.Audit,Datastore.Audit",
              "phoenix@pve:/storage/local:Datastore.AllocateSpace:0",
              f"{SMALL}:/:VM.Audit,Sys.Audit,Datastore.Allocate",
              f"{SMALL}:/vms/900:VM.Clone,VM.Audit"],
        task_seconds=0.05,
    )
    yield srv
    srv.stop()


def perms(client, **params):
    """GET /access/permissions (the test client's own `path` argument is the URL path)."""
    response = client.session.get(client.base + "/access/permissions", params=params, timeout=30)
    assert response.status_code == 200, (response.status_code, response.text)
    return response.json()["data"]


def token_api(srv, tokenid, secret):
    return Api(srv.api_url, srv.ca_file, {"Authorization": f"PVEAPIToken={tokenid}={secret}"})


def test_root_token_without_acl_holds_every_privilege(api):
    data = perms(api)
    assert set(data) == {"/", "/access", "/access/groups", "/nodes", "/pool", "/sdn", "/storage", "/vms"}
    assert data["/"] == {priv: 1 for priv in ALL_PRIVILEGES}
    assert perms(api, path="/vms/801")["/vms/801"]["VM.Allocate"] == 1


def test_root_ticket_holds_every_privilege(server, anon):
    ticket = anon.data("POST", "/access/ticket", username="root@pam", password=PASSWORD)
    root = Api(server.api_url, server.ca_file, {"Cookie": f"PVEAuthCookie={ticket['ticket']}"})
    assert perms(root, path="/")["/"] == {p: 1 for p in ALL_PRIVILEGES}


def test_privilege_separated_token_holds_its_own_within_its_user(acl_server):
    small = token_api(acl_server, SMALL, "s1")
    root_path = perms(small, path="/")["/"]
    # Datastore.Allocate is the token's but not its user's: dropped
    assert root_path == {"VM.Audit": 1, "Sys.Audit": 1}
    # a deeper entry replaces what is above; VM.Clone is the token's only there, and its user lacks it
    assert perms(small, path="/vms/900")["/vms/900"] == {"VM.Audit": 1}
    whole = perms(small)
    assert whole["/vms/900"] == {"VM.Audit": 1} and whole["/vms"] == {"VM.Audit": 1, "Sys.Audit": 1}


def test_token_without_acl_holds_its_users_privileges_and_propagation(acl_server):
    user_token = token_api(acl_server, USER_TOKEN, "s2")
    data = perms(user_token)
    assert data["/"] == {"VM.Audit": 1, "VM.Allocate": 1, "Sys.Audit": 1, "Datastore.Audit": 1}
    # an entry that does not propagate replaces the inherited ones on its own path only, flagged 0
    assert data["/storage/local"] == {"Datastore.AllocateSpace": 0}
    below = perms(user_token, path="/storage/local/x")["/storage/local/x"]
    assert below == {"VM.Audit": 1, "VM.Allocate": 1, "Sys.Audit": 1, "Datastore.Audit": 1}


def test_asking_about_others(acl_server):
    user_token = token_api(acl_server, USER_TOKEN, "s2")
    # another identity needs Sys.Audit on /access: the user has it (propagated from /), so its token has it too
    assert perms(user_token, userid=SMALL, path="/")["/"] == {"VM.Audit": 1, "Sys.Audit": 1}
    other = token_api(acl_server, "other@pve!tk", "s3")
    assert perms(other, userid="other@pve!tk", path="/")["/"]   # its own: fine
    small = token_api(acl_server, SMALL, "s1")
    assert perms(small, userid=SMALL)             # its own
    # SMALL holds Sys.Audit on /access (propagated from /), so it may ask about root@pam
    assert perms(small, userid="root@pam", path="/")["/"]["Sys.Modify"] == 1


def test_asking_about_another_without_sys_audit_is_refused(tmp_path, api):
    srv = start_server(state_dir=tmp_path, tokens=["a@pve!tk=s", "b@pve!tk=s"], acls=["a@pve!tk:/:VM.Audit"],
                       task_seconds=0.05)
    try:
        client = token_api(srv, "a@pve!tk", "s")
        response = client.session.get(client.base + "/access/permissions", timeout=30, params={"userid": "b@pve!tk"})
        assert response.status_code == 403
        assert response.json()["message"] == "Permission check failed (/access, Sys.Audit)\n"
        # unknown tokens hold nothing (root@pam's token holds Sys.Audit); a bad user ID is a parameter error
        assert perms(api, userid="root@pam!nope", path="/") == {"/": {}}
        bad = client.session.get(client.base + "/access/permissions", timeout=30, params={"userid": "no realm"})
        assert bad.status_code == 400
    finally:
        srv.stop()


def test_acl_specs():
    assert parse_acl_spec("a@pve!tk:/vms/:VM.Audit:0") == ("a@pve!tk", "/vms", frozenset({"VM.Audit"}), False)
    for bad in ("a@pve:/:VM.Nope", "nouser:/:VM.Audit", "a@pve:vms:VM.Audit", "a@pve:/:VM.Audit:2"):
        with pytest.raises(ValueError):
            parse_acl_spec(bad)
    assert Acl().permissions("x@pve", "/") == {p: 1 for p in ALL_PRIVILEGES}


def test_cli_acl_option_is_checked(tmp_path):
    env = dict(os.environ, PYTHONPATH=PVESIM)
    result = subprocess.run([sys.executable, "-m", "pvesim", "--state-dir", str(tmp_path), "--acl", "a@pve:/:Nope.X"],
                            env=env, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2 and "invalid privilege 'Nope.X'" in result.stderr
