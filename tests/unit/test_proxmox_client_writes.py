# -*- coding: utf-8 -*-
"""The PVE client's retry rules: reads are retried after any transient failure, writes only when they certainly
never reached Proxmox; a lost answer to a write raises PveAmbiguousWrite; guest locks are waited out, named."""

import pytest
import requests
from proxmoxer.core import ResourceException
from urllib3.exceptions import MaxRetryError, NewConnectionError

from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox import (
    PveAmbiguousWrite, PveClient, PveError, write_not_sent,
)
from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox_privs import (
    root_only_message, root_only_writes,
)


@pytest.fixture
def client():
    sleeps = []
    pve = PveClient('https://127.0.0.1:1', api_token_id='root@pam!phoenix', api_token_secret='s', api_retries=3,
                    lock_timeout=10, sleep=sleeps.append)
    pve.sleeps = sleeps
    return pve


def calls(*outcomes):
    """A callable that raises or returns the given outcomes in turn; .count says how often it ran."""
    state = {'n': 0}

    def func():
        outcome = outcomes[min(state['n'], len(outcomes) - 1)]
        state['n'] += 1
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    func.state = state
    return func


def http(status, text=''):
    return ResourceException(status, 'reason', text)


def refused():
    reason = NewConnectionError(None, 'Failed to establish a new connection: [Errno 111] Connection refused')
    return requests.exceptions.ConnectionError(MaxRetryError(None, '/api2/json/nodes', reason))


def test_reads_are_retried_after_every_transient_failure(client):
    func = calls(http(596), requests.exceptions.ReadTimeout('read timed out'), http(502), {'ok': 1})
    assert client._with_retries('GET', 'nodes/pve/lxc/801/config', func) == {'ok': 1}
    assert func.state['n'] == 4 and client.sleeps == [0.5, 1.0, 2.0]


@pytest.mark.parametrize('failure', [http(596), http(504), http(502), requests.exceptions.ReadTimeout('timed out'),
                                     requests.exceptions.ConnectionError('Connection aborted.')])
def test_a_write_whose_answer_was_lost_is_not_sent_again(client, failure):
    func = calls(failure, 'UPID:pve:1:2:3:vzcreate:801:root@pam!phoenix:')
    with pytest.raises(PveAmbiguousWrite) as info:
        client._with_retries('POST', 'nodes/pve/lxc', func)
    assert func.state['n'] == 1 and client.sleeps == []
    assert info.value.ambiguous is True and info.value.method == 'POST'


@pytest.mark.parametrize('failure', [refused(), requests.exceptions.ConnectTimeout('connect timed out'),
                                     requests.exceptions.SSLError('handshake failure'), http(503), http(595)])
def test_a_write_that_never_left_is_retried(client, failure):
    assert write_not_sent(failure) or isinstance(failure, ResourceException)
    func = calls(failure, failure, None)
    assert client._with_retries('PUT', 'nodes/pve/lxc/801/config', func) is None
    assert func.state['n'] == 3 and client.sleeps == [0.5, 1.0]


def test_a_write_that_never_left_gives_up_after_the_retries(client):
    func = calls(http(595))
    with pytest.raises(PveError) as info:
        client._with_retries('POST', 'nodes/pve/lxc', func)
    assert func.state['n'] == 4 and not info.value.ambiguous and info.value.status == 595


def test_proxmox_errors_are_not_retried(client):
    func = calls(http(500, "CT 801 already exists on node 'pve'"))
    with pytest.raises(PveError) as info:
        client._with_retries('POST', 'nodes/pve/lxc', func)
    assert func.state['n'] == 1 and not info.value.ambiguous and 'already exists' in info.value.message


@pytest.mark.parametrize('text, lock', [('CT is locked (backup)', 'backup'), ('VM is locked (clone)', 'clone'),
                                        ('CT is locked (disk)', 'disk'),
                                        ("can't lock file '/run/lock/lxc/pve-config-801.lock' - got timeout",
                                         'its config file lock')])
def test_a_locked_guest_is_waited_for(client, text, lock):
    func = calls(http(500, text), http(500, text), 'UPID:x')
    assert client._with_retries('POST', 'nodes/pve/lxc/900/clone', func) == 'UPID:x'
    assert func.state['n'] == 3 and len(client.sleeps) == 2
    assert len(client.notes) == 1 and text in client.notes[0] and lock in client.notes[0]
    assert 'waiting up to 10s' in client.notes[0]


def test_a_lock_that_outlasts_lock_timeout_fails_naming_it(client):
    func = calls(http(500, 'CT is locked (backup)'))
    with pytest.raises(PveError) as info:
        client._with_retries('PUT', 'nodes/pve/lxc/801/config', func)
    assert "still locked after 10s (CT is locked (backup); waited for lock 'backup'" in info.value.message
    assert sum(client.sleeps) >= 10


def test_reads_of_a_locked_guest_are_not_waited_for(client):
    func = calls(http(500, 'CT is locked (backup)'))
    with pytest.raises(PveError):
        client._with_retries('GET', 'nodes/pve/lxc/801/config', func)
    assert func.state['n'] == 1 and client.notes == []


def test_identity(client):
    assert client.authid == 'root@pam!phoenix'


# -- the root-only rule (pve-container check_ct_modify_config_perm) ---------------------------------------------


def test_root_only_writes_for_a_token():
    token = 'root@pam!phoenix'
    changes = {'dev0': '/dev/nvidia0', 'mp0': '/srv/data,mp=/data', 'mp1': 'local-lvm:2,mp=/x',
               'features': 'nesting=1,keyctl=1', 'memory': 1024}
    found = dict(root_only_writes(token, changes, ['dev3'], None, True))
    assert sorted(found) == ['dev0', 'dev3', 'features', 'mp0']
    assert 'keyctl' in found['features'] and '/srv/data' in found['mp0']
    assert root_only_writes('root@pam', changes, ['dev3'], None, True) == []
    # nesting alone, unchanged features and removing a bind mount are open to tokens
    assert root_only_writes(token, {'features': 'nesting=1'}, ['mp0'], None, True) == []
    assert root_only_writes(token, {'features': 'nesting=0,keyctl=1'}, [], {'features': 'nesting=1,keyctl=1'},
                            True) == []
    assert [k for k, _why in root_only_writes(token, {}, ['features'], {'features': 'keyctl=1'}, True)] == ['features']
    # a privileged container: any features change
    assert [k for k, _why in root_only_writes(token, {'features': 'nesting=1'}, [], None, False)] == ['features']
    message = root_only_message('lxc', 801, token, root_only_writes(token, {'dev0': '/dev/nvidia0'}, [], None, True),
                                'set')
    assert message.startswith('lxc 801: Proxmox lets only root@pam itself (not an API token such as root@pam!phoenix)')
    assert 'dev0: device passthrough /dev/nvidia0' in message and 'api_password' in message
    assert 'Nothing was written' in message


# -- continuing after a lost answer (proxmox_recover) -------------------------------------------------------------


class FakeClient:
    """Answers create_guest's calls from a script: posts (outcomes in turn), configs (per read), tasks."""

    node = 'pve'
    task_timeout = 5

    def __init__(self, posts, configs, tasks=()):
        self.posts, self.configs, self.tasks = list(posts), list(configs), list(tasks)
        self.sent, self.notes, self.waited = [], [], []

    def post(self, path, **params):
        self.sent.append(path)
        outcome = self.posts.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def get(self, path, **params):
        if path.endswith('/tasks'):
            return self.tasks.pop(0) if self.tasks else []
        config = self.configs.pop(0) if len(self.configs) > 1 else self.configs[0]
        if config is None:
            raise PveError("Configuration file 'nodes/pve/lxc/801.conf' does not exist", status=500)
        return config

    def wait_task(self, upid):
        self.waited.append(upid)

    def pause(self, seconds):
        pass


def lost():
    return PveAmbiguousWrite('POST nodes/pve/lxc failed (HTTP 596): ', status=596)


def test_lost_create_answer_then_the_guest_is_there_locked_then_done():
    from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox_recover import create_guest
    import time
    running = {'upid': 'UPID:pve:1:2:3:vzcreate:801:root@pam:', 'type': 'vzcreate', 'starttime': int(time.time())}
    client = FakeClient([lost()], [{'lock': 'create'}, {'hostname': 'x'}], tasks=[[running]])
    assert create_guest(client, 'lxc', 801, 'nodes/pve/lxc', {}, 'vzcreate') is None
    assert client.sent == ['nodes/pve/lxc'] and client.waited == [running['upid']]
    assert any('answer lost' in n for n in client.notes)


def test_lost_create_answer_when_it_never_ran_is_sent_again():
    from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox_recover import create_guest
    client = FakeClient([lost(), 'UPID:pve:1:2:3:vzcreate:801:root@pam:'], [None])
    assert create_guest(client, 'lxc', 801, 'nodes/pve/lxc', {}, 'vzcreate').startswith('UPID:')
    assert client.sent == ['nodes/pve/lxc', 'nodes/pve/lxc']


def test_a_resent_create_that_finds_the_guest_continues_from_it():
    from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox_recover import create_guest
    exists = PveError("POST nodes/pve/lxc failed (HTTP 500): CT 801 already exists on node 'pve'", status=500)
    client = FakeClient([lost(), exists], [None, {'hostname': 'x'}])
    assert create_guest(client, 'lxc', 801, 'nodes/pve/lxc', {}, 'vzcreate') is None
    assert len(client.sent) == 2


def test_a_guest_that_appears_and_vanishes_is_a_failed_task():
    from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox_recover import create_guest
    client = FakeClient([lost()], [{'lock': 'create'}, None])
    with pytest.raises(PveError) as info:
        create_guest(client, 'lxc', 801, 'nodes/pve/lxc', {}, 'vzcreate')
    assert 'appeared and was removed again' in info.value.message and client.sent == ['nodes/pve/lxc']


def test_a_create_error_is_not_recovered():
    from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox_recover import create_guest
    exists = PveError("POST nodes/pve/lxc failed (HTTP 500): CT 801 already exists on node 'pve'", status=500)
    client = FakeClient([exists], [None])
    with pytest.raises(PveError):
        create_guest(client, 'lxc', 801, 'nodes/pve/lxc', {}, 'vzcreate')
    assert client.sent == ['nodes/pve/lxc']


class FakeClusterClient(FakeClient):
    """Like FakeClient, but config reads answer per node: ``configs`` holds {node: config} per round (a round
    ends with the task list read; the last one stays)."""

    def get(self, path, **params):
        if path.endswith('/tasks'):
            if len(self.configs) > 1:
                self.configs.pop(0)
            return self.tasks.pop(0) if self.tasks else []
        node = path.split('/')[1]
        config = self.configs[0].get(node)
        if config is None:
            raise PveError("Configuration file 'nodes/%s/lxc/802.conf' does not exist" % node, status=500)
        return config


def test_lost_clone_answer_onto_another_node_follows_the_config_to_the_target():
    # clone_vm with target: the new config sits locked on the source node while the task runs, then moves to the
    # target node; neither place alone is the whole story, and the clone is never sent twice
    from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox_recover import create_guest
    import time
    running = {'upid': 'UPID:pve1:1:2:3:vzclone:901:root@pam:', 'type': 'vzclone', 'starttime': int(time.time())}
    client = FakeClusterClient([lost()], [{'pve1': {'lock': 'create'}}, {'pve3': {'hostname': 'x'}}],
                               tasks=[[running]])
    params = {'newid': 802, 'target': 'pve3'}
    assert create_guest(client, 'lxc', 802, 'nodes/pve1/lxc/901/clone', params, 'vzclone', 901) is None
    assert client.sent == ['nodes/pve1/lxc/901/clone'] and client.waited == [running['upid']]
    assert any('ran although its answer was lost' in n for n in client.notes)


def test_lost_clone_answer_onto_another_node_that_never_ran_is_sent_again():
    from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox_recover import create_guest
    client = FakeClusterClient([lost(), 'UPID:pve1:1:2:3:vzclone:901:root@pam:'], [{}])
    params = {'newid': 802, 'target': 'pve3'}
    assert create_guest(client, 'lxc', 802, 'nodes/pve1/lxc/901/clone', params, 'vzclone', 901).startswith('UPID:')
    assert client.sent == ['nodes/pve1/lxc/901/clone'] * 2
