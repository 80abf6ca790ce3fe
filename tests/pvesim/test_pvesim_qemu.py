"""QEMU VMs: cloud-init create, config, clone lock, resize, template."""

import time
import urllib.parse

SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample phoenix@lab"


def _create_vm(api, vmid, **extra):
    params = {
        "vmid": vmid, "name": f"vm{vmid}", "memory": 4096, "cores": 2, "scsihw": "virtio-scsi-single",
        "scsi0": "local-lvm:0,import-from=local:import/debian-12-genericcloud-amd64.qcow2",
        "ide2": "local-lvm:cloudinit", "net0": "virtio,bridge=vmbr0", "ciuser": "phoenix",
        "sshkeys": urllib.parse.quote(SSH_KEY, safe=""), "ipconfig0": "ip=10.0.0.21/24,gw=10.0.0.1",
        "nameserver": "10.0.0.2", "agent": "enabled=1", "boot": "order=scsi0", "serial0": "socket",
    }
    params.update(extra)
    return api.run("POST", "/nodes/pve/qemu", **params)


def test_create_cloud_init_vm(api, server):
    status = _create_vm(api, 1001, cipassword="cloud-secret")
    assert status["exitstatus"] == "OK" and status["type"] == "qmcreate"
    config = api.data("GET", "/nodes/pve/qemu/1001/config")
    assert config["scsi0"] == "local-lvm:vm-1001-disk-0,size=2G"
    assert config["ide2"] == "local-lvm:vm-1001-cloudinit,media=cdrom"
    assert config["net0"].startswith("virtio=BC:24:11:") and config["net0"].endswith(",bridge=vmbr0")
    assert urllib.parse.unquote(config["sshkeys"]) == SSH_KEY
    assert config["cipassword"] == "**********"
    # memory is a property string in PVE 9 (`[current=]<integer>`), so it comes back as text
    assert config["memory"] == "4096" and config["agent"] == "enabled=1"
    raw = server.sim.conf_path("qemu", 1001).read_text()
    assert "cloud-secret" not in raw and "smbios1: uuid=" in raw
    current = api.data("GET", "/nodes/pve/qemu/1001/status/current")
    assert current["status"] == "stopped" and current["agent"] == 1


def test_clone_template_locks_the_new_vm(api, server):
    _create_vm(api, 9000)
    api.run("POST", "/nodes/pve/qemu/9000/template")
    assert api.data("GET", "/nodes/pve/qemu/9000/config")["scsi0"].startswith("local-lvm:base-9000-disk-0")
    # The clone task runs `hold` seconds here: the refused PUT is judged only when it came back within that time of
    # sending the clone; on a machine too loaded for that, again with another ID.
    hold, seen = 2.0, []
    server.sim.tasks.duration = hold
    try:
        for newid in (1002, 1012, 1022):
            began = time.monotonic()
            upid = api.data("POST", "/nodes/pve/qemu/9000/clone", newid=newid, name="swarm-worker", full=1)
            response = api.put(f"/nodes/pve/qemu/{newid}/config", memory=8192)
            elapsed = time.monotonic() - began
            status = api.wait(upid)
            if elapsed < hold:
                break
            seen.append((round(elapsed, 2), response.status_code))
        else:
            raise AssertionError(f"the PUT never came within {hold:g} s of the clone (elapsed s, status): {seen}")
    finally:
        server.sim.tasks.duration = 0.1
    assert (response.status_code, response.json()["message"]) == (500, "VM is locked (clone)\n")
    assert status["exitstatus"] == "OK"
    config = api.data("GET", f"/nodes/pve/qemu/{newid}/config")
    assert config["name"] == "swarm-worker" and config["scsi0"].startswith(f"local-lvm:vm-{newid}-disk-0")
    assert config["ide2"].startswith(f"local-lvm:vm-{newid}-cloudinit")
    api.data("PUT", f"/nodes/pve/qemu/{newid}/config", memory=8192, ipconfig0="ip=10.0.0.22/24,gw=10.0.0.1")
    upid = api.data("POST", f"/nodes/pve/qemu/{newid}/config", delete="serial0")
    assert api.wait(upid)["type"] == "qmconfig"
    assert "serial0" not in api.data("GET", f"/nodes/pve/qemu/{newid}/config")


def test_resize_and_start_stop(api):
    _create_vm(api, 1003)
    assert api.run("PUT", "/nodes/pve/qemu/1003/resize", disk="scsi0", size="+30G")["exitstatus"] == "OK"
    assert api.data("GET", "/nodes/pve/qemu/1003/config")["scsi0"].endswith("size=32G")
    status = api.run("PUT", "/nodes/pve/qemu/1003/resize", disk="scsi0", size="10G")
    assert status["exitstatus"] == "shrinking disks is not supported"
    api.run("POST", "/nodes/pve/qemu/1003/status/start")
    assert api.data("GET", "/nodes/pve/qemu/1003/status/current")["qmpstatus"] == "running"
    assert api.delete("/nodes/pve/qemu/1003").json()["message"] == "VM 1003 is running - destroy failed\n"
    api.run("POST", "/nodes/pve/qemu/1003/status/stop")
    assert api.run("DELETE", "/nodes/pve/qemu/1003")["exitstatus"] == "OK"


def test_vmid_in_use_by_other_type(api, make_ct):
    make_ct(840)
    response = api.post("/nodes/pve/qemu", vmid=840, memory=512)
    assert response.json()["message"] == "CT 840 already exists on node 'pve'\n"
