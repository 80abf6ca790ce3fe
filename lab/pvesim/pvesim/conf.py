"""Reading and writing PVE guest config files (/etc/pve/lxc/<vmid>.conf, qemu-server/<vmid>.conf).

Layout as PVE writes it: the description as `#` comment lines at the top, `key: value`
lines sorted by key, raw `lxc.*` lines last (LXC only), then the pending section and one
`[snapname]` section per snapshot. The digest is the SHA-1 of the file's bytes.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

__all__ = ["GuestConf", "parse_conf", "write_conf", "encode_text", "decode_text"]

_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in ":%")


def encode_text(text: str) -> str:
    """Escape control and non-ASCII characters, ':' and '%' (PVE's comment encoding)."""
    return quote(text, safe=_SAFE)


def decode_text(text: str) -> str:
    return unquote(text)


@dataclass
class Section:
    """One section of a config: options, description, raw lxc.* lines."""

    options: dict[str, str] = field(default_factory=dict)
    description: str | None = None
    lxc: list[list[str]] = field(default_factory=list)

    def copy(self) -> Section:
        return Section(dict(self.options), self.description, [list(x) for x in self.lxc])


@dataclass
class GuestConf:
    kind: str  # "lxc" | "qemu"
    main: Section = field(default_factory=Section)
    pending: Section | None = None
    special: dict[str, Section] = field(default_factory=dict)  # e.g. [special:cloudinit]
    snapshots: dict[str, Section] = field(default_factory=dict)
    digest: str = ""

    @property
    def options(self) -> dict[str, str]:
        return self.main.options


_PENDING_NAMES = {"lxc": "pve:pending", "qemu": "PENDING"}


def parse_conf(raw: str, kind: str) -> GuestConf:
    conf = GuestConf(kind=kind, digest=hashlib.sha1(raw.encode("utf-8")).hexdigest())
    section = conf.main
    descr: list[str] = []

    def close(sec: Section):
        if descr:
            sec.description = "\n".join(descr)
            descr.clear()

    for line in raw.split("\n"):
        if not line.strip():
            continue
        header = re.fullmatch(r"\[([^\]]+)\]\s*", line)
        if header:
            close(section)
            name = header.group(1)
            section = Section()
            if name.lower() == _PENDING_NAMES[kind].lower():
                conf.pending = section
            elif name.startswith("special:"):
                conf.special[name] = section
            else:
                conf.snapshots[name] = section
            continue
        if line.startswith("#"):
            descr.append(decode_text(line[1:]))
            continue
        raw_lxc = re.fullmatch(r"(lxc\.[a-z0-9_\-.]+)(?::|\s*=)\s*(.*?)\s*", line)
        if kind == "lxc" and raw_lxc:
            section.lxc.append([raw_lxc.group(1), raw_lxc.group(2)])
            continue
        match = re.fullmatch(r"([a-z][a-z0-9_\-]*):\s*(.*?)\s*", line)
        if match:
            key, value = match.group(1), match.group(2)
            if key == "description":
                descr.append(decode_text(value))
            else:
                section.options[key] = value
        # unparsable lines are ignored, as PVE does (with a warning) in non-strict mode
    close(section)
    return conf


def _render_section(sec: Section) -> str:
    out = []
    if sec.description:
        for line in sec.description.split("\n"):
            out.append("#" + encode_text(line))
    for key in sorted(sec.options):
        value = sec.options[key]
        if value is None:
            continue
        value = str(value)
        if "\n" in value:
            raise ValueError(f"detected invalid newline inside property '{key}'")
        out.append(f"{key}: {value}")
    for key, value in sec.lxc:
        out.append(f"{key}: {value}")
    return "".join(line + "\n" for line in out)


def render_conf(conf: GuestConf) -> str:
    raw = _render_section(conf.main)
    if conf.pending and (conf.pending.options or conf.pending.description):
        raw += f"\n[{_PENDING_NAMES[conf.kind]}]\n" + _render_section(conf.pending)
    for name in sorted(conf.special):
        raw += f"\n[{name}]\n" + _render_section(conf.special[name])
    for name in sorted(conf.snapshots):
        raw += f"\n[{name}]\n" + _render_section(conf.snapshots[name])
    return raw


def write_conf(path: str | os.PathLike, conf: GuestConf) -> str:
    """Write atomically; returns and records the new digest."""
    raw = render_conf(conf)
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(raw)
    os.replace(tmp, path)
    conf.digest = hashlib.sha1(raw.encode("utf-8")).hexdigest()
    return conf.digest
