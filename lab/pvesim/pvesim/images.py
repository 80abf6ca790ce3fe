"""Storage content that is fetched rather than allocated: download-url, the appliance index (aplinfo), and
the volume-name rules that qemu `import-from` checks against.

Each rule names the PVE source it models. pvesim keeps no file bytes: a download is streamed once to count its
size, hash it with every algorithm PVE offers and read a qcow2 header; the result is a record in
`Sim.volumes` (saved in `sim/state.json`).
"""

from __future__ import annotations

import bz2
import hashlib
import re
import ssl
import struct
import time
import urllib.error
import urllib.request
import zlib
from urllib.parse import urlsplit

from .errors import fail, param_fail
from .routes import Request, route
from .state import Sim

__all__ = ["APPLIANCES", "parse_volname", "volume_path", "qcow2_info", "ALGORITHMS"]

ALGORITHMS = ("md5", "sha1", "sha224", "sha256", "sha384", "sha512")
QCOW2_MAGIC = b"QFI\xfb"
CHUNK = 1024 * 1024
APL_SOURCE = "http://download.proxmox.com/images"

# pve-storage src/PVE/Storage.pm: the extension rules of iso, vztmpl and import files
ISO_EXT_RE = r"\.(?:iso|img)"
VZTMPL_EXT_RE = r"\.(?:(tar)(?!\.)|tar\.(gz|xz|zst|bz2))"
SAFE_CHARS = r"[a-zA-Z0-9\-\.\+\=\_]"
SAFE_CHARS_WS = r"[ a-zA-Z0-9\-\.\+\=\_]"
IMPORT_EXT_RE = r"\.(ova|ovf|qcow2|raw|vmdk)"
UPLOAD_IMPORT_EXT_RE = r"\.(ova|qcow2|raw|vmdk)"
QEMU_FORMATS = ("raw", "cow", "qcow", "qed", "qcow2", "vmdk", "cloop")

# where a dir storage keeps each content type (pve-storage src/PVE/Storage/Plugin.pm get_subdir)
SUBDIRS = {"iso": "template/iso", "vztmpl": "template/cache", "import": "import", "images": "images"}


# -- volume names ----------------------------------------------------------------------


def parse_volume_id(volid: str) -> tuple[str, str] | None:
    """(storage, volname), or None for something that is not a volume ID (pve-storage Plugin.pm parse_volume_id)."""
    match = re.fullmatch(r"([a-z][a-z0-9\-_.]*[a-z0-9]):(.+)", volid or "", re.I | re.S)
    return (match.group(1), match.group(2)) if match else None


def parse_volname(sim: Sim, volid: str) -> dict:
    """{vtype, name, vmid, format} of a volume, or PVE's error (pve-storage Plugin.pm and LvmThinPlugin.pm
    parse_volname)."""
    parsed = parse_volume_id(volid)
    if parsed is None:
        fail(f"unable to parse volume ID '{volid}'")
    storage, volname = parsed
    scfg = sim.storage(storage)
    if scfg["type"] == "lvmthin":
        match = re.fullmatch(r"((vm|base)-(\d+)-\S+)", volname)
        if not match:
            fail(f"unable to parse lvm volume name '{volname}'")
        return {"vtype": "images", "name": match.group(1), "vmid": int(match.group(3)), "format": "raw"}
    match = re.fullmatch(r"(\d+)/(\S+)", volname) or re.fullmatch(r"\d+/\S+/(\d+)/(\S+)", volname)
    if match:
        ext = match.group(2).rsplit(".", 1)[-1]
        return {"vtype": "images", "name": match.group(2), "vmid": int(match.group(1)),
                "format": ext if ext in QEMU_FORMATS else "raw"}
    match = re.fullmatch(rf"iso/([^/]+{ISO_EXT_RE})", volname, re.I)
    if match:
        return {"vtype": "iso", "name": match.group(1), "vmid": None, "format": "raw"}
    match = re.fullmatch(rf"vztmpl/([^/]+{VZTMPL_EXT_RE})", volname, re.I)
    if match:
        return {"vtype": "vztmpl", "name": match.group(1), "vmid": None, "format": "raw"}
    match = re.fullmatch(rf"import/({SAFE_CHARS_WS}+\.ova/{SAFE_CHARS_WS}+\.(qcow2|raw|vmdk))", volname)
    if match:
        return {"vtype": "import", "name": match.group(1), "vmid": None, "format": f"ova+{match.group(2)}"}
    match = re.fullmatch(rf"import/({SAFE_CHARS_WS}+{IMPORT_EXT_RE})", volname)
    if match:
        return {"vtype": "import", "name": match.group(1), "vmid": None, "format": match.group(2)}
    match = re.fullmatch(r"(backup|snippets)/([^/]+)", volname)
    if match:
        return {"vtype": match.group(1), "name": match.group(2), "vmid": None, "format": "raw"}
    fail(f"unable to parse directory volume name '{volname}'")


def volume_path(sim: Sim, storage: str, content: str, name: str) -> str:
    scfg = sim.storage(storage)
    return f"{scfg['path']}/{SUBDIRS[content]}/{name}"


def volid_path(sim: Sim, volid: str) -> str:
    """The file (dir storage) or device (LVM) path of a volume (pve-storage Plugin.pm filesystem_path)."""
    storage, volname = volid.split(":", 1)
    scfg = sim.storage(storage)
    if not scfg.get("path"):
        return f"/dev/{scfg.get('vgname', 'pve')}/{volname.split('/')[-1]}"
    vtype = parse_volname(sim, volid)["vtype"]
    rest = volname if vtype == "images" else volname.split("/", 1)[1]
    return f"{scfg['path']}/{SUBDIRS.get(vtype, vtype)}/{rest}"


def find_volume(sim: Sim, volid: str) -> dict | None:
    storage = volid.split(":", 1)[0]
    if storage not in sim.storages:
        return None
    return next((v for v in sim.storage_volumes(storage, internal=True) if v["volid"] == volid), None)


def qcow2_info(header: bytes) -> dict | None:
    """{virtual_size, backing} from a qcow2 header (magic QFI\\xfb; backing file offset at 8, size at 24)."""
    if len(header) < 32 or header[:4] != QCOW2_MAGIC:
        return None
    backing_offset = struct.unpack(">Q", header[8:16])[0]
    return {"virtual_size": struct.unpack(">Q", header[24:32])[0], "backing": backing_offset != 0}


def placeholder_bytes(name: str) -> bytes:
    """The stand-in content of a built-in or aplinfo volume (pvesim has no real template files)."""
    return f"pvesim placeholder for {name}\n".encode()


def placeholder_digests(name: str) -> dict:
    data = placeholder_bytes(name)
    return {algo: hashlib.new(algo, data).hexdigest() for algo in ALGORITHMS}


# -- the appliance index ---------------------------------------------------------------------------------------------


def _appliance(package, version, os_name, location, headline, description, size):
    template = location.rsplit("/", 1)[-1]
    return {
        "package": package, "version": version, "type": "lxc", "os": os_name, "section": "system",
        "maintainer": "Proxmox Support Team <support@proxmox.com>", "architecture": "amd64",
        "location": f"{APL_SOURCE}/{location}", "source": APL_SOURCE, "template": template,
        "infopage": "https://pve.proxmox.com/wiki/Linux_Container#pct_supported_distributions",
        "headline": headline, "description": description,
        "md5sum": hashlib.md5(placeholder_bytes(template)).hexdigest(),
        "sha512sum": hashlib.sha512(placeholder_bytes(template)).hexdigest(),
        "_size": size,
    }


# what pve-manager PVE/APLInfo.pm read_aplinfo_from_fh makes of aplinfo-pve-9.dat records (headline from the first
# Description line, the rest as description, template from the location); the checksums are pvesim's own
APPLIANCES = {
    a["template"]: a for a in (
        _appliance("debian-12-standard", "12.7-1", "debian-12", "system/debian-12-standard_12.7-1_amd64.tar.zst",
                   "Debian 12 Bookworm (standard)",
                   "A small Debian Bookworm system including all standard packages.", 126 * 1024**2),
        _appliance("debian-13-standard", "13.1-2", "debian-13", "system/debian-13-standard_13.1-2_amd64.tar.zst",
                   "Debian 13 Trixie (standard)",
                   "A small Debian Trixie system including all standard packages.", 129 * 1024**2),
        _appliance("ubuntu-24.04-standard", "24.04-2", "ubuntu-24.04",
                   "system/ubuntu-24.04-standard_24.04-2_amd64.tar.zst", "Ubuntu 24.04 Noble (standard)",
                   "A small Ubuntu 24.04 Noble Numbat system including all standard packages.", 141 * 1024**2),
        _appliance("alpine-3.22-default", "20250617", "alpine-3.22",
                   "system/alpine-3.22-default_20250617_amd64.tar.xz", "Alpine Linux 3.22 (default)",
                   "A small Alpine Linux 3.22 system.", 3 * 1024**2),
    )
}


@route("GET", "/nodes/{node}/aplinfo")
def aplinfo_list(sim: Sim, req: Request):
    # pve-manager PVE/API2/Nodes.pm aplinfo: every appliance of the index (pve-web-news left out)
    return [{k: v for k, v in item.items() if not k.startswith("_")} for item in APPLIANCES.values()]


@route("POST", "/nodes/{node}/aplinfo")
def aplinfo_download(sim: Sim, req: Request):
    template = req.params["template"]
    storage = req.params["storage"]
    # pve-manager PVE/API2/Nodes.pm apl_download: unknown template first, then the storage, then its content types
    appliance = APPLIANCES.get(template)
    if appliance is None:
        param_fail({"template": "no such template"})
    scfg = sim.storage(storage)
    if "vztmpl" not in scfg["content"].split(","):
        fail(f"storage '{storage}' does not support templates")
    dest = volume_path(sim, storage, "vztmpl", template)
    volid = f"{storage}:vztmpl/{template}"
    url = appliance["location"]

    def body(task):
        # pve-common src/PVE/Tools.pm download_file_from_url with hash_required and the index's sha512sum; pvesim
        # never contacts download.proxmox.com: the "download" is the placeholder content the checksum describes
        task.log.append(f"downloading {url} to {dest}")
        with sim.lock:
            existing = find_volume(sim, volid)
        if existing is not None:
            got = (existing.get("digests") or placeholder_digests(template))["sha512"]
            if got.lower() == appliance["sha512sum"].lower():
                task.log.append("calculating checksum of existing file...OK, got correct file already, "
                                "no need to download")
                return
            task.log.append("calculating checksum of existing file...")
            raise RuntimeError(f"checksum mismatch: got '{got}' != expect '{appliance['sha512sum']}', aborting")
        tmp = f"{dest}.tmp_dwnl.{task.pid}"
        size = appliance["_size"]
        task.log.extend(_wget_lines(url, tmp, size, None))
        task.log.append("calculating checksum...OK, checksum verified")
        with sim.lock:
            sim.volumes[sim.volume_key(volid)] = {
                "volid": volid, "content": "vztmpl", "format": _vztmpl_format(template), "size": size,
                "ctime": int(time.time()), "digests": placeholder_digests(template), "node": sim.node,
            }
            sim.save()
        task.log.append(f"download of '{url}' to '{dest}' finished")

    task = sim.tasks.start("download", template, req.authid, body)
    return task.upid


def _vztmpl_format(name: str) -> str:
    # pve-storage Plugin.pm get_subdir_files: 'tar', else 't' + the compression (tzst, txz, tgz, tbz2)
    match = re.search(rf"{VZTMPL_EXT_RE}$", name, re.I)
    if match and match.group(1):
        return "tar"
    return f"t{match.group(2)}" if match else "raw"


# -- download-url ------------------------------------------------------------------------------------------------------


def normalize_filename(name: str) -> str:
    """pve-storage src/PVE/Storage.pm normalize_content_filename: drop a trailing newline and everything up to the
    last (back)slash, then every character but letters, digits, '_', '.', '-' becomes '_'."""
    name = name[:-1] if name.endswith("\n") else name
    name = re.sub(r"^.*[/\\]", "", name, flags=re.S)
    return re.sub(r"[^a-zA-Z0-9_.-]", "_", name)


def encode_text(text: str) -> str:
    """pve-common src/PVE/ParseUtils.pm encode_text: percent-escape controls, high-bit characters, ':' and '%'."""
    out = []
    for byte in text.encode("utf-8"):
        char = chr(byte)
        out.append(char if 0x20 <= byte <= 0x7E and char not in ":%" else f"%{byte:02X}")
    return "".join(out)


@route("POST", "/nodes/{node}/storage/{storage}/download-url")
def download_url(sim: Sim, req: Request):
    storage = req.params["storage"]
    content = req.params["content"]
    url = req.params["url"]
    scfg = sim.storage(storage)
    # pve-storage src/PVE/API2/Storage/Status.pm download_url: file based storages only, with that content type
    if not scfg.get("path"):
        fail(f"can't upload to storage type '{scfg['type']}', not a file based storage!")
    if content not in scfg["content"].split(","):
        fail(f"storage '{storage}' is not configured for content-type '{content}'")
    filename = normalize_filename(str(req.params["filename"]))
    # download_url: the name/extension rule of each content type (ISO_EXT_RE_0, VZTMPL_EXT_RE_1,
    # SAFE_CHAR_CLASS_RE + UPLOAD_IMPORT_EXT_RE_1 of src/PVE/Storage.pm)
    image_format = None
    if content == "iso":
        if not re.search(rf"[^/]+{ISO_EXT_RE}$", filename, re.I):
            param_fail({"filename": "wrong file extension"})
        fmt = "iso"
    elif content == "vztmpl":
        if not re.search(rf"[^/]+{VZTMPL_EXT_RE}$", filename, re.I):
            param_fail({"filename": "wrong file extension"})
        fmt = _vztmpl_format(filename)
    else:
        match = re.search(rf"{SAFE_CHARS}+{UPLOAD_IMPORT_EXT_RE}$", filename)
        if not match:
            param_fail({"filename": "invalid filename or wrong extension"})
        fmt = match.group(1)
        image_format = None if fmt == "ova" else fmt
    algorithm = req.params.get("checksum-algorithm")
    checksum = req.params.get("checksum")
    verify = req.flag("verify-certificates", True)
    compression = req.params.get("compression")
    dest = volume_path(sim, storage, content, filename)
    volid = f"{storage}:{content}/{filename}"

    def body(task):
        _download(sim, task, url, dest, volid, content, fmt, image_format, checksum, algorithm, verify,
                  compression)

    # download_url: fork_worker('download', encode_text(filename), ...)
    task = sim.tasks.start("download", encode_text(filename), req.authid, body)
    return task.upid


def _download(sim, task, url, dest, volid, content, fmt, image_format, checksum, algorithm, verify, compression):
    log = task.log
    if compression:
        # download_url worker: only ISO images are decompressed (Storage.pm decompressor_info)
        if content != "iso":
            raise RuntimeError(f"decompression not supported for {content}")
        if compression not in ("gz", "bz2"):
            raise RuntimeError(f"pvesim: decompression '{compression}' is not implemented")
    # pve-common src/PVE/Tools.pm download_file_from_url: an existing file is kept when its checksum matches,
    # otherwise (or without a checksum) the download is refused
    log.append(f"downloading {url} to {dest}")
    with sim.lock:
        existing = find_volume(sim, volid)
    if existing is not None:
        if not checksum:
            raise RuntimeError(f"refusing to override existing file '{dest}'")
        name = volid.split("/", 1)[-1]
        got = (existing.get("digests") or placeholder_digests(name))[algorithm]
        if got.lower() == checksum.lower():
            log.append("calculating checksum of existing file...OK, got correct file already, no need to download")
            return
        log.append("calculating checksum of existing file...")
        raise RuntimeError(f"checksum mismatch: got '{got}' != expect '{checksum}', aborting")
    tmp = f"{dest}.tmp_dwnl.{task.pid}"
    result = _fetch(sim, url, tmp, verify, compression, log)
    if checksum:
        # download_file_from_url: the checksum of the downloaded (still compressed) file, case-insensitive
        got = result["digests"][algorithm]
        if got.lower() != checksum.lower():
            log.append("calculating checksum...")
            raise RuntimeError(f"checksum mismatch: got '{got}' != expect '{checksum}'")
        log.append("calculating checksum...OK, checksum verified")
    if compression:
        log.append(f"decompressing {tmp} to {dest}.tmp_dcom.{task.pid}")
    size = result["size"]
    virtual_size = size
    if image_format == "qcow2":
        # Status.pm download_url assert_file_validity -> Plugin.pm file_size_info(untrusted): qemu-img must read
        # it as qcow2, and a backing file is refused
        info = qcow2_info(result["header"])
        if info is None:
            raise RuntimeError(f"failed to verify file: qemu-img: Could not open '{tmp}': "
                               "Image is not in qcow2 format")
        if info["backing"]:
            raise RuntimeError(f"failed to verify file: backing file not allowed for untrusted image '{tmp}'!")
        virtual_size = info["virtual_size"]
    with sim.lock:
        record = {"volid": volid, "content": content, "format": fmt, "size": size, "ctime": int(time.time()),
                  "digests": result["digests"], "node": sim.node}
        if virtual_size != size:
            record["virtual_size"] = virtual_size
        sim.volumes[sim.volume_key(volid)] = record
        sim.save()
    log.append(f"download of '{url}' to '{dest}' finished")


def _timestamp() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")


def _human(size: int) -> str:
    for unit, factor in (("G", 1024**3), ("M", 1024**2), ("K", 1024)):
        if size >= factor:
            return f"{size / factor:.1f}{unit}"
    return str(size)


def _wget_lines(url: str, tmp: str, size: int | None, ctype: str | None) -> list[str]:
    """What `wget --progress=dot:giga -O TMP URL` prints for a finished download (Tools.pm download_file_from_url
    runs it; its output is the task log)."""
    host = urlsplit(url).hostname or ""
    port = urlsplit(url).port or (443 if url.startswith("https") else 80)
    lines = [f"--{_timestamp()}--  {url}", f"Connecting to {host}:{port}... connected.",
             "HTTP request sent, awaiting response... 200 OK",
             f"Length: {size} ({_human(size)}) [{ctype or 'application/octet-stream'}]" if size is not None
             else f"Length: unspecified [{ctype or 'application/octet-stream'}]",
             f"Saving to: '{tmp}'", ""]
    total = size or 0
    step = 32 * 1024**2  # dot:giga: one line per 32 MiB
    for done in range(step, total, step):
        lines.append(f"{(done - step) // 1024:6d}K ........ ........ ........ ........ {done * 100 // total:3d}%")
    lines.append(f"{(total // step) * step // 1024:6d}K {'':41}100%")
    lines.append("")
    lines.append(f"{_timestamp()} - '{tmp}' saved [{total}/{total}]")
    lines.append("")
    return lines


def _fetch(sim: Sim, url: str, tmp: str, verify: bool, compression: str | None, log: list[str]) -> dict:
    """GET the URL (no proxies from the environment: download_file_from_url clears %ENV and sets only
    datacenter.cfg's http_proxy); returns size (after decompression), digests (of the download) and header."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    context = None
    if parts.scheme == "https":
        context = ssl.create_default_context()
        if verify and sim.download_ca:
            context.load_verify_locations(cafile=sim.download_ca)
        if not verify:
            # verify-certificates=0: wget --no-check-certificate
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context))
    request = urllib.request.Request(url, headers={"User-Agent": "Wget/1.21.3 (linux-gnu)", "Accept": "*/*"})
    port = parts.port or (443 if parts.scheme == "https" else 80)
    log.append(f"--{_timestamp()}--  {url}")
    try:
        response = opener.open(request, timeout=60)
    except urllib.error.HTTPError as exc:
        log.append(f"Connecting to {host}:{port}... connected.")
        log.append(f"HTTP request sent, awaiting response... {exc.code} {exc.reason}")
        raise RuntimeError(f"download failed: {_timestamp()} ERROR {exc.code}: {exc.reason}.") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, ssl.SSLCertVerificationError):
            # wget's last words on an untrusted certificate; run_command(errmsg => 'download failed') puts the last
            # stderr line into the error
            log.append(f"Connecting to {host}:{port}... connected.")
            log.append(f"ERROR: cannot verify {host}'s certificate:")
            log.append(f"  {reason.verify_message or reason}")
            raise RuntimeError(f"download failed: To connect to {host} insecurely, use `--no-check-certificate'.") \
                from None
        text = getattr(reason, "strerror", None) or str(reason)
        raise RuntimeError(f"download failed: Connecting to {host}:{port}... failed: {text}.") from None
    except OSError as exc:
        raise RuntimeError(f"download failed: {exc}") from None
    hashes = {algo: hashlib.new(algo) for algo in ALGORITHMS}
    decompressor = None
    if compression == "gz":
        decompressor = zlib.decompressobj(wbits=47)
    elif compression == "bz2":
        decompressor = bz2.BZ2Decompressor()
    length = response.headers.get("Content-Length")
    length = int(length) if length and length.isdigit() else None
    log.append(f"Connecting to {host}:{port}... connected.")
    log.append(f"HTTP request sent, awaiting response... {response.status} {response.reason}")
    ctype = response.headers.get("Content-Type") or "application/octet-stream"
    log.append(f"Length: {length} ({_human(length)}) [{ctype}]" if length is not None
               else f"Length: unspecified [{ctype}]")
    log.append(f"Saving to: '{tmp}'")
    log.append("")
    received = 0
    out_size = 0
    header = b""
    step = 32 * 1024**2
    next_mark = step
    started = time.monotonic()
    try:
        with response:
            while True:
                chunk = response.read(CHUNK)
                if not chunk:
                    break
                received += len(chunk)
                for digest in hashes.values():
                    digest.update(chunk)
                data = decompressor.decompress(chunk) if decompressor else chunk
                out_size += len(data)
                if len(header) < 64:
                    header += data[: 64 - len(header)]
                while received >= next_mark:
                    percent = f"{next_mark * 100 // length:3d}%" if length else ""
                    log.append(f"{(next_mark - step) // 1024:6d}K ........ ........ ........ ........ {percent}")
                    next_mark += step
    except (OSError, EOFError, zlib.error, ValueError) as exc:
        raise RuntimeError(f"download failed: {exc}") from None
    elapsed = max(time.monotonic() - started, 1e-6)
    log.append(f"{(next_mark - step) // 1024:6d}K {'':41}100% {_human(int(received / elapsed))}/s")
    log.append("")
    rate = _human(int(received / elapsed))
    log.append(f"{_timestamp()} ({rate}B/s) - '{tmp}' saved [{received}/{length or received}]")
    log.append("")
    return {"size": out_size, "digests": {a: h.hexdigest() for a, h in hashes.items()}, "header": header}
