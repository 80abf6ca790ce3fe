# -*- coding: utf-8 -*-
"""Helpers for the tests against a real step-ca (built from source by lab/tools/build-go-tools.sh).

The session fixture in conftest.py initialises a CA with ``step ca init`` in a temporary STEPPATH, sets the claims of its
JWK provisioner with the step_ca_provisioner module, starts step-ca on a free loopback port and waits for
/health. Requests are counted from step-ca's own request log (and, where a test needs to prove that no
connection was made at all, by a counting TCP proxy in front of it).

Without the binaries the tests are skipped, unless PHOENIX_REQUIRE_STEPCA is set (make stepca-test), in
which case they fail.
"""

import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, '..', '..'))
sys.path.insert(0, os.path.join(REPO, 'tests', 'unit'))

# The module_utils package imported on its own, the way a guest's renewal script imports it (no ansible).
CLIENT_DIR = os.path.join(REPO, 'plugins', 'module_utils', 'step_ca')
_spec = importlib.util.spec_from_file_location('step_ca', os.path.join(CLIENT_DIR, '__init__.py'),
                                               submodule_search_locations=[CLIENT_DIR])
step_ca = importlib.util.module_from_spec(_spec)
sys.modules['step_ca'] = step_ca
_spec.loader.exec_module(step_ca)

import modrun  # noqa: E402

TOOLS_BIN = os.environ.get('PHOENIX_TOOLS_BIN', os.path.join(REPO, '.cache', 'tools', 'bin'))
STEP = os.path.join(TOOLS_BIN, 'step')
STEP_CA = os.path.join(TOOLS_BIN, 'step-ca')
CA_PASSWORD = 'phx-stepca-ca-password'
ADMIN_PASSWORD = 'phx-stepca-admin-password'
ADMIN = 'admin'
ADMIN_CLAIMS = {'minTLSCertDuration': '1m', 'defaultTLSCertDuration': '10m', 'maxTLSCertDuration': '24h',
                'allowRenewalAfterExpiry': False}
_LOG_LINE = re.compile(r'method=(\S+).*?\spath="?([^"\s?]+)')


def run_module(module, args, check=False, diff=True, env_extra=None):
    """tests/unit/modrun.py's runner (the module in its own process, as a target runs it; the ansible CLI with
    PHOENIX_MODULES_VIA_CLI=1)."""
    return modrun.run_module(module, args, check=check, diff=diff, env=env_extra)


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def require_tools():
    missing = [path for path in (STEP, STEP_CA) if not os.access(path, os.X_OK)]
    if not missing:
        return
    why = ('%s missing: build them with lab/tools/build-go-tools.sh (make stepca-test does)' % ', '.join(missing))
    if os.environ.get('PHOENIX_REQUIRE_STEPCA'):
        pytest.fail('PHOENIX_REQUIRE_STEPCA is set but ' + why)
    pytest.skip(why)


class StepCA:
    """A running step-ca with the paths and secrets the tests need."""

    def __init__(self, root_dir):
        self.steppath = os.path.join(root_dir, 'step')
        os.makedirs(self.steppath)
        self.port = free_port()
        self.url = 'https://127.0.0.1:%d' % self.port
        self.ca_password_file = os.path.join(root_dir, 'ca-password')
        self.admin_password_file = os.path.join(root_dir, 'admin-password')
        with open(self.ca_password_file, 'w') as handle:
            handle.write(CA_PASSWORD + '\n')
        with open(self.admin_password_file, 'w') as handle:
            handle.write(ADMIN_PASSWORD + '\n')
        self.config = os.path.join(self.steppath, 'config', 'ca.json')
        self.root = os.path.join(self.steppath, 'certs', 'root_ca.crt')
        self.log = os.path.join(root_dir, 'step-ca.log')
        self.proc = None

    def env(self):
        return dict(os.environ, STEPPATH=self.steppath, HOME=self.steppath)

    def init(self):
        subprocess.run([STEP, 'ca', 'init', '--name', 'Phoenix Test CA', '--dns', '127.0.0.1', '--dns', 'localhost',
                        '--address', '127.0.0.1:%d' % self.port, '--provisioner', ADMIN,
                        '--password-file', self.ca_password_file,
                        '--provisioner-password-file', self.admin_password_file,
                        '--deployment-type', 'standalone'],
                       env=self.env(), check=True, capture_output=True, timeout=120)
        self.fingerprint = step_ca.cert_fingerprint(step_ca.load_certificate_file(self.root)[0])

    def start(self):
        log = open(self.log, 'ab')
        self.proc = subprocess.Popen([STEP_CA, self.config, '--password-file', self.ca_password_file],
                                     env=self.env(), stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.wait_healthy()

    def wait_healthy(self, timeout=30):
        client = step_ca.StepCAClient(self.url, root_path=self.root, retries=0, timeout=2)
        deadline = time.time() + timeout
        while True:
            try:
                client.health()
                return
            except step_ca.StepCAError as exc:
                if self.proc.poll() is not None or time.time() > deadline:
                    with open(self.log) as handle:
                        raise AssertionError('step-ca did not become healthy within %d s (last error: %s):\n%s'
                                             % (timeout, exc, handle.read()[-3000:])) from None
                time.sleep(0.2)

    def reload(self, timeout=30):
        """SIGHUP: step-ca rereads ca.json (what the step_ca role's handler does).

        Returns once the CA serves the provisioners ca.json names (the reload happens after the signal is sent).
        """
        with open(self.config) as handle:
            expected = [p['name'] for p in json.load(handle)['authority']['provisioners']]
        self.proc.send_signal(signal.SIGHUP)
        client = step_ca.StepCAClient(self.url, root_path=self.root, retries=0, timeout=2)
        deadline = time.time() + timeout
        while True:
            try:
                seen = [p['name'] for p in client.provisioners()]
            except step_ca.StepCAError as exc:
                seen = exc
            if seen == expected:
                return
            if self.proc.poll() is not None or time.time() > deadline:
                with open(self.log) as handle:
                    log = handle.read()[-3000:]
                raise AssertionError('step-ca did not serve the provisioners of ca.json %r within %d s after SIGHUP; '
                                     'last seen: %r\n%s' % (expected, timeout, seen, log))
            time.sleep(0.2)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    # -- request log -----------------------------------------------------------------------------------

    def log_mark(self):
        return os.path.getsize(self.log)

    def requests_since(self, mark):
        """(method, path) of every request step-ca logged after ``mark`` (query strings dropped)."""
        with open(self.log, 'rb') as handle:
            handle.seek(mark)
            text = handle.read().decode('utf-8', 'replace')
        return [m.groups() for m in (_LOG_LINE.search(line) for line in text.splitlines()) if m]

    def count(self, mark, path, method=None):
        return sum(1 for m, p in self.requests_since(mark) if p == path and (method is None or m == method))

    def wait_count(self, mark, path, expected, method=None, timeout=30):
        """Until ``expected`` requests for ``path`` are in the log since ``mark``: step-ca writes a request's log line
        after it has answered, so the line can come after the client has its answer."""
        from phoenix_testlib import wait_equal
        return wait_equal(lambda: self.count(mark, path, method), expected,
                          '%s %s requests in the step-ca log' % (method or 'all', path), timeout=timeout)

    # -- module arguments ------------------------------------------------------------------------------

    def cert_args(self, directory, name='svc', url=None, **extra):
        args = dict(ca_url=url or self.url, root=self.root, provisioner=ADMIN,
                    provisioner_password_file=self.admin_password_file, common_name='%s.phoenix.test' % name,
                    sans=['%s-alt.phoenix.test' % name, '127.0.0.1'],
                    cert_path=os.path.join(str(directory), '%s.crt' % name),
                    key_path=os.path.join(str(directory), '%s.key' % name),
                    chain_path=os.path.join(str(directory), '%s.chain.crt' % name))
        args.update(extra)
        return {key: value for key, value in args.items() if value is not None}


class CountingProxy:
    """TCP proxy on loopback that forwards to the CA and counts the connections it accepted."""

    def __init__(self, target_port):
        self.target = ('127.0.0.1', target_port)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.url = 'https://127.0.0.1:%d' % self.port
        self.connections = 0
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self._stop:
            try:
                client, _addr = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            upstream = socket.create_connection(self.target)
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pipe(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self._stop = True
        self.sock.close()


def self_signed(common_name):
    """(key PEM, certificate PEM) of a self-signed EC certificate: a CA that is not ours."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID
    key = step_ca.generate_private_key('EC256')
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(common_name.lower().replace(' ', '-'))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return step_ca.private_key_pem(key), step_ca.cert_pem(cert)
