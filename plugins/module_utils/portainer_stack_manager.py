# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""StackManager: the portainer_stack module's work (checked inputs, diffs, deploy, update and removal through
Portainer or the Swarm backend). The stack's versioned Docker secrets come from module_utils/stack_secrets.py."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import re
import time

from ansible_collections.thinkheads.phoenix.plugins.module_utils.portainer import (
    STACK_TYPE_SWARM, PortainerClient, PortainerError, normalize_stack_name, portainer_argument_spec,
)
from ansible_collections.thinkheads.phoenix.plugins.module_utils.stack_render import (
    MASK, StackRenderError, content_hash, dump_yaml, hash_key, load_compose, mask_env, normalize_env, secret_names,
)
from ansible_collections.thinkheads.phoenix.plugins.module_utils.stack_secrets import SECRET_NAME_RE, StackSecrets
from ansible_collections.thinkheads.phoenix.plugins.module_utils.swarm_stack import (
    NAMESPACE_LABEL, SwarmBackend, SwarmError, label_filter, wait_converged, wait_removed,
)

# Docker's refusal to remove a network that tasks still use, as Portainer passes it on
_IN_USE_RE = re.compile(r'is in use by task|has active endpoints|network .* in use', re.I)
DEPLOY_KEYS = ('POST /api/stacks/create/swarm/string', 'PUT /api/stacks/{id}', 'DELETE /api/stacks/{id}',
               'DELETE /api/stacks/{name}', 'CLI docker stack')


def env_diff_text(env, secrets, key=None):
    return dump_yaml(dict((e['name'], e['value']) for e in mask_env(env, secrets, key))) if env else ''


def count_deploys(calls):
    return sum(n for key, n in calls.items() if key.startswith(DEPLOY_KEYS))


class StackManager(StackSecrets):
    """One Swarm stack deployed, updated or removed through Portainer or straight through the Docker API."""

    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.result = {'changed': False, 'action': 'none'}
        self.diffs = []
        self._hash_key = None
        self.swarm = None

    def fail(self, msg, **extra):
        self.result.update(extra)
        self.result['stack_action'] = self.result['action']
        self.result['api_calls'] = dict(self.calls())
        self.result['deploys'] = count_deploys(self.result['api_calls'])
        self.module.fail_json(msg=msg, **self.result)

    def calls(self):
        return getattr(self, 'backend_calls', {}) or {}

    def inputs(self):
        p = self.p
        self.name = p['name']
        if p['backend'] == 'portainer':
            self.name = normalize_stack_name(p['name'])
            if not self.name:
                self.fail('stack name "%s" has none of the characters Portainer keeps in a stack name (a-z, 0-9, "-" '
                          'and "_", after lower-casing): choose another name' % p['name'])
            if self.name != p['name']:
                self.module.warn('Portainer stores stack "%s" as "%s" (lower case, only a-z, 0-9, "-" and "_" '
                                 'kept); this run looks it up, deploys it and waits for it under "%s"'
                                 % (p['name'], self.name, self.name))
        self.result['name'] = self.name
        self.compose = None
        if p['state'] == 'present':
            if p['compose'] is None and not p['compose_file']:
                self.fail('state=present needs compose (text) or compose_file')
            if p['compose'] is not None:
                text, label = p['compose'], 'compose of stack %s' % self.name
            else:
                if not os.path.isfile(p['compose_file']):
                    self.fail('compose_file %s does not exist' % p['compose_file'])
                with open(p['compose_file']) as handle:
                    text = handle.read()
                label = p['compose_file']
            try:
                load_compose(text, label)  # well-formed before any API call; the stack rules ran at render time
                self.env = normalize_env(p['env'])
            except StackRenderError as exc:
                self.fail(str(exc))
            self.compose = text
        else:
            self.env = []
        self.secrets = set(p['secret_env_names'] or []) | set(secret_names(self.env))
        for entry in self.env:
            if entry['name'] in self.secrets and entry['value']:
                self.module.no_log_values.add(entry['value'])
        for cfg in p['configs']:
            if not isinstance(cfg, dict) or not cfg.get('name') or 'content' not in cfg:
                self.fail('each entry of configs needs "name" and "content"')
        self.stack_secrets = []
        for entry in p['secrets'] if p['state'] == 'present' else []:
            if not isinstance(entry, dict) or not entry.get('name') or not isinstance(entry.get('value'), str):
                self.fail('each entry of secrets needs "name" and "value" (a string)')
            if entry['value']:
                self.module.no_log_values.add(entry['value'])
            if not SECRET_NAME_RE.match(entry['name']) or len(entry['name']) > 53:
                self.fail('secret name %s: Docker allows 64 characters of a-z, A-Z, 0-9, "-", "_" and "." and the '
                          'module adds 11 ("_" and a version), so at most 53' % entry['name'])
            self.stack_secrets.append({'name': str(entry['name']), 'value': entry['value']})

    def remove(self, call, name):
        """A stack removal, sent again while Docker refuses to remove the stack's network because tasks of its
        just-removed services still use it (docker/cli stack/swarm/remove.go reports the resources it could not
        remove, and Portainer's stack delete fails with that); each later removal finds no service and removes what
        is left. Gives up after wait_timeout seconds."""
        deadline = time.time() + self.module.params['wait_timeout']
        delay = 1.0
        while True:
            try:
                return call()
            except PortainerError as exc:
                text = str(getattr(exc, 'message', '') or exc)
                if not _IN_USE_RE.search(text) or time.time() + delay > deadline:
                    raise
                last = text.strip().splitlines()[-1][:160]
                self.module.warn('stack %s: its network is still in use by tasks that are stopping (%s); removing it '
                                 'again in %.0fs' % (name, last, delay))
                time.sleep(delay)
                delay = min(delay * 2, 8.0)

    def add_diff(self, old_compose, old_env):
        """The compose and env diffs. The deployed env's values are hidden when they are secret (by the names
        given, or by a secret-like name) and when this run removes the variable (state=absent, or dropped from
        env): nothing tells whether such a value was a secret. Deployed secret values become no_log values."""
        old_env = normalize_env(old_env or [])
        old_secrets = self.secrets | set(secret_names(old_env))
        recorded = self.p['backend'] == 'swarm'    # the Swarm record's secret values are masks, not secrets
        for entry in old_env:
            if entry['name'] in old_secrets and entry['value'] and not (recorded and entry['value'].startswith(MASK)):
                self.module.no_log_values.add(entry['value'])
        if not self.module._diff:
            return
        wanted = set(e['name'] for e in self.env or [])
        hidden = old_secrets | set(e['name'] for e in old_env if e['name'] not in wanted)
        if recorded:
            # the Swarm record keeps secret values masked already: shown as stored, so that an unchanged secret
            # has the same mask on both sides
            hidden -= set(e['name'] for e in old_env if e['value'].startswith(MASK))
        name = self.name
        self.diffs.append({'before': old_compose or '', 'after': self.compose or '',
                           'before_header': 'stack %s compose (deployed)' % name,
                           'after_header': 'stack %s compose (wanted)' % name})
        key = self.hash_key()
        self.diffs.append({'before': env_diff_text(old_env, hidden, key),
                           'after': env_diff_text(self.env or [], self.secrets, key),
                           'before_header': 'stack %s env (deployed, secrets masked)' % name,
                           'after_header': 'stack %s env (wanted, secrets masked)' % name})

    def hash_key(self):
        """The key of the secrets' hashes in diffs and in the Swarm record (stack_render.mask_env, content_hash):
        secret_hash_key, else a deployment secret the module holds - the Portainer API key (or password), or the
        Swarm's manager join token (read only when the env has secret values)."""
        if self._hash_key is None:
            p = self.p
            material = p['secret_hash_key']
            if not material and p['backend'] == 'portainer':
                material = p['api_key'] or p['password']
            if not material and p['backend'] == 'swarm' and (self.secret_values() or self.stack_secrets):
                material = ((self.swarm.api.get('/swarm') or {}).get('JoinTokens') or {}).get('Manager')
                if not material:
                    self.fail('the Swarm backend keys the hashes of secret values with the Swarm\'s manager join token, '
                              'and %s gave none (not a manager?): set secret_hash_key' % p['docker_host'])
            self._hash_key = hash_key(material) or b''
        return self._hash_key or None

    def secret_values(self):
        return [e for e in self.env or [] if e['name'] in self.secrets and e['value']]

    # -- Portainer ---------------------------------------------------------------------------------

    def run_portainer(self):
        p = self.p
        conn = dict((k, p[k]) for k in portainer_argument_spec())
        if not p['url']:
            self.fail('url is required for backend=portainer (or set PHOENIX_PORTAINER_URL)')
        if not p['api_key'] and not (p['username'] and p['password']):
            self.fail('set api_key, or username and password, for backend=portainer')
        client = PortainerClient(**conn)
        self.backend_calls = client.calls
        eid = client.resolve_endpoint(p['endpoint'], p['endpoint_id'])
        self.result['endpoint_id'] = eid

        def docker_get(path, query=None):
            return client.docker(eid, 'GET', path, query=query)

        name = self.name
        stack = client.stack_by_name(name, eid)
        if stack is not None and stack.get('Type') != STACK_TYPE_SWARM:
            self.fail('environment %d has a stack named "%s" of type %s (not a Swarm stack, type %d): '
                      'portainer_stack manages Swarm stacks only; remove or rename that stack in Portainer' % (
                          eid, stack.get('Name'), stack.get('Type'), STACK_TYPE_SWARM), stack_id=stack.get('Id'))
        check = self.module.check_mode
        if p['state'] == 'absent':
            if stack is not None:
                self.result.update(changed=True, action='deleted', stack_id=stack['Id'])
                self.add_diff(client.stack_file(stack['Id']), stack.get('Env'))
                if not check:
                    try:
                        self.remove(lambda: client.delete_stack(stack['Id'], eid), name)
                    except PortainerError as exc:
                        # the answer was lost: sent again only while Portainer still lists the stack
                        if not exc.unsure:
                            raise
                        if client.stack_by_name(name, eid) is not None:
                            client.delete_stack(stack['Id'], eid)
                    if p['wait']:
                        wait_removed(docker_get, name, p['wait_timeout'])
            elif docker_get('/services', label_filter('%s=%s' % (NAMESPACE_LABEL, name))):
                if not p['adopt']:
                    self.module.warn('stack %s runs in Swarm but Portainer does not manage it; it is left alone '
                                     '(adopt=true removes it)' % name)
                else:
                    self.result.update(changed=True, action='deleted')
                    if not check:
                        self.remove(lambda: client.delete_external_stack(name, eid), name)
                        if p['wait']:
                            wait_removed(docker_get, name, p['wait_timeout'])
            return
        self.ensure_configs(lambda: [c['Spec']['Name'] for c in (docker_get('/configs') or [])],
                            lambda cfg: client.docker(eid, 'POST', '/configs/create', body=self.config_body(cfg)))

        def docker(method, path, query=None, body=None, expect=None):
            return client.docker(eid, method, path, query=query, body=body, expect=expect)
        self.version_secrets()
        self.ensure_secrets(docker)
        if stack is not None:
            self.result['stack_id'] = stack['Id']
            current = client.stack_file(stack['Id'])
            current_env = normalize_env(stack.get('Env') or [])
            if current == self.compose and current_env == self.env:
                self.prune_secrets(docker)
                return
            self.result.update(changed=True, action='updated')
            self.add_diff(current, current_env)
            if not check:
                try:
                    client.update_stack(stack['Id'], eid, self.compose, self.env, prune=p['prune'],
                                        pull_image=p['pull_image'])
                except PortainerError as exc:
                    # the answer was lost: carried out when Portainer now holds our compose and env, else sent again
                    # (an update to the same content repeats nothing)
                    if not exc.unsure:
                        raise
                    if not self.ours(client, client.stack_by_name(name, eid) or stack):
                        client.update_stack(stack['Id'], eid, self.compose, self.env, prune=p['prune'],
                                            pull_image=p['pull_image'])
        else:
            self.result.update(changed=True, action='created')
            self.add_diff('', [])
            external = docker_get('/services', label_filter('%s=%s' % (NAMESPACE_LABEL, name)))
            if check:
                if external:
                    if not p['adopt']:
                        self.fail(self.conflict_message(name))
                    self.result['action'] = 'adopted'
                return
            swarm_id = client.swarm_id(eid)
            try:
                created = self.create(client, eid, swarm_id, docker_get, bool(external))
            except PortainerError as exc:
                if exc.status != 409:
                    raise
                if not p['adopt']:
                    self.fail(self.conflict_message(name) + ' Portainer said: %s' % exc.message)
                client.delete_external_stack(name, eid)
                wait_removed(docker_get, name, p['wait_timeout'])
                created = self.create(client, eid, swarm_id, docker_get, False)
                self.result['action'] = 'adopted'
            self.result['stack_id'] = created['Id']
        if p['wait'] and not check:
            self.result['services'] = wait_converged(docker_get, name, p['wait_timeout'])
        if not check:
            self.prune_secrets(docker)

    def ours(self, client, stack):
        """Whether a stack holds exactly what this run sends (then a lost answer was Portainer's to our request)."""
        return client.stack_file(stack['Id']) == self.compose and normalize_env(stack.get('Env') or []) == self.env

    def create(self, client, eid, swarm_id, docker_get, external, sleep=time.sleep):
        """Create the stack. A create whose answer was lost (read timeout, connection closed, HTTP 502/504) may have
        been carried out, and sending it again would meet HTTP 409 for our own stack: the stacks are read again and
        the run continues from what is there. Portainer deploys first and records the stack after (stackbuilders
        SaveStack), so services of the stack without a Portainer stack mean that the create is still running."""
        name, p = self.name, self.p
        try:
            return client.create_swarm_stack(eid, name, swarm_id, self.compose, self.env)
        except PortainerError as exc:
            if not exc.unsure:
                raise
            first = exc
        deadline = time.time() + p['wait_timeout']
        resent = False
        while True:
            stack = client.stack_by_name(name, eid)
            if stack is not None:
                # on our environment, under our name, absent when this run looked: created by our request
                if self.ours(client, stack):
                    return stack
                self.fail('stack %s appeared on environment %d with another compose or env while this run created it '
                          '(%s); it is left alone' % (name, eid, first.message), stack_id=stack.get('Id'))
            running = docker_get('/services', label_filter('%s=%s' % (NAMESPACE_LABEL, name)))
            if not resent and (not running or external):
                # nothing deployed yet (or only the stack that was there before): the create can be sent again;
                # an HTTP 409 then is either our first create still deploying or, with an external stack, the
                # conflict the first answer would have carried
                resent = True
                try:
                    return client.create_swarm_stack(eid, name, swarm_id, self.compose, self.env)
                except PortainerError as exc:
                    if exc.status == 409 and external:
                        raise
                    if not (exc.unsure or exc.status == 409):
                        raise
            if time.time() >= deadline:
                self.fail('Portainer did not answer the creation of stack %s (%s) and has not recorded it after %ss'
                          % (name, first.message, p['wait_timeout']))
            sleep(2)

    @staticmethod
    def conflict_message(name):
        return ('stack %s already runs in Swarm but Portainer does not manage it (Portainer answers HTTP 409 on '
                'create). Set adopt=true to remove it from Swarm and create it through Portainer (named volumes '
                'are kept, its services restart), or remove it yourself with "docker stack rm %s".' % (name, name))

    @staticmethod
    def config_body(cfg):
        import base64
        return {'Name': cfg['name'], 'Labels': {'io.thinkheads.phoenix.file': cfg.get('target', '')},
                'Data': base64.b64encode(cfg['content'].encode('utf-8')).decode('ascii')}

    def ensure_configs(self, list_names, create):
        if not self.p['configs']:
            return
        existing = set(list_names())
        for cfg in self.p['configs']:
            if cfg['name'] not in existing:
                self.result['changed'] = True
                if not self.module.check_mode:
                    try:
                        create(cfg)
                    except PortainerError as exc:
                        # the answer was lost: the config may exist now, created again only when it does not
                        if not exc.unsure:
                            raise
                        if cfg['name'] not in set(list_names()):
                            create(cfg)

    # -- Swarm ---------------------------------------------------------------------------------------

    def run_swarm(self):
        p = self.p
        backend = SwarmBackend(self.module.run_command, docker_host=p['docker_host'],
                               docker_bin=self.module.get_bin_path('docker', required=True))
        self.backend_calls = backend.calls
        self.swarm = backend
        name = p['name']
        check = self.module.check_mode
        record = backend.find(name)
        if p['state'] == 'absent':
            if record is not None or (p['adopt'] and backend.external(name)):
                self.result.update(changed=True, action='deleted', stack_id=record and record['id'])
                self.add_diff(record and record.get('compose'), record and record.get('env'))
                if not check:
                    backend.remove(name)
                    if p['wait']:
                        wait_removed(backend.api.get, name, p['wait_timeout'])
            elif backend.external(name):
                self.module.warn('stack %s was not deployed by this module; it is left alone (adopt=true removes '
                                 'it)' % name)
            return
        self.ensure_configs(lambda: [c['Spec']['Name'] for c in (backend.api.get('/configs') or [])],
                            lambda cfg: backend.api.request('POST', '/configs/create', body=self.config_body(cfg)))
        docker = backend.api.request
        self.version_secrets()
        self.ensure_secrets(docker)
        # keyed only when the env has secret values: without them the record holds nothing a plain hash could reveal
        key = self.hash_key() if self.secret_values() else None
        digest = content_hash(self.compose, self.env, self.p['configs'], key)
        record_env = mask_env(self.env, self.secrets, key)
        if record is not None:
            self.result['stack_id'] = record['id']
            if record.get('hash') == digest and backend.external(name):
                self.prune_secrets(docker)
                return
            self.result.update(changed=True, action='updated')
            self.add_diff(record.get('compose'), record.get('env'))
        else:
            self.result.update(changed=True, action='created')
            self.add_diff('', [])
            if backend.external(name):
                if not p['adopt']:
                    self.fail('stack %s already runs in Swarm but was not deployed by this module. Set adopt=true '
                              'to take it over (the next deploy replaces its definition).' % name)
                self.result['action'] = 'adopted'
        if check:
            return
        backend.deploy(name, self.compose, self.env, record_env, digest, prune=p['prune'],
                       pull_image=p['pull_image'], previous=record)
        if p['wait']:
            self.result['services'] = wait_converged(backend.api.get, name, p['wait_timeout'])
        self.prune_secrets(docker)

    def run(self):
        self.inputs()
        try:
            if self.p['backend'] == 'portainer':
                self.run_portainer()
            else:
                self.run_swarm()
        except (PortainerError, SwarmError) as exc:
            self.fail(str(exc))
        if self.diffs:
            self.result['diff'] = self.diffs
        self.result['stack_action'] = self.result['action']
        self.result['api_calls'] = dict(self.calls())
        self.result['deploys'] = count_deploys(self.result['api_calls'])
        self.module.exit_json(**self.result)
