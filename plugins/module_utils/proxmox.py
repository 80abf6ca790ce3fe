# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one Proxmox VE API client of the collection, built on proxmoxer.

- API token or password (ticket) authentication; TLS verified by default, optionally against a CA file.
- Reads (GET) are retried after transient failures (connection errors and HTTP 502/503/504/595/596) with
  exponential backoff. Writes (POST/PUT/DELETE) are retried only when they certainly did not reach Proxmox
  (no connection, a connect timeout, HTTP 503/595 from a proxy before it forwarded them); after an answer that
  leaves open whether Proxmox ran them (a read timeout, HTTP 502/504/596/597: pveproxy gives pvedaemon 30 s and
  then answers 596, the write may still have been done) they raise PveAmbiguousWrite, and the caller re-reads
  the state and continues from it (see proxmox_recover.py).
- Writes refused because the guest is locked (``CT is locked (backup)``, ``VM is locked (clone)``, ...) or its
  config file lock timed out are retried until ``lock_timeout``; each wait is recorded in ``client.notes``.
- Proxmox's per-parameter errors (HTTP 400) and other handler errors (HTTP 500) are raised verbatim.
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
    requests = None
    RETRYABLE_EXCEPTIONS = ()

try:
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
    NOT_SENT_REASONS = (ConnectTimeoutError, NewConnectionError)
except ImportError:  # pragma: no cover
    NOT_SENT_REASONS = ()

# Transient answers: gateway/proxy errors, and pveproxy's own 595/596 for a node it could not reach.
# Proxmox answers 500 for definitive handler errors ("does not exist", "is locked", ...): never retried.
RETRYABLE_STATUS = (502, 503, 504, 595, 596)
# Answers that say a write never reached Proxmox's handler: 595 is AnyEvent::HTTP's "could not connect" that
# pveproxy passes on (pve-http-server src/PVE/APIServer/AnyEvent.pm proxy_request), 503 a proxy in front of it
# that had no backend. Every other transient answer to a write may come after Proxmox did the work.
WRITE_NOT_SENT_STATUS = (503, 595)
# "CT is locked (backup)" / "VM is locked (clone)" (pve-guest-common src/PVE/AbstractConfig.pm check_lock), and a
# config file lock that timed out ("can't lock file '/run/lock/lxc/pve-config-801.lock' - got timeout"): the write
# did nothing and may be sent again once the lock is gone.
_LOCKED_RE = re.compile(r"\b(CT|VM) is locked \(([^)]+)\)|can't lock file '[^']*' - got timeout")


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
        lock_timeout=dict(type='int', default=300),
    )


class PveError(Exception):
    """An API or task failure, with Proxmox's own words."""

    ambiguous = False   # True: a write that Proxmox may or may not have run (PveAmbiguousWrite)

    def __init__(self, message, status=None, errors=None, path=None, method=None):
        self.message = message
        self.status = status
        self.errors = errors or {}
        self.path = path
        self.method = method
        super(PveError, self).__init__(message)


class PveAmbiguousWrite(PveError):
    """A write whose answer was lost after it was sent: Proxmox may have run it. Re-read, never send it blindly."""

    ambiguous = True


def write_not_sent(exc):
    """Whether a requests exception shows that the request never left this host (no connection was made)."""
    if requests is None:
        return False
    if isinstance(exc, (requests.exceptions.ConnectTimeout, requests.exceptions.SSLError)):
        return True     # no TCP connection, or the TLS handshake (which comes before the request) failed
    if isinstance(exc, requests.exceptions.ConnectionError) and not isinstance(exc, requests.exceptions.ProxyError):
        reason = exc.args[0] if exc.args else None
        reason = getattr(reason, 'reason', reason)      # urllib3's MaxRetryError wraps the cause
        return bool(NOT_SENT_REASONS) and isinstance(reason, NOT_SENT_REASONS)
    return False


def lock_refusal(exc):
    """The lock named in a 'CT/VM is locked (<lock>)' refusal, 'file' for a config file lock timeout, else None."""
    status = getattr(exc, 'status_code', getattr(exc, 'status', None))
    if status != 500:
        return None
    match = _LOCKED_RE.search(_error_text(exc))
    if not match:
        return None
    return match.group(2) or 'file'


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
                 lock_timeout=300, backoff=0.5, sleep=time.sleep, **_ignored):
        if not HAS_PROXMOXER:
            raise PveError('the Python library proxmoxer is required: %s' % PROXMOXER_IMPORT_ERROR)
        parts, port = parse_api_url(api_url)
        self.node = node
        self.retries = max(0, int(api_retries))
        self.task_timeout = task_timeout
        self.lock_timeout = 300 if lock_timeout is None else max(0, int(lock_timeout))
        self.backoff = backoff
        self._sleep = sleep
        self.calls = []
        self.notes = []         # what the client waited out or recovered from (modules turn them into warnings)
        self._located = None    # {vmid: /cluster/resources entry}, read once by locate()
        verify = (ca_file or True) if validate_certs else False
        kwargs = dict(host=parts.hostname, port=port, user=api_user, verify_ssl=verify,
                      timeout=api_timeout, backend='https', service='PVE')
        if api_token_id:
            if not api_token_secret:
                raise PveError('api_token_secret is required with api_token_id')
            token = api_token_id.split('!', 1)[-1]
            user = api_token_id.split('!', 1)[0] if '!' in api_token_id else api_user
            kwargs.update(user=user, token_name=token, token_value=api_token_secret)
            self.authid = '%s!%s' % (user, token)
        elif api_password:
            kwargs.update(password=api_password)
            self.authid = api_user
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
        locked_for = 0.0
        safe = method == 'GET' or path == 'access/ticket'      # reads and the login may always be repeated
        while True:
            attempt += 1
            if count:
                self.calls.append((method, path))
            try:
                return func()
            except ResourceException as exc:
                status = getattr(exc, 'status_code', None)
                lock = None if safe else lock_refusal(exc)
                if lock is not None:
                    locked_for = self._wait_for_lock(method, path, lock, exc, locked_for)
                    attempt -= 1
                    continue
                ambiguous = not safe and status in RETRYABLE_STATUS and status not in WRITE_NOT_SENT_STATUS
                if ambiguous or status not in RETRYABLE_STATUS or attempt > self.retries:
                    error = PveAmbiguousWrite if ambiguous else PveError
                    raise error('%s %s failed (HTTP %s): %s' % (method, path, status, _error_text(exc)),
                                status=status, errors=getattr(exc, 'errors', None), path=path,
                                method=method) from exc
            except RETRYABLE_EXCEPTIONS as exc:
                if not safe and not write_not_sent(exc):
                    raise PveAmbiguousWrite('%s %s: no answer, Proxmox may or may not have run it: %s'
                                            % (method, path, exc), path=path, method=method) from exc
                if attempt > self.retries:
                    raise PveError('%s %s failed: %s' % (method, path, exc), path=path, method=method) from exc
            self._sleep(self.backoff * (2 ** (attempt - 1)))

    def _wait_for_lock(self, method, path, lock, exc, waited):
        """Sleep while a guest lock refuses a write; PveError naming the lock once lock_timeout has passed."""
        what = 'its config file lock' if lock == 'file' else "lock '%s'" % lock
        if waited >= self.lock_timeout:
            raise PveError('%s %s: the guest is still locked after %ds (%s; waited for %s to go away; see the node\'s '
                           'tasks, or remove a stale lock with pct/qm unlock)'
                           % (method, path, int(waited), _error_text(exc), what),
                           status=500, path=path, method=method) from exc
        if not waited:
            self.notes.append('%s %s: %s; waiting up to %ds for %s to go away'
                              % (method, path, _error_text(exc), self.lock_timeout, what))
        delay = min(5.0, max(0.5, self.backoff * 2))
        self._sleep(delay)
        return waited + delay

    def pause(self, seconds):
        """Sleep between polls (the sleep function the client was made with)."""
        self._sleep(seconds)

    def request(self, method, path, **params):
        path = path.strip('/')
        params = dict((k, v) for k, v in params.items() if v is not None)
        resource = self.api(path)
        func = {'GET': resource.get, 'POST': resource.post, 'PUT': resource.put, 'DELETE': resource.delete}[method]
        return self._with_retries(method, path, lambda: func(**params))

    def get(self, path, **params):
        return self.request('GET', path, **params)

    def get_params(self, path, params):
        """GET with the parameters as a dict: for an API parameter named ``path`` (GET /access/permissions)."""
        path = path.strip('/')
        resource = self.api(path)
        return self._with_retries('GET', path, lambda: resource.get(**params))

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
                if str(exit_status).startswith('WARNINGS'):
                    self._note_task_warnings(node, upid, status)
                return status
            if time.time() > deadline:
                raise PveError('task %s still running after %ss' % (upid, timeout or self.task_timeout))

    def _note_task_warnings(self, node, upid, status):
        """A task that ended with 'WARNINGS: n' succeeded (pve-common UPID.pm status_is_error); its 'WARN: ...' log
        lines go to status['warnings'] and, as one line, to client.notes (which the modules show as warnings)."""
        try:
            log = self.get('nodes/%s/tasks/%s/log' % (node, upid), limit=5000) or []
        except PveError:
            log = []
        warnings = [str(entry.get('t', ''))[len('WARN: '):] for entry in log
                    if str(entry.get('t', '')).startswith('WARN: ')]
        status['warnings'] = warnings
        what = ' '.join(str(part) for part in (status.get('type') or 'task', status.get('id')) if part)
        self.notes.append('task %s ended with %s%s' % (what, status.get('exitstatus'),
                                                       (': ' + '; '.join(warnings)) if warnings else ''))

    def _task_log_tail(self, node, upid, lines=10):
        try:
            log = self.get('nodes/%s/tasks/%s/log' % (node, upid), limit=500)
        except PveError:
            return ''
        return '\n'.join(str(entry.get('t', '')) for entry in (log or [])[-lines:])

    # -- helpers -----------------------------------------------------------------------------------

    def guest_resources(self):
        """The guests of /cluster/resources (type=vm), each a dict with vmid, type, node, status, name, template.

        Proxmox lists a guest it has no statistics for yet (just created: pvestatd has not reported it) with status
        'unknown' and nothing but its identity (pve-manager PVE/API2Tools.pm extract_vm_stats). Such an entry is
        never taken as stopped: its status, name and template flag are read from its status/current instead (a
        guest that is gone by then is left out).
        """
        guests = []
        for res in self.get('cluster/resources', type='vm') or []:
            if res.get('vmid') is None:
                continue
            res = dict(res)
            if res.get('status') in (None, '', 'unknown') and res.get('type') in ('lxc', 'qemu') and res.get('node'):
                try:
                    current = self.get('nodes/%s/%s/%s/status/current' % (res['node'], res['type'], res['vmid'])) or {}
                except PveError as exc:
                    if guest_missing(exc, res['vmid']):
                        continue
                    raise
                res['status'] = current.get('status') or res.get('status')
                res['template'] = current.get('template', 0)
                if current.get('name') is not None:
                    res['name'] = current['name']
            guests.append(res)
        return guests

    def locate(self, vmid):
        """The /cluster/resources entry (node, type, status, ...) of a guest anywhere in the cluster, or None.

        One ``GET /cluster/resources?type=vm`` per client, however many guests are looked up; ``forget()`` reads it
        again next time (after a create, clone or migration)."""
        if self._located is None:
            self._located = dict((int(res['vmid']), res) for res in self.get('cluster/resources', type='vm') or []
                                 if res.get('vmid') is not None)
        return self._located.get(int(vmid))

    def forget(self):
        self._located = None

    def find_guest(self, vmid):
        """(type, node) of a guest from /cluster/resources, or (None, None) when it does not exist."""
        for res in self.get('cluster/resources', type='vm') or []:
            if int(res.get('vmid', -1)) == int(vmid):
                return res.get('type'), res.get('node')
        return None, None
