# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""portainersim's constants, API errors, rate limiter, password hashing, JSON store, views and stack filters."""

from __future__ import absolute_import, division, print_function

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
import uuid

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
