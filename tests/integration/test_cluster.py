# -*- coding: utf-8 -*-
"""proxmox_guest and proxmox_firewall on a 3-node cluster (pvesim --node pve1 --node pve2 --node pve3, issue #20).

Guests are placed by their `node`; a guest moved behind the collection's back is found through one GET
/cluster/resources and reported, `migrate: true` moves it back, and an unchanged guest costs at most 2 calls.
"""

import copy
import os

import pytest

from pve_env import REAL_PVE, ROOT_PASSWORD, TOKEN_ID, TOKEN_SECRET, Pve
from modrun import run_module

pytestmark = pytest.mark.skipif(REAL_PVE, reason='needs a 3-node pvesim')

NODES = ['pve1', 'pve2', 'pve3']
OSTEMPLATE = 'local:vztmpl/ubuntu-24.04-standard_24.04-2_amd64.tar.zst'
IMAGE = 'local:import/debian-12-genericcloud-amd64.qcow2'


@pytest.fixture(scope='module')
def cluster(tmp_path_factory):
    from pvesim.control import Control
    from pvesim.server import start_server
    state = tmp_path_factory.mktemp('pvesim-cluster')
    server = start_server(state, tokens=['%s=%s' % (TOKEN_ID, TOKEN_SECRET)], passwords=['root@pam:' + ROOT_PASSWORD],
                          control=True, task_seconds=0.05, strict=True, nodes=NODES)
    try:
        control = Control(server.url, ca_file=str(server.ca_file))
        yield Pve(server.url, str(server.ca_file), TOKEN_ID, TOKEN_SECRET, control=control, state_dir=str(state),
                  server=server, password=ROOT_PASSWORD)
    finally:
        server.stop()


def lxc(topology, gid, node, **extra):
    guest = copy.deepcopy(topology.guests[900])
    ip = '10.0.0.%d' % (gid % 200 + 20)
    guest.update(id=gid, name='ct%d' % gid, hostname='ct%d' % gid, node=node, is_template=False,
                 template_snapshot_name=None)
    guest['network'].update(ip=ip, cidr=ip + '/24', mac=None)
    guest.update(extra)
    return guest


def vm(topology, gid, node, **extra):
    guest = copy.deepcopy(topology.guests[9000])
    guest.update(id=gid, vmid=gid, name='vm%d' % gid, hostname='vm%d' % gid, node=node, is_template=False,
                 template_snapshot_name=None)
    guest.update(extra)
    return guest


def run(pve, args, check=False, **extra):
    args = dict(args, **extra)
    return run_module('proxmox_guest', args, check=check, env=dict(pve.env, PHOENIX_PVE_NODE='pve1'))


def guest_args(guest, **extra):
    args = {'guest': guest, 'storage': guest.get('storage_pool') or 'local-lvm', 'ostemplate': OSTEMPLATE,
            'image': IMAGE, 'state': 'started'}
    args.update(extra)
    return args


def post_and_wait(pve, path, **params):
    """A write behind the collection's back (as someone at the Proxmox GUI would), waited for."""
    pve.api_get('version')
    client = pve._client  # pylint: disable=protected-access
    client.wait_task(client.post(path, **params))


def where(pve):
    return dict((int(r['vmid']), r['node']) for r in pve.api_get('cluster/resources', type='vm'))


@pytest.fixture(scope='module')
def guests(cluster, topology):
    made = {2101: lxc(topology, 2101, 'pve1', storage_pool='local-lvm'),
            2102: lxc(topology, 2102, 'pve2', storage_pool='local-lvm'),
            2103: vm(topology, 2103, 'pve3', storage_pool='local-lvm')}
    for _gid, guest in sorted(made.items()):
        result = run(cluster, guest_args(guest))
        assert result.get('created') is True and result.get('node') == guest['node'], result
    return made


def test_guests_are_created_on_their_nodes(cluster, guests):
    found = where(cluster)
    assert dict((gid, found[gid]) for gid in guests) == {2101: 'pve1', 2102: 'pve2', 2103: 'pve3'}
    creates = [r for r in cluster.requests() if r['method'] == 'POST' and r['template'] in
               ('/nodes/{node}/lxc', '/nodes/{node}/qemu')]
    assert sorted(r['path'] for r in creates) == ['/nodes/pve1/lxc', '/nodes/pve2/lxc', '/nodes/pve3/qemu']


def test_unchanged_guests_cost_at_most_two_calls(cluster, guests):
    for _gid, guest in sorted(guests.items()):
        cluster.clear_log()
        result = run(cluster, guest_args(guest))
        assert result['changed'] is False, result
        assert cluster.writes() == []
        calls = [r for r in cluster.requests() if r['path'] != '/access/ticket']
        assert len(calls) <= 2, calls
        assert result['api_calls'] <= 2 + cluster.login_calls
        assert result['node'] == guest['node'] and 'node_drift' not in result


def test_firewall_acts_on_the_guests_node(cluster, guests):
    args = {'vmid': 2102, 'kind': 'lxc', 'enabled': True, 'node': 'pve2',
            'rules': [{'type': 'in', 'action': 'ACCEPT', 'proto': 'tcp', 'dport': '22', 'enable': 1}]}
    cluster.clear_log()
    first = run_module('proxmox_firewall', args, env=cluster.env)
    assert first['changed'] is True, first
    assert all('/nodes/pve2/' in r['path'] for r in cluster.writes())


def test_clone_onto_another_node_from_shared_storage(cluster, topology, guests):
    template = lxc(topology, 2190, 'pve1', storage_pool='shared', is_template=True)
    result = run(cluster, guest_args(template, state='present'))
    assert result['created'] is True, result
    clone = lxc(topology, 2104, 'pve3', storage_pool='shared', clone_from=2190)
    cluster.clear_log()
    result = run(cluster, guest_args(clone))
    assert result['created'] is True and result['node'] == 'pve3', result
    posts = [r for r in cluster.writes() if r['path'].endswith('/clone')]
    assert posts[0]['path'] == '/nodes/pve1/lxc/2190/clone' and posts[0]['params']['target'] == 'pve3'
    assert where(cluster)[2104] == 'pve3'


def test_clone_onto_another_node_from_local_storage_is_a_clear_error(cluster, topology, guests):
    template = lxc(topology, 2191, 'pve1', storage_pool='local-lvm', is_template=True)
    run(cluster, guest_args(template, state='present'))
    clone = lxc(topology, 2105, 'pve2', storage_pool='local-lvm', clone_from=2191)
    result = run(cluster, guest_args(clone))
    assert result.get('failed') is True, result
    assert ('guest 2105 belongs on node pve2, but its clone source 2191 is on node pve1 and Proxmox clones onto '
            'another node only from shared storage') in result['msg']
    assert 2105 not in where(cluster)


def test_guest_moved_behind_the_back_is_found_and_reported(cluster, guests):
    # someone migrates 2102 (running) from pve2 to pve1 by hand
    post_and_wait(cluster, 'nodes/pve2/lxc/2102/migrate', target='pve1', restart=1)
    assert where(cluster)[2102] == 'pve1'
    cluster.clear_log()
    result = run(cluster, guest_args(guests[2102]))
    assert result['changed'] is False, result
    assert result['node_drift'] == {'from': 'pve1', 'to': 'pve2', 'migrated': False}
    assert any('is on node pve1, not on its configured node pve2' in w for w in result.get('warnings', []))
    assert cluster.writes() == []
    # the firewall module follows it there too
    args = {'vmid': 2102, 'kind': 'lxc', 'enabled': True, 'node': 'pve2',
            'rules': [{'type': 'in', 'action': 'ACCEPT', 'proto': 'tcp', 'dport': '22', 'enable': 1}]}
    assert run_module('proxmox_firewall', args, env=cluster.env)['changed'] is False
    # check mode predicts the migration and writes nothing
    predicted = run(cluster, guest_args(guests[2102], migrate=True), check=True)
    assert predicted['changed'] is True and predicted['node'] == 'pve2', predicted
    assert predicted['node_drift']['migrated'] is True and predicted['node_drift']['mode'] == 'restart'
    assert predicted['diff']['before']['node'] == 'pve1' and predicted['diff']['after']['node'] == 'pve2'
    assert cluster.writes() == []


def test_migrate_moves_it_back_then_nothing_changes(cluster, guests):
    cluster.clear_log()
    result = run(cluster, guest_args(guests[2102], migrate=True))
    assert result['changed'] is True and result['node'] == 'pve2', result
    assert result['node_drift'] == {'from': 'pve1', 'to': 'pve2', 'migrated': True, 'mode': 'restart'}
    migrations = [r for r in cluster.writes() if r['path'].endswith('/migrate')]
    assert [(r['path'], r['params']) for r in migrations] == [
        ('/nodes/pve1/lxc/2102/migrate', {'target': 'pve2', 'restart': '1'})]
    assert where(cluster)[2102] == 'pve2'
    status = cluster.api_get('nodes/pve2/lxc/2102/status/current')
    assert status['status'] == 'running'
    cluster.clear_log()
    again = run(cluster, guest_args(guests[2102], migrate=True))
    assert again['changed'] is False and 'node_drift' not in again, again
    assert len([r for r in cluster.requests() if r['path'] != '/access/ticket']) <= 2


def test_running_vm_migrates_online(cluster, guests):
    post_and_wait(cluster, 'nodes/pve3/qemu/2103/migrate', target='pve2', online=1, **{'with-local-disks': 1})
    cluster.clear_log()
    result = run(cluster, guest_args(guests[2103], migrate=True))
    assert result['changed'] is True and result['node_drift']['mode'] == 'online', result
    params = [r['params'] for r in cluster.writes() if r['path'].endswith('/migrate')]
    assert params == [{'target': 'pve3', 'online': '1', 'with-local-disks': '1'}]
    assert where(cluster)[2103] == 'pve3'
    assert cluster.api_get('nodes/pve3/qemu/2103/status/current')['status'] == 'running'


def test_unknown_node_fails_without_a_write(cluster, topology, guests):
    cluster.clear_log()
    result = run(cluster, guest_args(lxc(topology, 2106, 'pve9', storage_pool='local-lvm')))
    assert result.get('failed') is True, result
    assert "node pve9 is not a node of the cluster" in result['msg']
    assert cluster.writes() == []


def test_clone_onto_another_node_whose_answer_is_lost_is_not_sent_again(cluster, topology, guests):
    # the clone's POST runs, its answer is lost (596); by the time the module re-reads, the clone task has ended
    # and moved the new config from the source's node to the target's: the module must find it there, not resend
    template = lxc(topology, 2192, 'pve1', storage_pool='shared', is_template=True)
    assert run(cluster, guest_args(template, state='present'))['created'] is True
    clone = lxc(topology, 2107, 'pve2', storage_pool='shared', clone_from=2192)
    cluster.clear_log()
    cluster.control.set_faults(after_write={'method': 'POST', 'path': '/nodes/pve1/lxc/2192/clone'}, latency_ms=300)
    try:
        result = run(cluster, guest_args(clone))
    finally:
        cluster.control.clear_faults()
    assert result.get('failed') is not True, result
    assert result['created'] is True and result['node'] == 'pve2', result
    clones = [r for r in cluster.writes() if r['path'].endswith('/clone')]
    assert [(r['path'], r['status'], r['params'].get('target')) for r in clones] == [
        ('/nodes/pve1/lxc/2192/clone', 596, 'pve2')]                      # sent once, never repeated
    assert not any('already exists' in str(r) for r in cluster.requests())
    assert 'ran although its answer was lost' in str(result.get('warnings')), result.get('warnings')
    assert where(cluster)[2107] == 'pve2'
    assert cluster.api_get('nodes/pve2/lxc/2107/status/current')['status'] == 'running'
    cluster.clear_log()
    again = run(cluster, guest_args(clone))
    assert again['changed'] is False and cluster.writes() == [], again


def test_raw_lxc_lines_go_to_the_file_of_the_node_that_holds_the_container(cluster, topology, guests):
    # create.yml's call: the cluster file system (here pvesim's etc/pve) and the guest's configured node
    guest = lxc(topology, 2108, 'pve3', storage_pool='local-lvm')
    assert run(cluster, guest_args(guest, state='present'))['created'] is True
    pve_dir = os.path.join(cluster.state_dir, 'etc', 'pve')
    args = {'vmid': 2108, 'pve_dir': pve_dir, 'node': 'pve3', 'lxc_options': ['lxc.apparmor.profile=unconfined'],
            'lock_dir': os.path.join(cluster.state_dir, 'lock')}
    first = run_module('proxmox_lxc_raw', args)
    assert first.get('failed') is not True, first
    assert first['changed'] is True and first['node'] == 'pve3', first
    assert first['path'] == os.path.join(pve_dir, 'nodes', 'pve3', 'lxc', '2108.conf')
    assert not os.path.exists(os.path.join(pve_dir, 'lxc', '2108.conf'))        # not the local node's (pve1)
    assert cluster.api_get('nodes/pve3/lxc/2108/config')['lxc'] == [['lxc.apparmor.profile', 'unconfined']]
    # moved behind the collection's back: the configured node is stale, the file is found where it now is
    post_and_wait(cluster, 'nodes/pve3/lxc/2108/migrate', target='pve1')
    moved = run_module('proxmox_lxc_raw', dict(args, lxc_options=['lxc.apparmor.profile=unconfined',
                                                                  'lxc.mount.auto=sys:rw']))
    assert moved['changed'] is True and moved['node'] == 'pve1', moved
    assert cluster.api_get('nodes/pve1/lxc/2108/config')['lxc'] == [['lxc.apparmor.profile', 'unconfined'],
                                                                    ['lxc.mount.auto', 'sys:rw']]
    # /etc/pve/lxc is the local node's (pve1) directory: the same file
    assert os.path.samefile(moved['path'], os.path.join(pve_dir, 'lxc', '2108.conf'))


def test_firewall_with_a_wrong_missing_hint_reads_the_guest_where_it_is(cluster, guests):
    # guest_exists: false for a guest that does exist (on pve3): one lookup finds it, then it is read as usual
    args = {'vmid': 2103, 'kind': 'qemu', 'enabled': True, 'node': 'pve1', 'guest_exists': False,
            'rules': [{'type': 'in', 'action': 'ACCEPT', 'proto': 'tcp', 'dport': '22', 'enable': 1}]}
    first = run_module('proxmox_firewall', args, env=cluster.env)
    assert first.get('failed') is not True and first['guest_exists'] is True, first
    cluster.clear_log()
    again = run_module('proxmox_firewall', args, env=cluster.env, check=True)
    assert again['changed'] is False and again['guest_exists'] is True, again
    paths = [r['path'] for r in cluster.requests() if r['path'] != '/access/ticket']
    assert paths[0] == '/cluster/resources' and all('/nodes/pve3/' in p for p in paths[1:]), paths
    assert cluster.writes() == []


def firewall_paths(pve):
    return [(r['method'], r['path']) for r in pve.requests() if r['path'] != '/access/ticket']


def test_firewall_of_a_guest_moved_to_another_node_needs_no_node_lookup(cluster, topology, guests):
    # the config still says pve1, the guest lives on pve2: its firewall is one cluster-wide file, readable anywhere
    guest = lxc(topology, 2117, 'pve2', storage_pool='local-lvm')
    assert run(cluster, guest_args(guest)).get('created') is True
    rule = {'type': 'in', 'action': 'ACCEPT', 'proto': 'tcp', 'dport': '22', 'enable': 1}
    args = {'vmid': 2117, 'kind': 'lxc', 'enabled': True, 'node': 'pve1', 'rules': [rule]}
    cluster.clear_log()
    first = run_module('proxmox_firewall', args, env=cluster.env)
    assert first['changed'] is True and first['guest_exists'] is True, first
    # before writing, the one existence check; the writes then go to the node that holds the guest
    assert firewall_paths(cluster).count(('GET', '/cluster/resources')) == 1, firewall_paths(cluster)
    assert cluster.writes() and all('/nodes/pve2/' in r['path'] for r in cluster.writes())
    cluster.clear_log()
    again = run_module('proxmox_firewall', args, env=cluster.env)
    assert again['changed'] is False and again['guest_exists'] is True, again
    assert firewall_paths(cluster) == [('GET', '/nodes/pve1/lxc/2117/firewall/options'),
                                       ('GET', '/nodes/pve1/lxc/2117/firewall/rules')], firewall_paths(cluster)
    assert again['api_calls'] == 2 + cluster.login_calls
    # what the caller knows (proxmox_guest's `exists`) spares the lookup before a write too
    cluster.clear_log()
    known = run_module('proxmox_firewall', dict(args, guest_exists=True, rules=[rule, dict(rule, dport='443')]),
                       env=cluster.env)
    assert known['changed'] is True, known
    assert ('GET', '/cluster/resources') not in firewall_paths(cluster), firewall_paths(cluster)
    rules = cluster.api_get('nodes/pve3/lxc/2117/firewall/rules')
    assert sorted(r['dport'] for r in rules) == ['22', '443'], rules


def test_firewall_is_never_written_for_a_guest_no_node_has(cluster, guests):
    args = {'vmid': 2198, 'kind': 'lxc', 'enabled': True, 'node': 'pve2',
            'rules': [{'type': 'in', 'action': 'ACCEPT', 'proto': 'tcp', 'dport': '22', 'enable': 1}]}
    cluster.clear_log()
    failed = run_module('proxmox_firewall', args, env=cluster.env)
    assert failed.get('failed') is True and failed['changed'] is False, failed
    assert 'guest 2198 (lxc) does not exist' in failed['msg'], failed['msg']
    assert cluster.writes() == []
    # Proxmox would have accepted the write (it checks no guest): nothing was created
    assert cluster.api_get('nodes/pve1/lxc/2198/firewall/rules') == []
    assert set(cluster.api_get('nodes/pve1/lxc/2198/firewall/options')) == {'digest'}
    # check mode plans it from nothing, still without a write
    planned = run_module('proxmox_firewall', args, env=cluster.env, check=True)
    assert planned['changed'] is True and planned['guest_exists'] is False, planned
    assert cluster.writes() == []
