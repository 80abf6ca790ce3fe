# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""portainersim: a TEST DOUBLE of the Portainer CE 2.x HTTP API, backed by a real Docker Swarm.

Why it exists: Portainer CE cannot be built here (the Go module proxy refuses
github.com/portainer/portainer at every version, GitHub and Docker Hub are unreachable), see docs/stacks.md.
It implements only the API subset thinkheads.phoenix uses, with Portainer's JSON shapes, status codes and
auth rules, and performs REAL ``docker stack deploy`` / ``docker stack rm`` against the environment's
Docker engine, and proxies ``/api/endpoints/{id}/docker/...`` to that engine's API.

The behaviour follows Portainer CE 2.23.0's source; each rule names the Portainer file and function it follows.

Test-only extras live outside ``/api``: ``GET /sim/requests`` (the request log), ``DELETE /sim/requests``, and
``POST /sim/faults`` / ``DELETE /sim/faults``: network faults for the next requests matching a method and a path
(regular expression), ``{"method", "path", "fault", "seconds", "count"}``. Faults after the request was carried out:
``drop`` (the connection closes without an answer), ``delay`` (the answer comes ``seconds`` late), ``502``/``504``
(a proxy's answer instead of Portainer's); before it: ``503`` (refused unprocessed).
Every response carries ``Server: portainersim``, so nobody mistakes it for the real product.
"""

from __future__ import absolute_import, division, print_function

import argparse
import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import secrets
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

VERSION = '2.23.0'
ADMIN_ROLE = 1
STACK_SWARM = 1
STACK_COMPOSE = 2
STACK_ACTIVE = 1
ENDPOINT_DOCKER = 1
ENDPOINT_AGENT_DOCKER = 2
MIN_PASSWORD = 12
JWT_LIFETIME = 8 * 3600
# api/http/server.go Start: NewRateLimiter(10, 1*time.Second, 1*time.Hour)
RATE_BURST, RATE_REFILL_SECONDS, RATE_BAN_SECONDS = 10, 1.0, 3600.0
UNAUTHORIZED = 'Unauthorized'  # api/http/errors/errors.go ErrUnauthorized
_NAME_STRIP = re.compile(r'[^-_a-z0-9]+')


class ApiError(Exception):
    def __init__(self, status, message, details=None):
        super(ApiError, self).__init__(message)
        self.status = status
        self.message = message
        self.details = details or message


class RateLimiter:
    """Per client address: a bucket of RATE_BURST requests refilled by one per RATE_REFILL_SECONDS; a request
    that finds it empty bans the address for ``ban`` seconds (every request during a ban is refused)."""

    # api/http/security/rate_limiter.go LimitAccess with g07cha/defender Defender.Inc (rate.Every(duration), max)
    def __init__(self, ban=RATE_BAN_SECONDS, burst=RATE_BURST, refill=RATE_REFILL_SECONDS, clock=time.monotonic):
        self.ban, self.burst, self.refill, self.clock = float(ban), burst, refill, clock
        self.clients = {}
        self.lock = threading.Lock()

    def allow(self, address):
        with self.lock:
            now = self.clock()
            client = self.clients.setdefault(address, {'tokens': float(self.burst), 'at': now, 'until': None})
            if client['until'] is not None:
                if now < client['until']:
                    return False
                client['until'] = None
            client['tokens'] = min(float(self.burst), client['tokens'] + (now - client['at']) / self.refill)
            client['at'] = now
            if client['tokens'] >= 1:
                client['tokens'] -= 1
                return True
            client['until'] = now + self.ban
            return False


def _b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b'=').decode('ascii')


def _unb64(text):
    return base64.urlsafe_b64decode(text + '=' * (-len(text) % 4))


def hash_password(password, salt=None):
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac('sha256', password.encode('utf-8'), salt, 100000)
    return 'pbkdf2$%s$%s' % (_b64(salt), _b64(digest))


def check_password(stored, password):
    try:
        _scheme, salt, digest = stored.split('$')
    except ValueError:
        return False
    return hmac.compare_digest(hash_password(password, _unb64(salt)).split('$')[2], digest)


class Store:
    """The sim's database: one JSON file under --data, plus compose/<id>/docker-compose.yml per stack."""

    def __init__(self, data_dir):
        self.dir = data_dir
        self.path = os.path.join(data_dir, 'portainersim.json')
        self.lock = threading.RLock()
        os.makedirs(data_dir, exist_ok=True)
        if os.path.isfile(self.path):
            with open(self.path) as handle:
                self.db = json.load(handle)
        else:
            self.db = {'users': [], 'tokens': [], 'endpoints': [], 'stacks': [], 'next': {},
                       'jwt_secret': _b64(secrets.token_bytes(32)), 'instance_id': str(uuid.uuid4())}
            self.save()

    def save(self):
        tmp = self.path + '.tmp'
        with open(tmp, 'w') as handle:
            json.dump(self.db, handle, indent=1, sort_keys=True)
        os.replace(tmp, self.path)

    def next_id(self, kind):
        value = self.db['next'].get(kind, 1)
        self.db['next'][kind] = value + 1
        return value


def user_view(user):
    return {'Id': user['Id'], 'Username': user['Username'], 'Role': user['Role'], 'TokenIssueAt': 0,
            'ThemeSettings': {'color': ''}, 'UseCache': True}


def token_view(token):
    return dict((k, token[k]) for k in ('id', 'userId', 'description', 'prefix', 'dateCreated', 'lastUsed'))


def normalize_stack_name(name):
    return _NAME_STRIP.sub('', name.lower())


def _go_json_field(data, name):
    """A JSON object's field the way Go's encoding/json finds it (exact name first, then case-insensitively)."""
    if name in data:
        return data[name]
    for key, value in data.items():
        if key.lower() == name.lower():
            return value
    return None


def parse_stack_filters(text):
    """The ``filters`` query parameter of GET /api/stacks as Go decodes it into stackListOperationFilters."""
    # api/http/handler/stacks/stack_list.go stackList: request.RetrieveJSONQueryParameter(r, "filters", ...)
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ApiError(400, 'Invalid query parameter: filters', str(exc)) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ApiError(400, 'Invalid query parameter: filters', 'json: cannot unmarshal into Go value of type '
                       'stacks.stackListOperationFilters')
    swarm_id = _go_json_field(data, 'SwarmID')
    endpoint_id = _go_json_field(data, 'EndpointID')
    orphaned = _go_json_field(data, 'IncludeOrphanedStacks')
    for field, value, kind, ok in (('SwarmID', swarm_id, 'string', isinstance(swarm_id, str)),
                                   ('EndpointID', endpoint_id, 'int',
                                    isinstance(endpoint_id, int) and not isinstance(endpoint_id, bool)),
                                   ('IncludeOrphanedStacks', orphaned, 'bool', isinstance(orphaned, bool))):
        if value is not None and not ok:
            raise ApiError(400, 'Invalid query parameter: filters',
                           'json: cannot unmarshal into field %s of type %s' % (field, kind))
    return {'SwarmID': swarm_id or '', 'EndpointID': endpoint_id or 0, 'IncludeOrphanedStacks': bool(orphaned)}


def filter_stacks(stacks, filters, endpoints):
    """Portainer's stack list filter: EndpointID selects COMPOSE stacks only, SwarmID selects SWARM stacks only."""
    # api/http/handler/stacks/stack_list.go filterStacks (and isOrphanedStack)
    if not filters['EndpointID'] and not filters['SwarmID']:
        return list(stacks)
    out, names = [], set()
    for stack in stacks:
        if stack['Type'] == STACK_COMPOSE and stack['EndpointId'] == filters['EndpointID']:
            out.append(stack)
            names.add(stack['Name'])
        if stack['Type'] == STACK_SWARM and stack.get('SwarmId', '') == filters['SwarmID']:
            out.append(stack)
            names.add(stack['Name'])
    known = set(e['Id'] for e in endpoints)
    for stack in stacks:
        if filters['IncludeOrphanedStacks'] and stack['EndpointId'] not in known:
            if ((stack['Type'] == STACK_COMPOSE and not filters['SwarmID'])
                    or (stack['Type'] == STACK_SWARM and filters['SwarmID'])) and stack['Name'] not in names:
                out.append(stack)
    return out


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


class Handler(BaseHTTPRequestHandler):
    server_version = 'portainersim'
    sys_version = ''
    protocol_version = 'HTTP/1.1'

    # (methods, path pattern, access, handler): what the double serves under /api. Access: 'public',
    # 'auth' (any authenticated user; the double's only user is the administrator it creates).
    ROUTES = (
        (('GET',), r'/api/status', 'public', '_status'),            # api/http/handler/system/handler.go (deprecated)
        (('GET',), r'/api/system/status', 'public', '_status'),     # api/http/handler/system/status.go systemStatus
        (('GET',), r'/api/users/admin/check', 'public', '_admin_check'),
        (('POST',), r'/api/users/admin/init', 'public', '_admin_init'),
        (('POST',), r'/api/auth', 'public', '_authenticate'),
        (('GET',), r'/api/users/me', 'auth', '_me'),
        (('GET', 'POST'), r'/api/users/(?P<user>[^/]+)/tokens', 'auth', '_tokens'),
        (('DELETE',), r'/api/users/(?P<user>[^/]+)/tokens/(?P<key>[^/]+)', 'auth', '_token_delete'),
        (('GET', 'POST'), r'/api/endpoints', 'auth', '_endpoints'),
        (('GET', 'DELETE'), r'/api/endpoints/(?P<endpoint_id>[^/]+)', 'auth', '_endpoint'),
        (('GET', 'POST', 'PUT', 'DELETE', 'HEAD'), r'/api/endpoints/(?P<endpoint_id>[^/]+)/docker(?P<rest>/.*)', 'auth',
         '_docker_proxy'),
        (('GET',), r'/api/stacks', 'auth', '_stack_list'),
        (('POST',), r'/api/stacks/create/(?P<stack_type>[^/]+)/(?P<build_method>[^/]+)', 'auth', '_stack_create'),
        (('GET', 'PUT', 'DELETE'), r'/api/stacks/(?P<stack_id>[^/]+)', 'auth', '_stack'),
        (('GET',), r'/api/stacks/(?P<stack_id>[^/]+)/file', 'auth', '_stack_file'),
    )

    def log_message(self, fmt, *args):  # noqa: A003 - BaseHTTPRequestHandler API
        if self.server.sim.args.log_level == 'DEBUG':
            sys.stderr.write('%s %s\n' % (self.address_string(), fmt % args))

    @property
    def sim(self):
        return self.server.sim

    @property
    def db(self):
        return self.server.sim.store.db

    # -- plumbing ----------------------------------------------------------------------------------------

    def _send(self, status, body=None, ctype='application/json', raw=None):
        data = raw if raw is not None else (b'' if body is None else json.dumps(body).encode('utf-8'))
        self.send_response(status)
        if data or status not in (204, 304, 405):
            self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    def _body(self):
        length = int(self.headers.get('Content-Length') or 0)
        return self.rfile.read(length) if length else b''

    def _json(self, raw):
        try:
            data = json.loads(raw.decode('utf-8') or 'null')
        except ValueError as exc:
            raise ApiError(400, 'Invalid request payload', str(exc)) from None
        if not isinstance(data, dict):
            raise ApiError(400, 'Invalid request payload', 'Payload must be a JSON object')
        # Go's encoding/json matches field names case-insensitively
        return dict((k.lower(), v) for k, v in data.items())

    def _form(self, raw):
        ctype = self.headers.get('Content-Type', '')
        if 'multipart/form-data' not in ctype:
            raise ApiError(400, 'Invalid request payload', 'request Content-Type isn\'t multipart/form-data')
        msg = BytesParser(policy=HTTP).parsebytes(b'Content-Type: ' + ctype.encode() + b'\r\n\r\n' + raw)
        fields, files = {}, {}
        for part in msg.iter_parts():
            name = part.get_param('name', header='content-disposition')
            fields[name] = part.get_payload(decode=True).decode('utf-8')
            # Go's Request.FormFile finds only parts with a file name (pkg/libhttp/request RetrieveMultiPartFormFile)
            if part.get_filename() is not None:
                files[name] = part.get_payload(decode=True)
        self._form_files = files
        return fields

    def _client_address(self):
        return self.client_address[0] if isinstance(self.client_address, tuple) else str(self.client_address)

    def _limit(self):
        """Login, token creation: refused with 403 while the client's address is over the rate or banned."""
        # api/http/security/rate_limiter.go LimitAccess: 403 "Access denied" (ErrResourceAccessDenied)
        if not self.sim.limiter.allow(self._client_address()):
            raise ApiError(403, 'Access denied', 'Access denied to resource')

    def _both_auth_headers(self):
        """An API key and an Authorization header in the same request are refused, on every path."""
        # api/http/security/bouncer.go ShouldSkipCSRFCheck, applied to every request by api/http/csrf/csrf.go
        # withSkipCSRF (403 with the error as message and, capitalised, as details)
        if self.headers.get('X-API-Key') and self.headers.get('Authorization'):
            message = 'api key and auth header are not allowed at the same time'
            raise ApiError(403, message, message[0].upper() + message[1:])

    def _authenticate_request(self):
        """(user, 'key' or 'jwt'); API key first, then the bearer token."""
        # api/http/security/bouncer.go mwAuthenticateFirst with apiKeyLookup, CookieAuthLookup, JWTAuthLookup:
        # a lookup that fails is 401 "Invalid JWT token", none at all 401 "A valid authorization token is missing",
        # a token whose user is gone 401 "An authorization token is invalid"
        key = self.headers.get('X-API-Key')
        if key:
            user_id, via = self.sim.key_user_id(key), 'key'
            if user_id is None:
                raise ApiError(401, 'Invalid JWT token', UNAUTHORIZED)
        else:
            header = self.headers.get('Authorization')
            if header is None:
                raise ApiError(401, 'A valid authorization token is missing', UNAUTHORIZED)
            # api/http/security/bouncer.go extractBearerToken: the header without its "Bearer " prefix
            token = header[7:] if header.startswith('Bearer ') else header
            user_id, via = self.sim.jwt_user_id(token.strip()), 'jwt'
            if user_id is None:
                raise ApiError(401, 'Invalid JWT token', UNAUTHORIZED)
        user = self.sim.user(user_id)
        if user is None:
            raise ApiError(401, 'An authorization token is invalid', UNAUTHORIZED)
        return user, via

    def _match(self, method, path):
        """(handler name, access, groups), or an answer for a path or method the double does not serve."""
        allowed = False
        for methods, pattern, access, name in self.ROUTES:
            match = re.match('^%s$' % pattern, path)
            if match:
                if method in methods:
                    return name, access, match.groupdict()
                allowed = True
        # gorilla/mux (Portainer's router): 405 for a known path with another method, else 404 as plain text
        return None, 405 if allowed else 404, None

    def _handle(self, method):
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        query = dict((k, v[-1]) for k, v in parse_qs(parts.query).items())
        raw = self._body()
        if path.startswith('/sim/'):
            self._sim_body = raw
            self._sim_route(method, path)
            return
        fault = self._fault(method, path)
        if fault and fault['fault'] == '503':
            self.sim.requests.append({'method': method, 'path': path, 'query': query, 'status': 503,
                                      'time': time.time(), 'fault': '503'})
            self._send(503, raw=b'<html><body>503 Service Unavailable (portainersim fault)</body></html>\n',
                       ctype='text/html')
            return
        answer = self._answer(method, path, query, raw)
        # logged before the answer leaves, so that a client that got its answer finds its request in the log
        self.sim.requests.append({'method': method, 'path': path, 'query': query, 'status': answer[0],
                                  'time': time.time(), 'fault': fault and fault['fault']})
        if fault and fault['fault'] == 'drop':
            self.close_connection = True
            return
        if fault and fault['fault'] in ('502', '504'):
            self._send(int(fault['fault']), ctype='text/html', raw=(
                '<html><body>%s (portainersim fault)</body></html>\n' % fault['fault']).encode())
            return
        if fault and fault['fault'] == 'delay':
            time.sleep(float(fault.get('seconds') or 1))
        self._send(*answer)

    def _fault(self, method, path):
        """The first armed fault for this request, counted down (test-only)."""
        with self.sim.store.lock:
            for fault in self.sim.faults:
                if fault.get('method', method) == method and re.match('^%s$' % fault.get('path', '.*'), path):
                    fault['count'] = int(fault.get('count', 1)) - 1
                    if fault['count'] <= 0:
                        self.sim.faults.remove(fault)
                    return fault
        return None

    def _answer(self, method, path, query, raw):
        """(status, body, content type, raw body) for one API request."""
        try:
            self._both_auth_headers()
            name, access, groups = self._match(method, path)
            if name is None:
                if access == 404:
                    return 404, None, 'text/plain; charset=utf-8', b'404 page not found\n'
                return 405, None, 'application/json', None
            with self.sim.store.lock:
                user, via = self._authenticate_request() if access == 'auth' else (None, None)
                request = {'method': method, 'path': path, 'query': query, 'raw': raw, 'user': user, 'via': via}
                status, body, ctype, rawout = getattr(self, name)(request, **groups)
                self.sim.store.save()
            return status, body, ctype or 'application/json', rawout
        except ApiError as exc:
            return exc.status, {'message': exc.message, 'details': exc.details}, 'application/json', None
        except Exception as exc:  # pylint: disable=broad-except
            return 500, {'message': 'Internal server error', 'details': str(exc)}, 'application/json', None

    def do_GET(self):  # noqa: N802 - BaseHTTPRequestHandler API
        if self.path.split('?', 1)[0] == '/':
            # Portainer serves its web UI at / without authentication; the double answers with a stub page
            try:
                self._both_auth_headers()
            except ApiError as exc:
                self._send(exc.status, {'message': exc.message, 'details': exc.details})
                return
            self._send(200, ctype='text/html; charset=utf-8',
                       raw=b'<!doctype html><title>Portainer (test double)</title>\n')
            return
        self._handle('GET')

    def do_POST(self):  # noqa: N802
        self._handle('POST')

    def do_PUT(self):  # noqa: N802
        self._handle('PUT')

    def do_DELETE(self):  # noqa: N802
        self._handle('DELETE')

    def _sim_route(self, method, path):
        if path == '/sim/requests' and method == 'GET':
            self._send(200, self.sim.requests)
            return 200
        if path == '/sim/requests' and method == 'DELETE':
            del self.sim.requests[:]
            self._send(204)
            return 204
        if path == '/sim/faults' and method == 'POST':
            fault = json.loads(self._sim_body.decode('utf-8') or '{}')
            if fault.get('fault') not in ('drop', 'delay', '502', '503', '504'):
                self._send(400, {'message': 'fault must be drop, delay, 502, 503 or 504'})
                return 400
            with self.sim.store.lock:
                self.sim.faults.append(fault)
            self._send(204)
            return 204
        if path == '/sim/faults' and method == 'DELETE':
            with self.sim.store.lock:
                del self.sim.faults[:]
            self._send(204)
            return 204
        self._send(404, {'message': 'not found'})
        return 404

    @staticmethod
    def _number(value, message):
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ApiError(400, message, 'strconv.Atoi: parsing %r: invalid syntax' % (value,)) from None

    def _query_number(self, query, name, optional):
        """request.RetrieveNumericQueryParameter: 0 when optional and absent; 400 otherwise."""
        if name not in query or query[name] == '':
            if optional:
                return 0
            raise ApiError(400, 'Invalid query parameter: %s' % name, 'Missing query parameter')
        return self._number(query[name], 'Invalid query parameter: %s' % name)

    # -- system, users, authentication ----------------------------------------------------------------------

    def _status(self, request):
        return 200, {'Version': VERSION, 'InstanceID': self.db['instance_id']}, None, None

    def _admin_check(self, request):
        if not self.sim._admins():
            raise ApiError(404, 'No administrator account found inside the database',
                           'Object not found inside the database')
        return 204, None, None, None

    def _admin_init(self, request):
        payload = self._json(request['raw'])
        username, password = payload.get('username') or '', payload.get('password') or ''
        if not username or ' ' in username:
            raise ApiError(400, 'Invalid request payload', 'Invalid username. Must not contain any whitespace')
        if not password:
            raise ApiError(400, 'Invalid request payload', 'Invalid password')
        if self.sim._admins():
            raise ApiError(409, 'Unable to create administrator user', 'An administrator user already exists')
        if len(password) < MIN_PASSWORD:
            raise ApiError(400, 'Password does not meet the requirements')
        return 200, user_view(self.sim._create_user(username, password)), None, None

    def _authenticate(self, request):
        # api/http/handler/auth/handler.go NewHandler: POST /auth behind rateLimiter.LimitAccess
        self._limit()
        payload = self._json(request['raw'])
        if not payload.get('username'):
            raise ApiError(400, 'Invalid request payload', 'Invalid username')
        if not payload.get('password'):
            raise ApiError(400, 'Invalid request payload', 'Invalid password')
        user = next((u for u in self.db['users'] if u['Username'] == payload['username']), None)
        if user is None or not check_password(user['Password'], payload['password']):
            raise ApiError(422, 'Invalid credentials', UNAUTHORIZED)
        return 200, {'jwt': self.sim.jwt(user)}, None, None

    def _me(self, request):
        return 200, user_view(request['user']), None, None

    def _tokens(self, request, user):
        if request['method'] == 'POST':
            return self._token_create(request, user)
        # api/http/handler/users/user_get_access_tokens.go userGetAccessTokens
        user_id = self._number(user, 'Invalid user identifier route variable')
        caller = request['user']
        if caller['Id'] != user_id and caller['Role'] != ADMIN_ROLE:
            raise ApiError(403, 'Permission denied to get user access tokens', UNAUTHORIZED)
        if self.sim.user(user_id) is None:
            raise ApiError(404, 'Unable to find a user with the specified identifier inside the database',
                           'Object not found inside the database')
        return 200, [token_view(t) for t in self.db['tokens'] if t['userId'] == user_id], None, None

    def _token_create(self, request, user):
        # api/http/handler/users/handler.go: POST /users/{id}/tokens behind rateLimiter.LimitAccess (after the
        # bouncer); user_create_access_token.go userCreateAccessToken: a JWT is required, not an API key
        self._limit()
        if request['via'] != 'jwt':
            raise ApiError(401, 'Auth not supported', 'Authentication required')
        payload = self._json(request['raw'])
        description = payload.get('description') or ''
        if not description:
            raise ApiError(400, 'Invalid request payload', 'Invalid description: cannot be empty')
        if not description.strip():
            raise ApiError(400, 'Invalid request payload', 'Invalid description: cannot contain only whitespaces')
        if len(description) > 128:
            raise ApiError(400, 'Invalid request payload', 'Invalid description: cannot be longer than 128 characters')
        user_id = self._number(user, 'Invalid user identifier route variable')
        caller = request['user']
        if caller['Id'] != user_id:
            raise ApiError(403, 'Permission denied to create user access token', UNAUTHORIZED)
        if not payload.get('password'):
            raise ApiError(400, 'Invalid request payload', 'Invalid password: cannot be empty')
        if not check_password(caller['Password'], payload['password']):
            raise ApiError(403, 'Current password doesn\'t match',
                           'Current password does not match the password provided. Please try again')
        rawkey = 'ptr_' + base64.b64encode(secrets.token_bytes(32)).decode('ascii')
        token = {'id': self.sim.store.next_id('token'), 'userId': user_id, 'description': description,
                 'prefix': rawkey[:7], 'dateCreated': int(time.time()), 'lastUsed': 0,
                 'digest': hashlib.sha256(rawkey.encode('utf-8')).hexdigest()}
        self.db['tokens'].append(token)
        return 201, {'rawAPIKey': rawkey, 'apiKey': token_view(token)}, None, None

    def _token_delete(self, request, user, key):
        # api/http/handler/users/user_remove_access_token.go userRemoveAccessToken
        user_id = self._number(user, 'Invalid user identifier route variable')
        key_id = self._number(key, 'Invalid api-key identifier route variable')
        caller = request['user']
        if caller['Role'] != ADMIN_ROLE and caller['Id'] != user_id:
            raise ApiError(403, 'Permission denied to get user access tokens', UNAUTHORIZED)
        if self.sim.user(user_id) is None:
            raise ApiError(404, 'Unable to find a user with the specified identifier inside the database',
                           'Object not found inside the database')
        found = [t for t in self.db['tokens'] if t['id'] == key_id]
        if not found:
            raise ApiError(500, 'API Key not found', 'Object not found inside the database')
        if found[0]['userId'] != user_id:
            raise ApiError(403, 'Permission denied to remove api-key', UNAUTHORIZED)
        self.db['tokens'].remove(found[0])
        return 204, None, None, None

    # -- environments --------------------------------------------------------------------------------------

    def _endpoints(self, request):
        if request['method'] == 'POST':
            return self._endpoint_create(request['raw'])
        endpoints = self.db['endpoints']
        if request['query'].get('name'):
            endpoints = [e for e in endpoints if e['Name'] == request['query']['name']]
        return 200, endpoints, None, None

    def _endpoint(self, request, endpoint_id):
        endpoint = self.sim.endpoint(self._number(endpoint_id, 'Invalid environment identifier route variable'))
        if request['method'] == 'DELETE':
            self.db['endpoints'].remove(endpoint)
            return 204, None, None, None
        return 200, endpoint, None, None

    def _endpoint_create(self, raw):
        form = self._form(raw)
        files = self._form_files
        name = form.get('Name') or ''
        if not name:
            raise ApiError(400, 'Invalid request payload', 'invalid environment name')
        try:
            ctype = int(form.get('EndpointCreationType') or 0)
        except ValueError:
            ctype = 0
        if ctype not in (1, 2):
            raise ApiError(400, 'Invalid request payload', 'invalid environment type value. Value must be one of: '
                           '1 (Docker environment), 2 (Agent environment), 3 (Azure environment), 4 (Edge Agent '
                           'environment) or 5 (Local Kubernetes environment)')
        # api/http/handler/endpoints/endpoint_create.go Validate: booleans are the exact text "true"
        # (pkg/libhttp/request RetrieveBooleanMultiPartFormValue); TLSSkipVerify false needs TLSCACertFile,
        # TLSSkipClientVerify false needs TLSCertFile and TLSKeyFile, each an uploaded file
        tls = {'TLS': form.get('TLS') == 'true', 'TLSSkipVerify': False}
        ca_pem = None
        if tls['TLS']:
            tls['TLSSkipVerify'] = form.get('TLSSkipVerify') == 'true'
            if not tls['TLSSkipVerify']:
                if not files.get('TLSCACertFile'):
                    raise ApiError(400, 'Invalid request payload',
                                   'invalid CA certificate file. Ensure that the file is uploaded correctly')
                ca_pem = files['TLSCACertFile']
            if form.get('TLSSkipClientVerify') != 'true':
                if not files.get('TLSCertFile'):
                    raise ApiError(400, 'Invalid request payload',
                                   'invalid certificate file. Ensure that the file is uploaded correctly')
                if not files.get('TLSKeyFile'):
                    raise ApiError(400, 'Invalid request payload',
                                   'invalid key file. Ensure that the file is uploaded correctly')
        if any(e['Name'] == name for e in self.db['endpoints']):
            raise ApiError(409, 'Name is not unique', 'Name is not unique')
        url = form.get('URL') or ''
        if ctype == 2:
            if not url.strip():
                raise ApiError(400, 'Invalid request payload', 'URL cannot be empty')
            parts = urlsplit(url if '://' in url else 'tcp://' + url)
            try:
                conn = socket.create_connection((parts.hostname, parts.port or 9001), timeout=5)
                if ca_pem is not None:
                    # api/agent/version.go GetAgentVersionAndPlatform: HTTPS to the agent with the TLS configuration
                    # of api/crypto/tls.go CreateTLSConfigurationFromBytes (the uploaded CA, server name verified)
                    context = ssl.create_default_context(cadata=ca_pem.decode('ascii', 'replace'))
                    conn = context.wrap_socket(conn, server_hostname=parts.hostname)
                conn.close()
            except (OSError, socket.timeout, ssl.SSLError, ValueError) as exc:
                raise ApiError(500, 'Unable to get environment type', str(exc)) from None
            endpoint = self.sim._add_endpoint(name, ENDPOINT_AGENT_DOCKER, 'tcp://%s:%d' % (parts.hostname,
                                                                                            parts.port or 9001))
        else:
            url = url or 'unix:///var/run/docker.sock'
            # api/http/handler/endpoints/endpoint_create.go snapshotAndPersistEndpoint: the engine is contacted
            # (api/docker/snapshot.go snapshot: Ping) before the environment is saved
            why = DockerEngine(url).ping()
            if why:
                raise ApiError(500, 'Unable to initiate communications with environment', why)
            endpoint = self.sim._add_endpoint(name, ENDPOINT_DOCKER, url)
        # api/http/handler/endpoints/endpoint_create.go createTLSSecuredEndpoint, storeTLSFiles: TLS settings kept,
        # the CA stored under tls/<id>/ca.pem when the server is verified
        endpoint['TLSConfig'] = dict(tls)
        if ca_pem is not None:
            folder = os.path.join(self.sim.store.dir, 'tls', str(endpoint['Id']))
            os.makedirs(folder, exist_ok=True)
            with open(os.path.join(folder, 'ca.pem'), 'wb') as handle:
                handle.write(ca_pem)
            endpoint['TLSConfig']['TLSCACert'] = os.path.join(folder, 'ca.pem')
        return 200, endpoint, None, None

    def _docker_proxy(self, request, endpoint_id, rest):
        endpoint = self.sim.endpoint(self._number(endpoint_id, 'Invalid environment identifier route variable'))
        if endpoint['Type'] != ENDPOINT_DOCKER:
            raise ApiError(501, 'Not implemented', 'portainersim proxies only Docker API environments')
        target = rest + ('?' + urlsplit(self.path).query if urlsplit(self.path).query else '')
        headers = {}
        if request['raw']:
            headers['Content-Type'] = self.headers.get('Content-Type', 'application/json')
        status, ctype, body = DockerEngine(endpoint['URL']).call(request['method'], target,
                                                                 body=request['raw'] or None, headers=headers)
        return status, None, ctype, body

    # -- stacks --------------------------------------------------------------------------------------------

    def _stack_list(self, request):
        filters = parse_stack_filters(request['query']['filters']) if request['query'].get('filters') else \
            {'SwarmID': '', 'EndpointID': 0, 'IncludeOrphanedStacks': False}
        stacks = filter_stacks(self.db['stacks'], filters, self.db['endpoints'])
        return 200, [self.sim.stack_view(s) for s in stacks], None, None

    def _stack_file(self, request, stack_id):
        stack = self.sim.stack(self._number(stack_id, 'Invalid stack identifier route variable'))
        with open(os.path.join(stack['ProjectPath'], stack['EntryPoint'])) as handle:
            return 200, {'StackFileContent': handle.read()}, None, None

    def _stack(self, request, stack_id):
        if request['method'] == 'DELETE':
            return self._stack_delete(stack_id, request['query'])
        stack = self.sim.stack(self._number(stack_id, 'Invalid stack identifier route variable'))
        if request['method'] == 'PUT':
            return self._stack_update(stack, request['query'], request['raw'], request['user'])
        return 200, self.sim.stack_view(stack), None, None

    @staticmethod
    def _env(payload):
        """The payload's Env as Go keeps it: null when absent or null, else the list (possibly empty)."""
        env = payload.get('env')
        if env is None:
            return None
        if not isinstance(env, list) or not all(isinstance(p, dict) for p in env):
            raise ApiError(400, 'Invalid request payload', 'json: cannot unmarshal Env into []portainer.Pair')
        return [{'name': str(p.get('name') or ''), 'value': str(p.get('value') or '')} for p in env]

    def _stack_create(self, request, stack_type, build_method):
        # api/http/handler/stacks/stack_create.go stackCreate, create_swarm_stack.go createSwarmStackFromFileContent
        sim, db = self.sim, self.db
        endpoint_id = self._query_number(request['query'], 'endpointId', optional=False)
        endpoint = sim.endpoint(endpoint_id)
        if stack_type != 'swarm' or build_method != 'string':
            raise ApiError(400, 'Invalid value for query parameter: method. Value must be one of: string, '
                           'repository or file', 'portainersim implements swarm/string only')
        payload = self._json(request['raw'])
        if not payload.get('name'):
            raise ApiError(400, 'Invalid request payload', 'Invalid stack name')
        if not payload.get('swarmid'):
            raise ApiError(400, 'Invalid request payload', 'Invalid Swarm ID')
        if not payload.get('stackfilecontent'):
            raise ApiError(400, 'Invalid request payload', 'Invalid stack file content')
        env = self._env(payload)
        name = normalize_stack_name(payload['name'])
        # api/http/handler/stacks/handler.go checkUniqueStackNameInDocker, checkUniqueStackName, stackExistsError
        taken = any(s['Name'].lower() == name and s['EndpointId'] == endpoint['Id'] for s in db['stacks'])
        if taken or sim.name_taken_in_docker(endpoint, name):
            message = "A stack with the normalized name '%s' already exists" % name
            raise ApiError(409, message, message)
        stack_id = sim.store.next_id('stack')
        project = os.path.join(sim.store.dir, 'compose', str(stack_id))
        os.makedirs(project, exist_ok=True)
        with open(os.path.join(project, 'docker-compose.yml'), 'w') as handle:
            handle.write(payload['stackfilecontent'])
        now = int(time.time())
        # the fields of api/portainer.go Stack (2.23.0)
        stack = {'Id': stack_id, 'Name': name, 'Type': STACK_SWARM, 'EndpointId': endpoint['Id'],
                 'SwarmId': payload['swarmid'], 'EntryPoint': 'docker-compose.yml', 'Env': env,
                 'Status': STACK_ACTIVE, 'ProjectPath': project, 'CreationDate': now,
                 'CreatedBy': request['user']['Username'], 'UpdateDate': 0, 'UpdatedBy': '', 'AdditionalFiles': None,
                 'AutoUpdate': None, 'Option': None, 'GitConfig': None, 'FromAppTemplate': False, 'Namespace': ''}
        try:
            sim.deploy(stack, endpoint, prune=False, pull_image=True)
        except ApiError:
            import shutil
            shutil.rmtree(project, ignore_errors=True)
            raise
        db['stacks'].append(stack)
        return 200, sim.stack_view(stack), None, None

    def _stack_update(self, stack, query, raw, user):
        # api/http/handler/stacks/stack_update.go stackUpdate, updateSwarmStack
        sim = self.sim
        endpoint_id = self._query_number(query, 'endpointId', optional=False)
        endpoint = sim.endpoint(endpoint_id, message='Unable to find the environment associated to the stack '
                                'inside the database')
        payload = self._json(raw)
        if not payload.get('stackfilecontent'):
            raise ApiError(400, 'Invalid request payload', 'Invalid stack file content')
        env = self._env(payload)
        path = os.path.join(stack['ProjectPath'], stack['EntryPoint'])
        with open(path) as handle:
            previous = handle.read()
        previous_env = stack.get('Env')
        with open(path, 'w') as handle:
            handle.write(payload['stackfilecontent'])
        stack['Env'] = env
        try:
            sim.deploy(stack, endpoint, prune=bool(payload.get('prune')), pull_image=bool(payload.get('pullimage')))
        except ApiError:
            with open(path, 'w') as handle:
                handle.write(previous)
            stack['Env'] = previous_env
            raise
        stack['EndpointId'] = endpoint_id
        stack['UpdateDate'] = int(time.time())
        stack['UpdatedBy'] = user['Username']
        stack['Status'] = STACK_ACTIVE
        return 200, sim.stack_view(stack, resource_control=False), None, None

    def _stack_delete(self, ident, query):
        # api/http/handler/stacks/stack_delete.go stackDelete, deleteExternalStack
        sim, db = self.sim, self.db
        if str(query.get('external', '')).lower() in ('1', 'true'):
            endpoint_id = self._query_number(query, 'endpointId', optional=False)
            if any(s['Name'] == ident for s in db['stacks']):
                raise ApiError(400, 'A stack with this name exists inside the database. Cannot use external '
                               'delete method', 'A tag already exists with this name')
            endpoint = sim.endpoint(endpoint_id, message='Unable to find the endpoint associated to the stack '
                                    'inside the database')
            sim.docker_cli(endpoint, ['stack', 'rm', normalize_stack_name(ident)])
            return 204, None, None, None
        stack = sim.stack(self._number(ident, 'Invalid stack identifier route variable'))
        # endpointId is optional: without it (0) the stack counts as orphaned and environment 0 is not found (404)
        endpoint_id = self._query_number(query, 'endpointId', optional=True)
        endpoint = sim.endpoint(endpoint_id, message='Unable to find the endpoint associated to the stack inside '
                                'the database')
        sim.docker_cli(endpoint, ['stack', 'rm', normalize_stack_name(stack['Name'])])
        db['stacks'].remove(stack)
        import shutil
        shutil.rmtree(stack['ProjectPath'], ignore_errors=True)
        return 204, None, None, None


def _self_signed(data_dir):
    """A self-signed certificate for --bind-https when no --sslcert is given (as Portainer does)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import datetime
    cert_path, key_path = os.path.join(data_dir, 'certs', 'cert.pem'), os.path.join(data_dir, 'certs', 'key.pem')
    if os.path.isfile(cert_path):
        return cert_path, key_path
    os.makedirs(os.path.dirname(cert_path), exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, u'portainersim')])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=365)).sign(key, hashes.SHA256()))
    with open(key_path, 'wb') as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    with open(cert_path, 'wb') as handle:
        handle.write(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def _split_addr(addr):
    host, _sep, port = addr.rpartition(':')
    return host or '0.0.0.0', int(port)


def parse_args(argv):
    parser = argparse.ArgumentParser(prog='portainer', description='portainersim: a test double of the Portainer '
                                     'CE 2.x API (thinkheads.phoenix lab), not Portainer.')
    parser.add_argument('--bind', '-p', default=':9000')
    parser.add_argument('--bind-https', default=':9443')
    parser.add_argument('--http-enabled', action='store_true')
    parser.add_argument('--http-disabled', action='store_true')
    parser.add_argument('--sslcert')
    parser.add_argument('--sslkey')
    parser.add_argument('--host', '-H')
    parser.add_argument('--admin-password-file')
    parser.add_argument('--data', '-d', default='/data')
    parser.add_argument('--assets', '-a', default='./')
    parser.add_argument('--tlsskipverify', action='store_true')
    parser.add_argument('--log-level', default='INFO', choices=('DEBUG', 'INFO', 'WARN', 'ERROR'))
    parser.add_argument('--docker-bin', default=os.environ.get('PORTAINERSIM_DOCKER', 'docker'))
    # not a Portainer flag: how long the rate limiter bans an address (Portainer: one hour), short in tests
    parser.add_argument('--sim-ratelimit-ban', type=float, metavar='SECONDS',
                        default=float(os.environ.get('PORTAINERSIM_RATELIMIT_BAN', RATE_BAN_SECONDS)))
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    sim = Sim(args)
    servers = []
    if args.bind_https:
        cert, key = (args.sslcert, args.sslkey) if args.sslcert else _self_signed(args.data)
        httpd = ThreadingHTTPServer(_split_addr(args.bind_https), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
        servers.append(httpd)
    if args.http_enabled and not args.http_disabled:
        servers.append(ThreadingHTTPServer(_split_addr(args.bind), Handler))
    for httpd in servers:
        httpd.daemon_threads = True
        httpd.sim = sim
    sys.stderr.write('portainersim %s (test double of the Portainer CE API) listening on %s\n' % (
        VERSION, ', '.join('%s:%d' % s.server_address[:2] for s in servers)))
    for httpd in servers[1:]:
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        servers[0].serve_forever()
    except KeyboardInterrupt:
        pass
    return 0
