# -*- coding: utf-8 -*-
"""The reference deployment (tests/fixtures/reference, a copy of the real one's etc/) created by create.yml
against pvesim converges: the second run changes nothing on any host and writes nothing.

The reference VMs 9000, 1001, 1002 have no ``mac_address``: Proxmox picks their MAC at creation, and the
module keeps it (it must not send a bare ``model=virtio``/no ``hwaddr`` that makes Proxmox pick a new one).
"""

import os
import re
import shutil
import subprocess
import sys

import pytest

from pve_env import REAL_PVE, REPO
from image_server import NOBLE

pytestmark = [pytest.mark.walkthrough,
              pytest.mark.skipif(REAL_PVE, reason='creates the whole reference deployment: pvesim only')]
BIN = os.path.dirname(sys.executable)
OSTEMPLATE = 'local:vztmpl/ubuntu-24.04-standard_24.04-2_amd64.tar.zst'


@pytest.fixture(scope='module')
def inventory(tmp_path_factory):
    root = tmp_path_factory.mktemp('reference')
    for name in ('etc', 'stacks'):
        shutil.copytree(os.path.join(REPO, 'tests', 'fixtures', 'reference', name), root / name)
    (root / 'inventory').mkdir()
    (root / 'inventory' / 'phoenix.yml').write_text(
        'plugin: thinkheads.phoenix.phoenix\nconfig_dir: ../etc\nstacks_dir: ../stacks\nenvironment: production\n')
    return str(root / 'inventory' / 'phoenix.yml')


def playbook(pve, inventory, *extra):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
               ANSIBLE_FORCE_COLOR='0', **pve.env)
    cmd = [os.path.join(BIN, 'ansible-playbook'), 'playbooks/create.yml', '-i', inventory,
           '-e', 'ansible_connection=local', '-e', 'ansible_python_interpreter=%s' % sys.executable, '-e', 'phoenix_progress=false',
           '-e', 'phoenix_create_conf_dir=%s/etc/pve/lxc' % pve.state_dir,
           '-e', 'phoenix_create_storage=local-lvm',
           '-e', 'phoenix_create_apply_features=false', '-e', 'phoenix_create_gpu_preflight=false',
           '-e', 'phoenix_create_ostemplate=%s' % OSTEMPLATE]
    cmd += pve.image_vars(NOBLE) + list(extra)
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900, check=False)


def recaps(stdout):
    """{host: {'ok': .., 'changed': ..}} from the PLAY RECAP."""
    out = {}
    for host, counts in re.findall(r'^(\S+)\s+:\s+(ok=.*)$', stdout, re.M):
        out[host] = dict((k, int(v)) for k, v in re.findall(r'(\w+)=(\d+)', counts))
    return out


def macs(pve):
    found = {}
    for kind in ('lxc', 'qemu-server'):
        folder = os.path.join(pve.state_dir, 'etc', 'pve', kind)
        for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
            text = open(os.path.join(folder, name)).read().split('\n[', 1)[0]
            match = re.search(r'^net0: (.*)$', text, re.M)
            found[name] = match.group(1) if match else None
    return found


def test_reference_deployment_converges_on_the_second_run(pve, inventory):
    first = playbook(pve, inventory)
    assert first.returncode == 0, first.stdout[-5000:] + first.stderr[-2000:]
    created = macs(pve)
    assert '9000.conf' in created and '1001.conf' in created and '1002.conf' in created
    # 9000 is built from its cloud image (downloaded by Proxmox, checksum verified), then made a template
    template = pve.api_get('/nodes/pve/qemu/9000/config')
    assert template['template'] == 1 and template['vga'] == 'serial0', template
    assert 'local:import/noble-server-cloudimg-amd64.qcow2' in [
        v['volid'] for v in pve.api_get('/nodes/pve/storage/local/content', content='import')]
    assert 'size=50G' in template['scsi0'], template['scsi0']      # vm_defaults.disk_size_gb
    pve.clear_log()
    second = playbook(pve, inventory, '--diff')
    assert second.returncode == 0, second.stdout[-5000:] + second.stderr[-2000:]
    changed = dict((h, c['changed']) for h, c in recaps(second.stdout).items() if c.get('changed'))
    assert changed == {}, second.stdout[-6000:]
    assert pve.writes() == []
    assert macs(pve) == created        # no NIC re-plugged with a new MAC
    # In the same test (it needs the converged deployment, which a test on another xdist worker would not see)
    _restart_after_raw_lines_changed(pve, inventory)


def _drop_raw_lines(pve, vmid):
    path = os.path.join(pve.state_dir, 'etc', 'pve', 'lxc', '%d.conf' % vmid)
    text = open(path).read()
    main, sep, rest = text.partition('\n[')
    main = '\n'.join(line for line in main.split('\n') if not line.startswith('lxc.')) + ('\n' if not sep else '')
    with open(path, 'w') as handle:
        handle.write(main + sep + rest)


def _restart_after_raw_lines_changed(pve, inventory):
    # After the converge above, 102 runs. Its raw lxc.* lines are dropped behind the collection's back: create.yml
    # writes them again and restarts the container (status/reboot), since a running container reads them at start.
    _drop_raw_lines(pve, 102)
    pve.clear_log()
    run = playbook(pve, inventory, '-l', '102')
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-2000:]
    assert re.search(r'TASK \[Restart the container so its changed raw lxc\.\* lines apply\].*?\nchanged: \[102 ',
                     run.stdout, re.S), run.stdout[-5000:]
    assert [w['path'] for w in pve.writes()] == ['/nodes/pve/lxc/102/status/reboot']
    with open(os.path.join(pve.state_dir, 'etc', 'pve', 'lxc', '102.conf')) as handle:
        assert 'lxc.apparmor.profile: unconfined' in handle.read()
    # With phoenix_create_raw_lxc_restart=false the lines are written and the run only warns.
    _drop_raw_lines(pve, 102)
    pve.clear_log()
    run = playbook(pve, inventory, '-l', '102', '-e', 'phoenix_create_raw_lxc_restart=false')
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-2000:]
    assert 'container 102 is running and its raw lxc.* lines changed' in run.stdout
    assert pve.writes() == []
