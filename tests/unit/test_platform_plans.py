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


# --------------------------------------------------------------------------------------------------------------
# what plays read: the published plans (or those the boilerplate binds) against the filters as plays ran them


SEE_THE_PLANS = '''
- name: The derived plans each guest reads, and what the filters give from the same inputs
  hosts: phoenix
  gather_facts: false
  vars_files:
    - {roles}/dns/defaults/main.yml
    - {roles}/traefik/defaults/main.yml
    - {roles}/nginx_gateway/defaults/main.yml
  vars:
    all_guests: "{{{{ groups['phoenix'] | map('extract', hostvars, 'phoenix_guest') | list }}}}"
    filter_routes: "{{{{ all_guests | thinkheads.phoenix.phoenix_routes(stacks=phoenix_stacks) }}}}"
  tasks:
    - name: Write them
      ansible.builtin.copy:
        content: >-
          {{{{ {{'routes': phoenix_routes, 'records': phoenix_dns_records, 'endpoints': phoenix_endpoints,
                'firewall': phoenix_guest_firewall_plan,
                'roles': {{'dns': dns_records, 'traefik': traefik_routes, 'gateway': nginx_gateway_routes}},
                'filters': {{'routes': filter_routes,
                  'records': all_guests | thinkheads.phoenix.dns_records(plan=filter_routes, domain=phoenix_domain
                    | default(''), ca_name=phoenix_hypervisor.step_ca.dns_name | default('') or none, extra=[]),
                  'firewall': phoenix_guest | thinkheads.phoenix.guest_firewall(stacks=phoenix_stacks,
                    plan=filter_routes, edge_port=8443),
                  'ca_url': hostvars[groups['feature_step_ca'][0]].ansible_host | thinkheads.phoenix.ca_url}}}}
             | to_json }}}}
        dest: "{{{{ out }}}}/{{{{ inventory_hostname }}}}.json"
        mode: '0600'
      delegate_to: localhost
'''


def _ansible(args):
    import subprocess
    import sys
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'), ANSIBLE_NOCOLOR='1')
    binary = os.path.join(os.path.dirname(sys.executable), args[0])
    return subprocess.run([binary] + args[1:] + ['-e', 'ansible_python_interpreter=%s' % sys.executable], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300, check=False)


def _check_seen(out, hosts):
    for host in hosts:
        seen = json.loads((out / ('%s.json' % host)).read_text())
        filtered = seen['filters']
        assert seen['routes'] == filtered['routes'], host
        assert seen['records'] == filtered['records'], host
        assert seen['firewall'] == filtered['firewall'], host
        assert seen['endpoints']['ca_url'] == filtered['ca_url'], host
        # the roles' defaults bind the published values
        assert seen['roles'] == {'dns': filtered['records'], 'traefik': filtered['routes'],
                                 'gateway': filtered['routes']}, host
        assert len(seen['routes']['routes']) >= 2 and seen['records'], host


def _play(tmp_path):
    play = tmp_path / 'see.yml'
    play.write_text(SEE_THE_PLANS.format(roles=os.path.join(REPO, 'roles')))
    out = tmp_path / 'out'
    out.mkdir()
    return play, out


def test_plays_read_the_published_plans(tmp_path):
    play, out = _play(tmp_path)
    result = _ansible(['ansible-playbook', 'playbooks/boilerplate.yml', str(play), '-l', '801,1002,103',
                       '-e', 'out=%s' % out])
    text = result.stdout + result.stderr
    assert result.returncode == 0, text
    # published by the inventory: the boilerplate derives nothing
    assert 'skipping: [' in text.split('TASK [Derive the platform plans once')[1].split('TASK [')[0], text
    _check_seen(out, ['801', '1002', '103'])


def test_a_static_inventory_gets_the_plans_bound(tmp_path):
    import yaml
    # ansible-inventory marks inventory strings as never templated ({'__ansible_unsafe': text}): unwrap them
    listing = json.loads(_ansible(['ansible-inventory', '--list']).stdout,
                         object_hook=lambda obj: obj['__ansible_unsafe'] if set(obj) == {'__ansible_unsafe'} else obj)
    hostvars = listing['_meta']['hostvars']
    hyp = hostvars['phoenix-hypervisor']
    guests = dict((name, {'phoenix_guest': json.loads(hostvars[name]['phoenix_guest_json']),
                          'ansible_host': hostvars[name].get('ansible_host'), 'ansible_connection': 'local'})
                  for name in hostvars if 'phoenix_guest_json' in hostvars[name])
    features = {}
    for name, data in guests.items():
        for feature in data['phoenix_guest']['features']:
            features.setdefault('feature_%s' % feature, {'hosts': {}})['hosts'][name] = None
    order = [str(i) for i in hyp['phoenix_guest_order']]
    inventory = tmp_path / 'static.yml'
    children = {'phoenix': {'hosts': dict((name, guests[name]) for name in order)},
                'hypervisor': {'hosts': {'phoenix-hypervisor': dict(
                    (k, hyp[k]) for k in ('phoenix_hypervisor', 'phoenix_stacks', 'phoenix_certificates'))}}}
    children.update(dict((group, {'hosts': dict((h, None) for h in order if h in members['hosts'])})
                         for group, members in features.items()))
    inventory.write_text(yaml.safe_dump({'all': {'vars': {'phoenix_domain': hyp['phoenix_hypervisor']['domain']},
                                                 'children': children}}, sort_keys=False))
    play, out = _play(tmp_path)
    result = _ansible(['ansible-playbook', '-i', str(inventory), 'playbooks/boilerplate.yml', str(play),
                       '-e', 'out=%s' % out])
    text = result.stdout + result.stderr
    assert result.returncode == 0, text
    derive = text.split('TASK [Derive the platform plans once')[1].split('TASK [')[0]
    bind = text.split('TASK [Bind the platform plans on every host]')[1].split('TASK [')[0]
    assert 'ok: [' in derive and 'ok: [' in bind and 'phoenix-hypervisor' in bind, text
    _check_seen(out, ['801', '1002', '103'])


ROLE_DEFAULTS_ALONE = '''
- name: The roles' defaults without the Phoenix inventory (as the molecule scenarios run them)
  hosts: localhost
  gather_facts: false
  vars_files:
    - {roles}/dns/defaults/main.yml
    - {roles}/traefik/defaults/main.yml
    - {roles}/nginx_gateway/defaults/main.yml
    # a later vars file wins, as the scenarios' variables win over the roles' defaults
    - {given}
  tasks:
    - name: Write them
      ansible.builtin.copy:
        content: "{{{{ {{'dns': dns_records, 'traefik': traefik_routes, 'gateway': nginx_gateway_routes}} | to_json }}}}"
        dest: "{{{{ out }}}}/alone.json"
        mode: '0600'
'''


def test_the_role_defaults_still_derive_the_plans_without_the_inventory(tmp_path):
    config = _load('lab')
    guests = _roundtrip(config.ordered_guests())
    stacks = _roundtrip(config.stacks)
    given = tmp_path / 'given.json'
    given.write_text(json.dumps({
        'dns_guests': guests, 'dns_stacks': stacks, 'dns_hypervisor': {'step_ca': {'dns_name': 'ca.example.test'}},
        'dns_domain': 'example.test', 'traefik_guests': guests, 'traefik_stacks': stacks,
        'nginx_gateway_guests': guests, 'nginx_gateway_stacks': stacks}))
    play = tmp_path / 'alone.yml'
    play.write_text(ROLE_DEFAULTS_ALONE.format(roles=os.path.join(REPO, 'roles'), given=given))
    out = tmp_path / 'out'
    out.mkdir()
    result = _ansible(['ansible-playbook', '-i', 'localhost,', '-c', 'local', str(play), '-e', 'out=%s' % out])
    assert result.returncode == 0, result.stdout + result.stderr
    seen = json.loads((out / 'alone.json').read_text())
    routes = _roundtrip(filters.phoenix_routes(guests, stacks=stacks))
    assert seen['traefik'] == routes and seen['gateway'] == routes
    assert seen['dns'] == _roundtrip(filters.dns_records(guests, plan=routes, domain='example.test',
                                                         ca_name='ca.example.test', extra=[]))
    assert any(r['name'] == 'ca.example.test' for r in seen['dns'])


@pytest.mark.parametrize('tree', ['project', 'lab'])
def test_the_health_checks_from_the_published_plans_are_the_ones_derived(tree):
    """phoenix_health given phoenix_routes and phoenix_dns_records (health.yml) plans the same checks as when it
    derives them from the guests and stacks."""
    from ansible_collections.thinkheads.phoenix.plugins.module_utils import health
    config = _load(tree)
    guests, stacks = _roundtrip(config.ordered_guests()), _roundtrip(config.stacks)
    hyp = _roundtrip(config.hypervisor)
    published = _roundtrip(plans.platform_plans(config.ordered_guests(), config.stacks, config.hypervisor,
                                                config.domain))

    def rows(checks):
        return [tuple(c.get(k) for k in ('section', 'check', 'target', 'status', 'detail')) for c in checks]

    derived = rows(health.plan_checks(guests, hyp, stacks, config.domain, {}))
    given = rows(health.plan_checks(guests, hyp, stacks, config.domain, {}, plan=published['routes'],
                                    records=published['dns_records']))
    assert given == derived
    assert any(r[0] == 'dns' for r in given) and any(r[0] == 'gateway' for r in given), given
