# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The acme_certificate_names filter on the shapes Traefik's acme.json takes, and the traefik role's retry of
ACME orders made before the gateway served the challenge (roles/traefik/tasks/acme_retry.yml)."""

import base64
import json
import os

import pytest

from ansible_collections.thinkheads.phoenix.plugins.filter.acme_certificate_names import acme_certificate_names
from phoenix_testlib import REPO


def slurped(data):
    text = data if isinstance(data, str) else json.dumps(data)
    return {'content': base64.b64encode(text.encode()).decode(), 'encoding': 'base64'}


STORAGE = {
    'internal-resolver': {
        'Account': {'Email': 'traefik@internal'},
        'Certificates': [
            {'domain': {'main': 'qdrant.internal.example.org'}, 'certificate': 'x', 'key': 'y', 'Store': 'default'},
            {'domain': {'main': 'app.internal.example.org', 'sans': ['x.example.org']}, 'certificate': 'x'},
            {'domain': {'main': 'app.internal.example.org'}, 'certificate': 'x'},
        ],
    },
    'other': {'Certificates': [{'domain': {'main': 'elsewhere.example.org'}}]},
}


def test_names_of_one_resolver_sorted_once():
    assert acme_certificate_names(slurped(STORAGE), 'internal-resolver') == [
        'app.internal.example.org', 'qdrant.internal.example.org']
    assert acme_certificate_names(json.dumps(STORAGE), 'other') == ['elsewhere.example.org']


@pytest.mark.parametrize('storage', [
    {'failed': True, 'msg': 'file not found'},
    {'content': ''},
    slurped(''),
    slurped('not json'),
    slurped({'internal-resolver': {'Account': {}, 'Certificates': None}}),
    slurped({'other': {'Certificates': [{'domain': {'main': 'a'}}]}}),
    slurped([]),
    {'content': '!!! not base64'},
])
def test_nothing_held_reads_as_no_names(storage):
    assert acme_certificate_names(storage, 'internal-resolver') == []


def test_sync_retries_acme_after_the_gateway_play():
    """sync.yml runs the retry after the Nginx gateway play (the CA reaches the challenge through the gateway)."""
    import yaml
    with open(os.path.join(REPO, 'playbooks', 'sync.yml')) as handle:
        plays = yaml.safe_load(handle)
    names = [play.get('name', '') for play in plays]
    gateway = next(i for i, name in enumerate(names) if name == 'Nginx gateway')
    retry = [i for i, play in enumerate(plays)
             if any((task.get('ansible.builtin.include_role') or {}).get('tasks_from') == 'acme_retry'
                    for task in play.get('tasks') or [])]
    assert retry and retry[0] > gateway, names
