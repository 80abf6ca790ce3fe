#!/usr/bin/env python
# -*- coding: utf-8 -*-
"""Stack sync cost: API calls and wall time for the first deploy and a no-op sync of N stacks.

Ours: thinkheads.phoenix.portainer_stack through the Portainer API (the test double portainersim on the
manager of a real 2-node docker-in-docker Swarm, see tests/swarm/swarm_lab.py), one playbook loop over the
stacks. Theirs: community.docker.docker_stack on the same Swarm (run on the manager, as it must be).
Both loops deploy without waiting for convergence (docker_stack cannot wait), so the figures compare the
sync logic itself. Like sync.yml, ours resolves the Portainer environment once per run
(portainer_stack_info) and passes endpoint_id; the per-stack figures exclude that one lookup, printed apart.
Ours' first deploy includes Portainer's registry digest resolution on create (pullImage, as Portainer does;
about 10 s per stack here, where no registry answers); docker_stack runs with resolve_image=never.

    .venv/bin/python benchmarks/stack_sync.py            # N = 2 and 20
    .venv/bin/python benchmarks/stack_sync.py --n 2

The last line is machine-readable:
    ours_noop_calls_per_stack=<a> ours_noop_deploys=<b> docker_stack_noop_s=<c> ours_noop_s=<d>
(for the largest N).
"""

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, '..'))
sys.path.insert(0, os.path.join(REPO, 'tests', 'swarm'))
sys.path.insert(0, os.path.join(REPO, 'tests', 'unit'))

import swarm_lab  # noqa: E402
from modrun import run_module  # noqa: E402

BIN = os.path.dirname(sys.executable)
COMPOSE = {'version': '3.8', 'services': {'web': {
    'image': 'phoenix-lab/guest:latest', 'command': ['sleep', '100000'],
    'environment': {'LEVEL': '${LEVEL:-info}'},
    'deploy': {'placement': {'constraints': ['node.labels.phoenix.role == worker']}}}}}

OURS = """
- name: Sync stacks through Portainer (thinkheads.phoenix.portainer_stack)
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Resolve the environment once per run (as sync.yml does)
      thinkheads.phoenix.portainer_stack_info:
        endpoint: primary
        url: "{{ bench_url }}"
        api_key: "{{ bench_key }}"
        ca_path: "{{ bench_ca }}"
      register: bench_info
    - name: Deploy each stack
      thinkheads.phoenix.portainer_stack:
        name: "bench-p-{{ item }}"
        compose: "{{ bench_compose | to_nice_yaml }}"
        env: {LEVEL: info}
        endpoint_id: "{{ bench_info.endpoint_id }}"
        url: "{{ bench_url }}"
        api_key: "{{ bench_key }}"
        ca_path: "{{ bench_ca }}"
        wait: false
      loop: "{{ range(bench_n) | list }}"
      register: bench_res
    - name: Save the call counts
      ansible.builtin.copy:
        content: "{{ ([bench_info.api_calls] + bench_res.results | map(attribute='api_calls') | list) | to_json }}"
        dest: "{{ bench_out }}"
        mode: "0600"
"""

THEIRS = """
- name: Sync stacks with community.docker.docker_stack
  hosts: all
  gather_facts: false
  tasks:
    - name: Deploy each stack
      community.docker.docker_stack:
        name: "bench-d-{{ item }}"
        compose: ["{{ bench_compose }}"]
        resolve_image: never
      environment: {LEVEL: info}
      loop: "{{ range(bench_n) | list }}"
"""


def playbook(text, workdir, extra, host=None):
    path = os.path.join(workdir, 'play-%d.yml' % abs(hash(text)))
    with open(path, 'w') as handle:
        handle.write(text)
    vars_path = os.path.join(workdir, 'vars.json')
    with open(vars_path, 'w') as handle:
        json.dump(extra, handle)
    cmd = [os.path.join(BIN, 'ansible-playbook'), path, '-e', '@' + vars_path]
    if host:
        cmd += ['-i', '%s,' % host, '-c', 'community.docker.docker_api', '-e',
                'ansible_python_interpreter=/usr/bin/python3']
    else:
        cmd += ['-i', 'localhost,', '-e', 'ansible_python_interpreter=%s' % sys.executable]
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'), ANSIBLE_NOCOLOR='1')
    start = time.time()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    elapsed = time.time() - start
    if proc.returncode != 0:
        raise SystemExit('playbook failed:\n%s\n%s' % (proc.stdout[-4000:], proc.stderr[-2000:]))
    return elapsed


def summed(path):
    """(calls of the stack tasks summed, calls of the once-per-run environment lookup)."""
    with open(path) as handle:
        data = json.load(handle)
    per_run, per_stack = data[0], data[1:]
    total = {}
    for calls in per_stack:
        for key, count in calls.items():
            total[key] = total.get(key, 0) + count
    return total, per_run


def deploys(calls):
    return sum(v for k, v in calls.items() if not k.startswith('GET '))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--n', type=int, nargs='+', default=[2, 20])
    parser.add_argument('--keep', action='store_true', help='leave the swarm running')
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix='phx-swarm-bench-')
    lab = swarm_lab.Swarm(workdir)
    print('starting the 2-node swarm and portainersim ...', flush=True)
    lab.up()
    lab.start_sim()
    try:
        token_file = os.path.join(workdir, 'token')
        boot = run_module('portainer_bootstrap', {'url': lab.url, 'password': swarm_lab.ADMIN_PASSWORD,
                                                  'ca_path': lab.ca, 'token_file': token_file})
        assert not boot.get('failed'), boot
        # community.docker.docker_stack needs jsondiff on the manager: a pure-Python wheel from PyPI
        wheels = glob.glob(os.path.join(REPO, '.cache', 'phx-swarm', 'wheels', 'jsondiff-*.whl'))
        if not wheels:
            os.makedirs(os.path.join(REPO, '.cache', 'phx-swarm', 'wheels'), exist_ok=True)
            subprocess.run([os.path.join(BIN, 'pip'), 'download', '-q', '--no-deps', 'jsondiff==2.2.1', '-d',
                            os.path.join(REPO, '.cache', 'phx-swarm', 'wheels')], check=True)
            wheels = glob.glob(os.path.join(REPO, '.cache', 'phx-swarm', 'wheels', 'jsondiff-*.whl'))
        swarm_lab.docker('cp', wheels[0], '%s:/tmp/jsondiff.whl' % swarm_lab.MGR)
        swarm_lab.docker('exec', swarm_lab.MGR, 'python3', '-c', 'import site, zipfile; zipfile.ZipFile('
                         '"/tmp/jsondiff.whl").extractall(site.getsitepackages()[0])')
        results = {}
        for n in args.n:
            extra = {'bench_n': n, 'bench_compose': COMPOSE, 'bench_url': lab.url, 'bench_ca': lab.ca,
                     'bench_key': open(token_file).read().strip(), 'bench_out': os.path.join(workdir, 'calls.json')}
            row = {}
            row['ours_first_s'] = playbook(OURS, workdir, extra)
            row['ours_first_calls'], _run = summed(extra['bench_out'])
            row['ours_noop_s'] = playbook(OURS, workdir, extra)
            row['ours_noop_calls'], row['ours_run_calls'] = summed(extra['bench_out'])
            row['docker_stack_first_s'] = playbook(THEIRS, workdir, extra, host=swarm_lab.MGR)
            row['docker_stack_noop_s'] = playbook(THEIRS, workdir, extra, host=swarm_lab.MGR)
            results[n] = row
            noop = row['ours_noop_calls']
            print('N=%d ours: first %.1fs (%d calls, %d deploys), no-op %.1fs (%d calls, %d deploys: %s; plus %s once '
                  'per run) | docker_stack: first %.1fs, no-op %.1fs' % (
                      n, row['ours_first_s'], sum(row['ours_first_calls'].values()),
                      deploys(row['ours_first_calls']), row['ours_noop_s'], sum(noop.values()), deploys(noop),
                      ', '.join('%s=%d' % kv for kv in sorted(noop.items())),
                      ', '.join('%s=%d' % kv for kv in sorted(row['ours_run_calls'].items())),
                      row['docker_stack_first_s'], row['docker_stack_noop_s']), flush=True)
            for prefix in ('bench-p-', 'bench-d-'):
                names = ['%s%d' % (prefix, i) for i in range(n)]
                swarm_lab.node(swarm_lab.MGR, 'stack', 'rm', *names, check=False)
            # forget ours in the test double too, so the next N starts from scratch
            from ansible_collections.thinkheads.phoenix.plugins.module_utils.portainer import PortainerClient
            client = PortainerClient(lab.url, api_key=extra['bench_key'], ca_path=lab.ca)
            for stack in client.stacks():
                if stack['Name'].startswith('bench-p-'):
                    client.delete_stack(stack['Id'], stack['EndpointId'])
            time.sleep(5)
        n = max(results)
        row = results[n]
        noop = row['ours_noop_calls']
        print('ours_noop_calls_per_stack=%.2f ours_noop_deploys=%d docker_stack_noop_s=%.2f ours_noop_s=%.2f' % (
            sum(noop.values()) / float(n), deploys(noop), row['docker_stack_noop_s'], row['ours_noop_s']))
    finally:
        if not args.keep:
            lab.down()


if __name__ == '__main__':
    main()
