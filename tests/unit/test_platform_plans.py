# -*- coding: utf-8 -*-
"""The derived plans computed once (module_utils/platform_plans.py): identical to what the filters give when the
plays derive them (playbooks/tasks/guest_firewall.yml, sync.yml, the dns/traefik/nginx_gateway role defaults)."""

import copy
import json
import os

import pytest

from phoenix_testlib import REFERENCE, REPO

from ansible_collections.thinkheads.phoenix.plugins.filter import routing as filters
from ansible_collections.thinkheads.phoenix.plugins.module_utils import platform_plans as plans
from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.model import load_config

TREES = {'project': (REPO, 'error'), 'lab': (os.path.join(REPO, 'lab'), 'error'), 'reference': (REFERENCE, 'warning')}


def _load(name):
    root, rules = TREES[name]
    config = load_config(os.path.join(root, 'etc'), os.path.join(root, 'stacks'), platform_rules=rules)
    assert not config.report.errors, config.report.text()
    return config


def _roundtrip(value):
    return json.loads(json.dumps(value))


def _played(config):
    """What the plays derived with the filters, from the values they read: every phoenix_guest of the phoenix group
    (creation order, JSON round trip), phoenix_stacks, phoenix_hypervisor, phoenix_domain."""
    guests = _roundtrip(config.ordered_guests())
    stacks = _roundtrip(config.stacks)
    hyp = _roundtrip(config.hypervisor)
    domain = config.domain or ''
    # sync.yml, tasks/guest_firewall.yml and the role defaults: guests | phoenix_routes(stacks=phoenix_stacks)
    routes = filters.phoenix_routes(guests, stacks=stacks)
    # roles/dns/defaults/main.yml
    ca_name = (hyp.get('step_ca') or {}).get('dns_name') or ''
    records = filters.dns_records(guests, plan=routes, domain=domain, ca_name=ca_name or None, extra=[])
    # tasks/guest_firewall.yml, per host
    firewalls = dict((str(g['id']), filters.guest_firewall(g, stacks=stacks, plan=routes, edge_port=8443))
                     for g in guests)
    # the first host of feature_step_ca / swarm_managers (creation order), as create.yml and sync.yml read them
    ca = [g for g in guests if 'step_ca' in g['features']][:1]
    manager = [g for g in guests if g.get('swarm_role') == 'manager'][:1]
    return {'routes': routes, 'dns_records': records, 'firewalls': firewalls, 'ca': ca, 'manager': manager,
            'provisioner': (hyp.get('step_ca') or {}).get('provisioner_name') or 'services'}


@pytest.mark.parametrize('tree', sorted(TREES))
def test_the_plans_are_what_the_filters_gave(tree):
    config = _load(tree)
    played = _played(config)
    computed = plans.platform_plans(config.ordered_guests(), config.stacks, config.hypervisor, config.domain)
    # the inventory hands the plans to plays as JSON-shaped data
    computed = _roundtrip(computed)
    assert computed['routes'] == _roundtrip(played['routes'])
    assert computed['dns_records'] == _roundtrip(played['dns_records'])
    assert computed['firewalls'] == _roundtrip(played['firewalls'])
    assert len(computed['routes']['routes']) >= 2 and len(computed['dns_records']) >= 5, tree
    endpoints = computed['endpoints']
    ca = played['ca'][0]
    assert endpoints['ca_guest'] == str(ca['id'])
    assert endpoints['ca_url'] == filters.ca_url(ca['network']['ip'])
    assert endpoints['ca_url'].endswith(':9000') and endpoints['ca_url'].startswith('https://')
    assert endpoints['ca_provisioner'] == played['provisioner']
    assert endpoints['ca_name'] == (config.hypervisor.get('step_ca') or {}).get('dns_name', '')
    manager = played['manager'][0]
    assert endpoints['portainer_guest'] == str(manager['id'])
    assert endpoints['portainer_url'] == 'https://%s:9443' % manager['network']['ip']
    routes = played['routes']
    assert endpoints['traefik_ip'] == routes['traefik']['ip'] and endpoints['traefik_guest'] == str(routes['traefik']['id'])
    assert endpoints['gateway_ip'] == routes['gateway']['ip'] and endpoints['gateway_guest'] == str(routes['gateway']['id'])


def test_the_firewalls_carry_the_stack_rules_and_the_edge_rule():
    config = _load('project')
    computed = plans.platform_plans(config.ordered_guests(), config.stacks, config.hypervisor, config.domain)
    assert sorted(computed['firewalls']) == sorted(str(g['id']) for g in config.ordered_guests())
    manager = computed['endpoints']['portainer_guest']
    edge = [r for r in computed['firewalls'][manager]['rules'] if r.get('dport') == '8443']
    assert edge and edge[0]['source'] == computed['endpoints']['traefik_ip'], computed['firewalls'][manager]
    stack_host = [g for g in config.ordered_guests() if g['docker_stacks']][0]
    own = (stack_host.get('firewall') or {}).get('rules') or []
    assert len(computed['firewalls'][str(stack_host['id'])]['rules']) > len(own)


def test_the_plans_do_not_depend_on_the_input_order_and_leave_it_alone():
    config = _load('lab')
    guests = config.ordered_guests()
    before = copy.deepcopy(guests)
    forward = plans.platform_plans(guests, config.stacks, config.hypervisor, config.domain)
    assert guests == before
    backward = plans.platform_plans(list(reversed(guests)), config.stacks, config.hypervisor, config.domain)
    assert forward['routes'] == backward['routes'] and forward['dns_records'] == backward['dns_records']
    assert forward['firewalls'] == backward['firewalls']


def test_a_platform_without_ca_or_manager_gets_empty_endpoints():
    guests = [{'id': 200, 'hostname': 'web', 'fqdn': 'web.example.test', 'features': [], 'network': {'ip': '10.0.0.5'},
               'docker_stacks': [], 'traefik_service': None, 'swarm_role': None}]
    result = plans.platform_plans(guests, {}, {'domain': 'example.test'}, 'example.test')
    assert result['endpoints'] == {
        'ca_guest': '', 'ca_host': '', 'ca_url': '', 'ca_name': '', 'ca_provisioner': 'services',
        'portainer_guest': '', 'portainer_url': '', 'traefik_guest': '', 'traefik_ip': '', 'gateway_guest': '',
        'gateway_ip': ''}
    assert result['routes']['routes'] == []
    assert result['dns_records'] == [{'name': 'web.example.test', 'ip': '10.0.0.5', 'source': 'guest 200',
                                      'primary': True}]
    assert result['firewalls'] == {'200': {'enabled': False, 'policy_in': None, 'policy_out': None, 'rules': []}}


def test_the_filter_gives_the_same_plans():
    config = _load('project')
    guests = _roundtrip(config.ordered_guests())
    assert _roundtrip(filters.platform_plans(guests, stacks=config.stacks, hypervisor=config.hypervisor,
                                             domain=config.domain)) == \
        _roundtrip(plans.platform_plans(config.ordered_guests(), config.stacks, config.hypervisor, config.domain))
