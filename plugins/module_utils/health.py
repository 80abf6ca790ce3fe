# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Platform health checks for the phoenix_health module: plan, probes, table.

``plan_checks`` turns the inventory's data (every guest's ``phoenix_guest``, the hypervisor config, the
stacks) into a list of checks; ``run_checks`` runs them concurrently and returns one row per check;
``render_table`` prints the rows as one aligned table. The probes live in module_utils/health_probes.py
(re-exported here): HTTP(S) with ``http.client`` (TLS verified
against the Step-CA root, SNI set to the service's hostname while connecting to a known address), DNS A queries
with dnspython over UDP to a configured resolver (or the system resolver), TCP connects. Routes and the address
every name must resolve to come from module_utils/routing.py (route_plan, dns_records): the same derivation the
DNS, Traefik and Nginx roles use.

A row is ``{'section', 'check', 'target', 'status', 'detail', 'ms'}`` with status one of ``ok``, ``warn``
(works, with something worth knowing), ``fail`` (a real problem: unreachable, wrong answer) or ``n/a``
(the guest or feature is absent from the config, or the check was skipped).
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from concurrent.futures import ThreadPoolExecutor

from ansible_collections.thinkheads.phoenix.plugins.module_utils.health_probes import (
    dns_probe, FAIL, http_probe, NA, OK, run_one, STATUSES, tcp_probe, WARN,
)
# The probes' public names stay reachable as health.<name> (the module, the lab and the tests use them).
from ansible_collections.thinkheads.phoenix.plugins.module_utils.health_probes import (  # noqa: F401 pylint: disable=unused-import
    HAS_DNSPYTHON, http_get, resolve, tcp_connect, TRANSIENT, tls_context,
)
from ansible_collections.thinkheads.phoenix.plugins.module_utils.routing import (
    CA_PORT, ca_url, dns_records, route_plan, RoutingError,
)

# The order of the sections in the table.
SECTIONS = ('proxmox', 'firewall', 'dns', 'step_ca', 'traefik', 'gateway', 'portainer', 'portainer_agent',
            'qdrant', 'vllm')

DEFAULTS = dict(
    gateway_port=443,
    traefik_ping_scheme='http',
    traefik_ping_port=8080,
    traefik_ping_path='/ping',
    step_ca_port=CA_PORT,
    portainer_server_port=9443,
    portainer_agent_port=9001,
    qdrant_path='/healthz',
    vllm_port=8000,
    vllm_scheme='https',
    vllm_key_over_http=False,
)


class HealthError(Exception):
    """Bad input (the module reports it with fail_json)."""


# --------------------------------------------------------------------------------------------------
# inputs


def _text(value):
    return '' if value is None else str(value)


def guest_ip(guest):
    network = guest.get('network') or {}
    ip = network.get('ip')
    if not ip or network.get('dhcp') or _text(ip) == 'dhcp':
        return None
    return _text(ip).split('/', 1)[0]


def active_guests(guests):
    """The guests that run services: templates excluded, sorted by ID."""
    result = []
    for guest in guests or []:
        if not isinstance(guest, dict) or guest.get('id') is None:
            raise HealthError('every item of guests must be a phoenix_guest dict with an id (got %r)'
                              % (guest if not isinstance(guest, dict) else sorted(guest)))
        if not guest.get('is_template'):
            result.append(guest)
    return sorted(result, key=lambda g: int(g['id']))


def with_feature(guests, feature):
    return [g for g in guests if feature in (g.get('features') or [])]


def derive_routes(plan):
    """Every routed hostname of a routing plan (module_utils/routing.py's route_plan), one per hostname.

    [{'host', 'service', 'source', 'kind', 'stack', 'guest'}] sorted by hostname.
    """
    routes = {}
    for route in plan.get('routes') or []:
        source = 'guest %s' % route['guest_id'] if route['kind'] == 'guest' else 'stack %s' % route['stack']
        for host in route['hosts']:
            routes.setdefault(host, {'host': host, 'service': route.get('service') or route.get('name'),
                                     'source': source, 'kind': route['kind'], 'stack': route.get('stack'),
                                     'guest': route.get('guest_id')})
    return [routes[h] for h in sorted(routes)]


# --------------------------------------------------------------------------------------------------
# the plan


def _check(section, check, target, func=None, status=None, detail=''):
    return {'section': section, 'check': check, 'target': target, 'func': func, 'status': status, 'detail': detail}


def _na(section, check, detail):
    return _check(section, check, '-', status=NA, detail=detail)


def plan_checks(guests, hypervisor=None, stacks=None, domain='', options=None, pve_guests=None, firewalls=None,
                pve_error=None, plan=None, records=None):
    """The checks for a platform: a list of dicts with either a 'func' to run or a fixed 'status'.

    ``plan`` and ``records``: the route plan and the DNS records as the inventory published them (phoenix_routes,
    phoenix_dns_records); None derives them here from the running guests and the stacks, with the same functions.
    """
    opts = dict(DEFAULTS)
    opts.update(dict((k, v) for k, v in (options or {}).items() if v is not None))
    hypervisor = hypervisor or {}
    all_guests = list(guests or [])
    active_guests(all_guests)  # validates the items
    running = active_guests(all_guests)
    skip = set(opts.get('skip') or [])
    checks = []

    def by_feature(feature):
        return with_feature(running, feature)

    def down_reason(guest):
        """Why the guest cannot answer, when Proxmox says so (None: probe it)."""
        if pve_guests is None:
            return None
        state = pve_guests.get(str(guest['id']))
        if state is None:
            return 'guest %s does not exist on Proxmox' % guest['id']
        if state.get('status') != 'running':
            return 'guest %s is %s' % (guest['id'], state.get('status') or 'not running')
        return None

    def guarded(section, check, target, guest, func):
        reason = down_reason(guest) if guest is not None else None
        if reason:
            return _check(section, check, target, status=FAIL, detail=reason)
        if guest is not None and guest_ip(guest) is None:
            return _check(section, check, target, status=NA, detail='guest %s has no static IP' % guest['id'])
        return _check(section, check, target, func=func)

    # proxmox: every guest of the config exists (templates as templates) and runs
    if pve_error:
        checks.append(_check('proxmox', 'guest state', 'Proxmox API', status=FAIL, detail=_text(pve_error)))
    elif pve_guests is None:
        checks.append(_na('proxmox', 'guest state', 'no Proxmox API connection configured'))
    else:
        for guest in sorted(all_guests, key=lambda g: int(g['id'])):
            checks.append(_guest_state_check(guest, pve_guests.get(str(guest['id']))))

    # firewall: the check-mode result of proxmox_firewall for every guest (and the cluster)
    if firewalls is None:
        checks.append(_na('firewall', 'in sync', 'no Proxmox API connection configured' if not pve_error
                          else 'the Proxmox API did not answer'))
    else:
        for key in sorted(firewalls, key=lambda k: (not str(k).isdigit(), int(k) if str(k).isdigit() else 0, str(k))):
            checks.append(_firewall_check(key, firewalls[key]))

    # dns: every guest's FQDN -> its IP, every routed hostname -> the gateway, the CA's name -> the CA
    step_ca = hypervisor.get('step_ca') or {}
    try:
        if plan is None:
            plan = route_plan(running, stacks)
        if records is None:
            records = dns_records(running, plan, domain, ca_name=step_ca.get('dns_name'))
    except RoutingError as exc:
        raise HealthError('cannot derive the routes: %s' % exc) from exc
    routes = derive_routes(plan)
    by_id = dict((g['id'], g) for g in running)
    gateway, traefik, ca_guest = [by_id.get((plan.get(part) or {}).get('id')) for part in ('gateway', 'traefik', 'ca')]
    route_address = opts.get('route_address') or ''
    dns_opts = dict(nameservers=opts.get('nameservers') or None, port=opts.get('dns_port') or 53,
                    timeout=opts.get('timeout') or 3.0)
    for record in records:
        expected = record['ip']
        if record['source'].startswith('route '):
            expected = None if route_address == 'any' else (route_address or expected)
        checks.append(_check('dns', record['source'], record['name'],
                             func=dns_probe(record['name'], expected, dns_opts)))
    if not records:
        checks.append(_na('dns', 'resolution', 'no guest FQDN or routed hostname in the config'))

    http_opts = dict(ca_file=opts.get('ca_file'), ca_data=opts.get('ca_data'),
                     validate_certs=opts.get('validate_certs', True), timeout=opts.get('timeout') or 5.0)
    retries = dict(retries=int(opts.get('retries') or 0), delay=float(opts.get('retry_delay') or 0.5))

    # step_ca: /health over TLS verified by the root
    if ca_guest is None:
        checks.append(_na('step_ca', '/health', 'no guest has the step_ca feature'))
    else:
        sni = _text(step_ca.get('dns_name')) or _text(ca_guest.get('fqdn')) or guest_ip(ca_guest)
        checks.append(guarded('step_ca', 'guest %s /health' % ca_guest['id'],
                              ca_url(sni, opts['step_ca_port']) + '/health', ca_guest,
                              http_probe(guest_ip(ca_guest), opts['step_ca_port'], '/health', 'https', sni,
                                         http_opts, retries, expect_json={'status': 'ok'})))

    # traefik: ping
    if traefik is None:
        checks.append(_na('traefik', 'ping', 'no guest has the traefik feature'))
    else:
        url = '%s://%s:%s%s' % (opts['traefik_ping_scheme'], guest_ip(traefik) or '-', opts['traefik_ping_port'],
                                opts['traefik_ping_path'])
        checks.append(guarded('traefik', 'guest %s ping' % traefik['id'], url, traefik,
                              http_probe(guest_ip(traefik), opts['traefik_ping_port'], opts['traefik_ping_path'],
                                         opts['traefik_ping_scheme'], _text(traefik.get('fqdn')) or None,
                                         http_opts, retries, expect_body=b'OK')))

    # gateway: every route through Nginx over HTTPS (any answer below 500 means the route reached a backend)
    if gateway is None:
        checks.append(_na('gateway', 'routes', 'no guest has the nginx feature'))
    elif not routes:
        checks.append(_na('gateway', 'routes', 'no routed hostname in the config'))
    else:
        for route in routes:
            checks.append(guarded('gateway', route['source'], 'https://%s/' % route['host'], gateway,
                                  http_probe(guest_ip(gateway), opts['gateway_port'], '/', 'https', route['host'],
                                             http_opts, retries, route=True)))

    # portainer: the server's /api/status, every agent's port
    portainer = hypervisor.get('portainer') or {}
    network = hypervisor.get('network') or {}
    primaries = [g for g in running if _text(g.get('portainer_role')) == 'primary']
    agents = [g for g in running if _text(g.get('portainer_role')) == 'agent']
    server_port = portainer.get('server_port') or network.get('portainer_server_port') or opts['portainer_server_port']
    agent_port = portainer.get('agent_port') or network.get('portainer_agent_port') or opts['portainer_agent_port']
    if not primaries:
        checks.append(_na('portainer', '/api/status', 'no guest has portainer_role primary'))
    for guest in primaries:
        sni = _text(portainer.get('hostname')) or _text(guest.get('fqdn')) or guest_ip(guest)
        checks.append(guarded('portainer', 'guest %s /api/status' % guest['id'],
                              'https://%s:%s/api/status' % (sni, server_port), guest,
                              http_probe(guest_ip(guest), server_port, '/api/status', 'https', sni, http_opts,
                                         retries, expect_json_key='Version')))
    if not agents:
        checks.append(_na('portainer_agent', 'port', 'no guest has portainer_role agent'))
    for guest in agents:
        # the agent serves its own self-signed certificate (Portainer's design): reachability only
        checks.append(guarded('portainer_agent', 'guest %s' % guest['id'], '%s:%s' % (guest_ip(guest), agent_port),
                              guest, tcp_probe(guest_ip(guest), agent_port, http_opts['timeout'], retries)))

    # qdrant: /healthz through the gateway for every route of a Qdrant stack
    qdrant_routes = [r for r in routes if r['kind'] == 'stack' and _is_qdrant(r['stack'], stacks)]
    if not qdrant_routes:
        checks.append(_na('qdrant', opts['qdrant_path'], 'no Qdrant stack route in the config'))
    elif gateway is None:
        checks.append(_na('qdrant', opts['qdrant_path'], 'no gateway (nginx feature) to reach it through'))
    for route in qdrant_routes if gateway is not None else []:
        checks.append(guarded('qdrant', route['source'], 'https://%s%s' % (route['host'], opts['qdrant_path']),
                              gateway, http_probe(guest_ip(gateway), opts['gateway_port'], opts['qdrant_path'],
                                                  'https', route['host'], http_opts, retries)))

    # vllm: /health, then /v1/models lists the served model
    vllm_guests = by_feature('vllm')
    if not vllm_guests:
        gpu_off = [g for g in running if g.get('vllm_engine_config')]
        detail = 'no guest has the vllm feature'
        if gpu_off:
            detail += ' (GPU features off for %s)' % ', '.join(str(g['id']) for g in gpu_off)
        checks.append(_na('vllm', '/health', detail))
    for guest in vllm_guests:
        server = ((guest.get('vllm_engine_config') or {}).get('ServerConfig') or {})
        model = (server.get('served_model_name')
                 or ((guest.get('vllm_engine_config') or {}).get('ModelConfig') or {}).get('model'))
        if isinstance(model, list):
            model = model[0] if model else None
        port = server.get('port') or opts['vllm_port']
        scheme = opts.get('vllm_scheme') or 'https'
        sni = _text(guest.get('fqdn')) or guest_ip(guest)
        headers = {'Authorization': 'Bearer %s' % opts['vllm_api_key']} if opts.get('vllm_api_key') else None
        base = '%s://%s:%s' % (scheme, guest_ip(guest) or '-', port)
        checks.append(guarded('vllm', 'guest %s /health' % guest['id'], base + '/health', guest,
                              http_probe(guest_ip(guest), port, '/health', scheme, sni, http_opts, retries)))
        models_check = 'guest %s /v1/models' % guest['id']
        if headers and scheme != 'https' and not opts.get('vllm_key_over_http'):
            # The API key is a bearer secret: it is never sent in clear unless the user says so.
            checks.append(_check('vllm', models_check, base + '/v1/models', status=FAIL,
                                 detail='not asked: the API key would cross the network in clear; serve vLLM '
                                        'over TLS (vllm_scheme https) or allow it with vllm_key_over_http'))
            continue
        checks.append(guarded('vllm', models_check, base + '/v1/models', guest,
                              http_probe(guest_ip(guest), port, '/v1/models', scheme, sni, http_opts, retries,
                                         headers=headers, expect_model=_text(model) or None)))

    for item in checks:
        if item['section'] in skip and item['status'] != NA:
            item.update(func=None, status=NA, detail='skipped (skip: %s)' % item['section'])
    return checks


def merge_rows(checks, extra_rows):
    """Replace the checks of every section that ``extra_rows`` (rows measured elsewhere) covers."""
    extra = []
    for row in extra_rows or []:
        if not isinstance(row, dict) or row.get('section') not in SECTIONS or row.get('status') not in STATUSES:
            raise HealthError('extra_rows items need a section (one of %s) and a status (one of %s); got %r'
                              % (', '.join(SECTIONS), ', '.join(STATUSES), row))
        extra.append(_check(row['section'], _text(row.get('check')), _text(row.get('target')) or '-',
                            status=row['status'], detail=_text(row.get('detail'))))
    covered = set(row['section'] for row in extra)
    return [c for c in checks if c['section'] not in covered] + extra


def _is_qdrant(stack_name, stacks):
    stack = (stacks or {}).get(stack_name) or {}
    services = ((stack.get('compose') or {}).get('services') or {})
    for name, service in services.items():
        image = _text((service or {}).get('image'))
        if 'qdrant' in image or 'qdrant' in name:
            return True
    return False


def _guest_state_check(guest, state):
    target = 'guest %s %s' % (guest['id'], _text(guest.get('name')))
    if state is None:
        return _check('proxmox', 'exists', target, status=FAIL, detail='does not exist on Proxmox')
    if guest.get('is_template'):
        if state.get('template'):
            return _check('proxmox', 'template', target, status=OK, detail='template')
        return _check('proxmox', 'template', target, status=FAIL, detail='exists but is not a template')
    status = _text(state.get('status')) or 'unknown'
    return _check('proxmox', 'running', target, status=OK if status == 'running' else FAIL, detail=status)


def _firewall_check(key, result):
    target = 'cluster' if str(key) == 'cluster' else 'guest %s' % key
    result = result or {}
    if result.get('skipped'):
        return _check('firewall', 'in sync', target, status=NA, detail='not compared')
    if result.get('failed'):
        return _check('firewall', 'in sync', target, status=FAIL, detail=_text(result.get('msg')) or 'failed')
    enabled = result.get('enabled')
    state = '' if enabled is None else ('enabled' if enabled else 'disabled') + ', '
    if result.get('changed'):
        why = _text(result.get('msg')) or 'check mode reports changes'
        return _check('firewall', 'in sync', target, status=WARN,
                      detail='%sdrifted from the config: run sync.yml (%s)' % (state, why))
    return _check('firewall', 'in sync', target, status=OK, detail='%sas configured' % state)


def run_checks(checks, concurrency=16):
    """Run every check concurrently; rows in section order, then in plan order."""
    with ThreadPoolExecutor(max_workers=max(1, int(concurrency))) as pool:
        rows = list(pool.map(run_one, checks))
    order = dict((name, index) for index, name in enumerate(SECTIONS))
    indexed = sorted(enumerate(rows), key=lambda pair: (order.get(pair[1]['section'], len(order)), pair[0]))
    return [row for dummy, row in indexed]


def summarize(rows):
    counts = dict((status, 0) for status in STATUSES)
    for row in rows:
        counts[row['status']] = counts.get(row['status'], 0) + 1
    return counts


def problems(rows, fail_on):
    return [row for row in rows if row['status'] in set(fail_on or [FAIL])]


COLUMNS = (('section', 'SECTION'), ('check', 'CHECK'), ('target', 'TARGET'), ('status', 'STATUS'),
           ('detail', 'DETAIL'), ('ms', 'MS'))


def render_table(rows, max_detail=90):
    """One aligned text table, as a list of lines (header, rule, rows, summary)."""
    cells = []
    for row in rows:
        detail = _text(row.get('detail'))
        if len(detail) > max_detail:
            detail = detail[:max_detail - 3] + '...'
        cells.append([_text(row.get('section')), _text(row.get('check')), _text(row.get('target')),
                      _text(row.get('status')).upper() if row.get('status') in (FAIL, WARN) else _text(row.get('status')),
                      detail, _text(row.get('ms', ''))])
    titles = [title for dummy, title in COLUMNS]
    widths = [max([len(titles[i])] + [len(c[i]) for c in cells]) for i in range(len(titles))]
    lines = ['  '.join(titles[i].ljust(widths[i]) for i in range(len(titles))).rstrip(),
             '  '.join('-' * widths[i] for i in range(len(titles)))]
    for c in cells:
        lines.append('  '.join(c[i].ljust(widths[i]) for i in range(len(titles))).rstrip())
    counts = summarize(rows)
    lines.append('%d checks: %s' % (len(rows), ', '.join('%d %s' % (counts[s], s) for s in STATUSES)))
    return lines
