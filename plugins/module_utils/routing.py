# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Routing, DNS and firewall facts derived from the Phoenix configuration model: the one place that does it.

Input is the normalized model as the inventory plugin hands it out: a list of guests (``phoenix_guest``)
and the stacks (``phoenix_stacks``, resolved for the load environment, other environments under
``other_environments``). Everything here is pure and deterministic: the same model gives the same
output, byte for byte, whatever the order of the input.

* :func:`route_declarations` - every route the configuration declares, deployed or not: what
  :func:`route_plan` plans from and what the config model checks (config/checks.py, ``check_routing``).
* :func:`route_plan` - every route: a guest's ``traefik_service`` -> ``<name>.<domain>`` to the guest,
  every Host() router of a deployed stack -> the Swarm edge on the manager(s).
* :func:`traefik_dynamic_config` - the file-provider configuration of the Traefik guest.
* :func:`gateway_hostnames` - server names of the Nginx gateway (and the SANs of its certificate).
* :func:`dns_records`, :func:`hosts_file_lines` - the DNS server's records.
* :func:`guest_firewall` - a guest's firewall with the rules of the stacks it deploys.
* :func:`ca_url` - the Step-CA's URL (``https://<host>:9000``), the one place that builds it.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import re

from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.features import with_role

from ansible_collections.thinkheads.phoenix.plugins.module_utils.stack_rules import environment_view

DEFAULT_EDGE_PORT = 8443
DEFAULT_ENTRYPOINT = 'websecure'
DEFAULT_RESOLVER = 'internal-resolver'
# the features whose role is the gateway, Traefik or the CA (the feature registry)
GATEWAY_FEATURES = with_role('thinkheads.phoenix.nginx_gateway')
TRAEFIK_FEATURES = with_role('thinkheads.phoenix.traefik')
CA_FEATURES = with_role('thinkheads.phoenix.step_ca')
# step-ca's HTTPS port on the CA guest (the step_ca role's step_ca_address), where every client talks to it.
CA_PORT = 9000
EDGE_TRANSPORT = 'phoenix-swarm-edge'
_NAME_RE = re.compile(r'[^a-z0-9-]+')
_LABEL_RE = re.compile(r'^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$')
_IPV4_RE = re.compile(r'^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$')


class RoutingError(Exception):
    """Input that cannot be turned into routes (a missing guest, a bad address)."""


# --------------------------------------------------------------------------- helpers

def _guest_list(guests):
    """Guests as a list sorted by ID: accepts a list, or a dict {id: guest} (as PhoenixConfig.guests)."""
    if isinstance(guests, dict):
        guests = list(guests.values())
    out = [g for g in (guests or []) if isinstance(g, dict) and g.get('id') is not None]
    return sorted(out, key=lambda g: int(g['id']))


def _live(guests):
    """Guests that run (no templates)."""
    return [g for g in _guest_list(guests) if not g.get('is_template')]


def _ip(guest):
    return ((guest or {}).get('network') or {}).get('ip')


def _name(text):
    """A Traefik object name: lower case letters, digits and dashes."""
    return _NAME_RE.sub('-', str(text).lower()).strip('-') or 'route'


def valid_ipv4(text):
    match = _IPV4_RE.match(str(text or ''))
    return bool(match) and all(int(part) <= 255 for part in match.groups())


def under_domain(host, domain):
    """Whether ``host`` is ``domain`` itself or a name below it."""
    host = str(host).lower().rstrip('.')
    domain = str(domain or '').lower().rstrip('.')
    return bool(domain) and (host == domain or host.endswith('.' + domain))


def _find(guests, features, selector, what):
    """The guest that plays a part: ``selector`` (an ID or an IP) when given, else the first with a feature."""
    live = _live(guests)
    if selector not in (None, ''):
        for guest in live:
            if str(guest['id']) == str(selector) or _ip(guest) == str(selector):
                return guest
        raise RoutingError('the %s "%s" is neither the ID nor the IP of a guest' % (what, selector))
    for guest in live:
        if any(f in (guest.get('features') or []) for f in features):
            return guest
    # Configs that predate the feature name the part in the guest's name or its traefik_service.
    for guest in live:
        names = [str(guest.get('hostname') or guest.get('name') or '')]
        names.append(str((guest.get('traefik_service') or {}).get('name') or ''))
        if any(f.split('_')[0] in name for name in names for f in features):
            return guest
    return None


def ca_url(host, port=None):
    """The Step-CA's URL for a host name or address: ``https://<host>:<port>`` (port 9000 by default)."""
    host = str(host or '').strip()
    if not host:
        raise RoutingError('the CA URL needs a host name or an address')
    if ':' in host and not host.startswith('['):
        host = '[%s]' % host  # an IPv6 address
    return 'https://%s:%d' % (host, int(port or CA_PORT))


def _summary(guest):
    if not guest:
        return None
    return {'id': guest['id'], 'name': guest.get('hostname') or guest.get('name'), 'fqdn': guest.get('fqdn'),
            'ip': _ip(guest)}


def _labels(view, service):
    return ((view.get('services') or {}).get(service) or {}).get('traefik_labels') or {}


def _is_true(value):
    return str(value).strip().lower() in ('true', '1', 'yes')


# --------------------------------------------------------------------------- routes

def route_declarations(guests, stacks=None, environment=None):
    """Every route the configuration declares, deployed or not: one walk over the guests and the stacks.

    ``route_plan`` builds the routes from it (with the running guests) and the config model checks it (with
    every guest): unique names, one owner per host. Returns a dict:

    * ``deployments``: ``{(stack name, environment): {guest IDs}}``, every stack a guest deploys.
    * ``services``: the guests with a ``traefik_service``, sorted by ID.
    * ``routers``: one entry per router of every stack variant Traefik may serve, each with ``stack``,
      ``environment``, ``router``, ``info`` (the router as the model parsed it: ``service``, ``rule``,
      ``hosts``, ``only_hosts``, ``file``, ``path``), ``view`` (the stack's settings for that environment) and
      ``guest_ids`` (the guests that deploy that variant). The variants: the load environment's (``environment``;
      by default each stack's own ``environment``) of every stack, except for a stack that guests deploy only in
      other environments, then those under ``other_environments`` in name order. Stacks in name order, routers
      in name order.
    """
    guests = _guest_list(guests)
    deployments = {}
    for guest in guests:
        for item in guest.get('docker_stacks') or []:
            deployments.setdefault((item['name'], item.get('environment')), set()).add(guest['id'])
    deployed_envs = {}
    for name, env in deployments:
        deployed_envs.setdefault(name, set()).add(env)
    routers = []
    for name, stack in sorted((stacks or {}).items()):
        load_env = stack.get('environment') if environment is None else environment
        envs = deployed_envs.get(name)
        variants = [(load_env, stack)] if not envs or load_env in envs else []
        variants += sorted((stack.get('other_environments') or {}).items())
        for env, view in variants:
            for router, info in sorted((view.get('routers') or {}).items()):
                routers.append({'stack': name, 'environment': env, 'router': router, 'info': info, 'view': view,
                                'guest_ids': deployments.get((name, env), set())})
    return {'deployments': deployments, 'services': [g for g in guests if g.get('traefik_service')],
            'routers': routers}


def route_plan(guests, stacks=None, gateway=None, traefik=None, ca=None):
    """Every route of the platform, plus the guests that play a part in routing.

    ``gateway``, ``traefik`` and ``ca`` select the Nginx gateway, the Traefik guest and the Step-CA guest by
    ID or IP; by default the first guest with the feature ``nginx`` (or ``nginx_gateway``), ``traefik`` and
    ``step_ca``, else the first whose name or traefik_service name contains ``nginx``, ``traefik`` and
    ``step``. The Swarm edges are the running guests with ``swarm_role: manager``.

    Routes (sorted by router name), each with ``kind`` (``guest`` or ``stack``), ``router`` (the Traefik
    router and service name), ``hosts`` and ``rule``:

    * ``guest``: from a guest's ``traefik_service``: ``backend`` (``scheme://ip:port``), ``server_name``
      (the name the backend's certificate must carry: the route's host name), ``guest_id``.
    * ``stack``: from the Host() routers of every stack a guest deploys (in the environment it deploys
      it in) that have ``traefik.enable=true``: ``stack``, ``environment``, ``service`` (the compose
      service), ``port`` (its load balancer port), ``guest_ids``.

    A guest route whose host a stack router serves too (the twin the model warns about) is left to the
    stack; a route whose backend is the gateway or the Traefik guest itself would loop and is left out.
    Both land in ``skipped`` with the reason.
    """
    live = _live(guests)
    stacks = stacks or {}
    gateway_guest = _find(live, GATEWAY_FEATURES, gateway, 'gateway')
    traefik_guest = _find(live, TRAEFIK_FEATURES, traefik, 'Traefik guest')
    ca_guest = _find(live, CA_FEATURES, ca, 'CA guest')
    edges = [g for g in live if g.get('swarm_role') == 'manager' and _ip(g)]
    skipped = []

    stack_routes = []
    declared = route_declarations(live, stacks)
    routers_of = {}
    for entry in declared['routers']:
        routers_of.setdefault((entry['stack'], entry['environment']), []).append(entry)
    deployed = declared['deployments']
    for (stack_name, environment), guest_ids in sorted(deployed.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        stack = stacks.get(stack_name)
        view = environment_view(stack, environment, required=False) if stack else None
        if view is None:
            skipped.append({'router': stack_name, 'reason': 'stack %s has no settings for environment %s'
                            % (stack_name, environment)})
            continue
        for entry in routers_of.get((stack_name, environment), []):
            router, info = entry['router'], entry['info']
            labels = _labels(view, info['service'])
            if not _is_true(labels.get('traefik.enable', 'false')):
                skipped.append({'router': router, 'reason': 'service %s of stack %s does not set traefik.enable=true'
                                % (info['service'], stack_name)})
                continue
            if not info.get('hosts'):
                skipped.append({'router': router, 'reason': 'rule "%s" of stack %s names no Host()'
                                % (info['rule'], stack_name)})
                continue
            target = labels.get('traefik.http.routers.%s.service' % router) or router
            port = labels.get('traefik.http.services.%s.loadbalancer.server.port' % target)
            stack_routes.append({
                'kind': 'stack',
                'router': 'stack-%s' % _name(router),
                'name': router,
                'hosts': sorted(set(info['hosts'])),
                'rule': ' '.join(str(info['rule']).split()),
                'stack': stack_name,
                'environment': environment,
                'service': info['service'],
                'port': int(port) if port and str(port).isdigit() else None,
                'guest_ids': sorted(guest_ids),
            })
    stack_hosts = set(h for r in stack_routes for h in r['hosts'])

    guest_routes = []
    loop_ips = set(ip for ip in (_ip(gateway_guest), _ip(traefik_guest)) if ip)
    for guest in live:
        ts = guest.get('traefik_service')
        if not ts or not ts.get('name'):
            continue
        host = str(ts.get('host') or ts['name']).lower()
        router = 'guest-%s' % _name(ts['name'])
        if not _ip(guest):
            skipped.append({'router': router, 'reason': 'guest %s has no static IP' % guest['id']})
            continue
        if host in stack_hosts:
            skipped.append({'router': router, 'reason': '%s is served by a stack router' % host})
            continue
        if _ip(guest) in loop_ips:
            skipped.append({'router': router, 'reason': 'guest %s is the %s itself (the route would loop)' % (
                guest['id'], 'gateway' if gateway_guest and guest['id'] == gateway_guest['id'] else 'Traefik guest')})
            continue
        scheme = str(ts.get('scheme') or 'http').lower()
        guest_routes.append({
            'kind': 'guest',
            'router': router,
            'name': ts['name'],
            'hosts': [host],
            'rule': 'Host(`%s`)' % host,
            'guest_id': guest['id'],
            'scheme': scheme,
            'ip': _ip(guest),
            'port': int(ts['port']),
            'backend': '%s://%s:%d' % (scheme, _ip(guest), int(ts['port'])),
            'server_name': host,
        })
    routes = sorted(guest_routes + stack_routes, key=lambda r: r['router'])
    return {
        'routes': routes,
        'skipped': sorted(skipped, key=lambda s: (s['router'], s['reason'])),
        'gateway': _summary(gateway_guest),
        'traefik': _summary(traefik_guest),
        'ca': _summary(ca_guest),
        'edges': [_summary(g) for g in edges],
    }


def routed_hostnames(plan):
    """Every host name the routes serve, sorted and unique."""
    return sorted(set(h for route in (plan or {}).get('routes', []) for h in route['hosts']))


def gateway_hostnames(plan, domain=None, extra=None):
    """The Nginx gateway's server names: every routed host name (under ``domain`` when given) plus ``extra``."""
    hosts = [h for h in routed_hostnames(plan) if domain is None or under_domain(h, domain)]
    return sorted(set(hosts) | set(str(h).lower() for h in (extra or [])))


# --------------------------------------------------------------------------- Traefik

def traefik_dynamic_config(plan, ca_file=None, cert_resolver=DEFAULT_RESOLVER, entrypoint=DEFAULT_ENTRYPOINT,
                           edge_port=DEFAULT_EDGE_PORT, edge_server_name=None, domain=None,
                           default_cert_file=None, default_key_file=None):
    """The Traefik file-provider configuration (a dict, dumped as YAML by the role) for a route plan.

    Each route gets a router (TLS on ``entrypoint``; with ``cert_resolver`` its certificate comes from that
    ACME resolver, else from the default certificate) and a service. Guest routes go to the guest's
    ``scheme://ip:port``; an HTTPS backend is verified with the root ``ca_file`` against the route's host
    name (a serversTransport per route). Stack routes go to ``https://<manager>:<edge_port>`` of every
    Swarm edge, the Host header passed through, verified against ``edge_server_name`` (default
    ``swarm-edge.<domain>``). ``default_cert_file``/``default_key_file`` set the TLS default certificate.
    """
    plan = plan or {}
    routers, services, transports = {}, {}, {}
    edge_urls = ['https://%s:%d' % (e['ip'], int(edge_port)) for e in plan.get('edges') or [] if e.get('ip')]
    if edge_server_name is None:
        edge_server_name = 'swarm-edge.%s' % domain if domain else 'swarm-edge'
    for route in plan.get('routes') or []:
        name = route['router']
        if route['kind'] == 'stack' and not edge_urls:
            continue  # no Swarm manager: nothing can serve the stack
        tls = {}
        if cert_resolver:
            domain = {'main': route['hosts'][0]}
            if len(route['hosts']) > 1:
                domain['sans'] = route['hosts'][1:]
            tls = {'certResolver': cert_resolver, 'domains': [domain]}
        routers[name] = {'rule': route['rule'], 'entryPoints': [entrypoint], 'service': name, 'tls': tls}
        if route['kind'] == 'guest':
            balancer = {'servers': [{'url': route['backend']}], 'passHostHeader': True}
            if route['scheme'] == 'https':
                transports[name] = _transport(route['server_name'], ca_file)
                balancer['serversTransport'] = name
        else:
            balancer = {'servers': [{'url': url} for url in edge_urls], 'passHostHeader': True,
                        'serversTransport': EDGE_TRANSPORT}
            transports[EDGE_TRANSPORT] = _transport(edge_server_name, ca_file)
        services[name] = {'loadBalancer': balancer}
    config = {'http': {'routers': routers, 'services': services}}
    if transports:
        config['http']['serversTransports'] = transports
    if not routers:
        config = {'http': {}}
    if default_cert_file and default_key_file:
        default_certificate = {'certFile': default_cert_file, 'keyFile': default_key_file}
        config['tls'] = {'stores': {'default': {'defaultCertificate': default_certificate}}}
    return config


def _transport(server_name, ca_file):
    transport = {'serverName': server_name}
    if ca_file:
        transport['rootCAs'] = [ca_file]
    return transport


# --------------------------------------------------------------------------- DNS

def dns_records(guests, plan=None, domain=None, ca_name=None, extra=None):
    """DNS A records ({name, ip, source}) sorted by name.

    Sources, the later winning for the same name: every running guest's ``<hostname>.<domain>`` -> its IP;
    every routed host name under ``domain`` -> the Nginx gateway's IP; the CA's name (``ca_name``, the
    hypervisor's ``step_ca.dns_name``) -> the Step-CA guest (its clients talk to port 9000 directly);
    the guests' own ``dns_records`` (a name without dots is placed under ``domain``); ``extra``
    ({hostname, ip} like ``dns_records``).
    """
    live = _live(guests)
    domain = str(domain or '').lower().rstrip('.')
    plan = plan or {}
    records = {}

    def put(name, ip, source, primary=False):
        name = str(name).lower().rstrip('.')
        if '.' not in name and domain:
            name = '%s.%s' % (name, domain)
        if not valid_ipv4(ip):
            raise RoutingError('DNS record %s: "%s" is not an IPv4 address (%s)' % (name, ip, source))
        records[name] = {'name': name, 'ip': str(ip), 'source': source, 'primary': primary}

    for guest in live:
        if _ip(guest) and guest.get('fqdn'):
            put(guest['fqdn'], _ip(guest), 'guest %s' % guest['id'], primary=True)
    gateway_ip = (plan.get('gateway') or {}).get('ip')
    if gateway_ip:
        for route in plan.get('routes') or []:
            for host in route['hosts']:
                if under_domain(host, domain):
                    put(host, gateway_ip, 'route %s' % route['router'])
    ca_ip = (plan.get('ca') or {}).get('ip')
    if ca_name and ca_ip:
        put(ca_name, ca_ip, 'Step-CA (guest %s)' % plan['ca']['id'])
    for guest in live:
        for record in guest.get('dns_records') or []:
            put(record['hostname'], record['ip'], 'dns_records of guest %s' % guest['id'])
    for record in extra or []:
        put(record['hostname'], record['ip'], 'extra record')
    return [records[name] for name in sorted(records)]


def hosts_file_lines(records):
    """Records as hosts-file lines ``ip name...``, one per address, sorted by address; the guest's own name
    first (it answers the reverse lookup), then the others by name."""
    by_ip = {}
    for record in records or []:
        by_ip.setdefault(record['ip'], []).append(record)
    lines = []
    for ip in sorted(by_ip, key=lambda a: tuple(int(p) for p in a.split('.'))):
        names = sorted(by_ip[ip], key=lambda r: (not r.get('primary'), r['name']))
        lines.append('%s %s' % (ip, ' '.join(r['name'] for r in names)))
    return lines


# --------------------------------------------------------------------------- firewall

def _rule_key(rule):
    return tuple(sorted((k, str(v)) for k, v in rule.items() if k != 'comment'))


def guest_firewall(guest, stacks=None, plan=None, edge_port=None):
    """A guest's firewall as the thinkheads.phoenix.proxmox_firewall module takes it.

    Returns ``enabled``, ``policy_in``/``policy_out`` (None when the config sets none: the module then
    leaves them alone) and ``rules``: the guest's own rules, then the ``firewall_rules`` of every stack it
    deploys (in the environment it deploys it in, in ``docker_stacks`` order), rules already present
    (ignoring comments) not repeated. With ``plan`` and ``edge_port``, a Swarm manager that is a Swarm edge
    for routed stacks also accepts ``edge_port``/tcp from the Traefik guest.
    """
    stacks = stacks or {}
    firewall = guest.get('firewall') or {}
    rules = [dict(r) for r in firewall.get('rules') or []]
    seen = set(_rule_key(r) for r in rules)

    def add(rule):
        key = _rule_key(rule)
        if key not in seen:
            seen.add(key)
            rules.append(dict(rule))

    for item in guest.get('docker_stacks') or []:
        stack = stacks.get(item['name'])
        view = environment_view(stack, item.get('environment'), required=False) if stack else None
        for rule in (view or {}).get('firewall_rules') or []:
            add(rule)
    if plan and edge_port and guest.get('swarm_role') == 'manager':
        traefik_ip = (plan.get('traefik') or {}).get('ip')
        has_stack_routes = any(r['kind'] == 'stack' for r in plan.get('routes') or [])
        if traefik_ip and has_stack_routes and any(e['id'] == guest['id'] for e in plan.get('edges') or []):
            add({'type': 'in', 'action': 'ACCEPT', 'enabled': True, 'proto': 'tcp', 'dport': str(int(edge_port)),
                 'source': traefik_ip, 'comment': 'Swarm edge (routed stacks) from Traefik'})
    return {
        'enabled': bool(firewall.get('enabled', bool(rules))),
        'policy_in': firewall.get('input_policy'),
        'policy_out': firewall.get('output_policy'),
        'rules': rules,
    }
