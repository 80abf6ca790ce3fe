"""Guest images: download-url (a real fetch from loopback HTTP(S) servers the tests start), the appliance index
(aplinfo), qemu `import-from` checks and sizes, and the create -> snapshot -> template -> clone chain."""

from __future__ import annotations

import datetime
import gzip
import hashlib
import ipaddress
import os
import ssl
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pvesim_testlib import PASSWORD, TOKEN_ID, TOKEN_SECRET, Api

from pvesim.__main__ import build_parser
from pvesim.server import start_server

GIB = 1024**3
ISO = "local:iso/debian-12.7.0-amd64-netinst.iso"
ROOT_ONLY = "Only root can pass arbitrary filesystem paths. at /usr/share/perl5/PVE/Storage.pm line 651.\n"
INSECURE = "download failed: To connect to 127.0.0.1 insecurely, use `--no-check-certificate'."
SYNTAX = "'import-from' requires special syntax - use <storage ID>:0,import-from=<source>"


def qcow2_image(virtual_size: int, backing: bool = False, padding: int = 70000) -> bytes:
    """A qcow2 header (magic, version 3, backing file offset, cluster bits 16, virtual size) plus filler."""
    header = b"QFI\xfb" + struct.pack(">IQIIQ", 3, 4096 if backing else 0, 0, 16, virtual_size)
    return header + bytes(padding)


# -- loopback servers --------------------------------------------------------------------------------------------


def _name(text):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


def make_ca_and_cert(directory, label):
    """A CA and a server certificate for 127.0.0.1/localhost signed by it; returns (ca.pem, cert.pem, key.pem)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name(f"{label} CA")).issuer_name(_name(f"{label} CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name("127.0.0.1")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = tuple(str(directory / f"{label}-{n}.pem") for n in ("ca", "cert", "key"))
    (directory / f"{label}-ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (directory / f"{label}-cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / f"{label}-key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return paths


class FileServer:
    """Serves `files` (path -> bytes) on 127.0.0.1, over TLS when given a certificate."""

    def __init__(self, files: dict, cert=None, key=None):
        self.files = files
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802
                body = owner.files.get(self.path)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        scheme = "http"
        if cert:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
            scheme = "https"
        self.base = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


IMAGE = qcow2_image(3 * GIB)
FILES = {
    "/images/noble.qcow2": IMAGE,
    "/images/plain.raw": b"\x00" * 5000,
    "/images/not-qcow2.qcow2": b"definitely not an image" * 10,
    "/images/backed.qcow2": qcow2_image(GIB, backing=True),
    "/iso/tiny.iso": b"ISO" * 1000,
    "/iso/tiny.iso.gz": gzip.compress(b"ISO" * 2000),
}


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    directory = tmp_path_factory.mktemp("download-tls")
    return {"trusted": make_ca_and_cert(directory, "trusted"), "other": make_ca_and_cert(directory, "other")}


@pytest.fixture(scope="module")
def https(certs):
    srv = FileServer(FILES, *certs["trusted"][1:])
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def untrusted(certs):
    srv = FileServer(FILES, *certs["other"][1:])
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def plain():
    srv = FileServer(FILES)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def sim(tmp_path_factory, certs):
    """A pvesim of its own, trusting the test CA through PVESIM_DOWNLOAD_CA."""
    state_dir = tmp_path_factory.mktemp("pvesim-images")
    old = os.environ.get("PVESIM_DOWNLOAD_CA")
    os.environ["PVESIM_DOWNLOAD_CA"] = certs["trusted"][0]
    try:
        srv = start_server(state_dir=state_dir, tokens=[f"{TOKEN_ID}={TOKEN_SECRET}"],
                           passwords=[f"root@pam:{PASSWORD}"], task_seconds=0.05)
    finally:
        if old is None:
            os.environ.pop("PVESIM_DOWNLOAD_CA", None)
        else:
            os.environ["PVESIM_DOWNLOAD_CA"] = old
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def api(sim) -> Api:
    return Api(sim.api_url, sim.ca_file, {"Authorization": f"PVEAPIToken={TOKEN_ID}={TOKEN_SECRET}"})


@pytest.fixture(scope="module")
def root(sim) -> Api:
    anon = Api(sim.api_url, sim.ca_file)
    data = anon.data("POST", "/access/ticket", username="root@pam", password=PASSWORD)
    client = Api(sim.api_url, sim.ca_file, {"CSRFPreventionToken": data["CSRFPreventionToken"]})
    client.session.cookies.set("PVEAuthCookie", data["ticket"])
    return client


def _download(api, url, filename, content="import", **extra):
    upid = api.data("POST", "/nodes/pve/storage/local/download-url", url=url, filename=filename, content=content,
                    **extra)
    return upid, api.wait(upid)


def _log(api, upid):
    return [line["t"] for line in api.data("GET", f"/nodes/pve/tasks/{upid}/log", limit=0)]


def _content(api, content):
    return {v["volid"]: v for v in api.data("GET", "/nodes/pve/storage/local/content", content=content)}


# -- download-url ------------------------------------------------------------------------------------------------


def test_https_download_lists_the_image(api, https):
    url = f"{https.base}/images/noble.qcow2"
    upid, status = _download(api, url, "noble.qcow2", checksum=hashlib.sha256(IMAGE).hexdigest().upper(),
                             **{"checksum-algorithm": "sha256"})
    assert status["exitstatus"] == "OK", _log(api, upid)
    assert (status["type"], status["id"]) == ("download", "noble.qcow2")
    log = _log(api, upid)
    assert log[0] == f"downloading {url} to /var/lib/vz/import/noble.qcow2"
    assert "calculating checksum...OK, checksum verified" in log
    assert log[-2:] == [f"download of '{url}' to '/var/lib/vz/import/noble.qcow2' finished", "TASK OK"]
    volume = _content(api, "import")["local:import/noble.qcow2"]
    assert (volume["content"], volume["format"], volume["size"]) == ("import", "qcow2", len(IMAGE))
    assert volume["ctime"] > 0
    info = api.data("GET", "/nodes/pve/storage/local/content/" + quote("local:import/noble.qcow2", safe=""))
    assert (info["size"], info["used"], info["path"]) == (3 * GIB, len(IMAGE), "/var/lib/vz/import/noble.qcow2")
    # the same name again: refused without a checksum, kept with the right one (Tools.pm download_file_from_url)
    upid, status = _download(api, url, "noble.qcow2")
    assert status["exitstatus"] == "refusing to override existing file '/var/lib/vz/import/noble.qcow2'"
    upid, status = _download(api, url, "noble.qcow2", checksum=hashlib.md5(IMAGE).hexdigest(),
                             **{"checksum-algorithm": "md5"})
    assert status["exitstatus"] == "OK"
    kept = "calculating checksum of existing file...OK, got correct file already, no need to download"
    assert kept in _log(api, upid)


def test_checksum_mismatch_fails_and_adds_nothing(api, https):
    wrong = "0" * 128
    upid, status = _download(api, f"{https.base}/images/noble.qcow2", "mismatch.qcow2", checksum=wrong,
                             **{"checksum-algorithm": "sha512"})
    got = hashlib.sha512(IMAGE).hexdigest()
    assert status["exitstatus"] == f"checksum mismatch: got '{got}' != expect '{wrong}'"
    assert _log(api, upid)[-2:] == ["calculating checksum...", f"TASK ERROR: {status['exitstatus']}"]
    assert "local:import/mismatch.qcow2" not in _content(api, "import")


@pytest.mark.parametrize("extra, errors", [
    ({"checksum": "abc"}, {"checksum-algorithm": "missing property required by 'checksum'"}),
    ({"checksum-algorithm": "sha256"}, {"checksum": "missing property required by 'checksum-algorithm'"}),
    ({"checksum": "abc", "checksum-algorithm": "crc32"}, {"checksum-algorithm": None}),
    ({"filename": "image.txt"}, {"filename": "invalid filename or wrong extension"}),
    ({"content": "iso"}, {"filename": "wrong file extension"}),
    ({"content": "vztmpl"}, {"filename": "wrong file extension"}),
    ({"content": "images"}, {"content": None}),
    ({"url": "ftp://127.0.0.1/x.qcow2"}, {"url": None}),
])
def test_download_parameter_errors(api, https, extra, errors):
    params = {"url": f"{https.base}/images/noble.qcow2", "filename": "x.qcow2", "content": "import", **extra}
    response = api.post("/nodes/pve/storage/local/download-url", **params)
    assert (response.status_code, response.json()["message"]) == (400, "Parameter verification failed.\n")
    got = response.json()["errors"]
    assert set(got) == set(errors)
    for key, text in errors.items():
        if text is not None:
            assert got[key] == text


def test_download_storage_errors(api, https):
    response = api.post("/nodes/pve/storage/local-lvm/download-url", url=f"{https.base}/images/noble.qcow2",
                        filename="x.qcow2", content="import")
    assert response.json()["message"] == "can't upload to storage type 'lvmthin', not a file based storage!\n"
    assert response.status_code == 500


def test_http_download_normalizes_the_name(api, plain):
    upid, status = _download(api, f"{plain.base}/iso/tiny.iso", "../sub dir/my tiny+1.iso", content="iso")
    assert status["exitstatus"] == "OK" and status["id"] == "my_tiny_1.iso"
    assert _content(api, "iso")["local:iso/my_tiny_1.iso"]["size"] == 3000
    upid, status = _download(api, f"{plain.base}/iso/tiny.iso.gz", "unpacked.iso", content="iso",
                             compression="gz")
    assert status["exitstatus"] == "OK", _log(api, upid)
    assert _content(api, "iso")["local:iso/unpacked.iso"]["size"] == 6000
    upid, status = _download(api, f"{plain.base}/images/plain.raw", "plain.raw", compression="gz")
    assert status["exitstatus"] == "decompression not supported for import"
    upid, status = _download(api, f"{plain.base}/images/plain.raw", "plain.raw")
    assert status["exitstatus"] == "OK"
    assert _content(api, "import")["local:import/plain.raw"]["format"] == "raw"
    upid, status = _download(api, f"{plain.base}/missing.raw", "missing.raw")
    assert status["exitstatus"].startswith("download failed: ") and "ERROR 404: Not Found." in status["exitstatus"]


def test_untrusted_certificate_is_refused_by_default(api, untrusted):
    url = f"{untrusted.base}/images/plain.raw"
    upid, status = _download(api, url, "untrusted.raw")
    assert status["exitstatus"] == INSECURE
    assert "local:import/untrusted.raw" not in _content(api, "import")
    upid, status = _download(api, url, "untrusted.raw", **{"verify-certificates": 0})
    assert status["exitstatus"] == "OK"
    assert "local:import/untrusted.raw" in _content(api, "import")


def test_image_checks_of_untrusted_files(api, https):
    upid, status = _download(api, f"{https.base}/images/not-qcow2.qcow2", "bad.qcow2")
    assert status["exitstatus"].startswith("failed to verify file: qemu-img: Could not open ")
    upid, status = _download(api, f"{https.base}/images/backed.qcow2", "backed.qcow2")
    assert status["exitstatus"].startswith("failed to verify file: backing file not allowed for untrusted image ")
    assert not {"local:import/bad.qcow2", "local:import/backed.qcow2"} & set(_content(api, "import"))


def test_download_ca_option_and_persistence(api, sim, https, certs, tmp_path):
    assert _download(api, f"{https.base}/images/plain.raw", "persist.raw")[1]["exitstatus"] == "OK"
    args = build_parser().parse_args(["--state-dir", str(tmp_path), "--download-ca", certs["trusted"][0]])
    assert args.download_ca == certs["trusted"][0]
    assert sim.sim.download_ca == certs["trusted"][0]  # from PVESIM_DOWNLOAD_CA
    sim.sim.save()
    again = start_server(state_dir=sim.sim.dir, tls=False, task_seconds=0.05)
    try:
        assert "local:import/persist.raw" in {v["volid"] for v in again.sim.storage_volumes("local")}
    finally:
        again.stop()


# -- aplinfo ----------------------------------------------------------------------------------------------------


def test_aplinfo_list(api):
    items = {a["template"]: a for a in api.data("GET", "/nodes/pve/aplinfo")}
    ubuntu = items["ubuntu-24.04-standard_24.04-2_amd64.tar.zst"]
    assert (ubuntu["package"], ubuntu["version"], ubuntu["os"], ubuntu["section"], ubuntu["type"]) == (
        "ubuntu-24.04-standard", "24.04-2", "ubuntu-24.04", "system", "lxc")
    assert ubuntu["location"] == "http://download.proxmox.com/images/system/" + ubuntu["template"]
    assert len(ubuntu["sha512sum"]) == 128 and ubuntu["headline"] and ubuntu["infopage"]
    assert {a["package"] for a in items.values()} >= {"debian-12-standard", "alpine-3.22-default"}


def test_aplinfo_download(api):
    template = "debian-13-standard_13.1-2_amd64.tar.zst"
    upid = api.data("POST", "/nodes/pve/aplinfo", storage="local", template=template)
    status = api.wait(upid)
    assert (status["exitstatus"], status["type"], status["id"]) == ("OK", "download", template)
    assert "calculating checksum...OK, checksum verified" in _log(api, upid)
    volume = _content(api, "vztmpl")[f"local:vztmpl/{template}"]
    assert (volume["format"], volume["content"]) == ("tzst", "vztmpl")
    # a template already there with the index's checksum is kept
    upid = api.data("POST", "/nodes/pve/aplinfo", storage="local",
                    template="debian-12-standard_12.7-1_amd64.tar.zst")
    assert api.wait(upid)["exitstatus"] == "OK"
    assert any("got correct file already" in line for line in _log(api, upid))


def test_aplinfo_errors(api):
    response = api.post("/nodes/pve/aplinfo", storage="local", template="nosuch_1.0_amd64.tar.zst")
    assert (response.status_code, response.json()["errors"]) == (400, {"template": "no such template"})
    response = api.post("/nodes/pve/aplinfo", storage="local-lvm", template="debian-12-standard_12.7-1_amd64.tar.zst")
    assert (response.status_code, response.json()["message"]) == (500, "storage 'local-lvm' does not support "
                                                                       "templates\n")


# -- import-from ------------------------------------------------------------------------------------------------


def _create(client, vmid, scsi0, **extra):
    return client.post("/nodes/pve/qemu", vmid=vmid, name=f"vm{vmid}", memory=2048, scsihw="virtio-scsi-single",
                       scsi0=scsi0, **extra)


def test_import_from_gives_the_image_size(api, https):
    _download(api, f"{https.base}/images/noble.qcow2", "import-me.qcow2")
    response = _create(api, 301, "local-lvm:0,import-from=local:import/import-me.qcow2")
    upid = response.json()["data"]
    status = api.wait(upid)
    assert status["exitstatus"] == "OK"
    config = api.data("GET", "/nodes/pve/qemu/301/config")
    assert config["scsi0"] == "local-lvm:vm-301-disk-0,size=3G"
    log = _log(api, upid)
    assert "create full clone of drive (local:import/import-me.qcow2)" in log
    assert "scsi0: successfully created disk 'local-lvm:vm-301-disk-0,size=3G'" in log


def test_import_from_an_iso_is_refused(api):
    response = _create(api, 302, f"local-lvm:0,import-from={ISO}")
    assert response.status_code == 400
    assert response.json()["errors"] == {
        "scsi0": f"{ISO} has wrong type 'iso' - needs to be 'images' or 'import'"}
    assert api.get("/nodes/pve/qemu/302/config").status_code == 500
    # update_vm checks a new drive the same way
    api.run("POST", "/nodes/pve/qemu", vmid=305, memory=512)
    response = api.put("/nodes/pve/qemu/305/config", scsi1=f"local-lvm:0,import-from={ISO}")
    assert response.json()["errors"] == {"scsi1": f"{ISO} has wrong type 'iso' - needs to be 'images' or 'import'"}
    response = api.put("/nodes/pve/qemu/305/config", scsi1="local-lvm:0,import-from=local:import/missing.qcow2")
    assert response.json()["message"] == "failed to stat '/var/lib/vz/import/missing.qcow2'\n"


def test_import_from_syntax_and_missing_volume(api):
    response = _create(api, 303, "local-lvm:8,import-from=local:import/debian-12-genericcloud-amd64.qcow2")
    assert (response.status_code, response.json()["errors"]) == (400, {"scsi0": SYNTAX})
    status = api.wait(_create(api, 303, "local-lvm:0,import-from=local:import/missing.qcow2").json()["data"])
    assert status["exitstatus"] == "unable to create VM 303 - failed to stat '/var/lib/vz/import/missing.qcow2'"
    assert api.get("/nodes/pve/qemu/303/config").status_code == 500


def test_import_from_a_path_is_root_only(api, root, tmp_path):
    image = tmp_path / "disk.qcow2"
    image.write_bytes(qcow2_image(5 * GIB, padding=100))
    response = _create(api, 304, f"local-lvm:0,import-from={image}")
    assert (response.status_code, response.json()["message"]) == (500, ROOT_ONLY)
    status = api.wait(_create(root, 304, f"local-lvm:0,import-from={image}").json()["data"])
    assert status["exitstatus"] == "OK"
    assert api.data("GET", "/nodes/pve/qemu/304/config")["scsi0"] == "local-lvm:vm-304-disk-0,size=5G"


# -- create -> resize -> snapshot -> template -> clone --------------------------------------------------------


def test_snapshot_template_clone_chain(api):
    base = "/nodes/pve/qemu"
    status = api.wait(_create(api, 310, "local-lvm:0,import-from=local:import/debian-12-genericcloud-amd64.qcow2",
                              ide2="local-lvm:cloudinit").json()["data"])
    assert status["exitstatus"] == "OK"
    assert api.run("PUT", f"{base}/310/resize", disk="scsi0", size="+8G")["exitstatus"] == "OK"
    assert api.run("POST", f"{base}/310/snapshot", snapname="golden")["exitstatus"] == "OK"
    # qemu-server API2/Qemu.pm template: a VM with snapshots cannot become a template
    response = api.post(f"{base}/310/template")
    assert (response.status_code, response.json()["message"]) == (
        500, "unable to create template, because VM contains snapshots\n")
    # clones from the snapshot: full (the default for a VM) and linked (LVM-thin can clone a snapshot)
    assert api.run("POST", f"{base}/310/clone", newid=311, snapname="golden")["exitstatus"] == "OK"
    assert api.data("GET", f"{base}/311/config")["scsi0"].startswith("local-lvm:vm-311-disk-0,size=10G")
    assert api.run("POST", f"{base}/310/clone", newid=312, snapname="golden", full=0)["exitstatus"] == "OK"
    # after the snapshot is gone the VM converts; a template takes no snapshot and is no template twice
    assert api.run("DELETE", f"{base}/310/snapshot/golden")["exitstatus"] == "OK"
    assert api.run("POST", f"{base}/310/template")["exitstatus"] == "OK"
    assert api.data("GET", f"{base}/310/config")["scsi0"].startswith("local-lvm:base-310-disk-0")
    response = api.post(f"{base}/310/template")
    assert response.json()["message"] == "you can't convert a template to a template\n"
    status = api.run("POST", f"{base}/310/snapshot", snapname="again")
    assert status["exitstatus"] == "you can't take a snapshot if it's a template"
    assert "lock" not in api.data("GET", f"{base}/310/config")
    response = api.post(f"{base}/310/clone", newid=313, snapname="golden")
    assert (response.status_code, response.json()["message"]) == (500, "snapshot 'golden' does not exist\n")
    assert api.run("POST", f"{base}/310/clone", newid=313, name="linked")["exitstatus"] == "OK"
    assert api.run("POST", f"{base}/310/clone", newid=314, full=1)["exitstatus"] == "OK"
    assert api.data("GET", f"{base}/314/config")["scsi0"].startswith("local-lvm:vm-314-disk-0,size=10G")
