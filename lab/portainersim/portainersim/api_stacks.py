# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""portainersim's stack endpoints: list, file, create, update, delete (a mixin of the HTTP handler)."""

from __future__ import absolute_import, division, print_function

import os
import time

from .common import STACK_ACTIVE, STACK_SWARM, ApiError, filter_stacks, normalize_stack_name, parse_stack_filters


class StackRoutes(object):
    # -- stacks --------------------------------------------------------------------------------------------

    def _stack_list(self, request):
        filters = parse_stack_filters(request['query']['filters']) if request['query'].get('filters') else \
            {'SwarmID': '', 'EndpointID': 0, 'IncludeOrphanedStacks': False}
        stacks = filter_stacks(self.db['stacks'], filters, self.db['endpoints'])
        return 200, [self.sim.stack_view(s) for s in stacks], None, None

    def _stack_file(self, request, stack_id):
        stack = self.sim.stack(self._number(stack_id, 'Invalid stack identifier route variable'))
        with open(os.path.join(stack['ProjectPath'], stack['EntryPoint'])) as handle:
            return 200, {'StackFileContent': handle.read()}, None, None

    def _stack(self, request, stack_id):
        if request['method'] == 'DELETE':
            return self._stack_delete(stack_id, request['query'])
        stack = self.sim.stack(self._number(stack_id, 'Invalid stack identifier route variable'))
        if request['method'] == 'PUT':
            return self._stack_update(stack, request['query'], request['raw'], request['user'])
        return 200, self.sim.stack_view(stack), None, None

    @staticmethod
    def _env(payload):
        """The payload's Env as Go keeps it: null when absent or null, else the list (possibly empty)."""
        env = payload.get('env')
        if env is None:
            return None
        if not isinstance(env, list) or not all(isinstance(p, dict) for p in env):
            raise ApiError(400, 'Invalid request payload', 'json: cannot unmarshal Env into []portainer.Pair')
        return [{'name': str(p.get('name') or ''), 'value': str(p.get('value') or '')} for p in env]

    def _stack_create(self, request, stack_type, build_method):
        # api/http/handler/stacks/stack_create.go stackCreate, create_swarm_stack.go createSwarmStackFromFileContent
        sim, db = self.sim, self.db
        endpoint_id = self._query_number(request['query'], 'endpointId', optional=False)
        endpoint = sim.endpoint(endpoint_id)
        if stack_type != 'swarm' or build_method != 'string':
            raise ApiError(400, 'Invalid value for query parameter: method. Value must be one of: string, '
                           'repository or file', 'portainersim implements swarm/string only')
        payload = self._json(request['raw'])
        if not payload.get('name'):
            raise ApiError(400, 'Invalid request payload', 'Invalid stack name')
        if not payload.get('swarmid'):
            raise ApiError(400, 'Invalid request payload', 'Invalid Swarm ID')
        if not payload.get('stackfilecontent'):
            raise ApiError(400, 'Invalid request payload', 'Invalid stack file content')
        env = self._env(payload)
        name = normalize_stack_name(payload['name'])
        # api/http/handler/stacks/handler.go checkUniqueStackNameInDocker, checkUniqueStackName, stackExistsError
        taken = any(s['Name'].lower() == name and s['EndpointId'] == endpoint['Id'] for s in db['stacks'])
        if taken or sim.name_taken_in_docker(endpoint, name):
            message = "A stack with the normalized name '%s' already exists" % name
            raise ApiError(409, message, message)
        stack_id = sim.store.next_id('stack')
        project = os.path.join(sim.store.dir, 'compose', str(stack_id))
        os.makedirs(project, exist_ok=True)
        with open(os.path.join(project, 'docker-compose.yml'), 'w') as handle:
            handle.write(payload['stackfilecontent'])
        now = int(time.time())
        # the fields of api/portainer.go Stack (2.23.0)
        stack = {'Id': stack_id, 'Name': name, 'Type': STACK_SWARM, 'EndpointId': endpoint['Id'],
                 'SwarmId': payload['swarmid'], 'EntryPoint': 'docker-compose.yml', 'Env': env,
                 'Status': STACK_ACTIVE, 'ProjectPath': project, 'CreationDate': now,
                 'CreatedBy': request['user']['Username'], 'UpdateDate': 0, 'UpdatedBy': '', 'AdditionalFiles': None,
                 'AutoUpdate': None, 'Option': None, 'GitConfig': None, 'FromAppTemplate': False, 'Namespace': ''}
        try:
            sim.deploy(stack, endpoint, prune=False, pull_image=True)
        except ApiError:
            import shutil
            shutil.rmtree(project, ignore_errors=True)
            raise
        db['stacks'].append(stack)
        return 200, sim.stack_view(stack), None, None

    def _stack_update(self, stack, query, raw, user):
        # api/http/handler/stacks/stack_update.go stackUpdate, updateSwarmStack
        sim = self.sim
        endpoint_id = self._query_number(query, 'endpointId', optional=False)
        endpoint = sim.endpoint(endpoint_id, message='Unable to find the environment associated to the stack '
                                'inside the database')
        payload = self._json(raw)
        if not payload.get('stackfilecontent'):
            raise ApiError(400, 'Invalid request payload', 'Invalid stack file content')
        env = self._env(payload)
        path = os.path.join(stack['ProjectPath'], stack['EntryPoint'])
        with open(path) as handle:
            previous = handle.read()
        previous_env = stack.get('Env')
        with open(path, 'w') as handle:
            handle.write(payload['stackfilecontent'])
        stack['Env'] = env
        try:
            sim.deploy(stack, endpoint, prune=bool(payload.get('prune')), pull_image=bool(payload.get('pullimage')))
        except ApiError:
            with open(path, 'w') as handle:
                handle.write(previous)
            stack['Env'] = previous_env
            raise
        stack['EndpointId'] = endpoint_id
        stack['UpdateDate'] = int(time.time())
        stack['UpdatedBy'] = user['Username']
        stack['Status'] = STACK_ACTIVE
        return 200, sim.stack_view(stack, resource_control=False), None, None

    def _stack_delete(self, ident, query):
        # api/http/handler/stacks/stack_delete.go stackDelete, deleteExternalStack
        sim, db = self.sim, self.db
        if str(query.get('external', '')).lower() in ('1', 'true'):
            endpoint_id = self._query_number(query, 'endpointId', optional=False)
            if any(s['Name'] == ident for s in db['stacks']):
                raise ApiError(400, 'A stack with this name exists inside the database. Cannot use external '
                               'delete method', 'A tag already exists with this name')
            endpoint = sim.endpoint(endpoint_id, message='Unable to find the endpoint associated to the stack '
                                    'inside the database')
            sim.docker_cli(endpoint, ['stack', 'rm', normalize_stack_name(ident)])
            return 204, None, None, None
        stack = sim.stack(self._number(ident, 'Invalid stack identifier route variable'))
        # endpointId is optional: without it (0) the stack counts as orphaned and environment 0 is not found (404)
        endpoint_id = self._query_number(query, 'endpointId', optional=True)
        endpoint = sim.endpoint(endpoint_id, message='Unable to find the endpoint associated to the stack inside '
                                'the database')
        sim.docker_cli(endpoint, ['stack', 'rm', normalize_stack_name(stack['Name'])])
        db['stacks'].remove(stack)
        import shutil
        shutil.rmtree(stack['ProjectPath'], ignore_errors=True)
        return 204, None, None, None
