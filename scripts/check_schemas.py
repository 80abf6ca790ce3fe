#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: (c) 2025, ThinkHeads
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Check the config JSON Schemas against real and deliberately broken configs.

Needs jsonschema and fastjsonschema (the two validators the config loader
uses); every check is run with both.

  1. each schema is a valid draft-07 schema, has $id/title/description, and
     every property carries a description;
  2. the project's etc/ and stacks/*/phoenix.json validate;
  3. the reference deployment (../shared/reference/phoenix, or --reference)
     validates unchanged, when that directory exists;
  4. variants that must be accepted are accepted, and broken variants
     (wrong types, missing required fields, unknown keys in strict objects)
     are rejected;
  5. the project's stack Compose files publish no ports (when PyYAML is
     installed).

    python3 scripts/check_schemas.py [--reference DIR] [-v]
"""

import argparse
import copy
import glob
import importlib.util
import json
import os
import sys

import fastjsonschema
import jsonschema

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEMAS_PY = os.path.join(ROOT, "plugins", "module_utils", "config", "schemas.py")
DEFAULT_REFERENCE = os.path.join(os.path.dirname(ROOT), "shared", "reference", "phoenix")


def load_module():
    spec = importlib.util.spec_from_file_location("phoenix_config_schemas", SCHEMAS_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Checker:
    def __init__(self, schemas, verbose=False):
        self.schemas = schemas
        self.verbose = verbose
        self.failures = []
        self.checks = 0
        self.full = dict((k, jsonschema.Draft7Validator(v)) for k, v in schemas.items())
        self.fast = dict((k, fastjsonschema.compile(v)) for k, v in schemas.items())

    def fail(self, message):
        self.failures.append(message)
        print("FAIL: " + message)

    def errors(self, key, doc):
        """(jsonschema messages, fastjsonschema message or None)."""
        full = [
            "%s: %s" % ("/".join(str(p) for p in e.absolute_path) or "<root>", e.message)
            for e in self.full[key].iter_errors(doc)
        ]
        try:
            self.fast[key](doc)
            fast = None
        except fastjsonschema.JsonSchemaException as exc:
            fast = str(exc)
        return full, fast

    def accept(self, key, doc, label):
        self.checks += 1
        full, fast = self.errors(key, doc)
        if full or fast:
            self.fail("%s: expected valid; jsonschema: %s; fastjsonschema: %s" % (label, full[:5], fast))
        elif self.verbose:
            print("ok   accepted: " + label)

    def reject(self, key, doc, label):
        self.checks += 1
        full, fast = self.errors(key, doc)
        if not full:
            self.fail("%s: jsonschema accepted a broken document" % label)
        if fast is None:
            self.fail("%s: fastjsonschema accepted a broken document" % label)
        if full and fast is not None and self.verbose:
            print("ok   rejected: %s -> %s" % (label, full[0]))


_SCHEMA_MAPS = ("properties", "patternProperties", "definitions")
_SCHEMA_VALUES = ("items", "additionalProperties", "contains")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf")
# if/then/else/not and propertyNames only add constraints; they are not field docs.


def walk_descriptions(node, path, missing):
    """Every property schema, and every object schema under additionalProperties or
    items, needs a description (a $ref to a described definition counts)."""
    if not isinstance(node, dict):
        return
    for name, sub in node.get("properties", {}).items():
        if "description" not in sub:
            missing.append("/".join(path + ["properties", name]))
    for pattern, sub in node.get("patternProperties", {}).items():
        if "description" not in sub and "$ref" not in sub:
            missing.append("/".join(path + ["patternProperties", pattern]))
    for key in ("additionalProperties", "items"):
        sub = node.get(key)
        if isinstance(sub, dict) and sub.get("type") == "object" and "description" not in sub:
            missing.append("/".join(path + [key]))
    for key in _SCHEMA_MAPS:
        for name, sub in node.get(key, {}).items():
            walk_descriptions(sub, path + [key, name], missing)
    for key in _SCHEMA_VALUES:
        walk_descriptions(node.get(key), path + [key], missing)
    for key in _SCHEMA_LISTS:
        for i, sub in enumerate(node.get(key, [])):
            walk_descriptions(sub, path + [key, str(i)], missing)


def check_meta(module, checker):
    for key, schema in module.SCHEMAS.items():
        checker.checks += 1
        try:
            jsonschema.Draft7Validator.check_schema(schema)
        except jsonschema.SchemaError as exc:
            checker.fail("%s: not a valid draft-07 schema: %s" % (key, exc.message))
        for field in ("$schema", "$id", "title", "description"):
            if not schema.get(field):
                checker.fail("%s: top-level %s missing" % (key, field))
        if not schema["$id"].startswith(module.SCHEMA_BASE_URI):
            checker.fail("%s: $id %s outside %s" % (key, schema["$id"], module.SCHEMA_BASE_URI))
        missing = []
        walk_descriptions(schema, [], missing)
        for path in missing:
            checker.fail("%s: no description at %s" % (key, path))


def config_files(base):
    """(schema key, path) for every config file under base."""
    found = []
    for path in sorted(glob.glob(os.path.join(base, "etc", "*.json"))):
        name = os.path.basename(path)
        if name.endswith(".schema.json"):
            continue
        found.append((name, path))
    for path in sorted(glob.glob(os.path.join(base, "stacks", "*", "phoenix.json"))):
        found.append(("phoenix.json", path))
    return found


def load(path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def check_files(checker, base, label):
    files = config_files(base)
    if not files:
        checker.fail("%s: no config files found under %s" % (label, base))
    for key, path in files:
        if key not in checker.schemas:
            checker.fail("%s: no schema for %s" % (label, path))
            continue
        checker.accept(key, load(path), "%s %s" % (label, os.path.relpath(path, base)))


def variant(doc, change):
    doc = copy.deepcopy(doc)
    change(doc)
    return doc


def _set(path, value):
    def change(doc):
        node = doc
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value
    return change


def _delete(path):
    def change(doc):
        node = doc
        for part in path[:-1]:
            node = node[part]
        del node[path[-1]]
    return change


def _move_firewall(doc):
    """The reference keeps the cluster firewall under shared_volumes."""
    doc.setdefault("shared_volumes", {})["firewall"] = doc.pop("firewall")


def check_variants(checker):
    lxc = load(os.path.join(ROOT, "etc", "phoenix_lxc_configs.json"))
    vm = load(os.path.join(ROOT, "etc", "phoenix_vm_configs.json"))
    hyp = load(os.path.join(ROOT, "etc", "phoenix_hypervisor_config.json"))
    stacks = load(os.path.join(ROOT, "etc", "phoenix_stacks_config.json"))
    manifest = load(os.path.join(ROOT, "stacks", "qdrant_service", "phoenix.json"))
    certs = load(os.path.join(ROOT, "etc", "certificate-manifest.json"))

    g = ["lxc_configs", "801"]
    rule0 = g + ["firewall", "rules", 0]
    v = ["vms", 2]
    app_vars = ["docker_stacks", "thinkheads_ai_app", "environments", "production", "variables"]

    good = [
        ("phoenix_lxc_configs.json", lxc, _set(g + ["dependencies"], [102]), "dependencies as integers"),
        ("phoenix_lxc_configs.json", lxc, _set(g + ["clone_from_ctid"], 901), "clone_from_ctid as integer"),
        ("phoenix_lxc_configs.json", lxc, _set(g + ["gpu_assignment"], "0, 1"), "gpu_assignment '0, 1'"),
        ("phoenix_lxc_configs.json", lxc, _set(g + ["gpu_assignment"], "none"), "gpu_assignment 'none'"),
        ("phoenix_lxc_configs.json", lxc, _set(rule0 + ["dport"], 22), "port as integer"),
        ("phoenix_lxc_configs.json", lxc, _set(rule0 + ["dport"], "80,443"), "port list"),
        ("phoenix_lxc_configs.json", lxc, _set(rule0 + ["dport"], "8000:8010"), "port range"),
        ("phoenix_lxc_configs.json", lxc, _set(rule0 + ["proto"], "41"), "proto as number"),
        # Both port and dport: the config model reports it (a schema 'not' could only print the rule).
        ("phoenix_lxc_configs.json", lxc, _set(g + ["firewall", "rules", 1, "port"], "22"), "rule with both port and dport"),
        ("phoenix_lxc_configs.json", lxc, _set(g + ["docker_stacks"], ["qdrant_service"]), "docker_stacks on a container"),
        ("phoenix_vm_configs.json", vm, _set(["vm_defaults", "features"], ["base_setup"]), "vm_defaults.features"),
        ("phoenix_lxc_configs.json", lxc, _set(rule0, {"type": "group", "action": "phoenix-base"}), "group rule"),
        ("phoenix_lxc_configs.json", lxc, _set(g + ["portainer_role"], "infrastructure"), "role infrastructure"),
        ("phoenix_lxc_configs.json", lxc, _delete(g + ["portainer_role"]), "no portainer_role"),
        ("phoenix_lxc_configs.json", lxc, _set(g + ["some_future_key"], {"x": 1}), "unknown guest key"),
        ("phoenix_lxc_configs.json", lxc,
         _set(g + ["vllm_engine_config", "ServerConfig", "served_model_name"], ["a", "b"]), "served_model_name list"),
        ("phoenix_lxc_configs.json", lxc,
         _set(g + ["vllm_engine_config", "SchedulerConfig"], {"max_num_seqs": 64}), "SchedulerConfig section"),
        ("phoenix_vm_configs.json", vm, _set(v + ["docker_stacks"], [{"name": "qdrant_service", "environment": "testing"}]),
         "docker_stacks object form"),
        ("phoenix_vm_configs.json", vm, _set(v + ["network_config", "ip"], "dhcp"), "VM ip dhcp"),
        ("phoenix_hypervisor_config.json", hyp, _move_firewall, "firewall under shared_volumes"),
        ("phoenix_stacks_config.json", stacks, _set(app_vars + [1, "value"], 8000), "numeric variable value"),
    ]
    for key, base, change, label in good:
        checker.accept(key, variant(base, change), label)

    bad = [
        ("phoenix_lxc_configs.json", lxc, _set(g + ["cores"], "two"), "cores 'two'"),
        ("phoenix_lxc_configs.json", lxc, _set(g + ["cores"], 0), "cores 0"),
        ("phoenix_lxc_configs.json", lxc, _set(g + ["cores"], True), "cores true"),
        ("phoenix_lxc_configs.json", lxc, _set(g + ["memory_mb"], 8), "memory_mb 8"),
        ("phoenix_lxc_configs.json", lxc, _set(g + ["storage_size_gb"], 0), "storage_size_gb 0"),
        ("phoenix_lxc_configs.json", lxc, _delete(g + ["name"]), "guest without name"),
        ("phoenix_lxc_configs.json", lxc, _delete(g + ["network_config"]), "guest without network_config"),
        ("phoenix_lxc_configs.json", lxc, _set(["lxc_configs", "99"], lxc["lxc_configs"]["801"]), "CTID 99"),
        ("phoenix_lxc_configs.json", lxc, _set(["lxc_configs", "web"], lxc["lxc_configs"]["801"]), "CTID 'web'"),
        ("phoenix_lxc_configs.json", lxc, _set(["lxc_configs"], []), "lxc_configs as a list"),
        ("phoenix_lxc_configs.json", lxc, _delete(rule0 + ["action"]), "firewall rule without action"),
        ("phoenix_lxc_configs.json", lxc, _delete(rule0 + ["type"]), "firewall rule without type"),
        ("phoenix_lxc_configs.json", lxc, _set(rule0 + ["type"], "inbound"), "firewall type 'inbound'"),
        ("phoenix_lxc_configs.json", lxc, _set(rule0 + ["action"], "accept"), "in-rule action 'accept'"),
        ("phoenix_lxc_configs.json", lxc, _set(rule0 + ["action"], "1bad"), "group name '1bad'"),
        ("phoenix_lxc_configs.json", lxc, _set(rule0 + ["proto"], "TCP!"), "proto 'TCP!'"),
        ("phoenix_lxc_configs.json", lxc, _set(rule0 + ["dport"], "80;443"), "port '80;443'"),
        ("phoenix_lxc_configs.json", lxc, _set(rule0 + ["dport"], 70000), "port 70000"),
        ("phoenix_lxc_configs.json", lxc, _set(rule0 + ["log"], "verbose"), "log 'verbose'"),
        ("phoenix_lxc_configs.json", lxc, _set(rule0 + ["enabled"], "yes"), "rule enabled 'yes'"),
        ("phoenix_lxc_configs.json", lxc,
         _set(g + ["vllm_engine_config", "ServerConfig"], {"api_key": "k", "api_key_from": "vault_k"}),
         "api_key and api_key_from"),
        ("phoenix_lxc_configs.json", lxc, _set(rule0 + ["sourc"], "10.0.0.1"), "unknown key in firewall rule"),
        ("phoenix_lxc_configs.json", lxc, _set(g + ["firewall", "rules"], {}), "rules as an object"),
        ("phoenix_lxc_configs.json", lxc, _set(g + ["firewall", "rule"], []), "unknown key in guest firewall"),
        ("phoenix_lxc_configs.json", lxc, _set(g + ["network_config", "gateway"], "10.0.0.1"),
         "unknown key in network_config"),
        ("phoenix_lxc_configs.json", lxc, _set(g + ["network_config", "ip"], "10.0.0.141/33"), "ip prefix /33"),
        ("phoenix_lxc_configs.json", lxc, _set(g + ["network_config", "ip"], "10.0.0.300/24"), "ip 10.0.0.300"),
        ("phoenix_lxc_configs.json", lxc, _set(g + ["network_config", "gw"], "gateway"), "gw 'gateway'"),
        ("phoenix_lxc_configs.json", lxc, _set(g + ["mac_address"], "52:54:00:00:08"), "short MAC"),
        ("phoenix_lxc_configs.json", lxc, _set(g + ["gpu_assignment"], "all"), "gpu_assignment 'all'"),
        ("phoenix_lxc_configs.json", lxc, _set(g + ["gpu_assignment"], 0), "gpu_assignment 0 (integer)"),
        ("phoenix_lxc_configs.json", lxc, _set(g + ["clone_from_ctid"], "90a"), "clone_from_ctid '90a'"),
        ("phoenix_lxc_configs.json", lxc, _set(g + ["clone_from_ctid"], 42), "clone_from_ctid 42"),
        ("phoenix_lxc_configs.json", lxc, _set(g + ["dependencies"], "102"), "dependencies as a string"),
        ("phoenix_lxc_configs.json", lxc, _set(g + ["dependencies"], ["abc"]), "dependency 'abc'"),
        ("phoenix_lxc_configs.json", lxc, _set(g + ["portainer_role"], "server"), "portainer_role 'server'"),
        ("phoenix_lxc_configs.json", lxc, _set(g + ["features"], "vllm"), "features as a string"),
        ("phoenix_lxc_configs.json", lxc, _set(g + ["features"], ["vllm", "vllm"]), "duplicate feature"),
        ("phoenix_lxc_configs.json", lxc, _set(g + ["traefik_service", "port"], 70000), "traefik port 70000"),
        ("phoenix_lxc_configs.json", lxc, _set(g + ["traefik_service", "port"], "8000"), "traefik port '8000'"),
        ("phoenix_lxc_configs.json", lxc, _set(g + ["traefik_service", "host"], "x"), "unknown key in traefik_service"),
        ("phoenix_lxc_configs.json", lxc, _delete(g + ["traefik_service", "name"]), "traefik_service without name"),
        ("phoenix_lxc_configs.json", lxc, _set(g + ["zfs_volumes", 0, "size"], 5), "unknown key in zfs_volumes"),
        ("phoenix_lxc_configs.json", lxc, _set(g + ["zfs_volumes", 0, "size_gb"], 0), "zfs size_gb 0"),
        ("phoenix_lxc_configs.json", lxc, _set(g + ["mount_points"], [{"host_path": "/x"}]),
         "mount point without container_path"),
        ("phoenix_lxc_configs.json", lxc,
         _set(g + ["mount_points"], [{"host_path": "/x", "container_path": "/y", "mode": "ro"}]),
         "unknown key in mount_points"),
        ("phoenix_lxc_configs.json", lxc,
         _set(g + ["vllm_engine_config", "CacheConfig", "gpu_memory_utilization"], 1.5), "gpu_memory_utilization 1.5"),
        ("phoenix_lxc_configs.json", lxc,
         _set(g + ["vllm_engine_config", "CacheConfig", "gpu_memory_utilization"], 0), "gpu_memory_utilization 0"),
        ("phoenix_lxc_configs.json", lxc,
         _set(g + ["vllm_engine_config", "ModelConfig", "dtype"], "fp64"), "dtype 'fp64'"),
        ("phoenix_lxc_configs.json", lxc,
         _set(g + ["vllm_engine_config", "ModelConfig", "max_model_len"], "8k"), "max_model_len '8k'"),
        ("phoenix_lxc_configs.json", lxc,
         _set(g + ["vllm_engine_config", "ModelConfig", "modle"], "x"), "unknown key in ModelConfig"),
        ("phoenix_lxc_configs.json", lxc,
         _delete(g + ["vllm_engine_config", "ModelConfig", "model"]), "ModelConfig without model"),
        ("phoenix_lxc_configs.json", lxc,
         _set(g + ["vllm_engine_config", "ServerConfig", "port"], 0), "vLLM port 0"),
        ("phoenix_lxc_configs.json", lxc,
         _set(g + ["vllm_engine_config", "ServerConfig", "served_model_name"], ""), "served_model_name ''"),
        ("phoenix_lxc_configs.json", lxc,
         _set(g + ["vllm_engine_config", "ServerConfig", "served_model_name"], []), "served_model_name []"),
        ("phoenix_lxc_configs.json", lxc,
         _set(g + ["vllm_engine_config", "ServerConfig", "served_model_name"], 7), "served_model_name 7"),
        ("phoenix_lxc_configs.json", lxc,
         _set(g + ["vllm_engine_config", "EngineConfig"], {}), "unknown vLLM section"),
        ("phoenix_lxc_configs.json", lxc,
         _set(g + ["vllm_engine_config", "ParallelConfig", "tensor_parallel_size"], 0), "tensor_parallel_size 0"),
        ("phoenix_vm_configs.json", vm, _set(v + ["vmid"], 99), "vmid 99"),
        ("phoenix_vm_configs.json", vm, _set(v + ["vmid"], "1002"), "vmid as a string"),
        ("phoenix_vm_configs.json", vm, _delete(v + ["vmid"]), "VM without vmid"),
        ("phoenix_vm_configs.json", vm, _set(v + ["docker_stacks"], [42]), "docker_stacks [42]"),
        ("phoenix_vm_configs.json", vm, _set(v + ["docker_stacks"], ["bad name"]), "docker_stacks ['bad name']"),
        ("phoenix_vm_configs.json", vm, _set(v + ["docker_stacks"], "qdrant_service"), "docker_stacks as a string"),
        ("phoenix_vm_configs.json", vm, _set(v + ["docker_stacks"], [{"environment": "production"}]),
         "docker_stacks object without name"),
        ("phoenix_vm_configs.json", vm, _set(v + ["docker_stacks"], [{"name": "a", "env": "b"}]),
         "unknown key in docker_stacks object"),
        ("phoenix_vm_configs.json", vm, _set(v + ["network_config", "ip"], "dhcpv6"), "VM ip 'dhcpv6'"),
        ("phoenix_vm_configs.json", vm, _set(v + ["volumes", 0, "type"], "smb"), "volume type 'smb'"),
        ("phoenix_vm_configs.json", vm, _set(v + ["volumes", 0, "options"], "ro"), "unknown key in volumes"),
        ("phoenix_vm_configs.json", vm, _set(v + ["user_config", "user"], "x"), "unknown key in user_config"),
        ("phoenix_vm_configs.json", vm, _set(v + ["portainer_role"], "worker"), "portainer_role 'worker'"),
        ("phoenix_vm_configs.json", vm, _set(["vms"], {}), "vms as an object"),
        ("phoenix_vm_configs.json", vm, _set(["vm_defaults", "features"], True), "vm_defaults.features true"),
        ("phoenix_vm_configs.json", vm, _set(["vm_defaults", "dependencies"], "102"), "vm_defaults.dependencies string"),
        ("phoenix_vm_configs.json", vm, _set(["vm_defaults", "docker_stacks"], "x"), "vm_defaults.docker_stacks string"),
        ("phoenix_lxc_configs.json", lxc, _set(g + ["docker_stacks"], True), "container docker_stacks true"),
        ("phoenix_hypervisor_config.json", hyp, _delete(["domain_name"]), "hypervisor without domain_name"),
        ("phoenix_hypervisor_config.json", hyp, _set(["domain_name"], "not a domain"), "domain 'not a domain'"),
        ("phoenix_hypervisor_config.json", hyp, _set(["network", "interfaces", "address"], "10.0.0.13"),
         "host address without prefix"),
        ("phoenix_hypervisor_config.json", hyp, _set(["network", "portainer_server_port"], "9443"),
         "portainer_server_port as a string"),
        ("phoenix_hypervisor_config.json", hyp, _set(["firewall", "default_input_policy"], "BLOCK"),
         "policy 'BLOCK'"),
        ("phoenix_hypervisor_config.json", hyp, _set(["firewall", "global_rules"], []),
         "unknown key in cluster firewall"),
        ("phoenix_hypervisor_config.json", hyp, _set(["firewall", "global_firewall_rules", 0, "action"], 1),
         "rule action 1"),
        ("phoenix_hypervisor_config.json", hyp,
         lambda d: d.setdefault("shared_volumes", {}).update({"firewall": {"enabled": "yes"}}),
         "shared_volumes.firewall.enabled 'yes'"),
        ("phoenix_hypervisor_config.json", hyp,
         lambda d: d.setdefault("shared_volumes", {}).update({"ssl": {"mounts": {"101": "/ssl"}}}),
         "shared volume without host_path"),
        ("phoenix_stacks_config.json", stacks, _delete(app_vars + [0, "value"]), "variable without value"),
        ("phoenix_stacks_config.json", stacks, _set(app_vars + [3, "value"], "hunter2"),
         "secret with a literal value"),
        ("phoenix_stacks_config.json", stacks, _delete(app_vars + [3, "value_from"]),
         "secret without value_from"),
        ("phoenix_stacks_config.json", stacks,
         _set(app_vars + [3], {"name": "DATABASE_PASS", "secret": True, "value": "hunter2"}),
         "secret given only as a literal value"),
        ("phoenix_stacks_config.json", stacks, _set(app_vars + [0, "value_from"], "vault_x"),
         "variable with both value and value_from"),
        ("phoenix_stacks_config.json", stacks, _set(app_vars + [0, "name"], "1BAD"), "variable name '1BAD'"),
        ("phoenix_stacks_config.json", stacks, _set(app_vars[:-1] + ["vars"], []), "unknown key in environment"),
        ("phoenix_stacks_config.json", stacks, _set(["docker_stacks"], []), "docker_stacks as a list"),
        ("phoenix_stacks_config.json", stacks, _delete(["docker_stacks", "qdrant_service", "environments"]),
         "stack without environments"),
        ("phoenix.json", manifest, _delete(["environments"]), "manifest without environments"),
        ("phoenix.json", manifest,
         _set(["environments", "production", "services", "qdrant", "labels"], []), "unknown key in service"),
        ("phoenix.json", manifest,
         _set(["environments", "production", "services", "qdrant", "traefik_labels"], ["enable=true"]),
         "label without traefik. prefix"),
        ("phoenix.json", manifest, _set(["environments", "production", "firewall_rules", 0, "type"], "both"),
         "stack rule type 'both'"),
        ("certificate-manifest.json", certs, _set([0, "permissions"], "rw-r-----"), "permissions 'rw-r-----'"),
        ("certificate-manifest.json", certs, _delete([0, "key_path"]), "certificate without key_path"),
        ("certificate-manifest.json", certs, _set([0, "sans"], ["bad host!"]), "SAN 'bad host!'"),
        ("certificate-manifest.json", certs, _set([0, "cert_path"], "relative.crt"), "relative cert_path"),
        ("certificate-manifest.json", certs, _set([0, "renew"], True), "unknown key in certificate"),
        ("certificate-manifest.json", {"certs": certs}, lambda d: None, "manifest as an object"),
    ]
    for key, base, change, label in bad:
        checker.reject(key, variant(base, change), label)


def check_compose(checker):
    try:
        import yaml
    except ImportError:
        print("skip: PyYAML not installed, Compose files not checked")
        return
    for path in sorted(glob.glob(os.path.join(ROOT, "stacks", "*", "docker-compose.yml"))):
        checker.checks += 1
        with open(path, encoding="utf-8") as handle:
            compose = yaml.safe_load(handle)
        for name, service in (compose.get("services") or {}).items():
            for key in ("ports", "expose"):
                if key in service:
                    checker.fail("%s: service %s has '%s' (route it through Traefik)" % (path, name, key))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", default=DEFAULT_REFERENCE,
                        help="reference deployment to validate (default: %(default)s)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every check")
    args = parser.parse_args(argv)

    module = load_module()
    checker = Checker(module.SCHEMAS, verbose=args.verbose)
    check_meta(module, checker)
    check_files(checker, ROOT, "project")
    if os.path.isdir(args.reference):
        check_files(checker, args.reference, "reference")
    else:
        print("skip: no reference deployment at %s" % args.reference)
    check_variants(checker)
    check_compose(checker)

    if checker.failures:
        print("%d of %d checks failed" % (len(checker.failures), checker.checks))
        return 1
    print("all %d checks passed" % checker.checks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
