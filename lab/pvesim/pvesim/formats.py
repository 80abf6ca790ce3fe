"""Named parameter formats of the PVE API schema.

The API schema names formats (``pve-vmid``, ``dns-name``, ...) whose checks live in PVE's
Perl code, not in the schema. The ones a guest/firewall client can reach are implemented
here with the error wording PVE uses. A format that is not known here is accepted.

Each verifier takes the string value and raises :class:`FormatError` with PVE's message.
"""

from __future__ import annotations

import ipaddress
import re

__all__ = ["FormatError", "FORMATS", "PROPERTY_FORMATS", "split_list", "parse_size"]


class FormatError(ValueError):
    """A value does not match its named format; ``str()`` is PVE's message."""


def split_list(text: str | None) -> list[str]:
    """Split a PVE list value: separators are ',', ';', whitespace or NUL."""
    text = text or ""
    if "\0" in text:
        return text.split("\0")
    return [part for part in re.split(r"[,;\s]+", text) if part]


_SIZE_RE = re.compile(r"^(\d+(?:\.\d+)?)([KMGT](?:iB)?)?$")
_SIZE_UNITS = {"K": 1, "M": 2, "G": 3, "T": 4}


def parse_size(value: str) -> int | None:
    """Parse a PVE disk size (``8G``, ``512M``, ``1.5T``, bytes) into bytes, or None."""
    match = _SIZE_RE.match(str(value))
    if not match:
        return None
    number = float(match.group(1))
    unit = match.group(2)
    if unit:
        number *= 1024 ** _SIZE_UNITS[unit[0]]
    return int(number)


def _ipv4(value: str) -> bool:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return False
    return True


def _ipv6(value: str) -> bool:
    if "%" in value or not value:
        return False
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return False
    return True


def _cidr(value: str, check, low: int, high: int) -> bool:
    addr, sep, bits = value.partition("/")
    if not sep or not bits.isdigit():
        return False
    return check(addr) and low < int(bits) <= high


def _fail(message: str):
    raise FormatError(message)


def _vmid(value):
    if not re.fullmatch(r"[1-9][0-9]{2,8}", value):
        _fail("value does not look like a valid VM ID")


def _node(value):
    if not re.fullmatch(r"[a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?", value):
        _fail("value does not look like a valid node name")


def _pve_id(kind):
    def check(value):
        if len(value) < 2:
            _fail(f"{kind} ID '{value}' cannot be shorter than 2 characters")
        if not re.fullmatch(r"[a-z][a-z0-9\-_.]*[a-z0-9]", value, re.I):
            _fail(f"{kind} ID '{value}' contains illegal characters")

    return check


def _configid(value):
    if not re.fullmatch(r"[a-z][a-z0-9_-]+", value, re.I):
        _fail(f"invalid configuration ID '{value}'")


def _bridge(value):
    if not re.fullmatch(r"[-_.\w\d]+", value):
        _fail(f"invalid bridge ID '{value}'")


def _mac(value):
    if not re.fullmatch(r"[a-f0-9][02468ace](?::[a-f0-9]{2}){5}", value, re.I):
        _fail("value does not look like a valid unicast MAC address")


def _ipv4_fmt(value):
    if not _ipv4(value):
        _fail("value does not look like a valid IPv4 address")


def _ipv6_fmt(value):
    if not _ipv6(value):
        _fail("value does not look like a valid IPv6 address")


def _ip_fmt(value):
    if not (_ipv4(value) or _ipv6(value)):
        _fail("value does not look like a valid IP address")


def _ipv4mask(value):
    try:
        ipaddress.IPv4Network(f"0.0.0.0/{value}")
    except ValueError:
        _fail("value does not look like a valid IP netmask")
    if not _ipv4(value):
        _fail("value does not look like a valid IP netmask")


def _cidrv4(value):
    if not _cidr(value, _ipv4, 7, 32):
        _fail("value does not look like a valid IPv4 CIDR network")


def _cidrv6(value):
    if not _cidr(value, _ipv6, 7, 128):
        _fail("value does not look like a valid IPv6 CIDR network")


def _cidr_any(value):
    if not (_cidr(value, _ipv4, 7, 32) or _cidr(value, _ipv6, 7, 128)):
        _fail("value does not look like a valid CIDR network")


def _ipv4_config(value):
    if value not in ("dhcp", "manual") and not _cidr(value, _ipv4, 7, 32):
        _fail("value does not look like a valid ipv4 network configuration")


def _ipv6_config(value):
    if value not in ("auto", "dhcp", "manual") and not _cidr(value, _ipv6, 7, 128):
        _fail("value does not look like a valid ipv6 network configuration")


_DNS_LABEL = r"[a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?"


def _is_dns_name(value):
    return re.fullmatch(rf"({_DNS_LABEL}\.)*{_DNS_LABEL}", value) is not None


def _dns_name(value):
    if not _is_dns_name(value):
        _fail("value does not look like a valid DNS name")


def _address(value):
    if not (_ipv4(value) or _ipv6(value) or _is_dns_name(value)):
        _fail(f"value does not look like a valid address: {value}")


_EMAIL_USER = r"[\w+\-~]+(\.[\w+\-~]+)*"
_EMAIL = rf"{_EMAIL_USER}@[a-zA-Z0-9\-]+(\.[a-zA-Z0-9\-]+)*"


def _email(value):
    if not re.fullmatch(_EMAIL, value):
        _fail("value does not look like a valid email address")


def _iface(value):
    if not re.fullmatch(r"[a-z][a-z0-9_]{1,20}([:.]\d+)?", value, re.I):
        _fail(f"invalid network interface name '{value}'")


def _disk_size(value):
    if parse_size(value) is None:
        _fail(f"value does not look like a valid disk size: {value}")


def _startup(value):
    parts = [part for part in value.split(",") if part.strip()]
    if not parts:
        _fail("unable to parse startup options")
    for part in parts:
        if not re.fullmatch(r"(order=)?\d+|up=\d+|down=\d+", part):
            _fail("unable to parse startup options")


def _tag(value):
    if not re.fullmatch(r"[a-z0-9_][a-z0-9_\-+.]*", value, re.I):
        _fail("invalid characters in tag")


def _urlencoded(value):
    if not re.fullmatch(r"[-%a-zA-Z0-9_.!~*'()]*", value):
        _fail(f"invalid urlencoded string: {value}")


_VOLID_RE = re.compile(r"([a-z][a-z0-9\-_.]*[a-z0-9]):(.+)", re.I)


def _volume_id(value):
    if not _VOLID_RE.fullmatch(value):
        _fail(f"unable to parse volume ID '{value}'")


def _volume_or_path(value):
    if value.startswith("/"):
        return
    _volume_id(value)


def _qm_path(value):
    if value in ("none", "cdrom") or value.startswith("/"):
        return
    _volume_id(value)


def _lxc_ip_ll(value):
    addr, _sep, iface = value.partition("%")
    if _ipv4(addr) or _ipv6(addr):
        if iface and not re.fullmatch(r"[a-z][a-z0-9_]{1,20}", iface, re.I):
            _fail(f"invalid network interface name '{iface}'")
        return
    _fail("value does not look like a valid IP address")


def _vlan_range(value):
    match = re.fullmatch(r"(\d+)(?:-(\d+))?", value)
    if not match:
        _fail(f"invalid VLAN configuration '{value}'")
    for tag in match.groups():
        if tag is not None and not 2 <= int(tag) <= 4094:
            _fail(f"invalid VLAN tag '{tag}'")


def _userid(value):
    if not re.fullmatch(r"[^\s:/]+@[A-Za-z][A-Za-z0-9.\-_]+", value) or len(value) > 64:
        _fail("value does not look like a valid user name")


def _ip_or_cidr(value):
    if "/" in value:
        _cidr_any(value)
    else:
        _ip_fmt(value)


def _fw_addr(value):
    # IP, CIDR, range (a-b), alias/ipset names (+name, dc/name, guest/name) and lists
    for item in value.split(","):
        if not item:
            _fail(f"invalid address -- value '{value}'")
        if item.startswith("+") or re.fullmatch(r"((dc|guest)/)?[A-Za-z][A-Za-z0-9\-_]+", item):
            continue
        lo, sep, hi = item.partition("-")
        try:
            if sep:
                _ip_fmt(lo)
                _ip_fmt(hi)
            else:
                _ip_or_cidr(item)
        except FormatError:
            _fail(f"invalid address -- value '{item}'")


def _fw_port(kind):
    def check(value):
        for item in value.split(","):
            for port in item.split(":"):
                if port.isdigit():
                    if not 0 <= int(port) <= 65535:
                        _fail(f"invalid port '{port}'")
                elif not re.fullmatch(r"[a-z][a-z0-9\-+]*", port, re.I):
                    _fail(f"invalid port '{port}'")

    return check


def _fw_proto(value):
    if not (value.isdigit() or re.fullmatch(r"[a-z][a-z0-9\-_.]*", value, re.I)):
        _fail(f"unknown protocol '{value}'")


def _ip_or_cidr_or_alias(value):
    if re.fullmatch(r"((dc|guest)/)?[A-Za-z][A-Za-z0-9\-_]+", value):
        return
    _ip_or_cidr(value)


FORMATS = {
    "pve-vmid": _vmid,
    "pve-node": _node,
    "pve-storage-id": _pve_id("storage"),
    "pve-configid": _configid,
    "pve-bridge-id": _bridge,
    "mac-addr": _mac,
    "ipv4": _ipv4_fmt,
    "ipv6": _ipv6_fmt,
    "ip": _ip_fmt,
    "ipv4mask": _ipv4mask,
    "CIDRv4": _cidrv4,
    "CIDRv6": _cidrv6,
    "CIDR": _cidr_any,
    "IPorCIDR": _ip_or_cidr,
    "IPorCIDRorAlias": _ip_or_cidr_or_alias,
    "pve-ipv4-config": _ipv4_config,
    "pve-ipv6-config": _ipv6_config,
    "dns-name": _dns_name,
    "address": _address,
    "email": _email,
    "pve-iface": _iface,
    "disk-size": _disk_size,
    "pve-startup-order": _startup,
    "pve-tag": _tag,
    "urlencoded": _urlencoded,
    "pve-volume-id": _volume_id,
    "pve-volume-id-or-qm-path": _qm_path,
    "pve-volume-id-or-absolute-path": _volume_or_path,
    "pve-lxc-mp-string": _volume_or_path,
    "lxc-ip-with-ll-iface": _lxc_ip_ll,
    "pve-vlan-id-or-range": _vlan_range,
    "pve-userid": _userid,
    "pve-fw-addr-spec": _fw_addr,
    "pve-fw-dport-spec": _fw_port("dport"),
    "pve-fw-sport-spec": _fw_port("sport"),
    "pve-fw-protocol-spec": _fw_proto,
    "pve-poolid": _pve_id("pool"),
    "string": lambda value: None,
}

# Named formats that PVE registers as property-string schemas. The API schema only carries
# their name, so the sub-keys are declared here (types/formats as PVE defines them).
PROPERTY_FORMATS = {
    "pve-qm-ipconfig": {
        "ip": {"type": "string", "format": "pve-ipv4-config", "optional": 1},
        "gw": {"type": "string", "format": "ipv4", "optional": 1},
        "ip6": {"type": "string", "format": "pve-ipv6-config", "optional": 1},
        "gw6": {"type": "string", "format": "ipv6", "optional": 1},
    },
}
