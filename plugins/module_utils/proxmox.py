# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one Proxmox VE API client of the collection, built on proxmoxer.

- API token or password (ticket) authentication; TLS verified by default, optionally against a CA file.
- Transient failures (connection errors and HTTP 502/503/504/595/596) are retried with exponential
  backoff; Proxmox's per-parameter errors (HTTP 400) and handler errors (HTTP 500) are raised verbatim.
- Asynchronous tasks (UPIDs) are waited for with a timeout; a failed task raises with its exit status
  and the end of its log.
- Every call is counted (``client.calls``) so callers and benchmarks can report API usage.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import re
import time

from urllib.parse import urlsplit

try:
    from proxmoxer import ProxmoxAPI
    from proxmoxer.core import AuthenticationError, ResourceException
    HAS_PROXMOXER = True
    PROXMOXER_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by the modules
    HAS_PROXMOXER = False
    PROXMOXER_IMPORT_ERROR = exc
    ProxmoxAPI = None

    class ResourceException(Exception):
        pass

    class AuthenticationError(Exception):
        pass

try:
    import requests
    RETRYABLE_EXCEPTIONS = (requests.exceptions.ConnectionError, requests.exceptions.Timeout)
except ImportError:  # pragma: no cover
    RETRYABLE_EXCEPTIONS = ()

# Transient answers: gateway/proxy errors, and pveproxy's own 595/596 for a node it could not reach.
# Proxmox answers 500 for definitive handler errors ("does not exist", "is locked", ...): never retried.
RETRYABLE_STATUS = (502, 503, 504, 595, 596)


# How Proxmox answers a request about a guest that does not exist: its config loader (PVE::AbstractConfig
# load_config, behind GET .../config, status, clone, ...) dies with HTTP 500 and this text, naming the config
# file under /etc/pve: 'nodes/<node>/lxc/<vmid>.conf' or 'nodes/<node>/qemu-server/<vmid>.conf'. pvesim
# answers the same, for the guest firewall paths too.
_MISSING_GUEST_RE = re.compile(r"Configuration file 'nodes/[^/']+/(?:lxc|qemu-server)/(\d+)\.conf' does not exist")


def guest_missing(exc, vmid=None):
    """Whether a PveError says that a guest (``vmid``, or any) does not exist."""
    if getattr(exc, 'status', None) != 500:
        return False
    match = _MISSING_GUEST_RE.search(str(getattr(exc, 'message', '') or ''))
    return bool(match) and (vmid is None or int(match.group(1)) == int(vmid))


def proxmox_argument_spec():
    """Connection options shared by every Proxmox module (see the thinkheads.phoenix.proxmox doc fragment)."""
    from ansible.module_utils.basic import env_fallback
    return dict(
        api_url=dict(type='str', required=True, fallback=(env_fallback, ['PHOENIX_PVE_URL'])),
        api_user=dict(type='str', default='root@pam', fallback=(env_fallback, ['PHOENIX_PVE_USER'])),
        api_token_id=dict(type='str', fallback=(env_fallback, ['PHOENIX_PVE_TOKEN_ID'])),
        api_token_secret=dict(type='str', no_log=True, fallback=(env_fallback, ['PHOENIX_PVE_TOKEN_SECRET'])),
        api_password=dict(type='str', no_log=True, fallback=(env_fallback, ['PHOENIX_PVE_PASSWORD'])),
        validate_certs=dict(type='bool', default=True, fallback=(env_fallback, ['PHOENIX_PVE_VALIDATE_CERTS'])),
        ca_file=dict(type='path', fallback=(env_fallback, ['PHOENIX_PVE_CA_FILE'])),
        node=dict(type='str', default='pve', fallback=(env_fallback, ['PHOENIX_PVE_NODE'])),
        api_timeout=dict(type='int', default=30),
        api_retries=dict(type='int', default=4),
        task_timeout=dict(type='int', default=600),
    )


class PveError(Exception):
    """An API or task failure, with Proxmox's own words."""

    def __init__(self, message, status=None, errors=None, path=None, method=None):
        self.message = message
        self.status = status
        self.errors = errors or {}
        self.path = path
        self.method = method
        super(PveError, self).__init__(message)


def _error_text(exc):
    errors = getattr(exc, 'errors', None)
    if isinstance(errors, dict) and errors:
        detail = '; '.join('%s: %s' % (k, str(v).strip()) for k, v in sorted(errors.items()))
    else:
        detail = str(getattr(exc, 'content', '') or '').strip()
    return detail or str(exc)


def parse_api_url(api_url):
    """(urlsplit parts, port) of an https API URL; a PveError naming api_url when it is malformed."""
    text = str(api_url or '').strip()
    try:
        parts = urlsplit(text if '://' in text else 'https://' + text)
        port = parts.port or 8006
    except ValueError as exc:     # a non-numeric or out-of-range port, a broken [IPv6] literal
        raise PveError('api_url %r is not a valid URL: %s' % (text, exc)) from None
    if parts.scheme != 'https':
        raise PveError('api_url must use https (got %s)' % text)
    if not parts.hostname:
        raise PveError('api_url %r names no host' % text)
    return parts, port


class PveClient:
    """Thin, counted, retrying access to the Proxmox VE API."""

    def __init__(self, api_url, api_user='root@pam', api_token_id=None, api_token_secret=None, api_password=None,
                 validate_certs=True, ca_file=None, node='pve', api_timeout=30, api_retries=4, task_timeout=600,
                 backoff=0.5, sleep=time.sleep, **_ignored):
        if not HAS_PROXMOXER:
            raise PveError('the Python library proxmoxer is required: %s' % PROXMOXER_IMPORT_ERROR)
        parts, port = parse_api_url(api_url)
        self.node = node
        self.retries = max(0, int(api_retries))
        self.task_timeout = task_timeout
        self.backoff = backoff
        self._sleep = sleep
        self.calls = []
        verify = (ca_file or True) if validate_certs else False
        kwargs = dict(host=parts.hostname, port=port, user=api_user, verify_ssl=verify,
                      timeout=api_timeout, backend='https', service='PVE')
        if api_token_id:
            if not api_token_secret:
                raise PveError('api_token_secret is required with api_token_id')
            token = api_token_id.split('!', 1)[-1]
            user = api_token_id.split('!', 1)[0] if '!' in api_token_id else api_user
            kwargs.update(user=user, token_name=token, token_value=api_token_secret)
        elif api_password:
            kwargs.update(password=api_password)
        else:
            raise PveError('set api_token_id + api_token_secret, or api_password')
        try:
            self.api = self._with_retries('POST', 'access/ticket', lambda: ProxmoxAPI(**kwargs),
                                          count=bool(api_password))
        except AuthenticationError as exc:
            raise PveError('authentication failed for %s: %s' % (api_user, exc), status=401) from exc

    # -- raw calls ---------------------------------------------------------------------------------

    def _with_retries(self, method, path, func, count=True):
        attempt = 0
        while True:
            attempt += 1
            if count:
                self.calls.append((method, path))
            try:
                return func()
            except ResourceException as exc:
                status = getattr(exc, 'status_code', None)
                if status not in RETRYABLE_STATUS or attempt > self.retries:
                    raise PveError('%s %s failed (HTTP %s): %s' % (method, path, status, _error_text(exc)),
                                   status=status, errors=getattr(exc, 'errors', None), path=path,
                                   method=method) from exc
            except RETRYABLE_EXCEPTIONS as exc:
                if attempt > self.retries:
                    raise PveError('%s %s failed: %s' % (method, path, exc), path=path, method=method) from exc
            self._sleep(self.backoff * (2 ** (attempt - 1)))

    def request(self, method, path, **params):
        path = path.strip('/')
        params = dict((k, v) for k, v in params.items() if v is not None)
        resource = self.api(path)
        func = {'GET': resource.get, 'POST': resource.post, 'PUT': resource.put, 'DELETE': resource.delete}[method]
        return self._with_retries(method, path, lambda: func(**params))

    def get(self, path, **params):
        return self.request('GET', path, **params)

    def post(self, path, **params):
        return self.request('POST', path, **params)

    def put(self, path, **params):
        return self.request('PUT', path, **params)

    def delete(self, path, **params):
        return self.request('DELETE', path, **params)

    @property
    def writes(self):
        return [c for c in self.calls if c[0] != 'GET']

    # -- tasks -------------------------------------------------------------------------------------

    def wait_task(self, upid, timeout=None, poll=0.2):
        """Wait for a task; raise PveError with the exit status and log tail when it fails."""
        if not isinstance(upid, str) or not upid.startswith('UPID:'):
            return None  # synchronous call
        node = upid.split(':')[1]
        deadline = time.time() + (timeout or self.task_timeout)
        delay = poll
        while True:
            self._sleep(delay)
            delay = min(delay * 1.5, 2.0)
            status = self.get('nodes/%s/tasks/%s/status' % (node, upid))
            if status.get('status') == 'stopped':
                exit_status = status.get('exitstatus', '')
                if exit_status != 'OK' and not str(exit_status).startswith('WARNINGS'):
                    tail = self._task_log_tail(node, upid)
                    detail = ('\n' + tail) if tail else ''
                    raise PveError('task %s failed: %s%s' % (status.get('type', upid), exit_status, detail))
                return status
            if time.time() > deadline:
                raise PveError('task %s still running after %ss' % (upid, timeout or self.task_timeout))

    def _task_log_tail(self, node, upid, lines=10):
        try:
            log = self.get('nodes/%s/tasks/%s/log' % (node, upid), limit=500)
        except PveError:
            return ''
        return '\n'.join(str(entry.get('t', '')) for entry in (log or [])[-lines:])

    # -- helpers -----------------------------------------------------------------------------------

    def find_guest(self, vmid):
        """(type, node) of a guest from /cluster/resources, or (None, None) when it does not exist."""
        for res in self.get('cluster/resources', type='vm') or []:
            if int(res.get('vmid', -1)) == int(vmid):
                return res.get('type'), res.get('node')
        return None, None
