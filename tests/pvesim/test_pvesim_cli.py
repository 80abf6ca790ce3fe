"""`python -m pvesim` and the vendored schema subset."""

import os
import re
import subprocess
import sys

import pytest
import requests
from pvesim_testlib import PVESIM, REPO

SHARED_APIDOC = os.path.join(REPO, "..", "shared", "pve", "apidoc.json")


def test_cli_serves_with_generated_ca(tmp_path):
    env = dict(os.environ, PYTHONPATH=PVESIM)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pvesim", "--listen", "127.0.0.1:0", "--state-dir", str(tmp_path / "state"),
         "--tls-dir", str(tmp_path / "tls"), "--token", "root@pam!ci=abc", "--task-seconds", "0"],
        env=env, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = proc.stderr.readline()
        match = re.search(r"listening on (https://\S+) ", line)
        assert match, line
        session = requests.Session()
        session.trust_env = False
        response = session.get(match.group(1) + "/api2/json/nodes", verify=str(tmp_path / "tls" / "ca.pem"),
                               headers={"Authorization": "PVEAPIToken=root@pam!ci=abc"}, timeout=10)
        assert response.status_code == 200 and response.json()["data"][0]["node"] == "pve"
        ca = str(tmp_path / "tls" / "ca.pem")
        assert session.get(match.group(1) + "/_sim/state", verify=ca, timeout=10).status_code == 404
    finally:
        proc.terminate()
        proc.wait(10)
    assert proc.returncode == 0


def test_bad_token_spec_is_a_usage_error(tmp_path):
    env = dict(os.environ, PYTHONPATH=PVESIM)
    result = subprocess.run([sys.executable, "-m", "pvesim", "--state-dir", str(tmp_path), "--token", "nope"],
                            env=env, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2 and "token must look like" in result.stderr


def test_subset_validates_like_the_full_schema():
    from pvesim.schema import SUBSET_PATH, ApiSchema, ParamError, validate_params

    subset = ApiSchema.load(SUBSET_PATH)
    params = subset.parameters("/nodes/{node}/lxc", "POST")
    with pytest.raises(ParamError) as err:
        validate_params({"node": "pve", "vmid": "801", "ostemplate": "x", "net0": "name=eth0,brige=vmbr0"}, params)
    assert "brige" in err.value.errors["net0"]
    assert os.path.getsize(SUBSET_PATH) < 150 * 1024


@pytest.mark.skipif(not os.path.isfile(SHARED_APIDOC), reason="no ../shared/pve/apidoc.json")
def test_vendored_subset_is_up_to_date():
    command = [sys.executable, os.path.join(REPO, "scripts", "vendor_pve_schema.py"), "--check",
               "--apidoc", SHARED_APIDOC]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr


def test_cli_node_repeated_makes_a_cluster(tmp_path):
    env = dict(os.environ, PYTHONPATH=PVESIM)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pvesim", "--listen", "127.0.0.1:0", "--state-dir", str(tmp_path / "state"),
         "--token", "root@pam!ci=abc", "--node", "a", "--node", "b"],
        env=env, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = proc.stderr.readline()
        match = re.search(r"listening on (https://\S+) \(nodes a b,", line)
        assert match, line
        session = requests.Session()
        session.trust_env = False
        response = session.get(match.group(1) + "/api2/json/cluster/status",
                               verify=str(tmp_path / "state" / "tls" / "ca.pem"),
                               headers={"Authorization": "PVEAPIToken=root@pam!ci=abc"}, timeout=10)
        assert [(s["type"], s["name"]) for s in response.json()["data"]] == [
            ("cluster", "pvesim"), ("node", "a"), ("node", "b")]
    finally:
        proc.terminate()
        proc.wait(10)
    assert proc.returncode == 0
