# -*- coding: utf-8 -*-
"""Every play of create.yml and sync.yml (and so site.yml) carries tags from one vocabulary, and a tag selects
what it names: `sync.yml --tags stacks` runs the stack tasks and, of the other plays, only what is tagged always
(argument checks and the Portainer API facts the stacks play reads)."""

import os
import re
import subprocess
import sys

import yaml

from phoenix_testlib import REPO

BIN = os.path.dirname(sys.executable)
VOCABULARY = {'always', 'guests', 'firewall', 'dns', 'swarm', 'portainer', 'stacks', 'traefik', 'certificates',
              'gateway', 'vllm', 'step_ca', 'trusted_ca', 'features', 'docker', 'nvidia'}


def plays(name):
    with open(os.path.join(REPO, 'playbooks', name)) as handle:
        return [p for p in yaml.safe_load(handle) if 'hosts' in p]


def test_every_play_has_tags_from_the_vocabulary():
    for name in ('create.yml', 'sync.yml'):
        for play in plays(name):
            tags = play.get('tags')
            if not tags:
                # a play of several parts (each guest its own chain, strategy free): every task names its part
                parts = play.get('pre_tasks', []) + play.get('tasks', [])
                assert parts and not play.get('roles'), '%s: play %r has no tags' % (name, play['name'])
                untagged = [task['name'] for task in parts if not task.get('tags')]
                assert not untagged, '%s: play %r has no tags, nor its tasks %s' % (name, play['name'], untagged)
                tags = [tag for task in parts for tag in task['tags']]
            assert set(tags) <= VOCABULARY, (name, play['name'], set(tags) - VOCABULARY)
    # the README lists every tag a user can ask for
    readme = open(os.path.join(REPO, 'README.md')).read()
    for tag in VOCABULARY - {'always'}:
        assert '`%s`' % tag in readme, tag


def list_tasks(*args):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'), ANSIBLE_NOCOLOR='1')
    result = subprocess.run([os.path.join(BIN, 'ansible-playbook'), '--list-tasks'] + list(args), cwd=REPO,
                            env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    tasks = {}
    play = None
    for line in result.stdout.splitlines():
        match = re.match(r'\s+play #\d+ \([^)]*\): (.*?)\tTAGS:', line)
        if match:
            play = match.group(1)
            tasks[play] = []
        elif play and '\tTAGS: [' in line:
            tasks[play].append(line.strip().split('\t')[0])
    return tasks


def test_sync_tags_select_their_plays():
    stacks = list_tasks('playbooks/sync.yml', '--tags', 'stacks')
    assert 'Deploy the stacks declared for this VM' in stacks['Stacks']
    traefik_play = [p for p in stacks if 'Traefik' in p][0]
    assert stacks[traefik_play] == [], stacks[traefik_play]
    gateway = list_tasks('playbooks/sync.yml', '--tags', 'gateway')
    assert gateway[traefik_play] == ['Skip a guest that does not exist yet (check mode)', 'Nginx gateway'], \
        gateway[traefik_play]
    dns = list_tasks('playbooks/sync.yml', '--tags', 'dns')
    assert dns[traefik_play] == ['DNS records on the hypervisor'], dns[traefik_play]
    portainer_play = [p for p in stacks if p.startswith('Portainer')][0]
    assert 'thinkheads.phoenix.portainer : Where and how to reach the API (for later plays)' in stacks[portainer_play]
    firewall = list_tasks('playbooks/site.yml', '--tags', 'firewall')
    provision = firewall['Provision the selected guests']
    assert provision == ['Reconcile the guest firewall (own rules + rules of the stacks it deploys)'], provision
    assert firewall['Stacks'] == []
