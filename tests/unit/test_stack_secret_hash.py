# -*- coding: utf-8 -*-
"""Secret values in stack diffs and in the Swarm backend's record: an HMAC keyed per deployment (secret_hash_key, or
a secret the module holds: the Portainer API key, the Swarm's manager join token), never an unsalted hash that a
list of weak passwords would reverse. portainer_stack with backend=swarm runs through ansible against the in-memory
engine and its docker CLI stand-in (tests/unit/fake_docker.py)."""

import base64
import hashlib
import json
import os

import pytest

from fake_docker import FakeEngine
from modrun import run_module

from ansible_collections.thinkheads.phoenix.plugins.module_utils.stack_render import (
    MASK, content_hash, hash_key, mask_env, normalize_env,
)
from ansible_collections.thinkheads.phoenix.plugins.module_utils.swarm_stack import HASH_LABEL, STATE_LABEL

WEAK = 'password1'
NAME = 'phx-hmac'
COMPOSE = """version: '3.8'
services:
  db:
    image: guest:latest
    environment:
      DB_PASSWORD: ${DB_PASSWORD}
      LEVEL: ${LEVEL}
"""


def sha8(value):
    return hashlib.sha256(value.encode()).hexdigest()[:8]


def test_masks_are_keyed_and_change_with_the_value():
    env = [{'name': 'DB_PASSWORD', 'value': WEAK}, {'name': 'LEVEL', 'value': 'info'}]
    key = hash_key('deployment-secret')
    masked = mask_env(env, {'DB_PASSWORD'}, key)
    assert masked[0]['value'].startswith(MASK + ' (hmac:') and sha8(WEAK) not in masked[0]['value']
    assert masked[1] == {'name': 'LEVEL', 'value': 'info'}
    assert mask_env(env, {'DB_PASSWORD'}, key) == masked                                     # stable
    assert mask_env([{'name': 'DB_PASSWORD', 'value': 'password2'}], {'DB_PASSWORD'}, key)[0] != masked[0]
    assert mask_env(env, {'DB_PASSWORD'}, hash_key('another deployment'))[0] != masked[0]
    assert mask_env(env, {'DB_PASSWORD'})[0]['value'] == MASK                               # no key: no hash
    assert hash_key('') is None and hash_key(None) is None
    plain = content_hash('c', env)
    assert content_hash('c', env, key=key) not in (plain, content_hash('c', env, key=hash_key('x')))
    assert content_hash('c', env, key=key) == content_hash('c', list(reversed(env)), key=key)


@pytest.fixture(scope='module')
def engine():
    engine = FakeEngine()
    engine.write_cli()
    yield engine
    engine.close()


def run(engine, env, check=False, **extra):
    args = {'name': NAME, 'backend': 'swarm', 'docker_host': engine.url, 'compose': COMPOSE, 'env': env,
            'wait_timeout': 20}
    args.update(extra)
    result = run_module('portainer_stack', args, check=check,
                        env={'PATH': engine.directory + os.pathsep + os.environ['PATH']})
    assert not result.get('failed'), json.dumps(result, indent=1)[:3000]
    assert WEAK not in json.dumps(result) and sha8(WEAK) not in json.dumps(result)
    return result


def record(engine):
    configs = [c for c in engine.configs.values() if c['Spec']['Labels'].get(STATE_LABEL) == NAME]
    assert len(configs) == 1
    data = json.loads(base64.b64decode(configs[0]['Spec']['Data']).decode())
    return configs[0], dict((e['name'], e['value']) for e in data['env'])


def test_swarm_record_keeps_keyed_hashes_and_stays_idempotent(engine):
    env = {'DB_PASSWORD': WEAK, 'LEVEL': 'info'}
    created = run(engine, env)
    assert created['stack_action'] == 'created' and created['api_calls'].get('GET docker:/swarm') == 1
    config, stored = record(engine)
    assert stored['DB_PASSWORD'].startswith(MASK + ' (hmac:') and stored['LEVEL'] == 'info'
    # neither the mask nor the content hash is the unsalted hash a guess of the password would reproduce
    assert sha8(WEAK) not in json.dumps(config)
    assert config['Spec']['Labels'][HASH_LABEL] != content_hash(COMPOSE, normalize_env(env))
    again = run(engine, env)
    assert again['changed'] is False and again['deploys'] == 0
    rotated = run(engine, dict(env, DB_PASSWORD='password2'), check=True)
    assert rotated['changed'] and rotated['stack_action'] == 'updated'
    before, after = rotated['diff'][1]['before'], rotated['diff'][1]['after']
    assert 'hmac:' in before and 'hmac:' in after and before != after
    unchanged_diff = run(engine, dict(env, LEVEL='debug'), check=True)['diff'][1]
    assert unchanged_diff['before'].split('\n')[0] == unchanged_diff['after'].split('\n')[0]   # same secret, same mask


def test_a_given_key_and_an_old_record_count_as_changed_once(engine):
    env = {'DB_PASSWORD': WEAK, 'LEVEL': 'info'}
    keyed = run(engine, env, secret_hash_key='vaulted-stack-hash-key')
    assert keyed['changed'] and 'GET docker:/swarm' not in keyed['api_calls']
    assert run(engine, env, secret_hash_key='vaulted-stack-hash-key')['changed'] is False
    # a record written before the HMAC (plain sha256 content hash): deployed again once, then unchanged
    config, _stored = record(engine)
    config['Spec']['Labels'][HASH_LABEL] = content_hash(COMPOSE, normalize_env(env))
    assert run(engine, env)['changed'] and run(engine, env)['changed'] is False
    gone = run(engine, None, state='absent', compose=None)
    assert gone['changed'] and engine.stack_services(NAME) == {}
