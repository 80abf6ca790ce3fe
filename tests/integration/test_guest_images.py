# -*- coding: utf-8 -*-
"""Guest images (issue #14): proxmox_image finds or has Proxmox download a cloud image or OS template, and
proxmox_guest builds a VM template from a cloud image (import-from, grown disk, snapshot, template) that clones
then use.

pvesim downloads for real from a loopback HTTPS server with its own CA (image_server.py), verifies the checksum
like Proxmox and answers its error texts.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

from modrun import run_module
from pve_env import REAL_PVE, REPO
from image_server import NOBLE, tiny_qcow2

pytestmark = pytest.mark.skipif(REAL_PVE, reason='serves images from a loopback server: pvesim only')
GIB = 1024 ** 3
BIN = os.path.dirname(sys.executable)


def run(pve, module, args, check=False):
    return run_module(module, args, check=check, env=pve.env)


def content(pve, kind='import'):
    return sorted(item['volid'] for item in pve.api_get('/nodes/pve/storage/local/content', content=kind))


def vm_guest(vmid, image, **extra):
    guest = {'id': vmid, 'type': 'vm', 'name': 'cloud-%d' % vmid, 'hostname': 'cloud-%d' % vmid, 'cores': 2,
             'memory_mb': 2048, 'disk_gb': 16, 'is_template': True, 'template_image': image,
             'template_snapshot_name': 'template-ready', 'network': {'dhcp': True, 'bridge': 'vmbr0'},
             'user_config': {'username': 'phoenix'}}
    guest.update(extra)
    return guest


def test_an_image_on_the_storage_is_found_with_one_read(pve):
    pve.clear_log()
    result = run(pve, 'proxmox_image', {'name': 'debian-12-genericcloud-amd64.qcow2'})
    assert result['changed'] is False and result['source'] == 'storage', result
    assert result['import_from'] == 'local:import/debian-12-genericcloud-amd64.qcow2'
    assert result['api_calls'] == 1 + pve.login_calls
    assert pve.writes() == []


def test_download_check_mode_then_change_then_unchanged(pve):
    name = 'jammy-server-cloudimg-amd64.img'
    pve.images.add(name, tiny_qcow2(3 * GIB))
    args = dict(name=name, **_source(pve, name))
    pve.clear_log()
    predicted = run(pve, 'proxmox_image', args, check=True)
    assert predicted['changed'] is True and predicted['volid'] == 'local:import/jammy-server-cloudimg-amd64.qcow2'
    assert predicted['diff']['after']['source'] == args['url']
    assert pve.writes() == [] and 'local:import/jammy-server-cloudimg-amd64.qcow2' not in content(pve)
    done = run(pve, 'proxmox_image', args)
    assert done['changed'] is True and done['source'] == 'url' and done['task'] == 'OK', done
    assert done['import_from'] == 'local:import/jammy-server-cloudimg-amd64.qcow2'
    assert done['size'] == 65536                    # the file's bytes, as Proxmox lists them
    assert [w['path'] for w in pve.writes()] == ['/nodes/pve/storage/local/download-url']
    pve.clear_log()
    again = run(pve, 'proxmox_image', args)
    assert again['changed'] is False and again['source'] == 'storage'
    assert pve.writes() == []


def test_checksum_mismatch_fails_naming_the_file_and_stores_nothing(pve):
    name = 'bad-cloudimg-amd64.img'
    pve.images.add(name, tiny_qcow2())
    args = dict(name=name, **_source(pve, name))
    args['checksum'] = '0' * 64
    result = run(pve, 'proxmox_image', args)
    assert result.get('failed') is True
    assert name in result['msg'] and 'checksum mismatch' in result['msg'], result['msg']
    assert 'local:import/bad-cloudimg-amd64.qcow2' not in content(pve)


def test_missing_without_a_source_fails_before_any_write(pve):
    pve.clear_log()
    result = run(pve, 'proxmox_image', {'name': 'nowhere-cloudimg.img', 'hint': 'set template_image_url for 9000'},
                 check=True)
    assert result.get('failed') is True
    for word in ('nowhere-cloudimg.img', 'storage local', 'local:import/nowhere-cloudimg.qcow2',
                 'set template_image_url for 9000'):
        assert word in result['msg'], result['msg']
    assert pve.writes() == []


def test_bad_checksum_is_refused_without_a_request(pve):
    pve.clear_log()
    result = run(pve, 'proxmox_image', {'name': NOBLE, 'url': 'https://127.0.0.1:1/images/x.img',
                                        'checksum': 'abc', 'checksum_algorithm': 'sha256'})
    assert result.get('failed') is True and 'checksum' in result['msg'] and '64 hex digits' in result['msg']
    assert pve.requests() == []


def test_os_template_from_the_appliance_index(pve):
    index = pve.api_get('/nodes/pve/aplinfo')
    missing = [e['template'] for e in index if 'local:vztmpl/%s' % e['template'] not in content(pve, 'vztmpl')]
    assert missing, 'every appliance of the index is already on local'
    pve.clear_log()
    result = run(pve, 'proxmox_image', {'name': missing[0]})
    assert result['changed'] is True and result['source'] == 'appliance_index', result
    assert result['ostemplate'] == 'local:vztmpl/%s' % missing[0]
    assert [w['path'] for w in pve.writes()] == ['/nodes/pve/aplinfo']
    again = run(pve, 'proxmox_image', {'name': missing[0]})
    assert again['changed'] is False


def test_vm_template_from_a_cloud_image_then_clone(pve):
    pve.images.add(NOBLE, tiny_qcow2(2 * GIB))
    fetched = run(pve, 'proxmox_image', dict(name=NOBLE, **_source(pve, NOBLE)))
    assert fetched.get('failed') is not True, fetched
    guest = vm_guest(9300, NOBLE)
    args = {'guest': guest, 'storage': 'local-lvm'}
    predicted = run(pve, 'proxmox_guest', args, check=True)
    assert predicted['changes']['scsi0'] == 'local-lvm:0,import-from=local:import/noble-server-cloudimg-amd64.qcow2'
    assert predicted['changes']['template'] == 1
    pve.clear_log()
    created = run(pve, 'proxmox_guest', args)
    assert created['changed'] is True and created['created'] is True, created
    config = pve.api_get('/nodes/pve/qemu/9300/config')
    assert config['template'] == 1
    assert config['serial0'] == 'socket' and config['vga'] == 'serial0' and config['boot'] == 'order=scsi0'
    assert 'cloudinit' in config['ide2'] and config['ciuser'] == 'phoenix' and str(config['agent']) == '1'
    assert 'size=16G' in config['scsi0'], config['scsi0']         # imported at 2 GiB, then grown
    # Proxmox converts no guest with snapshots into a template: the template is the clean state itself
    assert [s['name'] for s in pve.api_get('/nodes/pve/qemu/9300/snapshot')] == ['current']
    paths = [w['path'] for w in pve.writes()]
    assert '/nodes/pve/qemu/9300/snapshot' not in paths and paths[-1] == '/nodes/pve/qemu/9300/template'
    pve.clear_log()
    again = run(pve, 'proxmox_guest', args)
    assert again['changed'] is False, again
    assert pve.writes() == []
    clone = {'id': 9301, 'type': 'vm', 'name': 'clone-9301', 'hostname': 'clone-9301', 'clone_from': 9300,
             'disk_gb': 20, 'network': {'dhcp': True, 'bridge': 'vmbr0'}}
    cloned = run(pve, 'proxmox_guest', {'guest': clone, 'storage': 'local-lvm'})
    assert cloned['changed'] is True and cloned['created'] is True, cloned
    assert 'size=20G' in pve.api_get('/nodes/pve/qemu/9301/config')['scsi0']


def test_vm_image_that_is_not_there_fails_naming_it(pve):
    guest = vm_guest(9310, 'absent-cloudimg-amd64.img')
    result = run(pve, 'proxmox_guest', {'guest': guest, 'storage': 'local-lvm'})
    assert result.get('failed') is True
    assert 'absent-cloudimg-amd64.qcow2' in result['msg'], result['msg']


def _source(pve, name):
    return {'url': pve.images.url(name), 'checksum': pve.images.sha256(name), 'checksum_algorithm': 'sha256'}


# -- create.yml ----------------------------------------------------------------------------------------------------

def reference_inventory(tmp_path, image):
    """The reference deployment with VM template 9000 built from ``image``."""
    root = tmp_path / 'reference'
    for name in ('etc', 'stacks'):
        shutil.copytree(os.path.join(REPO, 'tests', 'fixtures', 'reference', name), root / name)
    vm_file = root / 'etc' / 'phoenix_vm_configs.json'
    data = json.loads(vm_file.read_text())
    data['vms'][0]['template_image'] = image
    vm_file.write_text(json.dumps(data))
    (root / 'inventory').mkdir()
    (root / 'inventory' / 'phoenix.yml').write_text(
        'plugin: thinkheads.phoenix.phoenix\nconfig_dir: ../etc\nstacks_dir: ../stacks\nenvironment: production\n')
    return str(root / 'inventory' / 'phoenix.yml')


def create(pve, inventory, *extra):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
               ANSIBLE_FORCE_COLOR='0', **pve.env)
    cmd = [os.path.join(BIN, 'ansible-playbook'), 'playbooks/create.yml', '-i', inventory, '-l', '9000',
           '-e', 'ansible_connection=local', '-e', 'ansible_python_interpreter=%s' % sys.executable, '-e', 'phoenix_progress=false',
           '-e', 'phoenix_create_storage=local-lvm', '-e', 'phoenix_create_apply_features=false'] + list(extra)
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)


def test_create_stops_before_any_write_when_an_image_has_no_source(pve, tmp_path):
    inventory = reference_inventory(tmp_path, 'orphan-cloudimg-amd64.img')
    pve.clear_log()
    run_ = create(pve, inventory)
    assert run_.returncode != 0
    out = ' '.join((run_.stdout + run_.stderr).split())
    for words in ('orphan-cloudimg-amd64.img is not on storage local', 'phoenix_vm_configs.json',
                  'template_image_url', 'phoenix_images', 'Nothing was changed'):
        assert words in out, out[-4000:]
    assert pve.writes() == []
    assert '9000' not in [str(g['vmid']) for g in pve.api_get('/cluster/resources', type='vm')]


def test_create_fails_on_a_checksum_mismatch_and_creates_no_vm(pve, tmp_path):
    name = 'mismatch-cloudimg-amd64.img'
    pve.images.add(name, tiny_qcow2())
    inventory = reference_inventory(tmp_path, name)
    source = dict(pve.images.source(name), checksum='f' * 64)
    pve.clear_log()
    run_ = create(pve, inventory, '-e', json.dumps({'phoenix_images': {name: source}}))
    assert run_.returncode != 0
    out = ' '.join((run_.stdout + run_.stderr).split())
    assert 'downloading %s to storage local failed' % name in out and 'checksum mismatch' in out, out[-4000:]
    assert '9000' not in [str(g['vmid']) for g in pve.api_get('/cluster/resources', type='vm')]
    assert [w['path'] for w in pve.writes()] == ['/nodes/pve/storage/local/download-url']
