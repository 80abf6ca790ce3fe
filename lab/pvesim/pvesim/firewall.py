"""Firewall: cluster and guest options, rules (pos/moveto/digest), aliases and IP sets."""

from __future__ import annotations

import re

from .errors import fail, param_fail
from .formats import split_list
from .routes import Request, route
from .state import Sim

RULE_KEYS = ("type", "action", "macro", "source", "dest", "proto", "dport", "sport", "iface", "log", "comment",
             "enable", "icmp-type")
GUEST_OPTION_KEYS = ("enable", "dhcp", "ipfilter", "log_level_in", "log_level_out", "macfilter", "ndp",
                     "policy_in", "policy_out", "radv")
CLUSTER_OPTION_KEYS = ("enable", "ebtables", "log_ratelimit", "policy_in", "policy_out", "policy_forward")
MACROS = {"SSH", "HTTP", "HTTPS", "DNS", "Ping", "SMTP", "NTP", "Web", "DHCPfwd", "MySQL", "PostgreSQL"}

_BASES = ("/cluster/firewall", "/nodes/{node}/lxc/{vmid}/firewall", "/nodes/{node}/qemu/{vmid}/firewall")


def _paths(suffix: str) -> tuple[str, ...]:
    return tuple(base + suffix for base in _BASES)


def _scope(sim: Sim, req: Request) -> dict:
    """The firewall config the request addresses: the cluster's, or the guest's keyed by vmid alone.

    A guest's firewall is /etc/pve/firewall/<vmid>.fw in pmxcfs: one file for the whole cluster, whichever node
    the path names and whether or not that node (or any) holds the guest.
    """
    if req.template.startswith("/cluster/"):
        store = sim.firewall.setdefault("cluster", {})
    else:
        # pve-firewall src/PVE/API2/Firewall/VM.pm register_handlers: no handler checks that the guest exists
        # pve-firewall src/PVE/Firewall.pm load_vmfw_conf: a missing <vmid>.fw reads as the empty config
        guests = sim.firewall.setdefault("guests", {})
        key = str(int(req.params["vmid"]))
        store = guests.get(key) or {}
    store.setdefault("options", {})
    store.setdefault("rules", [])
    store.setdefault("aliases", {})
    store.setdefault("ipsets", {})
    return store


def _save(sim: Sim, req: Request, store: dict):
    """Persist a changed config: a guest's is (re)created keyed by vmid, or dropped when nothing is left in it."""
    if not req.template.startswith("/cluster/"):
        guests = sim.firewall.setdefault("guests", {})
        key = str(int(req.params["vmid"]))
        if any(store.get(part) for part in ("options", "rules", "aliases", "ipsets")):
            # pve-firewall src/PVE/Firewall.pm save_vmfw_conf: a write creates <vmid>.fw
            guests[key] = store
        else:
            # pve-firewall src/PVE/Firewall.pm save_vmfw_conf: a config that formats to nothing unlinks <vmid>.fw
            guests.pop(key, None)
    sim.save()


def _check_digest(sim: Sim, req: Request, data):
    digest = req.params.get("digest")
    if digest and digest != sim.digest_of(data):
        fail("detected modified configuration - file changed by other user? Try again.")


def _text(value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


@route("GET", *_paths(""))
def index(sim: Sim, req: Request):
    _scope(sim, req)
    names = ["aliases", "ipset", "options", "rules"]
    if req.template.startswith("/cluster/"):
        names += ["groups", "macros", "refs"]
    else:
        names += ["log", "refs"]
    return [{"name": n} for n in sorted(names)]


# -- options ----------------------------------------------------------------------------


@route("GET", *_paths("/options"))
def options_get(sim: Sim, req: Request):
    store = _scope(sim, req)
    data = {}
    for key, value in store["options"].items():
        data[key] = int(value) if re.fullmatch(r"\d+", str(value)) and key not in ("log_ratelimit",) else value
    data["digest"] = sim.digest_of(store["options"])
    return data


@route("PUT", *_paths("/options"))
def options_put(sim: Sim, req: Request):
    store = _scope(sim, req)
    _check_digest(sim, req, store["options"])
    keys = CLUSTER_OPTION_KEYS if req.template.startswith("/cluster/") else GUEST_OPTION_KEYS
    for key in split_list(req.params.get("delete")):
        if key not in keys:
            param_fail({"delete": f"no such option '{key}'"})
        store["options"].pop(key, None)
    for key in keys:
        if key in req.params:
            store["options"][key] = _text(req.params[key])
    _save(sim, req, store)
    return None


# -- rules ------------------------------------------------------------------------------


def _rules_with_digest(sim: Sim, rules: list[dict]) -> tuple[list[dict], str]:
    digest = sim.digest_of(rules)
    result = []
    for pos, rule in enumerate(rules):
        item = {}
        for key, value in rule.items():
            item[key] = int(value) if key in ("enable", "ipversion") else value
        item["pos"] = pos
        item["digest"] = digest
        result.append(item)
    return result, digest


def _verify_rule(sim: Sim, store: dict, rule: dict, cluster: bool):
    errors = {}
    if rule.get("type") == "group":
        groups = sim.firewall.get("cluster", {}).get("groups", {})
        if rule.get("action") not in groups:
            errors["action"] = f"security group '{rule.get('action')}' does not exist"
    elif rule.get("action") not in ("ACCEPT", "DROP", "REJECT"):
        errors["action"] = f"unknown action '{rule.get('action')}'"
    macro = rule.get("macro")
    if macro:
        # pve-firewall Firewall.pm verify_rule: a macro is looked up case-insensitively, stored by its preferred name
        preferred = {name.lower(): name for name in MACROS}.get(macro.lower())
        if preferred:
            rule["macro"] = macro = preferred
        else:
            errors["macro"] = f"unknown macro '{macro}'"
    for port_key in ("dport", "sport"):
        if rule.get(port_key) and not rule.get("proto") and not macro:
            errors["proto"] = f"missing property - '{port_key}' requires this property"
    iface = rule.get("iface")
    if iface and not cluster and not re.fullmatch(r"net\d+", iface):
        errors["iface"] = f"invalid interface name '{iface}' (expected netX)"
    for addr_key in ("source", "dest"):
        value = rule.get(addr_key)
        if value and re.fullmatch(r"[A-Za-z][A-Za-z0-9\-_]+", value):
            local = store.get("aliases", {})
            cluster_aliases = sim.firewall.get("cluster", {}).get("aliases", {})
            if value.lower() not in local and value.lower() not in cluster_aliases:
                errors[addr_key] = f"no such alias '{value}'"
        if value and value.startswith("+"):
            name = value[1:].split("/")[-1].lower()
            local = store.get("ipsets", {})
            cluster_sets = sim.firewall.get("cluster", {}).get("ipsets", {})
            if name not in local and name not in cluster_sets:
                errors[addr_key] = f"no such ipset '{value[1:]}'"
    # Firewall.pm verify_rule: ipversion from the source/dest addresses (literal or through an alias)
    versions = set()
    for addr_key in ("source", "dest"):
        value = rule.get(addr_key) or ""
        alias = (store.get("aliases", {}).get(value.lower())
                 or sim.firewall.get("cluster", {}).get("aliases", {}).get(value.lower()))
        if alias:
            value = alias["cidr"]
        if value and not value.startswith("+"):
            versions.add(6 if ":" in value else 4)
    if len(versions) > 1:
        fail("detected mixed ipv4/ipv6 addresses in rule")
    rule.pop("ipversion", None)
    if versions:
        rule["ipversion"] = str(versions.pop())
    if errors:
        param_fail(errors)


def _copy_rule_data(rule: dict, params: dict):
    for key in RULE_KEYS:
        if key in params and params[key] is not None:
            value = _text(params[key])
            if value in ("", "-"):
                rule.pop(key, None)
            elif key == "comment":
                # Firewall.pm parse_fw_rule reads the saved '# comment' back without surrounding white space
                rule[key] = value.strip()
            else:
                rule[key] = value


@route("GET", *_paths("/rules"))
def rules_list(sim: Sim, req: Request):
    store = _scope(sim, req)
    return _rules_with_digest(sim, store["rules"])[0]


@route("POST", *_paths("/rules"))
def rules_create(sim: Sim, req: Request):
    store = _scope(sim, req)
    # pve-firewall API2/Firewall/Rules.pm create_rule: `digest` is accepted but not checked on create
    rule: dict = {}
    _copy_rule_data(rule, req.params)
    rule.setdefault("enable", "0")
    _verify_rule(sim, store, rule, req.template.startswith("/cluster/"))
    # PVE puts a new rule first; `pos` is accepted but not used for placement
    store["rules"].insert(0, rule)
    _save(sim, req, store)
    return None


def _rule_at(store: dict, pos: int) -> dict:
    if pos >= len(store["rules"]):
        fail(f"no rule at position {pos}")
    return store["rules"][pos]


@route("GET", *_paths("/rules/{pos}"))
def rule_get(sim: Sim, req: Request):
    store = _scope(sim, req)
    pos = int(req.params["pos"])
    _rule_at(store, pos)
    return _rules_with_digest(sim, store["rules"])[0][pos]


@route("PUT", *_paths("/rules/{pos}"))
def rule_update(sim: Sim, req: Request):
    store = _scope(sim, req)
    _check_digest(sim, req, store["rules"])
    pos = int(req.params["pos"])
    rule = _rule_at(store, pos)
    moveto = req.params.get("moveto")
    rules = store["rules"]
    if moveto is not None and int(moveto) != pos:
        moveto = int(moveto)
        new = []
        for i, other in enumerate(rules):
            if i == pos:
                continue
            if i == moveto:
                new.append(rule)
            new.append(other)
        if moveto >= len(rules):
            new.append(rule)
        store["rules"] = new
    else:
        updated = dict(rule)
        _copy_rule_data(updated, req.params)
        for key in split_list(req.params.get("delete")):
            if key not in RULE_KEYS or key in ("type", "action"):
                param_fail({"delete": f"unable to delete '{key}'"})
            updated.pop(key, None)
        _verify_rule(sim, store, updated, req.template.startswith("/cluster/"))
        rules[pos] = updated
    _save(sim, req, store)
    return None


@route("DELETE", *_paths("/rules/{pos}"))
def rule_delete(sim: Sim, req: Request):
    store = _scope(sim, req)
    _check_digest(sim, req, store["rules"])
    pos = int(req.params["pos"])
    _rule_at(store, pos)
    del store["rules"][pos]
    _save(sim, req, store)
    return None


# -- aliases ----------------------------------------------------------------------------


def _aliases_list(sim: Sim, store: dict) -> list[dict]:
    items = [dict(v) for _key, v in sorted(store["aliases"].items())]
    digest = sim.digest_of(items)
    for item in items:
        item["digest"] = digest
        item["ipversion"] = 6 if ":" in item["cidr"] else 4
    return items


@route("GET", *_paths("/aliases"))
def aliases_list(sim: Sim, req: Request):
    return _aliases_list(sim, _scope(sim, req))


@route("POST", *_paths("/aliases"))
def alias_create(sim: Sim, req: Request):
    store = _scope(sim, req)
    name = req.params["name"]
    if name.lower() in store["aliases"]:
        fail(f"alias '{name}' already exists")
    entry = {"name": name, "cidr": req.params["cidr"]}
    if req.params.get("comment"):
        entry["comment"] = req.params["comment"]
    store["aliases"][name.lower()] = entry
    _save(sim, req, store)
    return None


def _alias(store: dict, name: str) -> dict:
    entry = store["aliases"].get(name.lower())
    if entry is None:
        fail(f"no such alias '{name}'")
    return entry


@route("GET", *_paths("/aliases/{name}"))
def alias_get(sim: Sim, req: Request):
    store = _scope(sim, req)
    entry = _alias(store, req.params["name"])
    return next(item for item in _aliases_list(sim, store) if item["name"] == entry["name"])


@route("PUT", *_paths("/aliases/{name}"))
def alias_update(sim: Sim, req: Request):
    store = _scope(sim, req)
    _check_digest(sim, req, [dict(v) for _key, v in sorted(store["aliases"].items())])
    entry = _alias(store, req.params["name"])
    entry["cidr"] = req.params["cidr"]
    if "comment" in req.params:
        if req.params["comment"]:
            entry["comment"] = req.params["comment"]
        else:
            entry.pop("comment", None)
    rename = req.params.get("rename")
    if rename and rename.lower() != entry["name"].lower():
        if rename.lower() in store["aliases"]:
            fail(f"alias '{rename}' already exists")
        del store["aliases"][entry["name"].lower()]
        entry["name"] = rename
        store["aliases"][rename.lower()] = entry
    _save(sim, req, store)
    return None


@route("DELETE", *_paths("/aliases/{name}"))
def alias_delete(sim: Sim, req: Request):
    store = _scope(sim, req)
    _check_digest(sim, req, [dict(v) for _key, v in sorted(store["aliases"].items())])
    store["aliases"].pop(req.params["name"].lower(), None)
    _save(sim, req, store)
    return None


# -- IP sets ----------------------------------------------------------------------------


def _ipset(store: dict, name: str) -> dict:
    ipset = store["ipsets"].get(name.lower())
    if ipset is None:
        fail(f"no such IPSet '{name}'")
    return ipset


@route("GET", *_paths("/ipset"))
def ipset_list(sim: Sim, req: Request):
    store = _scope(sim, req)
    items = []
    for _key, ipset in sorted(store["ipsets"].items()):
        item = {"name": ipset["name"]}
        if ipset.get("comment"):
            item["comment"] = ipset["comment"]
        items.append(item)
    digest = sim.digest_of(items)
    for item in items:
        item["digest"] = digest
    return items


@route("POST", *_paths("/ipset"))
def ipset_create(sim: Sim, req: Request):
    store = _scope(sim, req)
    name = req.params["name"]
    rename = req.params.get("rename")
    if rename:
        ipset = _ipset(store, rename)
        if name.lower() in store["ipsets"] and name.lower() != rename.lower():
            fail(f"IPSet '{name}' already exists")
        del store["ipsets"][rename.lower()]
        ipset["name"] = name
        if "comment" in req.params:
            ipset["comment"] = req.params["comment"]
        store["ipsets"][name.lower()] = ipset
    else:
        if name.lower() in store["ipsets"]:
            fail(f"IPSet '{name}' already exists")
        store["ipsets"][name.lower()] = {"name": name, "comment": req.params.get("comment") or "", "entries": []}
    _save(sim, req, store)
    return None


def _entries(sim: Sim, ipset: dict) -> list[dict]:
    items = []
    for entry in ipset["entries"]:
        item = {"cidr": entry["cidr"]}
        if entry.get("comment"):
            item["comment"] = entry["comment"]
        if entry.get("nomatch"):
            item["nomatch"] = 1
        items.append(item)
    digest = sim.digest_of(items)
    for item in items:
        item["digest"] = digest
    return items


@route("GET", *_paths("/ipset/{name}"))
def ipset_get(sim: Sim, req: Request):
    return _entries(sim, _ipset(_scope(sim, req), req.params["name"]))


@route("POST", *_paths("/ipset/{name}"))
def ipset_add(sim: Sim, req: Request):
    store = _scope(sim, req)
    ipset = _ipset(store, req.params["name"])
    cidr = req.params["cidr"]
    if any(e["cidr"] == cidr for e in ipset["entries"]):
        fail(f"entry '{cidr}' already exists")
    entry = {"cidr": cidr}
    if req.params.get("comment"):
        entry["comment"] = req.params["comment"]
    if req.flag("nomatch"):
        entry["nomatch"] = 1
    ipset["entries"].append(entry)
    _save(sim, req, store)
    return None


@route("DELETE", *_paths("/ipset/{name}"))
def ipset_delete(sim: Sim, req: Request):
    store = _scope(sim, req)
    ipset = _ipset(store, req.params["name"])
    if ipset["entries"] and not req.flag("force"):
        fail(f"IPSet '{req.params['name']}' is not empty")
    del store["ipsets"][req.params["name"].lower()]
    _save(sim, req, store)
    return None


def _entry(ipset: dict, cidr: str) -> dict:
    for entry in ipset["entries"]:
        if entry["cidr"] == cidr:
            return entry
    fail("no such IP/Network")


@route("GET", *_paths("/ipset/{name}/{cidr}"))
def ipset_entry_get(sim: Sim, req: Request):
    store = _scope(sim, req)
    ipset = _ipset(store, req.params["name"])
    _entry(ipset, req.params["cidr"])
    return next(item for item in _entries(sim, ipset) if item["cidr"] == req.params["cidr"])


@route("PUT", *_paths("/ipset/{name}/{cidr}"))
def ipset_entry_update(sim: Sim, req: Request):
    store = _scope(sim, req)
    ipset = _ipset(store, req.params["name"])
    _check_digest(sim, req, [{k: v for k, v in item.items() if k != "digest"} for item in _entries(sim, ipset)])
    entry = _entry(ipset, req.params["cidr"])
    if "comment" in req.params:
        entry["comment"] = req.params["comment"]
    if "nomatch" in req.params:
        entry["nomatch"] = 1 if req.flag("nomatch") else 0
    _save(sim, req, store)
    return None


@route("DELETE", *_paths("/ipset/{name}/{cidr}"))
def ipset_entry_delete(sim: Sim, req: Request):
    store = _scope(sim, req)
    ipset = _ipset(store, req.params["name"])
    _check_digest(sim, req, [{k: v for k, v in item.items() if k != "digest"} for item in _entries(sim, ipset)])
    entry = _entry(ipset, req.params["cidr"])
    ipset["entries"].remove(entry)
    _save(sim, req, store)
    return None
