# -*- coding: utf-8 -*-
"""vllm_engine_config -> vllm serve arguments, for every engine config of the reference deployment and etc/."""

import json
import os

import pytest

from phoenix_testlib import ETC, REFERENCE

from ansible_collections.thinkheads.phoenix.plugins.module_utils.vllm import VllmConfigError, serve_args


def engine_configs(etc_dir):
    with open(os.path.join(etc_dir, 'phoenix_lxc_configs.json')) as handle:
        data = json.load(handle)
    return dict((int(k), v['vllm_engine_config']) for k, v in data['lxc_configs'].items() if 'vllm_engine_config' in v)


REFERENCE_CONFIGS = engine_configs(os.path.join(REFERENCE, 'etc'))

EXPECTED = {
    910: ['Qwen/Qwen2.5-7B-Instruct-AWQ', '--trust-remote-code', '--dtype', 'auto', '--max-model-len', '4096',
          '--gpu-memory-utilization', '0.5', '--quantization', 'awq_marlin', '--tensor-parallel-size', '2',
          '--host', '0.0.0.0', '--port', '8000', '--served-model-name', 'qwen2.5-7b-awq'],
    911: ['Qwen/Qwen2-7B-Instruct', '--trust-remote-code', '--dtype', 'auto', '--max-model-len', '8192',
          '--gpu-memory-utilization', '0.9', '--quantization', 'fp8', '--tensor-parallel-size', '1',
          '--host', '0.0.0.0', '--port', '8000', '--served-model-name', 'qwen2-7b-fp8'],
    912: ['Qwen/Qwen2-7B-Instruct', '--trust-remote-code', '--dtype', 'auto', '--max-model-len', '8192',
          '--gpu-memory-utilization', '0.9', '--quantization', 'fp8', '--tensor-parallel-size', '1',
          '--host', '0.0.0.0', '--port', '8000', '--served-model-name', 'qwen2-7b-fp8'],
    801: ['ibm-granite/granite-embedding-english-r2', '--trust-remote-code', '--dtype', 'auto',
          '--max-model-len', '1024', '--gpu-memory-utilization', '0.1', '--tensor-parallel-size', '1',
          '--host', '0.0.0.0', '--port', '8000', '--served-model-name', 'ibm-granite/granite-embedding-english-r2',
          '--runner', 'pooling'],
    802: ['Qwen/Qwen3-4B-Thinking-2507-FP8', '--trust-remote-code', '--dtype', 'auto', '--max-model-len', '2048',
          '--gpu-memory-utilization', '0.85', '--quantization', 'fp8', '--tensor-parallel-size', '1',
          '--host', '0.0.0.0', '--port', '8000', '--served-model-name', 'Qwen3-4B-FP8'],
}


def test_the_table_covers_every_reference_engine_config():
    assert sorted(REFERENCE_CONFIGS) == sorted(EXPECTED)


@pytest.mark.parametrize('guest_id', sorted(EXPECTED))
def test_reference_engine_configs(guest_id):
    assert serve_args(REFERENCE_CONFIGS[guest_id]) == EXPECTED[guest_id]


def test_embedding_models_use_task_embed_before_vllm_0_10():
    args = serve_args(REFERENCE_CONFIGS[801], version='0.9.2')
    assert args[-2:] == ['--task', 'embed'] and '--runner' not in args


def test_project_801_is_an_embedding_server():
    config = engine_configs(ETC)[801]
    args = serve_args(config, gpus=[0])
    assert args[0] == 'ibm-granite/granite-embedding-english-r2'
    assert args[-2:] == ['--runner', 'pooling']
    assert '--api-key' not in args


def test_explicit_runner_wins_over_the_name():
    config = {'ModelConfig': {'model': 'org/some-embedding-model', 'runner': 'generate'}}
    assert serve_args(config) == ['org/some-embedding-model', '--runner', 'generate']


def test_lists_booleans_and_tri_state_flags():
    config = {'ModelConfig': {'model': 'm', 'enforce_eager': False},
              'CacheConfig': {'enable_prefix_caching': False},
              'ServerConfig': {'served_model_name': ['a', 'b'], 'api_key': 'secret'}}
    assert serve_args(config) == ['m', '--no-enable-prefix-caching', '--served-model-name', 'a', 'b']


@pytest.mark.parametrize('config, message', [
    ({'ModelConfig': {'model': 'm', 'max_model_len': '4k'}}, "ModelConfig.max_model_len must be an integer, not '4k'"),
    ({'ModelConfig': {'model': 'm'}, 'CacheConfig': {'gpu_memory_utilization': 1.5}},
     'CacheConfig.gpu_memory_utilization must be in (0, 1], not 1.5'),
    ({'ModelConfig': {'model': 'm', 'dtype': 'fp64'}},
     "ModelConfig.dtype is 'fp64'; expected one of auto, half, float16, bfloat16, float, float32"),
    ({'ModelConfig': {'model': 'm'}, 'ServerConfig': {'prot': 8000}}, 'unknown key ServerConfig.prot; known keys: '
     'host, port, served_model_name, api_key, api_key_from, uvicorn_log_level, ssl_certfile, ssl_keyfile, '
     'ssl_ca_certs, root_path, chat_template, enable_auto_tool_choice, tool_call_parser'),
    ({'ModelConfig': {'model': 'm'}, 'EngineConfig': {}}, "unknown vllm_engine_config section 'EngineConfig'; known: "
     'ModelConfig, CacheConfig, ParallelConfig, SchedulerConfig, LoRAConfig, ServerConfig'),
    ({'CacheConfig': {}}, 'ModelConfig.model is required (a Hugging Face model ID or a local path)'),
    ({'ModelConfig': {'model': 'm', 'quantization': 'awq'}, 'CacheConfig': {'quantization': 'fp8'}},
     "quantization is set twice with different values ('awq' and 'fp8')"),
])
def test_invalid_configs_are_rejected_with_the_key_named(config, message):
    with pytest.raises(VllmConfigError) as info:
        serve_args(config)
    assert str(info.value) == message


def test_parallel_layout_must_fit_the_gpus():
    with pytest.raises(VllmConfigError) as info:
        serve_args(REFERENCE_CONFIGS[910], gpus=[0])
    assert str(info.value) == 'tensor_parallel_size x pipeline_parallel_size = 2 GPUs, but the guest has 1 (0)'
    assert serve_args(REFERENCE_CONFIGS[910], gpus=[0, 1])[0] == 'Qwen/Qwen2.5-7B-Instruct-AWQ'


def test_filter_plugin_through_ansible():
    import subprocess
    import sys
    from phoenix_testlib import REPO
    expression = ("{{ {'ModelConfig': {'model': 'org/x-embedding'}, 'ServerConfig': {'port': 8000}} "
                  "| thinkheads.phoenix.vllm_serve_args(version='0.9.0') | join(' ') }}")
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'), ANSIBLE_LOAD_CALLBACK_PLUGINS='1',
               ANSIBLE_STDOUT_CALLBACK='ansible.posix.json')
    bin_dir = os.path.dirname(sys.executable)
    proc = subprocess.run([os.path.join(bin_dir, 'ansible'), 'localhost', '-i', 'localhost,', '-c', 'local',
                           '-m', 'ansible.builtin.debug', '-a', 'msg="%s"' % expression], cwd=REPO, env=env,
                          capture_output=True, text=True, check=False, timeout=120)
    result = json.loads(proc.stdout)['plays'][0]['tasks'][0]['hosts']['localhost']
    assert result['msg'] == 'org/x-embedding --port 8000 --task embed'
    bad = subprocess.run([os.path.join(bin_dir, 'ansible'), 'localhost', '-i', 'localhost,', '-c', 'local',
                          '-m', 'ansible.builtin.debug', '-a',
                          'msg="{{ {\'ModelConfig\': {}} | thinkheads.phoenix.vllm_serve_args }}"'],
                         cwd=REPO, env=env, capture_output=True, text=True, check=False, timeout=120)
    failed = json.loads(bad.stdout)['plays'][0]['tasks'][0]['hosts']['localhost']
    assert 'vllm_engine_config: ModelConfig.model is required' in failed['msg']
