"""pvesim's Docker backend against a fake Docker Engine (no Docker needed): what it asks the engine for."""

from __future__ import annotations

import copy
import os
import sys

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PVESIM = os.path.join(REPO, "lab", "pvesim")
if PVESIM not in sys.path:
    sys.path.insert(0, PVESIM)

from pvesim.backend import Guest  # noqa: E402
from pvesim.docker_backend import (  # noqa: E402
    DockerBackend, EngineError, container_spec, guest_nics, spec_digest, ssh_keys_of,
)

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBvT/6hnaJHVocH8L1v6FPGZux773t6CYWBvTBjECb3x lab"
OPERATOR = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOperatorKeyForEveryGuestXXXXXXXXXXXXXXXXX op"


class FakeEngine:
    """Containers and networks in dicts; records every call."""

    def __init__(self, api=(1, 41), ncpu=2):
        self.calls = []
        self.containers = {}
        self.networks = {"phoenix-vmbr0": {"Name": "phoenix-vmbr0"}}
        self._api = api
        self.ncpu = ncpu

    def api_version(self):
        return self._api

    def info(self):
        return {"NCPU": self.ncpu}

    def network(self, name):
        return self.networks.get(name)

    def inspect(self, name):
        return copy.deepcopy(self.containers.get(name))

    def call(self, method, path, body=None, query=None):
        self.calls.append((method, path, body, query))
        if method == "POST" and path == "/containers/create":
            name = query["name"]
            if name in self.containers:
                raise EngineError(409, "Conflict")
            endpoints = (body.get("NetworkingConfig") or {}).get("EndpointsConfig") or {}
            config = {"Labels": body["Labels"], "Env": body["Env"], "Hostname": body["Hostname"], "Image": body["Image"]}
            state = {"Running": False, "Status": "created", "StartedAt": "0001-01-01T00:00:00Z"}
            self.containers[name] = {
                "Id": name, "Name": "/" + name, "Config": config, "HostConfig": body["HostConfig"], "State": state,
                "NetworkSettings": {"Networks": copy.deepcopy(endpoints)}, "MacAddress": body.get("MacAddress"),
            }
            return 201, {"Id": name}
        if method == "DELETE" and path.startswith("/containers/"):
            name = path.split("/")[2]
            if self.containers.pop(name, None) is None:
                raise EngineError(404, "No such container")
            return 204, b""
        if path.startswith("/exec/"):
            return 200, {"ExitCode": 0}
        if method == "POST" and path.endswith("/start"):
            state = self.containers[path.split("/")[2]]["State"]
            state.update(Running=True, Status="running", StartedAt="2026-01-01T00:00:00Z")
            return 204, b""
        if method == "POST" and path.endswith("/stop"):
            name = path.split("/")[2]
            if name not in self.containers:
                raise EngineError(404, "No such container")
            self.containers[name]["State"].update(Running=False, Status="exited")
            return 204, b""
        if method == "POST" and path.endswith("/update"):
            self.containers[path.split("/")[2]]["HostConfig"].update(body)
            return 200, {}
        if method == "POST" and path.startswith("/networks/") and path.endswith(("/connect", "/disconnect")):
            net = path.split("/")[2]
            nets = self.containers[body["Container"]]["NetworkSettings"]["Networks"]
            if path.endswith("/disconnect"):
                nets.pop(net, None)
            else:
                nets[net] = copy.deepcopy(body["EndpointConfig"])
            return 200, b""
        if method == "POST" and path == "/networks/create":
            self.networks[body["Name"]] = body
            return 201, {"Id": body["Name"]}
        if method == "POST" and path.endswith("/exec"):
            return 201, {"Id": "exec1"}
        raise AssertionError(f"unexpected call {method} {path}")

    def paths(self, method=None):
        return [p for m, p, _b, _q in self.calls if method is None or m == method]


def lxc(vmid=103, **config):
    base = {"hostname": "step-ca", "cores": "2", "memory": "1024", "swap": "512",
            "net0": "name=eth0,bridge=vmbr0,firewall=1,gw=10.77.0.1,hwaddr=52:54:00:00:01:03,ip=10.77.0.10/24,type=veth",
            "nameserver": "10.77.0.13", "rootfs": "local-lvm:vm-103-disk-0,size=8G"}
    base.update(config)
    return Guest(vmid=vmid, kind="lxc", node="pve", config=base, conf_path=f"/etc/pve/lxc/{vmid}.conf")


def qemu(vmid=1001, **config):
    base = {"name": "swarm-manager", "cores": "4", "memory": "2048", "ciuser": "phoenix",
            "net0": "virtio=52:54:00:00:10:01,bridge=vmbr0,firewall=1", "ipconfig0": "ip=10.77.0.111/24,gw=10.77.0.1",
            "sshkeys": "ssh-ed25519%20AAAAC3NzaC1lZDI1NTE5AAAAIBvT%2F6hnaJHVocH8L1v6FPGZux773t6CYWBvTBjECb3x%20lab"}
    base.update(config)
    return Guest(vmid=vmid, kind="qemu", node="pve", config=base, conf_path=f"/etc/pve/qemu-server/{vmid}.conf")


@pytest.fixture
def engine():
    return FakeEngine()


@pytest.fixture
def backend(engine, tmp_path):
    return DockerBackend(client=engine, state_dir=tmp_path)


def test_nics_from_lxc_and_qemu_configs():
    assert guest_nics(lxc()) == [{"index": 0, "bridge": "vmbr0", "ip": "10.77.0.10/24", "gw": "10.77.0.1",
                                  "mac": "52:54:00:00:01:03"}]
    assert guest_nics(qemu()) == [{"index": 0, "bridge": "vmbr0", "ip": "10.77.0.111/24", "gw": "10.77.0.1",
                                   "mac": "52:54:00:00:10:01"}]
    assert guest_nics(qemu(ipconfig0="ip=dhcp"))[0]["ip"] is None


def test_ssh_keys_from_the_create_call_or_sshkeys():
    assert ssh_keys_of(lxc(), {"ssh-public-keys": KEY + "\n\n"}) == [KEY]
    assert ssh_keys_of(lxc(), {}) == []
    assert ssh_keys_of(qemu(), None) == [KEY]


def test_limits_are_capped_at_the_engine_cpus():
    spec = container_spec(lxc(), "img", lambda b: f"phoenix-{b}", ncpu=1)
    assert spec["nano_cpus"] == 1_000_000_000
    assert spec["memory"] == 1024 * 2**20 and spec["memory_swap"] == 1536 * 2**20
    assert container_spec(qemu(), "img", lambda b: b, ncpu=8)["nano_cpus"] == 4_000_000_000


def test_create_makes_a_stopped_container_with_ip_mac_keys_and_labels(backend, engine):
    backend.create(lxc(), {"ssh-public-keys": KEY})
    container = engine.containers["phoenix-103"]
    assert container["State"]["Status"] == "created"
    assert container["Config"]["Image"] == "phoenix-lab/guest:latest"
    assert container["Config"]["Hostname"] == "step-ca"
    assert container["Config"]["Env"] == [f"PHOENIX_SSH_AUTHORIZED_KEY={KEY}"]
    labels = container["Config"]["Labels"]
    assert labels["org.thinkheads.phoenix.lab"] == "1" and labels["org.thinkheads.phoenix.vmid"] == "103"
    assert container["NetworkSettings"]["Networks"]["phoenix-vmbr0"]["IPAMConfig"] == {"IPv4Address": "10.77.0.10"}
    assert container["MacAddress"] == "52:54:00:00:01:03"  # API 1.41: top-level MacAddress
    host = container["HostConfig"]
    assert host["CapAdd"] == ["ALL"] and host["CapDrop"] == ["SYS_RESOURCE"] and host["CgroupnsMode"] == "host"
    assert "Privileged" not in host
    assert host["Dns"] == ["10.77.0.13"]
    assert "/containers/phoenix-103/start" not in engine.paths()


def test_mac_goes_to_the_endpoint_from_api_1_44(tmp_path):
    engine = FakeEngine(api=(1, 44))
    DockerBackend(client=engine, state_dir=tmp_path).create(lxc(), {})
    container = engine.containers["phoenix-103"]
    assert container["MacAddress"] is None
    assert container["NetworkSettings"]["Networks"]["phoenix-vmbr0"]["MacAddress"] == "52:54:00:00:01:03"


def test_a_clone_that_never_ran_is_recreated_with_its_new_config(backend, engine):
    backend.create(lxc(vmid=801, hostname="template-base", net0=lxc().config["net0"].replace("10.77.0.10", "10.77.0.200")),
                   {"ssh-public-keys": KEY})
    backend.config_changed(lxc(vmid=801, hostname="embedding",
                               net0=lxc().config["net0"].replace("10.77.0.10", "10.77.0.141")), {"hostname": "x"}, [])
    container = engine.containers["phoenix-801"]
    assert container["Config"]["Hostname"] == "embedding"
    assert container["NetworkSettings"]["Networks"]["phoenix-vmbr0"]["IPAMConfig"]["IPv4Address"] == "10.77.0.141"
    assert container["Config"]["Env"] == [f"PHOENIX_SSH_AUTHORIZED_KEY={KEY}"]  # keys kept across re-creation


def test_a_container_that_ran_keeps_its_filesystem(backend, engine):
    backend.create(lxc(), {"ssh-public-keys": KEY})
    backend.start(lxc())
    engine.calls.clear()
    backend.config_changed(lxc(memory="2048", net0=lxc().config["net0"].replace("10.77.0.10", "10.77.0.11")),
                           {"memory": "2048"}, [])
    assert "DELETE" not in [call[0] for call in engine.calls]
    container = engine.containers["phoenix-103"]
    assert container["HostConfig"]["Memory"] == 2048 * 2**20
    assert container["NetworkSettings"]["Networks"]["phoenix-vmbr0"]["IPAMConfig"]["IPv4Address"] == "10.77.0.11"


def test_start_stop_destroy(backend, engine):
    backend.create(lxc(), {})
    backend.start(lxc())
    assert backend.status(lxc())["container-state"] == "running"
    backend.start(lxc())  # already running: no error
    backend.stop(lxc())
    assert engine.containers["phoenix-103"]["State"]["Status"] == "exited"
    backend.destroy(lxc())
    assert "phoenix-103" not in engine.containers
    assert backend.status(lxc()) == {}
    backend.destroy(lxc())  # gone already: no error
    backend.stop(lxc())


def test_templates_are_never_started(backend):
    backend.create(lxc(vmid=900), {})
    with pytest.raises(RuntimeError, match="template"):
        backend.start(lxc(vmid=900, template="1"))


def test_qemu_keys_ciuser_and_operator_keys(engine, tmp_path):
    backend = DockerBackend(client=engine, state_dir=tmp_path, authorized_keys=[OPERATOR])
    backend.create(qemu(), {"cipassword": None})
    container = engine.containers["phoenix-1001"]
    assert container["Config"]["Image"] == "phoenix-lab/vm:latest"
    assert container["Config"]["Env"] == [f"PHOENIX_SSH_AUTHORIZED_KEY={KEY}\n{OPERATOR}"]
    assert container["HostConfig"]["NanoCpus"] == 2_000_000_000  # 4 cores on a 2-CPU engine
    backend.start(qemu())
    execs = [b for m, p, b, _q in engine.calls if p.endswith("/exec")]
    assert execs and execs[0]["Cmd"][-2:] == ["phoenix", f"{KEY}\n{OPERATOR}"]


def test_sshkeys_removed_before_the_first_start_recreates_without_them(backend, engine):
    backend.create(qemu(), {})
    guest = qemu()
    del guest.config["sshkeys"]
    backend.config_changed(guest, {}, ["sshkeys"])
    assert engine.containers["phoenix-1001"]["Config"]["Env"] == []


def test_a_missing_network_is_created_internal(backend, engine):
    backend.create(lxc(net0=lxc().config["net0"].replace("vmbr0", "vmbr1")), {})
    net = engine.networks["phoenix-vmbr1"]
    assert net["Internal"] is True
    assert net["IPAM"]["Config"] == [{"Subnet": "10.77.0.0/24", "Gateway": "10.77.0.1"}]


def test_keys_survive_a_backend_restart(engine, tmp_path):
    DockerBackend(client=engine, state_dir=tmp_path).create(lxc(), {"ssh-public-keys": KEY})
    again = DockerBackend(client=engine, state_dir=tmp_path)
    assert again.spec(lxc())["keys"] == [KEY]
    assert spec_digest(again.spec(lxc())) == engine.containers["phoenix-103"]["Config"]["Labels"][
        "org.thinkheads.phoenix.spec"]


def test_missing_image_says_how_to_build_it(engine, tmp_path):
    def create_fails(*args, **kwargs):
        if args[:2] == ("POST", "/containers/create"):
            raise EngineError(404, "No such image: phoenix-lab/guest:latest")
        return FakeEngine.call(engine, *args, **kwargs)

    engine.call = create_fails
    with pytest.raises(EngineError, match="lab/images/build.sh"):
        DockerBackend(client=engine, state_dir=tmp_path).create(lxc(), {})
