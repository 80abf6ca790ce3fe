# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``vllm_engine_config`` (the Phoenix config's ModelConfig / CacheConfig / ... sections) -> ``vllm serve`` arguments.

One pure function, used by the ``thinkheads.phoenix.vllm_serve_args`` filter and the vllm role.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import re

# The vLLM release the collection installs and renders for (the vllm role pins the same version).
DEFAULT_VLLM_VERSION = '0.11.0'
# vLLM 0.10 replaced --task with --runner/--convert.
RUNNER_SINCE = (0, 10)

INT, FLOAT, BOOL, STR, STR_OR_LIST, LIST = 'int', 'float', 'bool', 'str', 'str_or_list', 'list'
# section -> key -> kind. Keys not listed are rejected; the schema documents each of them.
KEYS = {
    'ModelConfig': {
        'model': STR, 'tokenizer': STR, 'tokenizer_mode': STR, 'revision': STR, 'tokenizer_revision': STR,
        'trust_remote_code': BOOL, 'dtype': STR, 'max_model_len': INT, 'seed': INT, 'task': STR, 'runner': STR,
        'quantization': STR, 'enforce_eager': BOOL, 'download_dir': STR, 'load_format': STR, 'max_logprobs': INT,
    },
    'CacheConfig': {
        'gpu_memory_utilization': FLOAT, 'swap_space': FLOAT, 'block_size': INT, 'kv_cache_dtype': STR,
        'enable_prefix_caching': BOOL, 'cpu_offload_gb': FLOAT, 'quantization': STR,
    },
    'ParallelConfig': {
        'tensor_parallel_size': INT, 'pipeline_parallel_size': INT, 'data_parallel_size': INT,
        'distributed_executor_backend': STR, 'enable_expert_parallel': BOOL,
    },
    'SchedulerConfig': {
        'max_num_seqs': INT, 'max_num_batched_tokens': INT, 'enable_chunked_prefill': BOOL,
        'scheduling_policy': STR,
    },
    'LoRAConfig': {
        'enable_lora': BOOL, 'max_loras': INT, 'max_lora_rank': INT, 'max_cpu_loras': INT, 'lora_modules': LIST,
    },
    'ServerConfig': {
        'host': STR, 'port': INT, 'served_model_name': STR_OR_LIST, 'api_key': STR, 'api_key_from': STR,
        'uvicorn_log_level': STR, 'ssl_certfile': STR, 'ssl_keyfile': STR, 'ssl_ca_certs': STR, 'root_path': STR,
        'chat_template': STR, 'enable_auto_tool_choice': BOOL, 'tool_call_parser': STR,
    },
}
SECTION_ORDER = ('ModelConfig', 'CacheConfig', 'ParallelConfig', 'SchedulerConfig', 'LoRAConfig', 'ServerConfig')
CHOICES = {
    'dtype': ('auto', 'half', 'float16', 'bfloat16', 'float', 'float32'),
    'runner': ('auto', 'generate', 'pooling', 'draft'),
    'task': ('auto', 'generate', 'embedding', 'embed', 'classify', 'score', 'reward', 'transcription'),
    'tokenizer_mode': ('auto', 'slow', 'mistral', 'custom'),
    'distributed_executor_backend': ('mp', 'ray', 'uni', 'external_launcher'),
    'scheduling_policy': ('fcfs', 'priority'),
    'uvicorn_log_level': ('critical', 'error', 'warning', 'info', 'debug', 'trace'),
}
# Secrets never go on the command line (visible in ps): the role passes them as VLLM_API_KEY.
NOT_ARGS = ('api_key', 'api_key_from', 'model')
# Booleans vLLM parses as --flag / --no-flag; the others are plain store_true flags.
TRI_STATE = ('enable_prefix_caching', 'enable_chunked_prefill')
EMBEDDING_NAME = re.compile(r'(embed|bge-|e5-|gte-|minilm|retriev|rerank)', re.IGNORECASE)


class VllmConfigError(ValueError):
    pass


def parse_version(text):
    parts = re.findall(r'\d+', str(text))
    return tuple(int(p) for p in parts[:3]) if parts else (0,)


def is_embedding(engine_config):
    """Pooling (embedding) model: explicit runner/task, otherwise recognised by the model name."""
    model = engine_config.get('ModelConfig') or {}
    if model.get('runner'):
        return model['runner'] == 'pooling'
    if model.get('task'):
        return model['task'] in ('embed', 'embedding', 'classify', 'score', 'reward')
    return bool(EMBEDDING_NAME.search(str(model.get('model', ''))))


def _check(section, key, kind, value):
    where = '%s.%s' % (section, key)
    if kind == BOOL and not isinstance(value, bool):
        raise VllmConfigError('%s must be true or false, not %r' % (where, value))
    if kind == INT and (isinstance(value, bool) or not isinstance(value, int)):
        raise VllmConfigError('%s must be an integer, not %r' % (where, value))
    if kind == FLOAT and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise VllmConfigError('%s must be a number, not %r' % (where, value))
    if kind == STR and not isinstance(value, str):
        raise VllmConfigError('%s must be a string, not %r' % (where, value))
    names = isinstance(value, list) and value and all(isinstance(v, str) for v in value)
    if kind == STR_OR_LIST and not (isinstance(value, str) or names):
        raise VllmConfigError('%s must be a name or a list of names, not %r' % (where, value))
    if kind == LIST and not isinstance(value, list):
        raise VllmConfigError('%s must be a list, not %r' % (where, value))
    if key in CHOICES and value not in CHOICES[key]:
        raise VllmConfigError('%s is %r; expected one of %s' % (where, value, ', '.join(CHOICES[key])))
    if key == 'gpu_memory_utilization' and not 0 < value <= 1:
        raise VllmConfigError('%s must be in (0, 1], not %r' % (where, value))
    if key in ('tensor_parallel_size', 'pipeline_parallel_size', 'data_parallel_size', 'max_model_len',
               'max_num_seqs', 'max_num_batched_tokens', 'block_size') and value < 1:
        raise VllmConfigError('%s must be at least 1, not %r' % (where, value))
    if key == 'port' and not 1 <= value <= 65535:
        raise VllmConfigError('%s must be a port 1-65535, not %r' % (where, value))


def _flag(key):
    return '--' + key.replace('_', '-')


def serve_args(engine_config, version=DEFAULT_VLLM_VERSION, gpus=None):
    """Arguments after ``vllm serve``: the model first, then one option per configured key.

    Raises VllmConfigError for unknown sections or keys, wrong types and values, a missing model, or a
    parallel layout that needs more GPUs than ``gpus`` (a list of GPU indexes) provides.
    """
    if not isinstance(engine_config, dict):
        raise VllmConfigError('vllm_engine_config must be an object with ModelConfig, CacheConfig, ... sections')
    for section in engine_config:
        if section not in KEYS:
            raise VllmConfigError('unknown vllm_engine_config section %r; known: %s'
                                  % (section, ', '.join(SECTION_ORDER)))
    model = (engine_config.get('ModelConfig') or {}).get('model')
    if not model or not isinstance(model, str):
        raise VllmConfigError('ModelConfig.model is required (a Hugging Face model ID or a local path)')
    runner_era = parse_version(version)[:2] >= RUNNER_SINCE
    args = [model]
    seen_quantization = None
    for section in SECTION_ORDER:
        values = engine_config.get(section) or {}
        if not isinstance(values, dict):
            raise VllmConfigError('%s must be an object' % section)
        for key in values:
            if key not in KEYS[section]:
                raise VllmConfigError('unknown key %s.%s; known keys: %s' % (section, key, ', '.join(KEYS[section])))
        for key, kind in KEYS[section].items():
            if key not in values or values[key] is None or key in NOT_ARGS:
                continue
            value = values[key]
            _check(section, key, kind, value)
            if key in ('task', 'runner'):
                continue  # rendered below, for the target vLLM version
            if key == 'quantization':
                if seen_quantization is not None and seen_quantization != value:
                    raise VllmConfigError('quantization is set twice with different values (%r and %r)'
                                          % (seen_quantization, value))
                if seen_quantization is not None:
                    continue
                seen_quantization = value
            if kind == BOOL:
                if value:
                    args.append(_flag(key))
                elif key in TRI_STATE:
                    args.append('--no-' + key.replace('_', '-'))
            elif kind == STR_OR_LIST:
                args.append(_flag(key))
                args.extend(value if isinstance(value, list) else [value])
            elif kind == LIST:
                args.append(_flag(key))
                args.extend(str(item) for item in value)
            else:
                args.extend([_flag(key), str(value)])
    model_cfg = engine_config.get('ModelConfig') or {}
    if is_embedding(engine_config):
        args.extend(['--runner', 'pooling'] if runner_era else ['--task', 'embed'])
    elif model_cfg.get('runner') and runner_era:
        args.extend(['--runner', model_cfg['runner']])
    elif model_cfg.get('task') and not runner_era:
        args.extend(['--task', model_cfg['task']])
    parallel = engine_config.get('ParallelConfig') or {}
    needed = int(parallel.get('tensor_parallel_size') or 1) * int(parallel.get('pipeline_parallel_size') or 1)
    if gpus and needed > len(gpus):
        raise VllmConfigError('tensor_parallel_size x pipeline_parallel_size = %d GPUs, but the guest has %d (%s)'
                              % (needed, len(gpus), ', '.join(str(g) for g in gpus)))
    return args
