# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one Portainer CE 2.x API client of the collection.

- Authentication by API access token (``X-API-Key``) or by username/password (``POST /api/auth`` -> JWT,
  sent as ``Authorization: Bearer``). No cookie jar: every request carries its credentials.
- TLS is verified by default, optionally against ``ca_path``.
- Retries with exponential backoff, only where a retry cannot repeat a write: a reading request (GET, HEAD) after
  any connection failure, timeout or HTTP 502/503/504; a write (POST, PUT, DELETE) only when it certainly did not
  reach Portainer (connection refused, name resolution or connect timeout) or was refused unprocessed (HTTP 503).
  After an ambiguous failure of a write (a read timeout, a connection closed before the answer, HTTP 502/504 from a
  proxy) the request may have been carried out: the error has ``unsure=True`` and the caller re-reads what is there
  (portainer_stack does). A TLS verification failure is never retried ("TLS verification failed for <url>: ...").
  Every other answer is final and raised with Portainer's own ``message``/``details``.
- Every call is counted per method and path template (``client.calls``) so that modules, tests and the
  benchmark can prove how many requests, and which deploys, a run made.

Portainer CE behaviours the client relies on (read in Portainer's source, api/http/...):

- ``GET /api/stacks?filters={"EndpointID": n}`` returns COMPOSE stacks of environment n only; a Swarm stack matches
  only ``{"SwarmID": ...}`` (handler/stacks/stack_list.go filterStacks). The client lists all stacks and keeps those
  whose ``EndpointId`` is the environment.
- Stack names are stored lower-cased with everything but ``-_a-z0-9`` removed (exec/swarm_stack.go
  NormalizeStackName): lookups use the normalised name (``normalize_stack_name``).
- Logins, token creations and password changes are rate-limited per client address: past a burst of 10 (one more per
  second) the address gets HTTP 403 "Access denied" for an hour (security/rate_limiter.go, server.go).
- An ``X-API-Key`` and an ``Authorization`` header in the same request are refused (HTTP 403); the client sends one.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import re
import socket
import ssl
import time

from ansible.module_utils.six.moves import http_client
from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.six.moves.urllib.parse import quote, urlencode
from ansible.module_utils.urls import open_url, prepare_multipart

RETRYABLE_STATUS = (502, 503, 504)
# answers of a proxy in front of Portainer that may have passed the request on (Bad Gateway, Gateway Timeout)
AMBIGUOUS_STATUS = (502, 504)
READING_METHODS = ('GET', 'HEAD')
_ID_RE = re.compile(r'/\d+(?=/|$)')
_STACK_NAME_STRIP = re.compile(r'[^-_a-z0-9]+')

# Portainer's numeric enums
STACK_TYPE_SWARM = 1
STACK_TYPE_COMPOSE = 2
ENDPOINT_CREATE_LOCAL = 1
ENDPOINT_CREATE_AGENT = 2


def portainer_argument_spec():
    """Connection options of the Portainer modules. portainer_stack and portainer_stack_info document them through
    the thinkheads.phoenix.portainer doc fragment; portainer_bootstrap changes some of them (url required, more
    retries, its own username and password) and documents its options itself."""
    from ansible.module_utils.basic import env_fallback
    return dict(
        url=dict(type='str', fallback=(env_fallback, ['PHOENIX_PORTAINER_URL'])),
        api_key=dict(type='str', no_log=True, fallback=(env_fallback, ['PHOENIX_PORTAINER_API_KEY'])),
        username=dict(type='str', fallback=(env_fallback, ['PHOENIX_PORTAINER_USERNAME'])),
        password=dict(type='str', no_log=True, fallback=(env_fallback, ['PHOENIX_PORTAINER_PASSWORD'])),
        validate_certs=dict(type='bool', default=True, fallback=(env_fallback, ['PHOENIX_PORTAINER_VALIDATE_CERTS'])),
        ca_path=dict(type='path', fallback=(env_fallback, ['PHOENIX_PORTAINER_CA_PATH'])),
        api_timeout=dict(type='int', default=30),
        api_retries=dict(type='int', default=3),
    )


class PortainerError(Exception):
    """A failed request, with Portainer's words and the HTTP status (None when unreachable)."""

    def __init__(self, message, status=None, method=None, path=None, details=None, reason=None, unsure=False):
        self.message = message
        self.reason = reason  # Portainer's own "message" field
        self.status = status
        self.method = method
        self.path = path
        self.details = details
        self.unsure = unsure  # a write that may have been carried out although no answer said so
        super(PortainerError, self).__init__(message)


def _tls_failure(reason):
    """The certificate or host name check failed (never worth a retry)."""
    if isinstance(reason, getattr(ssl, 'SSLCertVerificationError', ())):
        return True
    text = str(reason)
    return isinstance(reason, ssl.SSLError) and ('CERTIFICATE_VERIFY_FAILED' in text or 'certificate verify failed'
                                                 in text or "doesn't match" in text)


def _not_sent(reason):
    """A failure raised while opening the connection, before any byte of the request left: refused, name not
    resolved, connect timeout. (urllib wraps what happens while connecting and sending in URLError; a small request
    body fits the socket buffer, so a timeout there is the connect's.)"""
    return isinstance(reason, (ConnectionRefusedError, socket.gaierror, socket.timeout, TimeoutError))


BAN_HINT = ('Portainer refuses logins, API token creations and password changes from an address that made more '
            'than 10 of them in a burst, and keeps refusing them for an hour (HTTP 403 "Access denied"). Wait '
            'for the ban to end, and authenticate with an API token instead of a password so that runs do not log '
            'in: api_key (or PHOENIX_PORTAINER_API_KEY), or the token_file written by '
            'thinkheads.phoenix.portainer_bootstrap.')


def normalize_stack_name(name):
    """The name Portainer stores a stack under: lower case, only ``-``, ``_``, ``a-z`` and ``0-9`` kept."""
    return _STACK_NAME_STRIP.sub('', (name or '').lower())


def path_template(path):
    """/api/stacks/12/file -> /api/stacks/{id}/file (for call counts)."""
    return _ID_RE.sub('/{id}', path.split('?', 1)[0])


class PortainerClient:
    """Counted, retrying access to the Portainer API."""

    def __init__(self, url, api_key=None, username=None, password=None, validate_certs=True, ca_path=None,
                 api_timeout=30, api_retries=3, backoff=0.5, sleep=time.sleep, **_ignored):
        if not url:
            raise PortainerError('the Portainer URL is not set (option url or PHOENIX_PORTAINER_URL)')
        self.base = url.rstrip('/')
        if not re.match(r'^https?://', self.base):
            raise PortainerError('the Portainer URL must start with https:// or http:// (got %s)' % url)
        if self.base.endswith('/api'):
            self.base = self.base[:-4]
        self.api_key = api_key
        self.username = username
        self.password = password
        self.validate_certs = validate_certs
        self.ca_path = ca_path
        self.timeout = api_timeout
        self.retries = max(0, int(api_retries))
        self.backoff = backoff
        self._sleep = sleep
        self.jwt = None
        self.calls = {}
        self.log = []

    # -- raw requests ---------------------------------------------------------------------------

    def _count(self, method, path):
        key = '%s %s' % (method, path_template(path))
        self.calls[key] = self.calls.get(key, 0) + 1
        self.log.append(key)

    def _headers(self, auth):
        # never both X-API-Key and Authorization: Portainer refuses such a request with HTTP 403
        headers = {'Accept': 'application/json'}
        if auth:
            if self.api_key:
                headers['X-API-Key'] = self.api_key
            else:
                if self.jwt is None:
                    self.login()
                headers['Authorization'] = 'Bearer %s' % self.jwt
        return headers

    def request(self, method, path, query=None, body=None, form=None, auth=True, expect=None, counted_as=None):
        """One API call. ``body``: JSON; ``form``: multipart fields. Returns the decoded JSON (or None).
        ``counted_as``: the path template to count the call under (default: numeric IDs become {id})."""
        if query:
            path = '%s?%s' % (path, urlencode(sorted((k, v) for k, v in query.items() if v is not None)))
        url = self.base + path
        data = None
        headers = self._headers(auth)
        if body is not None:
            data = json.dumps(body).encode('utf-8')
            headers['Content-Type'] = 'application/json'
        elif form is not None:
            content_type, data = prepare_multipart(form)
            headers['Content-Type'] = content_type
        reading = method in READING_METHODS
        attempt = 0
        while True:
            attempt += 1
            self._count(method, counted_as or path)
            try:
                resp = open_url(url, data=data, headers=headers, method=method, validate_certs=self.validate_certs,
                                ca_path=self.ca_path, timeout=self.timeout, follow_redirects='none',
                                use_proxy=False, http_agent='thinkheads.phoenix')
                raw = resp.read()
                if not raw:
                    return None
                try:
                    return json.loads(raw.decode('utf-8'))
                except ValueError:
                    return raw.decode('utf-8', 'replace')
            except HTTPError as exc:
                status = exc.code
                text = ''
                try:
                    text = exc.read().decode('utf-8', 'replace')
                except Exception:  # pylint: disable=broad-except
                    text = ''
                # a write is repeated after a 503 only: a 502/504 may come from a proxy that passed it on
                if status in RETRYABLE_STATUS and (reading or status not in AMBIGUOUS_STATUS) \
                        and attempt <= self.retries:
                    self._sleep(self.backoff * (2 ** (attempt - 1)))
                    continue
                message, details = text.strip(), None
                try:
                    decoded = json.loads(text)
                    if isinstance(decoded, dict):
                        message = decoded.get('message') or message
                        details = decoded.get('details')
                except ValueError:
                    pass
                if expect and status in expect:
                    return {'_status': status, 'message': message, 'details': details}
                hint = ''
                if status == 401 and auth and self.api_key:
                    hint = ' - Portainer does not accept the API token (api_key / PHOENIX_PORTAINER_API_KEY)'
                unsure = not reading and status in AMBIGUOUS_STATUS
                if unsure:
                    hint += ' - the request may have been carried out all the same'
                raise PortainerError('%s %s failed (HTTP %s): %s%s%s' % (
                    method, path_template(path), status, message, ' (%s)' % details if details else '', hint),
                    status=status, method=method, path=path, details=details, reason=message,
                    unsure=unsure) from None
            except URLError as exc:
                # raised while connecting or sending (urllib wraps those errors; the answer's are not wrapped)
                reason = getattr(exc, 'reason', exc)
                if _tls_failure(reason):
                    raise PortainerError('TLS verification failed for %s: %s' % (url, reason), method=method,
                                         path=path) from None
                sent = not _not_sent(reason)
                if (reading or not sent) and attempt <= self.retries:
                    self._sleep(self.backoff * (2 ** (attempt - 1)))
                    continue
                raise self._unreachable(method, path, attempt, reason, unsure=sent and not reading) from None
            except (socket.timeout, socket.error, ConnectionError, http_client.HTTPException) as exc:
                # raised while waiting for or reading the answer: the request was sent
                if _tls_failure(exc):
                    raise PortainerError('TLS verification failed for %s: %s' % (url, exc), method=method,
                                         path=path) from None
                if reading and attempt <= self.retries:
                    self._sleep(self.backoff * (2 ** (attempt - 1)))
                    continue
                raise self._unreachable(method, path, attempt, exc or type(exc).__name__,
                                        unsure=not reading) from None

    def _unreachable(self, method, path, attempt, reason, unsure):
        if unsure:
            return PortainerError('Portainer at %s did not answer %s %s (%s): the request may have been carried out, '
                                  'so it is not sent again' % (self.base, method, path_template(path),
                                                               reason or 'no answer'),
                                  method=method, path=path, unsure=True)
        return PortainerError('Portainer at %s is unreachable (%s %s, %d attempts): %s' % (
            self.base, method, path_template(path), attempt, reason), method=method, path=path)

    # -- authentication and users --------------------------------------------------------------------

    def login(self):
        if not (self.username and self.password):
            raise PortainerError('set api_key, or username and password, to authenticate to Portainer')
        try:
            data = self.request('POST', '/api/auth', body={'Username': self.username, 'Password': self.password},
                                auth=False)
        except PortainerError as exc:
            raise self._banned(exc) from None
        self.jwt = data['jwt']
        return self.jwt

    @staticmethod
    def _banned(exc):
        """A rate-limited call's 403 "Access denied" explained; any other error unchanged."""
        if exc.status == 403 and exc.reason == 'Access denied':
            return PortainerError('%s. %s' % (exc.message, BAN_HINT), status=exc.status, method=exc.method,
                                  path=exc.path, details=exc.details, reason=exc.reason)
        return exc

    def status(self):
        """``{Version, InstanceID}``: ``GET /api/system/status``, or the deprecated ``/api/status`` where the former
        is missing (HTTP 404, Portainer before 2.19)."""
        answer = self.request('GET', '/api/system/status', auth=False, expect=(404,))
        if isinstance(answer, dict) and answer.get('_status') == 404:
            return self.request('GET', '/api/status', auth=False)
        return answer

    def admin_exists(self):
        answer = self.request('GET', '/api/users/admin/check', auth=False, expect=(404,))
        return not (isinstance(answer, dict) and answer.get('_status') == 404)

    def admin_init(self, username, password):
        """Create the first admin; returns (user or None, created). 409 (an admin exists) is not an error."""
        answer = self.request('POST', '/api/users/admin/init', body={'Username': username, 'Password': password},
                              auth=False, expect=(409,))
        if isinstance(answer, dict) and answer.get('_status') == 409:
            return None, False
        return answer, True

    def me(self):
        return self.request('GET', '/api/users/me')

    def tokens(self, user_id):
        return self.request('GET', '/api/users/%d/tokens' % user_id) or []

    def create_token(self, user_id, description, password):
        try:
            return self.request('POST', '/api/users/%d/tokens' % user_id,
                                body={'description': description, 'password': password})
        except PortainerError as exc:
            raise self._banned(exc) from None

    def delete_token(self, user_id, key_id):
        """Remove an API token; one that is already gone (Portainer: HTTP 500 "API Key not found") is not an error.
        Returns whether this call removed it."""
        answer = self.request('DELETE', '/api/users/%d/tokens/%d' % (user_id, key_id), expect=(500,))
        if isinstance(answer, dict) and answer.get('_status') == 500:
            if answer.get('message') == 'API Key not found':
                return False
            raise PortainerError('DELETE /api/users/{id}/tokens/{id} failed (HTTP 500): %s%s' % (
                answer.get('message'), ' (%s)' % answer['details'] if answer.get('details') else ''), status=500,
                method='DELETE', path='/api/users/%d/tokens/%d' % (user_id, key_id), details=answer.get('details'))
        return True

    # -- environments (endpoints) ----------------------------------------------------------------------

    def endpoints(self, name=None):
        query = {'name': name} if name else None
        return self.request('GET', '/api/endpoints', query=query) or []

    def endpoint_by_name(self, name):
        matches = [e for e in self.endpoints(name) if e.get('Name') == name]
        return matches[0] if matches else None

    def resolve_endpoint(self, endpoint=None, endpoint_id=None):
        """The endpoint ID for a name (or the given ID); a clear error lists the known names."""
        if endpoint_id:
            return int(endpoint_id)
        found = self.endpoint_by_name(endpoint)
        if found is None:
            names = sorted(e.get('Name', '') for e in self.endpoints())
            raise PortainerError('Portainer has no environment named "%s" (known: %s)' % (
                endpoint, ', '.join(names) or 'none'))
        return int(found['Id'])

    def create_endpoint(self, name, creation_type, url=None, tls=False, tls_skip_verify=False, group_id=None,
                        tls_ca_cert=None):
        """``tls_ca_cert``: the PEM text Portainer verifies the environment's certificate with (multipart file
        TLSCACertFile, required by Portainer when TLS is on and TLSSkipVerify off; api/http/handler/endpoints/
        endpoint_create.go Validate). No client certificate is sent (TLSSkipClientVerify)."""
        form = {'Name': name, 'EndpointCreationType': str(creation_type)}
        if url:
            form['URL'] = url
        if tls:
            form['TLS'] = 'true'
            form['TLSSkipVerify'] = 'true' if tls_skip_verify else 'false'
            form['TLSSkipClientVerify'] = 'true'
            if not tls_skip_verify and tls_ca_cert:
                form['TLSCACertFile'] = {'filename': 'ca.pem', 'content': tls_ca_cert,
                                         'mime_type': 'application/x-pem-file'}
        if group_id:
            form['GroupID'] = str(group_id)
        return self.request('POST', '/api/endpoints', form=form)

    def docker(self, endpoint_id, method, path, query=None, body=None, expect=None):
        """The Docker API of an environment, through Portainer's proxy."""
        return self.request(method, '/api/endpoints/%d/docker%s' % (endpoint_id, path), query=query, body=body,
                            expect=expect)

    def swarm_id(self, endpoint_id):
        info = self.docker(endpoint_id, 'GET', '/swarm')
        if not isinstance(info, dict) or not info.get('ID'):
            raise PortainerError('environment %d is not a Swarm manager (GET /swarm gave no ID)' % endpoint_id)
        return info['ID']

    # -- stacks --------------------------------------------------------------------------------------------

    def stacks(self, endpoint_id=None):
        """Portainer's stacks (every type), those of one environment when ``endpoint_id`` is given.

        Filtered here, not with ``filters={"EndpointID": n}``: Portainer applies that filter to compose stacks only
        and would never return a Swarm stack (api/http/handler/stacks/stack_list.go filterStacks)."""
        stacks = self.request('GET', '/api/stacks') or []
        if endpoint_id:
            stacks = [s for s in stacks if int(s.get('EndpointId') or 0) == int(endpoint_id)]
        return stacks

    def stack_by_name(self, name, endpoint_id):
        """The stack of the environment stored under ``name`` normalised as Portainer does, or None."""
        wanted = normalize_stack_name(name)
        for stack in self.stacks(endpoint_id):
            if normalize_stack_name(stack.get('Name')) == wanted:
                return stack
        return None

    def stack_file(self, stack_id):
        return (self.request('GET', '/api/stacks/%d/file' % stack_id) or {}).get('StackFileContent', '')

    def create_swarm_stack(self, endpoint_id, name, swarm_id, compose, env):
        return self.request('POST', '/api/stacks/create/swarm/string', query={'endpointId': endpoint_id},
                            body={'name': name, 'swarmID': swarm_id, 'stackFileContent': compose, 'env': env})

    def update_stack(self, stack_id, endpoint_id, compose, env, prune=False, pull_image=False):
        return self.request('PUT', '/api/stacks/%d' % stack_id, query={'endpointId': endpoint_id},
                            body={'stackFileContent': compose, 'env': env, 'prune': prune, 'pullImage': pull_image})

    def delete_stack(self, stack_id, endpoint_id):
        return self.request('DELETE', '/api/stacks/%d' % stack_id, query={'endpointId': endpoint_id})

    def delete_external_stack(self, name, endpoint_id):
        """Remove a Swarm stack Portainer did not create (``external=true``)."""
        return self.request('DELETE', '/api/stacks/%s' % quote(name, safe=''),
                            query={'endpointId': endpoint_id, 'external': 'true'}, counted_as='/api/stacks/{name}')
