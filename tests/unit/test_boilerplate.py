# -*- coding: utf-8 -*-
"""The playbooks' shared plumbing: playbooks/boilerplate.yml (ansible-core version, inventory sanity, the platform
facts), the module_defaults of every action group defined once, and the guest firewall tasks in one file."""

import json
import os
import re
import subprocess
import sys

import pytest
import yaml

from phoenix_testlib import REPO

BIN = os.path.dirname(sys.executable)
PLAYBOOKS = os.path.join(REPO, 'playbooks')
TOP_LEVEL = ('create.yml', 'sync.yml', 'health.yml', 'destroy.yml', 'validate.yml')


def run(args, env=None):
    full_env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'), ANSIBLE_NOCOLOR='1')
    full_env.update(env or {})
    return subprocess.run([os.path.join(BIN, args[0])] + args[1:], cwd=REPO, env=full_env, capture_output=True,
                          text=True, timeout=300, check=False)


def load(name):
    with open(os.path.join(PLAYBOOKS, name)) as handle:
        return yaml.safe_load(handle)


# --------------------------------------------------------------------------------------------------------------
# requires_ansible


def test_requires_ansible_filter():
    from ansible.errors import AnsibleFilterError
    from ansible_collections.thinkheads.phoenix.plugins.filter.requires_ansible import requires_ansible
    with open(os.path.join(REPO, 'meta', 'runtime.yml')) as handle:
        floor = re.match(r'>=\s*([0-9.]+)$', yaml.safe_load(handle)['requires_ansible']).group(1)
    assert requires_ansible(floor) == []
    assert requires_ansible('2.16.9') == ['>=%s' % floor]
    assert requires_ansible('2.21.5', requires='>=2.17.0,<2.20') == ['<2.20']
    assert requires_ansible('2.21.0.dev0', requires='>=2.17.0') == []
    with pytest.raises(AnsibleFilterError):
        requires_ansible('2.21.5', requires='about 2.17')


def test_an_unsupported_ansible_core_stops_the_run_before_any_play():
    result = run(['ansible-playbook', 'playbooks/create.yml', '-e', 'phoenix_boilerplate_requires=>=2.17.0,<2.20'])
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    assert 'needs ansible-core <2.20' in out, out
    assert 'Check the selected guests against Proxmox' not in out, out


# --------------------------------------------------------------------------------------------------------------
# inventory sanity and the platform facts


def test_every_playbook_imports_the_boilerplate_first():
    for name in TOP_LEVEL:
        first = load(name)[0]
        assert first.get('ansible.builtin.import_playbook') == 'boilerplate.yml', name
    # site.yml through create.yml and sync.yml, plan.yml through site.yml
    assert [p.get('ansible.builtin.import_playbook') for p in load('site.yml')] == ['create.yml', 'sync.yml']
    assert load('plan.yml')[-1].get('ansible.builtin.import_playbook') == 'site.yml'
    for play in load('boilerplate.yml'):
        assert play['tags'] == ['always'] and play['gather_facts'] is False


def test_a_foreign_inventory_is_refused_with_one_message(tmp_path):
    inventory = tmp_path / 'hosts.yml'
    inventory.write_text(yaml.safe_dump({'all': {'hosts': {'web1': {'ansible_connection': 'local'}}}}))
    result = run(['ansible-playbook', '-i', str(inventory), 'playbooks/sync.yml'])
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    assert 'This is not a Phoenix inventory: no host in the group hypervisor; no group phoenix' in out, out
    assert 'Converge the cluster firewall' not in out, out


SEE_THE_FACTS = '''
- name: What each guest reads under the platform facts' names
  hosts: phoenix
  gather_facts: false
  tasks:
    - name: Write it
      ansible.builtin.copy:
        content: "{{ {'stacks': phoenix_stacks | list | sort, 'domain': phoenix_hypervisor.domain,
                      'certificates': phoenix_certificates | length} | to_json }}"
        dest: "{{ out }}/{{ inventory_hostname }}.json"
        mode: '0600'
      delegate_to: localhost
'''


def _seen(out, hosts):
    return dict((h, json.loads((out / ('%s.json' % h)).read_text())) for h in hosts)


def test_the_plugin_publishes_the_platform_facts_and_nothing_is_bound(tmp_path):
    play = tmp_path / 'see.yml'
    play.write_text(SEE_THE_FACTS)
    out = tmp_path / 'out'
    out.mkdir()
    result = run(['ansible-playbook', 'playbooks/boilerplate.yml', str(play), '-l', '801,1002', '-e', 'out=%s' % out,
                  '-e', 'ansible_python_interpreter=%s' % sys.executable])
    text = result.stdout + result.stderr
    assert result.returncode == 0, text
    assert re.search(r'TASK \[Bind the platform facts on every host\] \*+\nskipping: \[\d+\]', text), text
    seen = _seen(out, ['801', '1002'])
    hyp = json.loads(run(['ansible-inventory', '--host', 'phoenix-hypervisor']).stdout)
    for host, facts in seen.items():
        assert facts == {'stacks': sorted(hyp['phoenix_stacks']), 'domain': hyp['phoenix_hypervisor']['domain'],
                         'certificates': len(hyp['phoenix_certificates'])}, host


def test_a_static_inventory_gets_the_platform_facts_bound(tmp_path):
    """An inventory that keeps the shared data on the hypervisor host only (as the plugin did before it published
    the facts on `all`): the boilerplate binds them on every host."""
    hyp = json.loads(run(['ansible-inventory', '--host', 'phoenix-hypervisor']).stdout)
    guests = {}
    for name in ('801', '1002'):
        data = json.loads(run(['ansible-inventory', '--host', name]).stdout)
        guests[name] = {'phoenix_guest': json.loads(data['phoenix_guest_json']), 'ansible_connection': 'local'}
    inventory = tmp_path / 'static.yml'
    inventory.write_text(yaml.safe_dump({'all': {'children': {
        'phoenix': {'hosts': guests},
        'hypervisor': {'hosts': {'phoenix-hypervisor': {
            'phoenix_hypervisor': hyp['phoenix_hypervisor'], 'phoenix_stacks': hyp['phoenix_stacks'],
            'phoenix_certificates': hyp['phoenix_certificates']}}}}}}))
    play = tmp_path / 'see.yml'
    play.write_text(SEE_THE_FACTS)
    out = tmp_path / 'out'
    out.mkdir()
    result = run(['ansible-playbook', '-i', str(inventory), 'playbooks/boilerplate.yml', str(play),
                  '-e', 'out=%s' % out, '-e', 'ansible_python_interpreter=%s' % sys.executable])
    assert result.returncode == 0, result.stdout + result.stderr
    for host, facts in _seen(out, ['801', '1002']).items():
        assert facts == {'stacks': sorted(hyp['phoenix_stacks']), 'domain': hyp['phoenix_hypervisor']['domain'],
                         'certificates': len(hyp['phoenix_certificates'])}, host


def test_the_platform_facts_are_read_by_name_only_in_the_boilerplate():
    pattern = "hostvars[groups['hypervisor'][0]]"
    found = []
    for top in ('playbooks', 'roles'):
        for dirpath, _dirs, files in os.walk(os.path.join(REPO, top)):
            for name in files:
                path = os.path.join(dirpath, name)
                if name.endswith(('.yml', '.yaml', '.j2')) and pattern in open(path).read():
                    found.append(os.path.relpath(path, REPO))
    assert found == ['playbooks/boilerplate.yml'], found


# --------------------------------------------------------------------------------------------------------------
# module_defaults and the guest firewall


def _action_groups():
    with open(os.path.join(REPO, 'meta', 'runtime.yml')) as handle:
        groups = yaml.safe_load(handle)['action_groups']
    return dict((module, group) for group, modules in groups.items() for module in modules)


def _tasks(play, base):
    """The play's own tasks, the tasks files it imports included (roles are not followed)."""
    todo = [t for key in ('pre_tasks', 'tasks', 'post_tasks') for t in play.get(key) or []]
    while todo:
        task = todo.pop(0)
        for key in ('block', 'rescue', 'always'):
            todo.extend(task.get(key) or [])
        imported = task.get('ansible.builtin.import_tasks')
        if imported:
            with open(os.path.join(base, imported)) as handle:
                todo.extend(yaml.safe_load(handle))
        yield task


def test_every_play_takes_the_one_module_defaults_definition():
    groups = _action_groups()
    with open(os.path.join(PLAYBOOKS, 'vars', 'module_defaults.yml')) as handle:
        defined = yaml.safe_load(handle)
    assert sorted(defined) == sorted('phoenix_module_defaults_%s' % g for g in set(groups.values()))
    used = set()
    for name in TOP_LEVEL + ('plan.yml', 'site.yml', 'boilerplate.yml'):
        for play in load(name):
            if 'hosts' not in play:
                continue
            defaults = play.get('module_defaults') or {}
            for key, value in defaults.items():
                group = key.split('.')[-1]
                assert key == 'group/thinkheads.phoenix.%s' % group, (name, play['name'], key)
                assert value == '{{ phoenix_module_defaults_%s }}' % group, (name, play['name'], value)
                used.add(group)
            if defaults:
                assert 'vars/module_defaults.yml' in play.get('vars_files', []), (name, play['name'])
            for task in _tasks(play, PLAYBOOKS):
                for module in (k.split('.')[-1] for k in task if k.startswith('thinkheads.phoenix.')):
                    if module in groups:
                        assert 'group/thinkheads.phoenix.%s' % groups[module] in defaults, \
                            (name, play['name'], module)
    assert used == set(groups.values())


def test_the_guest_firewall_is_planned_in_one_tasks_file():
    users = []
    for name in sorted(os.listdir(PLAYBOOKS)):
        if name.endswith('.yml'):
            text = open(os.path.join(PLAYBOOKS, name)).read()
            assert 'thinkheads.phoenix.guest_firewall(' not in text, name
            assert 'thinkheads.phoenix.proxmox_firewall:\n        vmid' not in text, name
            if 'tasks/guest_firewall.yml' in text:
                users.append(name)
    assert users == ['create.yml', 'health.yml', 'sync.yml']
    text = open(os.path.join(PLAYBOOKS, 'tasks', 'guest_firewall.yml')).read()
    assert text.count('thinkheads.phoenix.guest_firewall(') == 1
