# -*- coding: utf-8 -*-
"""The platform plan's summarising logic (plugins/plugin_utils/plan.py): one task result -> rows of host, kind,
change, before -> after; and the table they print as."""

import os

from phoenix_testlib import REPO  # also puts the collection on sys.path

from ansible_collections.thinkheads.phoenix.plugins.plugin_utils.plan import kind_of, plan_rows, render_table


def rows(action, result, role=None, label='', host='103'):
    return [(r['kind'], r['change'], r['before'], r['after'])
            for r in plan_rows(host, action, role, 'a task', dict(result, changed=True), label)]


def test_kinds_by_module_then_by_role():
    assert os.path.isfile(os.path.join(REPO, 'plugins', 'callback', 'plan.py'))
    assert kind_of('thinkheads.phoenix.proxmox_guest') == 'guest'
    assert kind_of('thinkheads.phoenix.proxmox_lxc_raw') == 'guest'
    assert kind_of('thinkheads.phoenix.proxmox_firewall', 'thinkheads.phoenix.traefik') == 'firewall'
    assert kind_of('thinkheads.phoenix.portainer_stack') == 'stack'
    assert kind_of('thinkheads.phoenix.step_ca_certificate', 'step_certificates') == 'certificate'
    assert kind_of('ansible.builtin.copy', 'thinkheads.phoenix.dns') == 'dns'
    assert kind_of('ansible.builtin.template', 'traefik') == 'route'
    assert kind_of('ansible.builtin.template', 'swarm_edge') == 'route'
    assert kind_of('ansible.builtin.template', 'nginx_gateway') == 'gateway'
    assert kind_of('ansible.builtin.template', 'somerole') == 'somerole'
    assert kind_of('ansible.builtin.command') == 'command'


def test_guest_config_keys():
    result = {'diff': {'before': {'memory': 1024, 'cores': 2, 'onboot': 1}, 'after': {'memory': 2048, 'cores': 2},
                       'before_header': 'lxc 103', 'after_header': 'lxc 103'}, 'changes': {'memory': 2048}}
    assert rows('thinkheads.phoenix.proxmox_guest', result) == [
        ('guest', 'memory', '1024', '2048'), ('guest', 'onboot', '1', '-')]


def test_a_new_guest_and_a_power_change():
    created = rows('proxmox_guest', {'created': True, 'vmid': 801, 'diff': {'before': {}, 'after': {'memory': 512}}})
    assert created == [('guest', 'guest 801', 'absent', 'created'), ('guest', 'memory', '-', '512')]
    started = rows('proxmox_guest', {'power': 'started', 'diff': {'before': {'memory': 1}, 'after': {'memory': 1}}})
    assert started == [('guest', 'power', '-', 'started')]
    # without --diff the module's `changes` are used
    assert rows('proxmox_guest', {'changes': {'cores': 4}}) == [('guest', 'cores', '?', '4')]


def test_firewall_rules_and_options():
    before = {'options': {'enable': '1', 'policy_in': 'ACCEPT'},
              'rules': ['in ACCEPT proto=tcp dport=22 # SSH', 'in ACCEPT proto=tcp dport=9000 # API', 'in DROP']}
    after = {'options': {'enable': '1', 'policy_in': 'DROP'},
             'rules': ['in ACCEPT proto=tcp dport=22 # SSH', 'in ACCEPT proto=tcp dport=9443 # API', 'in DROP',
                       'out ACCEPT']}
    assert rows('proxmox_firewall', {'diff': {'before': before, 'after': after}}) == [
        ('firewall', 'options.policy_in', 'ACCEPT', 'DROP'),
        ('firewall', 'rules[2]', 'in ACCEPT proto=tcp dport=9000 # API', 'in ACCEPT proto=tcp dport=9443 # API'),
        ('firewall', 'rules[4]', '-', 'out ACCEPT'),
    ]
    removed = rows('proxmox_firewall', {'diff': {'before': {'rules': ['a', 'b']}, 'after': {'rules': ['b']}}})
    assert removed == [('firewall', 'rules[1]', 'a', '-')]


def test_stack_compose_and_env_diffs():
    result = {'diff': [{'before': 'services:\n  web:\n    image: nginx:1.26\n',
                        'after': 'services:\n  web:\n    image: nginx:1.27\n', 'before_header': 'qdrant compose'},
                       {'before': 'A=1\n', 'after': 'A=1\nB=2\n', 'before_header': 'qdrant env'}]}
    assert rows('thinkheads.phoenix.portainer_stack', result, label='qdrant (production)', host='1002') == [
        ('stack', 'qdrant compose[3]', '    image: nginx:1.26', '    image: nginx:1.27'),
        ('stack', 'qdrant env[2]', '-', 'B=2'),
    ]


def test_stack_rows_from_portainer_stacks_own_diff():
    """portainer_stack's diff as the module writes it (headers 'stack NAME compose|env (...)', the env as YAML with
    secrets masked): a compose line by its number, an env value by its variable name."""
    compose = 'services:\n  qdrant:\n    image: qdrant/qdrant:%s\n'
    env = "QDRANT__LOG_LEVEL: %s\nQDRANT__SERVICE__API_KEY: '********(hmac:%s)'\nTELEMETRY: 'true'\n"
    result = {'diff': [
        {'before': compose % 'v1.13.4', 'after': compose % 'v1.13.5',
         'before_header': 'stack qdrant_service compose (deployed)', 'after_header': 'stack qdrant_service compose (wanted)'},
        {'before': env % ('INFO', '1a2b'), 'after': env % ('DEBUG', '1a2b') + 'NEW: x\n',
         'before_header': 'stack qdrant_service env (deployed, secrets masked)',
         'after_header': 'stack qdrant_service env (wanted, secrets masked)'}]}
    assert rows('thinkheads.phoenix.portainer_stack', result, label='qdrant_service (production)', host='1001') == [
        ('stack', 'qdrant_service compose[3]', '    image: qdrant/qdrant:v1.13.4', '    image: qdrant/qdrant:v1.13.5'),
        ('stack', 'qdrant_service env.NEW', '-', 'x'),
        ('stack', 'qdrant_service env.QDRANT__LOG_LEVEL', 'INFO', 'DEBUG'),
    ]
    # a rotated secret: the masks differ, the value never shows
    rotated = {'diff': [dict(result['diff'][1], before=env % ('INFO', '1a2b'), after=env % ('INFO', '9f8e'))]}
    assert rows('portainer_stack', rotated) == [
        ('stack', 'qdrant_service env.QDRANT__SERVICE__API_KEY', '********(hmac:1a2b)', '********(hmac:9f8e)')]
    # a new stack: every variable from nothing; a removed one: every variable to nothing
    created = {'diff': [dict(result['diff'][1], before='', after='A: 1\n')]}
    assert rows('portainer_stack', created) == [('stack', 'qdrant_service env.A', '-', '1')]
    removed = {'diff': [dict(result['diff'][1], before='A: 1\n', after='')]}
    assert rows('portainer_stack', removed) == [('stack', 'qdrant_service env.A', '1', '-')]
    # an env text that is not a mapping is shown line by line
    odd = {'diff': [dict(result['diff'][1], before='- a\n', after='- b\n')]}
    assert rows('portainer_stack', odd) == [('stack', 'qdrant_service env[1]', '- a', '- b')]
    # the table names the stack's change in full
    line = render_table(plan_rows('1001', 'portainer_stack', None, 't', dict(result, changed=True))).splitlines()[4]
    assert line.split(' | ')[2].strip() == 'qdrant_service env.NEW'


def test_role_file_diffs_dns_and_routes():
    dns = {'diff': {'before': '10.0.0.2 a.home.arpa\n', 'after': '10.0.0.2 a.home.arpa\n10.0.0.3 b.home.arpa\n',
                    'after_header': '/etc/phoenix/hosts'}}
    assert rows('ansible.builtin.copy', dns, role='thinkheads.phoenix.dns', host='phoenix-hypervisor') == [
        ('dns', '/etc/phoenix/hosts[2]', '-', '10.0.0.3 b.home.arpa')]
    long_text = {'diff': {'before': '', 'after': '\n'.join('line %d' % i for i in range(20)), 'after_header': 'f'}}
    listed = rows('ansible.builtin.template', long_text, role='traefik')
    assert len(listed) == 9 and listed[-1][1] == 'f (+12 more lines)' and listed[0][0] == 'route'


def test_no_diff_no_log_and_unchanged():
    assert rows('ansible.builtin.systemd_service', {}, role='dns') == [('dns', 'a task', '', 'changed (no diff)')]
    assert rows('ansible.builtin.copy', {'_ansible_no_log': True, 'diff': {'before': 's', 'after': 't'}}) == [
        ('copy', 'a task', 'hidden (no_log)', 'hidden (no_log)')]
    assert plan_rows('h', 'proxmox_guest', None, 't', {'changed': False, 'diff': {'before': {'a': 1}}}) == []
    assert plan_rows('h', 'proxmox_guest', None, 't', {'changed': True, 'skipped': True}) == []


def test_long_changed_lines_show_what_differs():
    old = 'in ACCEPT proto=tcp source=192.168.1.0/24 dport=9000 # Step-CA API (certificates, ACME)'
    new = 'in ACCEPT proto=tcp source=192.168.1.0/24 dport=9443 # Step-CA API (certificates, ACME)'
    assert rows('proxmox_firewall', {'diff': {'before': {'rules': [old]}, 'after': {'rules': [new]}}}) == [
        ('firewall', 'rules[1]', 'in ACCEPT ... dport=9000 # Step-CA API (certificates, ACME)',
         'in ACCEPT ... dport=9443 # Step-CA API (certificates, ACME)')]


def test_the_same_change_from_two_tasks_is_one_row():
    row = dict(host='103', kind='guest', change='memory', before='1024', after='2048')
    assert render_table([row, dict(row)]).splitlines()[0] == 'PLAN: 1 change on 1 host (check mode, nothing was written)'


def test_the_table():
    table = render_table([dict(host='103', kind='guest', change='memory', before='1024', after='2048'),
                          dict(host='103', kind='firewall', change='rules[3]', before='in ACCEPT ' + 'x' * 60,
                               after='-')])
    lines = table.splitlines()
    assert lines[0] == 'PLAN: 2 changes on 1 host (check mode, nothing was written)'
    assert lines[1].split(' | ') == ['HOST', 'KIND    ', 'CHANGE  ', 'BEFORE' + ' ' * 42, 'AFTER']
    assert lines[3].split(' | ')[:4] == ['103 ', 'guest   ', 'memory  ', '1024' + ' ' * 44]
    assert lines[4].split(' | ')[3] == 'in ACCEPT ' + 'x' * 35 + '...'
    assert lines[-1] == 'by kind: firewall 1, guest 1'
    assert render_table([]) == 'PLAN: no changes (check mode, nothing was written)'
