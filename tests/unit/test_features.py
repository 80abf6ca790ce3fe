# -*- coding: utf-8 -*-
"""The feature registry: its rows, the unknown-feature warning, and where playbooks and modules read it."""

import json
import os
import re

import yaml

from phoenix_testlib import REPO
from test_inventory import inventory_file, listing, run

from ansible_collections.thinkheads.phoenix.plugins.module_utils import routing
from ansible_collections.thinkheads.phoenix.plugins.module_utils.config import checks, features
from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox_guest import lxc_features


def test_every_role_of_the_registry_exists_and_every_phase_is_known():
    for name, row in features.FEATURES.items():
        assert row['phase'] in features.PHASES + (None,), name
        if row['role'] is None:
            assert row['phase'] is None, name
            continue
        namespace, collection, role = row['role'].split('.')
        assert (namespace, collection) == ('thinkheads', 'phoenix'), name
        assert os.path.isdir(os.path.join(REPO, 'roles', role, 'tasks')), '%s: no role %s' % (name, role)
        assert row['phase'] is not None, name


def test_derived_lists():
    assert features.roles('features') == {'docker': 'thinkheads.phoenix.docker',
                                          'nvidia': 'thinkheads.phoenix.nvidia',
                                          'vllm': 'thinkheads.phoenix.vllm'}
    assert features.gpu_features() == checks.GPU_FEATURES == ('nvidia', 'vllm')
    assert routing.GATEWAY_FEATURES == ('nginx', 'nginx_gateway')
    assert routing.TRAEFIK_FEATURES == ('traefik',)
    assert routing.CA_FEATURES == ('step_ca',)
    assert features.without_role() == ['base_setup', 'ollama', 'step_cli']
    assert features.without_role(['docker', 'step_cli', 'base_setup', 'step_cli', 'no_such']) == [
        'step_cli', 'base_setup']


def test_container_features_come_from_the_registry():
    assert lxc_features({'features': ['docker']}) == 'nesting=1,keyctl=1'
    assert lxc_features({'features': ['nvidia', 'base_setup']}) is None
    # pct_options still wins over what the feature needs
    assert lxc_features({'features': ['docker'], 'pct_options': ['nesting=0']}) == 'nesting=0,keyctl=1'


def test_unknown_feature_is_a_warning_with_a_suggestion(reference_tree):
    before = reference_tree.load(platform_rules='warning').report
    data = reference_tree.read('phoenix_lxc_configs.json')
    data['lxc_configs']['801']['features'] = list(data['lxc_configs']['801']['features']) + ['dokcer', 'zzz_thing']
    reference_tree.write('phoenix_lxc_configs.json', data)
    report = reference_tree.load(platform_rules='warning').report
    unknown = [f for f in report.sorted_warnings() if f.code == 'feature.unknown']
    assert [(f.file, f.message) for f in unknown] == [
        ('phoenix_lxc_configs.json', 'guest 801 has the unknown feature "dokcer": it sets nothing up; '
                                     'did you mean "docker"?'),
        ('phoenix_lxc_configs.json', 'guest 801 has the unknown feature "zzz_thing": it sets nothing up'),
    ]
    count = len(data['lxc_configs']['801']['features'])
    assert [f.path for f in unknown] == ['/lxc_configs/801/features/%d' % (count - 2),
                                         '/lxc_configs/801/features/%d' % (count - 1)]
    # a warning only: the errors are those of the unchanged reference
    assert [str(f) for f in report.sorted_errors()] == [str(f) for f in before.sorted_errors()]


def test_reference_configs_use_no_unknown_feature(reference_tree):
    report = reference_tree.load(platform_rules='warning').report
    assert [str(f) for f in report.warnings if f.code == 'feature.unknown'] == []


def test_inventory_publishes_the_feature_roles(tmp_path, reference_tree):
    # kept once, on the hypervisor; a guest reads it through the group's template
    inventory = inventory_file(tmp_path, reference_tree, platform_rules='warning')
    data = listing(inventory)
    hypervisor = data['hypervisor']['hosts'][0]
    assert data['_meta']['hostvars'][hypervisor]['phoenix_feature_roles'] == features.roles('features')
    result = run(['ansible', '801', '-i', inventory, '-m', 'ansible.builtin.debug', '-a', 'var=phoenix_feature_roles'],
                 env={'ANSIBLE_CALLBACK_RESULT_FORMAT': 'json'})
    assert result.returncode == 0, result.stdout + result.stderr
    resolved = json.loads(result.stdout[result.stdout.index('{'):])
    assert resolved['phoenix_feature_roles'] == features.roles('features')


def test_create_feature_play_reads_the_registry():
    with open(os.path.join(REPO, 'playbooks', 'create.yml')) as handle:
        plays = yaml.safe_load(handle)
    play = [p for p in plays if "Apply the guest's feature roles (in the order the guest lists them)"
            in [task.get('name') for task in p.get('tasks', [])]][0]
    assert play['vars']['phoenix_create_feature_roles'] == '{{ phoenix_feature_roles }}'


def test_validate_playbook_lists_the_features_without_role(reference_tree):
    result = run(['ansible-playbook', '-i', 'localhost,', 'playbooks/validate.yml',
                  '-e', 'phoenix_validate_config_dir=%s' % reference_tree.etc,
                  '-e', 'phoenix_validate_stacks_dir=%s' % reference_tree.stacks,
                  '-e', 'phoenix_validate_platform_rules=warning'])
    out = result.stdout + result.stderr
    line = re.findall(r"no role: ([a-z0-9_, ]+)", out)
    assert line == ['base_setup, step_cli, ollama'], out
    assert result.returncode == 0, out
