# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""portainersim's state: the Docker engine client and Sim (users, environments, stacks, JWTs, stack deploys)."""

from __future__ import absolute_import, division, print_function

import hashlib
import hmac
import http.client
import json
import os
import socket
import subprocess
import time
from urllib.parse import urlsplit

from .common import ADMIN_ROLE, ENDPOINT_DOCKER, JWT_LIFETIME, ApiError, RateLimiter, Store, _b64, _unb64, hash_password


class DockerEngine:
    """Raw Docker Engine API over unix:// or tcp://, for the proxy and the name checks."""

    def __init__(self, url):
        self.url = url

    def connection(self, timeout=60):
        if self.url.startswith('unix://'):
            path = self.url[len('unix://'):]

            class UnixConnection(http.client.HTTPConnection):
                def connect(self):
                    self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    self.sock.settimeout(timeout)
                    self.sock.connect(path)
            return UnixConnection('localhost', timeout=timeout)
        parts = urlsplit(self.url.replace('tcp://', 'http://', 1))
        return http.client.HTTPConnection(parts.hostname, parts.port or 2375, timeout=timeout)

    def call(self, method, path, body=None, headers=None, timeout=60):
        conn = self.connection(timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.getheader('Content-Type') or 'application/json', resp.read()
        finally:
            conn.close()

    def ping(self):
        """None when the engine answers GET /_ping, else why not."""
        try:
            status, _ctype, raw = self.call('GET', '/_ping', timeout=10)
        except (OSError, socket.timeout, http.client.HTTPException) as exc:
            return 'Cannot connect to the Docker daemon at %s: %s' % (self.url, exc)
        if status != 200:
            text = raw.decode('utf-8', 'replace')[:200]
            return 'Docker engine at %s answered HTTP %s to /_ping: %s' % (self.url, status, text)
        return None

    def json(self, method, path):
        status, _ctype, raw = self.call(method, path)
        if status >= 400:
            raise ApiError(500, 'Docker engine error', raw.decode('utf-8', 'replace'))
        return json.loads(raw.decode('utf-8') or 'null')


class Sim:
    def __init__(self, args):
        self.args = args
        self.store = Store(args.data)
        self.requests = []
        self.faults = []      # test-only network faults (POST /sim/faults)
        self.limiter = RateLimiter(ban=args.sim_ratelimit_ban)
        self.docker_bin = args.docker_bin
        self.docker_config = os.path.join(args.data, 'docker_config')
        os.makedirs(self.docker_config, exist_ok=True)
        with self.store.lock:
            if args.admin_password_file and not self._admins():
                with open(args.admin_password_file) as handle:
                    password = handle.read().strip()
                self._create_user('admin', password)
            if args.host and not self.store.db['endpoints']:
                self._add_endpoint('primary', ENDPOINT_DOCKER, args.host)
            self.store.save()

    # -- helpers -----------------------------------------------------------------------------------

    def _admins(self):
        return [u for u in self.store.db['users'] if u['Role'] == ADMIN_ROLE]

    def _create_user(self, username, password):
        user = {'Id': self.store.next_id('user'), 'Username': username, 'Role': ADMIN_ROLE,
                'Password': hash_password(password)}
        self.store.db['users'].append(user)
        return user

    def _add_endpoint(self, name, etype, url):
        endpoint = {'Id': self.store.next_id('endpoint'), 'Name': name, 'Type': etype, 'URL': url, 'GroupId': 1,
                    'PublicURL': '', 'Status': 1, 'TagIds': [], 'Snapshots': [], 'ContainerEngine': 'docker',
                    'TLSConfig': {'TLS': False, 'TLSSkipVerify': False}, 'Gpus': [], 'EdgeCheckinInterval': 0,
                    'Heartbeat': False, 'UserAccessPolicies': {}, 'TeamAccessPolicies': {}, 'Agent': {'Version': ''}}
        self.store.db['endpoints'].append(endpoint)
        return endpoint

    def endpoint(self, endpoint_id, status=404, message=None):
        for endpoint in self.store.db['endpoints']:
            if endpoint['Id'] == endpoint_id:
                return endpoint
        raise ApiError(status, message or 'Unable to find an environment with the specified identifier inside the '
                       'database', 'Object not found inside the database')

    def stack(self, stack_id):
        for stack in self.store.db['stacks']:
            if stack['Id'] == stack_id:
                return stack
        raise ApiError(404, 'Unable to find a stack with the specified identifier inside the database',
                       'Object not found inside the database')

    def jwt(self, user):
        now = int(time.time())
        header = _b64(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode())
        claims = _b64(json.dumps({'id': user['Id'], 'username': user['Username'], 'role': user['Role'],
                                  'scope': 'default', 'forceChangePassword': False, 'iat': now,
                                  'exp': now + JWT_LIFETIME}).encode())
        sig = hmac.new(_unb64(self.store.db['jwt_secret']), ('%s.%s' % (header, claims)).encode(), hashlib.sha256)
        return '%s.%s.%s' % (header, claims, _b64(sig.digest()))

    def user(self, user_id):
        return next((u for u in self.store.db['users'] if u['Id'] == user_id), None)

    def jwt_user_id(self, token):
        """The user ID of a valid, unexpired JWT, else None."""
        try:
            header, claims, sig = token.split('.')
            expected = hmac.new(_unb64(self.store.db['jwt_secret']), ('%s.%s' % (header, claims)).encode(),
                                hashlib.sha256).digest()
            if not hmac.compare_digest(expected, _unb64(sig)):
                return None
            data = json.loads(_unb64(claims))
        except (ValueError, TypeError):
            return None
        if not isinstance(data, dict) or data.get('exp', 0) < time.time():
            return None
        return data.get('id')

    def key_user_id(self, raw):
        """The user ID of an API key whose user exists, else None."""
        # api/http/security/bouncer.go apiKeyLookup: GetDigestUserAndKey fails for an unknown key or user
        digest = hashlib.sha256(raw.encode('utf-8')).hexdigest()
        for token in self.store.db['tokens']:
            if hmac.compare_digest(token['digest'], digest) and self.user(token['userId']) is not None:
                token['lastUsed'] = int(time.time())
                return token['userId']
        return None

    def docker_cli(self, endpoint, args, env=None, cwd=None):
        cmd = [self.docker_bin, '--config', self.docker_config, '-H', endpoint['URL']] + args
        full_env = dict(os.environ)
        full_env.update(env or {})
        proc = subprocess.run(cmd, env=full_env, cwd=cwd, capture_output=True, text=True, timeout=600, check=False)
        if proc.returncode != 0:
            raise ApiError(500, (proc.stderr or proc.stdout).strip() or 'docker %s failed' % ' '.join(args[:2]))
        return proc.stdout

    def deploy(self, stack, endpoint, prune, pull_image):
        args = ['stack', 'deploy']
        if prune:
            args.append('--prune')
        args.append('--with-registry-auth')
        if not pull_image:
            args.append('--resolve-image=never')
        args += ['--compose-file', os.path.join(stack['ProjectPath'], stack['EntryPoint']), stack['Name']]
        env = dict((p['name'], p['value']) for p in stack.get('Env') or [])
        self.docker_cli(endpoint, args, env=env, cwd=stack['ProjectPath'])

    def name_taken_in_docker(self, endpoint, name):
        engine = DockerEngine(endpoint['URL'])
        for service in engine.json('GET', '/services'):
            if ((service.get('Spec') or {}).get('Labels') or {}).get('com.docker.stack.namespace') == name:
                return True
        for container in engine.json('GET', '/containers/json?all=1'):
            if (container.get('Labels') or {}).get('com.docker.compose.project') == name:
                return True
        return False

    def stack_view(self, stack, resource_control=True):
        view = dict((k, v) for k, v in stack.items())
        if not resource_control:
            # api/http/handler/stacks/stack_update.go stackUpdate: the stack as stored, not decorated
            view['ResourceControl'] = None
            return view
        view['ResourceControl'] = {
            'Id': stack['Id'], 'ResourceId': '%d_%s' % (stack['EndpointId'], stack['Name']), 'SubResourceIds': [],
            'Type': 6, 'UserAccesses': [], 'TeamAccesses': [], 'Public': False, 'AdministratorsOnly': True,
            'System': False}
        return view
