# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Docker Swarm side of stack deployment, shared by both backends of portainer_stack.

- ``DockerApi``: the Docker Engine API over its unix socket (or tcp://), counted like the Portainer client.
- ``stack_state`` / ``wait_converged`` / ``wait_removed``: read a stack's services and tasks from Docker API
  JSON (the socket, or Portainer's ``/api/endpoints/{id}/docker`` proxy) and decide convergence: every
  replicated service runs its desired number of tasks of its current spec (tasks of the previous spec do not
  count) and its update, if one started, is ``completed``; a paused or rolled-back update fails at once with
  Docker's update message, a timeout names the service, the task and Docker's error.
- ``SwarmBackend``: the direct-Swarm backend for users without Portainer. It deploys with
  ``docker stack deploy`` (no ``--with-registry-auth``) and keeps the rendered compose, the env (secret
  values only as hashes) and their content hash in a Docker config labelled with the stack namespace,
  so that an unchanged stack is detected from one API read and ``docker stack rm`` removes the record too.

Why ``DockerApi`` is written here instead of using the Docker SDK for Python (``docker``, pinned for the
controller and the lab; the docker role installs Debian's ``python3-docker`` on the managers). Checked for
issue #19, the SDK is kept out of this module for these reasons:

- The convergence code reads Docker API JSON from two places: the manager's socket (Swarm backend, run on the
  manager) and Portainer's ``/api/endpoints/{id}/docker`` proxy (Portainer backend, run on the controller), which
  wants Portainer's API key in a header on every request. The SDK has no documented per-client header setting
  (only ``HttpHeaders`` from the user's ``~/.docker/config.json``, docker/utils/decorators.py update_headers;
  anything else leans on its APIClient being a requests.Session), so it would serve the socket only. A single
  client over plain JSON keeps one convergence path for both backends.
- The Engine API has no stacks: ``docker stack deploy`` and ``docker stack rm`` turn the compose file into
  services, networks, configs and secrets inside the docker CLI. The Swarm backend needs the CLI either way; the
  SDK would only replace the reads and the state record (GET /swarm, /services, /tasks, /networks, /configs;
  POST /configs/create; DELETE /configs/{id}).
- The SDK version on a manager is the distribution's, not the pin: ``python3-docker`` is 5.0.3 on Debian 12
  (the pin is 7.2.0). Every call above exists in 5.0.3 (configs need API 1.30; version ``None`` negotiates with
  the engine), so the version is not what rules it out. But a user who changes ``docker_packages`` can leave it
  out, and this client needs nothing beyond the standard library.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import base64
import json
import socket
import time

from ansible.module_utils.six.moves import http_client
from ansible.module_utils.six.moves.urllib.parse import quote, urlencode, urlsplit

NAMESPACE_LABEL = 'com.docker.stack.namespace'
STATE_LABEL = 'io.thinkheads.phoenix.stack'
HASH_LABEL = 'io.thinkheads.phoenix.content-hash'
STATE_PREFIX = 'phoenix-state'


class SwarmError(Exception):
    pass


class DockerApi:
    """Minimal Docker Engine API client; ``calls`` counts requests per method and path."""

    def __init__(self, url='unix:///var/run/docker.sock', timeout=60):
        self.url = url
        self.timeout = timeout
        self.calls = {}

    def _connection(self):
        if self.url.startswith('unix://'):
            path, timeout = self.url[len('unix://'):], self.timeout

            class UnixConnection(http_client.HTTPConnection):
                def connect(self):
                    self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    self.sock.settimeout(timeout)
                    self.sock.connect(path)
            return UnixConnection('localhost', timeout=timeout)
        parts = urlsplit(self.url.replace('tcp://', 'http://', 1))
        return http_client.HTTPConnection(parts.hostname, parts.port or 2375, timeout=self.timeout)

    def request(self, method, path, query=None, body=None, expect=None):
        key = '%s docker:%s' % (method, path.split('?')[0])
        self.calls[key] = self.calls.get(key, 0) + 1
        if query:
            path = '%s?%s' % (path, urlencode(sorted(query.items())))
        conn = self._connection()
        try:
            headers = {'Content-Type': 'application/json'} if body is not None else {}
            conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        except (socket.error, OSError) as exc:
            raise SwarmError('Docker engine at %s is unreachable: %s' % (self.url, exc)) from None
        finally:
            conn.close()
        text = raw.decode('utf-8', 'replace')
        if resp.status >= 400:
            if expect and resp.status in expect:
                return None
            try:
                message = json.loads(text).get('message', text)
            except (ValueError, AttributeError):
                message = text
            raise SwarmError('Docker API %s %s failed (HTTP %s): %s' % (method, path, resp.status, message.strip()))
        return json.loads(text) if text.strip() else None

    def get(self, path, query=None):
        return self.request('GET', path, query)


def label_filter(*labels):
    return {'filters': json.dumps({'label': list(labels)})}


# -- convergence (Docker API JSON from the socket or Portainer's proxy) ------------------------------

# UpdateStatus.State of a service (Docker Engine API, swarmkit's updater): absent until an update starts (every
# service update resets it), then updating -> completed, or paused / rollback_started -> rollback_completed or
# rollback_paused when new tasks fail
UPDATE_DONE = (None, 'completed')
UPDATE_FAILED = ('paused', 'rollback_started', 'rollback_paused', 'rollback_completed')


def current_tasks_filter(name):
    """The tasks of the stack's services that run their service's current spec: the ``_up-to-date`` filter the docker
    CLI's convergence check uses (cli/command/service/progress); the engine keeps a task when swarmkit does not find
    it dirty (its spec version, or else its spec, equals the service's). The engine API shows no spec version on a
    task, so a client cannot tell old from new tasks itself. The label filter matches the service's labels."""
    return {'filters': json.dumps({'label': ['%s=%s' % (NAMESPACE_LABEL, name)], '_up-to-date': ['true']})}


def stack_state(get, name):
    """[{name, mode, desired, running, update_state, update_message, image, error, converged}] for the stack's
    services. ``running`` counts only tasks of the service's current spec: right after an update the tasks of the
    previous spec still run until the rollout replaces them, and must not count."""
    services = get('/services', label_filter('%s=%s' % (NAMESPACE_LABEL, name))) or []
    if not services:
        return []
    ids = dict((s['ID'], s) for s in services)
    tasks = [t for t in (get('/tasks', current_tasks_filter(name)) or []) if t.get('ServiceID') in ids]
    out = []
    for sid, svc in sorted(ids.items(), key=lambda item: item[1]['Spec']['Name']):
        mode = svc['Spec'].get('Mode') or {}
        desired = (mode.get('Replicated') or {}).get('Replicas') if 'Replicated' in mode else None
        mine = [t for t in tasks if t.get('ServiceID') == sid]
        wanted = [t for t in mine if t.get('DesiredState') == 'running']
        running = [t for t in wanted if (t.get('Status') or {}).get('State') == 'running']
        update = svc.get('UpdateStatus') or {}
        update_state = update.get('State') or None
        errors = []
        for task in sorted(mine, key=lambda t: (t.get('UpdatedAt') or ''), reverse=True):
            status = task.get('Status') or {}
            if status.get('Err') or status.get('State') in ('failed', 'rejected'):
                errors.append('task %s.%s (%s) on node %s: %s' % (
                    svc['Spec']['Name'], task.get('Slot') or task.get('ID', '')[:12], status.get('State'),
                    (task.get('NodeID') or '?')[:12], status.get('Err') or status.get('Message')))
        # global: every task of the current spec runs, and there is one (the updater may not have started them)
        replicas_ok = len(running) >= desired if desired is not None else 0 < len(running) == len(wanted)
        out.append({
            'name': svc['Spec']['Name'], 'mode': 'replicated' if desired is not None else 'global',
            'desired': desired, 'running': len(running), 'update_state': update_state,
            'update_message': update.get('Message') or None,
            'image': ((svc['Spec'].get('TaskTemplate') or {}).get('ContainerSpec') or {}).get('Image', '').split('@')[0],
            'error': errors[0] if errors else None,
            'converged': replicas_ok and update_state in UPDATE_DONE,
        })
    return out


def wait_converged(get, name, timeout, sleep=time.sleep, interval=2.0):
    """Poll until every service of the stack runs its desired replicas of its current spec and its update, if one
    started, is ``completed``; raise naming the services whose update is paused or rolled back (Docker's message),
    or, on timeout, those not converged. Polls after 0.5 s, then less often, up to every ``interval`` seconds."""
    deadline = time.time() + timeout
    state = []
    pause = min(0.5, interval)
    while True:
        state = stack_state(get, name)
        bad = [s for s in state if s['update_state'] in UPDATE_FAILED]
        if bad:
            raise SwarmError(_not_converged(name, bad, 'update failed (paused or rolled back)'))
        if state and all(s['converged'] for s in state):
            return state
        if time.time() >= deadline:
            waiting = [s for s in state if not s['converged']]
            raise SwarmError(_not_converged(name, waiting or state, 'not converged after %ss' % timeout)
                             if state else 'stack %s has no services after %ss' % (name, timeout))
        sleep(pause)
        pause = min(pause * 2, interval)


def _not_converged(name, services, why):
    parts = []
    for svc in services:
        parts.append('%s: %s/%s running%s%s' % (
            svc['name'], svc['running'], svc['desired'] if svc['desired'] is not None else 'global',
            ', update %s%s' % (svc['update_state'], ' (%s)' % svc['update_message'] if svc.get('update_message')
                               else '') if svc['update_state'] else '',
            ', last error: %s' % svc['error'] if svc['error'] else ''))
    return 'stack %s %s: %s' % (name, why, '; '.join(parts))


def wait_removed(get, name, timeout, sleep=time.sleep, interval=1.0):
    """Until no service, and no network, of the stack is left (so it can be created again at once)."""
    deadline = time.time() + timeout
    flt = label_filter('%s=%s' % (NAMESPACE_LABEL, name))
    while True:
        if not (get('/services', flt) or []) and not (get('/networks', flt) or []):
            return
        if time.time() >= deadline:
            raise SwarmError('stack %s is still being removed after %ss' % (name, timeout))
        sleep(interval)


# -- the direct-Swarm backend ------------------------------------------------------------------------------

class SwarmBackend:
    """Deploys with the docker CLI on a manager; ``run(args, data=None, environ_update=None)`` runs a command
    and returns (rc, stdout, stderr) (AnsibleModule.run_command's signature)."""

    def __init__(self, run, docker_host='unix:///var/run/docker.sock', docker_bin='docker'):
        self.run = run
        self.api = DockerApi(docker_host)
        self.docker_host = docker_host
        self.docker_bin = docker_bin

    @property
    def calls(self):
        return self.api.calls

    def _cli(self, args, data=None, env=None):
        key = 'CLI docker %s' % ' '.join(a for a in args[:2])
        self.api.calls[key] = self.api.calls.get(key, 0) + 1
        environ = {'DOCKER_HOST': self.docker_host}
        environ.update(env or {})
        rc, out, err = self.run([self.docker_bin] + args, data=data, environ_update=environ)
        if rc != 0:
            raise SwarmError('docker %s failed (rc %s): %s' % (' '.join(args[:2]), rc, (err or out).strip()))
        return out

    def swarm_id(self):
        info = self.api.get('/swarm')
        return info['ID']

    def find(self, name):
        """The stored record {id, name, hash, compose, env} of a stack this backend deployed, or None."""
        configs = self.api.get('/configs', label_filter('%s=%s' % (STATE_LABEL, name))) or []
        if not configs:
            return None
        configs.sort(key=lambda c: c.get('CreatedAt', ''))
        latest = configs[-1]
        data = json.loads(base64.b64decode(latest['Spec']['Data']).decode('utf-8'))
        data.update({'id': latest['ID'], 'name': latest['Spec']['Name'],
                     'hash': latest['Spec'].get('Labels', {}).get(HASH_LABEL), 'stale': [c['ID'] for c in configs[:-1]]})
        return data

    def external(self, name):
        """Whether Swarm runs services of this stack (deployed by someone else)."""
        return bool(self.api.get('/services', label_filter('%s=%s' % (NAMESPACE_LABEL, name))))

    def deploy(self, name, compose, env, record_env, content_hash, prune=False, pull_image=False, previous=None):
        args = ['stack', 'deploy', '--compose-file', '-', '--resolve-image', 'always' if pull_image else 'never']
        if prune:
            args.append('--prune')
        args.append(name)
        self._cli(args, data=compose, env=dict((e['name'], e['value']) for e in env))
        payload = json.dumps({'compose': compose, 'env': record_env}, sort_keys=True)
        config_name = '%s_%s_%s' % (STATE_PREFIX, name, content_hash[:16])
        existing = self.api.get('/configs', {'filters': json.dumps({'name': [config_name]})}) or []
        if not [c for c in existing if c['Spec']['Name'] == config_name]:
            self.api.request('POST', '/configs/create', body={
                'Name': config_name,
                'Labels': {NAMESPACE_LABEL: name, STATE_LABEL: name, HASH_LABEL: content_hash},
                'Data': base64.b64encode(payload.encode('utf-8')).decode('ascii')})
        if previous:
            stale = list(previous.get('stale') or [])
            if previous.get('name') != config_name:
                stale.append(previous['id'])
            for cid in stale:
                self.api.request('DELETE', '/configs/%s' % quote(cid, safe=''), expect=(404,))

    def remove(self, name):
        self._cli(['stack', 'rm', name])
