# -*- coding: utf-8 -*-
"""phoenix_health: checks against real loopback servers (HTTPS with a test CA, HTTP, TCP, a DNS server).

One platform is healthy, one has real failures, one has no features at all (every section n/a).
Everything listens on loopback addresses only (127.0.0.1 for DNS, one 127.0.0.N per guest).
"""

import copy
import json
import os
import socket
import threading

import pytest

import phoenix_testlib  # noqa: F401 - puts collections/ on sys.path
from ansible_collections.thinkheads.phoenix.plugins.module_utils import health
from modrun import run_module

# the test PKI and the loopback servers
from health_servers import DnsServer, LOOPBACK, free_port, make_ca, make_server_cert, serve_http

DOMAIN = 'health.test'
IP = {'traefik': '127.0.0.2', 'step_ca': '127.0.0.3', 'gateway': '127.0.0.4', 'vllm': '127.0.0.5',
      'portainer': '127.0.0.6', 'agent': '127.0.0.7', 'ghost': '127.0.0.8'}
MODEL = 'ibm-granite/granite-embedding-english-r2'


# --------------------------------------------------------------------------------------------------
# the platform under test


def guest(vmid, name, features, ip=LOOPBACK, **extra):
    data = {'id': vmid, 'name': name, 'hostname': name, 'fqdn': '%s.%s' % (name, DOMAIN), 'is_template': False,
            'features': features, 'network': {'ip': ip, 'dhcp': False}, 'portainer_role': 'none'}
    data.update(extra)
    return data


def stack(name, service, image, host, port):
    """A stack as the inventory plugin normalizes it (one Traefik router on one Host())."""
    labels = {'traefik.enable': 'true', 'traefik.http.routers.%s.rule' % service: 'Host(`%s`)' % host,
              'traefik.http.services.%s.loadbalancer.server.port' % service: str(port)}
    return {'name': name, 'environment': 'production', 'defined_for_environment': True,
            'compose': {'services': {service: {'image': image}}},
            'services': {service: {'traefik_labels': labels}},
            'routers': {service: {'hosts': [host], 'rule': 'Host(`%s`)' % host, 'service': service}}}


@pytest.fixture(scope='module')
def platform(tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp('health'))
    ca_key, ca_cert, root = make_ca(tmp, 'Health Test Root CA')
    names = ['ca.%s' % DOMAIN, 'portainer.%s' % DOMAIN, 'app.%s' % DOMAIN, 'qdrant.%s' % DOMAIN,
             'embed.%s' % DOMAIN, 'broken.%s' % DOMAIN]
    tls = make_server_cert(tmp, ca_key, ca_cert, names, 'server')
    rogue_key, rogue_cert, dummy = make_ca(tmp, 'Rogue CA')
    rogue_tls = make_server_cert(tmp, rogue_key, rogue_cert, names, 'rogue')

    servers = {
        'step_ca': serve_http({('*', '/health'): (200, {'status': 'ok'})}, tls=tls, host=IP['step_ca']),
        'step_ca_rogue': serve_http({('*', '/health'): (200, {'status': 'ok'})}, tls=rogue_tls, host=IP['step_ca']),
        'traefik': serve_http({('*', '/ping'): (200, b'OK')}, host=IP['traefik']),
        'gateway': serve_http({
            ('app.%s' % DOMAIN, '/'): (404, b'no such page'),
            ('portainer.%s' % DOMAIN, '/'): (200, b'portainer'),
            ('qdrant.%s' % DOMAIN, '/'): (200, b'qdrant'),
            ('qdrant.%s' % DOMAIN, '/healthz'): (200, b'healthz check passed'),
            ('embed.%s' % DOMAIN, '/'): (404, b'{"detail":"Not Found"}'),
            ('broken.%s' % DOMAIN, '*'): (502, b'bad gateway'),
        }, tls=tls, host=IP['gateway']),
        'portainer': serve_http({('*', '/api/status'): (200, {'Version': '2.21.5', 'InstanceID': 'x'})}, tls=tls,
                                host=IP['portainer']),
        'vllm': serve_http({('*', '/health'): (200, b''),
                            ('*', '/v1/models'): (200, {'object': 'list', 'data': [{'id': MODEL}]})},
                           tls=tls, host=IP['vllm']),
    }
    agent = socket.socket()
    agent.bind((IP['agent'], 0))
    agent.listen(8)

    def accept():
        while True:
            try:
                conn, dummy = agent.accept()
            except OSError:
                return
            conn.close()
    threading.Thread(target=accept, daemon=True).start()
    port = dict((name, server.server_address[1]) for name, server in servers.items())
    port['agent'] = agent.getsockname()[1]

    guests = [
        guest(900, 'template-base', ['base_setup'], is_template=True),
        guest(103, 'step-ca', ['base_setup', 'step_ca'], ip=IP['step_ca']),
        guest(102, 'traefik', ['traefik'], ip=IP['traefik']),
        guest(101, 'nginx', ['nginx'], ip=IP['gateway']),
        guest(801, 'embed', ['vllm'], ip=IP['vllm'],
              traefik_service={'name': 'embed', 'port': 8000, 'host': 'embed.%s' % DOMAIN},
              vllm_engine_config={'ModelConfig': {'model': MODEL},
                                  'ServerConfig': {'port': port['vllm'], 'served_model_name': MODEL}}),
        guest(1001, 'swarm-manager', ['docker'], ip=IP['portainer'], portainer_role='primary', swarm_role='manager',
              traefik_service={'name': 'portainer', 'port': 9443, 'scheme': 'https',
                               'host': 'portainer.%s' % DOMAIN}),
        guest(1002, 'swarm-worker', ['docker'], ip=IP['agent'], portainer_role='agent', swarm_role='worker',
              docker_stacks=[{'name': 'qdrant_service', 'environment': 'production'},
                             {'name': 'thinkheads_ai_app', 'environment': 'production'}]),
    ]
    hypervisor = {'step_ca': {'dns_name': 'ca.%s' % DOMAIN},
                  'portainer': {'hostname': 'portainer.%s' % DOMAIN, 'server_port': port['portainer'],
                                'agent_port': port['agent']}}
    stacks = {
        'qdrant_service': stack('qdrant_service', 'qdrant', 'qdrant/qdrant:v1.13.4', 'qdrant.%s' % DOMAIN, 6333),
        'thinkheads_ai_app': stack('thinkheads_ai_app', 'app', 'app:1', 'app.%s' % DOMAIN, 8080),
        'not_deployed': stack('not_deployed', 'x', 'x:1', 'elsewhere.%s' % DOMAIN, 80),
    }
    records = dict(('%s.%s' % (g['name'], DOMAIN), g['network']['ip']) for g in guests)
    records.update(dict((n, IP['gateway']) for n in names))   # every routed name -> the gateway (its FQDN too)
    records['ca.%s' % DOMAIN] = IP['step_ca']                   # the CA's name -> the CA
    dns = DnsServer(records)
    options = {'ca_file': root, 'nameservers': [LOOPBACK], 'dns_port': dns.port, 'gateway_port': port['gateway'],
               'traefik_ping_port': port['traefik'], 'step_ca_port': port['step_ca'], 'timeout': 10.0, 'retries': 0}
    data = dict(guests=guests, hypervisor=hypervisor, stacks=stacks, domain=DOMAIN, options=options, port=port,
                dns=dns, root=root, tmp=tmp)
    yield data
    for server in servers.values():
        server.shutdown()
        server.server_close()
    agent.close()
    dns.close()


def run(platform, guests=None, options=None, **kwargs):
    opts = dict(platform['options'])
    opts.update(options or {})
    checks = health.plan_checks(guests if guests is not None else platform['guests'], platform['hypervisor'],
                                platform['stacks'], platform['domain'], opts, **kwargs)
    return health.run_checks(checks)


def by_key(rows):
    return dict(((r['section'], r['target']), r) for r in rows)


# --------------------------------------------------------------------------------------------------
# tests


def test_healthy_platform(platform):
    rows = run(platform)
    table = '\n'.join(health.render_table(rows))
    bad = [r for r in rows if r['status'] not in ('ok', 'n/a')]
    assert not bad, table
    assert health.problems(rows, ['fail']) == []
    rows_by = by_key(rows)
    # every guest FQDN (templates excluded), the CA name and every routed hostname resolved through our DNS server
    for name in ('step-ca', 'traefik', 'nginx', 'embed', 'swarm-manager', 'swarm-worker'):
        assert rows_by[('dns', '%s.%s' % (name, DOMAIN))]['status'] == 'ok'
    assert 'template-base.%s' % DOMAIN not in platform['dns'].queries
    for host in ('ca', 'app', 'qdrant', 'portainer', 'embed'):
        assert ('dns', '%s.%s' % (host, DOMAIN)) in rows_by
    assert ('dns', 'elsewhere.%s' % DOMAIN) not in rows_by   # a stack not defined for this environment
    step_ca = [r for r in rows if r['section'] == 'step_ca'][0]
    assert step_ca['status'] == 'ok' and 'TLS by Health Test Root CA' in step_ca['detail']
    assert step_ca['target'] == 'https://ca.%s:%d/health' % (DOMAIN, platform['options']['step_ca_port'])
    gateway = dict((r['target'], r) for r in rows if r['section'] == 'gateway')
    assert sorted(gateway) == sorted('https://%s.%s/' % (h, DOMAIN) for h in ('app', 'embed', 'portainer', 'qdrant'))
    assert 'HTTP 404' in gateway['https://app.%s/' % DOMAIN]['detail']     # 404 from a backend is an answer
    assert [r['detail'] for r in rows if r['section'] == 'portainer'][0].startswith('HTTP 200, Version 2.21.5')
    assert [r['status'] for r in rows if r['section'] == 'qdrant'] == ['ok']
    assert [r['detail'] for r in rows if r['section'] == 'vllm'] == ['HTTP 200, TLS by Health Test Root CA',
                                                                     'serves %s, TLS by Health Test Root CA' % MODEL]
    # without Proxmox data these are n/a, never failures
    assert rows_by[('proxmox', '-')]['status'] == 'n/a'
    assert rows_by[('firewall', '-')]['status'] == 'n/a'


def test_real_problems_fail(platform):
    guests = copy.deepcopy(platform['guests'])
    guests[4]['vllm_engine_config']['ServerConfig']['served_model_name'] = 'other/model'
    guests[4]['traefik_service']['host'] = 'broken.%s' % DOMAIN          # the gateway answers 502
    guests.append(guest(1003, 'ghost', ['docker'], ip=IP['ghost'], portainer_role='agent'))  # no DNS record
    hypervisor = copy.deepcopy(platform['hypervisor'])
    hypervisor['portainer']['agent_port'] = free_port()                 # nothing listens
    opts = dict(platform['options'])
    checks = health.plan_checks(guests, hypervisor, platform['stacks'], DOMAIN, opts)
    rows = health.run_checks(checks)
    failed = dict(((r['section'], r['target']), r['detail']) for r in rows if r['status'] == 'fail')
    assert failed[('vllm', 'https://%s:%s/v1/models' % (IP['vllm'], platform['port']['vllm']))] == \
        'serves %s, not other/model' % MODEL
    assert failed[('gateway', 'https://broken.%s/' % DOMAIN)].startswith('HTTP 502 from the gateway')
    assert failed[('dns', 'ghost.%s' % DOMAIN)].startswith('does not resolve: NXDOMAIN')
    for ip in (IP['agent'], IP['ghost']):
        assert failed[('portainer_agent', '%s:%s' % (ip, hypervisor['portainer']['agent_port']))] == \
            'connection refused'
    # 801's FQDN is no longer a routed name, so it must now resolve to 801 itself, not the gateway
    assert failed[('dns', 'embed.%s' % DOMAIN)] == '%s, expected %s' % (IP['gateway'], IP['vllm'])
    assert len(failed) == len(health.problems(rows, ['fail'])) == 6


def test_tls_is_verified_against_the_root(platform):
    rogue = platform['options'].copy()
    rogue['step_ca_port'] = None
    hypervisor = platform['hypervisor']
    checks = health.plan_checks(platform['guests'], hypervisor, platform['stacks'], DOMAIN,
                                dict(platform['options'], ca_file=None, skip=['dns', 'vllm', 'traefik']))
    rows = health.run_checks(checks)
    tls_rows = [r for r in rows if r['section'] in ('step_ca', 'gateway', 'portainer', 'qdrant')]
    assert tls_rows and all(r['status'] == 'fail' for r in tls_rows)
    assert all(r['detail'].startswith('TLS verification failed') for r in tls_rows), tls_rows
    skipped = [r for r in rows if r['section'] in ('dns', 'vllm', 'traefik')]
    assert skipped and all(r['status'] == 'n/a' and r['detail'].startswith('skipped') for r in skipped)


def test_wrong_hostname_fails_verification(platform):
    guests = copy.deepcopy(platform['guests'])
    hypervisor = copy.deepcopy(platform['hypervisor'])
    hypervisor['step_ca']['dns_name'] = 'not-in-the-cert.%s' % DOMAIN
    rows = [r for r in run(platform, guests=guests, options={'skip': ['dns']}) if r['section'] == 'step_ca']
    assert rows[0]['status'] == 'ok'
    checks = health.plan_checks(guests, hypervisor, {}, DOMAIN, dict(platform['options'], skip=['dns']))
    rows = [r for r in health.run_checks(checks) if r['section'] == 'step_ca']
    assert rows[0]['status'] == 'fail' and 'TLS verification failed' in rows[0]['detail']


def test_no_features_everything_na(platform):
    guests = [guest(200, 'plain', ['base_setup']), guest(900, 'tmpl', [], is_template=True)]
    checks = health.plan_checks(guests, {}, {}, DOMAIN, dict(platform['options'], nameservers=[LOOPBACK]))
    rows = health.run_checks(checks)
    by_section = dict((r['section'], r) for r in rows if r['section'] != 'dns')
    assert set(by_section) == set(health.SECTIONS) - {'dns'}
    assert all(r['status'] == 'n/a' for r in by_section.values()), rows
    assert by_section['vllm']['detail'] == 'no guest has the vllm feature'
    # the only DNS check is the guest's FQDN, which this DNS server does not know
    assert [r['status'] for r in rows if r['section'] == 'dns'] == ['fail']
    assert health.problems(rows, ['fail'])[0]['target'] == 'plain.%s' % DOMAIN


def test_gpu_features_off_are_named(platform):
    guests = [guest(801, 'embed', ['base_setup'], vllm_engine_config={'ModelConfig': {'model': MODEL}})]
    rows = [r for r in run(platform, guests=guests) if r['section'] == 'vllm']
    assert rows == [{'section': 'vllm', 'check': '/health', 'target': '-', 'status': 'n/a', 'ms': 0,
                     'detail': 'no guest has the vllm feature (GPU features off for 801)'}]


def test_proxmox_state_and_firewall_drift(platform):
    pve = {'103': {'status': 'stopped'}, '102': {'status': 'running'}, '101': {'status': 'running'},
           '801': {'status': 'running'}, '1001': {'status': 'running'}, '1002': {'status': 'running'},
           '900': {'status': 'stopped', 'template': True}}
    firewalls = {'103': {'changed': False, 'enabled': True}, '801': {'changed': True, 'enabled': True},
                 '102': {'failed': True, 'msg': 'permission denied'}, 'cluster': {'changed': False}}
    rows = run(platform, pve_guests=pve, firewalls=firewalls)
    rows_by = by_key(rows)
    assert rows_by[('proxmox', 'guest 103 step-ca')]['status'] == 'fail'
    assert rows_by[('proxmox', 'guest 900 template-base')]['detail'] == 'template'
    assert rows_by[('proxmox', 'guest 801 embed')]['status'] == 'ok'
    step_ca = [r for r in rows if r['section'] == 'step_ca'][0]
    # a stopped guest is not probed: no time spent, the row says why
    assert (step_ca['status'], step_ca['detail'], step_ca['ms']) == ('fail', 'guest 103 is stopped', 0)
    assert rows_by[('firewall', 'guest 801')]['status'] == 'warn'
    assert 'drifted' in rows_by[('firewall', 'guest 801')]['detail']
    assert rows_by[('firewall', 'guest 102')]['detail'] == 'permission denied'
    assert rows_by[('firewall', 'cluster')]['status'] == 'ok'
    targets = [r['target'] for r in rows if r['section'] == 'firewall']
    assert targets == ['guest 102', 'guest 103', 'guest 801', 'cluster']
    expected = {'guest 103 step-ca', 'guest 102', step_ca['target']}
    assert {r['target'] for r in health.problems(rows, ['fail'])} == expected
    assert len(health.problems(rows, ['fail', 'warn'])) == 4
    # a guest missing on Proxmox
    del pve['801']
    rows_by = by_key(run(platform, pve_guests=pve, options={'skip': ['dns']}))
    assert rows_by[('proxmox', 'guest 801 embed')]['detail'] == 'does not exist on Proxmox'


def test_checks_run_concurrently(platform):
    # The server answers only once all eight requests are in (a barrier, no clock): checks run one after the
    # other would break the barrier (after 20 s, inside the checks' 30 s timeout) and fail. Both bounds only matter
    # when the checks are not concurrent; generous, so that a loaded machine cannot break the barrier by chance.
    barrier = threading.Barrier(8, timeout=20)
    slow = serve_http({('*', '/health'): (200, b'')}, gate=barrier.wait)
    try:
        guests = [guest(800 + i, 'v%d' % i, ['vllm'], vllm_engine_config={
            'ModelConfig': {'model': 'm'}, 'ServerConfig': {'port': slow.server_address[1]}}) for i in range(8)]
        checks = [c for c in health.plan_checks(guests, {}, {}, DOMAIN,
                                                dict(platform['options'], skip=['dns'], vllm_scheme='http',
                                                     timeout=30))
                  if c['section'] == 'vllm' and c['check'].endswith('/health')]
        rows = health.run_checks(checks, concurrency=16)
    finally:
        slow.shutdown()
        slow.server_close()
    assert [r['status'] for r in rows] == ['ok'] * 8, rows
    assert not barrier.broken


def test_vllm_api_key_never_sent_in_clear(platform):
    # A plain-HTTP vLLM that logs every request's headers: with an API key configured, /v1/models is not asked
    # (the bearer key would cross the network in clear) and the check fails saying why; /health is still asked.
    seen = []
    plain = serve_http({('*', '/health'): (200, b''),
                        ('*', '/v1/models'): (200, {'object': 'list', 'data': [{'id': 'm'}]})},
                       gate=lambda: seen.append(threading.current_thread().name))
    try:
        guests = [guest(801, 'embed', ['vllm'], vllm_engine_config={
            'ModelConfig': {'model': 'm'}, 'ServerConfig': {'port': plain.server_address[1]}})]
        opts = dict(platform['options'], skip=['dns'], vllm_scheme='http', vllm_api_key='s3cret-key')
        rows = dict((r['check'], r) for r in health.run_checks(health.plan_checks(guests, {}, {}, DOMAIN, opts))
                    if r['section'] == 'vllm')
        assert rows['guest 801 /health']['status'] == 'ok'
        assert rows['guest 801 /v1/models']['status'] == 'fail'
        assert 'would cross the network in clear' in rows['guest 801 /v1/models']['detail']
        assert len(seen) == 1                   # /health only: /v1/models (with the key) was never requested
        # Allowed explicitly, the key is sent and the check passes.
        opts['vllm_key_over_http'] = True
        rows = dict((r['check'], r) for r in health.run_checks(health.plan_checks(guests, {}, {}, DOMAIN, opts))
                    if r['section'] == 'vllm')
        assert [r['status'] for r in rows.values()] == ['ok', 'ok'], rows
        assert len(seen) == 3
    finally:
        plain.shutdown()
        plain.server_close()


def test_table_is_aligned(platform):
    rows = run(platform)
    lines = health.render_table(rows)
    header, rule = lines[0], lines[1]
    starts = [i for i in range(len(rule)) if rule[i] == '-' and (i == 0 or rule[i - 1] == ' ')]
    assert [header[i - 1] if i else ' ' for i in starts] == [' '] * len(starts)
    for line in lines[2:-1]:
        for start in starts[1:]:
            assert line[start - 2:start] == '  ' or len(line) < start, line
    assert lines[-1].startswith('%d checks: ' % len(rows))
    assert len(lines) == len(rows) + 3


def test_resolver_parses_compressed_answers(platform):
    dns = platform['dns']
    assert health.resolve('nginx.%s' % DOMAIN, [LOOPBACK], dns.port) == [IP['gateway']]
    with pytest.raises(LookupError, match='NXDOMAIN'):
        health.resolve('nope.%s' % DOMAIN, [LOOPBACK], dns.port)
    with pytest.raises(OSError, match='no answer'):
        health.resolve('nginx.%s' % DOMAIN, [LOOPBACK], free_port(), timeout=0.3)


def test_extra_rows_replace_a_section(platform):
    checks = health.plan_checks(platform['guests'], platform['hypervisor'], platform['stacks'], DOMAIN,
                                dict(platform['options'], skip=['dns']))
    merged = health.merge_rows(checks, [{'section': 'traefik', 'check': 'ping (on the guest)', 'target': 'x',
                                         'status': 'fail', 'detail': 'HTTP 503'}])
    rows = [r for r in health.run_checks(merged) if r['section'] == 'traefik']
    assert [(r['check'], r['status'], r['detail']) for r in rows] == [('ping (on the guest)', 'fail', 'HTTP 503')]
    with pytest.raises(health.HealthError, match='extra_rows items need a section'):
        health.merge_rows(checks, [{'section': 'nope', 'status': 'ok'}])


def test_bad_guest_input():
    with pytest.raises(health.HealthError, match='phoenix_guest dict with an id'):
        health.plan_checks([{'name': 'x'}], {}, {}, DOMAIN, {})


def test_module_through_ansible(platform):
    opts = platform['options']
    args = dict(guests=platform['guests'], hypervisor=platform['hypervisor'], stacks=platform['stacks'],
                domain=DOMAIN, ca_file=opts['ca_file'], nameservers=opts['nameservers'], dns_port=opts['dns_port'],
                gateway_port=opts['gateway_port'], traefik_ping_port=opts['traefik_ping_port'],
                step_ca_port=opts['step_ca_port'], timeout=10.0, retries=0, vllm_api_key='s3cret-key')
    result = run_module('phoenix_health', args, check=True)
    assert result['changed'] is False
    assert result['healthy'] is True, '\n'.join(result['table'])
    assert result['summary']['fail'] == 0 and result['summary']['ok'] >= 15
    assert result['table'][0].split() == ['SECTION', 'CHECK', 'TARGET', 'STATUS', 'DETAIL', 'MS']
    assert 's3cret-key' not in json.dumps(result)

    result = run_module('phoenix_health', dict(args, ca_file=os.path.join(platform['tmp'], 'missing.pem')))
    assert result.get('failed') and 'ca_file' in result['msg'] and 'does not exist' in result['msg']
    result = run_module('phoenix_health', dict(args, skip=['nonsense']))
    assert result.get('failed') and 'skip' in result['msg']


# --------------------------------------------------------------------------------------------------
# playbooks/health.yml end to end on a loopback platform (a YAML inventory shaped like the plugin's)


def _inventory(platform, path, guests):
    import yaml
    local = {'ansible_connection': 'local', 'ansible_python_interpreter': os.sys.executable}
    hosts = dict((str(g['id']), dict(local, phoenix_guest=g, phoenix_domain=DOMAIN, ansible_host=LOOPBACK))
                 for g in guests)
    step_ca = [str(g['id']) for g in guests if 'step_ca' in g['features'] and not g.get('is_template')]
    inventory = {'all': {'children': {
        'phoenix': {'hosts': hosts},
        'hypervisor': {'hosts': {'phoenix-hypervisor': dict(
            local, ansible_host=LOOPBACK, phoenix_domain=DOMAIN, phoenix_stacks=platform['stacks'],
            phoenix_hypervisor=dict(platform['hypervisor'], dns_server={'enabled': True}))}},
        'feature_step_ca': {'hosts': dict((h, {}) for h in step_ca)},
        'feature_traefik': {'hosts': dict((str(g['id']), {}) for g in guests if 'traefik' in g['features'])},
    }}}
    with open(path, 'w') as handle:
        yaml.safe_dump(inventory, handle)
    return path


def _playbook(platform, inventory, *extra):
    import subprocess
    opts = platform['options']
    extra_vars = {'phoenix_health_ca_root_path': platform['root'], 'phoenix_health_dns_port': opts['dns_port'],
                  'phoenix_health_gateway_port': opts['gateway_port'],
                  'phoenix_health_step_ca_port': opts['step_ca_port'],
                  'phoenix_health_traefik_ping_url': 'http://%s:%s/ping' % (IP['traefik'], opts['traefik_ping_port']),
                  'phoenix_health_retries': 0,
                  'phoenix_health_timeout': 10}
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(phoenix_testlib.REPO, 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
               ANSIBLE_FORCE_COLOR='0')
    env.pop('PHOENIX_PVE_URL', None)
    cmd = [os.path.join(os.path.dirname(os.sys.executable), 'ansible-playbook'), '-i', inventory,
           os.path.join(phoenix_testlib.REPO, 'playbooks', 'health.yml'), '-e', json.dumps(extra_vars), *extra]
    proc = subprocess.run(cmd, cwd=phoenix_testlib.REPO, env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    return proc.returncode, proc.stdout + proc.stderr


def test_playbook_healthy_then_failing(platform, tmp_path):
    inventory = _inventory(platform, str(tmp_path / 'inventory.yml'), platform['guests'])
    rc, out = _playbook(platform, inventory)
    if os.environ.get('PHOENIX_HEALTH_SHOW'):
        print(out)
    assert rc == 0, out
    # one table, printed as a literal block: the header, then every section
    assert out.count('SECTION  ') == 1, out
    header = [line for line in out.splitlines() if line.strip().startswith('SECTION')][0]
    assert header.split() == ['SECTION', 'CHECK', 'TARGET', 'STATUS', 'DETAIL', 'MS']
    assert 'TLS by Health Test Root CA' in out          # the root was read from the Step-CA "guest"
    assert 'no Proxmox API connection configured' in out
    assert 'checks: ' in out and ' 0 fail' in out
    assert 'guest 102 ping (on the guest)' in out       # Traefik's ping asked on the Traefik "guest"

    guests = copy.deepcopy(platform['guests'])
    guests[4]['vllm_engine_config']['ServerConfig']['served_model_name'] = 'other/model'
    inventory = _inventory(platform, str(tmp_path / 'broken.yml'), guests)
    rc, out = _playbook(platform, inventory)
    if os.environ.get('PHOENIX_HEALTH_SHOW'):
        print(out)
    assert rc == 2, out
    assert '1 health check(s) failed: https://%s:%s/v1/models: serves %s, not other/model' % (
        IP['vllm'], platform['port']['vllm'], MODEL) in out, out
    assert out.count('SECTION  ') == 1

    # skipped sections are n/a and do not fail the run
    rc, out = _playbook(platform, inventory, '-e', '{"phoenix_health_skip": ["vllm"]}')
    assert rc == 0, out
