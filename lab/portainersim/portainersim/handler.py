# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""portainersim's HTTP handler: the route table, authentication, the rate limit, faults and the /sim endpoints."""

from __future__ import absolute_import, division, print_function

import json
import re
import sys
import time
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, unquote, urlsplit

from .api_endpoints import EndpointRoutes
from .api_stacks import StackRoutes
from .api_users import UserRoutes
from .common import UNAUTHORIZED, ApiError


class Handler(UserRoutes, EndpointRoutes, StackRoutes, BaseHTTPRequestHandler):
    """One request: plumbing here, the /api endpoints in the mixins (api_users, api_endpoints, api_stacks)."""

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
