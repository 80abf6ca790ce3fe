# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The decision (does a certificate need to be issued again or renewed?) and the renewal the timer runs."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os

from .common import format_duration, iso, parse_threshold, require_libraries, StepCAError, utcnow
from .x509 import (
    certificate_info, chains_to, load_certificate_file, load_private_key_file, normalize_key_type, _not_after,
    _not_before, _public_der, wanted_sans,
)
from .client import renew_certificate, StepCAClient
from .files import install_certificate

# ---------------------------------------------------------------------------------------------------------
# The decision
# ---------------------------------------------------------------------------------------------------------


def needs_renewal(cert, threshold=None, now=None):
    """(bool, reason) for the lifetime rule alone."""
    kind, amount = parse_threshold(threshold)
    now = now or utcnow()
    not_before, not_after = _not_before(cert), _not_after(cert)
    left = (not_after - now).total_seconds()
    total = (not_after - not_before).total_seconds()
    if kind == 'fraction':
        limit = total * amount
        rule = '%g%% of its %s lifetime' % (round(amount * 100, 2), format_duration(total))
    else:
        limit = amount
        rule = format_duration(amount)
    if left < limit:
        return True, 'remaining lifetime %s is below %s' % (format_duration(max(left, 0)), rule)
    return False, 'remaining lifetime %s, renewal below %s' % (format_duration(left), rule)


def read_intermediates(*paths):
    """Certificates after the first one in each readable file (the chain part of cert/chain files)."""
    out = []
    for path in paths:
        if not path or not os.path.exists(path):
            continue
        try:
            certs = load_certificate_file(path)
        except (StepCAError, ValueError, IOError, OSError):
            continue
        out.extend(certs[1:])
    return out


def assess_certificate(cert_path, key_path, common_name=None, sans=None, key_type=None, roots=None,
                       intermediates=None, threshold=None, now=None, include_cn=True):
    """What to do with the certificate at ``cert_path``: a dict with ``action`` and ``reason``.

    ``action``: ``issue`` (nothing usable there), ``reissue`` (new key + /sign: key missing or not matching,
    CN/SANs/key type changed, not signed by the current CA, expired), ``renew`` (valid, only the lifetime
    threshold is crossed) or ``none``. ``roots``/``intermediates``: certificates of the current CA; without
    roots the issuer is not checked. ``cert`` and ``info`` describe the current certificate when readable."""
    require_libraries(jose=False)
    now = now or utcnow()
    result = {'action': 'none', 'reason': '', 'cert': None, 'info': None}
    if not os.path.exists(cert_path):
        return dict(result, action='issue', reason='certificate %s does not exist' % cert_path)
    try:
        cert = load_certificate_file(cert_path)[0]
    except (StepCAError, ValueError, IOError, OSError) as exc:
        return dict(result, action='issue', reason='certificate %s is unreadable: %s' % (cert_path, exc))
    result['cert'] = cert
    result['info'] = info = certificate_info(cert, now)
    if not os.path.exists(key_path):
        return dict(result, action='reissue', reason='key %s does not exist' % key_path)
    try:
        key = load_private_key_file(key_path)
    except (ValueError, TypeError, IOError, OSError) as exc:
        return dict(result, action='reissue', reason='key %s is unreadable: %s' % (key_path, exc))
    if _public_der(key) != _public_der(cert.public_key()):
        return dict(result, action='reissue', reason='key %s does not match certificate %s' % (key_path, cert_path))
    if key_type is not None and normalize_key_type(key_type) != info['key_type']:
        return dict(result, action='reissue', reason='key type %s, wanted %s'
                    % (info['key_type'], normalize_key_type(key_type)))
    if common_name is not None and info['common_name'] != common_name:
        return dict(result, action='reissue', reason='common name %r, wanted %r' % (info['common_name'], common_name))
    if sans is not None or common_name is not None:
        want = wanted_sans(common_name, sans, include_cn)
        if sorted(want) != sorted(info['sans']):
            return dict(result, action='reissue', reason='SANs %s, wanted %s' % (info['sans'], want))
    if roots:
        if not chains_to(cert, list(intermediates or []), roots):
            return dict(result, action='reissue',
                        reason='certificate is not signed by the current CA (issuer %s)' % info['issuer'])
    if info['expired']:
        return dict(result, action='reissue', reason='certificate expired at %s' % info['not_after'])
    if now < _not_before(cert):
        return dict(result, action='reissue', reason='certificate is not valid before %s' % info['not_before'])
    renew, why = needs_renewal(cert, threshold, now)
    return dict(result, action='renew' if renew else 'none', reason=why)


def renew_if_needed(ca_url, root_path, cert_path, key_path, chain_path=None, threshold=None, timeout=15,
                    retries=3, now=None, client=None):
    """Renew ``cert_path`` over mTLS when its remaining lifetime is below ``threshold``.

    What the renewal timer on a guest runs (holding the lock). The key stays; a new version with the key,
    the certificate and ``chain_path`` (leaf + intermediates) is swapped in as one unit (install_certificate),
    keeping owner and mode. Returns True when it renewed, False
    when nothing was due. Raises StepCAError when the certificate cannot be renewed (missing, expired,
    CA unreachable): a fresh enrolment (the step_ca_certificate module) is needed then."""
    require_libraries(jose=False)
    try:
        cert = load_certificate_file(cert_path)[0]
    except (IOError, OSError, ValueError) as exc:
        raise StepCAError('cannot read certificate %s: %s' % (cert_path, exc)) from None
    now = now or utcnow()
    if _not_after(cert) <= now:
        raise StepCAError('certificate %s expired at %s: it cannot authenticate a renewal, enrol it again'
                          % (cert_path, iso(_not_after(cert))))
    due, _why = needs_renewal(cert, threshold, now)
    if not due:
        return False
    client = client or StepCAClient(ca_url, root_path=root_path, timeout=timeout, retries=retries)
    leaf, rest = renew_certificate(client, cert_path, key_path)
    install_certificate(cert_path, key_path, leaf, rest, chain_path=chain_path)
    return True


def cli_renew(argv=None):
    """``python3 -m step_ca --ca-url URL --root R --cert C --key K [--chain F] [--threshold 33%]``.

    Prints one JSON line (renewed, serial, not_after); exit status 0 on success, 1 on error. The renewal
    timer decides from ``renewed`` whether to run the consumer hooks."""
    import argparse
    import sys
    parser = argparse.ArgumentParser(description='Renew a Step-CA certificate over mTLS when it is due.')
    parser.add_argument('--ca-url', required=True)
    parser.add_argument('--root', required=True)
    parser.add_argument('--cert', required=True)
    parser.add_argument('--key', required=True)
    parser.add_argument('--chain')
    parser.add_argument('--threshold')
    args = parser.parse_args(argv)
    try:
        renewed = renew_if_needed(args.ca_url, args.root, args.cert, args.key, args.chain, args.threshold)
        info = certificate_info(load_certificate_file(args.cert)[0])
    except StepCAError as exc:
        sys.stderr.write('error: %s\n' % exc)
        return 1
    sys.stdout.write(json.dumps({'renewed': renewed, 'cert': args.cert, 'serial': info['serial'],
                                 'not_after': info['not_after']}) + '\n')
    return 0
