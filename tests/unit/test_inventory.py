# -*- coding: utf-8 -*-
"""The thinkheads.phoenix.phoenix inventory plugin, driven through the real ansible CLIs."""

import json
import os
import subprocess
import sys

import pytest

from phoenix_testlib import REPO

BIN = os.path.dirname(sys.executable)
GUESTS = ['101', '102', '103', '801', '1001', '1002']


def run(args, cwd=REPO, env=None):
    full_env = dict(os.environ)
    full_env['ANSIBLE_CONFIG'] = os.path.join(REPO, 'ansible.cfg')
    full_env['ANSIBLE_NOCOLOR'] = '1'
    full_env.update(env or {})
    return subprocess.run([os.path.join(BIN, args[0])] + args[1:], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=120, check=False)


def inventory_file(tmp_path, tree, name='test.phoenix.yml', **options):
    lines = ['plugin: thinkheads.phoenix.phoenix', 'config_dir: %s' % tree.etc, 'stacks_dir: %s' % tree.stacks]
    for key, value in options.items():
        lines.append('%s: %s' % (key, json.dumps(value)))
    path = tmp_path / name
    path.write_text('\n'.join(lines) + '\n')
    return str(path)


def _plain(obj):
    """ansible-inventory marks inventory strings as unsafe (never templated): unwrap the marker."""
    if set(obj) == {'__ansible_unsafe'}:
        return obj['__ansible_unsafe']
    return obj


def parse_listing(text):
    return json.loads(text, object_hook=_plain)


def listing(path):
    result = run(['ansible-inventory', '-i', path, '--list'])
    assert result.returncode == 0, result.stderr
    return parse_listing(result.stdout)


def hosts_of(data, group):
    return sorted(data.get(group, {}).get('hosts', []), key=int)


@pytest.fixture(scope='module')
def project_listing():
    result = run(['ansible-inventory', '--list'])
    assert result.returncode == 0, result.stderr
    return parse_listing(result.stdout)


def test_graph_of_the_project_inventory():
    result = run(['ansible-inventory', '--graph'])
    assert result.returncode == 0, result.stderr
    for host in GUESTS + ['phoenix-hypervisor']:
        assert '|--%s\n' % host in result.stdout
    for group in ('lxc', 'vm', 'templates', 'gpu', 'vllm', 'traefik_services', 'stack_hosts', 'swarm_managers',
                  'swarm_workers', 'portainer_primary', 'portainer_agent', 'feature_vllm', 'feature_docker',
                  'hypervisor'):
        assert '@%s:' % group in result.stdout, group


def test_groups(project_listing):
    data = project_listing
    assert set(GUESTS) <= set(hosts_of(data, 'phoenix'))
    assert {'101', '102', '103', '801'} <= set(hosts_of(data, 'lxc'))
    assert {'1001', '1002'} <= set(hosts_of(data, 'vm'))
    assert hosts_of(data, 'vllm') == ['801']
    assert '801' in hosts_of(data, 'gpu')
    assert hosts_of(data, 'swarm_managers') == ['1001']
    assert hosts_of(data, 'swarm_workers') == ['1002']
    assert hosts_of(data, 'portainer_primary') == ['1001']
    assert hosts_of(data, 'portainer_agent') == ['1002']
    assert hosts_of(data, 'stack_hosts') == ['1002']
    assert '801' in hosts_of(data, 'traefik_services')
    assert data['hypervisor']['hosts'] == ['phoenix-hypervisor']
    for template in hosts_of(data, 'templates'):
        assert template not in GUESTS


def test_hostvars(project_listing):
    hostvars = project_listing['_meta']['hostvars']
    guest = hostvars['801']
    assert guest['ansible_host'] == '10.0.0.141'
    # id, type and order are read from phoenix_guest: no separate host variables
    for name in ('phoenix_guest_id', 'phoenix_guest_type', 'phoenix_order'):
        assert name not in guest, name
    assert guest_of(project_listing, '801')['id'] == 801
    assert guest_of(project_listing, '801')['type'] == 'lxc'
    # the guest is listed once, as JSON text; phoenix_guest is the one template that decodes it (on the group)
    assert guest['phoenix_guest'] == '{{ phoenix_guest_json | ansible.builtin.from_json }}'
    assert guest_of(project_listing, '801')['gpus'] == [0]
    assert guest_of(project_listing, '801')['vllm_engine_config']['ModelConfig']['model'] == \
        'ibm-granite/granite-embedding-english-r2'
    assert hostvars['phoenix-hypervisor']['ansible_host'] == '10.0.0.13'
    order = dict((h, guest_of(project_listing, h)['order']) for h, v in hostvars.items() if 'phoenix_guest_json' in v)
    assert order['103'] < order['102'] < order['801']
    assert order['1001'] < order['1002']
    assert guest['phoenix_domain'] == 'internal.thinkheads.ai'
    # the platform facts are stored on the hypervisor only: every other host lists one short template per name
    for fact in ('phoenix_hypervisor', 'phoenix_stacks', 'phoenix_certificates'):
        assert guest[fact] == '{{ hostvars["phoenix-hypervisor"].%s }}' % fact, fact
    hyp = hostvars['phoenix-hypervisor']
    assert [str(i) for i in hyp['phoenix_guest_order']] == sorted(order, key=order.get)
    assert sorted(hyp['phoenix_stacks']) == ['qdrant_service', 'thinkheads_ai_app']
    assert hyp['phoenix_hypervisor']['domain'] == 'internal.thinkheads.ai'
    stacks = [s['name'] for s in guest_of(project_listing, '1002')['docker_stacks']]
    assert stacks == ['qdrant_service', 'thinkheads_ai_app']


def test_limit_selects_one_guest(tmp_path):
    play = tmp_path / 'play.yml'
    play.write_text('- hosts: all\n  gather_facts: false\n  tasks: []\n')
    result = run(['ansible-playbook', str(play), '--list-hosts', '-l', '801'])
    assert result.returncode == 0, result.stderr
    listed = [line.strip() for line in result.stdout.splitlines() if line.startswith('      ')]
    assert listed == ['801']


def test_reference_configs_list_every_guest(tmp_path, reference_tree):
    data = listing(inventory_file(tmp_path, reference_tree, name='x.phoenix.yml'))
    expected = ['101', '102', '103', '801', '802', '900', '901', '910', '911', '912', '914', '917', '1001', '1002',
                '9000']
    assert hosts_of(data, 'phoenix') == expected
    assert hosts_of(data, 'templates') == ['900', '901', '910', '911', '912', '9000']
    assert hosts_of(data, 'vllm') == ['801', '802', '910', '911', '912']


def test_duplicate_ip_aborts_with_both_guests_named(tmp_path, phoenix_tree):
    data = phoenix_tree.read('phoenix_lxc_configs.json')
    data['lxc_configs']['801']['network_config']['ip'] = '10.0.0.12/24'   # Traefik's address
    phoenix_tree.write('phoenix_lxc_configs.json', data)
    path = inventory_file(tmp_path, phoenix_tree)
    result = run(['ansible-inventory', '-i', path, '--list'])
    assert result.returncode != 0
    assert 'duplicate IP 10.0.0.12: used by guests 102, 801' in result.stderr
    assert 'phoenix_lxc_configs.json: /lxc_configs/801/network_config/ip' in result.stderr
    assert 'Traceback' not in result.stderr + result.stdout


def test_playbook_aborts_on_a_broken_inventory(tmp_path, phoenix_tree):
    data = phoenix_tree.read('phoenix_lxc_configs.json')
    data['lxc_configs']['801']['network_config']['ip'] = '10.0.0.12/24'
    phoenix_tree.write('phoenix_lxc_configs.json', data)
    path = inventory_file(tmp_path, phoenix_tree)
    play = tmp_path / 'play.yml'
    play.write_text('- hosts: all\n  gather_facts: false\n  tasks: []\n')
    result = run(['ansible-playbook', '-i', path, str(play)])
    assert result.returncode != 0
    assert 'duplicate IP 10.0.0.12' in result.stderr
    assert 'Traceback' not in result.stderr + result.stdout
    # The report is printed once (ansible-core repeats a failed source's exception: that only sums it up).
    out = result.stderr + result.stdout
    assert out.count('Phoenix configuration: 2 error(s)') == 1, out
    assert out.count('/lxc_configs/801/network_config/ip') == 1, out
    assert 'is invalid: 2 error(s), listed above' in out


def test_validate_playbook_passes_on_the_project_configs():
    result = run(['ansible-playbook', 'playbooks/validate.yml'])
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'Phoenix configuration: 0 error(s), 0 warning(s)' in result.stdout


def test_validate_playbook_reports_a_duplicate_ip(phoenix_tree):
    data = phoenix_tree.read('phoenix_lxc_configs.json')
    data['lxc_configs']['801']['network_config']['ip'] = '10.0.0.12/24'
    phoenix_tree.write('phoenix_lxc_configs.json', data)
    result = run(['ansible-playbook', '-i', 'localhost,', 'playbooks/validate.yml',
                  '-e', 'phoenix_validate_config_dir=%s' % phoenix_tree.etc,
                  '-e', 'phoenix_validate_stacks_dir=%s' % phoenix_tree.stacks])
    assert result.returncode != 0
    out = result.stdout + result.stderr
    assert 'duplicate IP 10.0.0.12: used by guests 102, 801' in out
    assert 'Traceback' not in out


def test_constructed_options(tmp_path, reference_tree):
    keyed = [{'key': 'phoenix_guest.portainer_role', 'prefix': 'role'}]
    path = inventory_file(tmp_path, reference_tree, keyed_groups=keyed,
                          compose={'phoenix_cores': 'phoenix_guest.cores'},
                          groups={'big_memory': 'phoenix_guest.memory_mb > 32000'})
    data = listing(path)
    assert hosts_of(data, 'role_primary') == ['1001']
    assert hosts_of(data, 'role_infrastructure') == ['101']
    assert hosts_of(data, 'big_memory') == ['801', '802', '910', '911', '912', '914', '917']
    assert data['_meta']['hostvars']['801']['phoenix_cores'] == 6


def test_platform_rules_option_turns_warnings_into_errors(tmp_path, reference_tree):
    result = run(['ansible-inventory', '-i', inventory_file(tmp_path, reference_tree, platform_rules='error'),
                  '--list'])
    assert result.returncode != 0
    assert 'stacks/qdrant_service/docker-compose.yml: /services/qdrant/ports' in result.stderr


# what playbooks/sync.yml renders a stack with: the one environment view, the inventory's platform_rules
RENDER_AS_SYNC = (
    "msg={{ phoenix_stacks.qdrant_service.compose | thinkheads.phoenix.render_stack('qdrant_service', "
    "stack=phoenix_stacks.qdrant_service, environment='production', platform_rules=phoenix_platform_rules, "
    "values=dict(names | zip(names))) }}")
NAMES = ("names={{ (phoenix_stacks.qdrant_service | thinkheads.phoenix.stack_environment('production')).variables "
         "| selectattr('value_from', 'defined') | map(attribute='value_from') | list }}")


def test_warning_mode_renders_the_stack_validation_accepted(tmp_path, reference_tree):
    """platform_rules: warning (docs/migration.md) accepts the reference's qdrant stack, which publishes a port, with
    a warning; rendering it as sync.yml does warns again instead of failing. The same switch at error fails there."""
    path = inventory_file(tmp_path, reference_tree, platform_rules='warning')
    base = ['ansible', 'phoenix-hypervisor', '-i', path, '-c', 'local', '-m', 'ansible.builtin.debug',
            '-e', 'ansible_python_interpreter=%s' % sys.executable, '-e', NAMES, '-a', RENDER_AS_SYNC]
    result = run(base)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert 'stack qdrant_service: stacks/qdrant_service/docker-compose.yml: service qdrant of stack qdrant_service ' \
           'uses "ports"' in ' '.join(out.split()), out
    assert 'traefik.swarm.network' in out
    failed = run(base + ['-e', 'phoenix_platform_rules=error'])
    assert failed.returncode != 0
    assert 'service qdrant of stack qdrant_service uses "ports"' in ' '.join((failed.stdout + failed.stderr).split())


def test_cache_is_used_until_a_config_file_changes(tmp_path, phoenix_tree):
    cache_dir = tmp_path / 'cache'
    path = inventory_file(tmp_path, phoenix_tree, cache=True, cache_plugin='ansible.builtin.jsonfile',
                          cache_connection=str(cache_dir))
    first = listing(path)
    assert any(cache_dir.iterdir())
    assert guest_of(first, '801')['cores'] != 3
    data = phoenix_tree.read('phoenix_lxc_configs.json')
    data['lxc_configs']['801']['cores'] = 3
    phoenix_tree.write('phoenix_lxc_configs.json', data)
    second = listing(path)
    assert guest_of(second, '801')['cores'] == 3


def test_file_name_must_mark_a_phoenix_inventory(tmp_path, phoenix_tree):
    path = inventory_file(tmp_path, phoenix_tree, name='hosts.yml')
    result = run(['ansible-inventory', '-i', path, '--list'])
    assert result.returncode != 0


def test_plugin_documentation():
    result = run(['ansible-doc', '-t', 'inventory', 'thinkheads.phoenix.phoenix'])
    assert result.returncode == 0, result.stderr
    assert 'config_dir' in result.stdout and 'platform_rules' in result.stdout


def test_node_groups_and_the_guests_node(tmp_path, phoenix_tree, project_listing):
    # without a cluster section or a guest's node: no node_<name> group, phoenix_guest.node is null
    assert not [g for g in project_listing if g.startswith('node_')]
    assert guest_of(project_listing, '801')['node'] is None
    # a cluster whose default node is pve1 (its storages shared, so clones may cross nodes); the GPU clone family
    # 900 -> 901 -> 801 and VM 1002 live on pve-2 (a name that is not a valid group name as it is)
    hyp = phoenix_tree.read('phoenix_hypervisor_config.json')
    hyp['cluster'] = {'node': 'pve1', 'nodes': {'pve1': {}, 'pve-2': {'gpus': [0]}},
                      'shared_storages': ['quickOS-lxc-disks', 'quickOS-vm-disks']}
    phoenix_tree.write('phoenix_hypervisor_config.json', hyp)
    lxc = phoenix_tree.read('phoenix_lxc_configs.json')
    for gid in ('900', '901', '801'):
        lxc['lxc_configs'][gid]['node'] = 'pve-2'
    phoenix_tree.write('phoenix_lxc_configs.json', lxc)
    vms = phoenix_tree.read('phoenix_vm_configs.json')
    for entry in vms['vms']:
        if entry['vmid'] == 1002:
            entry['node'] = 'pve-2'
    phoenix_tree.write('phoenix_vm_configs.json', vms)
    data = listing(inventory_file(tmp_path, phoenix_tree))
    every = hosts_of(data, 'phoenix')
    assert hosts_of(data, 'node_pve_2') == ['801', '900', '901', '1002']
    assert hosts_of(data, 'node_pve1') == [h for h in every if h not in ('801', '900', '901', '1002')]
    assert sorted(g for g in data if g.startswith('node_')) == ['node_pve1', 'node_pve_2']
    assert guest_of(data, '801')['node'] == 'pve-2'        # its own
    assert guest_of(data, '1002')['node'] == 'pve-2'
    assert guest_of(data, '101')['node'] == 'pve1'         # the cluster's default node
    assert guest_of(data, '1001')['node'] == 'pve1'
    assert 'phoenix-hypervisor' not in hosts_of_any(data)


def hosts_of_any(data):
    """Every host placed in a node_<name> group."""
    return set(h for group, members in data.items() if group.startswith('node_') for h in members.get('hosts', []))


def guest_of(data, host):
    """A guest's phoenix_guest (decoded from its phoenix_guest_json where the inventory gives that)."""
    hostvars = data['_meta']['hostvars'][host]
    if 'phoenix_guest_json' in hostvars:
        return json.loads(hostvars['phoenix_guest_json'])
    return hostvars['phoenix_guest']


PLAYS_SEE_THE_GUESTS = '''
- name: Every guest's phoenix_guest as the guest itself sees it
  hosts: phoenix
  gather_facts: false
  tasks:
    - name: Write it
      ansible.builtin.copy:
        content: "{{ phoenix_guest | to_json }}"
        dest: "{{ out }}/own-{{ inventory_hostname }}.json"
        mode: '0600'
      delegate_to: localhost
- name: Every guest's phoenix_guest through hostvars, from a host outside the group
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Write them
      ansible.builtin.copy:
        content: "{{ groups['phoenix'] | map('extract', hostvars, 'phoenix_guest') | list | to_json }}"
        dest: "{{ out }}/hostvars.json"
        mode: '0600'
'''


def test_playbooks_see_the_normalized_guests(tmp_path):
    """phoenix_guest is derived from phoenix_guest_json when read: plays see exactly the model's guests."""
    sys.path.insert(0, os.path.join(REPO, 'collections'))
    from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.model import load_config
    config = load_config(os.path.join(REPO, 'etc'), os.path.join(REPO, 'stacks'), environment='production',
                         platform_rules='error')
    expected = dict((str(g['id']), g) for g in config.ordered_guests())
    assert len(expected) >= 6
    play = tmp_path / 'play.yml'
    play.write_text(PLAYS_SEE_THE_GUESTS)
    out = tmp_path / 'out'
    out.mkdir()
    result = run(['ansible-playbook', str(play), '-e', 'out=%s' % out, '-e', 'ansible_python_interpreter=%s'
                  % sys.executable])
    assert result.returncode == 0, result.stdout + result.stderr
    seen = json.loads((out / 'hostvars.json').read_text())
    assert dict((str(g['id']), g) for g in seen) == expected
    for host, guest in expected.items():
        assert json.loads((out / ('own-%s.json' % host)).read_text()) == guest, host


def test_config_text_in_phoenix_guest_is_never_templated(tmp_path, phoenix_tree):
    data = phoenix_tree.read('phoenix_lxc_configs.json')
    comment = 'rule {{ 7 * 6 }} {%- if true %}x{% endif %} {# note #} {{{ 1 }}}'
    data['lxc_configs']['801']['firewall']['rules'][0]['comment'] = comment
    phoenix_tree.write('phoenix_lxc_configs.json', data)
    # the listing: the guest's JSON text is a plain string with no Jinja start string, and decodes to the config text
    result = run(['ansible-inventory', '-i', inventory_file(tmp_path, phoenix_tree), '--list'])
    assert result.returncode == 0, result.stderr
    text = json.loads(result.stdout)['_meta']['hostvars']['801']['phoenix_guest_json']
    assert isinstance(text, str)
    assert not any(start in text for start in ('{{', '{%', '{#'))
    assert json.loads(text)['firewall']['rules'][0]['comment'] == comment
    # and the plays: phoenix_guest and hostvars give the text as written
    data['lxc_configs']['801']['firewall']['rules'][0]['comment'] = 'rule {{ 7 * 6 }}'
    phoenix_tree.write('phoenix_lxc_configs.json', data)
    play = tmp_path / 'play.yml'
    play.write_text(PLAYS_SEE_THE_GUESTS)
    out = tmp_path / 'out'
    out.mkdir()
    result = run(['ansible-playbook', '-i', inventory_file(tmp_path, phoenix_tree), str(play), '-l', '801,localhost',
                  '-e', 'out=%s' % out, '-e', 'ansible_python_interpreter=%s' % sys.executable])
    assert result.returncode == 0, result.stdout + result.stderr
    own = json.loads((out / 'own-801.json').read_text())
    assert own['firewall']['rules'][0]['comment'] == 'rule {{ 7 * 6 }}'
    seen = dict((str(g['id']), g) for g in json.loads((out / 'hostvars.json').read_text()))
    assert seen['801']['firewall']['rules'][0]['comment'] == 'rule {{ 7 * 6 }}'


def test_only_text_that_cannot_hold_a_template_is_listed_without_the_unsafe_marker():
    sys.path.insert(0, os.path.join(REPO, 'collections'))
    from ansible_collections.thinkheads.phoenix.plugins.inventory import phoenix as plugin
    from ansible.template import Templar, is_trusted_as_template
    for text in ('10.0.0.141', 'internal.thinkheads.ai', 'phoenix_user', 'admin@thinkheads.ai', 'lxc'):
        assert is_trusted_as_template(plugin._inert(text)), text
        assert Templar().template(plugin._inert(text)) == text
    for text in ('{{ 7 * 6 }}', '{% raw %}', '{# c #}', '#jinja2:variable_start_string:"[["\n[[ 1 ]]', 'a b', 'x\ny'):
        assert not is_trusted_as_template(plugin._inert(text)), text
    value = {'a': 'x{{ y }}{%z%}{#w#}{{{', 'b': [{'c': '{'}, {}], 'd': '}}'}
    text = plugin._inert_json(value)
    assert is_trusted_as_template(text)
    assert not any(start in text for start in ('{{', '{%', '{#'))
    assert json.loads(text) == value
    assert json.loads(Templar().template(text)) == value


def test_an_unusable_cache_directory_costs_the_cache_not_the_inventory(tmp_path, phoenix_tree):
    blocker = tmp_path / 'not-a-directory'
    blocker.write_text('')
    path = inventory_file(tmp_path, phoenix_tree, cache=True, cache_plugin='ansible.builtin.jsonfile',
                          cache_connection=str(blocker / 'cache'))
    result = run(['ansible-inventory', '-i', path, '--list'])
    assert result.returncode == 0, result.stderr
    assert 'cache not usable' in result.stderr
    assert guest_of(parse_listing(result.stdout), '801')['id'] == 801


def test_the_project_inventory_keeps_its_model_between_runs():
    with open(os.path.join(REPO, 'inventory', 'phoenix.yml')) as handle:
        text = handle.read()
    assert 'cache: true' in text and 'cache_plugin: ansible.builtin.jsonfile' in text


def test_the_cache_fingerprint_covers_the_code_that_builds_the_model(tmp_path):
    sys.path.insert(0, os.path.join(REPO, 'collections'))
    from ansible_collections.thinkheads.phoenix.plugins.inventory import phoenix as plugin
    code = tmp_path / 'module_utils'
    code.mkdir()
    (code / 'model.py').write_text('A = 1\n')
    config = tmp_path / 'etc'
    config.mkdir()
    (config / 'phoenix_hypervisor_config.json').write_text('{}')

    def fingerprint():
        return plugin._fingerprint(str(config), None, {}, code_dirs=(str(code),), code_files=())

    first = fingerprint()
    assert first == fingerprint()
    (code / 'model.py').write_text('A = 22\n')  # a changed collection: the size differs
    assert fingerprint() != first
    # and the default covers the collection's own module_utils and the plugin itself
    default = plugin._fingerprint(str(config), None, {})
    paths = [entry[0] for entry in default['files']]
    assert any(p.endswith(os.path.join('module_utils', 'config', 'model.py')) for p in paths)
    assert any(p.endswith(os.path.join('inventory', 'phoenix.py')) for p in paths)


def test_an_exported_listing_still_gives_plays_the_guests(tmp_path):
    """AWX stores `ansible-inventory --list --export` and hands it back to jobs as a script inventory: the group's
    template and each guest's JSON text travel with it, and plays still see the dict."""
    result = run(['ansible-inventory', '--list', '--export'])
    assert result.returncode == 0, result.stderr
    exported = tmp_path / 'export.json'
    exported.write_text(result.stdout)
    data = json.loads(result.stdout)
    assert data['phoenix']['vars']['phoenix_guest'] == '{{ phoenix_guest_json | ansible.builtin.from_json }}'
    script = tmp_path / 'awx_inventory.sh'
    script.write_text('#!/bin/sh\nif [ "$1" = "--list" ]; then cat %s; else echo "{}"; fi\n' % exported)
    script.chmod(0o755)
    play = tmp_path / 'play.yml'
    play.write_text(PLAYS_SEE_THE_GUESTS)
    out = tmp_path / 'out'
    out.mkdir()
    result = run(['ansible-playbook', '-i', str(script), str(play), '-l', '801,localhost', '-e', 'out=%s' % out,
                  '-e', 'ansible_python_interpreter=%s' % sys.executable], env={'ANSIBLE_INVENTORY_ENABLED': 'script'})
    assert result.returncode == 0, result.stdout + result.stderr
    own = json.loads((out / 'own-801.json').read_text())
    assert own == json.loads(parse_listing(exported.read_text())['_meta']['hostvars']['801']['phoenix_guest_json'])
    assert own['gpus'] == [0] and own['fqdn'].startswith('granite-embedding.')


def test_the_derived_plans_are_published_once_and_follow_the_configs_through_the_cache(tmp_path, phoenix_tree):
    """phoenix_routes and phoenix_dns_records (JSON text on the hypervisor host, one template each on all),
    phoenix_endpoints (on the hypervisor host, one template on all) and each guest's phoenix_guest_firewall_plan (its
    own JSON text, one template on the phoenix group): equal to platform_plans of the model, kept in the cache with
    the model and derived again when a config changes."""
    sys.path.insert(0, os.path.join(REPO, 'collections'))
    from ansible_collections.thinkheads.phoenix.plugins.module_utils.platform_plans import platform_plans
    from ansible_collections.thinkheads.phoenix.plugins.module_utils.routing import guest_firewall
    with_text = set()
    cache_dir = tmp_path / 'cache'
    path = inventory_file(tmp_path, phoenix_tree, cache=True, cache_plugin='ansible.builtin.jsonfile',
                          cache_connection=str(cache_dir))

    def check(data):
        config = phoenix_tree.load()
        expected = json.loads(json.dumps(platform_plans(config.ordered_guests(), config.stacks, config.hypervisor,
                                                        config.domain)))
        hostvars = data['_meta']['hostvars']
        hyp = hostvars['phoenix-hypervisor']
        assert json.loads(hyp['phoenix_routes_json']) == expected['routes']
        assert json.loads(hyp['phoenix_dns_records_json']) == expected['dns_records']
        assert hyp['phoenix_endpoints'] == expected['endpoints']
        for host in GUESTS:
            assert hostvars[host]['phoenix_endpoints'] == '{{ hostvars["phoenix-hypervisor"].phoenix_endpoints }}'
            for name in ('phoenix_routes', 'phoenix_dns_records'):
                assert hostvars[host][name] == \
                    '{{ hostvars["phoenix-hypervisor"].%s_json | ansible.builtin.from_json }}' % name, (host, name)
            # the firewall as JSON text where the stacks or the routes add rules; else the template gives the
            # guest's own (test_platform_plans.py checks what plays read)
            own = json.loads(json.dumps(guest_firewall(json.loads(hostvars[host]['phoenix_guest_json']))))
            if 'phoenix_guest_firewall_json' in hostvars[host]:
                assert json.loads(hostvars[host]['phoenix_guest_firewall_json']) == expected['firewalls'][host], host
                assert expected['firewalls'][host] != own, host
                with_text.add(host)
            else:
                assert expected['firewalls'][host] == own, host
            assert hostvars[host]['phoenix_guest_firewall_plan'].startswith(
                '{{ phoenix_guest_firewall_json | ansible.builtin.from_json if'), host
        assert 'phoenix_guest_firewall_json' not in hyp
        return dict(hyp, phoenix_routes=json.loads(hyp['phoenix_routes_json']))

    first = check(listing(path))
    assert any(cache_dir.iterdir())
    # the Swarm manager (the edge rule) and the stack hosts carry their firewall; the others list nothing more
    assert '1001' in with_text and 0 < len(with_text) < len(GUESTS), with_text
    backend = dict((r['router'], r) for r in first['phoenix_routes']['routes'])['guest-granite-embedding']['backend']
    assert backend.endswith(':8000'), backend
    cached = check(listing(path))
    assert cached == first
    data = phoenix_tree.read('phoenix_lxc_configs.json')
    data['lxc_configs']['801']['traefik_service']['port'] = 8001
    phoenix_tree.write('phoenix_lxc_configs.json', data)
    changed = check(listing(path))
    routes = dict((r['router'], r) for r in changed['phoenix_routes']['routes'])
    assert routes['guest-granite-embedding']['backend'] == backend[:-len('8000')] + '8001'
