# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks across guests: unique IDs and addresses, references, placement, names, security groups, routes."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.guests import (
    clone_key, cluster_firewall_raw, dependency_path, HYPERVISOR_FILE, where,
)
from ansible_collections.thinkheads.phoenix.plugins.module_utils.config import features as feature_registry
from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.report import pointer
from ansible_collections.thinkheads.phoenix.plugins.module_utils.routing import route_declarations

GPU_FEATURES = feature_registry.gpu_features()
PORTAINER_ROLES = ('primary', 'agent', 'infrastructure', 'none')


# --------------------------------------------------------------------------- cross-guest checks


def check_unique(guests, id_sources, hyp_net, report):
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
                file, path = where(guest, 'network_config', 'ip')
                report.error(file, path, 'IP %s of guest %d is %s' % (ip, guest['id'], reserved[ip]),
                             'network.reserved_ip')
        if len(owners) > 1:
            ids = ', '.join(str(g['id']) for g in owners)
            for guest in owners:
                file, path = where(guest, 'network_config', 'ip')
                report.error(file, path, 'duplicate IP %s: used by guests %s' % (ip, ids), 'network.duplicate_ip')
    for mac, owners in sorted(by_mac.items()):
        if len(owners) > 1:
            ids = ', '.join(str(g['id']) for g in owners)
            for guest in owners:
                file, path = where(guest, 'mac_address')
                report.error(file, path, 'duplicate MAC %s: used by guests %s' % (mac, ids), 'network.duplicate_mac')


def check_references(by_id, stacks, report, ctx):
    invalid_ids = ctx['invalid_ids']
    dep_indexes = ctx['dep_indexes']
    ids_unknown = ctx['ids_unknown']
    for guest in by_id.values():
        gid = guest['id']
        for dep in guest['dependencies']:
            if dep == gid:
                file, path = dependency_path(guest, dep, dep_indexes)
                report.error(file, path, 'guest %d depends on itself' % gid, 'dependency.self')
            elif dep not in by_id and dep not in invalid_ids and not ids_unknown:
                file, path = dependency_path(guest, dep, dep_indexes)
                report.error(file, path, 'guest %d depends on %d, which is not defined' % (gid, dep),
                             'dependency.unknown')
        src = guest['clone_from']
        if src is not None:
            if src not in by_id:
                if src not in invalid_ids and not ids_unknown:
                    file, path = where(guest, clone_key(guest))
                    report.error(file, path, 'guest %d clones from %d, which is not defined' % (gid, src),
                                 'clone.unknown')
            elif by_id[src]['type'] != guest['type']:
                file, path = where(guest, clone_key(guest))
                report.error(file, path, 'guest %d (%s) clones from %d, which is %s' % (
                    gid, guest['type'].upper(), src, 'an LXC' if by_id[src]['type'] == 'lxc' else 'a VM'),
                    'clone.type')
            elif src == gid:
                file, path = where(guest, clone_key(guest))
                report.error(file, path, 'guest %d clones from itself' % gid, 'clone.self')
        for index, feature in enumerate(guest['features']):
            if not feature_registry.known(feature):
                close = feature_registry.suggestion(feature)
                file, path = where(guest, 'features', index)
                report.warning(file, path, 'guest %d has the unknown feature "%s": it sets nothing up%s' % (
                    gid, feature, '; did you mean "%s"?' % close if close else ''), 'feature.unknown')
        if guest['docker_stacks'] and 'docker' not in guest['features']:
            file, path = where(guest, 'docker_stacks')
            report.error(file, path, 'guest %d deploys docker stacks (%s) but does not have the "docker" feature' % (
                gid, ', '.join(s['name'] for s in guest['docker_stacks'])), 'stack.without_docker')
        for index, stack in enumerate(guest['docker_stacks']):
            file, path = where(guest, 'docker_stacks', index)
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
            file, path = where(guest, 'gpu_assignment')
            report.error(file, path, 'guest %d is assigned GPU(s) %s but has neither the "nvidia" nor the "vllm" '
                         'feature' % (gid, ', '.join(str(g) for g in guest['gpus'])), 'gpu.without_feature')
        if 'vllm' in guest['features'] and not isinstance(guest.get('vllm_engine_config'), dict):
            file, path = where(guest, 'features')
            report.error(file, path, 'guest %d has the "vllm" feature but no vllm_engine_config' % gid,
                         'vllm.config_missing')
        if guest['portainer_role'] not in PORTAINER_ROLES:
            file, path = where(guest, 'portainer_role')
            report.error(file, path, 'portainer_role "%s" is not one of %s' % (
                guest['portainer_role'], ', '.join(PORTAINER_ROLES)), 'portainer.role')
    primaries = [g for g in by_id.values() if g['portainer_role'] == 'primary']
    if len(primaries) > 1:
        ids = ', '.join(str(g['id']) for g in primaries)
        for guest in primaries:
            file, path = where(guest, 'portainer_role')
            report.error(file, path, 'more than one Portainer primary: guests %s' % ids, 'portainer.primary')
    agents = [g for g in by_id.values() if g['portainer_role'] == 'agent']
    # A guest left out for schema errors may be the primary (or its role cannot be told, or guests
    # could not be listed at all): then the agents are not reported, the schema error is the one to fix.
    maybe_primary = ids_unknown or any(role not in ('agent', 'infrastructure', 'none')
                                       for role in ctx['invalid_roles'].values())
    if agents and not primaries and not maybe_primary:
        for guest in agents:
            file, path = where(guest, 'portainer_role')
            report.error(file, path, 'guest %d is a Portainer agent but no guest has portainer_role "primary"'
                         % guest['id'], 'portainer.no_primary')


def check_placement(by_id, cluster, report):
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
            file, path = where(guest, 'node')
            report.error(file, path, 'guest %d is placed on node "%s", which is not a node of the cluster (%s)'
                         % (gid, node, ', '.join(sorted(nodes)) or 'none'), 'node.unknown')
            continue
        entry = nodes.get(node) if nodes is not None and node else None
        if guest['gpus'] and isinstance(entry, dict) and isinstance(entry.get('gpus'), list):
            missing = [g for g in guest['gpus'] if g not in entry['gpus']]
            if missing:
                file, path = where(guest, 'gpu_assignment')
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
            file, path = where(guest, clone_key(guest))
            report.error(file, path, 'guest %d on node "%s" clones from %d on node "%s", but Proxmox clones across '
                         'nodes only from shared storage, and %s %s not in cluster.shared_storages (%s): put the '
                         'clone source on a shared storage, or the guest on node "%s"' % (
                             gid, node, src['id'], src['node'],
                             ', '.join(unshared) or 'the source\'s storage (storage_pool not set)',
                             'is' if len(unshared) < 2 else 'are', ', '.join(sorted(shared)) or 'none', src['node']),
                         'clone.cross_node')


def check_names(by_id, report):
    """Every guest gets a DNS record <hostname>.<domain>: two guests must not share one. Returns {fqdn: [guest]}."""
    by_fqdn = {}
    for guest in by_id.values():
        by_fqdn.setdefault(guest['fqdn'], []).append(guest)
    for fqdn in sorted(f for f, owners in by_fqdn.items() if len(owners) > 1):
        owners = sorted(by_fqdn[fqdn], key=lambda g: g['id'])
        ids = ', '.join(str(g['id']) for g in owners)
        for guest in owners:
            file, path = where(guest, 'name')
            report.error(file, path, 'DNS name %s is used by guests %s' % (fqdn, ids), 'guest.duplicate_name')
    return by_fqdn


def check_security_groups(group_refs, hypervisor_raw, report):
    """Rules of type 'group' must name a security group of the cluster firewall.

    The configs are authoritative for the firewall, so a group is checked even when the hypervisor
    config defines no security groups at all (the rule would insert a group that the sync does not
    create). Skipped when the hypervisor config could not be loaded (its error is the one to fix).
    """
    if not group_refs or not isinstance(hypervisor_raw, dict):
        return
    fw, fw_path = cluster_firewall_raw(hypervisor_raw)
    groups = fw.get('security_groups') if isinstance(fw, dict) else None
    defined = set(groups) if isinstance(groups, dict) else set()
    where = '%s %s' % (HYPERVISOR_FILE, pointer(*(fw_path + ['security_groups'])))
    for name, file, path in group_refs:
        if name not in defined:
            report.error(file, pointer(*path), 'security group "%s" is not defined in %s' % (name, where),
                         'firewall.unknown_group')


def _on_guests(ids):
    ids = sorted(ids)
    return 'on guest%s %s' % ('s' if len(ids) > 1 else '', ', '.join(str(i) for i in ids))


def check_routing(by_id, stacks, report, environment, by_fqdn):
    """Unique traefik_service names, unique router names, one owner per Host() rule, no route on a guest's name."""
    declared = route_declarations(by_id, stacks, environment)
    services = {}
    for guest in declared['services']:
        services.setdefault(guest['traefik_service']['name'], []).append(guest)
    for name, owners in sorted(services.items()):
        if len(owners) > 1:
            ids = ', '.join(str(g['id']) for g in owners)
            for guest in owners:
                report.error(guest['source']['file'], guest['traefik_service']['path'],
                             'traefik_service name "%s" is used by guests %s' % (name, ids), 'traefik.duplicate_service')
    routers = {}
    claims = {}
    for name, ts_owners in services.items():
        for guest in ts_owners:
            ts = guest['traefik_service']
            what = 'traefik_service "%s" of guest %d' % (name, guest['id'])
            claims.setdefault(('host', ts['host']), []).append({
                'what': what, 'full': what, 'file': guest['source']['file'], 'path': ts['path'],
                'guests': {guest['id']}, 'kind': 'service'})
    for entry in declared['routers']:
        stack_name, env, router, info = entry['stack'], entry['environment'], entry['router'], entry['info']
        label = stack_name if env == environment else '%s (environment %s)' % (stack_name, env)
        guests = entry['guest_ids']
        notes = ([] if env == environment else ['environment %s' % env]) + ([_on_guests(guests)] if guests else [])
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
