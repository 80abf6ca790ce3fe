# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Files: atomic writes, the versioned key/certificate/chain swap and the renewal lock."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import binascii
import contextlib
import grp
import os
import pwd
import re
import shutil
import tempfile
import time

from .common import StepCAError, to_bytes

# ---------------------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------------------


def _uid(owner):
    if owner is None or owner == '':
        return -1
    try:
        return int(owner)
    except ValueError:
        return pwd.getpwnam(owner).pw_uid


def _gid(group):
    if group is None or group == '':
        return -1
    try:
        return int(group)
    except ValueError:
        return grp.getgrnam(group).gr_gid


def read_file(path):
    try:
        with open(path, 'rb') as handle:
            return handle.read()
    except (IOError, OSError):
        return None


def atomic_write(path, data, mode=None, owner=None, group=None):
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename.

    The new file gets ``mode``/``owner``/``group`` when given, else those of the file it replaces (a new
    file: 0600 unless ``mode``), before it becomes visible. Returns False when the content was already
    ``data`` (nothing written)."""
    data = to_bytes(data)
    if read_file(path) == data:
        return False
    directory = os.path.dirname(os.path.abspath(path))
    current = _stat_or_none(path)
    mode, uid, gid = _attributes(path, mode, owner, group, 0o600, current=current)
    handle, tmp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), suffix='.tmp', dir=directory)
    try:
        with os.fdopen(handle, 'wb') as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        if uid != -1 or gid != -1:
            try:
                os.chown(tmp, uid, gid)
            except PermissionError:
                if current is None or (uid, gid) != (current.st_uid, current.st_gid):
                    raise
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return True


# ---------------------------------------------------------------------------------------------------------
# Key, certificate and chain swapped as one unit
# ---------------------------------------------------------------------------------------------------------
#
# <dir of cert_path>/.<cert basename>.versions/
#     v7/ key.pem cert.pem chain.pem     complete before it gets its name (written as .tmp-*, then renamed)
#     v8/ ...
#     live -> v8                         switched by renaming a temporary symlink over it: one atomic step
# cert_path  -> .<cert basename>.versions/live/cert.pem     (relative links: they resolve inside a container
# key_path   -> .../live/key.pem                             that bind-mounts the certificate's directory)
# chain_path -> .../live/chain.pem
#
# The configured paths stay what consumers read; at no moment do they hold a key of one version and a
# certificate of another. The live version and the one before it are kept, older ones pruned.

VERSIONS_KEPT = 2
DEFAULT_LOCK_FILE = '/run/phoenix-cert-renew.lock'
_VERSION = re.compile(r'^v(\d+)$')
_FILE_NAMES = (('key', 'key.pem'), ('cert', 'cert.pem'), ('chain', 'chain.pem'))


def versions_dir(cert_path):
    """The directory holding the versions of the certificate at ``cert_path``."""
    directory, base = os.path.split(os.path.abspath(cert_path))
    return os.path.join(directory, '.%s.versions' % base)


def _versions(store):
    try:
        names = os.listdir(store)
    except OSError:
        return []
    return sorted((int(m.group(1)), name) for name, m in ((n, _VERSION.match(n)) for n in names) if m)


def _link_target(store, name, path):
    return os.path.relpath(os.path.join(store, 'live', name), os.path.dirname(os.path.abspath(path)))


def _fsync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace_symlink(target, path):
    """Point ``path`` at ``target`` by renaming a temporary symlink over it (atomic, whatever was there)."""
    directory, base = os.path.split(os.path.abspath(path))
    tmp = os.path.join(directory, '.%s.%s.tmp' % (base, binascii.hexlify(os.urandom(6)).decode('ascii')))
    os.symlink(target, tmp)
    try:
        os.rename(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _write_new(path, data, mode, uid, gid):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, 'wb') as out:
        if uid != -1 or gid != -1:
            os.fchown(out.fileno(), uid, gid)
        os.fchmod(out.fileno(), mode)
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


def _stat_or_none(path):
    try:
        return os.stat(path)
    except OSError:
        return None


def _attributes(path, mode, owner, group, default_mode, current=None):
    """(mode, uid, gid) for a new file replacing ``path``: the given ones, else those of the current file
    (``current``, its os.stat, when the caller has it already)."""
    if current is None:
        current = _stat_or_none(path)
    if isinstance(mode, str):
        mode = int(mode, 8) if re.match(r'^0?[0-7]{3,4}$', mode) else None
    if mode is None:
        mode = (current.st_mode & 0o7777) if current else default_mode
    uid = _uid(owner) if owner not in (None, '') else (current.st_uid if current else -1)
    gid = _gid(group) if group not in (None, '') else (current.st_gid if current else -1)
    return mode, uid, gid


def _new_version(store, files):
    """Write ``files`` ({file name: (data, mode, uid, gid)}) into the next version directory; its name."""
    number = (_versions(store)[-1][0] + 1) if _versions(store) else 1
    tmp = tempfile.mkdtemp(prefix='.tmp-', dir=store)
    try:
        os.chmod(tmp, 0o755)
        for name, (data, mode, uid, gid) in files.items():
            _write_new(os.path.join(tmp, name), data, mode, uid, gid)
        _fsync_dir(tmp)
        name = 'v%d' % number
        os.rename(tmp, os.path.join(store, name))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return name


def _switch_live(store, version):
    _replace_symlink(version, os.path.join(store, 'live'))
    _fsync_dir(store)


def is_versioned(cert_path, key_path=None, chain_path=None):
    """True when every given path is this module's link into the ``live`` version."""
    store = versions_dir(cert_path)
    for kind, name in _FILE_NAMES:
        path = {'key': key_path, 'cert': cert_path, 'chain': chain_path}[kind]
        if path and not (os.path.islink(path) and os.readlink(path) == _link_target(store, name, path)):
            return False
    return True


def install_certificate(cert_path, key_path, leaf, chain=None, key_pem=None, chain_path=None, mode=None,
                        key_mode=None, owner=None, group=None, keep=VERSIONS_KEPT):
    """Put a new key (``key_pem``; None: keep the current key), leaf and chain in place as one unit.

    Writes them into a new version directory next to the certificate, then switches the ``live`` link in a
    single rename; ``cert_path``, ``key_path`` and ``chain_path`` are relative links through ``live``. Plain
    files found at those paths (an older layout, or files put there by hand) are first adopted unchanged as a
    version of their own, so that even the change of layout never shows a mismatched pair. Mode, owner and
    group default to those of the files replaced. The last ``keep`` versions (the live one included) stay,
    older ones are pruned; the files of the versions superseded are touched, so that a watcher of the configured path
    (systemd ``PathChanged=``, inotify follows the links to the live file) is notified. Returns the version."""
    leaf = to_bytes(leaf)
    paths = {'key': key_path, 'cert': cert_path, 'chain': chain_path}
    store = versions_dir(cert_path)
    if not os.path.isdir(store):
        os.mkdir(store, 0o755)
        os.chmod(store, 0o755)
    linked = {kind: os.path.islink(path) and os.readlink(path) == _link_target(store, name, path)
              for (kind, name), path in ((item, paths[item[0]]) for item in _FILE_NAMES) if path}

    # Adopt files that are not links into this store yet: a version holding exactly what is there now.
    foreign = [kind for kind, ok in linked.items() if not ok and os.path.lexists(paths[kind])]
    if foreign:
        files = {}
        for kind, name in _FILE_NAMES:
            path = paths[kind]
            if path and os.path.exists(path):
                current = os.stat(path)
                files[name] = (read_file(path) or b'', current.st_mode & 0o7777, current.st_uid, current.st_gid)
        _switch_live(store, _new_version(store, files))
        for kind, name in _FILE_NAMES:
            if kind in foreign and os.path.exists(os.path.join(store, 'live', name)):
                _replace_symlink(_link_target(store, name, paths[kind]), paths[kind])
                linked[kind] = True

    files = {}
    if key_pem is None:
        key_pem = read_file(key_path)
        if key_pem is None:
            raise StepCAError('cannot read the key %s to keep it' % key_path)
    contents = {'key': to_bytes(key_pem), 'cert': leaf, 'chain': leaf + to_bytes(chain or b'')}
    for kind, name in _FILE_NAMES:
        path = paths[kind]
        if not path:
            continue
        if kind == 'key':
            attrs = _attributes(path, key_mode, owner, group, 0o600)
        else:
            attrs = _attributes(path, mode, owner, group, 0o644)
        files[name] = (contents[kind],) + attrs
    version = _new_version(store, files)
    _switch_live(store, version)
    for kind, name in _FILE_NAMES:
        if paths[kind] and not linked[kind]:
            _replace_symlink(_link_target(store, name, paths[kind]), paths[kind])

    # Superseded versions: touched (watchers of the old live files wake up), pruned beyond ``keep``.
    numbers = _versions(store)
    for _number, name in numbers[:-1]:
        for _kind, file_name in _FILE_NAMES:
            with contextlib.suppress(OSError):
                os.utime(os.path.join(store, name, file_name))
    for _number, name in numbers[:-max(1, keep)]:
        shutil.rmtree(os.path.join(store, name), ignore_errors=True)
    for name in os.listdir(store):
        if name.startswith('.tmp-'):
            shutil.rmtree(os.path.join(store, name), ignore_errors=True)
    return version


class LockTimeout(StepCAError):
    """Another writer (the renewal timer, another run of the module) holds the certificates' lock."""


@contextlib.contextmanager
def certificate_lock(path=DEFAULT_LOCK_FILE, timeout=300, poll=0.2, clock=time.monotonic, sleep=time.sleep):
    """Hold the lock of the renewal timer (flock on ``path``) for the duration of the block.

    Yields True, or False when ``path`` is empty or its directory does not exist (no timer can run there).
    Raises LockTimeout after ``timeout`` seconds."""
    import fcntl
    if not path or not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        yield False
        return
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except PermissionError:
        fd = os.open(path, os.O_RDONLY)
    try:
        deadline = clock() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if clock() >= deadline:
                    raise LockTimeout('%s is still locked after %ds: the renewal timer (or another run) is writing '
                                      'certificates; try again when it is done' % (path, timeout)) from None
                sleep(poll)
        yield True
    finally:
        os.close(fd)
