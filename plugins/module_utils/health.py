# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Platform health checks for the phoenix_health module: plan, probes, table.

``plan_checks`` turns the inventory's data (every guest's ``phoenix_guest``, the hypervisor config, the
stacks) into a list of checks; ``run_checks`` runs them concurrently and returns one row per check;
``render_table`` prints the rows as one aligned table. Probes: HTTP(S) with ``http.client`` (TLS verified
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

import json
import socket
import ssl
import time

from concurrent.futures import ThreadPoolExecutor

from ansible_collections.thinkheads.phoenix.plugins.module_utils.routing import RoutingError, dns_records, route_plan

try:
    import http.client as http_client
except ImportError:  # pragma: no cover - Python 2 is not supported
    http_client = None

try:
    import dns.exception
    import dns.message
    import dns.query
    import dns.rcode
    import dns.rdatatype
    HAS_DNSPYTHON = True
    DNSPYTHON_IMPORT_ERROR = None
except ImportError as _exc:  # pragma: no cover - reported when a nameserver is asked
    HAS_DNSPYTHON = False
    DNSPYTHON_IMPORT_ERROR = _exc

OK, WARN, FAIL, NA = 'ok', 'warn', 'fail', 'n/a'
STATUSES = (OK, WARN, FAIL, NA)
TRANSIENT = (socket.timeout, ConnectionError, TimeoutError)

# The order of the sections in the table.
SECTIONS = ('proxmox', 'firewall', 'dns', 'step_ca', 'traefik', 'gateway', 'portainer', 'portainer_agent',
            'qdrant', 'vllm')

DEFAULTS = dict(
    gateway_port=443,
    traefik_ping_scheme='http',
    traefik_ping_port=8080,
    traefik_ping_path='/ping',
    step_ca_port=9000,
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
# probes


class _SNIConnection(http_client.HTTPSConnection):
    """HTTPS to an address, with SNI and certificate verification for a hostname."""

    def __init__(self, address, port, server_hostname, context, timeout):
        http_client.HTTPSConnection.__init__(self, address, port, timeout=timeout, context=context)
        self._phoenix_sni = server_hostname
        self._phoenix_context = context

    def connect(self):
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._phoenix_context.wrap_socket(sock, server_hostname=self._phoenix_sni)


def tls_context(ca_file=None, validate_certs=True, ca_data=None):
    if not validate_certs:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if ca_file or ca_data:
        return ssl.create_default_context(cafile=ca_file or None, cadata=ca_data or None)
    return ssl.create_default_context()


def _issuer(sock):
    try:
        cert = sock.getpeercert()
    except (ValueError, AttributeError):
        return None
    for rdn in (cert or {}).get('issuer', ()):
        for key, value in rdn:
            if key == 'commonName':
                return value
    return None


def http_get(address, port, path='/', scheme='https', host=None, ca_file=None, validate_certs=True, timeout=5.0,
             headers=None, max_body=65536, ca_data=None):
    """GET scheme://address:port/path with Host/SNI = host. Returns (status, body, issuer)."""
    request_headers = {'Host': host or address, 'User-Agent': 'thinkheads.phoenix health', 'Accept': '*/*'}
    request_headers.update(headers or {})
    if scheme == 'https':
        conn = _SNIConnection(address, port, host or address, tls_context(ca_file, validate_certs, ca_data), timeout)
    else:
        conn = http_client.HTTPConnection(address, port, timeout=timeout)
    try:
        conn.request('GET', path, headers=request_headers)
        issuer = _issuer(conn.sock) if scheme == 'https' else None
        response = conn.getresponse()
        body = response.read(max_body)
        return response.status, body, issuer
    finally:
        conn.close()


def tcp_connect(address, port, timeout=5.0):
    with socket.create_connection((address, port), timeout=timeout):
        return True


def resolve(name, nameservers=None, port=53, timeout=3.0):
    """IPv4 addresses of name: an A query (dnspython) to the first answering nameserver, or the system resolver.

    Raises LookupError with the DNS error (NXDOMAIN, ...) or OSError when no server answers.
    """
    if not nameservers:
        try:
            infos = socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise LookupError(str(exc)) from None
        return sorted(set(info[4][0] for info in infos))
    if not HAS_DNSPYTHON:
        raise OSError('the Python library dnspython is required to ask %s: %s'
                      % (', '.join(nameservers), DNSPYTHON_IMPORT_ERROR))
    last = None
    for server in nameservers:
        query = dns.message.make_query(name, dns.rdatatype.A)
        try:
            answer = dns.query.udp(query, server, timeout=timeout, port=port)
        except (OSError, dns.exception.DNSException) as exc:     # timeout, unreachable, malformed answer
            last = exc
            continue
        rcode = answer.rcode()
        if rcode != dns.rcode.NOERROR:
            raise LookupError('%s from %s' % (dns.rcode.to_text(rcode), server))
        addresses = set(item.address for rrset in answer.answer if rrset.rdtype == dns.rdatatype.A for item in rrset)
        if not addresses:
            raise LookupError('no A record from %s' % server)
        return sorted(addresses)
    raise OSError('no answer from %s: %s' % (', '.join(nameservers), last or 'timed out'))


# --------------------------------------------------------------------------------------------------
# the plan


def _check(section, check, target, func=None, status=None, detail=''):
    return {'section': section, 'check': check, 'target': target, 'func': func, 'status': status, 'detail': detail}


def _na(section, check, detail):
    return _check(section, check, '-', status=NA, detail=detail)


def plan_checks(guests, hypervisor=None, stacks=None, domain='', options=None, pve_guests=None, firewalls=None,
                pve_error=None):
    """The checks for a platform: a list of dicts with either a 'func' to run or a fixed 'status'."""
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
        plan = route_plan(running, stacks)
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
                             func=_dns_probe(record['name'], expected, dns_opts)))
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
                              'https://%s:%s/health' % (sni, opts['step_ca_port']), ca_guest,
                              _http_probe(guest_ip(ca_guest), opts['step_ca_port'], '/health', 'https', sni,
                                          http_opts, retries, expect_json={'status': 'ok'})))

    # traefik: ping
    if traefik is None:
        checks.append(_na('traefik', 'ping', 'no guest has the traefik feature'))
    else:
        url = '%s://%s:%s%s' % (opts['traefik_ping_scheme'], guest_ip(traefik) or '-', opts['traefik_ping_port'],
                                opts['traefik_ping_path'])
        checks.append(guarded('traefik', 'guest %s ping' % traefik['id'], url, traefik,
                              _http_probe(guest_ip(traefik), opts['traefik_ping_port'], opts['traefik_ping_path'],
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
                                  _http_probe(guest_ip(gateway), opts['gateway_port'], '/', 'https', route['host'],
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
                              _http_probe(guest_ip(guest), server_port, '/api/status', 'https', sni, http_opts,
                                          retries, expect_json_key='Version')))
    if not agents:
        checks.append(_na('portainer_agent', 'port', 'no guest has portainer_role agent'))
    for guest in agents:
        # the agent serves its own self-signed certificate (Portainer's design): reachability only
        checks.append(guarded('portainer_agent', 'guest %s' % guest['id'], '%s:%s' % (guest_ip(guest), agent_port),
                              guest, _tcp_probe(guest_ip(guest), agent_port, http_opts['timeout'], retries)))

    # qdrant: /healthz through the gateway for every route of a Qdrant stack
    qdrant_routes = [r for r in routes if r['kind'] == 'stack' and _is_qdrant(r['stack'], stacks)]
    if not qdrant_routes:
        checks.append(_na('qdrant', opts['qdrant_path'], 'no Qdrant stack route in the config'))
    elif gateway is None:
        checks.append(_na('qdrant', opts['qdrant_path'], 'no gateway (nginx feature) to reach it through'))
    for route in qdrant_routes if gateway is not None else []:
        checks.append(guarded('qdrant', route['source'], 'https://%s%s' % (route['host'], opts['qdrant_path']),
                              gateway, _http_probe(guest_ip(gateway), opts['gateway_port'], opts['qdrant_path'],
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
                              _http_probe(guest_ip(guest), port, '/health', scheme, sni, http_opts, retries)))
        models_check = 'guest %s /v1/models' % guest['id']
        if headers and scheme != 'https' and not opts.get('vllm_key_over_http'):
            # The API key is a bearer secret: it is never sent in clear unless the user says so.
            checks.append(_check('vllm', models_check, base + '/v1/models', status=FAIL,
                                 detail='not asked: the API key would cross the network in clear; serve vLLM '
                                        'over TLS (vllm_scheme https) or allow it with vllm_key_over_http'))
            continue
        checks.append(guarded('vllm', models_check, base + '/v1/models', guest,
                              _http_probe(guest_ip(guest), port, '/v1/models', scheme, sni, http_opts, retries,
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


# --------------------------------------------------------------------------------------------------
# probe factories: each returns a function () -> (status, detail)


def _with_retries(func, retries, delay):
    def run():
        attempt = 0
        while True:
            try:
                return func()
            except TRANSIENT:
                if attempt >= retries:
                    raise
                time.sleep(delay * (2 ** attempt))
                attempt += 1
    return run


def _describe_error(exc):
    if isinstance(exc, ssl.SSLCertVerificationError):
        return 'TLS verification failed: %s' % (exc.verify_message or exc.reason or exc)
    if isinstance(exc, ssl.SSLError):
        return 'TLS error: %s' % (exc.reason or exc)
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return 'timed out'
    if isinstance(exc, ConnectionRefusedError):
        return 'connection refused'
    return '%s: %s' % (type(exc).__name__, exc)


def _dns_probe(name, expected, dns_opts):
    def probe():
        addresses = resolve(name, **dns_opts)
        if expected and expected not in addresses:
            return FAIL, '%s, expected %s' % (', '.join(addresses), expected)
        return OK, ', '.join(addresses)
    return probe


def _tcp_probe(address, port, timeout, retries):
    def probe():
        _with_retries(lambda: tcp_connect(address, port, timeout), **retries)()
        return OK, 'port %s open' % port
    return probe


def _http_probe(address, port, path, scheme, host, http_opts, retries, headers=None, expect_json=None,
                expect_json_key=None, expect_body=None, expect_model=None, route=False):
    def probe():
        status, body, issuer = _with_retries(
            lambda: http_get(address, port, path, scheme, host, headers=headers, **http_opts), **retries)()
        via = ', TLS by %s' % issuer if issuer else ''
        if route:
            if status >= 500:
                return FAIL, 'HTTP %s from the gateway (backend down?)%s' % (status, via)
            return OK, 'HTTP %s%s' % (status, via)
        if status == 401 and expect_model is not None and not headers:
            return WARN, 'HTTP 401: set the vLLM API key to check the model list%s' % via
        if status != 200:
            return FAIL, 'HTTP %s%s' % (status, via)
        if expect_body is not None and body.strip() != expect_body:
            return FAIL, 'HTTP 200 but %r instead of %r' % (body[:40], expect_body)
        data = None
        if expect_json is not None or expect_json_key is not None or expect_model is not None:
            try:
                data = json.loads(body.decode('utf-8'))
            except ValueError:
                return FAIL, 'HTTP 200 but not JSON: %r' % body[:40]
        if expect_json is not None:
            for key, value in expect_json.items():
                if not isinstance(data, dict) or data.get(key) != value:
                    return FAIL, 'HTTP 200 but %s=%r' % (key, (data or {}).get(key) if isinstance(data, dict) else data)
        if expect_json_key is not None:
            if not isinstance(data, dict) or expect_json_key not in data:
                return FAIL, 'HTTP 200 but no %s in the answer' % expect_json_key
            return OK, 'HTTP 200, %s %s%s' % (expect_json_key, data[expect_json_key], via)
        if expect_model is not None:
            models = [m.get('id') for m in (data or {}).get('data') or [] if isinstance(m, dict)]
            if expect_model not in models:
                return FAIL, 'serves %s, not %s' % (', '.join(map(str, models)) or 'no model', expect_model)
            return OK, 'serves %s%s' % (expect_model, via)
        return OK, 'HTTP 200%s' % via
    return probe


# --------------------------------------------------------------------------------------------------
# running and rendering


def _run_one(item):
    start = time.time()
    row = dict((k, v) for k, v in item.items() if k != 'func')
    if item.get('func') is None:
        row['ms'] = 0
        return row
    try:
        status, detail = item['func']()
    except LookupError as exc:
        status, detail = FAIL, 'does not resolve: %s' % exc
    except Exception as exc:  # pylint: disable=broad-except
        status, detail = FAIL, _describe_error(exc)
    row.update(status=status, detail=detail, ms=int((time.time() - start) * 1000))
    return row


def run_checks(checks, concurrency=16):
    """Run every check concurrently; rows in section order, then in plan order."""
    with ThreadPoolExecutor(max_workers=max(1, int(concurrency))) as pool:
        rows = list(pool.map(_run_one, checks))
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
