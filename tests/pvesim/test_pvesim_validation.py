"""Every request is validated against the PVE API schema, with PVE's error texts."""

from pvesim_testlib import TEMPLATE

from pvesim.schema import ApiSchema, parse_property_string, validate_params


def _create(api, **extra):
    params = {"vmid": 990, "ostemplate": TEMPLATE, "rootfs": "local-lvm:8"}
    params.update(extra)
    return api.post("/nodes/pve/lxc", **params)


def test_net0_unknown_subkey_is_rejected_naming_net0(api):
    response = _create(api, net0="name=eth0,brige=vmbr0")
    assert response.status_code == 400
    body = response.json()
    assert body["data"] is None
    assert set(body["errors"]) == {"net0"}
    assert "brige" in body["errors"]["net0"]
    assert body["errors"]["net0"].startswith("invalid format - invalid key in comma-separated list property")
    assert response.reason == "Parameter verification failed."


def test_net0_bad_ip_is_rejected_naming_net0(api):
    response = _create(api, net0="name=eth0,bridge=vmbr0,ip=10.0.0.300/24")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {"net0"}
    assert "net0.ip" in errors["net0"] and "ipv4" in errors["net0"]


def test_unknown_parameter(api):
    response = _create(api, frobnicate=1)
    assert response.status_code == 400
    assert response.json()["errors"] == {
        "frobnicate": "property is not defined in schema and the schema does not allow additional properties"
    }


def test_enum_minimum_type_and_missing(api):
    errors = _create(api, arch="sparc").json()["errors"]
    assert errors["arch"].startswith("value 'sparc' does not have a value in the enumeration 'amd64, i386")
    assert _create(api, memory=8).json()["errors"] == {"memory": "value must have a minimum value of 16"}
    assert _create(api, cores=9999).json()["errors"] == {"cores": "value must have a maximum value of 8192"}
    assert _create(api, onboot="true").json()["errors"] == {"onboot": "type check ('boolean') failed - got 'true'"}
    response = api.post("/nodes/pve/lxc", vmid=990)
    assert response.json()["errors"] == {"ostemplate": "property is missing and it is not optional"}


def test_named_formats(api):
    assert "DNS name" in _create(api, hostname="bad_name").json()["errors"]["hostname"]
    assert "VM ID" in _create(api, vmid=42).json()["errors"]["vmid"]
    assert _create(api, tags="ok;bad!tag").json()["errors"]["tags"] == "invalid format - invalid characters in tag\n"
    assert "startup" in _create(api, startup="order=x").json()["errors"]
    response = _create(api, net0="name=eth0,bridge=vmbr0,hwaddr=01:00:00:00:00:01")
    assert "unicast MAC" in response.json()["errors"]["net0"]


def test_instance_parameters_map_to_their_definition(api):
    errors = _create(api, mp0="local-lvm:4,mp=/data,backup=maybe").json()["errors"]
    assert set(errors) == {"mp0"} and "mp0.backup" in errors["mp0"]
    errors = _create(api, net32="name=eth32,bridge=vmbr0").json()["errors"]
    assert "net32" in errors and "not defined in schema" in errors["net32"]


def test_path_parameters_are_validated(api):
    response = api.get("/nodes/pve/lxc/abc/config")
    assert response.status_code == 400
    assert response.json()["errors"] == {"vmid": "type check ('integer') failed - got 'abc'"}


def test_unknown_path_and_method(api):
    response = api.get("/nodes/pve/foo")
    assert response.status_code == 501
    assert response.reason == "Method 'GET /nodes/pve/foo' not implemented"
    assert api.call("PUT", "/version").status_code == 501


def test_qemu_property_strings(api):
    base = {"vmid": 991, "scsi0": "local-lvm:4"}
    response = api.post("/nodes/pve/qemu", **base, ipconfig0="ip=10.0.0.5/24,gw=10.0.0.300")
    assert "ipconfig0.gw" in response.json()["errors"]["ipconfig0"]
    response = api.post("/nodes/pve/qemu", **base, net0="virtio,bridge=vmbr0,tag=5000")
    assert "net0.tag" in response.json()["errors"]["net0"]
    response = api.post("/nodes/pve/qemu", **base, sshkeys="ssh-ed25519 AAAA key")
    assert response.json()["errors"]["sshkeys"].startswith("invalid format - invalid urlencoded string")


def test_json_bodies_are_accepted_and_validated(api):
    body = {"vmid": 990, "ostemplate": TEMPLATE, "onboot": "yes"}
    response = api.session.post(api.base + "/nodes/pve/lxc", json=body)
    assert response.json()["errors"] == {"onboot": "type check ('boolean') failed - got 'yes'"}


def test_validator_directly():
    schema = ApiSchema.load()
    params = schema.parameters("/nodes/{node}/lxc/{vmid}/config", "PUT")
    validate_params({"node": "pve", "vmid": "100", "net5": "name=eth5,bridge=vmbr0,firewall=1"}, params)
    fmt = schema.property_schema("/nodes/{node}/qemu", "POST", "net0")["format"]
    parsed = parse_property_string(fmt, "virtio=BC:24:11:00:00:01,bridge=vmbr0,firewall=1")
    assert parsed == {"model": "virtio", "macaddr": "BC:24:11:00:00:01", "bridge": "vmbr0", "firewall": "1"}
