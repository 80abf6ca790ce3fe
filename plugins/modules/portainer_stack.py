#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: portainer_stack
short_description: Deploy a Docker Swarm stack through Portainer (or straight to Swarm), content-idempotently
version_added: 0.1.0
author:
  - Thinkheads platform team (@thinkheads)
extends_documentation_fragment:
  - thinkheads.phoenix.portainer
  - thinkheads.phoenix.attributes
description:
  - Creates, updates or deletes a Swarm stack. With O(backend=portainer) it uses Portainer CE 2.x's API
    (C(POST /api/stacks/create/swarm/string), C(PUT /api/stacks/{id}), C(DELETE /api/stacks/{id})); with
    O(backend=swarm) it runs C(docker stack deploy) on the Swarm manager it runs on. Both take the same options.
  - Idempotent on content. The compose text is compared with C(GET /api/stacks/{id}/file) and the env with the
    stack's stored C(Env) (Swarm backend - with the record it keeps in a Docker config). When both are equal
    nothing is deployed and the result is C(changed=false).
  - Check mode and diff mode; secret env values are masked in diffs, on both sides (the deployed env's secrets are
    recognised by their names too), and so are the values of variables a run removes (O(state=absent), or a
    variable dropped from O(env)). A mask carries an HMAC of the value keyed per deployment (O(secret_hash_key)),
    never a plain hash.
  - Takes the stack as the P(thinkheads.phoenix.render_stack#filter) filter rendered it, where the platform's stack
    rules (the ports/expose rule among them) were applied; it does not check them again. The compose is parsed
    before any API call (a compose that is not YAML with services fails then) and compared as text.
  - A stack that runs in Swarm but that Portainer does not know makes Portainer answer HTTP 409 on create. The
    module then fails with an explanation; with O(adopt=true) it removes the stack from Swarm and creates it again
    through Portainer (named volumes are kept). See C(docs/stacks.md).
  - After a deploy, with O(wait=true), it waits until every service runs its desired number of tasks of its current
    spec (tasks of the previous spec, still running right after an update, do not count) and its update, if one
    started, is C(completed). A paused or rolled-back update fails at once with Docker's update message; on timeout
    it names the failing service, task and Docker's error.
options:
  name:
    description:
      - Stack name. With O(backend=portainer) it is normalised as Portainer stores it - lower case, only C(a-z),
        C(0-9), C(-) and C(_) kept (C(PCheck-Upper) becomes C(pcheck-upper)) - for the lookup, the deploy and the
        waits, with a warning when that changes it; a name with none of those characters is refused before any
        request. The Swarm backend uses the name as given.
    type: str
    required: true
  state:
    description: Whether the stack should exist.
    type: str
    choices: [present, absent]
    default: present
  backend:
    description: V(portainer) (through its API) or V(swarm) (C(docker stack deploy) on this host, a manager).
    type: str
    choices: [portainer, swarm]
    default: portainer
  compose:
    description: The compose file's text, usually rendered by P(thinkheads.phoenix.render_stack#filter).
    type: str
  compose_file:
    description: Path of the compose file on the host the module runs on (instead of O(compose)).
    type: path
  env:
    description: Environment of the stack (dict, or list of C(name)/C(value)); C(${VAR}) references are filled from it.
    type: raw
  secret_env_names:
    description: Env names whose values are masked in diffs (names like C(*PASS*), C(*TOKEN*), C(*API_KEY*) always are).
    type: list
    elements: str
    default: []
  configs:
    description:
      - Docker configs the compose declares C(external) (as rendered from the stack's C(files)), each C(name) and
        C(content). Created when missing; their names carry a content hash, so they are never updated in place.
    type: list
    elements: dict
    default: []
  secrets:
    description:
      - Swarm secrets of the stack (as rendered from the compose file's top-level C(secrets) fed by a stack
        variable), each C(name) - the name an C(external) secret of the compose carries - and C(value).
      - Each is created as C(<name>_<hmac>), the compose's secret renamed to it before the compare and the deploy;
        the 10 hex digits are an HMAC-SHA256 of the value keyed as in O(secret_hash_key), so a changed value is a
        new secret and a new compose (the services roll out), an unchanged one changes nothing. Secrets of the stack
        that no service uses any more (earlier versions) are removed after the deploy and its wait.
      - Values are never in the env, the diff or the result; the secrets carry the stack's namespace label, so the
        stack's removal removes them too.
    type: list
    elements: dict
    default: []
  endpoint:
    description: Name of the Portainer environment (endpoint). Ignored by the Swarm backend.
    type: str
    default: primary
  endpoint_id:
    description: ID of the Portainer environment; saves the lookup by name.
    type: int
  prune:
    description: Remove services of the stack that the compose no longer has.
    type: bool
    default: false
  pull_image:
    description: Resolve image digests from the registry (Portainer's C(pullImage); Swarm C(--resolve-image always)).
    type: bool
    default: false
  adopt:
    description:
      - When the stack runs in Swarm but Portainer does not know it (HTTP 409 on create), remove it with Portainer's
        external stack removal and create it through Portainer. With O(state=absent), remove such a stack too.
    type: bool
    default: false
  wait:
    description: After a deploy or removal, wait for convergence (desired replicas of the current spec running, update
      completed) or removal.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait for convergence.
    type: int
    default: 300
  docker_host:
    description: Docker API of the manager for the Swarm backend.
    type: str
    default: unix:///var/run/docker.sock
  secret_hash_key:
    description:
      - Key of the HMAC-SHA256 that stands for each secret value in diffs (C(******** (hmac:1a2b3c4d))) and, with
        O(backend=swarm), in the stack's record and its content hash, so that a changed secret shows without its
        hash being guessable. Keep it secret and stable (a vaulted variable).
      - Default - derived from a secret the module already holds - the Portainer API key (or password) with
        O(backend=portainer); the Swarm's manager join token with O(backend=swarm) (read with C(GET /swarm) only
        when the env has secret values).
      - Changing it (or rotating the join token it defaults to) makes every Swarm-backend stack with secrets count
        as changed once and be deployed again with the same content; so does the first run after the upgrade from
        records with unsalted hashes.
    type: str
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
'''

EXAMPLES = r'''
- name: Deploy the Qdrant stack through Portainer
  thinkheads.phoenix.portainer_stack:
    name: qdrant_service
    endpoint: primary
    compose: "{{ qdrant_rendered.compose }}"
    env: "{{ qdrant_rendered.env }}"
    secret_env_names: "{{ qdrant_rendered.secret_env_names }}"
    url: https://portainer.internal.thinkheads.ai:9443
    api_key: "{{ vault_portainer_api_key }}"

- name: Same stack without Portainer, on the Swarm manager
  thinkheads.phoenix.portainer_stack:
    name: qdrant_service
    backend: swarm
    compose: "{{ qdrant_rendered.compose }}"
    env: "{{ qdrant_rendered.env }}"

- name: Take over a stack someone deployed with docker stack deploy
  thinkheads.phoenix.portainer_stack:
    name: legacy_stack
    compose_file: /srv/legacy/docker-compose.yml
    adopt: true

- name: Remove a stack
  thinkheads.phoenix.portainer_stack:
    name: old_stack
    state: absent
'''

RETURN = r'''
name:
  description: The stack name used (with O(backend=portainer), normalised as Portainer stores it).
  returned: always
  type: str
  sample: pcheck-upper
action:
  description: What was done (or would be, in check mode).
  returned: always
  type: str
  sample: updated
  choices: [created, updated, deleted, adopted, none]
stack_action:
  description: Same as RV(action), for output callbacks that reserve the C(action) key.
  returned: always
  type: str
  sample: updated
stack_id:
  description: Portainer's stack ID (Swarm backend - the ID of the record config).
  returned: when the stack exists
  type: raw
  sample: 3
endpoint_id:
  description: The Portainer environment used.
  returned: with backend=portainer
  type: int
  sample: 1
services:
  description: Per service - name, desired and running replicas (of the current spec), image, update state and
    message, last task error.
  returned: when the stack was deployed and waited for, or exists
  type: list
  elements: dict
  sample:
    - {name: qdrant_qdrant, mode: replicated, desired: 1, running: 1, update_state: completed,
       update_message: update completed, image: "qdrant/qdrant:v1.12.4", error: null}
api_calls:
  description: Requests made, per method and path template (Swarm backend - Docker API calls and CLI runs).
  returned: always
  type: dict
  sample: {"GET /api/stacks": 1, "GET /api/stacks/{id}/file": 1}
secrets:
  description: Names of the stack's Swarm secrets this run wants (versioned), never their values.
  returned: when O(secrets) is given and O(state=present)
  type: list
  elements: str
  sample: [thinkheads_ai_app_db_password_3f9a1c2b7d]
secrets_removed:
  description: Earlier versions of the stack's secrets that this run removed (or would remove, in check mode).
  returned: when O(secrets) is given and O(state=present)
  type: list
  elements: str
  sample: [thinkheads_ai_app_db_password_81e04d6ac5]
deploys:
  description: Number of deploying or removing calls made (0 for an unchanged stack).
  returned: always
  type: int
  sample: 1
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.thinkheads.phoenix.plugins.module_utils.portainer import portainer_argument_spec
from ansible_collections.thinkheads.phoenix.plugins.module_utils.portainer_stack_manager import StackManager
from ansible_collections.thinkheads.phoenix.plugins.module_utils.validation import check_options


def main():
    spec = dict(
        name=dict(type='str', required=True),
        state=dict(type='str', choices=['present', 'absent'], default='present'),
        backend=dict(type='str', choices=['portainer', 'swarm'], default='portainer'),
        compose=dict(type='str'),
        compose_file=dict(type='path'),
        env=dict(type='raw'),
        secret_env_names=dict(type='list', elements='str', default=[], no_log=False),
        configs=dict(type='list', elements='dict', default=[]),
        secrets=dict(type='list', elements='dict', default=[], no_log=False),
        endpoint=dict(type='str', default='primary'),
        endpoint_id=dict(type='int'),
        prune=dict(type='bool', default=False),
        pull_image=dict(type='bool', default=False),
        adopt=dict(type='bool', default=False),
        wait=dict(type='bool', default=True),
        wait_timeout=dict(type='int', default=300),
        docker_host=dict(type='str', default='unix:///var/run/docker.sock'),
        secret_hash_key=dict(type='str', no_log=True),
    )
    spec.update(portainer_argument_spec())
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True,
                           mutually_exclusive=[('compose', 'compose_file')])
    # the secrets' values (not their names, which the result and the compose show) are hidden from every output
    for entry in module.params['secrets'] or []:
        if isinstance(entry, dict) and isinstance(entry.get('value'), str) and entry['value']:
            module.no_log_values.add(entry['value'])
    check_options(module, 'portainer_stack')
    StackManager(module).run()


if __name__ == '__main__':
    main()
