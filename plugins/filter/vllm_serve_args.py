# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
name: vllm_serve_args
short_description: vllm serve arguments from a Phoenix vllm_engine_config
version_added: 0.1.0
author:
  - Thinkheads platform team (@thinkheads)
description:
  - Renders the C(vllm_engine_config) of a Phoenix guest (sections C(ModelConfig), C(CacheConfig),
    C(ParallelConfig), C(SchedulerConfig), C(LoRAConfig), C(ServerConfig)) into the argument list of
    C(vllm serve), for the given vLLM version.
  - The model comes first. Each key becomes one option (C(max_model_len) -> C(--max-model-len)); true booleans
    become flags. Embedding models (an explicit C(runner=pooling) / C(task=embed), or a model name such as
    C(*-embedding-*)) get C(--runner pooling) on vLLM 0.10 and later and C(--task embed) before.
  - C(api_key) is never rendered (it would be visible in the process list); pass it as C(VLLM_API_KEY).
    Note that vLLM's API key does not protect C(/metrics).
  - Unknown sections or keys, wrong types, out-of-range values and a parallel layout needing more GPUs than
    assigned fail with a message naming the key.
positional: _input
options:
  _input:
    description: The C(vllm_engine_config) object.
    type: dict
    required: true
  version:
    description: The vLLM version the arguments are for.
    type: str
    default: 0.11.0
  gpus:
    description: GPU indexes assigned to the guest (C(phoenix_guest.gpus)), to check the parallel layout.
    type: list
    elements: int
'''

EXAMPLES = r'''
- name: The vllm serve command line
  ansible.builtin.debug:
    msg: "vllm serve {{ phoenix_guest.vllm_engine_config | thinkheads.phoenix.vllm_serve_args(gpus=phoenix_guest.gpus) | map('quote') | join(' ') }}"
'''

RETURN = r'''
_value:
  description: The arguments after C(vllm serve), model first.
  type: list
  elements: str
'''

from ansible.errors import AnsibleFilterError

from ansible_collections.thinkheads.phoenix.plugins.module_utils.vllm import (
    DEFAULT_VLLM_VERSION, VllmConfigError, serve_args,
)


def vllm_serve_args(engine_config, version=DEFAULT_VLLM_VERSION, gpus=None):
    try:
        return serve_args(engine_config, version=version, gpus=gpus)
    except VllmConfigError as exc:
        raise AnsibleFilterError('vllm_engine_config: %s' % exc) from exc


class FilterModule(object):

    def filters(self):
        return {'vllm_serve_args': vllm_serve_args}
