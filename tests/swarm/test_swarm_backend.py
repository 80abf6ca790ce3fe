# -*- coding: utf-8 -*-
"""portainer_stack with backend=swarm, run ON the manager (community.docker.docker_api connection), same options
as through Portainer: deploy + convergence, no-op without a deploy, env change, check mode, bad input, removal."""

import json

import pytest

import swarm_lab

from phoenix_testlib import wait_equal, wait_for

NAME = 'phx-swarm-direct'
COMPOSE = """version: '3.8'
services:
  web:
    image: phoenix-lab/guest:latest
    command: ["sleep", "100000"]
    stop_grace_period: 1s
    environment:
      DIRECT_TOKEN: ${DIRECT_TOKEN:?set by the stack env}
      LEVEL: ${LEVEL:-info}
    deploy:
      replicas: 2
      placement:
        constraints: [node.labels.phoenix.role == worker]
"""
TOKEN = 'direct-token-5e1b7c9a3d'


@pytest.fixture(scope='module')
def lab(swarm):
    return swarm


def run(args, check=False):
    full = {'name': NAME, 'backend': 'swarm', 'wait_timeout': 120}
    full.update(args)
    return swarm_lab.run_on_manager('portainer_stack', full, check=check)


def ok(result):
    assert not result.get('failed'), json.dumps(result, indent=1)[:4000]
    return result


def env_of(lab, service):
    out = swarm_lab.node(swarm_lab.MGR, 'service', 'inspect', service, '--format',
                         '{{json .Spec.TaskTemplate.ContainerSpec.Env}}').stdout
    return json.loads(out)


def test_bad_compose_fails_before_any_call(lab):
    result = run({'compose': 'services:\n  web: not-a-mapping\n', 'env': {'DIRECT_TOKEN': TOKEN}})
    assert result['failed'] and 'service web must be a mapping' in result['msg']
    assert result['api_calls'] == {}


def test_deploy_converges_then_noop(lab):
    env = {'DIRECT_TOKEN': TOKEN, 'LEVEL': 'info'}
    first = ok(run({'compose': COMPOSE, 'env': env}))
    assert first['changed'] and first['stack_action'] == 'created' and first['deploys'] == 1
    assert [(s['name'], s['running'], s['desired']) for s in first['services']] == [('phx-swarm-direct_web', 2, 2)]
    wait_equal(lambda: lab.task_nodes('phx-swarm-direct_web'), [swarm_lab.WKR, swarm_lab.WKR],
               'running tasks of phx-swarm-direct_web')
    assert TOKEN not in json.dumps(first)
    again = ok(run({'compose': COMPOSE, 'env': env}))
    assert again['changed'] is False and again['deploys'] == 0
    # GET /swarm: the manager join token keys the hash of the secret DIRECT_TOKEN (no secret_hash_key given)
    assert again['api_calls'] == {'GET docker:/configs': 1, 'GET docker:/services': 1, 'GET docker:/swarm': 1}


def test_check_mode_then_env_change(lab):
    env = {'DIRECT_TOKEN': 'direct-token-rotated-77', 'LEVEL': 'debug'}
    checked = ok(run({'compose': COMPOSE, 'env': env}, check=True))
    assert checked['changed'] and checked['stack_action'] == 'updated' and checked['deploys'] == 0
    assert 'LEVEL: debug' in checked['diff'][1]['after'] and '********' in checked['diff'][1]['after']
    assert 'direct-token-rotated-77' not in json.dumps(checked) and TOKEN not in json.dumps(checked)
    assert 'LEVEL=info' in env_of(lab, 'phx-swarm-direct_web')
    updated = ok(run({'compose': COMPOSE, 'env': env, 'wait': False}))
    assert updated['changed'] and updated['stack_action'] == 'updated' and updated['deploys'] == 1
    wait_for(lambda: env_of(lab, 'phx-swarm-direct_web'), lambda env: 'LEVEL=debug' in env,
             'LEVEL=debug in the service environment')


def test_removal(lab):
    gone = ok(run({'state': 'absent'}))
    assert gone['changed'] and gone['stack_action'] == 'deleted'
    wait_equal(lambda: lab.services(NAME), {}, 'services of %s after its removal' % NAME)
    assert ok(run({'state': 'absent'}))['changed'] is False
