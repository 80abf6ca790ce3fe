# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
name: acme_certificate_names
author:
  - Thinkheads platform team (@thinkheads)
version_added: 0.1.0
short_description: The names Traefik holds ACME certificates for, from its acme.json
description:
  - Reads Traefik's ACME storage (C(acme.json), as the result of M(ansible.builtin.slurp)) and returns the main
    name of every certificate one resolver holds, sorted.
  - A missing or unreadable file, an empty one, a resolver that has no entry yet and C(Certificates) set to null
    (a fresh account) all give an empty list.
positional: _input, resolver
options:
  _input:
    description: The registered result of M(ansible.builtin.slurp) of C(acme.json) (C(content) base64), or its text.
    type: raw
    required: true
  resolver:
    description: The certificate resolver's name (C(certificatesResolvers.<name>) in Traefik's static configuration).
    type: str
    required: true
'''

EXAMPLES = r'''
- name: Read Traefik's ACME storage
  ansible.builtin.slurp:
    src: /var/lib/traefik/acme.json
  register: acme
  failed_when: false

- name: The routed names that have no certificate yet
  ansible.builtin.debug:
    msg: "{{ ['qdrant.internal.example.org'] | difference(acme | thinkheads.phoenix.acme_certificate_names('internal-resolver')) }}"
'''

RETURN = r'''
_value:
  description: The main names of the resolver's certificates, sorted, without duplicates.
  type: list
  elements: str
'''

import base64
import binascii
import json


def acme_certificate_names(storage, resolver):
    """The names one resolver of Traefik's acme.json holds certificates for; see DOCUMENTATION."""
    text = storage
    if isinstance(storage, dict):
        if storage.get('failed') or not storage.get('content'):
            return []
        try:
            text = base64.b64decode(storage['content']).decode('utf-8')
        except (binascii.Error, ValueError, UnicodeDecodeError):
            return []
    if not isinstance(text, str) or not text.strip():
        return []
    try:
        data = json.loads(text)
    except ValueError:
        return []
    entry = data.get(resolver) if isinstance(data, dict) else None
    certificates = (entry or {}).get('Certificates') or []
    names = set()
    for certificate in certificates:
        main = ((certificate or {}).get('domain') or {}).get('main')
        if main:
            names.add(main)
    return sorted(names)


class FilterModule(object):
    def filters(self):
        return {'acme_certificate_names': acme_certificate_names}
