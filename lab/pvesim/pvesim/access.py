"""Privileges per user and API token, and `GET /access/permissions`.

pvesim holds no roles, groups or pools. An ACL entry here is (path, identity, privileges, propagate), i.e. one ACL
line with a role made of exactly those privileges. They come from `--acl AUTHID:PATH:PRIV,PRIV[:0]` at start
(`start_server(acls=[...])`). Defaults keep pvesim permissive: a user without any entry holds every privilege on
`/` (a real PVE user without an ACL holds none), and a token without any entry is not privilege-separated (it
holds its user's privileges). A token with entries is privilege-separated: its own privileges, within its user's.

`GET /access/permissions` reports them; of the other calls only migrate checks its privilege (`check_perm`, see
the README).
"""

from __future__ import annotations

import re

from .errors import ApiError
from .privs import ROOT
from .routes import route

__all__ = ["ALL_PRIVILEGES", "Acl", "check_perm", "parse_acl_spec"]

# pve-access-control src/PVE/AccessControl.pm $privgroups and $valid_privs: every privilege PVE knows. The
# Administrator role holds all of them (create_roles / $special_roles).
ALL_PRIVILEGES = tuple(sorted("""
VM.Config.Disk VM.Config.CPU VM.Config.Memory VM.Config.Network VM.Config.HWType VM.Config.Options VM.Allocate
VM.Clone VM.GuestAgent.Unrestricted VM.Migrate VM.Replicate VM.Snapshot VM.Snapshot.Rollback VM.Config.CDROM
VM.Config.Cloudinit VM.Console VM.Backup VM.GuestAgent.FileRead VM.GuestAgent.FileSystemMgmt
VM.GuestAgent.FileWrite VM.PowerMgmt VM.Audit VM.GuestAgent.Audit
Sys.PowerMgmt Sys.Modify Sys.Incoming Sys.AccessNetwork Sys.Console Sys.Syslog Sys.Audit
Datastore.Allocate Datastore.AllocateTemplate Datastore.AllocateSpace Datastore.Audit
SDN.Allocate SDN.Audit SDN.Use
Realm.Allocate User.Modify Group.Allocate Realm.AllocateUser
Pool.Allocate Pool.Audit
Mapping.Modify Mapping.Use Mapping.Audit
Permissions.Modify
""".split()))

# pve-access-control src/PVE/RPCEnvironment.pm get_effective_permissions: the paths always reported
DEFAULT_PATHS = ("/", "/access", "/access/groups", "/nodes", "/pool", "/sdn", "/storage", "/vms")
AUTHID_RE = re.compile(r"^[^\s:/]+@[A-Za-z][A-Za-z0-9.\-_]+(?:![A-Za-z][A-Za-z0-9.\-_]+)?$")


def parse_acl_spec(spec: str) -> tuple[str, str, frozenset, bool]:
    """'phoenix@pve!ansible:/:VM.Audit,VM.Allocate[:0]' -> (authid, path, privileges, propagate)."""
    parts = spec.split(":")
    if len(parts) not in (3, 4) or not AUTHID_RE.match(parts[0]) or not parts[1].startswith("/"):
        raise ValueError(f"acl must look like 'USER@REALM[!TOKEN]:/PATH:PRIV,PRIV[:0]', got {spec!r}")
    privs = frozenset(p for p in parts[2].split(",") if p)
    unknown = sorted(privs - set(ALL_PRIVILEGES))
    if unknown:
        # pve-access-control src/PVE/AccessControl.pm verify_privname
        raise ValueError(f"acl {spec!r}: invalid privilege '{unknown[0]}'")
    if len(parts) == 4 and parts[3] not in ("0", "1"):
        raise ValueError(f"acl {spec!r}: propagate must be 0 or 1")
    path = "/" + "/".join(p for p in parts[1].split("/") if p)
    return parts[0], path, privs, len(parts) == 3 or parts[3] == "1"


class Acl:
    """The ACL tree of pvesim."""

    def __init__(self, specs=None):
        # {authid: {path: {privilege: propagate}}}; several entries on one path add up, like several roles on one
        # ACL path, and a privilege propagates when any of them does (RPCEnvironment.pm compile_acl_path)
        self.entries: dict[str, dict[str, dict[str, int]]] = {}
        for spec in specs or ():
            authid, path, privs, propagate = parse_acl_spec(spec) if isinstance(spec, str) else spec
            here = self.entries.setdefault(authid, {}).setdefault(path, {})
            for priv in privs:
                here[priv] = int(bool(here.get(priv)) or bool(propagate))

    def paths(self) -> set[str]:
        return {path for per_id in self.entries.values() for path in per_id}

    def _walk(self, authid: str, path: str) -> dict[str, int]:
        # pve-access-control src/PVE/AccessControl.pm roles: walk from / to the path; an entry on the path
        # itself always applies, one above it only when it propagates; a deeper entry replaces what is above
        parts = [p for p in path.split("/") if p]
        found: dict[str, int] = {}
        per_id = self.entries.get(authid, {})
        for depth in range(len(parts) + 1):
            entry = per_id.get("/" + "/".join(parts[:depth]))
            if not entry:
                continue
            applies = entry if depth == len(parts) else {p: flag for p, flag in entry.items() if flag}
            if applies:
                found = dict(applies)
        return found

    def permissions(self, authid: str, path: str) -> dict[str, int]:
        """{privilege: propagate flag} that ``authid`` holds on ``path``."""
        # pve-access-control src/PVE/RPCEnvironment.pm permissions: root@pam holds every privilege, propagated
        if authid == ROOT:
            return {p: 1 for p in ALL_PRIVILEGES}
        user, _sep, token = authid.partition("!")
        if token:
            # RPCEnvironment.pm permissions: a token that is not privilege-separated has its user's privileges
            user_perms = self.permissions(user, path)
            if authid not in self.entries:
                return user_perms
            own = self._walk(authid, path)
            if user == ROOT:
                # RPCEnvironment.pm compile_acl_path: a root@pam token's privileges are not intersected
                return own
            # RPCEnvironment.pm compile_acl_path: a privsep token keeps what its user holds too, propagated only
            # when both propagate
            return {p: int(bool(user_perms[p] and flag)) for p, flag in own.items() if p in user_perms}
        if authid not in self.entries:
            # pvesim's default (not PVE's): a user without an ACL entry holds every privilege on /
            return {p: 1 for p in ALL_PRIVILEGES}
        return self._walk(authid, path)

    def effective(self, authid: str) -> dict[str, dict[str, int]]:
        # pve-access-control src/PVE/RPCEnvironment.pm get_effective_permissions: the default paths and every
        # path an ACL names; paths without any privilege are left out
        out = {}
        for path in sorted(set(DEFAULT_PATHS) | self.paths()):
            perms = self.permissions(authid, path)
            if perms:
                out[path] = perms
        return out


def check_perm(req, path: str, priv: str):
    """403 unless the request's identity holds ``priv`` on ``path`` (propagated from above or set on it)."""
    # pve-access-control src/PVE/RPCEnvironment.pm check: a privilege missing on the path raises
    # raise_perm_exc("$path, $priv") (pve-common src/PVE/Exception.pm: "Permission check failed (...)")
    if priv not in req.extra["auth"].acl.permissions(req.authid, path):
        raise ApiError(403, f"Permission check failed ({path}, {priv})")


@route("GET", "/access/permissions")
def get_permissions(sim, req):
    acl = req.extra["auth"].acl
    authid = req.authid
    userid = req.get("userid") or authid
    owner = userid.partition("!")[0] if "!" in userid else None
    # pve-access-control src/PVE/API2/AccessControl.pm permissions: one's own permissions, or those of one's own
    # tokens; anyone else's need Sys.Audit on /access
    if userid != authid and owner != authid and "Sys.Audit" not in acl.permissions(authid, "/access"):
        raise ApiError(403, "Permission check failed (/access, Sys.Audit)")
    tokens = req.extra["auth"].tokens
    if "!" in userid and userid not in tokens:
        # RPCEnvironment.pm permissions: an unknown token holds nothing
        return {req.get("path"): {}} if req.get("path") else {}
    path = req.get("path")
    if path:
        # AccessControl.pm permissions: only that path (an empty map when nothing is held there)
        return {path: acl.permissions(userid, path)}
    return acl.effective(userid)
