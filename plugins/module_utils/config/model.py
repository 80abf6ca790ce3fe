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

def _build_hypervisor(raw, report):
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
    fw = raw.get('firewall')
    fw_path = ['firewall']
    if fw is None and isinstance((raw.get('shared_volumes') or {}).get('firewall'), dict):
        fw = raw['shared_volumes']['firewall']
        fw_path = ['shared_volumes', 'firewall']
    hyp['cluster_firewall'] = normalize_firewall(fw or {}, file, fw_path, report)
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

def _network(gtype, raw, file, base, subnet, defaults, report):
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
    if prefix is None:
        prefix = subnet.prefixlen if subnet is not None else (32 if version == 4 else 128)
    out['ip'] = address
    out['prefix'] = prefix
    out['cidr'] = '%s/%d' % (address, prefix)
    if subnet is not None and not in_network(number, version, subnet):
        report.error(file, pointer(*(path + ['ip'])), 'IP %s is outside the hypervisor subnet %s'
                     % (address, subnet), 'network.outside_subnet')
    return out


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


def _docker_stacks(raw, environment):
    out = []
    for item in raw.get('docker_stacks') or []:
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
    if 'is_template' in raw:
        guest['is_template'] = bool(raw['is_template'])
    else:
        guest['is_template'] = bool(raw.get('template_snapshot_name'))
    clone_key = 'clone_from_ctid' if gtype == 'lxc' else 'clone_from_vmid'
    guest['clone_from'] = as_id(raw.get(clone_key)) if raw.get(clone_key) not in (None, '') else None
    deps = []
    for index, dep in enumerate(raw.get('dependencies') or []):
        dep_id = as_id(dep)
        if dep_id is None:
            report.error(file, pointer(*(base + ['dependencies', index])), 'dependency "%s" is not a guest ID' % dep,
                         'dependency.format')
        elif dep_id in deps:
            report.warning(file, pointer(*(base + ['dependencies', index])), 'dependency %d is listed twice'
                           % dep_id, 'dependency.duplicate')
        else:
            deps.append(dep_id)
    guest['dependencies'] = deps
    features = []
    for feature in raw.get('features') or []:
        if feature not in features:
            features.append(str(feature))
    guest['features'] = features
    guest['gpus'] = parse_gpus(raw.get('gpu_assignment'), file, base + ['gpu_assignment'], report)
    role = str(raw.get('portainer_role') or 'none').lower()
    guest['portainer_role'] = role
    swarm_role = raw.get('swarm_role')
    if swarm_role is None and ('docker' in features or gtype == 'vm' and role in ('primary', 'agent')):
        swarm_role = {'primary': 'manager', 'agent': 'worker'}.get(role)
    guest['swarm_role'] = swarm_role
    guest['network'] = _network(gtype, raw, file, base, ctx['subnet'], ctx['vm_defaults'], report)
    guest['firewall'] = normalize_firewall(raw.get('firewall') or {}, file, base + ['firewall'], report)
    guest['traefik_service'] = _traefik_service(raw, ctx['domain'], file, base, report)
    guest['docker_stacks'] = _docker_stacks(raw, ctx['environment'])
    # Raw fields that have a normalized counterpart are dropped so that each fact is stated once.
    for key in RAW_REPLACED:
        guest.pop(key, None)
    warn_unknown_keys(declared if declared is not None else raw, ctx['known_keys'][gtype], file, base, report,
                      '%s guest' % gtype.upper())
    return guest


def _load_lxc(data, ctx, guests, id_sources, broken):
    defaults = (ctx['hypervisor_raw'].get('proxmox_defaults') or {}).get('lxc') or {}
    for key, raw in (data.get('lxc_configs') or {}).items():
        gid = as_id(key)
        base = ['lxc_configs', key]
        if gid is None or not isinstance(raw, dict):
            continue  # reported by the schema
        if key in broken:
            ctx['invalid_ids'].add(gid)
            continue
        raw = dict(raw)
        for field in ('cores', 'memory_mb'):
            if field not in raw and field in defaults:
                raw[field] = defaults[field]
        guest = _build_guest(gid, 'lxc', raw, LXC_FILE, base, ctx)
        guest['disk_gb'] = raw.get('storage_size_gb')
        guest['ctid'] = gid
        id_sources.setdefault(gid, []).append((LXC_FILE, base))
        guests.append(guest)


def _load_vms(data, ctx, guests, id_sources, broken):
    defaults = data.get('vm_defaults') or {}
    ctx['vm_defaults'] = defaults
    for index, raw in enumerate(data.get('vms') or []):
        if not isinstance(raw, dict):
            continue
        gid = as_id(raw.get('vmid'))
        base = ['vms', index]
        if gid is None:
            continue
        if index in broken:
            ctx['invalid_ids'].add(gid)
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


def _check_references(by_id, stacks, report, invalid_ids=frozenset()):
    for guest in by_id.values():
        gid = guest['id']
        for index, dep in enumerate(guest['dependencies']):
            if dep == gid:
                file, path = _where(guest, 'dependencies', index)
                report.error(file, path, 'guest %d depends on itself' % gid, 'dependency.self')
            elif dep not in by_id and dep not in invalid_ids:
                file, path = _where(guest, 'dependencies', index)
                report.error(file, path, 'guest %d depends on %d, which is not defined' % (gid, dep),
                             'dependency.unknown')
        src = guest['clone_from']
        if src is not None:
            file, path = _where(guest, 'clone_from_ctid' if guest['type'] == 'lxc' else 'clone_from_vmid')
            if src not in by_id:
                if src not in invalid_ids:
                    report.error(file, path, 'guest %d clones from %d, which is not defined' % (gid, src),
                                 'clone.unknown')
            elif by_id[src]['type'] != guest['type']:
                report.error(file, path, 'guest %d (%s) clones from %d, which is a %s' % (
                    gid, guest['type'].upper(), src, by_id[src]['type'].upper()), 'clone.type')
            elif src == gid:
                report.error(file, path, 'guest %d clones from itself' % gid, 'clone.self')
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
    if agents and not primaries:
        for guest in agents:
            file, path = _where(guest, 'portainer_role')
            report.error(file, path, 'guest %d is a Portainer agent but no guest has portainer_role "primary"'
                         % guest['id'], 'portainer.no_primary')


def _dependency_order(by_id, report):
    """Topological order over dependencies and clone sources; reports every cycle once."""
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
                        file, path = _where(guest, 'dependencies')
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


def _check_routing(by_id, stacks, report):
    """Unique traefik_service names, unique router names, one owner per Host() rule."""
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
            deployed_on.setdefault(stack['name'], set()).add(guest['id'])
    routers = {}
    claims = {}
    for name, ts_owners in services.items():
        for guest in ts_owners:
            ts = guest['traefik_service']
            claims.setdefault(('host', ts['host']), []).append({
                'what': 'traefik_service "%s" of guest %d' % (name, guest['id']), 'file': guest['source']['file'],
                'path': ts['path'], 'guests': {guest['id']}, 'kind': 'service'})
    for stack_name, stack in sorted(stacks.items()):
        for router, info in sorted(stack['routers'].items()):
            routers.setdefault(router, []).append((stack_name, info))
            claim = {'what': 'router "%s" of stack %s' % (router, stack_name), 'file': info['file'],
                     'path': info['path'], 'guests': deployed_on.get(stack_name, set()), 'kind': 'router'}
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
        if len(owners) < 2:
            continue
        label = 'Host(`%s`)' % value if kind == 'host' else 'rule "%s"' % value
        twins = (len(owners) == 2 and set(o['kind'] for o in owners) == {'service', 'router'}
                 and owners[0]['guests'] & owners[1]['guests'])
        what = ' and '.join(o['what'] for o in owners)
        for owner in owners:
            if twins:
                report.warning(owner['file'], owner['path'], '%s is declared twice on the same guest (%s); the stack '
                               'router serves it' % (label, what), 'traefik.twin_host')
            else:
                report.error(owner['file'], owner['path'], '%s is claimed by %s' % (label, what),
                             'traefik.duplicate_host')


# --------------------------------------------------------------------------- entry point

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
    hypervisor, subnet = {}, None
    if isinstance(hypervisor_raw, dict):
        hypervisor, subnet, _address = _build_hypervisor(hypervisor_raw, report)
    docs, broken = {}, {}
    for name in (LXC_FILE, VM_FILE):
        fpath = os.path.join(config_dir, name)
        if not os.path.isfile(fpath):
            if os.path.isdir(config_dir):
                report.warning(name, '/', 'file not found in %s; no guests of this kind' % config_dir, 'file.missing')
            continue
        data = read_json(fpath, name, report)
        if data is None:
            continue
        # A guest that breaks the schema is left out; the rest of the file is still used, and the
        # broken guest's ID stays known so that references to it do not cascade into more errors.
        collection = 'lxc_configs' if name == LXC_FILE else 'vms'
        bad = set()
        for error_path in schema_errors(data, name, name, report):
            if len(error_path) >= 2 and error_path[0] == collection:
                bad.add(error_path[1])
            else:
                bad = None
                break
        if bad is None:
            continue
        docs[name] = data
        broken[name] = bad
    lxc_doc = docs.get(LXC_FILE, {})
    if lxc_doc.get('nvidia_driver_version') and hypervisor:
        hypervisor.setdefault('nvidia_driver_version', lxc_doc['nvidia_driver_version'])
    elif hypervisor and isinstance(hypervisor.get('nvidia_driver'), dict):
        hypervisor.setdefault('nvidia_driver_version', hypervisor['nvidia_driver'].get('version'))

    ctx = {
        'report': report,
        'domain': hypervisor.get('domain', ''),
        'subnet': subnet,
        'environment': environment,
        'hypervisor_raw': hypervisor_raw or {},
        'vm_defaults': {},
        'invalid_ids': set(),
        'known_keys': {
            'lxc': _known_keys(LXC_FILE, 'lxc_configs', '*'),
            'vm': _known_keys(VM_FILE, 'vms', '[]'),
        },
    }
    guests, id_sources = [], {}
    if VM_FILE in docs:
        ctx['vm_defaults'] = docs[VM_FILE].get('vm_defaults') or {}
    _load_lxc(lxc_doc, ctx, guests, id_sources, broken.get(LXC_FILE, set()))
    if VM_FILE in docs:
        _load_vms(docs[VM_FILE], ctx, guests, id_sources, broken[VM_FILE])

    stacks = load_stacks(config_dir, stacks_dir, environment, report, platform_rules)

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
    _check_references(by_id, stacks, report, ctx['invalid_ids'])
    order = _dependency_order(by_id, report)
    ordered = {}
    for index, gid in enumerate(order):
        by_id[gid]['order'] = index
        ordered[gid] = by_id[gid]
    _check_routing(ordered, stacks, report)
    config = PhoenixConfig(hypervisor, ordered, stacks, certificates, environment, report)
    if raise_on_error and report.errors:
        raise PhoenixConfigError(report)
    return config
