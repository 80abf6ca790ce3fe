# -*- coding: utf-8 -*-
# Copyright: (c) 2025, ThinkHeads
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""JSON Schemas (draft-07) for every Phoenix configuration file.

These schemas are the field reference for users: every property carries a
``description`` that says what the field means and how the collection uses it.
They are compiled by the config loader twice, with ``jsonschema.Draft7Validator``
(complete error reports) and with ``fastjsonschema`` (fast path), so only
draft-07 keywords are used and no ``format`` keyword is relied upon (the two
libraries treat ``format`` differently); patterns carry the checks instead.

Shape checks live here. Checks that need more than one value (unique IDs,
MAC and IP addresses, dependency cycles, references between files) live in
the config model.

Each shared part (firewall rule, network config, Traefik service, stack
environment, vLLM engine config, ...) is defined once in ``_DEFINITIONS``; every
schema carries the definitions it references under ``definitions``.

``scripts/export_schemas.py`` writes these dicts to ``etc/schemas/*.schema.json``.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import copy

SCHEMA_DIALECT = "http://json-schema.org/draft-07/schema#"
SCHEMA_BASE_URI = "https://thinkheads.ai/phoenix/schemas/"

# ---------------------------------------------------------------------------
# Patterns
# ---------------------------------------------------------------------------

_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_IPV4 = r"(" + _OCTET + r"\.){3}" + _OCTET
_PREFIX = r"(3[0-2]|[12]?[0-9])"

IPV4_PATTERN = "^" + _IPV4 + "$"
IPV4_CIDR_PATTERN = "^" + _IPV4 + "/" + _PREFIX + "$"
# A guest address: IPv4 with prefix length, or let DHCP / the guest decide.
GUEST_IP_PATTERN = "^(dhcp|manual|" + _IPV4 + "(/" + _PREFIX + ")?)$"
NAMESERVERS_PATTERN = "^" + _IPV4 + "([ ,]+" + _IPV4 + ")*$"
MAC_PATTERN = r"^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$"
# Guest IDs as Proxmox accepts them: 100 .. 999999999.
GUEST_ID_PATTERN = r"^[1-9][0-9]{2,8}$"
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
DOMAIN_PATTERN = "^(" + _LABEL + r"\.)+[A-Za-z]{2,63}$"
HOSTNAME_PATTERN = r"^(\*\.)?" + _LABEL + r"(\." + _LABEL + ")*$"
GUEST_NAME_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,61}[A-Za-z0-9])?$"
DNS_LABEL_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
IDENTIFIER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"
FEATURE_PATTERN = r"^[a-z][a-z0-9_]*$"
ANSIBLE_VAR_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
ENV_VAR_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
ABSOLUTE_PATH_PATTERN = r"^/"
URL_PATTERN = r"^https?://[^\s/]+(/\S*)?$"
HTTPS_FILE_URL_PATTERN = r"^https://[^\s/?#]+/\S+$"
HEX_PATTERN = r"^[0-9A-Fa-f]+$"
# Proxmox's download-url checksum-algorithm enum (pve-storage src/PVE/API2/Storage/Status.pm download_url)
CHECKSUM_ALGORITHMS = ["md5", "sha1", "sha224", "sha256", "sha384", "sha512"]
FW_ACTION_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]*$"
FW_PROTO_PATTERN = r"^[a-z0-9-]+$|^[0-9]+$"
# Only the rough shape of a port spec: the config model checks the numbers, ranges and lists itself
# (with clear messages, and without rejecting the whole guest for one bad rule).
_PORT_ITEM = r"[A-Za-z0-9][A-Za-z0-9-]*(:[0-9]+)?"
FW_PORT_PATTERN = r"^" + _PORT_ITEM + r"( ?, ?" + _PORT_ITEM + r")*$"
GPU_ASSIGNMENT_PATTERN = r"^(none|[0-9]+( ?, ?[0-9]+)*)$"
SNAPSHOT_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]*$"
OCTAL_MODE_PATTERN = r"^[0-7]{3,4}$"
OWNER_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?$"
TRAEFIK_LABEL_PATTERN = r"^traefik\.[^=\s]+=.*$"
PORT_MAPPING_PATTERN = r"^[0-9]{1,5}:[0-9]{1,5}$"
VERSION_PATTERN = r"^[0-9]+(\.[0-9]+)*([.+-][0-9A-Za-z.+-]+)?$"
TIMEZONE_PATTERN = r"^[A-Za-z_]+(/[A-Za-z0-9_+-]+)*$"

# What a value must look like, for the config model's messages about a pattern mismatch
# ("'abc' is not a guest ID: ..."). A pattern without a hint is explained by the first sentence
# of the field's description, so such descriptions start with the format.
PATTERN_HINTS = {
    GUEST_ID_PATTERN: "a guest ID: guest IDs are integers from 100 to 999999999",
    MAC_PATTERN: "a MAC address (expected six hex octets such as 52:54:00:AA:BB:CC)",
    GUEST_NAME_PATTERN: (
        "a valid guest name (letters, digits, '.' and '-', starting and ending with a letter or "
        "digit, at most 63 characters)"
    ),
    DNS_LABEL_PATTERN: (
        "a DNS label (lower-case letters, digits and '-', starting and ending with a letter or "
        "digit, at most 63 characters)"
    ),
    DOMAIN_PATTERN: "a domain name such as internal.example.com",
    HOSTNAME_PATTERN: "a host name such as portainer.internal.example.com",
    IDENTIFIER_PATTERN: "a valid name (letters, digits, '_' and '-', starting with a letter or digit)",
    FEATURE_PATTERN: "a feature name (lower-case letters, digits and '_', starting with a letter)",
    ENV_VAR_PATTERN: "a variable name (letters, digits and '_', not starting with a digit)",
    FW_ACTION_PATTERN: "a valid name (letters, digits, '_' and '-', starting with a letter)",
    TRAEFIK_LABEL_PATTERN: "a Traefik label 'traefik.<key>=<value>'",
    HTTPS_FILE_URL_PATTERN: "an https URL of a file (https://host/path/file)",
    HEX_PATTERN: "a hexadecimal checksum",
}

FIREWALL_LOG_LEVELS = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug", "nolog"]
FIREWALL_POLICIES = ["ACCEPT", "DROP", "REJECT"]
PORTAINER_ROLES = ["primary", "agent", "infrastructure", "none"]
VLLM_DTYPES = ["auto", "half", "float16", "bfloat16", "float", "float32"]

MAX_GUEST_ID = 999999999
# a Proxmox node name (pve-node: a host name without the domain)
NODE_PATTERN = r"^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$"
STORAGE_ID_PATTERN = r"^[A-Za-z][A-Za-z0-9_.-]*$"


def _ref(name, description):
    """A property that points at a shared definition (description kept for readers)."""
    return {"$ref": "#/definitions/" + name, "description": description}


def _array(items, description, **extra):
    schema = {"type": "array", "description": description, "items": items}
    schema.update(extra)
    return schema


def _string(description, **extra):
    schema = {"type": "string", "description": description}
    schema.update(extra)
    return schema


def _boolean(description):
    return {"type": "boolean", "description": description}


def _integer(description, **extra):
    schema = {"type": "integer", "description": description}
    schema.update(extra)
    return schema


def _object(description, properties, required=None, additional=False):
    schema = {
        "type": "object",
        "description": description,
        "properties": properties,
        "additionalProperties": additional,
    }
    if required:
        schema["required"] = list(required)
    return schema


def _merge(*dicts):
    """Merge property dicts into a new dict (later keys win)."""
    merged = {}
    for item in dicts:
        merged.update(copy.deepcopy(item))
    return merged


# ---------------------------------------------------------------------------
# Shared definitions (each defined once)
# ---------------------------------------------------------------------------

_FIREWALL_RULE = {
    "type": "object",
    "description": (
        "One Proxmox VE firewall rule. Guest rules go to the guest's firewall, hypervisor "
        "rules to the cluster firewall, stack rules to the firewall of every guest that runs "
        "the stack. The rule set in the configs is authoritative: rules the collection "
        "manages that are not listed here are removed on the next sync."
    ),
    "properties": {
        "type": {
            "type": "string",
            "enum": ["in", "out", "group", "forward"],
            "description": (
                "Direction: 'in' (traffic to the guest or host), 'out' (traffic from it), "
                "'forward' (routed traffic, host level only) or 'group' (insert the security "
                "group named by 'action')."
            ),
        },
        "action": {
            "type": "string",
            "pattern": FW_ACTION_PATTERN,
            "minLength": 2,
            "maxLength": 20,
            "description": (
                "What to do with matching packets: ACCEPT, DROP or REJECT. For type 'group' "
                "this is the name of the security group to insert instead."
            ),
        },
        "proto": {
            "type": "string",
            "pattern": FW_PROTO_PATTERN,
            "description": (
                "IP protocol, as a name from /etc/protocols (tcp, udp, icmp, ipv6-icmp, ...) "
                "or a protocol number. Omit it to match every protocol."
            ),
        },
        "port": _ref(
            "port_spec",
            "Destination port(s) to match; same as 'dport' and kept because existing configs "
            "use it. Sent to Proxmox as dport. Needs proto tcp or udp.",
        ),
        "dport": _ref("port_spec", "Destination port(s) to match. Needs proto tcp or udp."),
        "sport": _ref("port_spec", "Source port(s) to match. Needs proto tcp or udp."),
        "source": _string(
            "Source address to match: an IP address, a CIDR network, a range "
            "(a.b.c.d-a.b.c.e), an IP set ('+name'), an alias, or a comma separated list of "
            "those. Omit it to match any source.",
            minLength=1,
            maxLength=512,
        ),
        "dest": _string(
            "Destination address to match, in the same forms as 'source'. Omit it to match "
            "any destination.",
            minLength=1,
            maxLength=512,
        ),
        "iface": _string(
            "Interface to match. For guests use the Proxmox interface key (net0, net1, ...); "
            "for host rules any host interface name.",
            pattern=r"^[A-Za-z0-9_.-]+$",
            minLength=2,
            maxLength=20,
        ),
        "macro": _string(
            "Name of a Proxmox firewall macro (for example SSH, HTTPS, DNS) that supplies "
            "protocol and ports.",
            pattern=r"^[A-Za-z0-9_-]+$",
            maxLength=128,
        ),
        "icmp_type": _string(
            "ICMP type to match (name or number); sent to Proxmox as icmp-type. Only valid "
            "with proto icmp or ipv6-icmp.",
            pattern=r"^[a-z0-9-]+$",
        ),
        "log": {
            "type": "string",
            "enum": FIREWALL_LOG_LEVELS,
            "description": "Log level for packets matching this rule; 'nolog' disables logging.",
        },
        "enabled": _boolean(
            "Whether the rule is active. Defaults to true; a disabled rule is still written "
            "to Proxmox, so it can be switched on without reordering."
        ),
        "comment": _string(
            "Free text shown next to the rule in the Proxmox UI. The collection also uses it "
            "to recognise the rules it manages."
        ),
    },
    "required": ["type", "action"],
    "additionalProperties": False,
    # 'port' and 'dport' are the same field; a rule with both is reported by the config model, which
    # says so in words (a schema 'not' can only print the whole rule).
    # Plain rules take one of the three verdicts; only 'group' rules name a group.
    "if": {
        "properties": {"type": {"enum": ["in", "out", "forward"]}},
        "required": ["type"],
    },
    "then": {"properties": {"action": {"enum": FIREWALL_POLICIES}}},
}

_PORT_SPEC = {
    "description": (
        "A port as an integer (1-65535), or a string holding a port number, a range "
        "'first:last' or a comma separated list of those (for example \"80,443\" or "
        "\"8000:8010\"). Service names are not accepted."
    ),
    "type": ["integer", "string"],
    "minimum": 1,
    "maximum": 65535,
    "pattern": FW_PORT_PATTERN,
}

_GUEST_FIREWALL = _object(
    "Per-guest firewall. When present and enabled, the collection turns on the Proxmox "
    "firewall for the guest and its network interface and converges the rule list.",
    {
        "enabled": _boolean(
            "Whether the guest firewall is switched on. Defaults to true when the section "
            "is present."
        ),
        "policy_in": {
            "type": "string",
            "enum": FIREWALL_POLICIES,
            "description": "Policy for incoming traffic no rule matched. Proxmox default: DROP.",
        },
        "policy_out": {
            "type": "string",
            "enum": FIREWALL_POLICIES,
            "description": "Policy for outgoing traffic no rule matched. Proxmox default: ACCEPT.",
        },
        "rules": _array(
            {"$ref": "#/definitions/firewall_rule"},
            "Rules for this guest, in order; the first match wins.",
        ),
    },
)

_CLUSTER_FIREWALL = _object(
    "Cluster-level (datacenter) firewall of the Proxmox host: default policies, rules that "
    "apply to the hypervisor itself, and security groups that guest rules can insert with "
    "type 'group'.",
    {
        "enabled": _boolean("Whether the datacenter firewall is switched on."),
        "default_input_policy": {
            "type": "string",
            "enum": FIREWALL_POLICIES,
            "description": "Policy for incoming traffic that no rule matched (Proxmox policy_in).",
        },
        "default_output_policy": {
            "type": "string",
            "enum": FIREWALL_POLICIES,
            "description": "Policy for outgoing traffic that no rule matched (Proxmox policy_out).",
        },
        "global_firewall_rules": _array(
            {"$ref": "#/definitions/firewall_rule"},
            "Rules applied at datacenter level, in order; the first match wins.",
        ),
        "security_groups": {
            "type": "object",
            "description": (
                "Named security groups, keyed by group name. A rule of type 'group' whose "
                "action is the group name inserts the group's rules."
            ),
            "propertyNames": {"pattern": FW_ACTION_PATTERN, "maxLength": 18},
            "additionalProperties": _object(
                "One security group.",
                {
                    "comment": _string("Free text shown for the group in the Proxmox UI."),
                    "rules": _array(
                        {"$ref": "#/definitions/firewall_rule"},
                        "Rules of the group, in order.",
                    ),
                },
            ),
        },
    },
)

_NETWORK_CONFIG = _object(
    "The guest's first network interface (net0). For containers it becomes the Proxmox "
    "net0 setting; for VMs the cloud-init ipconfig0 and nameserver settings.",
    {
        "name": _string(
            "Interface name inside a container (for example eth0). Defaults to eth0.",
            pattern=r"^[A-Za-z][A-Za-z0-9_.-]{0,14}$",
        ),
        "bridge": _string(
            "Proxmox bridge the interface is attached to (for example vmbr0). Defaults to "
            "the hypervisor's network.interfaces.name (VMs: vm_defaults.network_bridge).",
            pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$",
        ),
        "ip": _string(
            "IPv4 address, with or without prefix length (10.0.0.12/24 or 10.0.0.12: the "
            "hypervisor subnet's prefix is used), or 'dhcp', or 'manual'. A "
            "static address (without the prefix) is also what the inventory uses as the "
            "guest's ansible_host and what DNS records and firewall rules point at.",
            pattern=GUEST_IP_PATTERN,
        ),
        "gw": _string("IPv4 default gateway.", pattern=IPV4_PATTERN),
        "nameservers": _string(
            "DNS server address(es) for the guest, separated by spaces or commas.",
            pattern=NAMESERVERS_PATTERN,
        ),
        "nameserver": _string(
            "Same as 'nameservers'; the spelling the VM configs use.",
            pattern=NAMESERVERS_PATTERN,
        ),
    },
    required=["ip"],
)

_TRAEFIK_SERVICE = _object(
    "Publishes the guest's service through the internal Traefik proxy. The sync writes a "
    "Traefik router for Host(`<name>.<domain_name>`) on the TLS entrypoint, a service "
    "pointing at the guest's IP and port, a DNS record for the host name and a certificate "
    "from Step-CA.",
    {
        "name": _string(
            "Service name: the router and service name in Traefik and the first label of "
            "the host name (<name>.<domain_name>). Must be unique across all guests.",
            pattern=DNS_LABEL_PATTERN,
        ),
        "port": _integer(
            "Port the service listens on inside the guest.", minimum=1, maximum=65535
        ),
        "scheme": {
            "type": "string",
            "enum": ["http", "https"],
            "description": (
                "Protocol Traefik uses to reach the guest. Defaults to http; use https for "
                "services that terminate TLS themselves (such as Portainer on 9443)."
            ),
        },
    },
    required=["name", "port"],
)

_VLLM_SECTION_NOTE = (
    " Each key is rendered as the vLLM command line option of the same name with "
    "underscores turned into dashes (booleans as flags)."
)

_VLLM_ENGINE_CONFIG = _object(
    "vLLM engine settings for a guest with the 'vllm' feature. The sections only group the "
    "options the way vLLM's engine arguments are grouped; the collection flattens them into "
    "the arguments of the vLLM OpenAI-compatible server it runs as a systemd service.",
    {
        "ModelConfig": _object(
            "Which model to serve and how to load it." + _VLLM_SECTION_NOTE,
            {
                "model": _string(
                    "Hugging Face model ID (organisation/name) or a local path of the model "
                    "to serve.",
                    minLength=1,
                ),
                "tokenizer": _string(
                    "Hugging Face ID or path of the tokenizer, if it differs from the model.",
                    minLength=1,
                ),
                "tokenizer_mode": {
                    "type": "string",
                    "enum": ["auto", "slow", "mistral", "custom"],
                    "description": "Tokenizer implementation to use.",
                },
                "revision": _string(
                    "Model revision (branch, tag or commit) to download.", minLength=1
                ),
                "tokenizer_revision": _string(
                    "Tokenizer revision (branch, tag or commit) to download.", minLength=1
                ),
                "trust_remote_code": _boolean(
                    "Allow the model repository's own Python code to run when loading it."
                ),
                "dtype": {
                    "type": "string",
                    "enum": VLLM_DTYPES,
                    "description": "Data type of the weights and activations; 'auto' uses the model's.",
                },
                "max_model_len": _integer(
                    "Context length in tokens; defaults to the model's own limit.", minimum=1
                ),
                "seed": _integer("Random seed.", minimum=0),
                "task": _string(
                    "Task to serve the model for in older vLLM releases (auto, generate, "
                    "embed, classify, score, reward, ...).",
                    pattern=r"^[a-z_]+$",
                ),
                "runner": {
                    "type": "string",
                    "enum": ["auto", "generate", "pooling", "draft"],
                    "description": (
                        "Model runner in newer vLLM releases: 'pooling' for embedding "
                        "models, 'generate' for text generation."
                    ),
                },
                "quantization": _string(
                    "Quantization method of the weights (awq, awq_marlin, gptq, fp8, "
                    "bitsandbytes, ...).",
                    pattern=r"^[a-z0-9_-]+$",
                ),
                "enforce_eager": _boolean(
                    "Always run in eager mode (no CUDA graphs): less memory, slower."
                ),
                "download_dir": _string(
                    "Directory inside the guest where model weights are downloaded and "
                    "cached (for example the mount point of a zfs_volumes entry).",
                    pattern=ABSOLUTE_PATH_PATTERN,
                ),
                "load_format": _string(
                    "Format of the weights to load (auto, safetensors, pt, ...).",
                    pattern=r"^[a-z0-9_-]+$",
                ),
                "max_logprobs": _integer(
                    "Largest number of log probabilities a request may ask for.", minimum=0
                ),
            },
            required=["model"],
        ),
        "CacheConfig": _object(
            "GPU memory and KV cache settings." + _VLLM_SECTION_NOTE,
            {
                "gpu_memory_utilization": {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "maximum": 1,
                    "description": (
                        "Fraction of each GPU's memory vLLM may use (0 < x <= 1). Guests "
                        "that share a GPU must together stay below 1."
                    ),
                },
                "swap_space": {
                    "type": "number",
                    "minimum": 0,
                    "description": "CPU swap space per GPU, in GiB.",
                },
                "block_size": _integer("KV cache block size in tokens.", minimum=1),
                "kv_cache_dtype": _string(
                    "Data type of the KV cache: auto, or an fp8 variant (fp8, fp8_e4m3, "
                    "fp8_e5m2).",
                    pattern=r"^[a-z0-9_]+$",
                ),
                "enable_prefix_caching": _boolean("Reuse the KV cache of shared prompt prefixes."),
                "cpu_offload_gb": {
                    "type": "number",
                    "minimum": 0,
                    "description": "GiB of model weights per GPU to keep in CPU memory.",
                },
                "quantization": _string(
                    "Quantization method of the weights; same option as "
                    "ModelConfig.quantization, accepted here because existing configs put "
                    "it here.",
                    pattern=r"^[a-z0-9_-]+$",
                ),
            },
        ),
        "ParallelConfig": _object(
            "How the model is spread over GPUs." + _VLLM_SECTION_NOTE,
            {
                "tensor_parallel_size": _integer(
                    "Number of GPUs the model is split across (tensor parallelism); must not "
                    "exceed the number of GPUs in gpu_assignment.",
                    minimum=1,
                ),
                "pipeline_parallel_size": _integer(
                    "Number of pipeline stages (pipeline parallelism).", minimum=1
                ),
                "data_parallel_size": _integer(
                    "Number of data parallel replicas.", minimum=1
                ),
                "distributed_executor_backend": {
                    "type": "string",
                    "enum": ["mp", "ray", "uni", "external_launcher"],
                    "description": "Backend that runs the distributed workers.",
                },
                "enable_expert_parallel": _boolean(
                    "Use expert parallelism for mixture-of-experts layers."
                ),
            },
        ),
        "SchedulerConfig": _object(
            "Request batching and scheduling." + _VLLM_SECTION_NOTE,
            {
                "max_num_seqs": _integer(
                    "Largest number of sequences processed in one batch.", minimum=1
                ),
                "max_num_batched_tokens": _integer(
                    "Largest number of tokens processed in one batch.", minimum=1
                ),
                "enable_chunked_prefill": _boolean("Split long prompt prefills into chunks."),
                "scheduling_policy": {
                    "type": "string",
                    "enum": ["fcfs", "priority"],
                    "description": "Order in which waiting requests are scheduled.",
                },
            },
        ),
        "LoRAConfig": _object(
            "LoRA adapter serving." + _VLLM_SECTION_NOTE,
            {
                "enable_lora": _boolean("Allow LoRA adapters to be served."),
                "max_loras": _integer("Largest number of adapters in one batch.", minimum=1),
                "max_lora_rank": _integer("Largest LoRA rank supported.", minimum=1),
                "max_cpu_loras": _integer(
                    "Largest number of adapters kept in CPU memory.", minimum=1
                ),
                "lora_modules": _array(
                    _string(
                        "An adapter as 'name=path_or_hf_id'.", pattern=r"^[^=\s]+=\S+$"
                    ),
                    "Adapters to load at start.",
                ),
            },
        ),
        "ServerConfig": _object(
            "The OpenAI-compatible HTTP server." + _VLLM_SECTION_NOTE,
            {
                "host": _string(
                    "Address the server binds to inside the guest (0.0.0.0 for all).",
                    minLength=1,
                ),
                "port": _integer(
                    "Port the server listens on; traefik_service.port should match.",
                    minimum=1,
                    maximum=65535,
                ),
                "served_model_name": {
                    "description": (
                        "Model name(s) clients use in API requests; defaults to the model "
                        "ID. The first name is also used in health checks."
                    ),
                    "type": ["string", "array"],
                    "minLength": 1,
                    "minItems": 1,
                    "items": {"type": "string", "minLength": 1},
                },
                "api_key": _string(
                    "API key clients must send. Avoid putting a real key in the configs: "
                    "use api_key_from instead.",
                    minLength=1,
                ),
                "api_key_from": _string(
                    "Name of the Ansible variable (for example a vault variable) that holds "
                    "the API key. Not a vLLM option: the collection reads the variable and "
                    "passes its value as --api-key without logging it.",
                    pattern=ANSIBLE_VAR_PATTERN,
                ),
                "uvicorn_log_level": {
                    "type": "string",
                    "enum": ["critical", "error", "warning", "info", "debug", "trace"],
                    "description": "Log level of the HTTP server.",
                },
                "ssl_certfile": _string(
                    "Certificate file inside the guest for serving HTTPS directly.",
                    pattern=ABSOLUTE_PATH_PATTERN,
                ),
                "ssl_keyfile": _string(
                    "Private key file inside the guest for serving HTTPS directly.",
                    pattern=ABSOLUTE_PATH_PATTERN,
                ),
                "ssl_ca_certs": _string(
                    "CA bundle inside the guest used to verify client certificates.",
                    pattern=ABSOLUTE_PATH_PATTERN,
                ),
                "root_path": _string("URL path prefix when served behind a path-based proxy."),
                "chat_template": _string(
                    "Chat template file (or inline template) overriding the model's own."
                ),
                "enable_auto_tool_choice": _boolean(
                    "Let the model decide when to call tools (needs tool_call_parser)."
                ),
                "tool_call_parser": _string(
                    "Parser that turns model output into tool calls (for example hermes).",
                    pattern=r"^[A-Za-z0-9_-]+$",
                ),
            },
        ),
    },
    required=["ModelConfig"],
)
# A key given both literally and by variable is ambiguous.
_VLLM_ENGINE_CONFIG["properties"]["ServerConfig"]["not"] = {"required": ["api_key", "api_key_from"]}

_TEST_SUITES = {
    "type": "object",
    "description": (
        "Test suites keyed by suite name (for example integration_tests). The health "
        "playbook runs them after the guest or host is converged."
    ),
    "additionalProperties": _array(
        _object(
            "One test.",
            {
                "name": _string("Human readable test name.", minLength=1),
                "type": _string("How the test is run; 'script' runs 'path'.", minLength=1),
                "path": _string(
                    "Test script, relative to the collection's test scripts directory.",
                    minLength=1,
                ),
            },
            required=["name", "type", "path"],
        ),
        "Tests of this suite, run in order.",
    ),
}

_HEALTH_CHECK = _object(
    "Command the health playbook runs to decide whether the guest's service is up.",
    {
        "command": _string("Command (with arguments) to run; exit status 0 means healthy.", minLength=1),
        "retries": _integer("How many times to retry before reporting failure.", minimum=0),
        "interval": _integer("Seconds to wait between tries.", minimum=1),
    },
    required=["command"],
)

_DNS_RECORD = _object(
    "An extra DNS A record served by the platform's DNS server.",
    {
        "hostname": _string(
            "Host name; a name without dots is placed under domain_name.",
            pattern=HOSTNAME_PATTERN,
        ),
        "ip": _string("IPv4 address the name resolves to.", pattern=IPV4_PATTERN),
    },
    required=["hostname", "ip"],
)

_GUEST_ID = {
    "description": (
        "A Proxmox guest ID (100-999999999), as an integer or a string of digits."
    ),
    "type": ["integer", "string"],
    "minimum": 100,
    "maximum": MAX_GUEST_ID,
    "pattern": GUEST_ID_PATTERN,
}

_STACK_VARIABLE = {
    "type": "object",
    "description": (
        "One environment variable passed to the stack when it is deployed through Portainer. "
        "Give either a literal 'value' or 'value_from'; secrets must use 'value_from'."
    ),
    "properties": {
        "name": _string("Variable name, as referenced in the Compose file.", pattern=ENV_VAR_PATTERN),
        "value": {
            "type": ["string", "number", "boolean"],
            "description": "Literal value; numbers and booleans are passed as their text.",
        },
        "value_from": _string(
            "Name of the Ansible variable (usually a vault variable) that holds the value. "
            "The collection looks it up at deploy time; it never appears in the configs.",
            pattern=ANSIBLE_VAR_PATTERN,
        ),
        "secret": _boolean(
            "Marks the value as secret: it is never logged or shown in diffs, and it must "
            "come from 'value_from' (a literal 'value' is rejected)."
        ),
    },
    "required": ["name"],
    "additionalProperties": False,
    "oneOf": [
        {"required": ["value"]},
        {"required": ["value_from"]},
    ],
    # A secret must not be written literally into the configs.
    "if": {"properties": {"secret": {"const": True}}, "required": ["secret"]},
    "then": {"required": ["value_from"], "properties": {"value": False}},
}

_STACK_FILE = _object(
    "A file shipped with the stack as a Docker config and mounted into the service.",
    {
        "source": _string(
            "Path of the file, relative to the stack's directory (stacks/<name>/) unless "
            "absolute.",
            minLength=1,
        ),
        "destination_in_container": _string(
            "Absolute path where the file appears inside the container.",
            pattern=ABSOLUTE_PATH_PATTERN,
        ),
    },
    required=["source", "destination_in_container"],
)

_STACK_ENVIRONMENT = _object(
    "Settings of a stack for one environment (production, testing, development, ...).",
    {
        "variables": _array(
            {"$ref": "#/definitions/stack_variable"},
            "Environment variables for the stack's Compose file.",
        ),
        "files": _array(
            {"$ref": "#/definitions/stack_file"},
            "Files mounted into the stack's services.",
        ),
        "services": {
            "type": "object",
            "description": (
                "Per-service settings keyed by the service name in the Compose file."
            ),
            "propertyNames": {"pattern": r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"},
            "additionalProperties": _object(
                "Settings for one Compose service.",
                {
                    "traefik_labels": _array(
                        _string("One label, 'traefik.<key>=<value>'.", pattern=TRAEFIK_LABEL_PATTERN),
                        "Traefik labels added to the service's deploy labels, so that "
                        "Traefik routes to it. Router and service names must be unique "
                        "across all stacks.",
                    ),
                },
            ),
        },
        "firewall_rules": _array(
            {"$ref": "#/definitions/firewall_rule"},
            "Firewall rules added to every guest that runs the stack in this environment.",
        ),
    },
)

_STACK_ENVIRONMENTS = {
    "type": "object",
    "description": (
        "Per-environment settings keyed by environment name. A guest's docker_stacks entry "
        "picks the environment; plain stack names use 'production'."
    ),
    "propertyNames": {"pattern": IDENTIFIER_PATTERN},
    "additionalProperties": {"$ref": "#/definitions/stack_environment"},
}

# One schema for both forms (keywords only apply to their own type), so that
# errors point at the actual problem instead of "not valid under any schema".
_DOCKER_STACK_REF = {
    "description": (
        "A stack to deploy on this guest: its name as a string (a key of docker_stacks or a "
        "directory under stacks/, deployed with the 'production' environment), or an "
        "object {name, environment}."
    ),
    "type": ["string", "object"],
    "pattern": IDENTIFIER_PATTERN,
    "properties": {
        "name": _string("Stack name.", pattern=IDENTIFIER_PATTERN),
        "environment": _string(
            "Environment of the stack to deploy; defaults to production.",
            pattern=IDENTIFIER_PATTERN,
        ),
    },
    "required": ["name"],
    "additionalProperties": False,
}

_MOUNT_POINT = _object(
    "A host directory bind-mounted into the container (a Proxmox mpN entry).",
    {
        "host_path": _string(
            "Directory on the hypervisor; created if missing.", pattern=ABSOLUTE_PATH_PATTERN
        ),
        "container_path": _string(
            "Where the directory appears inside the container.", pattern=ABSOLUTE_PATH_PATTERN
        ),
        "owner_uid": _integer(
            "Owner of host_path, as the UID inside the container (mapped to the host UID "
            "for unprivileged containers).",
            minimum=0,
        ),
        "owner_gid": _integer(
            "Group of host_path, as the GID inside the container (mapped likewise).",
            minimum=0,
        ),
        "read_only": _boolean("Mount read-only inside the container."),
    },
    required=["host_path", "container_path"],
)

_ZFS_VOLUME = _object(
    "A dedicated volume allocated on a Proxmox storage and mounted into the container.",
    {
        "name": _string(
            "Volume name, unique within the guest.", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
        ),
        "pool": _string(
            "Proxmox storage ID that holds the volume (a zfspool storage).",
            pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$",
        ),
        "size_gb": _integer("Volume size in GiB.", minimum=1),
        "mount_point": _string(
            "Where the volume appears inside the container.", pattern=ABSOLUTE_PATH_PATTERN
        ),
    },
    required=["name", "pool", "size_gb", "mount_point"],
)

_ID_MAP = _object(
    "A UID or GID range mapped 1:1 between container and host (lxc.idmap), for unprivileged "
    "containers that share files with the host.",
    {
        "type": {
            "type": "string",
            "enum": ["uid", "gid"],
            "description": "Whether user IDs or group IDs are mapped.",
        },
        "container_id": _integer("First ID inside the container.", minimum=0),
        "host_id": _integer("First ID on the host.", minimum=0),
        "size": _integer("Number of consecutive IDs mapped.", minimum=1),
    },
    required=["type", "container_id", "host_id", "size"],
)

_VM_VOLUME = _object(
    "A network share mounted inside the VM by cloud-init / the base setup.",
    {
        "type": {
            "type": "string",
            "enum": ["nfs"],
            "description": "Share type; only NFS is supported.",
        },
        "name": _string("Volume name, unique within the VM.", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"),
        "path": _string("Exported path on the NFS server.", pattern=ABSOLUTE_PATH_PATTERN),
        "mount_point": _string("Where the share is mounted inside the VM.", pattern=ABSOLUTE_PATH_PATTERN),
        "server": _string("Address or host name of the NFS server.", minLength=1),
    },
    required=["type", "name", "path", "mount_point", "server"],
)

_DEFINITIONS = {
    "port_spec": _PORT_SPEC,
    "firewall_rule": _FIREWALL_RULE,
    "guest_firewall": _GUEST_FIREWALL,
    "cluster_firewall": _CLUSTER_FIREWALL,
    "network_config": _NETWORK_CONFIG,
    "traefik_service": _TRAEFIK_SERVICE,
    "vllm_engine_config": _VLLM_ENGINE_CONFIG,
    "test_suites": _TEST_SUITES,
    "health_check": _HEALTH_CHECK,
    "dns_record": _DNS_RECORD,
    "guest_id": _GUEST_ID,
    "stack_variable": _STACK_VARIABLE,
    "stack_file": _STACK_FILE,
    "stack_environment": _STACK_ENVIRONMENT,
    "stack_environments": _STACK_ENVIRONMENTS,
    "docker_stack_ref": _DOCKER_STACK_REF,
    "mount_point": _MOUNT_POINT,
    "zfs_volume": _ZFS_VOLUME,
    "id_map": _ID_MAP,
    "vm_volume": _VM_VOLUME,
}

# ---------------------------------------------------------------------------
# Properties shared by LXC containers and VMs
# ---------------------------------------------------------------------------

_SCHEMA_KEY = {
    "$schema": _string(
        "Optional pointer to the JSON Schema of this file, for editors. Ignored by the "
        "collection."
    ),
}

_GUEST_COMMON = {
    "node": _string(
        "Proxmox node the guest lives on, in a cluster. Default: cluster.node of the "
        "hypervisor config, else the node the playbooks connect to (phoenix_pve_node, "
        "PHOENIX_PVE_NODE, pve). Must be one of cluster.nodes when that lists the nodes. A "
        "guest found on another node is reported; -e phoenix_migrate=true migrates it back.",
        pattern=NODE_PATTERN,
    ),
    "name": _string(
        "Guest name; also its host name in Proxmox and its inventory host name.",
        pattern=GUEST_NAME_PATTERN,
    ),
    "cores": _integer("Number of CPU cores.", minimum=1, maximum=8192),
    "memory_mb": _integer("Memory in MiB.", minimum=16),
    "storage_pool": _string(
        "Proxmox storage ID for the root disk (for example quickOS-lxc-disks).",
        pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$",
    ),
    "start_at_boot": _boolean("Start the guest when the hypervisor boots (Proxmox onboot)."),
    "boot_order": _integer(
        "Start order at hypervisor boot; lower starts first (Proxmox startup order).",
        minimum=0,
    ),
    "boot_delay": _integer(
        "Seconds to wait after starting this guest before starting the next one (Proxmox "
        "startup up=).",
        minimum=0,
    ),
    "features": _array(
        _string("A feature name.", pattern=FEATURE_PATTERN),
        "Features applied to the guest after it is created, in order. Features with a role in "
        "the collection: step_ca, trusted_ca, traefik, nginx and nginx_gateway (the nginx_gateway role), "
        "docker, nvidia, vllm. Others (base_setup, step_cli, ollama, ...) are accepted for existing "
        "configs and set nothing up. The inventory also puts the guest in a 'feature_<name>' group for each.",
        uniqueItems=True,
    ),
    "network_config": _ref("network_config", "The guest's network interface."),
    "mac_address": _string(
        "Fixed MAC address of the network interface: six hex octets separated by colons "
        "(52:54:00:AA:BB:CC). Must be unique across all guests and unicast.",
        pattern=MAC_PATTERN,
    ),
    "firewall": _ref("guest_firewall", "The guest's firewall settings and rules."),
    "dependencies": _array(
        {"$ref": "#/definitions/guest_id"},
        "IDs of guests (containers or VMs) that must exist and run before this one is "
        "created or started. Together they must form a graph without cycles; create and "
        "site playbooks order guests by it.",
        uniqueItems=True,
    ),
    "portainer_role": {
        "type": "string",
        "enum": PORTAINER_ROLES,
        "description": (
            "Role in Portainer: 'primary' runs the Portainer server (Swarm manager), "
            "'agent' runs the Portainer agent and is registered as an environment, "
            "'infrastructure' marks platform services outside Portainer, 'none' (the "
            "default) leaves the guest out of Portainer."
        ),
    },
    "portainer_environment_name": _string(
        "Name of the Portainer environment an agent guest is registered as; defaults to the "
        "guest name.",
        minLength=1,
    ),
    "portainer_agent_hostname": _string(
        "Host name Portainer uses to reach this agent; defaults to the guest's IP address.",
        pattern=HOSTNAME_PATTERN,
    ),
    "traefik_service": _ref("traefik_service", "Route to this guest's service through Traefik."),
    "dns_records": _array(
        {"$ref": "#/definitions/dns_record"},
        "Extra DNS records to serve for this guest, besides its name and traefik_service.",
    ),
    "trigger_sync_on_completion": _boolean(
        "Run the sync (DNS, Traefik, gateway, certificates, firewall, stacks) after this "
        "guest is created by the create playbook."
    ),
    "is_template": _boolean(
        "The guest is a template: it is built once, snapshotted and converted into a "
        "Proxmox template that other guests clone from. Templates are not started, "
        "routed or synced."
    ),
    "template_snapshot_name": _string(
        "Name of the clean state other guests are cloned from. A guest with this field is "
        "treated as a clone source (template) even without is_template. Proxmox cannot convert "
        "a guest with snapshots into a template, nor snapshot a template, so the collection "
        "converts the guest into a Proxmox template and takes no snapshot: the template is that "
        "clean state.",
        pattern=SNAPSHOT_NAME_PATTERN,
    ),
    "tests": _ref("test_suites", "Tests the health playbook runs against this guest."),
    "health_check": _ref("health_check", "How the health playbook checks this guest."),
    "docker_stacks": _array(
        {"$ref": "#/definitions/docker_stack_ref"},
        "Docker stacks deployed on this guest through Portainer. The guest needs the 'docker' "
        "feature (the config model reports an error without it) and a Portainer role of "
        "primary or agent.",
    ),
}

_LXC_ONLY = {
    "swap_mb": _integer("Swap in MiB.", minimum=0),
    "template": _string(
        "OS template the container is created from when it is not cloned: a Proxmox volume "
        "ID (storage:vztmpl/file) or a path to the template archive on the hypervisor.",
        minLength=1,
    ),
    "template_url": _string(
        "https URL Proxmox downloads 'template' from when the template storage lacks it (without "
        "it, Proxmox's appliance index is searched for the file name).",
        pattern=HTTPS_FILE_URL_PATTERN,
    ),
    "template_checksum": _string(
        "Hex checksum of the file at template_url; Proxmox verifies it after the download.",
        pattern=HEX_PATTERN,
    ),
    "template_checksum_algorithm": _string("Algorithm of template_checksum.", enum=CHECKSUM_ALGORITHMS),
    "storage_size_gb": _integer("Root disk size in GiB.", minimum=1),
    "unprivileged": _boolean("Run as an unprivileged container (recommended). Defaults to true."),
    "clone_from_ctid": _ref(
        "guest_id",
        "ID of the container template to clone from (its template_snapshot_name snapshot, "
        "if it has one). Without it the container is created from 'template'.",
    ),
    "gpu_assignment": _string(
        "GPUs passed into the container: 'none', or a comma separated list of NVIDIA GPU "
        "indices such as '0' or '0,1'. Needs the 'nvidia' (or 'vllm') feature on this "
        "container itself: a clone does not inherit the features of its template.",
        pattern=GPU_ASSIGNMENT_PATTERN,
    ),
    "pct_options": _array(
        _string("One option, 'key=value' (for example nesting=1).", pattern=r"^[a-z0-9_-]+=\S*$"),
        "Container features passed to Proxmox (the 'features' setting of the container).",
    ),
    "lxc_options": _array(
        _string("One raw LXC setting, such as lxc.apparmor.profile=unconfined.", pattern=r"^lxc\.\S"),
        "Raw lxc.* lines appended to the container's configuration file on the hypervisor.",
    ),
    "apparmor_profile": _string(
        "AppArmor profile of the container; 'unconfined' disables confinement (written as "
        "lxc.apparmor.profile).",
        minLength=1,
    ),
    "apparmor_manages_nesting": _boolean(
        "The AppArmor profile already allows nesting, so the collection does not set the "
        "Proxmox nesting=1 feature."
    ),
    "enable_lifecycle_snapshots": _boolean(
        "Take snapshots during creation (after the base OS and when complete) so a failed "
        "feature can be rolled back."
    ),
    "application_script": _string(
        "Script run by the shell-based Phoenix to start the guest's service. Accepted for "
        "existing configs; the collection sets services up through the roles named in "
        "'features' and does not run it.",
        minLength=1,
    ),
    "bootstrap_ca_url": _string(
        "URL of the Step-CA the container trusts and requests certificates from during "
        "bootstrap, before internal DNS is available (for example https://10.0.0.10:9000).",
        pattern=URL_PATTERN,
    ),
    "ports": _array(
        _string("A port, 'published:internal'.", pattern=PORT_MAPPING_PATTERN),
        "Ports the guest's service listens on. Informational: containers have their own "
        "address, so no port forwarding is set up; access is granted by firewall rules.",
    ),
    "vllm_engine_config": _ref("vllm_engine_config", "vLLM engine settings (feature 'vllm')."),
    "zfs_volumes": _array(
        {"$ref": "#/definitions/zfs_volume"},
        "Dedicated volumes allocated and mounted into the container (for example a model "
        "cache).",
    ),
    "mount_points": _array(
        {"$ref": "#/definitions/mount_point"},
        "Host directories bind-mounted into the container.",
    ),
    "id_maps": _array(
        {"$ref": "#/definitions/id_map"},
        "UID/GID ranges mapped between container and host (unprivileged containers).",
    ),
}

_VM_ONLY = {
    "vmid": _integer("Proxmox VM ID; must be unique across containers and VMs.", minimum=100, maximum=MAX_GUEST_ID),
    "clone_from_vmid": _ref(
        "guest_id",
        "ID of the VM template to clone from (its template_snapshot_name snapshot, if it has "
        "one).",
    ),
    "template_image": _string(
        "Cloud image file a VM that is not cloned is built from (for example "
        "noble-server-cloudimg-amd64.img): its boot disk is imported from it. The create playbook "
        "looks for it as 'import' content of the image storage (a .img name is stored as .qcow2, "
        "or the extension of template_image_format) and, when it is missing, has Proxmox download "
        "it from template_image_url (or the playbook variable phoenix_images).",
        minLength=1,
    ),
    "template_image_url": _string(
        "https URL Proxmox downloads template_image from when the storage lacks it.",
        pattern=HTTPS_FILE_URL_PATTERN,
    ),
    "template_image_checksum": _string(
        "Hex checksum of the file at template_image_url; Proxmox verifies it after the download.",
        pattern=HEX_PATTERN,
    ),
    "template_image_checksum_algorithm": _string(
        "Algorithm of template_image_checksum.", enum=CHECKSUM_ALGORITHMS,
    ),
    "template_image_format": _string(
        "Disk format of template_image (Ubuntu's and Debian's .img cloud images are qcow2, the "
        "default); names the 'import' volume it is stored as.",
        enum=["qcow2", "raw", "vmdk"],
    ),
    "disk_size_gb": _integer("Size of the VM's disk in GiB.", minimum=1),
    "network_bridge": _string(
        "Proxmox bridge of the VM's network interface; defaults to vm_defaults.network_bridge.",
        pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$",
    ),
    "user_config": _object(
        "Cloud-init user of the VM.",
        {
            "username": _string(
                "Login user cloud-init creates; the inventory uses it as ansible_user.",
                pattern=r"^[a-z_][a-z0-9_-]*$",
            ),
            "ssh_authorized_keys": _array(
                _string("A public key line.", pattern=r"^(ssh|ecdsa|sk-)\S+ \S+"),
                "Public SSH keys authorised for the user.",
            ),
        },
        required=["username"],
    ),
    "volumes": _array(
        {"$ref": "#/definitions/vm_volume"},
        "Network shares mounted inside the VM.",
    ),
}

_LXC_GUEST = {
    "type": "object",
    "description": (
        "One LXC container. Unknown keys are accepted (with a warning from the config model) "
        "so that configs written for newer versions still load."
    ),
    "properties": _merge(_GUEST_COMMON, _LXC_ONLY),
    "required": ["name", "memory_mb", "cores", "network_config"],
    "additionalProperties": True,
}

_VM_GUEST = {
    "type": "object",
    "description": (
        "One virtual machine. Settings left out come from vm_defaults. Unknown keys are "
        "accepted (with a warning from the config model)."
    ),
    "properties": _merge(_GUEST_COMMON, _VM_ONLY),
    "required": ["vmid", "name"],
    "additionalProperties": True,
}

# vm_defaults takes every VM setting except the VM's identity; each default is copied into the
# VMs that do not set it, so it is typed exactly like the VM field it stands for.
_VM_DEFAULTS = {
    "type": "object",
    "description": (
        "Defaults for every VM in 'vms' that does not set the field itself. Any VM setting "
        "except vmid and name may be given here, with the same type as in a VM; a VM's own "
        "value replaces the default as a whole (objects and lists are not merged)."
    ),
    "properties": _merge(
        dict((k, v) for k, v in _merge(_GUEST_COMMON, _VM_ONLY).items() if k not in ("vmid", "name")),
        {
            "template": _string("Name of the default OS template the VMs are based on.", minLength=1),
            "cores": _integer("Default number of CPU cores.", minimum=1, maximum=8192),
            "memory_mb": _integer("Default memory in MiB.", minimum=16),
            "disk_size_gb": _integer("Default disk size in GiB.", minimum=1),
            "storage_pool": _string(
                "Default Proxmox storage ID for VM disks.", pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$"
            ),
            "network_bridge": _string(
                "Default Proxmox bridge for VM interfaces.", pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$"
            ),
        },
    ),
    "additionalProperties": True,
}

_DEFINITIONS["lxc_guest"] = _LXC_GUEST
_DEFINITIONS["vm_guest"] = _VM_GUEST

# ---------------------------------------------------------------------------
# Hypervisor sections
# ---------------------------------------------------------------------------

_IPV4_STRING = {"type": "string", "pattern": IPV4_PATTERN, "description": "An IPv4 address."}

_HYPERVISOR_NETWORK = {
    "type": "object",
    "description": "Network of the hypervisor and the addresses of central services.",
    "properties": {
        "interfaces": _object(
            "The hypervisor's bridge that guests attach to.",
            {
                "name": _string(
                    "Bridge name (for example vmbr0); the default bridge of guests.",
                    pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$",
                ),
                "address": _string(
                    "Hypervisor address with prefix length (10.0.0.13/24); also the address "
                    "the inventory uses for the hypervisor host.",
                    pattern=IPV4_CIDR_PATTERN,
                ),
                "gateway": _string("Default gateway of the network.", pattern=IPV4_PATTERN),
                "dns_nameservers": _array(
                    _IPV4_STRING, "DNS servers the hypervisor itself uses, in order."
                ),
            },
            required=["name", "address"],
        ),
        "default_subnet": _string(
            "The guest network in CIDR form (10.0.0.0/24); guest addresses must lie in it "
            "and firewall rules use it as 'the internal network'.",
            pattern=IPV4_CIDR_PATTERN,
        ),
        "portainer_server_ip": _string(
            "Address of the Portainer server (the guest with portainer_role primary).",
            pattern=IPV4_PATTERN,
        ),
        "portainer_server_port": _integer(
            "HTTPS port of the Portainer server.", minimum=1, maximum=65535
        ),
        "portainer_agent_port": _integer(
            "Port of the Portainer agents.", minimum=1, maximum=65535
        ),
        "external_registry_url": _string(
            "Container registry (and namespace) images are pulled from and pushed to.",
            minLength=1,
        ),
        "nfs_server": _string("Address of the NFS server VM volumes use.", pattern=IPV4_PATTERN),
        "fallback_dns": _string(
            "DNS server used when the internal DNS is not up yet.", pattern=IPV4_PATTERN
        ),
    },
    "additionalProperties": True,
}

_CLUSTER = _object(
    "The Proxmox VE cluster the guests are placed on. Optional: without it every guest lives on "
    "the node the playbooks connect to (a single host).",
    {
        "node": _string(
            "Node of every guest that does not name its own (guest field node).",
            pattern=NODE_PATTERN,
        ),
        "nodes": {
            "type": "object",
            "description": (
                "The cluster's nodes by name. A guest's node must be one of them; a node that "
                "lists its GPUs takes only guests whose gpu_assignment it has."
            ),
            "propertyNames": {"pattern": NODE_PATTERN},
            "additionalProperties": _object(
                "One node of the cluster.",
                {
                    "gpus": _array(
                        _integer("A GPU index (/dev/nvidia<N>) on this node.", minimum=0),
                        "GPU indexes this node has; omit when unknown (then not checked).",
                        uniqueItems=True,
                    ),
                    "description": _string("Free text; informational."),
                },
            ),
        },
        "shared_storages": _array(
            _string("A Proxmox storage ID.", pattern=STORAGE_ID_PATTERN),
            "Storages every node sees (Proxmox 'shared'). A guest cloned onto another node than "
            "its clone source's needs the source's disks and its own storage_pool on one of "
            "them (Proxmox clones across nodes only from shared storage).",
            uniqueItems=True,
        ),
    },
)

_HYPERVISOR_PROPERTIES = {
    "cluster": _CLUSTER,
    "version": _string("Version of this configuration file's format.", pattern=VERSION_PATTERN),
    "author": _string("Who maintains the configuration; informational."),
    "domain_name": _string(
        "Internal DNS domain. Guests, Traefik routes (<name>.<domain_name>) and "
        "certificates live under it.",
        pattern=DOMAIN_PATTERN,
    ),
    "timezone": _string(
        "Time zone of the hypervisor and guests (for example America/New_York).",
        pattern=TIMEZONE_PATTERN,
    ),
    "users": {
        "type": "object",
        "description": "The administrative user created on the hypervisor.",
        "properties": {
            "username": _string("Login name.", pattern=r"^[a-z_][a-z0-9_-]*$"),
            "password_hash": _string(
                "Crypt hash of the password, or NOT_SET to leave the password unset. Never "
                "a clear-text password."
            ),
            "sudo_access": _boolean("Grant the user sudo rights."),
            "ssh_public_key": _string("Public SSH key authorised for the user; empty for none."),
        },
        "additionalProperties": True,
    },
    "core_paths": {
        "type": "object",
        "description": (
            "File locations used by the shell-based Phoenix on the hypervisor. Accepted for "
            "existing configs; the collection reads its configs from the inventory source "
            "instead."
        ),
        "properties": {
            "lxc_config_file": _string("Path of the LXC configs file."),
            "lxc_config_schema_file": _string("Path of the LXC configs schema."),
            "vm_config_file": _string("Path of the VM configs file."),
            "hf_token_file": _string(
                "Path of the file holding the Hugging Face token (the collection takes the "
                "token from a vault variable)."
            ),
            "docker_token_file": _string(
                "Path of the file holding the registry token (the collection takes it from a "
                "vault variable)."
            ),
            "docker_images_path": _string("Directory of locally stored Docker images."),
            "hypervisor_marker_dir": _string("Directory of the initialisation marker."),
            "hypervisor_marker": _string("Marker file written once the hypervisor is set up."),
        },
        "additionalProperties": {"type": "string", "description": "Another path."},
    },
    "network": _HYPERVISOR_NETWORK,
    "docker": {
        "type": "object",
        "description": "Container images of the platform's own services.",
        "properties": {
            "portainer_server_image": _string("Image of the Portainer server.", minLength=1),
            "portainer_agent_image": _string("Image of the Portainer agent.", minLength=1),
        },
        "additionalProperties": True,
    },
    "nfs": {
        "type": "object",
        "description": "NFS exports served by the hypervisor (for VM volumes).",
        "properties": {
            "exports": _array(
                _object(
                    "One export.",
                    {
                        "path": _string(
                            "Exported directory (a dataset path such as "
                            "/quickOS/vm-persistent-data).",
                            pattern=ABSOLUTE_PATH_PATTERN,
                        ),
                        "clients": _array(
                            _string("Client address or network.", minLength=1),
                            "Clients allowed to mount the export.",
                        ),
                        "options": _array(
                            _string("One export option (rw, sync, ...).", pattern=r"^[a-z_][a-z0-9_=]*$"),
                            "Export options applied to every client.",
                        ),
                    },
                    required=["path", "clients"],
                ),
                "Exports written to /etc/exports.",
            ),
        },
        "additionalProperties": True,
    },
    "samba": {
        "type": "object",
        "description": "Samba shares served by the hypervisor.",
        "properties": {
            "user": _string("Samba user that owns the shares.", minLength=1),
            "shares": _array(
                _object(
                    "One share.",
                    {
                        "name": _string("Share name.", minLength=1),
                        "path": _string(
                            "Dataset (pool/dataset) or directory shared; dataset names are "
                            "resolved under mount_point_base.",
                            minLength=1,
                        ),
                        "options": _string(
                            "Extra smb.conf options as space separated key=value pairs."
                        ),
                        "valid_users": _array(
                            _string("A user name.", minLength=1), "Users allowed to connect."
                        ),
                    },
                    required=["name", "path"],
                ),
                "Shares written to smb.conf.",
            ),
        },
        "additionalProperties": True,
    },
    "zfs": {
        "type": "object",
        "description": "ZFS pools and datasets on the hypervisor and their Proxmox storages.",
        "properties": {
            "arc_max_gb": _integer("Upper limit of the ZFS ARC cache in GiB.", minimum=1),
            "pools": _array(
                _object(
                    "One pool. Existing pools are never recreated.",
                    {
                        "name": _string("Pool name.", pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$"),
                        "raid_level": {
                            "type": "string",
                            "enum": ["single", "mirror", "raidz", "raidz1", "raidz2", "raidz3"],
                            "description": "Layout of the pool's disks.",
                        },
                        "disks": _array(
                            _string("Disk by stable path.", pattern=ABSOLUTE_PATH_PATTERN),
                            "Disks of the pool, by /dev/disk/by-id path.",
                            minItems=1,
                        ),
                    },
                    required=["name", "raid_level", "disks"],
                ),
                "Pools to create if missing.",
            ),
            "datasets": _array(
                _object(
                    "One dataset and the Proxmox storage that uses it.",
                    {
                        "name": _string("Dataset name inside the pool.", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"),
                        "pool": _string("Pool holding the dataset.", pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$"),
                        "properties": _string(
                            "ZFS properties as comma separated key=value pairs "
                            "(recordsize=16K,compression=lz4,...)."
                        ),
                        "proxmox_storage_type": {
                            "type": "string",
                            "enum": ["zfspool", "dir"],
                            "description": (
                                "Type of the Proxmox storage created for the dataset; its ID "
                                "is <pool>-<name>."
                            ),
                        },
                        "proxmox_content_type": _string(
                            "Content types of the storage, comma separated (images, rootdir, "
                            "backup, iso, vztmpl, ...).",
                            pattern=r"^[a-z]+(,[a-z]+)*$",
                        ),
                        "storage_class": {
                            "type": "string",
                            "enum": ["direct", "shared"],
                            "description": (
                                "'direct' for guest disks, 'shared' for data shared between "
                                "guests and the host."
                            ),
                        },
                    },
                    required=["name", "pool"],
                ),
                "Datasets to create if missing and register as Proxmox storages.",
            ),
        },
        "additionalProperties": True,
    },
    "proxmox_storage_ids": {
        "type": "object",
        "description": (
            "Names for the Proxmox storage IDs the collection needs, keyed by purpose "
            "(quickos_vm, quickos_lxc, fastData_shared_iso, ...)."
        ),
        "additionalProperties": _string(
            "A Proxmox storage ID.", pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$"
        ),
    },
    "mount_point_base": _string(
        "Directory under which datasets are mounted on the hypervisor (/mnt/pve).",
        pattern=ABSOLUTE_PATH_PATTERN,
    ),
    "proxmox_defaults": {
        "type": "object",
        "description": "Defaults of the shell-based Phoenix for new containers. Accepted for existing "
                       "configs; the collection fills no container field from them (every LXC gives cores and "
                       "memory_mb itself, as its schema requires).",
        "properties": {
            "zfs_lxc_pool": _string("Dataset holding container disks.", minLength=1),
            "lxc": {
                "type": "object",
                "description": "Container defaults.",
                "properties": {
                    "cores": _integer("Default CPU cores.", minimum=1),
                    "memory_mb": _integer("Default memory in MiB.", minimum=16),
                    "network_config": _string(
                        "Default network as 'ip/prefix,gateway,nameserver'."
                    ),
                    "features": _string("Default Proxmox container features (nesting=1)."),
                    "security": _string("Default security profile name."),
                    "nesting": _integer("Default nesting flag (0 or 1).", minimum=0, maximum=1),
                },
                "additionalProperties": True,
            },
        },
        "additionalProperties": True,
    },
    "tests": _ref("test_suites", "Tests the health playbook runs against the hypervisor."),
    "nvidia_driver": {
        "type": "object",
        "description": "NVIDIA driver on the hypervisor, shared with GPU containers.",
        "properties": {
            "install": _boolean("Install the driver (hosts without GPUs set false)."),
            "version": _string(
                "Driver version; GPU containers get the user-space part of the same version.",
                pattern=VERSION_PATTERN,
            ),
            "runfile_url": _string("URL of the driver's .run installer.", pattern=URL_PATTERN),
            "cuda_version": _string("CUDA toolkit version to install.", pattern=VERSION_PATTERN),
            "install_vllm_libs": _boolean("Install the libraries vLLM containers need."),
        },
        "additionalProperties": True,
    },
    "behavior": {
        "type": "object",
        "description": "Run-time switches of the shell-based Phoenix.",
        "properties": {
            "rollback_on_failure": _boolean(
                "Roll a guest back to its last lifecycle snapshot when creation fails."
            ),
            "debug_mode": _boolean("Verbose output."),
        },
        "additionalProperties": True,
    },
    "shared_volumes": {
        "type": "object",
        "description": (
            "Host directories shared into containers, keyed by volume name. Existing configs "
            "also keep the cluster firewall here under the key 'firewall'; the collection "
            "reads it from there when the top-level 'firewall' is absent."
        ),
        "properties": {
            "firewall": _ref(
                "cluster_firewall",
                "Cluster firewall (older location; prefer the top-level 'firewall').",
            ),
        },
        "propertyNames": {"pattern": r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"},
        "additionalProperties": _object(
            "One shared volume.",
            {
                "host_path": _string("Directory on the hypervisor.", pattern=ABSOLUTE_PATH_PATTERN),
                "mounts": {
                    "type": "object",
                    "description": (
                        "Where the directory is mounted, keyed by container ID; the value is "
                        "the path inside that container."
                    ),
                    "propertyNames": {"pattern": GUEST_ID_PATTERN},
                    "additionalProperties": _string(
                        "Path inside the container.", pattern=ABSOLUTE_PATH_PATTERN
                    ),
                },
            },
            required=["host_path"],
        ),
    },
    "firewall": _ref("cluster_firewall", "Cluster-level firewall of the Proxmox host."),
    "portainer_api": {
        "type": "object",
        "description": (
            "How the collection reaches the Portainer API. The admin password is not kept "
            "here: it comes from an Ansible (vault) variable."
        ),
        "properties": {
            "admin_user": _string("Portainer administrator user.", minLength=1),
            "admin_password": _string(
                "Accepted for existing configs only; do not store passwords in the configs. "
                "The config model warns when it is set."
            ),
            "portainer_hostname": _string(
                "Host name of the Portainer API (routed through Traefik).",
                pattern=HOSTNAME_PATTERN,
            ),
        },
        "additionalProperties": True,
    },
    "vm_defaults": {
        "type": "object",
        "description": "Hypervisor-wide VM settings.",
        "properties": {
            "ubuntu_release": _string(
                "Ubuntu release whose cloud image VM templates use (for example noble).",
                pattern=r"^[a-z]+$",
            ),
        },
        "additionalProperties": True,
    },
    "dns_server": {
        "type": "object",
        "description": (
            "Internal DNS server on the hypervisor. It serves a record for every guest and "
            "every Traefik route under domain_name and forwards other queries upstream."
        ),
        "properties": {
            "enabled": _boolean("Run the internal DNS server."),
            "upstream_servers": _array(_IPV4_STRING, "Servers other queries are forwarded to."),
            "authoritative_zones": _array(
                {
                    "description": "A zone name, or an object describing the zone.",
                    "type": ["string", "object"],
                },
                "Extra zones the server answers for besides domain_name.",
            ),
        },
        "additionalProperties": True,
    },
    "step_ca": {
        "type": "object",
        "description": (
            "The internal certificate authority (Step-CA) that issues every internal "
            "certificate."
        ),
        "properties": {
            "root_ca_name": _string("Common name of the root CA.", minLength=1),
            "intermediate_ca_name": _string("Common name of the intermediate CA.", minLength=1),
            "dns_name": _string(
                "Host name of the CA; certificates are requested from https://<dns_name>:9000.",
                pattern=HOSTNAME_PATTERN,
            ),
            "provisioner_name": _string(
                "Name of the JWK provisioner used to issue certificates; its password comes "
                "from an Ansible (vault) variable.",
                minLength=1,
            ),
        },
        "additionalProperties": True,
    },
}

# ---------------------------------------------------------------------------
# Schema assembly
# ---------------------------------------------------------------------------


def _collect_refs(node, found):
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/definitions/"):
            found.add(ref[len("#/definitions/"):])
        for value in node.values():
            _collect_refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _collect_refs(value, found)


def _build(file_id, title, description, body):
    """Make a complete schema with the definitions it references (transitively)."""
    needed = set()
    _collect_refs(body, needed)
    pending = list(needed)
    while pending:
        name = pending.pop()
        found = set()
        _collect_refs(_DEFINITIONS[name], found)
        for item in found - needed:
            needed.add(item)
            pending.append(item)
    schema = {
        "$schema": SCHEMA_DIALECT,
        "$id": SCHEMA_BASE_URI + file_id + ".schema.json",
        "title": title,
        "description": description,
    }
    schema.update(copy.deepcopy(body))
    if needed:
        schema["definitions"] = dict(
            (name, copy.deepcopy(_DEFINITIONS[name])) for name in sorted(needed)
        )
    return schema


HYPERVISOR_SCHEMA = _build(
    "phoenix_hypervisor_config",
    "Phoenix hypervisor configuration",
    "etc/phoenix_hypervisor_config.json: the Proxmox host, its network, storage, DNS, "
    "certificate authority, Portainer access and cluster firewall. Unknown keys are "
    "accepted (with a warning from the config model).",
    {
        "type": "object",
        "properties": _merge(_SCHEMA_KEY, _HYPERVISOR_PROPERTIES),
        "required": ["domain_name"],
        "additionalProperties": True,
    },
)

LXC_SCHEMA = _build(
    "phoenix_lxc_configs",
    "Phoenix LXC container configuration",
    "etc/phoenix_lxc_configs.json: every LXC container of the platform, keyed by container ID.",
    {
        "type": "object",
        "properties": _merge(
            _SCHEMA_KEY,
            {
                "nvidia_driver_version": _string(
                    "NVIDIA driver version GPU containers install in user space; must match "
                    "the hypervisor's driver (nvidia_driver.version).",
                    pattern=VERSION_PATTERN,
                ),
                "nvidia_repo_url": _string(
                    "APT repository of NVIDIA CUDA packages for GPU containers.",
                    pattern=URL_PATTERN,
                ),
                "nvidia_runfile_url": _string(
                    "URL of the NVIDIA driver .run installer used inside GPU containers.",
                    pattern=URL_PATTERN,
                ),
                "lxc_configs": {
                    "type": "object",
                    "description": (
                        "Containers keyed by container ID (100-999999999, as a string). The "
                        "ID is the Proxmox CTID and the inventory host's guest ID."
                    ),
                    # propertyNames (not patternProperties) so that a bad key is reported as
                    # a bad key, at its own path, and the other containers still load.
                    "propertyNames": {"pattern": GUEST_ID_PATTERN},
                    "additionalProperties": {"$ref": "#/definitions/lxc_guest"},
                },
            },
        ),
        "required": ["lxc_configs"],
        "additionalProperties": True,
    },
)

VM_SCHEMA = _build(
    "phoenix_vm_configs",
    "Phoenix VM configuration",
    "etc/phoenix_vm_configs.json: every QEMU virtual machine of the platform, plus defaults.",
    {
        "type": "object",
        "properties": _merge(
            _SCHEMA_KEY,
            {
                "vm_defaults": _VM_DEFAULTS,
                "vms": _array(
                    {"$ref": "#/definitions/vm_guest"},
                    "The virtual machines; each vmid must be unique.",
                ),
            },
        ),
        "required": ["vms"],
        "additionalProperties": True,
    },
)

_STACK_COMMON = {
    "description": _string("What the stack does; shown in Portainer and the health table."),
    "environments": _ref("stack_environments", "Per-environment settings of the stack."),
}

STACKS_SCHEMA = _build(
    "phoenix_stacks_config",
    "Phoenix Docker stacks configuration",
    "etc/phoenix_stacks_config.json: Docker Swarm stacks deployed through Portainer. A stack "
    "may instead (or also) be described by stacks/<name>/phoenix.json next to its Compose "
    "file.",
    {
        "type": "object",
        "properties": _merge(
            _SCHEMA_KEY,
            {
                "docker_stacks": {
                    "type": "object",
                    "description": "Stacks keyed by stack name (the Swarm stack name).",
                    "propertyNames": {"pattern": IDENTIFIER_PATTERN},
                    "additionalProperties": {
                        "type": "object",
                        "description": (
                            "One stack. Unknown keys are accepted (with a warning from the "
                            "config model)."
                        ),
                        "properties": _merge(
                            _STACK_COMMON,
                            {
                                "compose_file_path": _string(
                                    "Compose file of the stack, relative to the configuration "
                                    "root (the directory holding etc/ and stacks/) unless "
                                    "absolute. Defaults to stacks/<name>/docker-compose.yml.",
                                    minLength=1,
                                ),
                            },
                        ),
                        "required": ["environments"],
                        "additionalProperties": True,
                    },
                },
            },
        ),
        "required": ["docker_stacks"],
        "additionalProperties": True,
    },
)

STACK_MANIFEST_SCHEMA = _build(
    "stack_phoenix",
    "Phoenix stack manifest",
    "stacks/<name>/phoenix.json: how the platform deploys the stack whose Compose file is "
    "stacks/<name>/docker-compose.yml. Unknown keys are accepted (with a warning from the "
    "config model).",
    {
        "type": "object",
        "properties": _merge(_SCHEMA_KEY, _STACK_COMMON),
        "required": ["environments"],
        "additionalProperties": True,
    },
)

CERTIFICATE_MANIFEST_SCHEMA = _build(
    "certificate-manifest",
    "Phoenix certificate manifest",
    "etc/certificate-manifest.json: certificates the sync requests from Step-CA, writes on "
    "the hypervisor and renews before they expire.",
    {
        "type": "array",
        "items": _object(
            "One certificate.",
            {
                "common_name": _string(
                    "Subject common name; also added as a SAN.", pattern=HOSTNAME_PATTERN
                ),
                "sans": _array(
                    _string(
                        "A DNS name or IPv4 address.",
                        pattern="(" + HOSTNAME_PATTERN + ")|(" + IPV4_PATTERN + ")",
                    ),
                    "Subject alternative names.",
                    uniqueItems=True,
                ),
                "cert_path": _string(
                    "Where the certificate (with its chain) is written on the hypervisor.",
                    pattern=ABSOLUTE_PATH_PATTERN,
                ),
                "key_path": _string(
                    "Where the private key is written on the hypervisor.",
                    pattern=ABSOLUTE_PATH_PATTERN,
                ),
                "owner": _string(
                    "Owner of both files on the hypervisor as 'user' or 'user:group', by "
                    "name or numeric ID. Files read inside an unprivileged container need "
                    "the mapped host IDs (container root is 100000 by default).",
                    pattern=OWNER_PATTERN,
                ),
                "permissions": _string(
                    "Octal mode of the key file (for example 640 or 0600).",
                    pattern=OCTAL_MODE_PATTERN,
                ),
                "post_renewal_command": _string(
                    "Shell command run on the hypervisor after the files changed (for "
                    "example 'pct exec 101 -- systemctl reload nginx').",
                    minLength=1,
                ),
            },
            required=["common_name", "cert_path", "key_path"],
        ),
    },
)

SCHEMAS = {
    "phoenix_hypervisor_config.json": HYPERVISOR_SCHEMA,
    "phoenix_lxc_configs.json": LXC_SCHEMA,
    "phoenix_vm_configs.json": VM_SCHEMA,
    "phoenix_stacks_config.json": STACKS_SCHEMA,
    "phoenix.json": STACK_MANIFEST_SCHEMA,
    "certificate-manifest.json": CERTIFICATE_MANIFEST_SCHEMA,
}
