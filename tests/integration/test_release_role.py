# -*- coding: utf-8 -*-
"""The internal release role (roles/release), the one place the step_ca, traefik and portainer roles install a
release from: run on the controller against archives the test makes, from a file:// URL (get_url) and from a
controller path (copy). Shown: the unpack (strip, include), a second run that changes nothing, check mode that
writes nothing, a new archive replacing the old release, and a wrong checksum refused before anything is unpacked."""

import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile

import pytest

from pve_env import REPO

BIN = os.path.dirname(sys.executable)
PLAY = """- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.include_role:
        name: thinkheads.phoenix.release
    - ansible.builtin.debug:
        msg: "unpacked={{ release_unpacked }}"
"""


def make_archive(path, files):
    """A .tar.gz at path with {member: text}; returns its sha256:<hex>."""
    with tarfile.open(path, 'w:gz') as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            archive.addfile(info, io.BytesIO(data))
    return 'sha256:' + hashlib.sha256(open(path, 'rb').read()).hexdigest()


def run(tmp_path, url, checksum, *extra, **variables):
    play = tmp_path / 'play.yml'
    play.write_text(PLAY)
    values = dict(release_url=url, release_checksum=checksum, release_dir=str(tmp_path / 'opt' / 'tool-1'),
                  release_download_dir=str(tmp_path / 'cache'), **variables)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'), ANSIBLE_NOCOLOR='1')
    result = subprocess.run([os.path.join(BIN, 'ansible-playbook'), '-i', 'localhost,', '-c', 'local',
                             '-e', 'ansible_python_interpreter=%s' % sys.executable, '-e', json.dumps(values),
                             str(play)] + list(extra), cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=300, check=False)
    result.out = result.stdout + result.stderr
    recap = re.findall(r'^localhost\s+: ok=\d+\s+changed=(\d+)', result.stdout, re.M)
    result.changed = int(recap[-1]) if recap else None
    return result


def tree(path):
    """{relative path: content} of every file under path."""
    out = {}
    for root, _dirs, files in os.walk(path):
        for name in files:
            full = os.path.join(root, name)
            out[os.path.relpath(full, path)] = open(full).read()
    return out


@pytest.fixture
def archives(tmp_path):
    one = make_archive(tmp_path / 'tool-1.tar.gz', {'tool-1/bin/tool': 'one\n', 'tool-1/README': 'read me\n'})
    two = make_archive(tmp_path / 'tool-2.tar.gz', {'tool-2/bin/tool': 'two\n', 'tool-2/README': 'read me 2\n'})
    return {'one': (tmp_path / 'tool-1.tar.gz', one), 'two': (tmp_path / 'tool-2.tar.gz', two)}


def test_url_unpacks_once_then_changes_nothing(tmp_path, archives):
    path, checksum = archives['one']
    first = run(tmp_path, 'file://%s' % path, checksum, release_strip_components=1)
    assert first.returncode == 0, first.out[-3000:]
    assert first.changed > 0 and 'unpacked=True' in first.stdout
    dest = tmp_path / 'opt' / 'tool-1'
    assert tree(dest) == {'bin/tool': 'one\n', 'README': 'read me\n', '.phoenix-release': checksum}
    again = run(tmp_path, 'file://%s' % path, checksum, release_strip_components=1)
    assert again.returncode == 0, again.out[-3000:]
    assert again.changed == 0 and 'unpacked=False' in again.stdout, again.stdout[-3000:]


def test_a_new_archive_replaces_the_release_and_check_mode_writes_nothing(tmp_path, archives):
    (path1, sum1), (path2, sum2) = archives['one'], archives['two']
    assert run(tmp_path, 'file://%s' % path1, sum1, release_strip_components=1).returncode == 0
    dest = tmp_path / 'opt' / 'tool-1'
    before = tree(dest)
    dry = run(tmp_path, 'file://%s' % path2, sum2, '--check', '--diff', release_strip_components=1)
    assert dry.returncode == 0, dry.out[-3000:]
    assert dry.changed > 0 and 'unpacked=True' in dry.stdout
    assert tree(dest) == before
    assert not (tmp_path / 'cache' / 'tool-2.tar.gz').exists()
    real = run(tmp_path, 'file://%s' % path2, sum2, release_strip_components=1)
    assert real.returncode == 0, real.out[-3000:]
    assert tree(dest) == {'bin/tool': 'two\n', 'README': 'read me 2\n', '.phoenix-release': sum2}


def test_include_unpacks_only_the_named_members(tmp_path, archives):
    path, checksum = archives['one']
    result = run(tmp_path, 'file://%s' % path, checksum, release_include=['tool-1/bin/tool'])
    assert result.returncode == 0, result.out[-3000:]
    assert tree(tmp_path / 'opt' / 'tool-1') == {'tool-1/bin/tool': 'one\n', '.phoenix-release': checksum}


@pytest.mark.parametrize('source', ['url', 'controller'])
def test_a_wrong_checksum_is_refused_before_anything_is_unpacked(tmp_path, archives, source):
    path, _checksum = archives['one']
    wrong = 'sha256:' + '0' * 64
    url = 'file://%s' % path if source == 'url' else str(path)
    result = run(tmp_path, url, wrong, release_strip_components=1)
    assert result.returncode != 0
    text = ' '.join(result.out.split())
    if source == 'url':
        assert 'does not match' in text or 'checksum' in text.lower(), text[-2000:]
    else:
        assert 'not the pinned sha256:' + '0' * 64 in text and 'nothing was unpacked' in text, text[-2000:]
    assert not (tmp_path / 'opt' / 'tool-1').exists()


def test_controller_path_is_copied_verified_and_unpacked_once(tmp_path, archives):
    path, checksum = archives['one']
    first = run(tmp_path, str(path), checksum, release_strip_components=1)
    assert first.returncode == 0, first.out[-3000:]
    assert tree(tmp_path / 'opt' / 'tool-1')['bin/tool'] == 'one\n'
    again = run(tmp_path, str(path), checksum, release_strip_components=1)
    assert again.returncode == 0 and again.changed == 0, again.stdout[-3000:]


def test_bad_input_names_what_is_missing(tmp_path, archives):
    path, _checksum = archives['one']
    result = run(tmp_path, 'file://%s' % path, 'md5:abc')
    assert result.returncode != 0
    assert 'release_checksum as sha256:<64 hex digits>' in ' '.join(result.out.split())
    assert not (tmp_path / 'cache').exists()


@pytest.mark.parametrize('source', ['url', 'controller'])
def test_an_unpacked_release_is_neither_fetched_nor_hashed_again(tmp_path, archives, source):
    """The marker is read first: with this very archive unpacked, the cached archive is not needed (here it is
    gone and a run changes nothing and fetches nothing); without the marker it is fetched, verified and unpacked."""
    path, checksum = archives['one']
    url = 'file://%s' % path if source == 'url' else str(path)
    assert run(tmp_path, url, checksum, release_strip_components=1).returncode == 0
    cached = tmp_path / 'cache' / 'tool-1.tar.gz'
    cached.unlink()
    again = run(tmp_path, url, checksum, release_strip_components=1)
    assert again.returncode == 0 and again.changed == 0, again.stdout[-3000:]
    assert 'unpacked=False' in again.stdout
    assert not cached.exists()
    (tmp_path / 'opt' / 'tool-1' / '.phoenix-release').unlink()
    (tmp_path / 'opt' / 'tool-1' / 'bin' / 'tool').write_text('changed\n')
    fresh = run(tmp_path, url, checksum, release_strip_components=1)
    assert fresh.returncode == 0 and fresh.changed > 0 and 'unpacked=True' in fresh.stdout, fresh.out[-3000:]
    assert cached.exists()
    assert tree(tmp_path / 'opt' / 'tool-1') == {'bin/tool': 'one\n', 'README': 'read me\n',
                                                 '.phoenix-release': checksum}
