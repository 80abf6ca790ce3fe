"""Container options only `root@pam` itself may set (not its API tokens, not other users).

The rule lives in pve-container `src/PVE/LXC.pm` check_ct_modify_config_perm, called by create_vm
(`src/PVE/API2/LXC.pm`) and update_vm (`src/PVE/API2/LXC/Config.pm`). pvesim has no ACLs (every
identity holds every privilege), so only these root-only cases are modelled. The identity is the
authenticated one: `root@pam` logged in with a ticket passes; a token `root@pam!id` does not.
"""

from __future__ import annotations

import re

from .errors import ApiError
from .formats import split_list

__all__ = ["ROOT", "check_ct_root_only", "is_root", "mount_type"]

ROOT = "root@pam"
FEATURE_RE = re.compile(r"^\s*([a-z_]+)\s*=\s*(\S*)\s*$")


def is_root(authid: str | None) -> bool:
    return authid == ROOT


def _deny(what: str):
    # pve-common src/PVE/Exception.pm raise_perm_exc: HTTP 403 "Permission check failed (<what>)"
    raise ApiError(403, f"Permission check failed ({what})")


def mount_type(value: str) -> str:
    """`volume`, or `bind` for a host path (pve-container src/PVE/LXC/Config.pm classify_mountpoint; pvesim cannot
    tell a block device, so every absolute path counts as a bind mount)."""
    first = str(value or "").split(",", 1)[0]
    if first.startswith("volume="):
        first = first[len("volume="):]
    return "bind" if first.startswith("/") else "volume"


def _features(text: str | None) -> dict[str, str]:
    out = {}
    for part in split_list(text or ""):
        match = FEATURE_RE.match(part)
        if match:
            out[match.group(1)] = match.group(2)
    return out


def _features_beyond_nesting(old: str | None, new: str | None, delete: bool) -> bool:
    """Whether a features change touches anything but `nesting` (the same comparison as PVE's)."""
    if delete:
        return bool(set(_features(old)) - {"nesting"})
    want = _features(new)
    if old:
        have = _features(old)
        return any(have.get(k, "") != want.get(k, "") for k in set(have) | set(want) if k != "nesting")
    return bool(set(want) - {"nesting"})


def check_ct_root_only(authid: str | None, oldconf: dict | None, params: dict, deletes, unprivileged: bool):
    """Raise PVE's 403 when a non-root identity sets (or deletes) a root-only container option."""
    if is_root(authid):
        return
    checks = [(key, True) for key in sorted(deletes or ())] + [(key, False) for key in sorted(params)]
    for key, delete in checks:
        if re.fullmatch(r"dev\d+", key):
            _deny("configuring device passthrough is only allowed for root@pam")
        elif re.fullmatch(r"(mp\d+|rootfs)", key) and not delete:
            kind = mount_type(params[key])
            if kind != "volume":
                _deny(f"mount point type {kind} is only allowed for root@pam")
        elif key == "features":
            if not unprivileged:
                _deny("changing feature flags for privileged container is only allowed for root@pam")
            old = (oldconf or {}).get("features")
            if _features_beyond_nesting(old, None if delete else str(params[key]), delete):
                _deny("changing feature flags (except nesting) is only allowed for root@pam")
        elif key == "hookscript":
            _deny("changing the hookscript is only allowed for root@pam")


def update_deletes(params: dict) -> list[str]:
    """The keys a config update removes (`delete`) or reverts (`revert`); PVE checks both."""
    return split_list(params.get("delete")) + split_list(params.get("revert"))
