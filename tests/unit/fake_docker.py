# -*- coding: utf-8 -*-
"""An in-memory Docker Swarm engine on a unix socket, and a ``docker`` CLI stand-in that deploys to it, so that the
Portainer test double (lab/portainersim) runs its stack endpoints without Docker in the unit tests.

Only what the double and portainer_stack use: ``/_ping``, ``/swarm``, ``/services`` (label filters),
``/services/create``, ``/tasks`` (filters ``label``, ``service`` and the CLI's ``_up-to-date``), ``/networks``,
``/configs``, ``/configs/create``, ``DELETE /configs/{id}``, ``/secrets``, ``/secrets/create``, ``DELETE
/secrets/{id}`` (refused while a service uses the secret), ``/containers/json``. Every replicated service runs its replicas at once (tasks
``running``); an update that changes a service's task template replaces its tasks and ends with ``UpdateStatus``
``completed``, at once or, with ``engine.update_plan``, one stage per ``GET /services`` (see ``UPDATE_STAGES``).
Tasks keep the ``Spec`` they were created for, so that old and new tasks can be told apart as Docker does
(``_up-to-date``: the task's spec equals the service's ``TaskTemplate``). The CLI understands ``stack deploy
[--prune] --compose-file FILE NAME`` (services, images, replicas, labels, environment with ``${VAR}`` filled from
its own environment as ``docker stack deploy`` does) and ``stack rm NAME``; it records each call in the engine
(``engine.cli_calls``). The real behaviour is covered by tests/swarm.
"""

import copy
import json
import os
import re
import shutil
import socketserver
import stat
import sys
import tempfile
import threading
import uuid
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

NAMESPACE = 'com.docker.stack.namespace'
SWARM_ID = 'fakeswarm0123456789abcdefg'
MANAGER_TOKEN = 'SWMTKN-1-fakeswarmrootcahash-fakemanagersecret'
# stages of a service update, one per GET /services when engine.update_plan lists them: 'pending' (spec updated,
# UpdateStatus reset, old tasks still running), 'updating' (old tasks stopped, new ones starting), 'completed',
# 'paused', 'rollback_started', 'rollback_completed' (new tasks failed; the last restores PreviousSpec)
UPDATE_STAGES = ('pending', 'updating', 'completed', 'paused', 'rollback_started', 'rollback_completed')

CLI = r'''#!%(python)s
# docker CLI stand-in for the unit tests (tests/unit/fake_docker.py): stack deploy / stack rm only (-H or DOCKER_HOST)
import http.client, json, os, re, socket, sys
import yaml

args = sys.argv[1:]
host = os.environ.get('DOCKER_HOST')
while args and args[0].startswith('-'):
    flag = args.pop(0)
    value = args.pop(0)
    if flag in ('-H', '--host'):
        host = value
path = host[len('unix://'):]


class Conn(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)


def post(url, body):
    conn = Conn('localhost')
    conn.request('POST', url, body=json.dumps(body), headers={'Content-Type': 'application/json'})
    resp = conn.getresponse()
    text = resp.read().decode()
    if resp.status >= 400:
        sys.stderr.write(text + '\n')
        sys.exit(1)


def fill(text):
    def one(match):
        name, default = match.group(1), match.group(3)
        return os.environ.get(name) or (default or '')
    return re.sub(r'\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}', one, text)


if args[:2] == ['stack', 'deploy']:
    rest = args[2:]
    prune = '--prune' in rest
    compose = rest[rest.index('--compose-file') + 1]
    name = rest[-1]
    if compose == '-':
        doc = yaml.safe_load(fill(sys.stdin.read()))
    else:
        with open(compose) as handle:
            doc = yaml.safe_load(fill(handle.read()))
    services = {}
    for svc, spec in (doc.get('services') or {}).items():
        deploy = spec.get('deploy') or {}
        labels = deploy.get('labels') or {}
        if isinstance(labels, list):
            labels = dict(item.split('=', 1) for item in labels)
        environment = spec.get('environment') or {}
        if isinstance(environment, dict):
            environment = ['%%s=%%s' %% (k, '' if v is None else v) for k, v in environment.items()]
        secrets = []
        for ref in spec.get('secrets') or []:
            key = ref if isinstance(ref, str) else ref['source']
            top = (doc.get('secrets') or {}).get(key) or {}
            secrets.append(top.get('name') or '%%s_%%s' %% (name, key))
        services[svc] = {'image': spec.get('image', ''), 'replicas': deploy.get('replicas', 1),
                         'labels': labels, 'env': environment, 'secrets': secrets}
    post('/fake/deploy', {'name': name, 'services': services, 'prune': prune, 'argv': sys.argv[1:]})
elif args[:2] == ['stack', 'rm']:
    post('/fake/rm', {'name': args[2], 'argv': sys.argv[1:]})
else:
    sys.stderr.write('fake docker: unsupported command %%s\n' %% ' '.join(args))
    sys.exit(2)
'''


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def _filter_values(filters, name):
    """A Docker filter's values, given as a list or as {value: true} (both forms the engine accepts)."""
    values = filters.get(name) or []
    if isinstance(values, dict):
        values = [k for k, v in values.items() if v]
    return list(values)


def _labels_match(labels, wanted):
    for item in wanted:
        key, sep, value = item.partition('=')
        if key not in labels or (sep and labels[key] != value):
            return False
    return True


class FakeEngine:
    """The engine's state, served on ``self.url`` (unix://...)."""

    def __init__(self):
        # a short directory of its own: a unix socket path must stay under 108 bytes
        self.directory = tempfile.mkdtemp(prefix='fakedocker-')
        self.socket_path = os.path.join(self.directory, 'docker.sock')
        self.url = 'unix://' + self.socket_path
        self.services = {}      # id -> service JSON
        self.configs = {}       # id -> config JSON
        self.secrets = {}       # id -> secret JSON (Spec with the Data, which Docker never returns)
        self.networks = {}      # name -> network JSON
        self.tasks = {}         # id -> task JSON
        self.task_serial = 0
        self.plans = {}         # service id -> stages of its update still to come
        self.update_plan = None  # None: updates complete at once; else the stages (UPDATE_STAGES) of each update
        self.cli_calls = []
        self.lock = threading.Lock()
        engine = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def log_message(self, *args):
                pass

            def address_string(self):
                return 'unix'

            def _reply(self, status, body=None, raw=None):
                data = raw if raw is not None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header('Content-Type', 'text/plain' if raw is not None else 'application/json')
                self.send_header('Content-Length', str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _serve(self, method):
                parts = urlsplit(self.path)
                query = dict((k, v[-1]) for k, v in parse_qs(parts.query).items())
                length = int(self.headers.get('Content-Length') or 0)
                body = json.loads(self.rfile.read(length).decode() or 'null') if length else None
                path = re.sub(r'^/v[0-9.]+', '', parts.path)
                with engine.lock:
                    status, answer = engine.answer(method, path, query, body)
                if isinstance(answer, bytes):
                    self._reply(status, raw=answer)
                else:
                    self._reply(status, answer)

            def do_GET(self):  # noqa: N802
                self._serve('GET')

            def do_POST(self):  # noqa: N802
                self._serve('POST')

            def do_DELETE(self):  # noqa: N802
                self._serve('DELETE')

        self.server = _UnixServer(self.socket_path, Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def write_cli(self):
        """The ``docker`` stand-in, for portainersim's --docker-bin."""
        path = os.path.join(self.directory, 'docker')
        with open(path, 'w') as handle:
            handle.write(CLI % {'python': sys.executable})
        os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        return path

    # -- the state --------------------------------------------------------------------------------------

    def stack_services(self, name):
        return dict((s['Spec']['Name'], s) for s in self.services.values()
                    if s['Spec']['Labels'].get(NAMESPACE) == name)

    def add_service(self, spec):
        sid = uuid.uuid4().hex[:25]
        self.services[sid] = {'ID': sid, 'Version': {'Index': 1}, 'Spec': spec}
        self._scale(self.services[sid])
        return sid

    # -- tasks: each keeps the spec it was created for; swarmkit's updater replaces those of an older spec ------

    def _new_task(self, service, slot, state='running'):
        self.task_serial += 1
        tid = '%s%04d' % (service['ID'][:20], self.task_serial)
        self.tasks[tid] = {'ID': tid, 'Version': {'Index': self.task_serial}, 'ServiceID': service['ID'],
                           'Slot': slot, 'NodeID': 'fakenode', 'Spec': copy.deepcopy(service['Spec']['TaskTemplate']),
                           'DesiredState': 'running', 'Status': {'State': state, 'Message': state}}
        return self.tasks[tid]

    def service_tasks(self, service, current=None):
        """The service's tasks desired running; ``current``: only those of its spec (True) or of an older one."""
        out = []
        for task in sorted(self.tasks.values(), key=lambda t: t['Version']['Index']):
            if task['ServiceID'] != service['ID'] or task['DesiredState'] != 'running':
                continue
            if current is None or (task['Spec'] == service['Spec']['TaskTemplate']) == current:
                out.append(task)
        return out

    @staticmethod
    def _shutdown(task, state='shutdown', err=None):
        task['DesiredState'] = 'shutdown'
        task['Status'] = dict(task['Status'], State=state, Message=state)
        if err:
            task['Status']['Err'] = err

    def _replicas(self, service):
        return ((service['Spec'].get('Mode') or {}).get('Replicated') or {}).get('Replicas', 1)

    def _scale(self, service):
        """Replicas of the current spec started, or the highest slots stopped, to the wanted count."""
        tasks = self.service_tasks(service)
        slots = set(t['Slot'] for t in tasks)
        for slot in range(1, self._replicas(service) + 1):
            if slot not in slots:
                self._new_task(service, slot)
        for task in tasks:
            if task['Slot'] > self._replicas(service):
                self._shutdown(task)

    def _roll(self, service, stage):
        """One stage of an update (UPDATE_STAGES), as swarmkit's updater shows it through the API."""
        sid = service['ID']
        if stage == 'pending':          # updated spec, UpdateStatus reset, the updater has not started yet
            return
        if stage == 'updating':         # old tasks stopped, new ones starting
            for task in self.service_tasks(service, current=False):
                self._shutdown(task)
                self._new_task(service, task['Slot'], state='starting')
            service['UpdateStatus'] = {'State': 'updating', 'Message': 'update in progress'}
        elif stage == 'completed':
            for task in self.service_tasks(service, current=True):
                task['Status'] = dict(task['Status'], State='running', Message='started')
            service['UpdateStatus'] = {'State': 'completed', 'Message': 'update completed'}
        elif stage in ('paused', 'rollback_started', 'rollback_completed'):
            failed = self.service_tasks(service, current=True)
            for task in failed:
                self._shutdown(task, state='failed', err='task: non-zero exit (1)')
            tid = failed[0]['ID'] if failed else sid
            if stage == 'paused':
                message = 'update paused due to failure or early termination of task %s' % tid
            else:
                message = 'update rolled back due to failure or early termination of task %s' % tid
            if stage == 'rollback_completed':
                service['Spec'], service['PreviousSpec'] = service['PreviousSpec'], service['Spec']
                self._scale(service)
                message = 'rollback completed'
            service['UpdateStatus'] = {'State': stage, 'Message': message}
        service.setdefault('UpdateStatus', {})['StartedAt'] = '2026-01-01T00:00:00Z'

    def _update(self, service, spec):
        """ServiceUpdate: PreviousSpec kept, UpdateStatus reset (swarmkit controlapi UpdateService), then the
        rollout: at once, or staged by ``update_plan``."""
        service['PreviousSpec'], service['Spec'] = service['Spec'], spec
        service['Version']['Index'] += 1
        service.pop('UpdateStatus', None)
        self.plans.pop(service['ID'], None)
        if not self.service_tasks(service, current=False):
            self._scale(service)         # no task of an older spec: nothing to roll out
            return
        if self.update_plan is None:
            self._roll(service, 'updating')
            self._roll(service, 'completed')
            self._scale(service)
        else:
            self.plans[service['ID']] = list(self.update_plan)

    def _advance(self):
        for sid in list(self.plans):
            service = self.services.get(sid)
            if service is None or not self.plans[sid]:
                self.plans.pop(sid, None)
                continue
            self._roll(service, self.plans[sid].pop(0))

    def _deploy(self, body):
        name = body['name']
        current = self.stack_services(name)
        by_name = dict((s['Spec']['Name'], sid) for sid, s in self.secrets.items())
        for spec in body['services'].values():
            missing = [s for s in spec.get('secrets') or [] if s not in by_name]
            if missing:   # docker stack deploy: an external secret must exist
                return 'secret not found: %s' % missing[0]
        for svc, spec in body['services'].items():
            full = '%s_%s' % (name, svc)
            labels = dict(spec['labels'], **{NAMESPACE: name})
            container = {'Image': spec['image'], 'Env': spec['env'], 'Labels': {NAMESPACE: name}}
            if spec.get('secrets'):
                container['Secrets'] = [{'SecretName': s, 'SecretID': by_name[s]} for s in spec['secrets']]
            wanted = {'Name': full, 'Labels': labels, 'Mode': {'Replicated': {'Replicas': spec['replicas']}},
                      'TaskTemplate': {'ContainerSpec': container}}
            if full in current:
                self._update(current[full], wanted)
            else:
                self.add_service(wanted)
        if body['prune']:
            for full, service in current.items():
                if full[len(name) + 1:] not in body['services']:
                    self._remove_service(service['ID'])
        net = '%s_default' % name
        self.networks.setdefault(net, {'Id': uuid.uuid4().hex, 'Name': net, 'Labels': {NAMESPACE: name}})
        return None

    def _remove_service(self, sid):
        del self.services[sid]
        self.plans.pop(sid, None)
        for tid in [t for t, task in self.tasks.items() if task['ServiceID'] == sid]:
            del self.tasks[tid]

    def _rm(self, body):
        name = body['name']
        for service in list(self.stack_services(name).values()):
            self._remove_service(service['ID'])
        for net in [n for n, v in self.networks.items() if v['Labels'].get(NAMESPACE) == name]:
            del self.networks[net]
        # docker stack rm removes the secrets and configs that carry the stack's namespace label too
        for sid in [k for k, v in self.secrets.items() if (v['Spec'].get('Labels') or {}).get(NAMESPACE) == name]:
            del self.secrets[sid]

    def _tasks(self, filters):
        """GET /tasks: the label filter matches the service's labels, _up-to-date the tasks whose spec is the
        service's (swarmkit controlapi ListTasks, orchestrator.IsTaskDirty)."""
        wanted, services = _filter_values(filters, 'label'), _filter_values(filters, 'service')
        out = []
        for task in sorted(self.tasks.values(), key=lambda t: t['Version']['Index']):
            service = self.services.get(task['ServiceID'])
            if service is None or (services and task['ServiceID'] not in services):
                continue
            if not _labels_match(service['Spec'].get('Labels') or {}, wanted):
                continue
            if _filter_values(filters, '_up-to-date') and task['Spec'] != service['Spec']['TaskTemplate']:
                continue
            out.append(copy.deepcopy(task))
        return out

    def answer(self, method, path, query, body):  # pylint: disable=too-many-return-statements
        filters = json.loads(query.get('filters') or '{}')
        wanted = _filter_values(filters, 'label')
        if path == '/_ping':
            return 200, b'OK'
        if path == '/swarm' and method == 'GET':
            tokens = {'Worker': 'SWMTKN-1-fakeswarmrootcahash-fakeworker', 'Manager': MANAGER_TOKEN}
            return 200, {'ID': SWARM_ID, 'JoinTokens': tokens}
        if path == '/services' and method == 'GET':
            self._advance()
            return 200, [s for s in self.services.values() if _labels_match(s['Spec'].get('Labels') or {}, wanted)]
        if path == '/services/create' and method == 'POST':
            return 201, {'ID': self.add_service(body)}
        if path == '/tasks' and method == 'GET':
            return 200, self._tasks(filters)
        if path == '/networks' and method == 'GET':
            return 200, [n for n in self.networks.values() if _labels_match(n['Labels'], wanted)]
        if path == '/containers/json' and method == 'GET':
            return 200, []
        if path == '/configs' and method == 'GET':
            names = filters.get('name') or []
            return 200, [c for c in self.configs.values() if (not names or c['Spec']['Name'] in names)
                         and _labels_match(c['Spec'].get('Labels') or {}, wanted)]
        if path == '/configs/create' and method == 'POST':
            if any(c['Spec']['Name'] == body['Name'] for c in self.configs.values()):
                return 409, {'message': 'config %s already exists' % body['Name']}
            cid = uuid.uuid4().hex[:25]
            self.configs[cid] = {'ID': cid, 'Spec': body}
            return 201, {'ID': cid}
        if path.startswith('/configs/') and method == 'DELETE':
            if self.configs.pop(path[len('/configs/'):], None) is None:
                return 404, {'message': 'config %s not found' % path[len('/configs/'):]}
            return 204, b''
        if path == '/secrets' and method == 'GET':
            return 200, [dict(s, Spec=dict((k, v) for k, v in s['Spec'].items() if k != 'Data'))
                         for s in self.secrets.values() if _labels_match(s['Spec'].get('Labels') or {}, wanted)]
        if path == '/secrets/create' and method == 'POST':
            if any(s['Spec']['Name'] == body['Name'] for s in self.secrets.values()):
                return 409, {'message': 'secret %s already exists' % body['Name']}
            sid = uuid.uuid4().hex[:25]
            self.secrets[sid] = {'ID': sid, 'Spec': body}
            return 201, {'ID': sid}
        if path.startswith('/secrets/') and method == 'DELETE':
            sid = path[len('/secrets/'):]
            users = [s['Spec']['Name'] for s in self.services.values() if sid in [
                r.get('SecretID') for r in s['Spec']['TaskTemplate']['ContainerSpec'].get('Secrets') or []]]
            if users:
                return 400, {'message': 'rpc error: code = InvalidArgument desc = secret %s is in use by the '
                                        'following service: %s' % (sid, users[0])}
            if self.secrets.pop(sid, None) is None:
                return 404, {'message': 'secret %s not found' % sid}
            return 204, b''
        if path == '/fake/deploy' and method == 'POST':
            self.cli_calls.append(['stack', 'deploy', body['name']])
            why = self._deploy(body)
            if why:
                return 400, {'message': why}
            return 200, {}
        if path == '/fake/rm' and method == 'POST':
            self.cli_calls.append(['stack', 'rm', body['name']])
            self._rm(body)
            return 200, {}
        return 404, {'message': 'page not found (fake engine: %s %s)' % (method, path)}


def unreachable_socket(directory):
    """A unix:// URL where nothing listens."""
    return 'unix://' + os.path.join(str(directory), 'nothing-listens-here.sock')


def start_double(data_dir, engine, admin_password, ban=1.0):
    """The Portainer test double in process, on 127.0.0.1, its 'primary' environment on ``engine``, its rate limiter
    banning for ``ban`` seconds. Returns (server, url); ``server.sim`` is the double's state."""
    from http.server import ThreadingHTTPServer
    here = os.path.dirname(os.path.abspath(__file__))
    double = os.path.abspath(os.path.join(here, '..', '..', 'lab', 'portainersim'))
    if double not in sys.path:
        sys.path.insert(0, double)
    from portainersim import server as sim
    os.makedirs(str(data_dir), exist_ok=True)
    password_file = os.path.join(str(data_dir), 'admin_password')
    with open(password_file, 'w') as handle:
        handle.write(admin_password)
    args = sim.parse_args(['--data', os.path.join(str(data_dir), 'data'), '-H', engine.url, '--admin-password-file',
                           password_file, '--docker-bin', engine.write_cli(), '--sim-ratelimit-ban', str(ban)])
    httpd = ThreadingHTTPServer(('127.0.0.1', 0), sim.Handler)
    httpd.sim = sim.Sim(args)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, 'http://127.0.0.1:%d' % httpd.server_address[1]
