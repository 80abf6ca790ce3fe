# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The REAL vLLM serving etc/ 801's model (ibm-granite/granite-embedding-english-r2) on an NVIDIA GPU.

Skipped unless PHOENIX_GPU_TESTS=1 and ``nvidia-smi`` works. It installs the pinned vLLM into a virtual
environment (reused while it holds that version), starts ``vllm serve`` with the arguments the vllm role renders
(``serve_args()`` of etc/ 801's ``vllm_engine_config``, gpus=[0]), waits for /health, checks /v1/models and that
/v1/embeddings returns 768-dimensional vectors, then stops the server. See docs/roles/vllm.md.

Environment:
  PHOENIX_GPU_TESTS=1     run at all
  PHOENIX_GPU_VLLM        an existing ``vllm`` executable to use instead of installing one
  PHOENIX_GPU_VENV        the virtual environment (default .cache/gpu-tests/vllm-<version>)
  PHOENIX_GPU_PYTHON      interpreter that creates it (default: the one running pytest)
  PHOENIX_GPU_PIP_ARGS    extra pip arguments (a mirror, --find-links for an offline wheelhouse)
  PHOENIX_GPU_HF_HOME     model cache, also the download dir (default .cache/gpu-tests/hf)
  PHOENIX_GPU_INDEX       CUDA device index (default 0)
  PHOENIX_GPU_TIMEOUT     seconds for the model to load and /health to answer (default 900)
"""

import copy
import json
import math
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS = os.path.join(REPO, 'collections')
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)

from ansible_collections.thinkheads.phoenix.plugins.module_utils.vllm import DEFAULT_VLLM_VERSION, serve_args  # noqa: E402

GUEST_ID = '801'
MODEL = 'ibm-granite/granite-embedding-english-r2'
# Embedding size of ibm-granite/granite-embedding-english-r2 (ModernBERT base, hidden size 768), from its model card.
EXPECTED_DIMENSION = 768
GPUS = [0]
CACHE = os.path.join(REPO, '.cache', 'gpu-tests')


def _nvidia_smi():
    """(works, detail) of ``nvidia-smi -L``."""
    try:
        run = subprocess.run(['nvidia-smi', '-L'], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    detail = (run.stdout or run.stderr).strip()
    return run.returncode == 0 and 'GPU' in run.stdout, detail


def _skip_reason():
    if os.environ.get('PHOENIX_GPU_TESTS') != '1':
        return 'real vLLM on a GPU: set PHOENIX_GPU_TESTS=1 on a machine with an NVIDIA GPU (docs/roles/vllm.md)'
    works, detail = _nvidia_smi()
    if not works:
        return 'real vLLM on a GPU: nvidia-smi does not work here (%s)' % (detail or 'no output')
    return None


SKIP_REASON = _skip_reason()
pytestmark = pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or '')


def engine_config_801():
    with open(os.path.join(REPO, 'etc', 'phoenix_lxc_configs.json')) as handle:
        guest = json.load(handle)['lxc_configs'][GUEST_ID]
    config = guest['vllm_engine_config']
    assert config['ModelConfig']['model'] == MODEL, 'etc/ 801 serves %s now: update this test' % config['ModelConfig']['model']
    return config


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def request(url, key=None, payload=None, timeout=120):
    """(status, body text) of a GET (or a POST of JSON when payload is given)."""
    headers = {'Content-Type': 'application/json'} if payload is not None else {}
    if key:
        headers['Authorization'] = 'Bearer ' + key
    data = json.dumps(payload).encode('utf-8') if payload is not None else None
    req = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, response.read().decode('utf-8', 'replace')
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode('utf-8', 'replace')


def tail(path, lines=60):
    try:
        with open(path, errors='replace') as handle:
            return ''.join(handle.readlines()[-lines:])
    except OSError:
        return ''


@pytest.fixture(scope='module')
def vllm_executable():
    """The pinned vLLM: PHOENIX_GPU_VLLM, or a venv holding vllm==DEFAULT_VLLM_VERSION (installed when missing)."""
    given = os.environ.get('PHOENIX_GPU_VLLM')
    if given:
        return given
    venv = os.environ.get('PHOENIX_GPU_VENV') or os.path.join(CACHE, 'vllm-' + DEFAULT_VLLM_VERSION)
    python = os.path.join(venv, 'bin', 'python')
    probe = [python, '-c', 'import vllm, sys; sys.stdout.write(vllm.__version__)']
    if os.path.exists(python):
        have = subprocess.run(probe, capture_output=True, text=True, check=False).stdout.strip()
        if have == DEFAULT_VLLM_VERSION:
            return os.path.join(venv, 'bin', 'vllm')
    creator = os.environ.get('PHOENIX_GPU_PYTHON') or sys.executable
    subprocess.run([creator, '-m', 'venv', venv], check=True)
    pip = [python, '-m', 'pip', 'install', '--disable-pip-version-check', 'vllm==' + DEFAULT_VLLM_VERSION]
    pip += shlex.split(os.environ.get('PHOENIX_GPU_PIP_ARGS', ''))
    run = subprocess.run(pip, capture_output=True, text=True, check=False, timeout=3600)
    if run.returncode != 0:
        pytest.fail('pip could not install vllm==%s into %s:\n%s' % (DEFAULT_VLLM_VERSION, venv, (run.stdout + run.stderr)[-4000:]))
    return os.path.join(venv, 'bin', 'vllm')


@pytest.fixture(scope='module')
def server(vllm_executable, tmp_path_factory):
    """``vllm serve`` with the role's arguments for etc/ 801, on a free local port, with an API key."""
    config = copy.deepcopy(engine_config_801())
    hf_home = os.environ.get('PHOENIX_GPU_HF_HOME') or os.path.join(CACHE, 'hf')
    os.makedirs(hf_home, exist_ok=True)
    port = free_port()
    # Local overrides only: where models are cached (the guest's /vllm_models volume) and where to listen.
    config['ModelConfig']['download_dir'] = hf_home
    config['ServerConfig'].update({'host': '127.0.0.1', 'port': port})
    args = serve_args(config, version=DEFAULT_VLLM_VERSION, gpus=GPUS)
    assert args[0] == MODEL and args[args.index('--runner') + 1] == 'pooling'
    key = secrets.token_hex(16)
    env = dict(os.environ, HF_HOME=hf_home, VLLM_API_KEY=key, VLLM_NO_USAGE_STATS='1', DO_NOT_TRACK='1',
               CUDA_VISIBLE_DEVICES=os.environ.get('PHOENIX_GPU_INDEX', '0'))
    log_path = str(tmp_path_factory.mktemp('vllm') / 'vllm-serve.log')
    command = [vllm_executable, 'serve'] + args
    with open(log_path, 'w') as log:
        log.write('$ %s\n' % ' '.join(shlex.quote(c) for c in command))
        log.flush()
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    base = 'http://127.0.0.1:%d' % port
    try:
        deadline = time.time() + int(os.environ.get('PHOENIX_GPU_TIMEOUT', '900'))
        last = 'no answer yet'
        while True:
            if proc.poll() is not None:
                pytest.fail('vllm serve exited with %s before /health answered; log %s:\n%s'
                            % (proc.returncode, log_path, tail(log_path)))
            try:
                status, body = request(base + '/health', timeout=5)
                if status == 200:
                    break
                last = 'HTTP %d %s' % (status, body[:200])
            except (OSError, urllib.error.URLError) as exc:
                last = str(exc)
            if time.time() > deadline:
                pytest.fail('GET %s/health did not answer 200 in time (last: %s); log %s:\n%s'
                            % (base, last, log_path, tail(log_path)))
            time.sleep(2)
        yield {'base': base, 'key': key, 'args': args, 'log': log_path}
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)


def test_health(server):
    assert request(server['base'] + '/health')[0] == 200


def test_models_lists_the_served_model_name(server):
    status, body = request(server['base'] + '/v1/models', key=server['key'])
    assert status == 200, body
    names = [model['id'] for model in json.loads(body)['data']]
    assert engine_config_801()['ServerConfig']['served_model_name'] in names


def test_embeddings_have_the_model_dimension(server):
    name = engine_config_801()['ServerConfig']['served_model_name']
    status, body = request(server['base'] + '/v1/embeddings', key=server['key'],
                           payload={'model': name, 'input': ['Proxmox hypervisor', 'vLLM embedding server']})
    assert status == 200, body
    vectors = [item['embedding'] for item in json.loads(body)['data']]
    assert len(vectors) == 2
    assert [len(v) for v in vectors] == [EXPECTED_DIMENSION, EXPECTED_DIMENSION], \
        'granite-embedding-english-r2 returned dimension %d, expected %d' % (len(vectors[0]), EXPECTED_DIMENSION)
    assert all(math.isfinite(x) for v in vectors for x in v)
    assert vectors[0] != vectors[1]


def test_api_key_guards_v1_but_not_metrics(server):
    assert request(server['base'] + '/v1/models')[0] == 401
    assert request(server['base'] + '/v1/models', key='wrong')[0] == 401
    # documented in docs/roles/vllm.md: the API key does not protect /metrics
    assert request(server['base'] + '/metrics')[0] == 200
