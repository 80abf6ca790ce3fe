# -*- coding: utf-8 -*-
"""Stack rendering: the rules of docs/stacks.md on the lab and reference stacks, through module_utils and the filter."""

import os

import pytest
import yaml

from phoenix_testlib import REFERENCE, REPO

from ansible_collections.thinkheads.phoenix.plugins.filter import render_stack as render_stack_filter
from ansible_collections.thinkheads.phoenix.plugins.filter.render_stack import render_stack
from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.model import load_config
from ansible_collections.thinkheads.phoenix.plugins.module_utils.stack_render import (
    StackRenderError, content_hash, mask_env, normalize_env, render,
)
from ansible.errors import AnsibleFilterError

VALUES = {'vault_qdrant_api_key': 'k-123456', 'vault_thinkheads_db_pass': 'p-654321',
          'vault_qdrant_api_key_testing': 'kt', 'vault_thinkheads_db_pass_testing': 'pt'}


@pytest.fixture(scope='module')
def lab():
    return load_config(os.path.join(REPO, 'lab', 'etc'), os.path.join(REPO, 'lab', 'stacks'))


def compose_of(stack):
    with open(stack['compose_file']) as handle:
        return handle.read()


def test_lab_app_rendering(lab):
    stack = lab.stacks['thinkheads_ai_app']
    out = render(compose_of(stack), 'thinkheads_ai_app', stack, 'production', values=VALUES)
    doc = yaml.safe_load(out['compose'])
    assert doc['version'] == '3.8' and list(doc)[:2] == ['version', 'services']
    app = doc['services']['app']
    labels = app['deploy']['labels']
    assert labels['traefik.http.routers.thinkheads-app.rule'] == 'Host(`app.internal.thinkheads.ai`)'
    assert labels['traefik.swarm.network'] == 'phoenix-routed'
    assert labels['io.thinkheads.phoenix.stack'] == 'thinkheads_ai_app'
    assert list(labels) == sorted(labels)
    assert app['networks'] == ['default', 'phoenix-routed']
    assert doc['networks']['phoenix-routed'] == {'external': True, 'name': 'phoenix-routed'}
    assert app['environment']['DATABASE_PASS'] == '${DATABASE_PASS:?set by the stack environment}'
    assert {'name': 'DATABASE_PASS', 'value': 'p-654321'} in out['env']
    assert [e['name'] for e in out['env']] == sorted(e['name'] for e in out['env'])
    assert out['secret_env_names'] == ['DATABASE_PASS', 'QDRANT_API_KEY']
    assert out['routing'] == [{
        'stack': 'thinkheads_ai_app', 'service': 'app', 'swarm_service': 'thinkheads_ai_app_app',
        'tasks_dns': 'tasks.thinkheads_ai_app_app', 'hosts': ['app.internal.thinkheads.ai'],
        'routers': [{'name': 'thinkheads-app', 'rule': 'Host(`app.internal.thinkheads.ai`)',
                     'hosts': ['app.internal.thinkheads.ai'], 'service': 'thinkheads-app'}],
        'port': 8000, 'ports': {'thinkheads-app': 8000}, 'network': 'phoenix-routed'}]
    assert app['entrypoint'][2].startswith('import http.server')   # literal block survives the round trip


def test_deterministic_and_environment_specific(lab):
    stack = lab.stacks['qdrant_service']
    one = render(compose_of(stack), 'qdrant_service', stack, 'production', values=VALUES)
    two = render(compose_of(stack), 'qdrant_service', stack, 'production', values=dict(reversed(list(VALUES.items()))))
    assert one == two
    with pytest.raises(StackRenderError, match='no settings for environment "testing"'):
        render(compose_of(stack), 'qdrant_service', stack, 'testing', values=VALUES)
    tcfg = load_config(os.path.join(REPO, 'lab', 'etc'), os.path.join(REPO, 'lab', 'stacks'), environment='testing')
    testing = render(compose_of(stack), 'qdrant_service', tcfg.stacks['qdrant_service'], values=VALUES)
    assert 'qdrant-testing.internal.thinkheads.ai' in testing['compose']
    assert testing['routing'][0]['hosts'] == ['qdrant-testing.internal.thinkheads.ai']


def test_labels_merge_with_existing_list_and_networks():
    compose = """services:
  web:
    image: x
    networks: [backend]
    deploy:
      labels: ["team=core", "traefik.enable=false"]
networks:
  backend: {}
"""
    stack = {'name': 's', 'environment': 'production', 'variables': [], 'files': [],
             'services': {'web': {'traefik_labels': {'traefik.enable': 'true',
                                                     'traefik.http.routers.w.rule': 'Host(`w.example`)',
                                                     'traefik.http.services.w.loadbalancer.server.port': '80'}}}}
    out = render(compose, 's', stack, network_label='traefik.docker.network', routed_network='edge')
    doc = yaml.safe_load(out['compose'])
    web = doc['services']['web']
    assert web['deploy']['labels']['team'] == 'core' and web['deploy']['labels']['traefik.enable'] == 'true'
    assert web['deploy']['labels']['traefik.docker.network'] == 'edge'
    assert web['networks'] == ['backend', 'edge']
    assert set(doc['networks']) == {'backend', 'edge'}
    assert out['routing'][0]['port'] == 80


@pytest.mark.parametrize('key', ['ports', 'expose'])
def test_ports_and_expose_are_rejected_naming_file_and_service(key):
    compose = 'services:\n  db:\n    image: x\n    %s: ["5432"]\n' % key
    with pytest.raises(StackRenderError) as err:
        render(compose, 'data', None, compose_label='stacks/data/docker-compose.yml')
    assert 'stacks/data/docker-compose.yml' in str(err.value) and 'service db' in str(err.value)
    assert '"%s"' % key in str(err.value)
    with pytest.raises(AnsibleFilterError, match='service db'):
        render_stack(compose, 'data')
    with pytest.raises(AnsibleFilterError, match='platform_rules must be one of error, warning'):
        render_stack(compose, 'data', platform_rules='lenient')


@pytest.mark.parametrize('key', ['ports', 'expose'])
def test_warning_mode_renders_with_a_warning(key, monkeypatch):
    """platform_rules=warning (what docs/migration.md recommends): the stack renders, keeps its key, and the
    finding comes back as a warning naming the file and the service; the filter prints it."""
    compose = 'services:\n  db:\n    image: x\n    %s: ["5432"]\n' % key
    out = render(compose, 'data', None, platform_rules='warning', compose_label='stacks/data/docker-compose.yml')
    assert key in yaml.safe_load(out['compose'])['services']['db']
    assert len(out['warnings']) == 1
    assert out['warnings'][0].startswith('stacks/data/docker-compose.yml: service db of stack data uses "%s"' % key)
    printed = []
    monkeypatch.setattr(render_stack_filter.display, 'warning', printed.append)
    assert render_stack(compose, 'data', platform_rules='warning')['warnings']
    assert len(printed) == 1 and 'stack data:' in printed[0] and 'service db' in printed[0], printed
    assert render(compose.replace('    %s: ["5432"]\n' % key, ''), 'data', None, platform_rules='warning')[
        'warnings'] == []


def test_one_ports_rule_at_validate_and_render_time():
    """The reference stacks publish ports: with platform_rules=error the config model reports them as errors
    and rendering fails on the same stacks; with warning both warn, with the same messages."""
    etc, stacks = os.path.join(REFERENCE, 'etc'), os.path.join(REFERENCE, 'stacks')
    for level in ('error', 'warning'):
        config = load_config(etc, stacks, platform_rules=level)
        found = [f for f in config.report.errors + config.report.warnings if f.code == 'platform.compose_ports']
        assert found and all(f.severity == level for f in found), found
        validated = sorted('%s: %s' % (f.file, f.message) for f in found)
        rendered, failed = [], []
        for name, stack in sorted(config.stacks.items()):
            if not stack.get('compose_file'):
                continue
            values = dict((v['value_from'], 'v') for v in stack['variables'] if 'value_from' in v)
            label = 'stacks/%s/%s' % (name, os.path.basename(stack['compose_file']))
            try:
                files = dict((f['source'], '') for f in stack.get('files') or [])   # the reference ships none
                rendered += render(compose_of(stack), name, stack, values=values, platform_rules=level,
                                   compose_label=label, files=files)['warnings']
            except StackRenderError as exc:
                failed.append(str(exc))
        if level == 'error':
            assert rendered == [] and sorted(failed) == validated, (failed, validated)
        else:
            assert failed == [] and sorted(rendered) == validated, (rendered, validated)


def test_missing_secret_value_and_bad_input():
    stack = {'name': 's', 'environment': 'production', 'files': [], 'services': {},
             'variables': [{'name': 'PASS', 'value_from': 'vault_pass', 'secret': True}]}
    with pytest.raises(StackRenderError, match='PASS takes its value from "vault_pass"'):
        render('services:\n  a:\n    image: x\n', 's', stack)
    with pytest.raises(StackRenderError, match='needs a "services" mapping'):
        render('version: "3"\n', 's', stack)
    with pytest.raises(StackRenderError, match='not valid YAML'):
        render('services: [', 's', stack)
    with pytest.raises(StackRenderError, match='service ghost'):
        render('services:\n  a:\n    image: x\n', 's',
               dict(stack, variables=[], services={'ghost': {'traefik_labels': ['traefik.enable=true']}}))


def test_files_become_content_addressed_configs(tmp_path):
    (tmp_path / 'app.conf').write_text('x = 1\n')
    stack = {'name': 's', 'environment': 'production', 'variables': [], 'services': {},
             'compose_file': str(tmp_path / 'docker-compose.yml'),
             'files': [{'source': 'app.conf', 'destination_in_container': '/etc/app.conf'}]}
    out = render('services:\n  a:\n    image: x\n', 's', stack)
    doc = yaml.safe_load(out['compose'])
    name = out['configs'][0]['name']
    assert name.startswith('s_app.conf_') and doc['configs'][name] == {'external': True, 'name': name}
    assert doc['services']['a']['configs'] == [{'source': name, 'target': '/etc/app.conf'}]
    changed = render('services:\n  a:\n    image: x\n', 's', stack, files={'app.conf': 'x = 2\n'})
    assert changed['configs'][0]['name'] != name


def test_env_helpers():
    env = normalize_env({'B': 1, 'A': True, 'C': None})
    assert env == [{'name': 'A', 'value': 'true'}, {'name': 'B', 'value': '1'}, {'name': 'C', 'value': ''}]
    masked = mask_env([{'name': 'PASS', 'value': 'secret'}], {'PASS'})
    assert 'secret' not in masked[0]['value'] and masked[0]['value'].startswith('********')
    assert content_hash('a', env) == content_hash('a', list(reversed(env))) != content_hash('b', env)


def test_reference_stacks_render(tmp_path):
    config = load_config(os.path.join(REFERENCE, 'etc'), os.path.join(REFERENCE, 'stacks'))
    for name, stack in sorted(config.stacks.items()):
        if not stack.get('compose_file') or not stack.get('defined_for_environment'):
            continue
        values = dict((v['value_from'], 'v') for v in stack['variables'] if 'value_from' in v)
        try:
            out = render(compose_of(stack), name, stack, values=values)
        except StackRenderError as exc:
            assert 'ports' in str(exc) or 'expose' in str(exc), exc   # the reference's own policy violations
            continue
        assert yaml.safe_load(out['compose'])['services']


def test_filter_through_ansible_templating():
    """Ansible hands filters tagged string subclasses; the rendered YAML must still be plain."""
    import json as _json
    compose = 'services:\n  web:\n    image: x\n'
    stack = {'name': 'web', 'environment': 'production', 'variables': [{'name': 'A', 'value': 'b'}], 'files': [],
             'services': {'web': {'traefik_labels': ['traefik.http.routers.w.rule=Host(`w.example`)']}}}
    import subprocess
    import sys as _sys
    cmd = [os.path.join(os.path.dirname(_sys.executable), 'ansible'), 'localhost', '-i', 'localhost,', '-c', 'local',
           '-e', 'ansible_python_interpreter=%s' % _sys.executable, '-e', _json.dumps({'c': compose, 's': stack}),
           '-m', 'ansible.builtin.debug', '-a', "msg={{ c | thinkheads.phoenix.render_stack('web', stack=s) }}"]
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'), ANSIBLE_LOAD_CALLBACK_PLUGINS='1',
               ANSIBLE_STDOUT_CALLBACK='ansible.posix.json', ANSIBLE_NOCOLOR='1')
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    out = _json.loads(proc.stdout)['plays'][0]['tasks'][0]['hosts']['localhost']
    assert not out.get('failed'), out
    assert 'traefik.swarm.network: phoenix-routed' in out['msg']['compose']
    assert out['msg']['env'] == [{'name': 'A', 'value': 'b'}]


GUIDE_LABELS = ['traefik.enable=true',
                'traefik.http.routers.my-app.rule=Host(`my-app.internal.thinkheads.ai`)',
                'traefik.http.routers.my-app.entrypoints=websecure',
                'traefik.http.services.my-app.loadbalancer.server.port=8080']


def _web_stack(labels):
    return {'name': 'my_new_app', 'environment': 'production', 'variables': [], 'files': [],
            'services': {'web': {'traefik_labels': labels}}}


def test_guide_labels_become_a_working_edge_router():
    """The guide's four labels: the edge's router gets TLS on its one entry point and the service link."""
    out = render('services:\n  web:\n    image: x\n', 'my_new_app', _web_stack(GUIDE_LABELS))
    labels = yaml.safe_load(out['compose'])['services']['web']['deploy']['labels']
    assert labels['traefik.http.routers.my-app.tls'] == 'true'
    assert labels['traefik.http.routers.my-app.entrypoints'] == 'websecure'
    assert labels['traefik.http.routers.my-app.service'] == 'my-app'
    assert labels['traefik.http.services.my-app.loadbalancer.server.port'] == '8080'
    assert out['routing'][0]['routers'][0]['service'] == 'my-app'


def test_labels_for_the_traefik_guest_are_translated_for_the_edge(lab):
    """The resolver and the HTTP entry point belong to the Traefik guest: the edge has neither, so they are not
    passed on (else the edge logs 'nonexistent certificate resolver' for every router on every reload)."""
    stack = lab.stacks['thinkheads_ai_app']
    labels = yaml.safe_load(render(compose_of(stack), 'thinkheads_ai_app', stack, 'production',
                                   values=VALUES)['compose'])['services']['app']['deploy']['labels']
    assert not [k for k in labels if 'certresolver' in k.lower()], labels
    extra = GUIDE_LABELS + ['traefik.http.routers.my-app.entrypoints=web,websecure',
                            'traefik.http.routers.my-app.tls.domains[0].main=internal.thinkheads.ai']
    labels = yaml.safe_load(render('services:\n  web:\n    image: x\n', 'my_new_app',
                                   _web_stack(extra))['compose'])['services']['web']['deploy']['labels']
    assert labels['traefik.http.routers.my-app.entrypoints'] == 'websecure'
    assert not [k for k in labels if '.tls.domains' in k], labels


def test_labels_the_platform_cannot_complete_are_refused_naming_stack_service_and_label():
    no_port = [label for label in GUIDE_LABELS if '.port=' not in label]
    with pytest.raises(StackRenderError) as err:
        render('services:\n  web:\n    image: x\n', 'my_new_app', _web_stack(no_port))
    assert 'stack my_new_app, service web' in str(err.value)
    assert 'traefik.http.services.my-app.loadbalancer.server.port=' in str(err.value)
    two = GUIDE_LABELS + ['traefik.http.services.admin.loadbalancer.server.port=9090']
    with pytest.raises(StackRenderError, match=r'add the label traefik\.http\.routers\.my-app\.service=<one of'):
        render('services:\n  web:\n    image: x\n', 'my_new_app', _web_stack(two))
    no_rule = GUIDE_LABELS[:1] + GUIDE_LABELS[2:]
    with pytest.raises(StackRenderError, match=r'router my-app has no rule'):
        render('services:\n  web:\n    image: x\n', 'my_new_app', _web_stack(no_rule))
    # not routed: nothing to complete, nothing refused
    off = ['traefik.enable=false', 'traefik.http.routers.x.entrypoints=web']
    labels = yaml.safe_load(render('services:\n  web:\n    image: x\n', 'my_new_app',
                                   _web_stack(off))['compose'])['services']['web']['deploy']['labels']
    assert labels['traefik.http.routers.x.entrypoints'] == 'web'


SECRET_COMPOSE = """services:
  db:
    image: x
    secrets:
      - db_pass
      - source: api_key
        target: /run/secrets/key
secrets:
  db_pass:
    environment: DB_PASS
  api_key:
    environment: API_KEY
  tls_ca:
    file: ./ca.pem
"""


def _secret_stack(**extra):
    stack = {'name': 's', 'environment': 'production', 'files': [], 'services': {},
             'variables': [{'name': 'DB_PASS', 'value_from': 'vault_db_pass'},
                           {'name': 'API_KEY', 'value_from': 'vault_api_key'},
                           {'name': 'LOG_LEVEL', 'value': 'info'}]}
    stack.update(extra)
    return stack


def test_compose_secrets_from_the_vault_become_external_swarm_secrets_not_env():
    values = {'vault_db_pass': 'db-s3cret-value', 'vault_api_key': 'api-s3cret-value'}
    out = render(SECRET_COMPOSE, 's', _secret_stack(), values=values)
    doc = yaml.safe_load(out['compose'])
    # the top-level entries fed by a stack variable are external secrets under a per-stack base name (the module
    # versions that name); a file secret is the compose file's own business and stays as written
    assert doc['secrets'] == {'db_pass': {'external': True, 'name': 's_db_pass'},
                              'api_key': {'external': True, 'name': 's_api_key'},
                              'tls_ca': {'file': './ca.pem'}}
    assert doc['services']['db']['secrets'] == ['db_pass', {'source': 'api_key', 'target': '/run/secrets/key'}]
    assert out['secrets'] == [{'name': 's_api_key', 'value': 'api-s3cret-value'},
                              {'name': 's_db_pass', 'value': 'db-s3cret-value'}]
    # the values are nowhere but in `secrets`: not in the env, not in the compose
    assert out['env'] == [{'name': 'LOG_LEVEL', 'value': 'info'}]
    for value in values.values():
        assert value not in out['compose'] and value not in repr(out['env'])
    # a stack without compose secrets renders as before, with an empty list
    assert render('services:\n  a:\n    image: x\n', 's', _secret_stack(), values=values)['secrets'] == []


def test_compose_secret_errors_name_the_secret():
    values = {'vault_db_pass': 'a', 'vault_api_key': 'b'}
    with pytest.raises(StackRenderError, match='secret db_pass takes its value from variable NOPE'):
        render(SECRET_COMPOSE.replace('environment: DB_PASS', 'environment: NOPE'), 's', _secret_stack(),
               values=values)
    # a variable that feeds a secret must not also be interpolated: its value would land in the service's env
    leaky = SECRET_COMPOSE.replace('    image: x\n', '    image: x\n    environment:\n      P: ${DB_PASS}\n')
    with pytest.raises(StackRenderError, match='variable DB_PASS feeds secret db_pass'):
        render(leaky, 's', _secret_stack(), values=values)
    with pytest.raises(StackRenderError, match='secret db_pass: only "environment"'):
        render(SECRET_COMPOSE.replace('environment: DB_PASS', 'environment: DB_PASS\n    name: other'), 's',
               _secret_stack(), values=values)


def test_stack_environment_is_the_one_view():
    """sync.yml, render_stack and routing pick a stack's environment with the same function."""
    from ansible_collections.thinkheads.phoenix.plugins.filter.stack_environment import stack_environment
    from ansible_collections.thinkheads.phoenix.plugins.module_utils import routing, stack_rules
    testing = {'variables': [{'name': 'T', 'value': '1'}], 'files': [], 'services': {}, 'routers': {}}
    stack = {'name': 's', 'environment': 'production', 'variables': [], 'other_environments': {'testing': testing}}
    assert stack_environment(stack) is stack and stack_environment(stack, 'production') is stack
    assert stack_environment(stack, 'testing') is testing
    with pytest.raises(AnsibleFilterError, match='stack s has no settings for environment "staging" '
                                                 r'\(resolved: production, testing\)'):
        stack_environment(stack, 'staging')
    assert stack_rules.environment_view(stack, 'staging', required=False) is None
    assert routing.environment_view is stack_rules.environment_view
    with pytest.raises(StackRenderError, match='no settings for environment "staging"'):
        render('services:\n  a:\n    image: x\n', 's', stack, environment='staging')
    assert render('services:\n  a:\n    image: x\n', 's', stack, environment='testing')['env'] == [
        {'name': 'T', 'value': '1'}]
