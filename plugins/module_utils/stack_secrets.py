# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The versioned Docker secrets of a stack (portainer_stack's ``secrets`` option).

Each secret is created under its base name plus a keyed hash of its value, so that a changed value is a new
secret that the services switch to, and the versions no service uses any more are removed. StackSecrets is mixed
into StackManager (module_utils/portainer_stack_manager.py), which provides ``name``, ``compose``, ``result``,
``stack_secrets``, ``module``, ``fail`` and ``hash_key``.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import base64
import hashlib
import hmac
import re

from ansible_collections.thinkheads.phoenix.plugins.module_utils.portainer import PortainerError
from ansible_collections.thinkheads.phoenix.plugins.module_utils.stack_render import (
    StackRenderError, dump_yaml, load_compose,
)
from ansible_collections.thinkheads.phoenix.plugins.module_utils.swarm_stack import NAMESPACE_LABEL, label_filter

# Docker's rule for a secret's name (swarmkit api/validation: 64 characters of [a-zA-Z0-9-_.])
SECRET_NAME_RE = re.compile(r'^[a-zA-Z0-9](?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?$')
SECRET_LABEL = 'io.thinkheads.phoenix.secret'


class StackSecrets:
    """Create, version and prune a stack's Docker secrets (a mixin of StackManager)."""

    def version_secrets(self):
        """Give each of O(secrets) its versioned name (keyed HMAC of the value) and rename the compose's external
        secret that carries the base name to it, before the compose is compared or deployed."""
        if not self.stack_secrets:
            return
        key = self.hash_key()
        for entry in self.stack_secrets:
            digest = hmac.new(key, entry['value'].encode('utf-8'), hashlib.sha256).hexdigest()[:10]
            entry['versioned'] = '%s_%s' % (entry['name'], digest)
        wanted = dict((e['name'], e['versioned']) for e in self.stack_secrets)
        try:
            doc = load_compose(self.compose, 'compose of stack %s' % self.name)
        except StackRenderError as exc:
            self.fail(str(exc))
        found = set()
        for conf in (doc.get('secrets') or {}).values():
            if isinstance(conf, dict) and conf.get('external') and conf.get('name') in wanted:
                found.add(conf['name'])
                conf['name'] = wanted[conf['name']]
        missing = sorted(set(wanted) - found)
        if missing:
            self.fail('secrets %s: the compose declares no external secret with that name (render the stack with '
                      'thinkheads.phoenix.render_stack, which declares them)' % ', '.join(missing))
        self.compose = dump_yaml(doc)
        self.result['secrets'] = sorted(wanted.values())
        self.result['secrets_removed'] = []

    def ensure_secrets(self, docker):
        """Create the versioned secrets that do not exist. ``docker(method, path, query=None, body=None)``."""
        if not self.stack_secrets:
            return
        existing = set(s['Spec']['Name'] for s in docker('GET', '/secrets', query=self.secret_filter()) or [])
        for entry in self.stack_secrets:
            if entry['versioned'] in existing:
                continue
            self.result['changed'] = True
            if self.module.check_mode:
                continue
            body = {'Name': entry['versioned'],
                    'Labels': {NAMESPACE_LABEL: self.name, SECRET_LABEL: entry['name']},
                    'Data': base64.b64encode(entry['value'].encode('utf-8')).decode('ascii')}
            try:
                docker('POST', '/secrets/create', body=body)
            except PortainerError as exc:
                # the answer was lost: the secret may exist now, created again only when it does not
                if not exc.unsure:
                    raise
                if entry['versioned'] not in set(s['Spec']['Name'] for s in docker(
                        'GET', '/secrets', query=self.secret_filter()) or []):
                    docker('POST', '/secrets/create', body=body)

    def secret_filter(self):
        return label_filter('%s=%s' % (NAMESPACE_LABEL, self.name), SECRET_LABEL)

    def prune_secrets(self, docker):
        """Remove the stack's secrets that are not wanted and that no service uses any more (earlier versions)."""
        if not self.stack_secrets:
            return
        wanted = set(e['versioned'] for e in self.stack_secrets)
        used = set()
        for service in docker('GET', '/services') or []:
            spec = ((service.get('Spec') or {}).get('TaskTemplate') or {}).get('ContainerSpec') or {}
            for ref in spec.get('Secrets') or []:
                used.add(ref.get('SecretName'))
                used.add(ref.get('SecretID'))
        for secret in docker('GET', '/secrets', query=self.secret_filter()) or []:
            name = secret['Spec']['Name']
            if name in wanted or name in used or secret.get('ID') in used:
                continue
            self.result['changed'] = True
            self.result['secrets_removed'].append(name)
            if not self.module.check_mode:
                docker('DELETE', '/secrets/%s' % secret['ID'], expect=(404,))
