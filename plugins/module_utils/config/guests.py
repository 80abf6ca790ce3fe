# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Guests and the hypervisor: raw config entries turned into normalized dicts (schema helpers, networks, stacks)."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import difflib

from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.images import guest_image
from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.normalize import (
    as_id, hostname_of, in_network, normalize_firewall, normalize_mac, parse_address, parse_gpus, parse_interface,
    parse_network, split_list,
)
from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.report import pointer
from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.schemas import SCHEMAS

HYPERVISOR_FILE = 'phoenix_hypervisor_config.json'
LXC_FILE = 'phoenix_lxc_configs.json'
VM_FILE = 'phoenix_vm_configs.json'


# Raw guest keys replaced by normalized ones: network_config/mac_address -> network,
# clone_from_ctid/clone_from_vmid -> clone_from, gpu_assignment -> gpus.
RAW_REPLACED = ('network_config', 'mac_address', 'clone_from_ctid', 'clone_from_vmid', 'gpu_assignment')


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


def known_keys(schema_key, *steps):
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

def cluster_firewall_raw(raw):
    """The raw cluster firewall and its JSON path: top-level 'firewall', else shared_volumes.firewall."""
    fw = raw.get('firewall')
    if fw is None and isinstance((raw.get('shared_volumes') or {}).get('firewall'), dict):
        return raw['shared_volumes']['firewall'], ['shared_volumes', 'firewall']
    return fw, ['firewall']


def build_hypervisor(raw, report, group_refs=None):
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
    fw, fw_path = cluster_firewall_raw(raw)
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
    warn_unknown_keys(raw, known_keys(HYPERVISOR_FILE), file, [], report, 'hypervisor')
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


def load_lxc(data, ctx, guests, id_sources, broken, all_broken=False):
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


def load_vms(data, ctx, guests, id_sources, broken, all_broken=False):
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


def where(guest, *extra):
    parts = [p.replace('~1', '/').replace('~0', '~') for p in guest['source']['path'].split('/')[1:]]
    return guest['source']['file'], pointer(*(parts + list(extra)))


def dependency_path(guest, dep, dep_indexes):
    """(file, pointer) of the entry in a guest's raw dependencies list that names ``dep``."""
    position = guest['dependencies'].index(dep)
    indexes = dep_indexes.get(guest['id']) or []
    return where(guest, 'dependencies', indexes[position] if position < len(indexes) else position)


def clone_key(guest):
    return 'clone_from_ctid' if guest['type'] == 'lxc' else 'clone_from_vmid'


def cluster_raw(hypervisor_raw):
    cluster = hypervisor_raw.get('cluster') if isinstance(hypervisor_raw, dict) else None
    return cluster if isinstance(cluster, dict) else {}
