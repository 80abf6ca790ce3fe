# -*- coding: utf-8 -*-
"""Routes, Traefik dynamic config, DNS records and firewall merge from the lab and the reference configs."""

import copy
import json
import os
import random

import pytest
import yaml

from phoenix_testlib import REFERENCE, REPO

from ansible_collections.thinkheads.phoenix.plugins.filter import routing as routing_filters
from ansible_collections.thinkheads.phoenix.plugins.module_utils import routing
from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.model import load_config

LAB = os.path.join(REPO, 'lab')
ROOT = '/etc/traefik/certs/root_ca.crt'


def load(root, **kwargs):
    config = load_config(os.path.join(root, 'etc'), os.path.join(root, 'stacks'), **kwargs)
    return config


@pytest.fixture(scope='module')
def lab():
    config = load(LAB)
    assert not config.report.errors
    return config


@pytest.fixture(scope='module')
def reference():
    # The reference compose files publish ports (a platform rule): routing does not care.
    return load(REFERENCE, platform_rules='warning')


def guests_of(config):
    """The guests as the inventory hands them out (JSON round trip, as hostvars are)."""
    return json.loads(json.dumps([config.guests[k] for k in config.guests]))


def by_router(plan):
    return dict((r['router'], r) for r in plan['routes'])


# --------------------------------------------------------------------------- routes

def test_lab_routes(lab):
    plan = routing.route_plan(guests_of(lab), lab.stacks)
    routes = by_router(plan)
    assert sorted(routes) == ['guest-granite-embedding', 'guest-portainer', 'stack-qdrant', 'stack-thinkheads-app']
    # the lab's 801 serves the vLLM test double over HTTPS with its Step-CA certificate
    granite = routes['guest-granite-embedding']
    assert granite['backend'] == 'https://10.77.0.141:8000'
    assert granite['hosts'] == ['granite-embedding.internal.thinkheads.ai']
    assert granite['server_name'] == 'granite-embedding.internal.thinkheads.ai'
    portainer = routes['guest-portainer']
    assert portainer['backend'] == 'https://10.77.0.111:9443'
    assert portainer['hosts'] == ['portainer.internal.thinkheads.ai']
    assert portainer['server_name'] == 'portainer.internal.thinkheads.ai'
    qdrant = routes['stack-qdrant']
    assert qdrant['hosts'] == ['qdrant.internal.thinkheads.ai']
    assert (qdrant['stack'], qdrant['environment'], qdrant['service'], qdrant['port']) == (
        'qdrant_service', 'production', 'qdrant', 6333)
    assert qdrant['guest_ids'] == [1002]
    assert routes['stack-thinkheads-app']['hosts'] == ['app.internal.thinkheads.ai']
    assert routes['stack-thinkheads-app']['port'] == 8000
    assert plan['gateway']['ip'] == '10.77.0.153'
    assert plan['traefik']['ip'] == '10.77.0.12'
    assert plan['ca']['ip'] == '10.77.0.10'
    assert [e['ip'] for e in plan['edges']] == ['10.77.0.111']
    assert plan['skipped'] == []


def test_reference_routes(reference):
    plan = routing.route_plan(guests_of(reference), reference.stacks)
    routes = by_router(plan)
    # 801 publishes granite-embedding over plain HTTP on the guest's own name.
    assert routes['guest-granite-embedding']['backend'] == 'http://10.0.0.141:8000'
    assert routes['guest-granite-embedding']['hosts'] == ['granite-embedding.internal.thinkheads.ai']
    # Portainer is both 1001's traefik_service and a router of the portainer_service stack it deploys:
    # the stack serves it. The gateway's own traefik_service would loop.
    assert 'guest-portainer' not in routes and routes['stack-portainer']['guest_ids'] == [1001]
    assert 'guest-nginx' not in routes
    reasons = dict((s['router'], s['reason']) for s in plan['skipped'])
    assert 'served by a stack router' in reasons['guest-portainer']
    assert 'loop' in reasons['guest-nginx']
    # The reference's gateway has no "nginx" feature: found by its name.
    assert plan['gateway']['id'] == 101 and plan['traefik']['id'] == 102
    assert routes['stack-qdrant']['port'] == 6333


def test_environment_is_the_one_the_guest_deploys(tmp_path, lab):
    """A guest deploying a stack in another environment routes that environment's host names."""
    guests = guests_of(lab)
    config = load(LAB, environment='production')
    worker = [g for g in guests if g['id'] == 1002][0]
    worker['docker_stacks'] = [{'name': 'qdrant_service', 'environment': 'testing'}]
    stacks = copy.deepcopy(config.stacks)
    testing = load(LAB, environment='testing').stacks['qdrant_service']
    stacks['qdrant_service']['other_environments'] = {'testing': testing}
    plan = routing.route_plan(guests, stacks)
    assert by_router(plan)['stack-qdrant-testing']['hosts'] == ['qdrant-testing.internal.thinkheads.ai']
    assert 'stack-qdrant' not in by_router(plan)


def test_declarations_feed_the_plan_and_the_checks(lab):
    """One walk: the plan's stack routes are declared routers deployed by running guests; the declarations also
    hold what only the checks need (a template's deployment, a variant no guest deploys)."""
    guests = guests_of(lab)
    stacks = copy.deepcopy(lab.stacks)
    stacks['not_deployed'] = dict(copy.deepcopy(stacks['qdrant_service']), name='not_deployed')
    template = dict(copy.deepcopy([g for g in guests if g['id'] == 1002][0]), id=9999, is_template=True,
                    docker_stacks=[{'name': 'not_deployed', 'environment': 'production'}])
    declared = routing.route_declarations(guests + [template], stacks, 'production')
    entries = [(e['stack'], e['environment'], e['router']) for e in declared['routers']]
    assert entries == sorted(entries) and len(entries) == len(set(entries))
    by_stack = dict(((e['stack'], e['router']), e) for e in declared['routers'])
    assert by_stack[('not_deployed', 'qdrant')]['guest_ids'] == {9999}
    assert declared['deployments'][('not_deployed', 'production')] == {9999}
    with_service = sorted(g['id'] for g in guests + [template] if g.get('traefik_service'))
    assert [g['id'] for g in declared['services']] == with_service
    plan = routing.route_plan(guests + [template], stacks)
    stack_routes = [(r['stack'], r['environment'], r['name']) for r in plan['routes'] if r['kind'] == 'stack']
    assert stack_routes and set(stack_routes) <= set(entries)
    assert not [r for r in stack_routes if r[0] == 'not_deployed']   # a template's deployment routes nothing
    # a stack deployed only in another environment declares no router for the load environment
    elsewhere = copy.deepcopy(guests)
    for guest in elsewhere:
        guest['docker_stacks'] = [dict(item, environment='testing') for item in guest.get('docker_stacks') or []]
    declared = routing.route_declarations(elsewhere, lab.stacks, 'production')
    deployed_stacks = set(name for name, _env in declared['deployments'])
    assert deployed_stacks and not [e for e in declared['routers'] if e['stack'] in deployed_stacks]


def test_stack_without_enable_is_skipped(lab):
    stacks = copy.deepcopy(lab.stacks)
    labels = stacks['qdrant_service']['services']['qdrant']['traefik_labels']
    labels['traefik.enable'] = 'false'
    plan = routing.route_plan(guests_of(lab), stacks)
    assert 'stack-qdrant' not in by_router(plan)
    assert any('traefik.enable' in s['reason'] for s in plan['skipped'])


def test_unknown_gateway_is_an_error(lab):
    with pytest.raises(routing.RoutingError, match='gateway "999"'):
        routing.route_plan(guests_of(lab), lab.stacks, gateway=999)


def test_deterministic(lab, reference):
    for config in (lab, reference):
        guests = guests_of(config)
        first = routing.route_plan(guests, config.stacks)
        shuffled = list(guests)
        random.Random(7).shuffle(shuffled)
        second = routing.route_plan(shuffled, config.stacks)
        assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)
        dyn = routing.traefik_dynamic_config(first, ROOT, domain=config.domain)
        again = routing.traefik_dynamic_config(second, ROOT, domain=config.domain)
        assert yaml.safe_dump(dyn) == yaml.safe_dump(again)
        records = routing.dns_records(guests, first, config.domain)
        assert routing.dns_records(shuffled, second, config.domain) == records


# --------------------------------------------------------------------------- Traefik

def test_traefik_dynamic_config_lab(lab):
    plan = routing.route_plan(guests_of(lab), lab.stacks)
    dyn = routing.traefik_dynamic_config(plan, ROOT, domain=lab.domain, default_cert_file='/c.crt',
                                         default_key_file='/c.key')
    http = dyn['http']
    assert http['routers']['guest-portainer'] == {
        'rule': 'Host(`portainer.internal.thinkheads.ai`)', 'entryPoints': ['websecure'],
        'service': 'guest-portainer',
        'tls': {'certResolver': 'internal-resolver', 'domains': [{'main': 'portainer.internal.thinkheads.ai'}]}}
    assert http['services']['guest-portainer']['loadBalancer'] == {
        'servers': [{'url': 'https://10.77.0.111:9443'}], 'passHostHeader': True,
        'serversTransport': 'guest-portainer'}
    assert http['serversTransports']['guest-portainer'] == {
        'serverName': 'portainer.internal.thinkheads.ai', 'rootCAs': [ROOT]}
    for name in ('stack-qdrant', 'stack-thinkheads-app'):
        balancer = http['services'][name]['loadBalancer']
        assert balancer['servers'] == [{'url': 'https://10.77.0.111:8443'}]
        assert balancer['passHostHeader'] is True
        assert balancer['serversTransport'] == routing.EDGE_TRANSPORT
    assert http['serversTransports'][routing.EDGE_TRANSPORT] == {
        'serverName': 'swarm-edge.internal.thinkheads.ai', 'rootCAs': [ROOT]}
    assert dyn['tls']['stores']['default']['defaultCertificate'] == {'certFile': '/c.crt', 'keyFile': '/c.key'}


def test_traefik_http_backend_and_no_resolver(reference):
    plan = routing.route_plan(guests_of(reference), reference.stacks)
    dyn = routing.traefik_dynamic_config(plan, ROOT, cert_resolver='', edge_port=9443)
    http = dyn['http']
    assert 'serversTransport' not in http['services']['guest-granite-embedding']['loadBalancer']
    assert http['routers']['guest-granite-embedding']['tls'] == {}
    assert http['services']['stack-qdrant']['loadBalancer']['servers'] == [{'url': 'https://10.0.0.111:9443'}]


def test_no_edges_no_stack_services(lab):
    guests = [g for g in guests_of(lab) if g['id'] != 1001]
    plan = routing.route_plan(guests, lab.stacks)
    dyn = routing.traefik_dynamic_config(plan, ROOT)
    # A router without its service would be an error in Traefik: the router goes too.
    assert 'stack-qdrant' not in dyn['http'].get('services', {})
    assert 'stack-qdrant' not in dyn['http'].get('routers', {})


def test_empty_plan_is_valid_yaml():
    assert routing.traefik_dynamic_config(routing.route_plan([], {})) == {'http': {}}


# --------------------------------------------------------------------------- gateway, DNS

def test_gateway_hostnames(lab, reference):
    plan = routing.route_plan(guests_of(lab), lab.stacks)
    assert routing.gateway_hostnames(plan, lab.domain) == [
        'app.internal.thinkheads.ai', 'granite-embedding.internal.thinkheads.ai', 'portainer.internal.thinkheads.ai',
        'qdrant.internal.thinkheads.ai']
    assert routing.gateway_hostnames(plan, 'example.org', extra=['gw.example.org']) == ['gw.example.org']
    plan = routing.route_plan(guests_of(reference), reference.stacks)
    assert 'granite-embedding.internal.thinkheads.ai' in routing.gateway_hostnames(plan, reference.domain)


def test_dns_records_lab(lab):
    guests = guests_of(lab)
    plan = routing.route_plan(guests, lab.stacks)
    records = routing.dns_records(guests, plan, lab.domain, ca_name='ca.internal.thinkheads.ai')
    table = dict((r['name'], r['ip']) for r in records)
    assert table['nginx-gateway.internal.thinkheads.ai'] == '10.77.0.153'
    assert table['traefik.internal.thinkheads.ai'] == '10.77.0.12'
    assert table['swarm-worker.internal.thinkheads.ai'] == '10.77.0.102'
    assert table['ca.internal.thinkheads.ai'] == '10.77.0.10'
    for routed in ('app', 'granite-embedding', 'portainer', 'qdrant'):
        assert table['%s.internal.thinkheads.ai' % routed] == '10.77.0.153'
    assert 'template-base.internal.thinkheads.ai' not in table  # templates do not run
    assert [r['name'] for r in records] == sorted(table)
    lines = routing.hosts_file_lines(records)
    assert lines[0] == '10.77.0.10 step-ca.internal.thinkheads.ai ca.internal.thinkheads.ai'
    assert lines[-1] == ('10.77.0.153 nginx-gateway.internal.thinkheads.ai app.internal.thinkheads.ai '
                         'granite-embedding.internal.thinkheads.ai portainer.internal.thinkheads.ai '
                         'qdrant.internal.thinkheads.ai')


def test_dns_routed_name_wins_over_guest_name(reference):
    guests = guests_of(reference)
    plan = routing.route_plan(guests, reference.stacks)
    records = routing.dns_records(guests, plan, reference.domain, ca_name='ca.internal.thinkheads.ai')
    table = dict((r['name'], r) for r in records)
    # 801 is named granite-embedding and publishes that name: clients reach it through the gateway.
    assert table['granite-embedding.internal.thinkheads.ai']['ip'] == '10.0.0.153'
    assert table['portainer.internal.thinkheads.ai']['ip'] == '10.0.0.153'
    # The CA's name points at the CA even though 103 publishes "ca" through Traefik.
    assert table['ca.internal.thinkheads.ai']['ip'] == '10.0.0.10'


def test_dns_bad_record(lab):
    guests = guests_of(lab)
    with pytest.raises(routing.RoutingError, match='not an IPv4'):
        routing.dns_records(guests, None, lab.domain, extra=[{'hostname': 'x', 'ip': '10.0.0.300'}])


# --------------------------------------------------------------------------- firewall

def test_firewall_merges_stack_rules(lab):
    guests = dict((g['id'], g) for g in guests_of(lab))
    worker = routing.guest_firewall(guests[1002], lab.stacks)
    own = lab.guests[1002]['firewall']['rules']
    assert worker['rules'][:len(own)] == own
    extra = worker['rules'][len(own):]
    assert [(r['dport'], r['source']) for r in extra] == [('6333', '10.77.0.12'), ('8000', '10.77.0.12')]
    assert worker['enabled'] is True and worker['policy_in'] == 'DROP' and worker['policy_out'] == 'ACCEPT'
    # A guest without stacks keeps its own rules only.
    assert routing.guest_firewall(guests[101], lab.stacks)['rules'] == lab.guests[101]['firewall']['rules']


def test_firewall_no_duplicates_and_edge_rule(lab):
    guests = dict((g['id'], g) for g in guests_of(lab))
    stacks = copy.deepcopy(lab.stacks)
    # The same rule twice in two stacks (different comment): added once.
    rule = dict(stacks['qdrant_service']['firewall_rules'][0], comment='again')
    stacks['thinkheads_ai_app']['firewall_rules'].append(rule)
    worker = routing.guest_firewall(guests[1002], stacks)
    assert sum(1 for r in worker['rules'] if r.get('dport') == '6333') == 1
    plan = routing.route_plan(list(guests.values()), lab.stacks)
    manager = routing.guest_firewall(guests[1001], lab.stacks, plan, edge_port=8443)
    assert manager['rules'][-1] == {'type': 'in', 'action': 'ACCEPT', 'enabled': True, 'proto': 'tcp',
                                    'dport': '8443', 'source': '10.77.0.12',
                                    'comment': 'Swarm edge (routed stacks) from Traefik'}
    assert routing.guest_firewall(guests[1001], lab.stacks, plan)['rules'] == lab.guests[1001]['firewall']['rules']
    assert routing.guest_firewall(guests[1002], lab.stacks, plan, 8443)['rules'][-1]['dport'] == '8000'


def test_firewall_other_environment(lab):
    guests = dict((g['id'], g) for g in guests_of(lab))
    stacks = copy.deepcopy(lab.stacks)
    testing = copy.deepcopy(load(LAB, environment='testing').stacks['qdrant_service'])
    testing['firewall_rules'][0]['dport'] = '7333'
    stacks['qdrant_service']['other_environments'] = {'testing': testing}
    guests[1002]['docker_stacks'] = [{'name': 'qdrant_service', 'environment': 'testing'}]
    rules = routing.guest_firewall(guests[1002], stacks)['rules']
    assert [r['dport'] for r in rules if r.get('source') == '10.77.0.12'] == ['7333']


# --------------------------------------------------------------------------- CA URL

@pytest.mark.parametrize('host, port, url', [
    ('10.0.0.10', None, 'https://10.0.0.10:9000'),
    ('ca.internal.thinkheads.ai', None, 'https://ca.internal.thinkheads.ai:9000'),
    (' ca.test ', '9443', 'https://ca.test:9443'),
    ('fd00::10', None, 'https://[fd00::10]:9000'),
])
def test_ca_url(host, port, url):
    assert routing.ca_url(host, port) == url


def test_ca_url_needs_a_host():
    from ansible.errors import AnsibleFilterError
    with pytest.raises(routing.RoutingError, match='needs a host'):
        routing.ca_url('')
    with pytest.raises(AnsibleFilterError, match='ca_url: the CA URL needs a host'):
        routing_filters.FilterModule().filters()['ca_url'](None)


# --------------------------------------------------------------------------- filters

def test_filters_wrap_errors(lab):
    from ansible.errors import AnsibleFilterError
    filters = routing_filters.FilterModule().filters()
    assert set(filters) == {'phoenix_routes', 'traefik_dynamic_config', 'gateway_hostnames', 'dns_records',
                            'dns_hosts_lines', 'guest_firewall', 'ca_url', 'platform_plans'}
    plan = filters['phoenix_routes'](guests_of(lab), lab.stacks)
    assert filters['gateway_hostnames'](plan, lab.domain)
    with pytest.raises(AnsibleFilterError, match='phoenix_routes: the gateway'):
        filters['phoenix_routes'](guests_of(lab), lab.stacks, gateway='10.9.9.9')
    with pytest.raises(AnsibleFilterError, match='not the Phoenix model'):
        filters['guest_firewall']({'docker_stacks': [{}]}, {'x': {}})
