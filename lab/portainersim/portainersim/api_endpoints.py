# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""portainersim's environment (endpoint) endpoints and the Docker API proxy (a mixin of the HTTP handler)."""

from __future__ import absolute_import, division, print_function

import os
import socket
import ssl
from urllib.parse import urlsplit

from .common import ENDPOINT_AGENT_DOCKER, ENDPOINT_DOCKER, ApiError
from .state import DockerEngine


class EndpointRoutes(object):
    # -- environments --------------------------------------------------------------------------------------

    def _endpoints(self, request):
        if request['method'] == 'POST':
            return self._endpoint_create(request['raw'])
        endpoints = self.db['endpoints']
        if request['query'].get('name'):
            endpoints = [e for e in endpoints if e['Name'] == request['query']['name']]
        return 200, endpoints, None, None

    def _endpoint(self, request, endpoint_id):
        endpoint = self.sim.endpoint(self._number(endpoint_id, 'Invalid environment identifier route variable'))
        if request['method'] == 'DELETE':
            self.db['endpoints'].remove(endpoint)
            return 204, None, None, None
        return 200, endpoint, None, None

    def _endpoint_create(self, raw):
        form = self._form(raw)
        files = self._form_files
        name = form.get('Name') or ''
        if not name:
            raise ApiError(400, 'Invalid request payload', 'invalid environment name')
        try:
            ctype = int(form.get('EndpointCreationType') or 0)
        except ValueError:
            ctype = 0
        if ctype not in (1, 2):
            raise ApiError(400, 'Invalid request payload', 'invalid environment type value. Value must be one of: '
                           '1 (Docker environment), 2 (Agent environment), 3 (Azure environment), 4 (Edge Agent '
                           'environment) or 5 (Local Kubernetes environment)')
        # api/http/handler/endpoints/endpoint_create.go Validate: booleans are the exact text "true"
        # (pkg/libhttp/request RetrieveBooleanMultiPartFormValue); TLSSkipVerify false needs TLSCACertFile,
        # TLSSkipClientVerify false needs TLSCertFile and TLSKeyFile, each an uploaded file
        tls = {'TLS': form.get('TLS') == 'true', 'TLSSkipVerify': False}
        ca_pem = None
        if tls['TLS']:
            tls['TLSSkipVerify'] = form.get('TLSSkipVerify') == 'true'
            if not tls['TLSSkipVerify']:
                if not files.get('TLSCACertFile'):
                    raise ApiError(400, 'Invalid request payload',
                                   'invalid CA certificate file. Ensure that the file is uploaded correctly')
                ca_pem = files['TLSCACertFile']
            if form.get('TLSSkipClientVerify') != 'true':
                if not files.get('TLSCertFile'):
                    raise ApiError(400, 'Invalid request payload',
                                   'invalid certificate file. Ensure that the file is uploaded correctly')
                if not files.get('TLSKeyFile'):
                    raise ApiError(400, 'Invalid request payload',
                                   'invalid key file. Ensure that the file is uploaded correctly')
        if any(e['Name'] == name for e in self.db['endpoints']):
            raise ApiError(409, 'Name is not unique', 'Name is not unique')
        url = form.get('URL') or ''
        if ctype == 2:
            if not url.strip():
                raise ApiError(400, 'Invalid request payload', 'URL cannot be empty')
            parts = urlsplit(url if '://' in url else 'tcp://' + url)
            try:
                conn = socket.create_connection((parts.hostname, parts.port or 9001), timeout=5)
                if ca_pem is not None:
                    # api/agent/version.go GetAgentVersionAndPlatform: HTTPS to the agent with the TLS configuration
                    # of api/crypto/tls.go CreateTLSConfigurationFromBytes (the uploaded CA, server name verified)
                    context = ssl.create_default_context(cadata=ca_pem.decode('ascii', 'replace'))
                    conn = context.wrap_socket(conn, server_hostname=parts.hostname)
                conn.close()
            except (OSError, socket.timeout, ssl.SSLError, ValueError) as exc:
                raise ApiError(500, 'Unable to get environment type', str(exc)) from None
            endpoint = self.sim._add_endpoint(name, ENDPOINT_AGENT_DOCKER, 'tcp://%s:%d' % (parts.hostname,
                                                                                            parts.port or 9001))
        else:
            url = url or 'unix:///var/run/docker.sock'
            # api/http/handler/endpoints/endpoint_create.go snapshotAndPersistEndpoint: the engine is contacted
            # (api/docker/snapshot.go snapshot: Ping) before the environment is saved
            why = DockerEngine(url).ping()
            if why:
                raise ApiError(500, 'Unable to initiate communications with environment', why)
            endpoint = self.sim._add_endpoint(name, ENDPOINT_DOCKER, url)
        # api/http/handler/endpoints/endpoint_create.go createTLSSecuredEndpoint, storeTLSFiles: TLS settings kept,
        # the CA stored under tls/<id>/ca.pem when the server is verified
        endpoint['TLSConfig'] = dict(tls)
        if ca_pem is not None:
            folder = os.path.join(self.sim.store.dir, 'tls', str(endpoint['Id']))
            os.makedirs(folder, exist_ok=True)
            with open(os.path.join(folder, 'ca.pem'), 'wb') as handle:
                handle.write(ca_pem)
            endpoint['TLSConfig']['TLSCACert'] = os.path.join(folder, 'ca.pem')
        return 200, endpoint, None, None

    def _docker_proxy(self, request, endpoint_id, rest):
        endpoint = self.sim.endpoint(self._number(endpoint_id, 'Invalid environment identifier route variable'))
        if endpoint['Type'] != ENDPOINT_DOCKER:
            raise ApiError(501, 'Not implemented', 'portainersim proxies only Docker API environments')
        target = rest + ('?' + urlsplit(self.path).query if urlsplit(self.path).query else '')
        headers = {}
        if request['raw']:
            headers['Content-Type'] = self.headers.get('Content-Type', 'application/json')
        status, ctype, body = DockerEngine(endpoint['URL']).call(request['method'], target,
                                                                 body=request['raw'] or None, headers=headers)
        return status, None, ctype, body
