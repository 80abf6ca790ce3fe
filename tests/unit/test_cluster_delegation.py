# -*- coding: utf-8 -*-
"""Node-local work on a Proxmox cluster: create.yml runs the tasks that need the host of a guest's node (the NVIDIA
device check, proxmox_lxc_raw) on the inventory host phoenix_pve_node_hosts names for that node, else on the first
hypervisor; and the lab's two-node configs (lab/lab.py up --nodes 2) are valid and place the Swarm manager and worker
on different nodes, with the VMs' disks on the shared storage a clone onto another node needs."""

import json
import os
import subprocess
import sys

import yaml

from phoenix_testlib import REPO

BIN = os.path.dirname(sys.executable)
ENV = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'), ANSIBLE_NOCOLOR='1')


def create_task(name):
    with open(os.path.join(REPO, 'playbooks', 'create.yml')) as handle:
        for play in yaml.safe_load(handle):
            for task in play.get('tasks') or []:
                if task.get('name') == name:
                    return task
    raise AssertionError('no task %r in create.yml' % name)


def delegated_host(tmp_path, expression, hostvars):
    """Where the expression sends guest g1 (host variables hostvars) in an inventory whose hypervisor group is
    hyp1, hyp2."""
    inventory = tmp_path / 'inventory.yml'
    inventory.write_text(yaml.safe_dump({'all': {'children': {
        'hypervisor': {'hosts': {'hyp1': None, 'hyp2': None}},
        'phoenix': {'hosts': {'g1': hostvars}}}}}))
    playbook = tmp_path / 'play.yml'
    playbook.write_text(yaml.safe_dump([{'hosts': 'g1', 'gather_facts': False, 'tasks': [
        {'ansible.builtin.debug': {'msg': 'HOST=%s' % expression.strip()}}]}]))
    proc = subprocess.run([os.path.join(BIN, 'ansible-playbook'), '-i', str(inventory), str(playbook)],
                          env=ENV, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    line = next(line for line in proc.stdout.splitlines() if 'HOST=' in line)
    return line.split('HOST=', 1)[1].strip().strip('"\'')


NODE_HOSTS = {'pve': 'hyp1', 'pve2': 'hyp2'}


def test_gpu_check_runs_on_the_host_of_the_guests_node(tmp_path):
    expression = create_task('Look for the NVIDIA device nodes on the hypervisor')['delegate_to']
    guest = {'phoenix_guest': {'node': 'pve2'}}
    assert delegated_host(tmp_path, expression, {**guest, 'phoenix_pve_node_hosts': NODE_HOSTS}) == 'hyp2'
    # without the mapping (a single host, or nodes not in the inventory): the first hypervisor, as before
    assert delegated_host(tmp_path, expression, guest) == 'hyp1'
    assert delegated_host(tmp_path, expression, {'phoenix_guest': {'node': None},
                                                 'phoenix_pve_node_hosts': NODE_HOSTS}) == 'hyp1'
    assert delegated_host(tmp_path, expression, {'phoenix_guest': {'node': 'pve9'},
                                                 'phoenix_pve_node_hosts': NODE_HOSTS}) == 'hyp1'


def test_raw_lxc_edit_runs_on_the_host_of_the_node_that_holds_the_container(tmp_path):
    expression = create_task('Apply raw lxc.* options and ID maps on the hypervisor')['delegate_to']
    guest = {'phoenix_guest': {'node': 'pve'}, 'phoenix_pve_node_hosts': NODE_HOSTS}
    # where proxmox_guest found it (migrated behind the collection's back) wins over the configured node
    assert delegated_host(tmp_path, expression, {**guest, 'phoenix_create_guest': {'node': 'pve2'}}) == 'hyp2'
    assert delegated_host(tmp_path, expression, {**guest, 'phoenix_create_guest': {'node': None}}) == 'hyp1'
    assert delegated_host(tmp_path, expression, {'phoenix_guest': {'node': 'pve2'}, 'phoenix_create_guest': {},
                                                 'phoenix_pve_node_hosts': NODE_HOSTS}) == 'hyp2'
    assert delegated_host(tmp_path, expression, {'phoenix_guest': {'node': 'pve2'},
                                                 'phoenix_create_guest': {}}) == 'hyp1'


def lab_module():
    sys.path.insert(0, os.path.join(REPO, 'lab'))
    try:
        import lab  # noqa: PLC0415 - lab/lab.py is a script, imported here for its config writer
    except SystemExit:  # no docker SDK in this interpreter
        import pytest
        pytest.skip('lab/lab.py needs the docker Python SDK')
    finally:
        sys.path.pop(0)
    return lab


def test_lab_one_node_keeps_lab_etc_and_one_hypervisor():
    lab = lab_module()
    config_dir = lab.cluster_config_dir(1)
    assert config_dir == lab.LAB / 'etc'
    topo = lab.load_topology(config_dir)
    assert topo['hypervisors'] == [{'name': 'phoenix-hypervisor', 'node': 'pve', 'ip': '10.77.0.13', 'api': True}]
    args = lab.pvesim_args(topo, {'token_secret': 's'})
    assert args.count('--node ') == 1 and '--node pve ' in args


def test_lab_two_nodes_configs_place_the_swarm_on_both_nodes(tmp_path):
    lab = lab_module()
    config_dir = lab.cluster_config_dir(2, target=tmp_path / 'etc')
    topo = lab.load_topology(config_dir)
    assert [(h['name'], h['node'], h['ip'], h['api']) for h in topo['hypervisors']] == [
        ('phoenix-hypervisor', 'pve', '10.77.0.13', True), ('phoenix-hypervisor-pve2', 'pve2', '10.77.0.14', False)]
    # the second node's address is used by no guest
    assert '10.77.0.14' not in {g['ip'] for g in topo['guests']}
    args = lab.pvesim_args(topo, {'token_secret': 's'}).split()
    assert [args[i + 1] for i, a in enumerate(args) if a == '--node'] == ['pve', 'pve2']
    hyp = json.loads((config_dir / 'phoenix_hypervisor_config.json').read_text())
    assert sorted(hyp['cluster']['nodes']) == ['pve', 'pve2'] and hyp['cluster']['shared_storages'] == ['shared']
    assert (config_dir / hyp['$schema']).resolve() == \
        (lab.LAB / 'etc' / json.loads((lab.LAB / 'etc' / 'phoenix_hypervisor_config.json').read_text())['$schema']).resolve()

    # the collection's own model of these configs: valid, 1001 on pve and 1002 on pve2, disks on the shared storage
    inventory = tmp_path / 'phoenix.yml'
    inventory.write_text(yaml.safe_dump({'plugin': 'thinkheads.phoenix.phoenix', 'config_dir': str(config_dir),
                                         'stacks_dir': str(lab.LAB / 'stacks'), 'environment': 'production',
                                         'platform_rules': 'error'}))
    proc = subprocess.run([os.path.join(BIN, 'ansible-inventory'), '-i', str(inventory), '--list'], env=ENV,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    hostvars = json.loads(proc.stdout, object_hook=lab._unsafe_hook)['_meta']['hostvars']
    guests = {host: json.loads(v['phoenix_guest_json']) for host, v in hostvars.items() if 'phoenix_guest_json' in v}
    assert guests['1001']['node'] == 'pve' and guests['1002']['node'] == 'pve2'
    assert (guests['1001']['portainer_role'], guests['1002']['portainer_role']) == ('primary', 'agent')
    vms = json.loads((config_dir / 'phoenix_vm_configs.json').read_text())
    assert vms['vm_defaults']['storage_pool'] == 'shared'
    assert all(g['node'] == 'pve' for host, g in guests.items() if host not in ('1002',))
