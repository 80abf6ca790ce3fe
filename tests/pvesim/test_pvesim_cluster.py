"""A cluster of several nodes: /nodes, /cluster/status and /cluster/resources across nodes, per-node config
directories, local and shared storages, clone with `target`, and migration with PVE's restrictions (issue #20).
Strict mode checks every reply here against the schema (a mismatch would answer 500)."""

from __future__ import annotations

import pytest
from pvesim_testlib import TEMPLATE, TOKEN_ID, TOKEN_SECRET, Api

from pvesim.access import ALL_PRIVILEGES
from pvesim.server import start_server

NODES = ["pve1", "pve2", "pve3"]
CLOUD = "local:import/debian-12-genericcloud-amd64.qcow2"


class ClusterApi(Api):
    def wait(self, upid: str, timeout: float = 30.0) -> dict:
        # a task is read on the node that runs it (the UPID's second field)
        node = upid.split(":")[1]
        return self._wait_on(node, upid, timeout)

    def _wait_on(self, node, upid, timeout):
        import time

        deadline = time.monotonic() + timeout
        while True:
            status = self.data("GET", f"/nodes/{node}/tasks/{upid}/status")
            if status["status"] == "stopped":
                return status
            assert time.monotonic() < deadline, status
            time.sleep(0.02)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    srv = start_server(state_dir=tmp_path_factory.mktemp("cluster"), tokens=[f"{TOKEN_ID}={TOKEN_SECRET}"],
                       task_seconds=0.02, control=True, nodes=NODES)
    api = ClusterApi(srv.api_url, srv.ca_file, {"Authorization": f"PVEAPIToken={TOKEN_ID}={TOKEN_SECRET}"})
    yield srv, api
    srv.stop()


def _ct(api, node, vmid, rootfs="local-lvm:4", **extra):
    return api.run("POST", f"/nodes/{node}/lxc", vmid=vmid, ostemplate=TEMPLATE, hostname=f"ct{vmid}", rootfs=rootfs,
                   net0=f"name=eth0,bridge=vmbr0,ip=10.0.0.{vmid % 250}/24", **extra)


def _vm(api, node, vmid, storage="local-lvm", **extra):
    return api.run("POST", f"/nodes/{node}/qemu", vmid=vmid, name=f"vm{vmid}", scsi0=f"{storage}:0,import-from={CLOUD}",
                   net0="virtio,bridge=vmbr0", **extra)


def test_nodes_status_and_storages(cluster):
    srv, api = cluster
    assert [n["node"] for n in api.data("GET", "/nodes")] == NODES
    status = api.data("GET", "/cluster/status")
    assert status[0]["type"] == "cluster" and status[0]["nodes"] == 3 and status[0]["quorate"] == 1
    assert [(s["name"], s["local"]) for s in status[1:]] == [("pve1", 1), ("pve2", 0), ("pve3", 0)]
    storages = {s["storage"]: s["shared"] for s in api.data("GET", "/nodes/pve2/storage")}
    assert storages == {"local": 0, "local-lvm": 0, "shared": 1}
    resources = api.data("GET", "/cluster/resources", type="storage")
    assert sorted(r["id"] for r in resources if r["storage"] == "shared") == [f"storage/{n}/shared" for n in NODES]
    bad = api.get("/nodes/pve9/storage")
    assert bad.status_code == 500 and "hostname lookup 'pve9' failed" in bad.json()["message"]


def test_guests_live_on_their_node(cluster):
    srv, api = cluster
    assert _ct(api, "pve2", 201)["exitstatus"] == "OK"
    assert srv.sim.conf_path("lxc", 201, "pve2").is_file()
    assert "nodes/pve2/lxc/201.conf" in str(srv.sim.conf_path("lxc", 201, "pve2"))
    wrong = api.get("/nodes/pve1/lxc/201/config")
    assert wrong.status_code == 500
    assert wrong.json()["message"] == "Configuration file 'nodes/pve1/lxc/201.conf' does not exist\n"
    assert api.data("GET", "/nodes/pve2/lxc/201/config")["hostname"] == "ct201"
    assert [g["vmid"] for g in api.data("GET", "/nodes/pve2/lxc")] == [201]
    assert api.data("GET", "/nodes/pve1/lxc") == []
    found = {r["vmid"]: r["node"] for r in api.data("GET", "/cluster/resources", type="vm")}
    assert found[201] == "pve2"
    # VMIDs are cluster-wide
    again = api.post("/nodes/pve3/lxc", vmid=201, ostemplate=TEMPLATE, rootfs="local-lvm:4")
    assert again.json()["message"] == "CT 201 already exists on node 'pve2'\n"
    # the volume is on pve2's local-lvm, not on pve1's

    def volids(node):
        return [v["volid"] for v in api.data("GET", f"/nodes/{node}/storage/local-lvm/content")]

    assert "local-lvm:vm-201-disk-0" in volids("pve2")
    assert "local-lvm:vm-201-disk-0" not in volids("pve1")
    # a task is the node's own
    upid = api.data("POST", "/nodes/pve2/lxc/201/status/start")
    assert upid.startswith("UPID:pve2:")
    assert api.get(f"/nodes/pve1/tasks/{upid}/status").status_code == 500
    assert api.wait(upid)["exitstatus"] == "OK"


def test_lxc_migration_needs_restart_mode_when_running(cluster):
    srv, api = cluster
    _ct(api, "pve1", 202)
    api.run("POST", "/nodes/pve1/lxc/202/status/start")
    local = api.post("/nodes/pve1/lxc/202/migrate", target="pve1")
    assert local.status_code == 400 and local.json()["errors"] == {"target": "target is local node."}
    unknown = api.post("/nodes/pve1/lxc/202/migrate", target="nope")
    assert unknown.json()["message"] == "no such cluster node 'nope'\n"
    refused = api.post("/nodes/pve1/lxc/202/migrate", target="pve2")
    assert refused.status_code == 500
    assert refused.json()["message"] == "can't migrate running container without --online or --restart\n"
    online = api.run("POST", "/nodes/pve1/lxc/202/migrate", target="pve2", online=1)
    assert online["exitstatus"] == "lxc live migration is currently not implemented"
    status = api.run("POST", "/nodes/pve1/lxc/202/migrate", target="pve2", restart=1)
    assert status["exitstatus"] == "OK" and status["type"] == "vzmigrate" and status["node"] == "pve1"
    assert api.data("GET", "/nodes/pve2/lxc/202/status/current")["status"] == "running"
    assert "lock" not in api.data("GET", "/nodes/pve2/lxc/202/config")
    assert api.get("/nodes/pve1/lxc/202/config").status_code == 500
    assert {r["vmid"]: r["node"] for r in api.data("GET", "/cluster/resources", type="vm")}[202] == "pve2"
    assert "local-lvm:vm-202-disk-0" in [v["volid"] for v in api.data("GET", "/nodes/pve2/storage/local-lvm/content")]


def test_lxc_bind_mount_blocks_migration(cluster):
    srv, api = cluster
    _ct(api, "pve1", 203)
    conf = srv.sim.conf_path("lxc", 203, "pve1")
    conf.write_text(conf.read_text() + "mp0: /srv/data,mp=/data\n")
    status = api.run("POST", "/nodes/pve1/lxc/203/migrate", target="pve3")
    assert status["exitstatus"] == "cannot migrate local bind mount point 'mp0'"
    assert "lock" not in api.data("GET", "/nodes/pve1/lxc/203/config")


def test_qemu_migration_online_and_local_disks(cluster):
    srv, api = cluster
    _vm(api, "pve1", 301)
    api.run("POST", "/nodes/pve1/qemu/301/status/start")
    refused = api.post("/nodes/pve1/qemu/301/migrate", target="pve2")
    assert refused.json()["message"] == "can't migrate running VM without --online\n"
    status = api.run("POST", "/nodes/pve1/qemu/301/migrate", target="pve2", online=1)
    assert status["exitstatus"] == "can't migrate VM - check log"
    log = [line["t"] for line in api.data("GET", f"/nodes/pve1/tasks/{status['upid']}/log")]
    assert ("can't migrate local disk 'local-lvm:vm-301-disk-0': can't live migrate attached local disks without "
            "with-local-disks option") in log
    status = api.run("POST", "/nodes/pve1/qemu/301/migrate", target="pve2", online=1, **{"with-local-disks": 1})
    assert status["exitstatus"] == "OK" and status["type"] == "qmigrate"
    assert api.data("GET", "/nodes/pve2/qemu/301/status/current")["status"] == "running"
    # a stopped VM migrates offline, `online` or not
    api.run("POST", "/nodes/pve2/qemu/301/status/stop")
    status = api.run("POST", "/nodes/pve2/qemu/301/migrate", target="pve3", online=1)
    assert status["exitstatus"] == "OK"
    assert api.data("GET", "/nodes/pve3/qemu/301/status/current")["status"] == "stopped"


def test_qemu_local_devices_block_migration(cluster):
    srv, api = cluster
    _vm(api, "pve1", 302)
    conf = srv.sim.conf_path("qemu", 302, "pve1")
    conf.write_text(conf.read_text() + "hostpci0: 0000:01:00.0\n")
    status = api.run("POST", "/nodes/pve1/qemu/302/migrate", target="pve2")
    assert status["exitstatus"] == "can't migrate VM which uses local devices: hostpci0"


def test_clone_with_target_needs_shared_storage(cluster):
    srv, api = cluster
    _vm(api, "pve1", 9001)
    api.run("POST", "/nodes/pve1/qemu/9001/template")
    local = api.post("/nodes/pve1/qemu/9001/clone", newid=311, target="pve2")
    assert local.json()["message"] == "can't clone VM to node 'pve2' (VM uses local storage)\n"
    # a linked clone on pve1 of a local template cannot leave the node either
    api.run("POST", "/nodes/pve1/qemu/9001/clone", newid=312)
    status = api.run("POST", "/nodes/pve1/qemu/312/migrate", target="pve2")
    assert status["exitstatus"] == "can't migrate VM - check log"
    log = [line["t"] for line in api.data("GET", f"/nodes/pve1/tasks/{status['upid']}/log")]
    assert any("as it's a clone of 'base-9001-disk-0'" in line for line in log)
    _vm(api, "pve1", 9002, storage="shared")
    api.run("POST", "/nodes/pve1/qemu/9002/template")
    nonshared = api.post("/nodes/pve1/qemu/9002/clone", newid=313, target="pve3", full=1, storage="local-lvm")
    assert nonshared.json()["message"] == "can't clone to non-shared storage 'local-lvm'\n"
    status = api.run("POST", "/nodes/pve1/qemu/9002/clone", newid=313, target="pve3")
    assert status["exitstatus"] == "OK" and status["node"] == "pve1"
    config = api.data("GET", "/nodes/pve3/qemu/313/config")
    assert config["scsi0"].startswith("shared:9002/base-9002-disk-0.raw/313/vm-313-disk-0.raw")
    assert api.get("/nodes/pve1/qemu/313/config").status_code == 500
    # an LXC from a shared-storage CT too
    _ct(api, "pve2", 204, rootfs="shared:4")
    assert api.run("POST", "/nodes/pve2/lxc/204/clone", newid=205, target="pve1")["exitstatus"] == "OK"
    assert api.data("GET", "/nodes/pve1/lxc/205/config")["rootfs"].startswith("shared:205/vm-205-disk-0.raw")


def test_migration_needs_vm_migrate_on_the_guest(tmp_path):
    # a privilege-separated token holding everything but VM.Migrate, and one that holds it on /vms/205 only
    everything_else = ",".join(p for p in ALL_PRIVILEGES if p != "VM.Migrate")
    srv = start_server(state_dir=tmp_path, tokens=[f"{TOKEN_ID}={TOKEN_SECRET}", "ops@pve!nomig=s1", "ops@pve!mig=s2"],
                       acls=[f"ops@pve!nomig:/:{everything_else}", f"ops@pve!mig:/:{everything_else}",
                             "ops@pve!mig:/vms/205:VM.Migrate,VM.Audit,VM.PowerMgmt:0"],
                       task_seconds=0.02, nodes=NODES)
    try:
        api = ClusterApi(srv.api_url, srv.ca_file, {"Authorization": f"PVEAPIToken={TOKEN_ID}={TOKEN_SECRET}"})
        _ct(api, "pve1", 205)
        _ct(api, "pve1", 206)
        nomig = ClusterApi(srv.api_url, srv.ca_file, {"Authorization": "PVEAPIToken=ops@pve!nomig=s1"})
        refused = nomig.post("/nodes/pve1/lxc/205/migrate", target="pve2")
        assert refused.status_code == 403, refused.text
        assert refused.json()["message"] == "Permission check failed (/vms/205, VM.Migrate)\n"
        mig = ClusterApi(srv.api_url, srv.ca_file, {"Authorization": "PVEAPIToken=ops@pve!mig=s2"})
        # held on /vms/205 without propagation: that guest only
        other = mig.post("/nodes/pve1/lxc/206/migrate", target="pve2")
        assert other.status_code == 403
        assert other.json()["message"] == "Permission check failed (/vms/206, VM.Migrate)\n"
        status = mig.run("POST", "/nodes/pve1/lxc/205/migrate", target="pve2")
        assert status["exitstatus"] == "OK", status
        located = {r["vmid"]: r["node"] for r in api.data("GET", "/cluster/resources", type="vm")}
        assert (located[205], located[206]) == ("pve2", "pve1")
    finally:
        srv.stop()


def test_guest_firewall_is_one_cluster_wide_file_per_vmid(cluster):
    srv, api = cluster
    # a guest no node has: its firewall reads as the empty config on every node, and reading creates nothing
    for node in NODES:
        for kind in ("lxc", "qemu"):
            base = f"/nodes/{node}/{kind}/299/firewall"
            options = api.data("GET", f"{base}/options")
            assert set(options) == {"digest"}, options
            assert api.data("GET", f"{base}/rules") == []
            assert api.data("GET", f"{base}/aliases") == [] and api.data("GET", f"{base}/ipset") == []
    assert "299" not in srv.sim.firewall["guests"]
    # a write creates it (Proxmox does not check the guest), and emptying it removes it again
    api.data("PUT", "/nodes/pve3/qemu/299/firewall/options", enable=1)
    assert api.data("GET", "/nodes/pve1/lxc/299/firewall/options")["enable"] == 1
    api.data("PUT", "/nodes/pve2/lxc/299/firewall/options", delete="enable")
    assert "299" not in srv.sim.firewall["guests"]

    # a guest on pve2: written through another node's path, read through any node's
    assert _ct(api, "pve2", 206)["exitstatus"] == "OK"
    api.data("POST", "/nodes/pve1/lxc/206/firewall/rules", type="in", action="ACCEPT", proto="tcp", dport="22",
             enable=1)
    for node in NODES:
        assert [r["dport"] for r in api.data("GET", f"/nodes/{node}/lxc/206/firewall/rules")] == ["22"], node
    # it follows the guest through a migration untouched (the file is not the node's)
    assert api.run("POST", "/nodes/pve2/lxc/206/migrate", target="pve3")["exitstatus"] == "OK"
    assert [r["dport"] for r in api.data("GET", "/nodes/pve2/lxc/206/firewall/rules")] == ["22"]
    # destroying the guest removes its firewall
    assert api.run("DELETE", "/nodes/pve3/lxc/206")["exitstatus"] == "OK"
    assert "206" not in srv.sim.firewall["guests"]
    assert api.data("GET", "/nodes/pve3/lxc/206/firewall/rules") == []
    # a node that is not in the cluster is refused, as for any /nodes/{node} path
    assert api.get("/nodes/pve9/lxc/206/firewall/rules").status_code == 500
