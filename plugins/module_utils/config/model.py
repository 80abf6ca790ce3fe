# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Phoenix configuration model: load every config file once, validate, normalize.

``load_config()`` is the single entry point used by the inventory plugin, the
modules and the validate playbook. It never stops at the first problem: every
error and warning is collected in one :class:`Report`.

The work is split over four modules: ``guests`` (the hypervisor and every guest, normalized), ``checks``
(checks across guests, routes included), ``order`` (the dependency order) and this one (the entry point and
:class:`PhoenixConfig`).
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os

from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.checks import (
    check_names, check_placement, check_references, check_routing, check_security_groups, check_unique,
)
from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.guests import (
    build_hypervisor, cluster_raw, HYPERVISOR_FILE, known_keys, load_lxc, load_vms, LXC_FILE, VM_FILE,
)
from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.loader import (
    read_json, schema_errors, validate_schema,
)
from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.order import dependency_order
from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.report import (
    ERROR, PhoenixConfigError, Report, WARNING,
)
from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.stacks import load_stacks

CERT_FILE = 'certificate-manifest.json'
POLICY_LEVELS = (ERROR, WARNING)


class PhoenixConfig:
    """The validated, normalized configuration. Plain dicts and lists only, so it caches as JSON."""

    def __init__(self, hypervisor, guests, stacks, certificates, environment, report=None):
        self.hypervisor = hypervisor
        self.guests = guests          # {id: guest}, in dependency order
        self.stacks = stacks          # {name: stack}
        self.certificates = certificates
        self.environment = environment
        self.report = report if report is not None else Report()

    @property
    def domain(self):
        return self.hypervisor.get('domain')

    def ordered_guests(self):
        return sorted(self.guests.values(), key=lambda g: g['order'])

    def as_dict(self):
        return {
            'hypervisor': self.hypervisor,
            'guests': [self.guests[k] for k in self.guests],
            'stacks': self.stacks,
            'certificates': self.certificates,
            'environment': self.environment,
            'warnings': [f.as_dict() for f in self.report.sorted_warnings()],
        }

    @classmethod
    def from_dict(cls, data):
        report = Report()
        for item in data.get('warnings', []):
            report.warning(item['file'], item['path'], item['message'], item['code'])
        guests = dict((g['id'], g) for g in data['guests'])
        return cls(data['hypervisor'], guests, data['stacks'], data.get('certificates', []),
                   data['environment'], report)


# --------------------------------------------------------------------------- entry point

def _broken_guests(name, error_paths):
    """Which guests of a guest file its schema errors break: (keys or indexes, all of them, top-level keys).

    A guest that breaks the schema is left out; the rest of the file is still used, and the broken
    guest's ID stays known so that references to it do not cascade into more errors. An error in
    vm_defaults, in the guest collection itself or at the root breaks every guest of the file; one in
    another top-level key (nvidia_driver_version, ...) breaks none.
    """
    collection = 'lxc_configs' if name == LXC_FILE else 'vms'
    bad, all_bad, top = set(), False, set()
    for error_path in error_paths:
        if len(error_path) >= 2 and error_path[0] == collection:
            bad.add(error_path[1])
        elif not error_path or error_path[0] == collection:
            all_bad = True
        else:
            top.add(error_path[0])
    return bad, all_bad, top


def load_config(config_dir, stacks_dir=None, environment='production', platform_rules=ERROR, raise_on_error=False):
    """Load and validate every Phoenix config file under ``config_dir`` (and ``stacks_dir``).

    Returns a :class:`PhoenixConfig`; its ``report`` holds every error and warning.
    With ``raise_on_error`` a :class:`PhoenixConfigError` is raised when there are errors.
    ``platform_rules`` is the severity ('error' or 'warning') of platform-policy findings
    such as a stack compose file that publishes ports.
    """
    report = Report()
    if platform_rules not in POLICY_LEVELS:
        raise ValueError('platform_rules must be one of %s' % ', '.join(POLICY_LEVELS))
    config_dir = os.path.abspath(config_dir)
    if stacks_dir is None:
        stacks_dir = os.path.join(os.path.dirname(config_dir), 'stacks')
    hypervisor_raw = None
    path = os.path.join(config_dir, HYPERVISOR_FILE)
    if not os.path.isdir(config_dir):
        report.error(HYPERVISOR_FILE, '/', 'config directory %s does not exist' % config_dir, 'file.missing')
    elif not os.path.isfile(path):
        report.error(HYPERVISOR_FILE, '/', 'file not found in %s' % config_dir, 'file.missing')
    else:
        hypervisor_raw = read_json(path, HYPERVISOR_FILE, report)
        if hypervisor_raw is not None and not validate_schema(hypervisor_raw, HYPERVISOR_FILE, HYPERVISOR_FILE,
                                                              report):
            hypervisor_raw = None
    group_refs = []  # (security group, file, path) of every firewall rule of type 'group'
    hypervisor, subnet = {}, None
    if isinstance(hypervisor_raw, dict):
        hypervisor, subnet, _address = build_hypervisor(hypervisor_raw, report, group_refs)
    docs, broken = {}, {}
    # Whether some guests could not even be listed (a guest file that is not JSON, or whose guest
    # collection has the wrong type): references to unknown IDs are then not reported, as they may
    # well be defined there; the file's own error is the one to fix.
    ids_unknown = False
    for name in (LXC_FILE, VM_FILE):
        fpath = os.path.join(config_dir, name)
        if not os.path.isfile(fpath):
            if os.path.isdir(config_dir):
                report.warning(name, '/', 'file not found in %s; no guests of this kind' % config_dir, 'file.missing')
            continue
        data = read_json(fpath, name, report)
        if data is None:
            ids_unknown = True
            continue
        error_paths = schema_errors(data, name, name, report)
        collection = data.get('lxc_configs' if name == LXC_FILE else 'vms') if isinstance(data, dict) else None
        if not isinstance(collection, dict if name == LXC_FILE else list):
            ids_unknown = True  # reported by the schema
            continue
        docs[name] = data
        broken[name] = _broken_guests(name, error_paths)
    lxc_doc = docs.get(LXC_FILE, {})
    if lxc_doc.get('nvidia_driver_version') and hypervisor and 'nvidia_driver_version' not in broken[LXC_FILE][2]:
        hypervisor.setdefault('nvidia_driver_version', lxc_doc['nvidia_driver_version'])
    elif hypervisor and isinstance(hypervisor.get('nvidia_driver'), dict):
        hypervisor.setdefault('nvidia_driver_version', hypervisor['nvidia_driver'].get('version'))

    ctx = {
        'report': report,
        'domain': hypervisor.get('domain', ''),
        'subnet': subnet,
        'subnet_prefix': subnet.prefixlen if subnet is not None else None,
        'environment': environment,
        'hypervisor_raw': hypervisor_raw or {},
        'cluster': cluster_raw(hypervisor_raw),
        'vm_defaults': {},
        'invalid_ids': set(),     # IDs of guests left out for schema errors
        'invalid_roles': {},      # their Portainer roles
        'ids_unknown': ids_unknown,
        'dep_indexes': {},        # {guest ID: raw list position of each dependency}
        'gateway_ok': {},         # {gateway: inside the subnet}
        'group_refs': group_refs,
        'known_keys': {
            'lxc': known_keys(LXC_FILE, 'lxc_configs', '*'),
            'vm': known_keys(VM_FILE, 'vms', '[]'),
        },
    }
    guests, id_sources = [], {}
    if VM_FILE in docs and 'vm_defaults' not in broken[VM_FILE][2]:
        defaults = docs[VM_FILE].get('vm_defaults')
        ctx['vm_defaults'] = defaults if isinstance(defaults, dict) else {}
    if LXC_FILE in docs:
        bad, all_bad, _top = broken[LXC_FILE]
        load_lxc(lxc_doc, ctx, guests, id_sources, bad, all_bad)
    if VM_FILE in docs:
        bad, all_bad, top = broken[VM_FILE]
        load_vms(docs[VM_FILE], ctx, guests, id_sources, bad, all_bad or 'vm_defaults' in top)

    # Every (stack, environment) pair a guest deploys is resolved and checked, not only the load environment.
    deployments = {}
    for guest in guests:
        for item in guest['docker_stacks']:
            deployments.setdefault(item['name'], set()).add(item['environment'])
    stacks = load_stacks(config_dir, stacks_dir, environment, report, platform_rules, deployments, group_refs)

    certificates = []
    cert_path = os.path.join(config_dir, CERT_FILE)
    if os.path.isfile(cert_path):
        data = read_json(cert_path, CERT_FILE, report)
        if data is not None and validate_schema(data, CERT_FILE, CERT_FILE, report):
            certificates = data

    check_unique(guests, id_sources, hypervisor.get('network_normalized', {}), report)
    by_id = {}
    for guest in guests:
        by_id.setdefault(guest['id'], guest)
    check_references(by_id, stacks, report, ctx)
    check_placement(by_id, ctx['cluster'], report)
    by_fqdn = check_names(by_id, report)
    check_security_groups(group_refs, hypervisor_raw, report)
    order = dependency_order(by_id, report, ctx['dep_indexes'])
    ordered = {}
    for index, gid in enumerate(order):
        by_id[gid]['order'] = index
        ordered[gid] = by_id[gid]
    check_routing(ordered, stacks, report, environment, by_fqdn)
    config = PhoenixConfig(hypervisor, ordered, stacks, certificates, environment, report)
    if raise_on_error and report.errors:
        raise PhoenixConfigError(report)
    return config
