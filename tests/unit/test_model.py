# -*- coding: utf-8 -*-
"""The config model: the reference deployment, the project's own topology, normalization, ordering."""

import json

import pytest

from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.model import PhoenixConfig


def errors_of(config):
    return [str(f) for f in config.report.sorted_errors()]


def warnings_of(config):
    return [str(f) for f in config.report.sorted_warnings()]


def test_reference_configs_load_unchanged(reference_tree):
    config = reference_tree.load(platform_rules='warning')
    assert errors_of(config) == []
    assert sorted(config.guests) == [101, 102, 103, 801, 802, 900, 901, 910, 911, 912, 914, 917, 1001, 1002, 9000]
    assert sorted(config.stacks) == ['portainer_service', 'qdrant_service', 'thinkheads_ai_app']


def test_reference_compose_ports_are_platform_errors_when_enforced(reference_tree):
    config = reference_tree.load(platform_rules='error')
    assert [(f.file, f.path, f.code) for f in config.report.sorted_errors()] == [
        ('stacks/portainer_service/docker-compose.yml', '/services/portainer/ports', 'platform.compose_ports'),
        ('stacks/qdrant_service/docker-compose.yml', '/services/qdrant/ports', 'platform.compose_ports'),
        ('stacks/thinkheads_ai_app/docker-compose.yml', '/services/thinkheads_ai_app/ports', 'platform.compose_ports'),
    ]


def test_reference_warnings_are_separate_from_errors(reference_tree):
    config = reference_tree.load(platform_rules='warning')
    codes = sorted(set(f.code for f in config.report.warnings))
    assert 'secret.plaintext' in codes            # portainer_api.admin_password, DATABASE_PASS
    assert 'firewall.duplicate_rule' in codes     # 103 repeats one rule three times
    assert 'traefik.twin_host' in codes           # 1001's traefik_service and its portainer stack router
    assert 'platform.compose_ports' in codes
    assert all(f.severity == 'warning' for f in config.report.warnings)


def test_project_topology_is_clean(phoenix_tree):
    config = phoenix_tree.load(platform_rules='error')
    assert errors_of(config) == []
    assert warnings_of(config) == []
    assert {101, 102, 103, 801, 1001, 1002} <= set(config.guests)
    assert config.domain == 'internal.thinkheads.ai'
    assert config.guests[1002]['docker_stacks'] == [
        {'name': 'qdrant_service', 'environment': 'production'},
        {'name': 'thinkheads_ai_app', 'environment': 'production'},
    ]
    for stack in config.stacks.values():
        for service in stack['compose']['services'].values():
            assert 'ports' not in service and 'expose' not in service


def test_network_is_normalized(reference_tree):
    guest = reference_tree.load(platform_rules='warning').guests[801]
    net = guest['network']
    assert net['ip'] == '10.0.0.141'
    assert net['prefix'] == 24
    assert net['cidr'] == '10.0.0.141/24'
    assert net['gateway'] == '10.0.0.1'
    assert net['bridge'] == 'vmbr0'
    assert net['mac'] == '52:54:00:67:89:A1'
    assert net['dhcp'] is False


def test_ip_without_prefix_takes_the_subnet_prefix(reference_tree):
    data = reference_tree.read('phoenix_lxc_configs.json')
    data['lxc_configs']['801']['network_config']['ip'] = '10.0.0.141'
    reference_tree.write('phoenix_lxc_configs.json', data)
    net = reference_tree.load(platform_rules='warning').guests[801]['network']
    assert (net['ip'], net['prefix'], net['cidr']) == ('10.0.0.141', 24, '10.0.0.141/24')


def test_dhcp_vm_has_no_address(reference_tree):
    net = reference_tree.load(platform_rules='warning').guests[9000]['network']
    assert net['dhcp'] is True and net['ip'] is None


@pytest.mark.parametrize('guest_id, gpus', [(900, []), (901, [0, 1]), (910, [0, 1]), (911, [0]), (912, [1])])
def test_gpu_lists(reference_tree, guest_id, gpus):
    assert reference_tree.load(platform_rules='warning').guests[guest_id]['gpus'] == gpus


def test_firewall_rules_get_defaults_and_pve_names(reference_tree):
    config = reference_tree.load(platform_rules='warning')
    rules = config.guests[900]['firewall']['rules']
    assert rules[0] == {'type': 'in', 'action': 'ACCEPT', 'enabled': True, 'proto': 'icmp',
                        'source': '10.0.0.0/24', 'comment': 'Allow ICMP from internal network'}
    assert rules[1]['dport'] == '22' and 'port' not in rules[1]
    # 103 lists one rule three times: kept once.
    ports_80 = [r for r in config.guests[103]['firewall']['rules'] if r.get('dport') == '80' and r['type'] == 'out']
    assert len(ports_80) == 1


def test_hypervisor_firewall_found_under_shared_volumes(reference_tree):
    hyp = reference_tree.load(platform_rules='warning').hypervisor
    assert hyp['cluster_firewall']['enabled'] is True
    assert hyp['cluster_firewall']['input_policy'] == 'DROP'
    assert len(hyp['cluster_firewall']['rules']) == 6
    assert hyp['network_normalized']['subnet'] == '10.0.0.0/24'
    assert hyp['network_normalized']['ip'] == '10.0.0.13'


def test_ids_and_references_become_integers(reference_tree):
    config = reference_tree.load(platform_rules='warning')
    assert config.guests[801]['dependencies'] == [1002]
    assert config.guests[801]['clone_from'] == 911
    assert config.guests[1001]['clone_from'] == 9000
    assert config.guests[1002]['docker_stacks'][0] == {'name': 'qdrant_service', 'environment': 'production'}


def test_templates_and_roles(reference_tree):
    config = reference_tree.load(platform_rules='warning')
    templates = sorted(g['id'] for g in config.guests.values() if g['is_template'])
    assert templates == [900, 901, 910, 911, 912, 9000]
    assert config.guests[801]['portainer_role'] == 'none'
    assert config.guests[1001]['swarm_role'] == 'manager'
    assert config.guests[1002]['swarm_role'] == 'worker'
    assert config.guests[914]['portainer_role'] == 'none'   # key missing in the file


def test_vm_defaults_fill_missing_fields(reference_tree):
    guest = reference_tree.load(platform_rules='warning').guests[1001]
    assert guest['storage_pool'] == 'quickOS-vm-disks'
    assert guest['network']['bridge'] == 'vmbr0'
    assert guest['cores'] == 4          # its own value wins over vm_defaults


def test_dependency_order_puts_prerequisites_first(reference_tree):
    config = reference_tree.load(platform_rules='warning')
    order = [g['id'] for g in config.ordered_guests()]
    for guest in config.guests.values():
        for dep in guest['dependencies'] + ([guest['clone_from']] if guest['clone_from'] else []):
            assert order.index(dep) < order.index(guest['id']), (dep, guest['id'])
    assert [g['order'] for g in config.ordered_guests()] == list(range(len(order)))


def test_stack_manifest_wins_over_central_config(reference_tree):
    stack = reference_tree.load(platform_rules='warning').stacks['portainer_service']
    labels = stack['services']['portainer']['traefik_labels']
    assert labels['traefik.http.routers.portainer.entrypoints'] == 'websecure'   # phoenix.json, not 'web'
    assert stack['routers']['portainer']['hosts'] == ['portainer.internal.thinkheads.ai']
    assert [r['dport'] for r in stack['firewall_rules']] == ['9443', '9443', '9000']


def test_stack_environment_merges_both_sources(reference_tree):
    stack = reference_tree.load(platform_rules='warning').stacks['thinkheads_ai_app']
    assert [v['name'] for v in stack['variables']] == ['DATABASE_USER', 'DATABASE_PASS', 'API_PORT']
    assert stack['files'][0]['destination_in_container'] == '/app/.env'
    assert stack['firewall_rules'][0]['dport'] == '8000'
    assert stack['environments'] == ['development', 'production', 'testing']


def test_other_environment_is_resolved(reference_tree):
    stack = reference_tree.load(platform_rules='warning', environment='testing').stacks['thinkheads_ai_app']
    assert dict((v['name'], v['value']) for v in stack['variables'])['API_PORT'] == '8001'


def test_all_errors_are_reported_at_once(reference_tree):
    data = reference_tree.read('phoenix_lxc_configs.json')
    data['lxc_configs']['801']['network_config']['ip'] = '10.0.0.10/24'     # 103's IP
    data['lxc_configs']['102']['dependencies'] = ['4242']
    data['lxc_configs']['917']['firewall']['rules'][0]['port'] = '70000'
    reference_tree.write('phoenix_lxc_configs.json', data)
    codes = sorted(set(f.code for f in reference_tree.load(platform_rules='warning').report.errors))
    assert codes == ['dependency.unknown', 'firewall.port', 'network.duplicate_ip']


def test_unknown_keys_are_warnings_with_a_suggestion(reference_tree):
    data = reference_tree.read('phoenix_lxc_configs.json')
    data['lxc_configs']['801']['memroy_mb'] = 1024
    reference_tree.write('phoenix_lxc_configs.json', data)
    config = reference_tree.load(platform_rules='warning')
    assert errors_of(config) == []
    assert ('phoenix_lxc_configs.json: /lxc_configs/801/memroy_mb: unknown LXC guest key "memroy_mb" is ignored; '
            'did you mean "memory_mb"?') in warnings_of(config)


def test_model_round_trips_through_json(reference_tree):
    config = reference_tree.load(platform_rules='warning')
    copy = PhoenixConfig.from_dict(json.loads(json.dumps(config.as_dict())))
    assert copy.guests == config.guests
    assert list(copy.guests) == list(config.guests)
    assert copy.stacks == config.stacks
    assert warnings_of(copy) == warnings_of(config)


def test_missing_config_dir_is_an_error_not_a_crash(tmp_path):
    from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.model import load_config
    config = load_config(str(tmp_path / 'nope'))
    assert [f.code for f in config.report.errors] == ['file.missing']


def test_compose_merge_tags_are_accepted(phoenix_tree):
    """docker compose's !reset and !override tags load as plain values."""
    path = phoenix_tree.path('stacks/qdrant_service/docker-compose.yml')
    with open(path) as handle:
        text = handle.read()
    with open(path, 'w') as handle:
        handle.write(text.replace('    volumes:\n', '    labels: !reset []\n    dns: !reset null\n'
                                  '    volumes: !override\n', 1))
    config = phoenix_tree.load(platform_rules='error')
    assert errors_of(config) == []
    service = config.stacks['qdrant_service']['compose']['services']['qdrant']
    assert service['labels'] == [] and service['dns'] is None
    assert service['volumes'] == ['qdrant_storage:/qdrant/storage', 'qdrant_snapshots:/qdrant/snapshots']


def test_defined_security_group_is_accepted(phoenix_tree):
    hyp = phoenix_tree.read('phoenix_hypervisor_config.json')
    hyp['firewall']['security_groups'] = {'webservers': {'rules': [
        {'type': 'in', 'action': 'ACCEPT', 'proto': 'tcp', 'dport': '443'}]}}
    phoenix_tree.write('phoenix_hypervisor_config.json', hyp)
    lxc = phoenix_tree.read('phoenix_lxc_configs.json')
    lxc['lxc_configs']['801']['firewall']['rules'].append({'type': 'group', 'action': 'webservers'})
    phoenix_tree.write('phoenix_lxc_configs.json', lxc)
    config = phoenix_tree.load(platform_rules='error')
    assert errors_of(config) == []
    assert {'type': 'group', 'action': 'webservers', 'enabled': True} in config.guests[801]['firewall']['rules']


def test_per_guest_stack_environment_is_resolved(phoenix_tree):
    vms = phoenix_tree.read('phoenix_vm_configs.json')
    vms['vms'][2]['docker_stacks'][0] = {'name': 'qdrant_service', 'environment': 'testing'}
    phoenix_tree.write('phoenix_vm_configs.json', vms)
    config = phoenix_tree.load(platform_rules='error')
    assert errors_of(config) == []
    stack = config.stacks['qdrant_service']
    assert sorted(stack['routers']) == ['qdrant']                      # the load environment (production)
    assert sorted(stack['other_environments']) == ['testing']           # the one guest 1002 deploys
    testing = stack['other_environments']['testing']
    assert testing['routers']['qdrant-testing']['hosts'] == ['qdrant-testing.internal.thinkheads.ai']
    assert [v['value_from'] for v in testing['variables'] if v['secret']] == ['vault_qdrant_api_key_testing']
    assert config.stacks['thinkheads_ai_app']['other_environments'] == {}
    copy = PhoenixConfig.from_dict(json.loads(json.dumps(config.as_dict())))
    assert copy.stacks == config.stacks


def test_guest_may_publish_its_own_name(phoenix_tree):
    """801 granite-embedding publishes traefik_service granite-embedding: its own DNS name, not a clash."""
    config = phoenix_tree.load(platform_rules='error')
    assert config.guests[801]['traefik_service']['host'] == config.guests[801]['fqdn']
    assert errors_of(config) == []
