# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Provisioners in ca.json (the CA host side): claims, the desired entry, redaction."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import re

from .common import BadPassword, format_duration, parse_duration, StepCAError
from .jose import decrypt_provisioner_key, encrypt_provisioner_key, generate_provisioner_key, same_public_key

# ---------------------------------------------------------------------------------------------------------
# Provisioners in ca.json (the CA host side)
# ---------------------------------------------------------------------------------------------------------

DURATION_CLAIMS = ('minTLSCertDuration', 'maxTLSCertDuration', 'defaultTLSCertDuration',
                   'minUserSSHCertDuration', 'maxUserSSHCertDuration', 'defaultUserSSHCertDuration',
                   'minHostSSHCertDuration', 'maxHostSSHCertDuration', 'defaultHostSSHCertDuration')
BOOL_CLAIMS = ('disableRenewal', 'allowRenewalAfterExpiry', 'enableSSHCA', 'disableSmallstepExtensions')
# step-ca's built-in TLS claims (used when neither the provisioner nor authority.claims set them).
STEP_DEFAULT_TLS_CLAIMS = {'minTLSCertDuration': '5m', 'maxTLSCertDuration': '24h', 'defaultTLSCertDuration': '24h'}
ACME_CHALLENGES = ('http-01', 'dns-01', 'tls-alpn-01', 'device-attest-01', 'wire-oidc-01', 'wire-dpop-01')
_GO_DURATION = re.compile(r'^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$')


def go_duration(value):
    """A duration string step-ca (Go's time.ParseDuration) reads, e.g. "2d" -> "48h"; others unchanged."""
    return _go_duration(None, value)[0]


def _go_duration(name, value):
    """(Go duration string, seconds); days are turned into hours."""
    text = str(value).strip()
    seconds = parse_duration(text)
    if not _GO_DURATION.match(text):
        text = format_duration(seconds)
    return text, seconds


def normalize_claims(claims, current=None, global_claims=None):
    """Validated provisioner claims (durations as Go strings, booleans as bools).

    A duration equal in value to the one in ``current`` keeps the current spelling (so "24h0m0s" and "24h"
    do not flip-flop). Checks min <= default <= max with authority-wide and built-in values filling gaps."""
    current = current or {}
    out = {}
    seconds = {}
    for name, value in (claims or {}).items():
        if name in DURATION_CLAIMS:
            text, secs = _go_duration(name, value)
            if name in current:
                try:
                    if parse_duration(current[name]) == secs:
                        text = current[name]
                except StepCAError:
                    pass
            out[name], seconds[name] = text, secs
        elif name in BOOL_CLAIMS:
            if not isinstance(value, bool):
                if str(value).lower() in ('true', 'yes', '1', 'on'):
                    value = True
                elif str(value).lower() in ('false', 'no', '0', 'off'):
                    value = False
                else:
                    raise StepCAError('claim %s must be a boolean, got %r' % (name, value))
            out[name] = value
        else:
            raise StepCAError('unknown provisioner claim %r: known claims are %s'
                              % (name, ', '.join(DURATION_CLAIMS[:3] + BOOL_CLAIMS[:2] + DURATION_CLAIMS[3:] + BOOL_CLAIMS[2:])))
    effective = dict(STEP_DEFAULT_TLS_CLAIMS)
    effective.update({k: v for k, v in (global_claims or {}).items() if k in STEP_DEFAULT_TLS_CLAIMS})
    effective.update({k: v for k, v in out.items() if k in STEP_DEFAULT_TLS_CLAIMS})
    low = parse_duration(effective['minTLSCertDuration'])
    default = parse_duration(effective['defaultTLSCertDuration'])
    high = parse_duration(effective['maxTLSCertDuration'])
    if not low <= default <= high:
        values = (effective['minTLSCertDuration'], effective['defaultTLSCertDuration'], effective['maxTLSCertDuration'])
        raise StepCAError('TLS certificate claims must satisfy minTLSCertDuration (%s) <= defaultTLSCertDuration (%s) '
                          '<= maxTLSCertDuration (%s); values not set here come from authority.claims or step-ca '
                          'defaults (5m, 24h, 24h)' % values)
    return out


def find_provisioner(config, name):
    """(index, entry) of the provisioner called ``name`` in a parsed ca.json, or (None, None)."""
    for index, entry in enumerate(((config.get('authority') or {}).get('provisioners')) or []):
        if entry.get('name') == name:
            return index, entry
    return None, None


def desired_provisioner(current, name, ptype, password=None, claims=None, challenges=None, force_cn=None,
                        global_claims=None):
    """(entry, key_note) of the provisioner as it should be in ca.json.

    Fields this function does not manage (options, templates, ...) are kept from ``current``. For JWK the
    existing key is kept when ``password`` decrypts it and it matches the public key; otherwise a new
    EC P-256 key is generated and encrypted with ``password`` (PBES2-HS256+A128KW, p2c 100000)."""
    ptype = ptype.upper()
    entry = dict(current) if current and str(current.get('type', '')).upper() == ptype else {}
    entry['type'] = ptype
    entry['name'] = name
    note = None
    if ptype == 'JWK':
        if password is None or password == '':
            raise StepCAError('a JWK provisioner needs a password')
        keep = False
        if entry.get('encryptedKey') and entry.get('key'):
            try:
                keep = same_public_key(decrypt_provisioner_key(entry['encryptedKey'], password, name), entry['key'])
                note = 'kept the existing key' if keep else 'the existing key does not match its public key'
            except BadPassword:
                note = 'the existing key does not decrypt with this password: new key'
        if not keep:
            private, public = generate_provisioner_key()
            entry['key'] = public
            entry['encryptedKey'] = encrypt_provisioner_key(private, password)
            note = note or 'new key'
    elif ptype == 'ACME':
        if challenges is not None:
            bad = [c for c in challenges if c not in ACME_CHALLENGES]
            if bad:
                raise StepCAError('unknown ACME challenge(s) %s: choose from %s' % (bad, ', '.join(ACME_CHALLENGES)))
            entry['challenges'] = list(challenges)
        if force_cn is not None:
            entry['forceCN'] = bool(force_cn)
    else:
        raise StepCAError('unsupported provisioner type %r (JWK or ACME)' % ptype)
    if claims is not None:
        normalized = normalize_claims(claims, (current or {}).get('claims'), global_claims)
        if normalized:
            entry['claims'] = normalized
        else:
            entry.pop('claims', None)
    return entry, note


def redact_provisioner(entry):
    """The entry without secrets worth hiding: the encrypted key shortened to its first characters."""
    if not entry:
        return entry
    out = dict(entry)
    if out.get('encryptedKey'):
        out['encryptedKey'] = out['encryptedKey'][:24] + '...'
    return out


def dump_ca_config(config):
    """ca.json text the way step writes it (tab indented, no trailing newline)."""
    return json.dumps(config, indent='\t', ensure_ascii=False)
