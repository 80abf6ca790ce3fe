# -*- coding: utf-8 -*-
"""Key, certificate and chain swapped as one unit (step_ca.install_certificate), and the lock that the module
shares with the renewal timer (step_ca.certificate_lock, phoenix-cert-renew --lock).

A real CA is not needed: certificates come from a small PKI built with cryptography (test_step_ca.PKI)."""

import ctypes
import ctypes.util
import datetime
import fcntl
import os
import stat
import struct
import threading
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

# phoenix_testlib puts the collection on sys.path
import phoenix_testlib  # noqa: F401  pylint: disable=unused-import
from ansible_collections.thinkheads.phoenix.plugins.module_utils import step_ca
from modrun import run_module
from test_step_ca import PKI, make_cert

import test_step_renew_script as renew_tests


@pytest.fixture(scope='module')
def pki():
    return PKI('Swap')


def issue(pki, cn='svc.test'):
    """(key PEM, leaf PEM, intermediates PEM) of a fresh certificate valid now."""
    key = step_ca.generate_private_key('EC256')
    cert = make_cert(cn, pki.inter, pki.inter_key, key, sans=[cn],
                     not_before=step_ca.utcnow() - datetime.timedelta(minutes=5))
    return step_ca.private_key_pem(key), step_ca.cert_pem(cert), step_ca.cert_pem(pki.inter)


def paths_in(directory):
    return {'cert_path': str(directory / 'svc.crt'), 'key_path': str(directory / 'svc.key'),
            'chain_path': str(directory / 'svc.fullchain.crt')}


def install(paths, key_pem, leaf, rest, **kwargs):
    return step_ca.install_certificate(paths['cert_path'], paths['key_path'], leaf, rest, key_pem=key_pem,
                                       chain_path=paths['chain_path'], **kwargs)


def pair_matches(cert_path, key_path):
    with open(cert_path, 'rb') as handle:
        cert = x509.load_pem_x509_certificate(handle.read())
    with open(key_path, 'rb') as handle:
        key = serialization.load_pem_private_key(handle.read(), password=None)
    return step_ca.key_matches_certificate(key, cert), cert.serial_number


# -- layout -----------------------------------------------------------------------------------------------------

def test_configured_paths_are_relative_links_through_live(pki, tmp_path):
    paths = paths_in(tmp_path)
    key_pem, leaf, rest = issue(pki)
    assert install(paths, key_pem, leaf, rest, mode='0644', key_mode=0o640) == 'v1'
    store = tmp_path / '.svc.crt.versions'
    assert os.readlink(str(store / 'live')) == 'v1'
    assert os.readlink(paths['cert_path']) == '.svc.crt.versions/live/cert.pem'
    assert os.readlink(paths['key_path']) == '.svc.crt.versions/live/key.pem'
    assert os.readlink(paths['chain_path']) == '.svc.crt.versions/live/chain.pem'
    with open(paths['chain_path'], 'rb') as handle:
        assert handle.read() == leaf + rest
    assert stat.S_IMODE(os.stat(paths['key_path']).st_mode) == 0o640
    assert stat.S_IMODE(os.stat(paths['cert_path']).st_mode) == 0o644
    assert pair_matches(paths['cert_path'], paths['key_path'])[0]
    assert step_ca.is_versioned(**paths)


def test_renewal_keeps_key_and_modes_and_prunes_to_two_versions(pki, tmp_path):
    paths = paths_in(tmp_path)
    key_pem, leaf, rest = issue(pki)
    install(paths, key_pem, leaf, rest, mode=0o640, key_mode=0o600)
    for _round in range(4):
        # what renew_if_needed does: no key (the current one stays), modes of the files replaced
        install(paths, None, issue(pki)[1], rest)
    store = tmp_path / '.svc.crt.versions'
    assert sorted(os.listdir(str(store))) == ['live', 'v4', 'v5']
    assert os.readlink(str(store / 'live')) == 'v5'
    with open(paths['key_path'], 'rb') as handle:
        assert handle.read() == key_pem
    assert stat.S_IMODE(os.stat(paths['cert_path']).st_mode) == 0o640
    assert stat.S_IMODE(os.stat(paths['key_path']).st_mode) == 0o600
    assert sorted(os.listdir(str(tmp_path))) == ['.svc.crt.versions', 'svc.crt', 'svc.fullchain.crt', 'svc.key']


def test_plain_files_are_adopted_unchanged_before_the_swap(pki, tmp_path):
    """The older layout (three plain files) becomes a version of its own first: the switch to links never
    shows anything but the old pair or the new pair."""
    paths = paths_in(tmp_path)
    old_key, old_leaf, rest = issue(pki)
    for path, data in ((paths['key_path'], old_key), (paths['cert_path'], old_leaf),
                       (paths['chain_path'], old_leaf + rest)):
        step_ca.atomic_write(path, data, 0o600 if path.endswith('.key') else 0o644)
    new_key, new_leaf, _rest = issue(pki)
    install(paths, new_key, new_leaf, rest)
    store = tmp_path / '.svc.crt.versions'
    with open(str(store / 'v1' / 'key.pem'), 'rb') as handle:
        assert handle.read() == old_key
    with open(str(store / 'v1' / 'cert.pem'), 'rb') as handle:
        assert handle.read() == old_leaf
    assert os.readlink(str(store / 'live')) == 'v2'
    with open(paths['key_path'], 'rb') as handle:
        assert handle.read() == new_key
    assert stat.S_IMODE(os.stat(paths['key_path']).st_mode) == 0o600          # the mode of the file replaced
    assert pair_matches(paths['cert_path'], paths['key_path'])[0]


def test_a_failure_halfway_leaves_the_old_pair_in_place(pki, tmp_path, monkeypatch):
    """Killed after the new key was written and before the certificate: the configured paths still hold the old,
    matching pair (with three renames, the new key would sit next to the old certificate)."""
    paths = paths_in(tmp_path)
    key_pem, leaf, rest = issue(pki)
    install(paths, key_pem, leaf, rest)
    serial_before = pair_matches(paths['cert_path'], paths['key_path'])[1]
    real_write = step_ca.files._write_new

    def write_then_fail(path, data, mode, uid, gid):
        if path.endswith('cert.pem'):
            raise OSError(28, 'No space left on device')
        real_write(path, data, mode, uid, gid)

    monkeypatch.setattr(step_ca.files, '_write_new', write_then_fail)
    new_key, new_leaf, _rest = issue(pki)
    with pytest.raises(OSError, match='No space left'):
        install(paths, new_key, new_leaf, rest)
    matches, serial = pair_matches(paths['cert_path'], paths['key_path'])
    assert matches and serial == serial_before
    with open(paths['key_path'], 'rb') as handle:
        assert handle.read() == key_pem
    assert sorted(os.listdir(str(tmp_path / '.svc.crt.versions'))) == ['live', 'v1']   # no half-written version


def test_reader_polling_during_swaps_never_sees_a_mismatched_pair(pki, tmp_path):
    """A reader loads certificate, key and the certificate again in a loop while re-issues (a new key each time)
    swap the files. Whenever both certificate reads give the same certificate, the key read in between must be
    its key; the swap must never expose a key without its certificate."""
    paths = paths_in(tmp_path)
    issued = [issue(pki) for _round in range(60)]
    install(paths, *issued[0])
    stop = threading.Event()
    seen = {'checked': 0, 'mismatch': [], 'errors': []}

    def reader():
        while not stop.is_set():
            try:
                with open(paths['cert_path'], 'rb') as handle:
                    first = x509.load_pem_x509_certificate(handle.read())
                with open(paths['key_path'], 'rb') as handle:
                    key = serialization.load_pem_private_key(handle.read(), password=None)
                with open(paths['cert_path'], 'rb') as handle:
                    second = x509.load_pem_x509_certificate(handle.read())
            except (OSError, ValueError) as exc:
                seen['errors'].append(repr(exc))
                continue
            if first.serial_number != second.serial_number:
                continue                                          # a swap between the reads: nothing to judge
            seen['checked'] += 1
            if not step_ca.key_matches_certificate(key, first):
                seen['mismatch'].append(first.serial_number)

    threads = [threading.Thread(target=reader) for _reader in range(2)]
    for thread in threads:
        thread.start()
    try:
        for key_pem, leaf, rest in issued[1:]:
            install(paths, key_pem, leaf, rest)
            time.sleep(0.001)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert seen['errors'] == [] and seen['mismatch'] == []
    assert seen['checked'] > 0


# -- watchers of the configured path (systemd PathChanged=, inotify) -----------------------------------------------

def _inotify():
    libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6', use_errno=True)
    if not hasattr(libc, 'inotify_init1'):
        pytest.skip('no inotify')
    return libc


def test_a_watcher_of_the_certificate_path_is_notified_by_the_swap(pki, tmp_path):
    """systemd path units (traefik-certs.path, vllm-tls-renewal.path) watch the configured path, which inotify
    resolves to the live file: the swap must touch that file, or the units would never fire."""
    libc = _inotify()
    paths = paths_in(tmp_path)
    install(paths, *issue(pki))
    fd = libc.inotify_init1(os.O_NONBLOCK)
    assert fd >= 0
    try:
        in_attrib, in_close_write, in_delete_self, in_move_self = 0x4, 0x8, 0x400, 0x800
        wd = libc.inotify_add_watch(fd, paths['cert_path'].encode(),
                                    in_attrib | in_close_write | in_delete_self | in_move_self)
        assert wd >= 0
        install(paths, *issue(pki))
        data = os.read(fd, 4096)
        masks = [struct.unpack_from('iIII', data, offset)[1] for offset in range(0, 16 if data else 0, 16)]
        assert masks and masks[0] & (in_attrib | in_close_write | in_delete_self | in_move_self)
    finally:
        os.close(fd)


# -- the lock shared by the module and the renewal timer --------------------------------------------------------

def test_lock_times_out_while_the_timer_holds_it(tmp_path):
    lock = str(tmp_path / 'renew.lock')
    with open(lock, 'a') as held:                                   # what phoenix-cert-renew does
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(step_ca.LockTimeout, match='still locked after 0s'):
            with step_ca.certificate_lock(lock, timeout=0.3, poll=0.05):
                pass
    with step_ca.certificate_lock(lock, timeout=0.3) as locked:
        assert locked is True


def test_lock_without_its_directory_is_no_lock(tmp_path):
    with step_ca.certificate_lock(str(tmp_path / 'missing' / 'x.lock')) as locked:
        assert locked is False
    with step_ca.certificate_lock('') as locked:
        assert locked is False


def test_timer_waits_for_the_module(tmp_path, monkeypatch):
    """While a writer (the module) holds the lock, the renewal timer does not start renewing."""
    conf = tmp_path / 'conf'
    conf.mkdir()
    lock = str(tmp_path / 'renew.lock')
    (conf / 'web.json').write_text('{"name": "web", "ca_url": "https://ca.test:9000", "root": "/r", '
                                   '"cert_path": "/certs/web.crt", "key_path": "/certs/web.key"}')
    client = renew_tests.fake_client()
    monkeypatch.setattr(renew_tests.script, 'import_client', lambda lib_dir: client)
    result = {}
    with step_ca.certificate_lock(lock, timeout=1):
        thread = threading.Thread(target=lambda: result.update(rc=renew_tests.script.main(
            ['--config-dir', str(conf), '--lock', lock, '--state-dir', str(tmp_path / 'state')])))
        thread.start()
        time.sleep(0.5)
        assert client.calls == [] and 'rc' not in result               # still waiting
    # Once the lock is free the timer renews: its end is waited for with a deadline a loaded machine cannot miss.
    thread.join(120)
    assert not thread.is_alive(), 'the renewal still running 120 s after the lock was released; calls: %r' % (
        client.calls,)
    assert result.get('rc') == 0 and len(client.calls) == 1, (result, client.calls)


def test_module_waits_for_the_timer_then_fails_clearly(pki, tmp_path):
    """The module takes the timer's lock before it writes; while the timer holds it, it fails after lock_timeout
    without touching the files or asking the CA (the CA URL here does not even answer)."""
    root = tmp_path / 'root.crt'
    root.write_bytes(step_ca.cert_pem(pki.root))
    lock = str(tmp_path / 'renew.lock')
    args = dict(ca_url='https://127.0.0.1:9', root=str(root), provisioner='p', provisioner_password='x',
                common_name='svc.test', cert_path=str(tmp_path / 'svc.crt'), key_path=str(tmp_path / 'svc.key'),
                lock_file=lock, lock_timeout=1, retries=0, timeout=2)
    with open(lock, 'a') as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        result = run_module('step_ca_certificate', args)
    assert result.get('failed') is True
    assert result['msg'] == ('%s is still locked after 1s: the renewal timer (or another run) is writing '
                             'certificates; try again when it is done' % lock)
    assert result['ca_requests'] == {}
    assert sorted(os.listdir(str(tmp_path))) == ['renew.lock', 'root.crt']
    # released: the module goes on (and reaches the CA, which is not there)
    free = run_module('step_ca_certificate', args)
    assert free.get('failed') is True and 'unreachable' in free['msg'] and free['ca_requests'] == {'/provisioners': 1}


def test_module_with_nothing_to_do_takes_no_lock(pki, tmp_path):
    root = tmp_path / 'root.crt'
    root.write_bytes(step_ca.cert_pem(pki.root))
    paths = paths_in(tmp_path)
    key_pem, leaf, rest = issue(pki)
    install(paths, key_pem, leaf, rest, mode='0644', key_mode='0600')
    lock = str(tmp_path / 'renew.lock')
    args = dict(ca_url='https://127.0.0.1:9', root=str(root), provisioner='p', provisioner_password='x',
                common_name='svc.test', sans=[], lock_file=lock, lock_timeout=1, **paths)
    with open(lock, 'a') as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        result = run_module('step_ca_certificate', args)
    assert result.get('failed') is not True, result
    assert result['changed'] is False and 'remaining lifetime' in result['reason'] and result['ca_requests'] == {}
    assert os.readlink(paths['cert_path']) == '.svc.crt.versions/live/cert.pem'
