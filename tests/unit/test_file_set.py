# -*- coding: utf-8 -*-
"""file_set: a whole set of directories and files converged in one module run (change, idempotence, check mode,
diff, drift, prune, and the refusal of a bad set before any write)."""

import os
import stat
import sys

from modrun import run_module


def tree(root):
    """{relative path: (content or 'DIR', mode)} of everything under ROOT."""
    out = {}
    for base, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(base, name)
            mode = oct(stat.S_IMODE(os.lstat(path).st_mode))
            out[os.path.relpath(path, root)] = ('DIR' if os.path.isdir(path) else open(path).read(), mode)
    return out


def args_for(root):
    return {'directories': [{'path': str(root / 'etc' / 'conf.d'), 'mode': '0750'}],
            'files': [{'path': str(root / 'etc' / 'conf.d' / 'a.json'), 'content': '{"a": 1}\n', 'mode': '0640'},
                      {'path': str(root / 'etc' / 'conf.d' / 'b.conf'), 'content': 'b=2\n'},
                      {'path': str(root / 'etc' / 'old.txt'), 'state': 'absent'}],
            'prune': [{'path': str(root / 'etc' / 'conf.d'), 'patterns': ['*.json'], 'keep': ['record.json']}]}


def test_creates_the_set_then_a_second_run_changes_nothing(tmp_path):
    args = args_for(tmp_path)
    (tmp_path / 'etc').mkdir()
    (tmp_path / 'etc' / 'old.txt').write_text('old\n')
    first = run_module('file_set', args)
    assert first['changed'] is True
    assert first['changed_paths'] == [str(tmp_path / 'etc' / 'conf.d'), str(tmp_path / 'etc' / 'conf.d' / 'a.json'),
                                      str(tmp_path / 'etc' / 'conf.d' / 'b.conf')]
    assert first['removed'] == [str(tmp_path / 'etc' / 'old.txt')]
    assert tree(tmp_path / 'etc') == {'conf.d': ('DIR', '0o750'), 'conf.d/a.json': ('{"a": 1}\n', '0o640'),
                                      'conf.d/b.conf': ('b=2\n', oct(0o666 & ~current_umask()))}
    second = run_module('file_set', args)
    assert second == {'changed': False, 'changed_paths': [], 'removed': [], 'diff': [],
                      **{k: v for k, v in second.items() if k not in ('changed', 'changed_paths', 'removed', 'diff')}}


def current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_check_mode_writes_nothing_and_the_diff_names_each_change(tmp_path):
    args = args_for(tmp_path)
    (tmp_path / 'etc').mkdir()
    (tmp_path / 'etc' / 'old.txt').write_text('old\n')
    before = tree(tmp_path)
    result = run_module('file_set', args, check=True)
    assert result['changed'] is True
    assert str(tmp_path / 'etc' / 'conf.d' / 'a.json') in result['changed_paths']
    assert result['removed'] == [str(tmp_path / 'etc' / 'old.txt')]
    assert tree(tmp_path) == before
    by_path = {d['after_header']: d for d in result['diff']}
    assert by_path[str(tmp_path / 'etc' / 'conf.d' / 'a.json')]['after'] == '{"a": 1}\n'
    assert by_path[str(tmp_path / 'etc' / 'conf.d' / 'a.json')]['before'] == ''
    assert by_path[str(tmp_path / 'etc' / 'old.txt')] == {
        'before_header': str(tmp_path / 'etc' / 'old.txt'), 'after_header': str(tmp_path / 'etc' / 'old.txt'),
        'before': 'old\n', 'after': '(absent)\n'}


def test_drift_in_content_mode_and_an_unlisted_file_is_found_and_repaired(tmp_path):
    args = args_for(tmp_path)
    run_module('file_set', args)
    conf = tmp_path / 'etc' / 'conf.d'
    (conf / 'a.json').write_text('{"a": 2}\n')
    (conf / 'b.conf').chmod(0o600)
    (conf / 'stale.json').write_text('{}\n')
    (conf / 'keep.txt').write_text('not a pruned pattern\n')
    (conf / 'record.json').write_text('{"kept": true}\n')
    plan = run_module('file_set', args, check=True)
    assert plan['changed_paths'] == [str(conf / 'a.json')] and plan['removed'] == [str(conf / 'stale.json')]
    assert (conf / 'a.json').read_text() == '{"a": 2}\n'
    fixed = run_module('file_set', dict(args, files=[dict(f, mode='0644') if f['path'].endswith('b.conf') else f
                                                     for f in args['files']]))
    assert fixed['changed_paths'] == [str(conf / 'a.json'), str(conf / 'b.conf')]
    assert fixed['removed'] == [str(conf / 'stale.json')]
    assert (conf / 'a.json').read_text() == '{"a": 1}\n' and oct(stat.S_IMODE((conf / 'b.conf').stat().st_mode)) == '0o644'
    assert (conf / 'keep.txt').exists() and (conf / 'record.json').exists() and not (conf / 'stale.json').exists()
    assert [d for d in fixed['diff'] if d['after_header'] == str(conf / 'b.conf') + ' (attributes)'] == [
        {'before_header': str(conf / 'b.conf') + ' (attributes)', 'after_header': str(conf / 'b.conf') + ' (attributes)',
         'before': 'mode=0600\n', 'after': 'mode=0644\n'}]


def test_a_secret_file_never_shows_its_content(tmp_path):
    args = {'files': [{'path': str(tmp_path / 'api.env'), 'content': 'API_KEY=s3cret\n', 'mode': '0600',
                       'diff': False}]}
    result = run_module('file_set', args)
    assert result['changed'] is True and 's3cret' not in repr(result)
    plan = run_module('file_set', dict(args, files=[dict(args['files'][0], content='API_KEY=n3w\n')]), check=True)
    assert plan['changed'] is True and 'n3w' not in repr(plan)
    assert (tmp_path / 'api.env').read_text() == 'API_KEY=s3cret\n'


def test_a_bad_set_is_refused_before_any_write(tmp_path):
    good = {'path': str(tmp_path / 'one.txt'), 'content': 'one\n'}
    for files, message in (
            ([good, {'path': str(tmp_path / 'one.txt'), 'content': 'two\n'}], 'named twice'),
            ([good, {'path': 'relative.txt', 'content': 'x'}], 'must be an absolute path'),
            ([good, {'path': str(tmp_path / 'two.txt')}], 'no content for'),
            ([good, {'path': str(tmp_path / 'two.txt'), 'content': 'x', 'state': 'gone'}], 'state must be present or absent')):
        result = run_module('file_set', {'files': files})
        assert result.get('failed') is True and message in result['msg'], result
        assert not (tmp_path / 'one.txt').exists()
    in_missing_dir = {'files': [{'path': str(tmp_path / 'no' / 'such.txt'), 'content': 'x'}]}
    missing_dir = run_module('file_set', in_missing_dir)
    assert missing_dir.get('failed') is True and 'the directory of %s does not exist' % (tmp_path / 'no' / 'such.txt') \
        in missing_dir['msg']
    # check mode: a directory an earlier task of the run creates; the file is predicted, nothing is written
    predicted = run_module('file_set', in_missing_dir, check=True)
    assert predicted['changed'] is True and predicted['changed_paths'] == [str(tmp_path / 'no' / 'such.txt')]
    assert not (tmp_path / 'no').exists()


def test_lines_manage_only_their_lines_and_keep_the_rest(tmp_path):
    env = tmp_path / 'environment'
    env.write_text('PATH="/usr/bin"\nSSL_CERT_FILE=/old/one.pem\n# comment\n')
    lines = [{'regexp': '^SSL_CERT_FILE=', 'line': 'SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt'},
             {'regexp': '^REQUESTS_CA_BUNDLE=', 'line': 'REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt'}]
    args = {'files': [{'path': str(env), 'lines': lines, 'mode': '0644'}]}
    dry = run_module('file_set', args, check=True, diff=True)
    assert dry['changed'] is True and env.read_text().startswith('PATH="/usr/bin"\nSSL_CERT_FILE=/old/one.pem\n')
    assert dry['diff'][0]['before'] == env.read_text()
    assert dry['diff'][0]['after'].splitlines()[1] == 'SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt'
    first = run_module('file_set', args)
    assert first['changed'] is True and first['changed_paths'] == [str(env)]
    assert env.read_text() == ('PATH="/usr/bin"\nSSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt\n# comment\n'
                               'REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt\n')
    assert oct(stat.S_IMODE(env.stat().st_mode)) == '0o644'
    assert run_module('file_set', args)['changed'] is False
    # a line edited by hand is put back; a line another program adds stays
    env.write_text(env.read_text().replace('REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt', 'REQUESTS_CA_BUNDLE=x')
                   + 'LANG=C.UTF-8\n')
    repaired = run_module('file_set', args)
    assert repaired['changed'] is True
    assert env.read_text().splitlines()[-2:] == ['REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt', 'LANG=C.UTF-8']
    # a missing file is created with the lines
    new = tmp_path / 'new_env'
    run_module('file_set', {'files': [{'path': str(new), 'lines': lines}]})
    assert new.read_text() == '\n'.join(entry['line'] for entry in lines) + '\n'


def test_lines_refuse_bad_input_before_any_write(tmp_path):
    target = tmp_path / 'environment'
    for spec, message in (
            ({'content': 'x\n', 'lines': [{'regexp': '^A=', 'line': 'A=1'}]}, 'content and lines both given'),
            ({'lines': [{'regexp': '([', 'line': 'A=1'}]}, 'is not a regular expression'),
            ({'lines': [{'regexp': '^A=', 'line': 'A=1\nB=2'}]}, 'must not contain a newline'),
            ({'lines': [{'line': 'A=1'}]}, 'regexp')):
        result = run_module('file_set', {'files': [dict(spec, path=str(target))]})
        assert result.get('failed') is True and message in result['msg'], result
        assert not target.exists()


def test_validate_checks_new_content_and_a_failure_leaves_the_file(tmp_path):
    target = tmp_path / 'app.json'
    target.write_text('{"ok": 1}\n')
    check = '%s -c "import json, sys; json.load(open(sys.argv[1]))" %%s' % sys.executable
    good = run_module('file_set', {'files': [{'path': str(target), 'content': '{"ok": 2}\n', 'validate': check}]})
    assert good['changed'] is True and target.read_text() == '{"ok": 2}\n'
    bad = run_module('file_set', {'files': [{'path': str(target), 'content': '{not json\n', 'validate': check}]})
    assert bad.get('failed') is True and 'failed its validation' in bad['msg'], bad
    assert target.read_text() == '{"ok": 2}\n'
    assert [p.name for p in tmp_path.iterdir()] == ['app.json']          # no temporary file left
    # unchanged content is not validated again (the command would fail here)
    same = run_module('file_set', {'files': [{'path': str(target), 'content': '{"ok": 2}\n', 'validate': 'false %s'}]})
    assert same['changed'] is False
    no_placeholder = run_module('file_set', {'files': [{'path': str(target), 'content': 'x\n', 'validate': 'true'}]})
    assert no_placeholder.get('failed') is True and 'validate must name the file to check as %s' in no_placeholder['msg']
    assert target.read_text() == '{"ok": 2}\n'
