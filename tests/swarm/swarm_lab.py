# -*- coding: utf-8 -*-
"""A real 2-node Docker Swarm in docker-in-docker for the stack tests, and the Portainer API test double on it.

Topology (every object named phx-swarm*):
- network phx-swarm-net (--internal, 10.213.7.0/24); phx-swarm-mgr 10.213.7.11 (manager), phx-swarm-wkr 10.213.7.12
  (worker, node label phoenix.role=worker), both from phoenix-lab/vm:latest (systemd + dockerd) with the lab's run
  flags; the attachable overlay phoenix-routed; phoenix-lab/guest:latest loaded into both engines from a cached
  `docker save` keyed by the image ID.
- lab/portainersim copied to the manager and started there as `portainer --bind-https :9443 -H unix:///var/run/
  docker.sock --admin-password-file ...`, with a TLS certificate from a throwaway CA: the controller (this host)
  reaches it over HTTPS with verification, exactly as it would reach the real Portainer on VM 1001.

With PHOENIX_PORTAINER_URL set, the tests target that Portainer instead (see tests/swarm/README.md).

Without a Docker engine or the lab images the tests are skipped, unless PHOENIX_REQUIRE_SWARM is set (make swarm-test),
in which case they fail; so does every test that would be skipped for lack of the local swarm.
"""

import datetime
import ipaddress
import json
import os
import ssl
import subprocess
import sys
import time
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, '..', '..'))
sys.path.insert(0, os.path.join(REPO, 'tests', 'unit'))

DOCKER = os.environ.get('PHX_SWARM_DOCKER', '/usr/bin/docker')
PREFIX = 'phx-swarm'
NET = 'phx-swarm-net'
SUBNET = '10.213.7.0/24'
MGR, WKR = 'phx-swarm-mgr', 'phx-swarm-wkr'
IPS = {MGR: '10.213.7.11', WKR: '10.213.7.12'}
VM_IMAGE = 'phoenix-lab/vm:latest'
GUEST_IMAGE = 'phoenix-lab/guest:latest'
CACHE = os.path.join(REPO, '.cache', 'phx-swarm')
ROUTED = 'phoenix-routed'
ADMIN_PASSWORD = 'phx-swarm-admin-password-0123'
REGISTRY_HOSTS = ('registry-1.docker.io', 'index.docker.io', 'auth.docker.io', 'production.cloudflare.docker.com')


def sh(args, check=True, input=None, timeout=600, capture=True):  # noqa: A002 - mirrors subprocess
    proc = subprocess.run(args, input=input, capture_output=capture, timeout=timeout, check=False,
                          text=not isinstance(input, bytes))
    if check and proc.returncode != 0:
        raise AssertionError('%s failed (rc %s):\n%s\n%s' % (' '.join(args), proc.returncode, proc.stdout,
                                                             proc.stderr))
    return proc


def docker(*args, **kwargs):
    return sh([DOCKER] + list(args), **kwargs)


def node(name, *args, **kwargs):
    return docker('exec', name, 'docker', *args, **kwargs)


def run_flags():
    flags = []
    with open(os.path.join(REPO, 'lab', 'images', 'run-flags')) as handle:
        for line in handle:
            line = line.strip()
            if line and not line.startswith('#'):
                flags.append(line)
    return flags


def require(why):
    """Skip for a missing component; fail instead under PHOENIX_REQUIRE_SWARM (make swarm-test)."""
    if os.environ.get('PHOENIX_REQUIRE_SWARM'):
        pytest.fail('PHOENIX_REQUIRE_SWARM is set but ' + why)
    pytest.skip(why)


def missing():
    """Why the local swarm cannot be made here (the engine, the images), or None."""
    if not os.access(DOCKER, os.X_OK):
        return '%s is missing: install and start the engine with lab/engine/ensure-engine.sh' % DOCKER
    try:
        info = docker('info', '--format', '{{.ServerVersion}}', check=False, timeout=60)
    except subprocess.TimeoutExpired:
        return 'the Docker engine does not answer (docker info timed out)'
    if info.returncode != 0:
        last = (info.stderr.strip() or info.stdout.strip()).splitlines()[-1:] or ['no output']
        return 'no Docker engine answers (lab/engine/ensure-engine.sh starts one): %s' % last[0]
    absent = [image for image in (VM_IMAGE, GUEST_IMAGE)
              if docker('image', 'inspect', image, check=False, timeout=60).returncode != 0]
    if absent:
        return 'image %s missing: build with lab/images/build.sh guest vm (make swarm-test does)' % ', '.join(absent)
    return None


def cleanup():
    """Remove every phx-swarm container (with its anonymous volumes) and the network."""
    names = docker('ps', '-a', '--filter', 'name=^%s' % PREFIX, '--format', '{{.Names}}').stdout.split()
    if names:
        docker('rm', '-f', '-v', *names, check=False)
    docker('network', 'rm', NET, check=False)


def _wait(what, func, ok=bool, timeout=120, interval=1.0):
    """Poll ``func`` until ``ok`` holds for its value (phoenix_testlib.wait_for: a miss names the last value)."""
    from phoenix_testlib import wait_for
    return wait_for(func, ok, what, timeout=timeout, interval=interval)


def guest_tar():
    """docker save of the guest image, cached by image ID (saved once per image build)."""
    image_id = docker('image', 'inspect', '--format', '{{.Id}}', GUEST_IMAGE).stdout.strip().split(':')[-1][:16]
    os.makedirs(CACHE, exist_ok=True)
    path = os.path.join(CACHE, 'guest-%s.tar' % image_id)
    if not os.path.isfile(path):
        for old in os.listdir(CACHE):
            if old.startswith('guest-') and old.endswith('.tar'):
                os.unlink(os.path.join(CACHE, old))
        docker('save', '-o', path + '.part', GUEST_IMAGE)
        os.rename(path + '.part', path)
    return path


def make_tls(directory, ip):
    """A throwaway CA and a server certificate for ``ip``; returns (ca, cert, key) paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    os.makedirs(directory, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'phx-swarm test CA')])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'portainer')]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip)),
                                                        x509.DNSName('portainer')]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = tuple(os.path.join(directory, n) for n in ('ca.pem', 'cert.pem', 'key.pem'))
    with open(paths[0], 'wb') as handle:
        handle.write(ca.public_bytes(serialization.Encoding.PEM))
    with open(paths[1], 'wb') as handle:
        handle.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(paths[2], 'wb') as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return paths


class Swarm:
    """The running 2-node swarm (and the test double on its manager)."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.timings = {}
        self.url = None
        self.ca = None

    def dropin(self):
        path = os.path.join(self.workdir, 'docker-offline.conf')
        os.makedirs(self.workdir, exist_ok=True)
        with open(path, 'w') as handle:
            handle.write('[Service]\nEnvironment=DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1\n')
        os.chmod(path, 0o644)
        return path

    def up(self):
        start = time.time()
        cleanup()
        docker('network', 'create', '--internal', '--subnet', SUBNET, NET)
        for name in (MGR, WKR):
            # No registry is reachable: point Docker Hub's names at loopback so that digest resolution and
            # the pull every task start attempts fail at once instead of waiting for DNS timeouts.
            # and let Swarm start tasks from the loaded image without trying a pull first (dockerd's
            # DOCKER_SERVICE_PREFER_OFFLINE_IMAGE, set by a systemd drop-in present before the node boots).
            docker('run', '-d', '--name', name, '--hostname', name, '--network', NET, '--ip', IPS[name],
                   '--volume=%s:/etc/systemd/system/docker.service.d/phx-swarm-offline.conf:ro' % self.dropin(),
                   *(run_flags() + ['--add-host=%s:127.0.0.1' % h for h in REGISTRY_HOSTS]), VM_IMAGE)
        tar = guest_tar()
        self.timings['containers'] = time.time() - start
        for name in (MGR, WKR):
            _wait('dockerd in %s' % name, lambda n=name: docker('exec', n, 'docker', 'info', check=False),
                  ok=lambda info: info.returncode == 0, timeout=180)
        # load the guest image into both engines at once
        procs = []
        for name in (MGR, WKR):
            handle = open(tar, 'rb')
            procs.append((subprocess.Popen([DOCKER, 'exec', '-i', name, 'docker', 'load', '-q'], stdin=handle,
                                           stdout=subprocess.PIPE, stderr=subprocess.PIPE), handle))
        for proc, handle in procs:
            out, err = proc.communicate(timeout=600)
            handle.close()
            assert proc.returncode == 0, err
        self.timings['image_load'] = time.time() - start - self.timings['containers']
        node(MGR, 'swarm', 'init', '--advertise-addr', IPS[MGR])
        token = node(MGR, 'swarm', 'join-token', '-q', 'worker').stdout.strip()
        node(WKR, 'swarm', 'join', '--token', token, '%s:2377' % IPS[MGR])

        def worker_state():
            return node(MGR, 'node', 'inspect', WKR, '--format', '{{.Status.State}}', check=False).stdout.strip()

        _wait('worker ready', worker_state, ok=lambda state: state.title() == 'Ready', timeout=180)
        node(MGR, 'node', 'update', '--label-add', 'phoenix.role=worker', WKR)
        node(MGR, 'network', 'create', '-d', 'overlay', '--attachable', ROUTED)
        self.timings['swarm'] = time.time() - start
        return self

    def start_sim(self):
        """The test double on the manager, with TLS from a throwaway CA."""
        self.ca, cert, key = make_tls(os.path.join(self.workdir, 'tls'), IPS[MGR])
        docker('exec', MGR, 'mkdir', '-p', '/opt/portainersim', '/etc/portainer', '/var/lib/portainersim')
        docker('cp', os.path.join(REPO, 'lab', 'portainersim', '.'), '%s:/opt/portainersim/' % MGR)
        docker('cp', cert, '%s:/etc/portainer/cert.pem' % MGR)
        docker('cp', key, '%s:/etc/portainer/key.pem' % MGR)
        docker('exec', '-i', MGR, 'sh', '-c', 'umask 077; cat > /etc/portainer/admin_password',
               input=ADMIN_PASSWORD)
        docker('exec', '-d', MGR, 'sh', '-c', 'exec /opt/portainersim/portainer --bind-https :9443 '
               '--sslcert /etc/portainer/cert.pem --sslkey /etc/portainer/key.pem -H unix:///var/run/docker.sock '
               '--admin-password-file /etc/portainer/admin_password --data /var/lib/portainersim '
               '> /var/log/portainersim.log 2>&1')
        self.url = 'https://%s:9443' % IPS[MGR]
        _wait('portainersim', lambda: self.get('/api/status'), timeout=90, interval=0.5)
        return self

    def _ctx(self):
        return ssl.create_default_context(cafile=self.ca)

    def get(self, path):
        with urllib.request.urlopen(self.url + path, context=self._ctx(), timeout=10) as resp:
            return json.loads(resp.read().decode() or 'null')

    def sim_requests(self, clear=False):
        data = self.get('/sim/requests')
        if clear:
            req = urllib.request.Request(self.url + '/sim/requests', method='DELETE')
            urllib.request.urlopen(req, context=self._ctx(), timeout=10).close()
        return data

    def services(self, stack):
        out = node(MGR, 'service', 'ls', '--filter', 'label=com.docker.stack.namespace=%s' % stack,
                   '--format', '{{.Name}} {{.Replicas}} {{.Image}}').stdout
        return dict((line.split()[0], line.split()[1:]) for line in out.splitlines() if line.strip())

    def task_nodes(self, service):
        out = node(MGR, 'service', 'ps', service, '--filter', 'desired-state=running', '--format',
                   '{{.Node}} {{.CurrentState}}').stdout
        return [line.split()[0] for line in out.splitlines() if 'Running' in line]

    def down(self):
        cleanup()


# A connection failure before the module started: Docker's exec API lost the output of the command that makes the
# remote temporary folder (seen under load with the Debian engine; community.docker issue 644). Nothing ran, so the
# command is run again; any other failure is the test's result.
NOT_STARTED = 'failed to resolve remote temporary directory'


def run_on_manager(module, args, check=False, diff=True, container=MGR, attempts=3):
    """Run a collection module ON the Swarm manager container (community.docker.docker_api connection, pipelined:
    one exec per module run)."""
    for attempt in range(1, attempts + 1):
        result = _run_on_manager_once(module, args, check, diff, container)
        if not (result.get('failed') and NOT_STARTED in str(result.get('msg', ''))) or attempt == attempts:
            return result
        print('run_on_manager: %s did not start (%s); running it again' % (module, result['msg'][:120]))
    return result


def _run_on_manager_once(module, args, check, diff, container):
    from phoenix_testlib import REPO as repo
    cmd = [os.path.join(os.path.dirname(sys.executable), 'ansible'), container, '-i', '%s,' % container,
           '-c', 'community.docker.docker_api', '-e', 'ansible_python_interpreter=/usr/bin/python3',
           '-m', 'thinkheads.phoenix.%s' % module, '-a', json.dumps(args)]
    if check:
        cmd.append('--check')
    if diff:
        cmd.append('--diff')
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(repo, 'ansible.cfg'), ANSIBLE_LOAD_CALLBACK_PLUGINS='1',
               ANSIBLE_STDOUT_CALLBACK='ansible.posix.json', ANSIBLE_NOCOLOR='1', ANSIBLE_PIPELINING='1')
    proc = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=600, check=False)
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError('no JSON from ansible (rc %s):\n%s\n%s' % (proc.returncode, proc.stdout,
                                                                        proc.stderr)) from None
    return data['plays'][0]['tasks'][0]['hosts'][container]
