# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The feature registry: every guest feature the collection knows, in one table.

Each row says which role applies the feature (None: the name is accepted for existing configs and sets nothing
up), in which phase of the playbooks it runs, which Proxmox container features it needs, whether it needs a GPU,
and the ports its service listens on. The config model warns on a feature that has no row, the inventory
publishes the roles of the ``features`` phase to create.yml, proxmox_guest turns on the container features, and
validate.yml lists the features that have no role. Adding a feature is one row here and one role.

Phases:

* ``ca`` - create.yml's Step-CA play (the CA guest, before anything asks it for a certificate);
* ``trust`` - create.yml's play that installs the root CA on the guest;
* ``features`` - create.yml's feature play, in the order the guest lists its features;
* ``routing`` - sync.yml: the configuration derives from every guest and stack, so it converges after them;
* None - no role.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import difflib

PHASES = ('ca', 'trust', 'features', 'routing')


def _row(role=None, phase=None, lxc=(), gpu=False, ports=()):
    return {'role': role, 'phase': phase if role else None, 'lxc_features': tuple(lxc), 'gpu': gpu,
            'ports': tuple(ports)}


FEATURES = {
    'base_setup': _row(),
    'step_cli': _row(),
    'ollama': _row(),
    'step_ca': _row('thinkheads.phoenix.step_ca', 'ca', ports=('9000/tcp',)),
    'trusted_ca': _row('thinkheads.phoenix.trusted_ca', 'trust'),
    'traefik': _row('thinkheads.phoenix.traefik', 'routing', ports=('80/tcp', '443/tcp')),
    'nginx': _row('thinkheads.phoenix.nginx_gateway', 'routing', ports=('80/tcp', '443/tcp')),
    'nginx_gateway': _row('thinkheads.phoenix.nginx_gateway', 'routing', ports=('80/tcp', '443/tcp')),
    'docker': _row('thinkheads.phoenix.docker', 'features', lxc=('nesting', 'keyctl')),
    'nvidia': _row('thinkheads.phoenix.nvidia', 'features', gpu=True),
    'vllm': _row('thinkheads.phoenix.vllm', 'features', gpu=True, ports=('8000/tcp',)),
}


def known(name):
    return name in FEATURES


def with_phase(phase):
    """The features of one phase, sorted."""
    return tuple(sorted(name for name, row in FEATURES.items() if row['phase'] == phase))


def with_role(role):
    """The features that one role applies, sorted."""
    return tuple(sorted(name for name, row in FEATURES.items() if row['role'] == role))


def roles(phase):
    """feature -> role for the features of one phase."""
    return dict((name, FEATURES[name]['role']) for name in with_phase(phase))


def without_role(features=None):
    """The features (of the list given, else of the registry) that have no role, in order, each once."""
    names = FEATURES if features is None else features
    seen = []
    for name in names:
        if name in FEATURES and FEATURES[name]['role'] is None and name not in seen:
            seen.append(name)
    return seen if features is not None else sorted(seen)


def gpu_features():
    return tuple(sorted(name for name, row in FEATURES.items() if row['gpu']))


def lxc_features(features):
    """The Proxmox container features (name -> '1') the guest's features need."""
    needed = {}
    for name in features or []:
        for key in (FEATURES.get(name) or {}).get('lxc_features', ()):
            needed[key] = '1'
    return needed


def suggestion(name):
    """A close known feature name, or None."""
    close = difflib.get_close_matches(name, sorted(FEATURES), n=1, cutoff=0.75)
    return close[0] if close else None
