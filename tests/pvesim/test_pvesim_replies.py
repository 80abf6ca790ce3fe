"""Strict mode checks pvesim's own replies against the schema's `returns` (issue #13).

A reply that breaks the API schema is a pvesim bug: strict mode answers 500 "pvesim reply does
not match the API schema ..." and logs it to stderr, so a test against pvesim sees it. The sweep
below calls every route pvesim implements and expects each reply to pass.
"""

from __future__ import annotations

import contextlib
import http.server
import threading

import pytest
from pvesim_testlib import TEMPLATE, TOKEN_ID, TOKEN_SECRET, Api

from pvesim import routes
from pvesim.schema import SUBSET_PATH, ApiSchema, validate_reply
from pvesim.server import start_server

UPID = "UPID:pve:0000BEEF:00000001:6700AAAA:vztemplate:150:root@pam:"


def _sim_api(srv) -> Api:
    return Api(srv.api_url, srv.ca_file, {"Authorization": f"PVEAPIToken={TOKEN_ID}={TOKEN_SECRET}"})


@pytest.fixture
def own_server(tmp_path):
    """A pvesim of its own, so patched routes stay local to the test."""

    def make(**kwargs):
        srv = start_server(state_dir=tmp_path / "sim", tokens=[f"{TOKEN_ID}={TOKEN_SECRET}"], task_seconds=0.02,
                           control=True, **kwargs)
        servers.append(srv)
        return srv, _sim_api(srv)

    servers = []
    yield make
    for srv in servers:
        srv.stop()


def test_a_reply_that_breaks_returns_null_answers_500_and_is_logged(own_server, monkeypatch, capfd):
    # the bug this check would have caught: the LXC template call answering a UPID instead of null
    monkeypatch.setitem(routes.ROUTES, ("POST", "/nodes/{node}/lxc/{vmid}/template"), lambda sim, req: UPID)
    _srv, api = own_server()
    response = api.post("/nodes/pve/lxc/150/template")
    assert response.status_code == 500
    message = response.json()["message"]
    assert message.startswith("pvesim reply does not match the API schema: POST /nodes/{node}/lxc/{vmid}/template")
    assert "(reply): type check ('null') failed - value is not null" in message
    assert response.json()["errors"] == {"(reply)": "type check ('null') failed - value is not null"}
    logged = capfd.readouterr().err
    assert "pvesim reply does not match the API schema: POST /nodes/{node}/lxc/{vmid}/template" in logged


def test_a_broken_field_is_named(own_server, monkeypatch):
    def bad_status(sim, req):
        return {"upid": req.params["upid"], "node": "pve", "pid": 1, "pstart": 1, "starttime": 1, "type": "vzcreate",
                "id": "100", "user": "root@pam", "status": "finished"}

    monkeypatch.setitem(routes.ROUTES, ("GET", "/nodes/{node}/tasks/{upid}/status"), bad_status)
    _srv, api = own_server()
    response = api.get(f"/nodes/pve/tasks/{UPID}/status")
    assert response.status_code == 500
    assert response.json()["errors"] == {
        "status": "value 'finished' does not have a value in the enumeration 'running, stopped'"}
    assert "GET /nodes/{node}/tasks/{upid}/status: status: value 'finished'" in response.json()["message"]


def test_missing_required_property_and_wrong_item_type(own_server, monkeypatch):
    monkeypatch.setitem(routes.ROUTES, ("GET", "/cluster/resources"),
                        lambda sim, req: [{"type": "lxc", "vmid": 100, "status": "running", "cpu": -1}])
    _srv, api = own_server()
    response = api.get("/cluster/resources")
    assert response.status_code == 500
    assert response.json()["errors"] == {
        "[0].id": "property is missing and it is not optional", "[0].cpu": "value must have a minimum value of 0"}


def test_no_strict_passes_broken_replies_through(own_server, monkeypatch):
    monkeypatch.setitem(routes.ROUTES, ("POST", "/nodes/{node}/lxc/{vmid}/template"), lambda sim, req: UPID)
    _srv, api = own_server(strict=False)
    assert api.data("POST", "/nodes/pve/lxc/150/template") == UPID


def test_the_vendored_subset_keeps_returns():
    schema = ApiSchema.load()  # ../shared/pve/apidoc.json when present
    subset = ApiSchema.load(SUBSET_PATH)
    for template, methods in routes.implemented_paths().items():
        for method in methods:
            full = schema.method_info(template, method) or {}
            if "returns" in full:
                assert "returns" in (subset.method_info(template, method) or {}), (method, template)
    assert subset.method_info("/nodes/{node}/lxc/{vmid}/template", "POST")["returns"] == {"type": "null"}
    assert validate_reply(UPID, subset.method_info("/nodes/{node}/lxc/{vmid}/template", "POST")["returns"])


# -- every route's real reply passes ------------------------------------------------------------------------


def _sweep(api: Api) -> None:
    """Call every route pvesim implements once, with plausible parameters; each must answer 200."""
    data = api.data

    def run(method, path, **params):
        result = data(method, path, **params)
        if isinstance(result, str) and result.startswith("UPID:"):
            assert api.wait(result)["exitstatus"] == "OK", (method, path)
        return result

    data("GET", "/version")
    data("GET", "/access/ticket")
    data("GET", "/access/permissions")
    data("GET", "/nodes")
    data("GET", "/nodes/pve")
    data("GET", "/nodes/pve/version")
    data("GET", "/nodes/pve/status")
    data("GET", "/nodes/pve/storage")
    data("GET", "/nodes/pve/storage/local")
    data("GET", "/nodes/pve/storage/local/status")
    data("GET", "/nodes/pve/storage/local/content")
    data("GET", "/nodes/pve/storage/local/content/" + TEMPLATE.replace("/", "%2F"))
    data("GET", "/cluster")
    data("GET", "/cluster/nextid")
    data("GET", "/cluster/nextid", vmid=150)
    data("GET", "/cluster/status")
    data("GET", "/pools")
    data("GET", "/nodes/pve/aplinfo")
    run("POST", "/nodes/pve/aplinfo", storage="local", template="debian-13-standard_13.1-2_amd64.tar.zst")
    with _one_file_server(b"raw disk bytes") as url:
        run("POST", "/nodes/pve/storage/local/download-url", url=url, filename="sweep.raw", content="import")

    run("POST", "/nodes/pve/lxc", vmid=150, ostemplate=TEMPLATE, hostname="sweep", rootfs="local-lvm:4",
        net0="name=eth0,bridge=vmbr0,ip=10.0.0.150/24,gw=10.0.0.1", mp0="local-lvm:1,mp=/data")
    run("POST", "/nodes/pve/qemu", vmid=151, name="sweep-vm", scsi0="local-lvm:4", ide2="local-lvm:cloudinit",
        net0="virtio,bridge=vmbr0", ipconfig0="ip=10.0.0.151/24,gw=10.0.0.1", ciuser="ops", cipassword="pw")
    for kind, vmid in (("lxc", 150), ("qemu", 151)):
        base = f"/nodes/pve/{kind}/{vmid}"
        data("GET", f"/nodes/pve/{kind}")
        data("GET", base)
        data("GET", f"{base}/config")
        data("GET", f"{base}/config", current=1)
        data("GET", f"{base}/pending")
        run("PUT", f"{base}/config", description="sweep", tags="a;b")
        if kind == "qemu":
            run("POST", f"{base}/config", cores=2)
        data("GET", f"{base}/status")
        data("GET", f"{base}/status/current")
        run("POST", f"{base}/status/start")
        data("GET", f"{base}/status/current")
        if kind == "lxc":
            data("GET", f"{base}/interfaces")
        run("POST", f"{base}/status/reboot")
        run("POST", f"{base}/status/shutdown")
        run("POST", f"{base}/status/start")
        run("POST", f"{base}/status/stop")
        run("PUT", f"{base}/resize", disk="rootfs" if kind == "lxc" else "scsi0", size="+1G")
        run("POST", f"{base}/snapshot", snapname="s1", description="first")
        data("GET", f"{base}/snapshot")
        data("GET", f"{base}/snapshot/s1")
        data("GET", f"{base}/snapshot/s1/config")
        run("PUT", f"{base}/snapshot/s1/config", description="renamed")
        run("POST", f"{base}/snapshot/s1/rollback")
        run("DELETE", f"{base}/snapshot/s1")
        _sweep_firewall(api, f"{base}/firewall")
        run("POST", f"{base}/clone", newid=vmid + 10, full=1)
        if run("POST", f"{base}/template") is None:  # LXC: a detached vztemplate task
            task = data("GET", "/nodes/pve/tasks", source="all", vmid=vmid, typefilter="vztemplate")[0]
            api.wait(task["upid"])
        run("POST", f"{base}/clone", newid=vmid + 20)
        data("GET", "/cluster/resources")
        data("GET", "/cluster/resources", type="vm")
        for gone in (vmid + 20, vmid + 10, vmid):
            run("DELETE", f"/nodes/pve/{kind}/{gone}")
    _sweep_firewall(api, "/cluster/firewall")
    tasks = data("GET", "/nodes/pve/tasks", limit=5)
    upid = tasks[0]["upid"]
    data("GET", f"/nodes/pve/tasks/{upid}")
    data("GET", f"/nodes/pve/tasks/{upid}/status")
    data("GET", f"/nodes/pve/tasks/{upid}/log")
    data("DELETE", f"/nodes/pve/tasks/{upid}")


@contextlib.contextmanager
def _one_file_server(body: bytes):
    """A loopback HTTP server answering every GET with `body`; yields its URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/disk.raw"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _sweep_firewall(api: Api, fw: str) -> None:
    data = api.data
    data("GET", fw)
    data("GET", f"{fw}/options")
    data("PUT", f"{fw}/options", enable=1)
    data("POST", f"{fw}/aliases", name="sweephost", cidr="10.0.0.7")
    data("GET", f"{fw}/aliases")
    data("GET", f"{fw}/aliases/sweephost")
    data("PUT", f"{fw}/aliases/sweephost", cidr="10.0.0.8")
    data("POST", f"{fw}/ipset", name="sweepset")
    data("GET", f"{fw}/ipset")
    data("POST", f"{fw}/ipset/sweepset", cidr="10.0.1.0/24")
    data("GET", f"{fw}/ipset/sweepset")
    data("GET", f"{fw}/ipset/sweepset/10.0.1.0%2F24")
    data("PUT", f"{fw}/ipset/sweepset/10.0.1.0%2F24", comment="lan")
    data("POST", f"{fw}/rules", type="in", action="ACCEPT", source="sweephost", dport="22", proto="tcp", enable=1)
    data("GET", f"{fw}/rules")
    data("GET", f"{fw}/rules/0")
    data("PUT", f"{fw}/rules/0", comment="ssh")
    data("DELETE", f"{fw}/rules/0")
    data("DELETE", f"{fw}/ipset/sweepset/10.0.1.0%2F24")
    data("DELETE", f"{fw}/ipset/sweepset")
    data("DELETE", f"{fw}/aliases/sweephost")


@pytest.mark.parametrize("apidoc", [None, SUBSET_PATH], ids=["apidoc", "vendored-subset"])
def test_every_route_answers_within_the_schema(own_server, apidoc):
    srv, api = own_server(apidoc=apidoc)
    _sweep(api)
    from pvesim.control import Control

    seen = {(r["method"], r.get("template")) for r in Control(srv.url, ca_file=srv.ca_file).requests()
            if r["status"] == 200}
    # /access/ticket POST and /pools/{poolid} are covered by test_pvesim_auth / test_pvesim_pools, migrate (which
    # needs a second node) by test_pvesim_cluster
    covered = {("POST", "/access/ticket"), ("GET", "/pools/{poolid}"), ("POST", "/nodes/{node}/lxc/{vmid}/migrate"),
               ("POST", "/nodes/{node}/qemu/{vmid}/migrate")}
    expected = {key for key in routes.ROUTES if key not in covered}
    assert expected - seen == set()


def test_lxc_interfaces_list_hardware_address_and_ip_addresses(own_server):
    # pve-container LXC.pm get_interfaces: the schema requires hardware-address and ip-addresses
    _srv, api = own_server()
    api.run("POST", "/nodes/pve/lxc", vmid=152, ostemplate=TEMPLATE, rootfs="local-lvm:4",
            net0="name=eth0,bridge=vmbr0,ip=10.0.0.152/24,ip6=fd00::152/64,hwaddr=BC:24:11:00:01:52")
    api.run("POST", "/nodes/pve/lxc/152/status/start")
    eth0 = [i for i in api.data("GET", "/nodes/pve/lxc/152/interfaces") if i["name"] == "eth0"][0]
    assert eth0 == {
        "name": "eth0", "hwaddr": "bc:24:11:00:01:52", "hardware-address": "bc:24:11:00:01:52",
        "inet": "10.0.0.152/24", "inet6": "fd00::152/64",
        "ip-addresses": [{"ip-address-type": "inet", "ip-address": "10.0.0.152", "prefix": 24},
                         {"ip-address-type": "inet6", "ip-address": "fd00::152", "prefix": 64}],
    }
