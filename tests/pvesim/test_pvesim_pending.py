"""Pending changes of running guests: fast-plug, hotplug, [pve:pending]/[PENDING], current=1, GET pending, start.

PVE's rules: pve-container src/PVE/LXC/Config.pm ($LXC_FASTPLUG_OPTIONS, vmconfig_hotplug_pending,
vmconfig_apply_pending), qemu-server src/PVE/QemuServer.pm ($fast_plug_option, vmconfig_hotplug_pending),
pve-guest-common src/PVE/AbstractConfig.pm (load_current_config, cleanup_pending) and GuestHelpers.pm
(config_with_pending_array).
"""

import urllib.parse

import pytest
from pvesim_testlib import PASSWORD, Api


@pytest.fixture(scope="module")
def root(server, anon) -> Api:
    """root@pam with a ticket: bind mounts, devices and features beyond nesting are root@pam's alone."""
    data = anon.data("POST", "/access/ticket", username="root@pam", password=PASSWORD)
    client = Api(server.api_url, server.ca_file, {"CSRFPreventionToken": data["CSRFPreventionToken"]})
    client.session.cookies.set("PVEAuthCookie", data["ticket"])
    return client


def _running_ct(api, make_ct, vmid, **extra):
    make_ct(vmid, **extra)
    assert api.run("POST", f"/nodes/pve/lxc/{vmid}/status/start")["exitstatus"] == "OK"
    return vmid


def _pending(api, kind, vmid):
    return {item["key"]: item for item in api.data("GET", f"/nodes/pve/{kind}/{vmid}/pending")}


def _events(server, vmid, event="config"):
    return [e[2] for e in server.sim.backend.events if e[1] == vmid and e[0] == event]


def test_running_ct_applies_fastplug_hotplugs_and_keeps_the_rest_pending(api, root, server, make_ct):
    vmid = _running_ct(api, make_ct, 740)
    root.data("PUT", f"/nodes/pve/lxc/{vmid}/config", hostname="renamed", cores=2, memory=1024, onboot=1,
              tags="phoenix", features="nesting=1,keyctl=1", nameserver="10.0.0.2", searchdomain="lab")

    merged = api.data("GET", f"/nodes/pve/lxc/{vmid}/config")
    assert (merged["hostname"], merged["cores"], merged["memory"]) == ("renamed", 2, 1024)
    assert merged["features"] == "nesting=1,keyctl=1" and merged["nameserver"] == "10.0.0.2"

    current = api.data("GET", f"/nodes/pve/lxc/{vmid}/config", current=1)
    assert (current["hostname"], current["cores"], current["memory"], current["onboot"]) == ("renamed", 2, 1024, 1)
    assert "features" not in current and "nameserver" not in current and "searchdomain" not in current
    assert current["digest"] == merged["digest"]

    raw = server.sim.conf_path("lxc", vmid).read_text()
    main, _sep, pending = raw.partition("\n[pve:pending]\n")
    assert "hostname: renamed\n" in main and "features" not in main
    assert pending == "features: nesting=1,keyctl=1\nnameserver: 10.0.0.2\nsearchdomain: lab\n"

    items = _pending(api, "lxc", vmid)
    assert items["features"] == {"key": "features", "pending": "nesting=1,keyctl=1"}
    assert items["hostname"] == {"key": "hostname", "value": "renamed"}
    assert items["memory"] == {"key": "memory", "value": 1024}
    assert items["digest"]["value"] == merged["digest"]  # PVE lists the digest too
    # only what is live reaches the backend (the lab's Docker containers)
    assert _events(server, vmid)[-1]["changed"] == ["cores", "hostname", "memory", "onboot", "tags"]


def test_new_mount_point_and_device_are_hotplugged_changed_and_deleted_ones_wait(api, root, server, make_ct):
    vmid = _running_ct(api, make_ct, 741)
    root.data("PUT", f"/nodes/pve/lxc/{vmid}/config", mp0="/srv/models,mp=/models", dev0="/dev/nvidia0")
    assert "[pve:pending]" not in server.sim.conf_path("lxc", vmid).read_text()

    root.data("PUT", f"/nodes/pve/lxc/{vmid}/config", mp0="/srv/models,mp=/models,ro=1", dev1="/dev/nvidiactl",
              delete="dev0")
    current = api.data("GET", f"/nodes/pve/lxc/{vmid}/config", current=1)
    assert current["mp0"] == "/srv/models,mp=/models" and current["dev0"] == "/dev/nvidia0"
    assert current["dev1"] == "/dev/nvidiactl"  # a new device is hotplugged
    merged = api.data("GET", f"/nodes/pve/lxc/{vmid}/config")
    assert merged["mp0"] == "/srv/models,mp=/models,ro=1" and "dev0" not in merged

    items = _pending(api, "lxc", vmid)
    assert items["mp0"] == {"key": "mp0", "value": "/srv/models,mp=/models", "pending": "/srv/models,mp=/models,ro=1"}
    assert items["dev0"] == {"key": "dev0", "value": "/dev/nvidia0", "delete": 1}
    assert "\ndelete: dev0\n" in server.sim.conf_path("lxc", vmid).read_text().partition("[pve:pending]")[2]


def test_ct_deletions_of_hotpluggable_keys_apply_at_once(api, root, make_ct):
    vmid = _running_ct(api, make_ct, 742, cpulimit=2, net1="name=eth1,bridge=vmbr0")
    root.data("PUT", f"/nodes/pve/lxc/{vmid}/config", delete="cpulimit,net1,onboot,mp0")  # mp0 is not set
    current = api.data("GET", f"/nodes/pve/lxc/{vmid}/config", current=1)
    assert "cpulimit" not in current and "net1" not in current
    assert not [i for i in _pending(api, "lxc", vmid).values() if "pending" in i or "delete" in i]


def test_ct_pending_changes_apply_at_start_not_at_stop(api, root, server, make_ct):
    vmid = _running_ct(api, make_ct, 743)
    root.data("PUT", f"/nodes/pve/lxc/{vmid}/config", features="nesting=1,keyctl=1")
    api.run("POST", f"/nodes/pve/lxc/{vmid}/status/stop")
    assert "features" not in api.data("GET", f"/nodes/pve/lxc/{vmid}/config", current=1)  # a stop keeps them
    before = len(_events(server, vmid))
    status = api.run("POST", f"/nodes/pve/lxc/{vmid}/status/start")
    assert status["exitstatus"] == "OK"
    assert api.data("GET", f"/nodes/pve/lxc/{vmid}/config", current=1)["features"] == "nesting=1,keyctl=1"
    assert "[pve:pending]" not in server.sim.conf_path("lxc", vmid).read_text()
    # the backend hears of them at start, before the start itself
    assert _events(server, vmid)[before:] == [{"changed": ["features"], "deleted": []}]
    kinds = [e[0] for e in server.sim.backend.events if e[1] == vmid]
    assert kinds[-2:] == ["config", "start"]
    log = [line["t"] for line in api.data("GET", f"/nodes/pve/tasks/{status['upid']}/log")]
    assert "applied pending changes: features" in log


def test_ct_reboot_applies_pending_changes(api, root, make_ct):
    vmid = _running_ct(api, make_ct, 744)
    root.data("PUT", f"/nodes/pve/lxc/{vmid}/config", nameserver="10.0.0.3", delete="swap")
    assert "nameserver" not in api.data("GET", f"/nodes/pve/lxc/{vmid}/config", current=1)
    api.run("POST", f"/nodes/pve/lxc/{vmid}/status/reboot")
    current = api.data("GET", f"/nodes/pve/lxc/{vmid}/config", current=1)
    assert current["nameserver"] == "10.0.0.3" and "swap" not in current


def test_stopped_guest_applies_everything_at_once(api, root, server, make_ct):
    vmid = make_ct(745)
    root.data("PUT", f"/nodes/pve/lxc/{vmid}/config", features="nesting=1", mp0="/srv/a,mp=/a")
    root.data("PUT", f"/nodes/pve/lxc/{vmid}/config", mp0="/srv/b,mp=/b")
    current = api.data("GET", f"/nodes/pve/lxc/{vmid}/config", current=1)
    assert current["features"] == "nesting=1" and current["mp0"] == "/srv/b,mp=/b"
    assert "[pve:pending]" not in server.sim.conf_path("lxc", vmid).read_text()
    assert [i for i in _pending(api, "lxc", vmid).values() if set(i) - {"key", "value"}] == []


def test_revert_and_writing_the_current_value_back_drop_pending_entries(api, root, server, make_ct):
    vmid = _running_ct(api, make_ct, 746, features="nesting=1")
    root.data("PUT", f"/nodes/pve/lxc/{vmid}/config", features="nesting=1,keyctl=1", nameserver="10.0.0.2")
    root.data("PUT", f"/nodes/pve/lxc/{vmid}/config", revert="nameserver")
    assert "nameserver" not in api.data("GET", f"/nodes/pve/lxc/{vmid}/config")
    root.data("PUT", f"/nodes/pve/lxc/{vmid}/config", features="nesting=1")  # cleanup_pending: equal to current
    assert "[pve:pending]" not in server.sim.conf_path("lxc", vmid).read_text()
    # a deletion, then setting the key again, cancels the pending deletion
    root.data("PUT", f"/nodes/pve/lxc/{vmid}/config", delete="features")
    assert "features" not in api.data("GET", f"/nodes/pve/lxc/{vmid}/config")
    root.data("PUT", f"/nodes/pve/lxc/{vmid}/config", features="nesting=1")
    assert "[pve:pending]" not in server.sim.conf_path("lxc", vmid).read_text()


def test_snapshot_and_current_together_are_refused(api, make_ct):
    vmid = make_ct(747)
    response = api.get(f"/nodes/pve/lxc/{vmid}/config", snapshot="s1", current=1)
    assert response.status_code == 400
    assert response.json()["errors"] == {"snapshot": "cannot use 'snapshot' parameter with 'current'",
                                         "current": "cannot use 'snapshot' parameter with 'current'"}


def test_hand_written_pending_section_is_read(api, server, make_ct):
    vmid = make_ct(748)
    path = server.sim.conf_path("lxc", vmid)
    path.write_text(path.read_text() + "\n[pve:pending]\ndelete: !onboot,cores\nswap: 0\n")
    items = _pending(api, "lxc", vmid)
    assert items["swap"] == {"key": "swap", "value": 512, "pending": 0}
    assert items["cores"] == {"key": "cores", "value": 1, "delete": 1}
    assert items["onboot"] == {"key": "onboot", "delete": 2}  # not set: PVE lists the deletion alone


# -- QEMU -------------------------------------------------------------------------------------------------------


def _running_vm(api, vmid, **extra):
    params = {
        "vmid": vmid, "name": f"vm{vmid}", "memory": 2048, "cores": 2, "scsihw": "virtio-scsi-single",
        "scsi0": "local-lvm:4", "ide2": "local-lvm:cloudinit", "net0": "virtio,bridge=vmbr0", "ciuser": "phoenix",
        "ipconfig0": "ip=10.0.0.41/24,gw=10.0.0.1", "agent": "enabled=1", "ostype": "l26",
    }
    params.update(extra)
    assert api.run("POST", "/nodes/pve/qemu", **params)["exitstatus"] == "OK"
    assert api.run("POST", f"/nodes/pve/qemu/{vmid}/status/start")["exitstatus"] == "OK"
    return vmid


def test_running_vm_keeps_cores_and_memory_pending_with_the_default_hotplug(api, server):
    vmid = _running_vm(api, 1040)
    key = urllib.parse.quote("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample x@y", safe="")
    api.data("PUT", f"/nodes/pve/qemu/{vmid}/config", cores=4, memory=4096, name="renamed", ciuser="admin",
             sshkeys=key, ipconfig0="ip=10.0.0.42/24,gw=10.0.0.1", nameserver="10.0.0.2", onboot=1,
             agent="enabled=1,fstrim_cloned_disks=1", net1="virtio,bridge=vmbr0", scsi1="local-lvm:2", bios="ovmf")
    current = api.data("GET", f"/nodes/pve/qemu/{vmid}/config", current=1)
    assert (current["cores"], current["memory"]) == (2, "2048")
    assert "bios" not in current
    assert (current["name"], current["ciuser"], current["nameserver"], current["onboot"]) == (
        "renamed", "admin", "10.0.0.2", 1)
    assert current["agent"] == "enabled=1,fstrim_cloned_disks=1"  # only fstrim_cloned_disks changes live
    assert current["net1"].startswith("virtio=") and current["scsi1"].startswith("local-lvm:vm-1040-disk-1")
    pending = server.sim.conf_path("qemu", vmid).read_text().partition("\n[PENDING]\n")[2]
    assert pending == "bios: ovmf\ncores: 4\nmemory: 4096\n"
    items = _pending(api, "qemu", vmid)
    assert items["cores"] == {"key": "cores", "value": 2, "pending": 4}
    assert items["bios"] == {"key": "bios", "pending": "ovmf"}
    merged = api.data("GET", f"/nodes/pve/qemu/{vmid}/config")
    assert (merged["cores"], merged["memory"], merged["bios"]) == (4, "4096", "ovmf")


def test_vm_memory_hotplug_feature_and_stop_applies_pending(api, server):
    vmid = _running_vm(api, 1041, hotplug="network,disk,usb,memory", numa=1)
    api.data("PUT", f"/nodes/pve/qemu/{vmid}/config", memory=4096, cores=4, delete="agent")
    current = api.data("GET", f"/nodes/pve/qemu/{vmid}/config", current=1)
    assert current["memory"] == "4096" and current["cores"] == 2 and current["agent"] == "enabled=1"
    assert _pending(api, "qemu", vmid)["agent"]["delete"] == 1
    # qemu-server vm_stop_cleanup applies pending changes when the VM stops
    api.run("POST", f"/nodes/pve/qemu/{vmid}/status/stop")
    current = api.data("GET", f"/nodes/pve/qemu/{vmid}/config", current=1)
    assert current["cores"] == 4 and "agent" not in current
    assert "[PENDING]" not in server.sim.conf_path("qemu", vmid).read_text()


def test_vm_reboot_applies_pending_and_pending_cipassword_is_masked(api):
    vmid = _running_vm(api, 1042)
    api.data("PUT", f"/nodes/pve/qemu/{vmid}/config", sockets=2)
    api.data("POST", f"/nodes/pve/qemu/{vmid}/config", cipassword="secret")  # fast-plug: live at once
    assert _pending(api, "qemu", vmid)["cipassword"] == {"key": "cipassword", "value": "**********"}
    api.run("POST", f"/nodes/pve/qemu/{vmid}/status/reboot")
    assert api.data("GET", f"/nodes/pve/qemu/{vmid}/config", current=1)["sockets"] == 2
    assert api.data("GET", f"/nodes/pve/qemu/{vmid}/status/current")["status"] == "running"


def test_vm_without_hotplug_keeps_a_new_nic_pending(api):
    vmid = _running_vm(api, 1043, hotplug=0)
    api.data("PUT", f"/nodes/pve/qemu/{vmid}/config", net1="virtio,bridge=vmbr0", net0="virtio,bridge=vmbr1")
    current = api.data("GET", f"/nodes/pve/qemu/{vmid}/config", current=1)
    assert "net1" not in current
    assert current["net0"].endswith(",bridge=vmbr0")  # a new MAC (no MAC given) needs hotplug
    api.data("PUT", f"/nodes/pve/qemu/{vmid}/config",
             net0=current["net0"].replace("bridge=vmbr0", "bridge=vmbr1"))  # same model and MAC: live
    assert api.data("GET", f"/nodes/pve/qemu/{vmid}/config", current=1)["net0"].endswith(",bridge=vmbr1")
