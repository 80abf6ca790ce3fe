# -*- coding: utf-8 -*-
"""Convergence of a stack (module_utils/swarm_stack.py wait_converged) against the in-memory engine of
tests/unit/fake_docker.py: only tasks of a service's current spec count, an update is waited for until Docker says
``completed``, and a paused or rolled-back update fails at once naming the service and Docker's update message."""

import pytest

from fake_docker import FakeEngine

from ansible_collections.thinkheads.phoenix.plugins.module_utils.swarm_stack import (
    SwarmError, current_tasks_filter, stack_state, wait_converged,
)

NAME = 'phx-conv'


@pytest.fixture
def engine():
    engine = FakeEngine()
    yield engine
    engine.close()


def getter(engine):
    def get(path, query=None):
        return engine.answer('GET', path, dict(query or {}), None)[1]
    return get


def deploy(engine, image, replicas=2):
    engine._deploy({'name': NAME, 'prune': False, 'services': {
        'web': {'image': image, 'replicas': replicas, 'labels': {}, 'env': ['LEVEL=info']}}})


def test_a_new_service_converges_without_update_status(engine):
    deploy(engine, 'guest:1')
    sleeps = []
    state = wait_converged(getter(engine), NAME, 10, sleep=sleeps.append)
    assert sleeps == [] and [(s['name'], s['running'], s['desired'], s['update_state']) for s in state] == [
        ('phx-conv_web', 2, 2, None)]


def test_an_update_is_waited_for_until_completed(engine):
    deploy(engine, 'guest:1')
    engine.update_plan = ['pending', 'updating', 'completed']
    deploy(engine, 'guest:2')
    # right after the deploy the tasks of guest:1 still run: they are not the service's current spec
    get = getter(engine)
    first = stack_state(get, NAME)[0]
    assert first['running'] == 0 and not first['converged']
    sleeps = []
    state = wait_converged(get, NAME, 10, sleep=sleeps.append)
    assert sleeps == [0.5]          # 'updating' once, then 'completed'
    assert [(s['running'], s['update_state'], s['image']) for s in state] == [(2, 'completed', 'guest:2')]
    current = get('/tasks', current_tasks_filter(NAME))
    assert len(current) == 2 and all(t['Spec']['ContainerSpec']['Image'] == 'guest:2' for t in current)


def test_replicas_only_change_needs_no_rollout(engine):
    deploy(engine, 'guest:1')
    engine.update_plan = ['pending', 'updating', 'completed']
    deploy(engine, 'guest:1', replicas=3)
    state = wait_converged(getter(engine), NAME, 10, sleep=lambda s: None)
    assert [(s['running'], s['desired'], s['update_state']) for s in state] == [(3, 3, None)]


@pytest.mark.parametrize('outcome, words', [
    ('paused', 'update paused (update paused due to failure or early termination of task'),
    ('rollback_started', 'update rollback_started (update rolled back due to failure'),
    ('rollback_completed', 'update rollback_completed (rollback completed)'),
])
def test_a_failed_update_fails_naming_the_service(engine, outcome, words):
    deploy(engine, 'guest:1')
    engine.update_plan = ['pending', 'updating', outcome]
    deploy(engine, 'guest:broken')
    with pytest.raises(SwarmError) as err:
        wait_converged(getter(engine), NAME, 30, sleep=lambda s: None)
    text = str(err.value)
    assert text.startswith('stack phx-conv update failed (paused or rolled back): phx-conv_web: ')
    assert words in text


def test_timeout_names_the_service_still_updating(engine):
    deploy(engine, 'guest:1')
    engine.update_plan = ['pending', 'updating']
    deploy(engine, 'guest:2')
    stack_state(getter(engine), NAME)           # the 'pending' stage
    with pytest.raises(SwarmError, match=r'not converged after 0s: phx-conv_web: 0/2 running, update updating '
                                         r'\(update in progress\)'):
        wait_converged(getter(engine), NAME, 0, sleep=lambda s: None)
