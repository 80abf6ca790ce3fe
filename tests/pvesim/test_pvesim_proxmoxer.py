"""proxmoxer end to end against pvesim, verifying TLS with the simulator's CA file."""

import os
from urllib.parse import urlsplit

import pytest
from pvesim_testlib import PASSWORD, TEMPLATE, TOKEN_ID, TOKEN_SECRET

proxmoxer = pytest.importorskip("proxmoxer")


@pytest.fixture
def ca_env(monkeypatch):
    # proxmoxer passes verify_ssl with every request, so a CA path wins over REQUESTS_CA_BUNDLE
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/ca-bundle.crt")


def _client(server, **auth):
    url = urlsplit(server.url)
    return proxmoxer.ProxmoxAPI(url.hostname, port=url.port, verify_ssl=server.ca_file, timeout=30, **auth)


def test_token_auth_end_to_end(server, ca_env):
    user, token_name = TOKEN_ID.split("!")
    pve = _client(server, user=user, token_name=token_name, token_value=TOKEN_SECRET)
    assert pve.version.get()["release"].startswith("9.")
    upid = pve.nodes("pve").lxc.post(vmid=870, ostemplate=TEMPLATE, hostname="via-proxmoxer", rootfs="local-lvm:4",
                                     net0="name=eth0,bridge=vmbr0,ip=dhcp")
    from proxmoxer.tools import Tasks

    status = Tasks.blocking_status(pve, upid, timeout=10, polling_interval=0.05)
    assert status["exitstatus"] == "OK"
    assert pve.nodes("pve").lxc(870).config.get()["hostname"] == "via-proxmoxer"
    with pytest.raises(proxmoxer.core.ResourceException) as err:
        pve.nodes("pve").lxc(870).config.put(net0="name=eth0,brige=vmbr0")
    assert err.value.status_code == 400 and "net0" in err.value.errors


def test_password_auth_end_to_end(server, ca_env):
    pve = _client(server, user="root@pam", password=PASSWORD)
    assert [n["node"] for n in pve.nodes.get()] == ["pve"]
    pve.cluster.firewall.aliases.post(name="proxmoxer", cidr="192.0.2.1")
    pve.cluster.firewall.aliases("proxmoxer").delete()


def test_wrong_ca_is_refused(server, tmp_path, ca_env):
    from pvesim.tls import ensure_tls

    other = ensure_tls(tmp_path / "other")["ca_file"]
    url = urlsplit(server.url)
    pve = proxmoxer.ProxmoxAPI(url.hostname, port=url.port, verify_ssl=other, user="root@pam",
                               token_name="phoenix", token_value=TOKEN_SECRET, timeout=5)
    with pytest.raises(Exception) as err:
        pve.version.get()
    assert "CERTIFICATE_VERIFY_FAILED" in str(err.value) or "SSL" in type(err.value).__name__
    assert os.path.isfile(server.ca_file)
