# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""portainersim's system, user, authentication and API-token endpoints (a mixin of the HTTP handler)."""

from __future__ import absolute_import, division, print_function

import base64
import hashlib
import secrets
import time

from .common import ADMIN_ROLE, MIN_PASSWORD, UNAUTHORIZED, VERSION, ApiError, check_password, token_view, user_view


class UserRoutes(object):
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
