# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Phoenix configuration model: load every config file once, validate, normalize.

``load_config()`` is the single entry point used by the inventory plugin, the
modules and the validate playbook. It never stops at the first problem: every
error and warning is collected in one :class:`Report`.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import difflib
import heapq
import os

from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.images import guest_image
from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.loader import (
    read_json, schema_errors, validate_schema,
)
from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.normalize import (
    as_id, hostname_of, in_network, normalize_firewall, normalize_mac, parse_address, parse_gpus, parse_interface,
    parse_network, split_list,
)
from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.report import (
    ERROR, WARNING, PhoenixConfigError, Report, pointer,
)
from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.schemas import SCHEMAS
from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.stacks import load_stacks

HYPERVISOR_FILE = 'phoenix_hypervisor_config.json'
LXC_FILE = 'phoenix_lxc_configs.json'
VM_FILE = 'phoenix_vm_configs.json'
CERT_FILE = 'certificate-manifest.json'
GPU_FEATURES = ('nvidia', 'vllm')
PORTAINER_ROLES = ('primary', 'agent', 'infrastructure', 'none')
POLICY_LEVELS = (ERROR, WARNING)
# Raw guest keys replaced by normalized ones: network_config/mac_address -> network,
# clone_from_ctid/clone_from_vmid -> clone_from, gpu_assignment -> gpus.
RAW_REPLACED = ('network_config', 'mac_address', 'clone_from_ctid', 'clone_from_vmid', 'gpu_assignment')


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


# --------------------------------------------------------------------------- schema helpers

def _resolve(root, node):
    seen = 0
    while isinstance(node, dict) and '$ref' in node and seen < 16:
        ref = node['$ref']
        if not ref.startswith('#/'):
            return node
        target = root
        for part in ref[2:].split('/'):
            target = target.get(part, {})
        node = target
        seen += 1
    return node


def _schema_node(schema_key, *steps):
    """Walk a shipped schema: steps are property names, '*' (patternProperties / additional) or '[]' (items)."""
    root = SCHEMAS.get(schema_key, {})
    node = _resolve(root, root)
    for step in steps:
        if not isinstance(node, dict):
            return {}
        if step == '[]':
            node = node.get('items', {})
        elif step == '*':
            pattern = node.get('patternProperties') or {}
            node = next(iter(pattern.values()), node.get('additionalProperties', {}))
        else:
            node = (node.get('properties') or {}).get(step, {})
        node = _resolve(root, node)
    return node if isinstance(node, dict) else {}


def _known_keys(schema_key, *steps):
    return set((_schema_node(schema_key, *steps).get('properties') or {}).keys())


def warn_unknown_keys(obj, known, file, path, report, what):
    if not known or not isinstance(obj, dict):
        return
    for key in obj:
        if key in known or key.startswith('$') or key.startswith('x-'):
            continue
        close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.8)
        hint = '; did you mean "%s"?' % close[0] if close else ''
        report.warning(file, pointer(*(path + [key])), 'unknown %s key "%s" is ignored%s' % (what, key, hint),
                       'schema.unknown_key')


# --------------------------------------------------------------------------- hypervisor

def _cluster_firewall_raw(raw):
    """The raw cluster firewall and its JSON path: top-level 'firewall', else shared_volumes.firewall."""
    fw = raw.get('firewall')
    if fw is None and isinstance((raw.get('shared_volumes') or {}).get('firewall'), dict):
        return raw['shared_volumes']['firewall'], ['shared_volumes', 'firewall']
    return fw, ['firewall']


def _build_hypervisor(raw, report, group_refs=None):
    file = HYPERVISOR_FILE
    network = raw.get('network') or {}
    iface = network.get('interfaces') or {}
    if isinstance(iface, list):
        iface = iface[0] if iface else {}
    hyp = dict(raw)
    hyp['domain'] = str(raw.get('domain_name', '')).strip().lower().rstrip('.')
    address = None
    if iface.get('address'):
        address = parse_interface(iface['address'], file, ['network', 'interfaces', 'address'], report,
                                  'address with prefix length')
    subnet = None
    if network.get('default_subnet'):
        subnet = parse_network(network['default_subnet'], file, ['network', 'default_subnet'], report)
    elif address is not None and address.network.prefixlen < address.max_prefixlen:
        subnet = address.network
    if subnet is None and not report.errors:
        report.error(file, '/network', 'no subnet: set network.default_subnet or network.interfaces.address '
                     'with a prefix length', 'network.subnet')
    if address is not None and subnet is not None and address.ip not in subnet:
        report.error(file, '/network/interfaces/address', 'hypervisor address %s is outside the subnet %s'
                     % (address.ip, subnet), 'network.subnet')
    gateway = iface.get('gateway')
    hyp['network_normalized'] = {
        'bridge': iface.get('name', 'vmbr0'),
        'ip': str(address.ip) if address is not None else None,
        'cidr': str(address) if address is not None else None,
        'subnet': str(subnet) if subnet is not None else None,
        'prefix': subnet.prefixlen if subnet is not None else None,
        'gateway': gateway,
        'nameservers': split_list(iface.get('dns_nameservers')),
    }
    fw, fw_path = _cluster_firewall_raw(raw)
    hyp['cluster_firewall'] = normalize_firewall(fw or {}, file, fw_path, report, group_refs)
    portainer_api = raw.get('portainer_api') or {}
    hyp['portainer'] = {
        'server_ip': network.get('portainer_server_ip'),
        'server_port': network.get('portainer_server_port', 9443),
        'agent_port': network.get('portainer_agent_port', 9001),
        'hostname': portainer_api.get('portainer_hostname'),
        'admin_user': portainer_api.get('admin_user', 'admin'),
    }
    if portainer_api.get('admin_password'):
        report.warning(file, '/portainer_api/admin_password', 'the Portainer admin password is stored in plain text; '
                       'remove it and set the vaulted variable portainer_admin_password instead', 'secret.plaintext')
    warn_unknown_keys(raw, _known_keys(HYPERVISOR_FILE), file, [], report, 'hypervisor')
    return hyp, subnet, address


# --------------------------------------------------------------------------- guests

def _network(gtype, raw, file, base, ctx):
    report = ctx['report']
    subnet = ctx['subnet']
    defaults = ctx['vm_defaults']
    nc = raw.get('network_config')
    if not isinstance(nc, dict):
        nc = {}
    path = base + ['network_config']
    out = {
        'interface': nc.get('name', 'eth0' if gtype == 'lxc' else 'net0'),
        'bridge': nc.get('bridge') or raw.get('network_bridge') or defaults.get('network_bridge') or 'vmbr0',
        'dhcp': False, 'ip': None, 'prefix': None, 'cidr': None,
        'gateway': nc.get('gw') or nc.get('gateway'),
        'nameservers': split_list(nc.get('nameservers', nc.get('nameserver'))),
        'mac': normalize_mac(raw.get('mac_address') or nc.get('mac_address') or nc.get('hwaddr'), file,
                             base + ['mac_address'], report),
    }
    gateway = out['gateway']
    if gateway and subnet is not None and not ctx['gateway_ok'].get(gateway):
        _check_gateway(gateway, file, path + ['gw' if nc.get('gw') else 'gateway'], ctx)
    ip = nc.get('ip')
    if ip is None:
        return out
    if str(ip).strip().lower() in ('dhcp', 'manual'):
        out['dhcp'] = str(ip).strip().lower() == 'dhcp'
        return out
    parsed = parse_address(ip, file, path + ['ip'], report)
    if parsed is None:
        return out
    address, prefix, number, version = parsed
    given = prefix
    if prefix is None:
        prefix = subnet.prefixlen if subnet is not None else (32 if version == 4 else 128)
    out['ip'] = address
    out['prefix'] = prefix
    out['cidr'] = '%s/%d' % (address, prefix)
    if subnet is not None:
        if not in_network(number, version, subnet):
            report.error(file, pointer(*(path + ['ip'])), 'IP %s is outside the hypervisor subnet %s'
                         % (address, subnet), 'network.outside_subnet')
        elif given is not None and given != ctx['subnet_prefix']:
            report.error(file, pointer(*(path + ['ip'])), 'prefix length /%d of %s/%d does not match the '
                         'hypervisor subnet %s' % (given, address, given, subnet), 'network.prefix')
    return out


def _check_gateway(gateway, file, path, ctx):
    """A guest's gateway must lie in the hypervisor subnet (results are cached: guests share gateways)."""
    cache = ctx['gateway_ok']
    inside = cache.get(gateway)
    if inside is None:
        parsed = parse_address(gateway, file, path, ctx['report'])
        if parsed is None:
            return
        inside = in_network(parsed[2], parsed[3], ctx['subnet'])
        cache[gateway] = inside
    if not inside:
        ctx['report'].error(file, pointer(*path), 'gateway %s is outside the hypervisor subnet %s'
                            % (gateway, ctx['subnet']), 'network.gateway')


def _traefik_service(raw, domain, file, base, report):
    ts = raw.get('traefik_service')
    if not isinstance(ts, dict) or not ts.get('name'):
        return None
    name = str(ts['name'])
    out = dict(ts)
    out['name'] = name
    out['host'] = ts.get('host') or ('%s.%s' % (name, domain) if domain else name)
    out['path'] = pointer(*(base + ['traefik_service', 'name']))
    return out


def _as_list(value):
    """A list value as it is; anything else (wrong type, reported by the schema) as an empty list."""
    return value if isinstance(value, list) else []


def _docker_stacks(raw, environment):
    out = []
    items = raw.get('docker_stacks')
    for item in (items if isinstance(items, list) else ()):
        if isinstance(item, dict):
            out.append({'name': str(item.get('name')), 'environment': item.get('environment') or environment})
        else:
            out.append({'name': str(item), 'environment': environment})
    return out


def _build_guest(gid, gtype, raw, file, base, ctx, declared=None):
    report = ctx['report']
    guest = dict(raw)
    guest['id'] = gid
    guest['type'] = gtype
    guest['name'] = str(raw.get('name', gid))
    guest['hostname'] = hostname_of(guest['name'])
    guest['fqdn'] = '%s.%s' % (guest['hostname'], ctx['domain']) if ctx['domain'] else guest['hostname']
    guest['source'] = {'file': file, 'path': pointer(*base)}
    # the node it lives on: its own, else the cluster's default node, else None (the node the modules connect to)
    guest['node'] = str(raw['node']) if raw.get('node') else (ctx['cluster'].get('node') or None)
    if 'is_template' in raw:
        guest['is_template'] = bool(raw['is_template'])
    else:
        guest['is_template'] = bool(raw.get('template_snapshot_name'))
    clone_key = 'clone_from_ctid' if gtype == 'lxc' else 'clone_from_vmid'
    guest['clone_from'] = as_id(raw.get(clone_key)) if raw.get(clone_key) not in (None, '') else None
    deps = []
    dep_indexes = []  # position of each dependency in the raw list, for messages
    raw_deps = raw.get('dependencies')
    for index, dep in enumerate(raw_deps if isinstance(raw_deps, list) else ()):
        dep_id = as_id(dep)
        if dep_id is None:
            report.error(file, pointer(*(base + ['dependencies', index])), 'dependency "%s" is not a guest ID' % dep,
                         'dependency.format')
        elif dep_id in deps:
            report.warning(file, pointer(*(base + ['dependencies', index])), 'dependency %d is listed twice'
                           % dep_id, 'dependency.duplicate')
        else:
            deps.append(dep_id)
            dep_indexes.append(index)
    guest['dependencies'] = deps
    ctx['dep_indexes'].setdefault(gid, dep_indexes)
    features = []
    raw_features = raw.get('features')
    for feature in (raw_features if isinstance(raw_features, list) else ()):
        feature = str(feature)
        if feature not in features:
            features.append(feature)
    guest['features'] = features
    guest['gpus'] = parse_gpus(raw.get('gpu_assignment'), file, base + ['gpu_assignment'], report)
    role = str(raw.get('portainer_role') or 'none').lower()
    guest['portainer_role'] = role
    swarm_role = raw.get('swarm_role')
    if swarm_role is None and ('docker' in features or gtype == 'vm' and role in ('primary', 'agent')):
        swarm_role = {'primary': 'manager', 'agent': 'worker'}.get(role)
    guest['swarm_role'] = swarm_role
    guest['network'] = _network(gtype, raw, file, base, ctx)
    guest['firewall'] = normalize_firewall(raw.get('firewall') or {}, file, base + ['firewall'], report,
                                           ctx['group_refs'])
    guest['traefik_service'] = _traefik_service(raw, ctx['domain'], file, base, report)
    guest['docker_stacks'] = _docker_stacks(raw, ctx['environment'])
    guest['image'] = guest_image(gtype, raw, guest['clone_from'], file, base, report)
    # Raw fields that have a normalized counterpart are dropped so that each fact is stated once.
    for key in RAW_REPLACED:
        guest.pop(key, None)
    warn_unknown_keys(declared if declared is not None else raw, ctx['known_keys'][gtype], file, base, report,
                      '%s guest' % gtype.upper())
    return guest


def _mark_invalid(ctx, gid, raw):
    """A guest left out for schema errors: its ID stays known, so references to it do not cascade, and
    so does its Portainer role (None when it cannot be told), for the cross-guest Portainer checks."""
    ctx['invalid_ids'].add(gid)
    role = None
    if isinstance(raw, dict):
        role = str(raw.get('portainer_role') or 'none').lower()
    ctx['invalid_roles'][gid] = role


def _load_lxc(data, ctx, guests, id_sources, broken, all_broken=False):
    configs = data.get('lxc_configs')
    if not isinstance(configs, dict):
        return  # reported by the schema
    for key, raw in configs.items():
        gid = as_id(key)
        base = ['lxc_configs', key]
        if gid is None:
            continue  # reported by the schema (a key that is not a guest ID)
        if all_broken or key in broken or not isinstance(raw, dict):
            _mark_invalid(ctx, gid, raw)
            continue
        # cores and memory_mb are required by the LXC schema: a guest without them is broken above, so the
        # hypervisor's proxmox_defaults.lxc never fills them (it is accepted and not used)
        raw = dict(raw)
        guest = _build_guest(gid, 'lxc', raw, LXC_FILE, base, ctx)
        guest['disk_gb'] = raw.get('storage_size_gb')
        guest['ctid'] = gid
        id_sources.setdefault(gid, []).append((LXC_FILE, base))
        guests.append(guest)


def _load_vms(data, ctx, guests, id_sources, broken, all_broken=False):
    defaults = ctx['vm_defaults']
    for index, raw in enumerate(_as_list(data.get('vms'))):
        if not isinstance(raw, dict):
            continue
        gid = as_id(raw.get('vmid'))
        base = ['vms', index]
        if gid is None:
            continue
        if all_broken or index in broken:
            _mark_invalid(ctx, gid, dict(defaults, **raw) if isinstance(defaults, dict) else raw)
            continue
        merged = dict((k, v) for k, v in defaults.items() if k not in ('network_bridge',))
        merged.update(raw)
        guest = _build_guest(gid, 'vm', merged, VM_FILE, base, ctx, declared=raw)
        guest['disk_gb'] = merged.get('disk_size_gb')
        id_sources.setdefault(gid, []).append((VM_FILE, base + ['vmid']))
        guests.append(guest)


# --------------------------------------------------------------------------- cross-guest checks

def _where(guest, *extra):
    parts = [p.replace('~1', '/').replace('~0', '~') for p in guest['source']['path'].split('/')[1:]]
    return guest['source']['file'], pointer(*(parts + list(extra)))


def _check_unique(guests, id_sources, hyp_net, report):
    for gid, sources in sorted(id_sources.items()):
        if len(sources) > 1:
            places = ', '.join('%s: %s' % (f, pointer(*p)) for f, p in sources)
            for file, path in sources:
                report.error(file, pointer(*path), 'guest ID %d is defined %d times (%s)' % (gid, len(sources), places),
                             'guest.duplicate_id')
    reserved = {}
    if hyp_net.get('ip'):
        reserved[hyp_net['ip']] = 'the hypervisor address'
    if hyp_net.get('gateway'):
        reserved[str(hyp_net['gateway'])] = 'the gateway'
    by_ip = {}
    by_mac = {}
    for guest in guests:
        ip = guest['network']['ip']
        if ip:
            by_ip.setdefault(ip, []).append(guest)
        mac = guest['network']['mac']
        if mac:
            by_mac.setdefault(mac, []).append(guest)
    for ip, owners in sorted(by_ip.items()):
        if ip in reserved:
            for guest in owners:
                file, path = _where(guest, 'network_config', 'ip')
                report.error(file, path, 'IP %s of guest %d is %s' % (ip, guest['id'], reserved[ip]),
                             'network.reserved_ip')
        if len(owners) > 1:
            ids = ', '.join(str(g['id']) for g in owners)
            for guest in owners:
                file, path = _where(guest, 'network_config', 'ip')
                report.error(file, path, 'duplicate IP %s: used by guests %s' % (ip, ids), 'network.duplicate_ip')
    for mac, owners in sorted(by_mac.items()):
        if len(owners) > 1:
            ids = ', '.join(str(g['id']) for g in owners)
            for guest in owners:
                file, path = _where(guest, 'mac_address')
                report.error(file, path, 'duplicate MAC %s: used by guests %s' % (mac, ids), 'network.duplicate_mac')


def _dependency_path(guest, dep, dep_indexes):
    """(file, pointer) of the entry in a guest's raw dependencies list that names ``dep``."""
    position = guest['dependencies'].index(dep)
    indexes = dep_indexes.get(guest['id']) or []
    return _where(guest, 'dependencies', indexes[position] if position < len(indexes) else position)


def _clone_key(guest):
    return 'clone_from_ctid' if guest['type'] == 'lxc' else 'clone_from_vmid'


def _check_references(by_id, stacks, report, ctx):
    invalid_ids = ctx['invalid_ids']
    dep_indexes = ctx['dep_indexes']
    ids_unknown = ctx['ids_unknown']
    for guest in by_id.values():
        gid = guest['id']
        for dep in guest['dependencies']:
            if dep == gid:
                file, path = _dependency_path(guest, dep, dep_indexes)
                report.error(file, path, 'guest %d depends on itself' % gid, 'dependency.self')
            elif dep not in by_id and dep not in invalid_ids and not ids_unknown:
                file, path = _dependency_path(guest, dep, dep_indexes)
                report.error(file, path, 'guest %d depends on %d, which is not defined' % (gid, dep),
                             'dependency.unknown')
        src = guest['clone_from']
        if src is not None:
            if src not in by_id:
                if src not in invalid_ids and not ids_unknown:
                    file, path = _where(guest, _clone_key(guest))
                    report.error(file, path, 'guest %d clones from %d, which is not defined' % (gid, src),
                                 'clone.unknown')
            elif by_id[src]['type'] != guest['type']:
                file, path = _where(guest, _clone_key(guest))
                report.error(file, path, 'guest %d (%s) clones from %d, which is %s' % (
                    gid, guest['type'].upper(), src, 'an LXC' if by_id[src]['type'] == 'lxc' else 'a VM'),
                    'clone.type')
            elif src == gid:
                file, path = _where(guest, _clone_key(guest))
                report.error(file, path, 'guest %d clones from itself' % gid, 'clone.self')
        if guest['docker_stacks'] and 'docker' not in guest['features']:
            file, path = _where(guest, 'docker_stacks')
            report.error(file, path, 'guest %d deploys docker stacks (%s) but does not have the "docker" feature' % (
                gid, ', '.join(s['name'] for s in guest['docker_stacks'])), 'stack.without_docker')
        for index, stack in enumerate(guest['docker_stacks']):
            file, path = _where(guest, 'docker_stacks', index)
            entry = stacks.get(stack['name'])
            if entry is None:
                known = ', '.join(sorted(stacks)) or 'none'
                report.error(file, path, 'guest %d deploys stack "%s", which is not defined (known stacks: %s)'
                             % (gid, stack['name'], known), 'stack.unknown')
                continue
            if stack['environment'] not in entry['environments']:
                report.error(file, path, 'stack "%s" has no environment "%s" (defined: %s)' % (
                    stack['name'], stack['environment'], ', '.join(entry['environments']) or 'none'),
                    'stack.environment')
            if not entry['compose_file']:
                report.error(file, path, 'stack "%s" has no compose file (expected stacks/%s/docker-compose.yml)'
                             % (stack['name'], stack['name']), 'stack.compose_missing')
        if guest['gpus'] and not any(f in GPU_FEATURES for f in guest['features']):
            file, path = _where(guest, 'gpu_assignment')
            report.error(file, path, 'guest %d is assigned GPU(s) %s but has neither the "nvidia" nor the "vllm" '
                         'feature' % (gid, ', '.join(str(g) for g in guest['gpus'])), 'gpu.without_feature')
        if 'vllm' in guest['features'] and not isinstance(guest.get('vllm_engine_config'), dict):
            file, path = _where(guest, 'features')
            report.error(file, path, 'guest %d has the "vllm" feature but no vllm_engine_config' % gid,
                         'vllm.config_missing')
        if guest['portainer_role'] not in PORTAINER_ROLES:
            file, path = _where(guest, 'portainer_role')
            report.error(file, path, 'portainer_role "%s" is not one of %s' % (
                guest['portainer_role'], ', '.join(PORTAINER_ROLES)), 'portainer.role')
    primaries = [g for g in by_id.values() if g['portainer_role'] == 'primary']
    if len(primaries) > 1:
        ids = ', '.join(str(g['id']) for g in primaries)
        for guest in primaries:
            file, path = _where(guest, 'portainer_role')
            report.error(file, path, 'more than one Portainer primary: guests %s' % ids, 'portainer.primary')
    agents = [g for g in by_id.values() if g['portainer_role'] == 'agent']
    # A guest left out for schema errors may be the primary (or its role cannot be told, or guests
    # could not be listed at all): then the agents are not reported, the schema error is the one to fix.
    maybe_primary = ids_unknown or any(role not in ('agent', 'infrastructure', 'none')
                                       for role in ctx['invalid_roles'].values())
    if agents and not primaries and not maybe_primary:
        for guest in agents:
            file, path = _where(guest, 'portainer_role')
            report.error(file, path, 'guest %d is a Portainer agent but no guest has portainer_role "primary"'
                         % guest['id'], 'portainer.no_primary')


def _cluster_raw(hypervisor_raw):
    cluster = hypervisor_raw.get('cluster') if isinstance(hypervisor_raw, dict) else None
    return cluster if isinstance(cluster, dict) else {}


def _check_placement(by_id, cluster, report):
    """Guests on cluster nodes: a known node, the GPUs it has, clones across nodes only from shared storage."""
    nodes = cluster.get('nodes') if isinstance(cluster.get('nodes'), dict) else None
    shared = set(cluster.get('shared_storages') or ())
    if nodes is not None and cluster.get('node') and cluster['node'] not in nodes:
        report.error(HYPERVISOR_FILE, pointer('cluster', 'node'), 'cluster node "%s" is not one of cluster.nodes (%s)'
                     % (cluster['node'], ', '.join(sorted(nodes)) or 'none'), 'node.unknown')
    for guest in by_id.values():
        gid, node = guest['id'], guest.get('node')
        if node and nodes is not None and node not in nodes:
            if node == cluster.get('node'):
                continue  # the default node, reported once above
            file, path = _where(guest, 'node')
            report.error(file, path, 'guest %d is placed on node "%s", which is not a node of the cluster (%s)'
                         % (gid, node, ', '.join(sorted(nodes)) or 'none'), 'node.unknown')
            continue
        entry = nodes.get(node) if nodes is not None and node else None
        if guest['gpus'] and isinstance(entry, dict) and isinstance(entry.get('gpus'), list):
            missing = [g for g in guest['gpus'] if g not in entry['gpus']]
            if missing:
                file, path = _where(guest, 'gpu_assignment')
                report.error(file, path, 'guest %d is assigned GPU(s) %s, which node "%s" does not have (its GPUs: %s)'
                             % (gid, ', '.join(str(g) for g in missing), node,
                                ', '.join(str(g) for g in entry['gpus']) or 'none'), 'gpu.node')
        src = by_id.get(guest['clone_from']) if guest['clone_from'] is not None else None
        if src is None or not node or not src.get('node') or src['node'] == node:
            continue
        # Proxmox clones onto another node only when every disk of the source is on shared storage, and a full
        # clone's target storage is shared too (qemu-server/pve-container clone_vm: "can't clone VM to node
        # 'b' (VM uses local storage)")
        unshared = sorted(set(s for s in (src.get('storage_pool'), guest.get('storage_pool')) if s and s not in shared))
        if unshared or not src.get('storage_pool'):
            file, path = _where(guest, _clone_key(guest))
            report.error(file, path, 'guest %d on node "%s" clones from %d on node "%s", but Proxmox clones across '
                         'nodes only from shared storage, and %s %s not in cluster.shared_storages (%s): put the '
                         'clone source on a shared storage, or the guest on node "%s"' % (
                             gid, node, src['id'], src['node'],
                             ', '.join(unshared) or 'the source\'s storage (storage_pool not set)',
                             'is' if len(unshared) < 2 else 'are', ', '.join(sorted(shared)) or 'none', src['node']),
                         'clone.cross_node')


def _check_names(by_id, report):
    """Every guest gets a DNS record <hostname>.<domain>: two guests must not share one. Returns {fqdn: [guest]}."""
    by_fqdn = {}
    for guest in by_id.values():
        by_fqdn.setdefault(guest['fqdn'], []).append(guest)
    for fqdn in sorted(f for f, owners in by_fqdn.items() if len(owners) > 1):
        owners = sorted(by_fqdn[fqdn], key=lambda g: g['id'])
        ids = ', '.join(str(g['id']) for g in owners)
        for guest in owners:
            file, path = _where(guest, 'name')
            report.error(file, path, 'DNS name %s is used by guests %s' % (fqdn, ids), 'guest.duplicate_name')
    return by_fqdn


def _check_security_groups(group_refs, hypervisor_raw, report):
    """Rules of type 'group' must name a security group of the cluster firewall.

    The configs are authoritative for the firewall, so a group is checked even when the hypervisor
    config defines no security groups at all (the rule would insert a group that the sync does not
    create). Skipped when the hypervisor config could not be loaded (its error is the one to fix).
    """
    if not group_refs or not isinstance(hypervisor_raw, dict):
        return
    fw, fw_path = _cluster_firewall_raw(hypervisor_raw)
    groups = fw.get('security_groups') if isinstance(fw, dict) else None
    defined = set(groups) if isinstance(groups, dict) else set()
    where = '%s %s' % (HYPERVISOR_FILE, pointer(*(fw_path + ['security_groups'])))
    for name, file, path in group_refs:
        if name not in defined:
            report.error(file, pointer(*path), 'security group "%s" is not defined in %s' % (name, where),
                         'firewall.unknown_group')


def _dependency_order(by_id, report, dep_indexes):
    """Topological order over dependencies and clone sources; reports every cycle once.

    A cycle is printed from the guest where the search entered it, and reported at that guest's
    entry (dependencies/<i>, or the clone source) that leads into the rest of the cycle.
    """
    edges = {}
    for gid, guest in by_id.items():
        before = [d for d in guest['dependencies'] if d in by_id and d != gid]
        if guest['clone_from'] in by_id and guest['clone_from'] != gid and guest['clone_from'] not in before:
            before.append(guest['clone_from'])
        edges[gid] = before
    # Cycle detection (iterative DFS, colors).
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(edges, white)
    reported = set()
    for start in sorted(edges):
        if color[start] != white:
            continue
        stack = [(start, iter(edges[start]))]
        trail = [start]
        color[start] = grey
        while stack:
            node, children = stack[-1]
            advanced = False
            for child in children:
                if color[child] == grey:
                    cycle = trail[trail.index(child):] + [child]
                    key = frozenset(cycle)
                    if key not in reported:
                        reported.add(key)
                        text = ' -> '.join(str(c) for c in cycle)
                        guest = by_id[cycle[0]]
                        if cycle[1] in guest['dependencies']:
                            file, path = _dependency_path(guest, cycle[1], dep_indexes)
                        else:
                            file, path = _where(guest, _clone_key(guest))
                        report.error(file, path, 'dependency cycle: %s' % text, 'dependency.cycle')
                elif color[child] == white:
                    color[child] = grey
                    trail.append(child)
                    stack.append((child, iter(edges[child])))
                    advanced = True
                    break
            if not advanced:
                color[node] = black
                trail.pop()
                stack.pop()
    # Kahn's algorithm, smallest ID first among the ready guests.
    indegree = dict((gid, len(before)) for gid, before in edges.items())
    after = dict((gid, []) for gid in edges)
    for gid, before in edges.items():
        for dep in before:
            after[dep].append(gid)
    ready = [gid for gid, n in indegree.items() if n == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        gid = heapq.heappop(ready)
        order.append(gid)
        for nxt in after[gid]:
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                heapq.heappush(ready, nxt)
    placed = set(order)
    order.extend(sorted(g for g in edges if g not in placed))  # members of cycles, already reported
    return order


def _on_guests(ids):
    ids = sorted(ids)
    return 'on guest%s %s' % ('s' if len(ids) > 1 else '', ', '.join(str(i) for i in ids))


def _stack_variants(stacks, environment, deployed_on):
    """(stack name, environment, routers) for every stack variant that Traefik may serve.

    The load environment's variant of every stack, except for a stack that guests deploy
    only in other environments; and every (stack, environment) pair a guest deploys.
    """
    deployed_envs = {}
    for name, env in deployed_on:
        deployed_envs.setdefault(name, set()).add(env)
    out = []
    for name, stack in sorted(stacks.items()):
        envs = deployed_envs.get(name)
        if not envs or environment in envs:
            out.append((name, environment, stack['routers']))
        for env, view in sorted((stack.get('other_environments') or {}).items()):
            out.append((name, env, view['routers']))
    return out


def _check_routing(by_id, stacks, report, environment, by_fqdn):
    """Unique traefik_service names, unique router names, one owner per Host() rule, no route on a guest's name."""
    services = {}
    for guest in sorted(by_id.values(), key=lambda g: g['id']):
        ts = guest['traefik_service']
        if ts:
            services.setdefault(ts['name'], []).append(guest)
    for name, owners in sorted(services.items()):
        if len(owners) > 1:
            ids = ', '.join(str(g['id']) for g in owners)
            for guest in owners:
                report.error(guest['source']['file'], guest['traefik_service']['path'],
                             'traefik_service name "%s" is used by guests %s' % (name, ids), 'traefik.duplicate_service')
    deployed_on = {}
    for guest in by_id.values():
        for stack in guest['docker_stacks']:
            deployed_on.setdefault((stack['name'], stack['environment']), set()).add(guest['id'])
    routers = {}
    claims = {}
    for name, ts_owners in services.items():
        for guest in ts_owners:
            ts = guest['traefik_service']
            what = 'traefik_service "%s" of guest %d' % (name, guest['id'])
            claims.setdefault(('host', ts['host']), []).append({
                'what': what, 'full': what, 'file': guest['source']['file'], 'path': ts['path'],
                'guests': {guest['id']}, 'kind': 'service'})
    for stack_name, env, stack_routers in _stack_variants(stacks, environment, deployed_on):
        label = stack_name if env == environment else '%s (environment %s)' % (stack_name, env)
        guests = deployed_on.get((stack_name, env), set())
        notes = ([] if env == environment else ['environment %s' % env]) + ([_on_guests(guests)] if guests else [])
        for router, info in sorted(stack_routers.items()):
            routers.setdefault(router, []).append((label, info))
            what = 'router "%s" of stack %s' % (router, stack_name)
            claim = {'what': what + (' (environment %s)' % env if env != environment else ''),
                     'full': what + (' (%s)' % ', '.join(notes) if notes else ''),
                     'file': info['file'], 'path': info['path'], 'guests': guests, 'kind': 'router'}
            if info['only_hosts'] and info['hosts']:
                for host in info['hosts']:
                    claims.setdefault(('host', host), []).append(claim)
            else:
                claims.setdefault(('rule', ' '.join(info['rule'].split())), []).append(claim)
    for router, owners in sorted(routers.items()):
        if len(owners) > 1:
            names = ', '.join(owner[0] for owner in owners)
            for info in (owner[1] for owner in owners):
                report.error(info['file'], info['path'], 'router name "%s" is defined by stacks %s' % (router, names),
                             'traefik.duplicate_router')
    for (kind, value), owners in sorted(claims.items()):
        if kind == 'host' and value in by_fqdn:
            _check_guest_host(value, owners, by_fqdn[value], report)
        if len(owners) < 2:
            continue
        label = 'Host(`%s`)' % value if kind == 'host' else 'rule "%s"' % value
        twins = (len(owners) == 2 and set(o['kind'] for o in owners) == {'service', 'router'}
                 and owners[0]['guests'] & owners[1]['guests'])
        for owner in owners:
            if twins:
                report.warning(owner['file'], owner['path'], '%s is declared twice on the same guest (%s); the stack '
                               'router serves it' % (label, ' and '.join(o['what'] for o in owners)),
                               'traefik.twin_host')
            else:
                report.error(owner['file'], owner['path'], '%s is claimed by %s'
                             % (label, ' and '.join(o['full'] for o in owners)), 'traefik.duplicate_host')


def _check_guest_host(host, claims, guests, report):
    """A route's host that is the DNS name of another guest: the name cannot point at Traefik and at that guest.

    A guest may publish its own name (traefik_service "granite-embedding" on the guest of that name),
    and a router may serve the name of a guest that runs its stack.
    """
    for claim in claims:
        if not claim['guests']:
            continue  # a stack that no guest deploys has no router
        others = sorted(g['id'] for g in guests if g['id'] not in claim['guests'])
        if others:
            report.error(claim['file'], claim['path'], '%s claims %s, the DNS name of guest%s %s' % (
                claim['full'], host, 's' if len(others) > 1 else '', ', '.join(str(i) for i in others)),
                'traefik.guest_host')


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
        hypervisor, subnet, _address = _build_hypervisor(hypervisor_raw, report, group_refs)
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
        'cluster': _cluster_raw(hypervisor_raw),
        'vm_defaults': {},
        'invalid_ids': set(),     # IDs of guests left out for schema errors
        'invalid_roles': {},      # their Portainer roles
        'ids_unknown': ids_unknown,
        'dep_indexes': {},        # {guest ID: raw list position of each dependency}
        'gateway_ok': {},         # {gateway: inside the subnet}
        'group_refs': group_refs,
        'known_keys': {
            'lxc': _known_keys(LXC_FILE, 'lxc_configs', '*'),
            'vm': _known_keys(VM_FILE, 'vms', '[]'),
        },
    }
    guests, id_sources = [], {}
    if VM_FILE in docs and 'vm_defaults' not in broken[VM_FILE][2]:
        defaults = docs[VM_FILE].get('vm_defaults')
        ctx['vm_defaults'] = defaults if isinstance(defaults, dict) else {}
    if LXC_FILE in docs:
        bad, all_bad, _top = broken[LXC_FILE]
        _load_lxc(lxc_doc, ctx, guests, id_sources, bad, all_bad)
    if VM_FILE in docs:
        bad, all_bad, top = broken[VM_FILE]
        _load_vms(docs[VM_FILE], ctx, guests, id_sources, bad, all_bad or 'vm_defaults' in top)

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

    _check_unique(guests, id_sources, hypervisor.get('network_normalized', {}), report)
    by_id = {}
    for guest in guests:
        by_id.setdefault(guest['id'], guest)
    _check_references(by_id, stacks, report, ctx)
    _check_placement(by_id, ctx['cluster'], report)
    by_fqdn = _check_names(by_id, report)
    _check_security_groups(group_refs, hypervisor_raw, report)
    order = _dependency_order(by_id, report, ctx['dep_indexes'])
    ordered = {}
    for index, gid in enumerate(order):
        by_id[gid]['order'] = index
        ordered[gid] = by_id[gid]
    _check_routing(ordered, stacks, report, environment, by_fqdn)
    config = PhoenixConfig(hypervisor, ordered, stacks, certificates, environment, report)
    if raise_on_error and report.errors:
        raise PhoenixConfigError(report)
    return config
