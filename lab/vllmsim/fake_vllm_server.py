# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""TEST DOUBLE for vLLM: a tiny OpenAI-compatible server, NOT vLLM.

Run it as ``python3 fake_vllm_server.py serve MODEL ...``. The lab (lab/lab.py, on guest 801) and the molecule
scenario ``molecule/vllm`` make it an executable (a ``#!/usr/bin/python3`` line on top) that the
``thinkheads.phoenix.vllm`` role installs as ``<vllm_venv>/bin/vllm`` (role variable ``vllm_executable_src``,
with ``vllm_install: false``), so that the role's systemd wiring, TLS, API key and readiness checks run for real
on a machine without a GPU. It serves no model: embeddings are deterministic pseudo-random unit vectors derived
from the input text, completions are a fixed text.

What it mirrors from ``vllm serve`` (vLLM 0.11):

- the command line the role renders: ``vllm serve MODEL --host H --port P --served-model-name NAME...
  --runner pooling|generate | --task embed|generate --ssl-certfile F --ssl-keyfile F``; every other option is
  accepted and ignored (a flag followed by a value, or a bare flag);
- ``VLLM_API_KEY`` (or ``--api-key``): ``/v1/*`` answers 401 without ``Authorization: Bearer <key>``, while
  ``/health``, ``/metrics`` and ``/version`` stay open, as in vLLM;
- ``GET /health``, ``GET /v1/models``, ``POST /v1/embeddings`` (pooling models only),
  ``POST /v1/completions`` (generate models only), ``GET /metrics``, ``GET /version``.

Test-double knobs (environment): ``FAKE_VLLM_EMBEDDING_DIMENSION`` (default 768, the dimension of
ibm-granite/granite-embedding-english-r2), ``FAKE_VLLM_STARTUP_DELAY`` (seconds before listening, to exercise
the readiness polling; default 0). Python standard library only.
"""

import argparse
import hashlib
import hmac
import json
import math
import os
import signal
import socket
import ssl
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAKE_VERSION = '0.11.0+fake.test.double'
EMBEDDING_NAME_HINTS = ('embed', 'bge-', 'e5-', 'gte-', 'minilm', 'retriev', 'rerank')


def parse_cli(argv):
    parser = argparse.ArgumentParser(prog='vllm', description='vLLM TEST DOUBLE (not vLLM)')
    parser.add_argument('--version', action='store_true')
    sub = parser.add_subparsers(dest='command')
    serve = sub.add_parser('serve')
    serve.add_argument('model')
    serve.add_argument('--host', default=None)
    serve.add_argument('--port', type=int, default=8000)
    serve.add_argument('--served-model-name', nargs='+', default=None)
    serve.add_argument('--runner', default='auto')
    serve.add_argument('--task', default='auto')
    serve.add_argument('--ssl-certfile', default=None)
    serve.add_argument('--ssl-keyfile', default=None)
    serve.add_argument('--api-key', default=None)
    serve.add_argument('--max-model-len', type=int, default=8192)
    args, ignored = serve.parse_known_args(argv[1:]) if argv[:1] == ['serve'] else (parser.parse_args(argv), [])
    if getattr(args, 'version', False):
        args.command = 'version'
    else:
        args.command = argv[0] if argv else None
    return parser, args, ignored


def is_pooling(args):
    if args.runner != 'auto':
        return args.runner == 'pooling'
    if args.task != 'auto':
        return args.task in ('embed', 'embedding', 'classify', 'score', 'reward')
    return any(hint in args.model.lower() for hint in EMBEDDING_NAME_HINTS)


def fake_embedding(text, dimension):
    """Deterministic unit vector for ``text``: SHA-256 in counter mode mapped to [-1, 1], then normalised."""
    values = []
    counter = 0
    while len(values) < dimension:
        block = hashlib.sha256(('%d:%s' % (counter, text)).encode('utf-8')).digest()
        values.extend(v / 2147483648.0 for v in struct.unpack('>8i', block))
        counter += 1
    values = values[:dimension]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


class State(object):
    def __init__(self, args):
        self.args = args
        self.names = args.served_model_name or [args.model]
        self.pooling = is_pooling(args)
        self.api_key = args.api_key or os.environ.get('VLLM_API_KEY') or None
        self.dimension = int(os.environ.get('FAKE_VLLM_EMBEDDING_DIMENSION', '768'))
        self.started = int(time.time())
        self.requests = 0
        self.lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    server_version = 'fake-vllm-test-double'
    protocol_version = 'HTTP/1.1'
    state = None  # set in main()

    def log_message(self, fmt, *args):
        sys.stderr.write('fake-vllm: %s %s\n' % (self.address_string(), fmt % args))

    def _send(self, status, payload, content_type='application/json'):
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode('utf-8')
        self.send_response(status)
        self.send_header('Content-Type', content_type)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status, message, kind='BadRequestError'):
        self._send(status, {'object': 'error', 'message': message, 'type': kind, 'param': None, 'code': status})

    def _authorized(self):
        key = self.state.api_key
        if not key or not self.path.startswith('/v1'):
            return True
        given = self.headers.get('Authorization', '')
        if hmac.compare_digest(given.encode('utf-8'), ('Bearer ' + key).encode('utf-8')):
            return True
        self._send(401, {'error': 'Unauthorized'})
        return False

    def _json_body(self):
        length = int(self.headers.get('Content-Length') or 0)
        raw = self.rfile.read(length) if length else b''
        try:
            return json.loads(raw.decode('utf-8') or '{}')
        except ValueError:
            self._error(400, 'request body is not JSON')
            return None

    def _model_ok(self, body):
        model = body.get('model') or self.state.names[0]
        if model not in self.state.names:
            self._error(404, 'The model `%s` does not exist.' % model, 'NotFoundError')
            return None
        return model

    def do_GET(self):
        with self.state.lock:
            self.state.requests += 1
        if not self._authorized():
            return
        path = self.path.split('?', 1)[0]
        if path == '/health':
            self._send(200, b'', 'text/plain')
        elif path == '/version':
            self._send(200, {'version': FAKE_VERSION})
        elif path == '/metrics':
            text = ('# HELP fake_vllm_requests_total Requests served by the vLLM test double.\n'
                    '# TYPE fake_vllm_requests_total counter\n'
                    'fake_vllm_requests_total %d\n' % self.state.requests)
            self._send(200, text.encode('utf-8'), 'text/plain; version=0.0.4')
        elif path == '/v1/models':
            data = [{'id': name, 'object': 'model', 'created': self.state.started, 'owned_by': 'vllm',
                     'root': self.state.args.model, 'parent': None,
                     'max_model_len': self.state.args.max_model_len} for name in self.state.names]
            self._send(200, {'object': 'list', 'data': data})
        else:
            self._error(404, 'Not Found', 'NotFoundError')

    def do_POST(self):
        with self.state.lock:
            self.state.requests += 1
        body = self._json_body()  # read first: the connection stays usable after a 401
        if body is None or not self._authorized():
            return
        path = self.path.split('?', 1)[0]
        if path == '/v1/embeddings':
            self._embeddings(body)
        elif path == '/v1/completions':
            self._completions(body)
        else:
            self._error(404, 'Not Found', 'NotFoundError')

    def _embeddings(self, body):
        if not self.state.pooling:
            self._error(400, 'The model does not support Embeddings API')
            return
        model = self._model_ok(body)
        if model is None:
            return
        inputs = body.get('input')
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not inputs or not all(isinstance(i, str) for i in inputs):
            self._error(400, 'input must be a string or a non-empty list of strings')
            return
        data = [{'index': i, 'object': 'embedding', 'embedding': fake_embedding(text, self.state.dimension)}
                for i, text in enumerate(inputs)]
        tokens = sum(len(text.split()) for text in inputs)
        self._send(200, {'id': 'embd-fake', 'object': 'list', 'created': int(time.time()), 'model': model,
                         'data': data, 'usage': {'prompt_tokens': tokens, 'total_tokens': tokens}})

    def _completions(self, body):
        if self.state.pooling:
            self._error(400, 'The model does not support Completions API')
            return
        model = self._model_ok(body)
        if model is None:
            return
        text = ' fake completion from the vLLM test double'
        max_tokens = int(body.get('max_tokens') or 16)
        text = ' '.join(text.split(' ')[:max_tokens + 1])
        self._send(200, {'id': 'cmpl-fake', 'object': 'text_completion', 'created': int(time.time()),
                         'model': model, 'choices': [{'index': 0, 'text': text, 'finish_reason': 'length',
                                                      'logprobs': None}],
                         'usage': {'prompt_tokens': 1, 'completion_tokens': max_tokens,
                                   'total_tokens': max_tokens + 1}})


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser, args, ignored = parse_cli(argv)
    if args.command == 'version':
        print(FAKE_VERSION)
        return 0
    if args.command != 'serve':
        parser.print_help()
        return 2
    state = State(args)
    sys.stderr.write('fake-vllm: TEST DOUBLE standing in for vLLM; model %s as %s (%s); ignored options: %s\n'
                     % (args.model, ', '.join(state.names), 'pooling' if state.pooling else 'generate',
                        ' '.join(ignored) or 'none'))
    delay = float(os.environ.get('FAKE_VLLM_STARTUP_DELAY', '0'))
    if delay > 0:
        time.sleep(delay)
    Handler.state = state
    host = args.host or '0.0.0.0'
    server_class = type('Server', (ThreadingHTTPServer,),
                        {'address_family': socket.AF_INET6 if ':' in host else socket.AF_INET})
    httpd = server_class((host, args.port), Handler)
    httpd.daemon_threads = True
    scheme = 'http'
    if args.ssl_certfile or args.ssl_keyfile:
        if not (args.ssl_certfile and args.ssl_keyfile):
            sys.stderr.write('fake-vllm: --ssl-certfile and --ssl-keyfile go together\n')
            return 2
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.ssl_certfile, args.ssl_keyfile)
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
        scheme = 'https'

    def stop(signum, frame):
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sys.stderr.write('fake-vllm: listening on %s://%s:%d (API key %s)\n'
                     % (scheme, host, args.port, 'required on /v1/*' if state.api_key else 'off'))
    sys.stderr.flush()
    httpd.serve_forever()
    httpd.server_close()
    return 0


if __name__ == '__main__':
    sys.exit(main())
