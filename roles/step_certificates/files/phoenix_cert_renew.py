# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Renew this guest's Step-CA certificates and run their consumer hooks (thinkheads.phoenix.step_certificates).

Installed by the role as /usr/local/sbin/phoenix-cert-renew (with a python3 shebang) and run by the renewal
timer's service. One JSON file per certificate in the configuration directory (default /etc/phoenix-certs):

    {"name": "nginx", "ca_url": "https://ca.internal.thinkheads.ai:9000", "root": "/usr/local/share/...crt",
     "cert_path": "...", "key_path": "...", "chain_path": "..." or null, "renew_before": "33%" or "8h",
     "hooks": [["systemctl", "reload", "nginx"], "docker restart portainer"], "hook_timeout": 120}

For each certificate: renew over mTLS when its remaining lifetime is below ``renew_before``
(step_ca.renew_if_needed: the certificate and chain files are swapped atomically, the key stays), then, only
when it renewed, run the hooks in order. A hook is an argv list, or a string split like a shell would
(no shell runs it). Exit status 0 when every certificate is fine, 1 when one failed (the others still run),
2 on bad usage or configuration.

    phoenix-cert-renew                  # every certificate that is due
    phoenix-cert-renew nginx traefik    # only these
    phoenix-cert-renew --hooks nginx    # run nginx's hooks now (after the role issued its certificate)
    phoenix-cert-renew --list           # state of every certificate, as JSON lines
"""

from __future__ import absolute_import, division, print_function

import argparse
import fcntl
import json
import os
import shlex
import subprocess
import sys

DEFAULT_CONFIG_DIR = '/etc/phoenix-certs'
DEFAULT_LIB_DIR = '/usr/local/lib/phoenix-certs'
DEFAULT_LOCK = '/run/phoenix-cert-renew.lock'
DEFAULT_HOOK_TIMEOUT = 120
REQUIRED = ('name', 'ca_url', 'root', 'cert_path', 'key_path')


class ConfigError(Exception):
    """A certificate's configuration file is missing or wrong."""


def log(message):
    sys.stdout.write(message + '\n')
    sys.stdout.flush()


def import_client(lib_dir):
    """The Step-CA client (plugins/module_utils/step_ca.py, copied to ``lib_dir``)."""
    if lib_dir not in sys.path:
        sys.path.insert(0, lib_dir)
    import step_ca  # pylint: disable=import-error
    return step_ca


def normalize_hook(hook):
    """An argv list from a hook given as a list of words or as one command string."""
    if isinstance(hook, str):
        argv = shlex.split(hook)
    elif isinstance(hook, (list, tuple)) and all(isinstance(word, (str, int, float)) for word in hook):
        argv = [str(word) for word in hook]
    else:
        raise ConfigError('a hook must be a command string or a list of words, not %r' % (hook,))
    if not argv:
        raise ConfigError('empty hook')
    return argv


def load_config(path):
    """The certificate configuration in ``path``, checked; hooks normalized to argv lists."""
    try:
        with open(path) as handle:
            config = json.load(handle)
    except (IOError, OSError) as exc:
        raise ConfigError('cannot read %s: %s' % (path, exc)) from None
    except ValueError as exc:
        raise ConfigError('%s is not valid JSON: %s' % (path, exc)) from None
    if not isinstance(config, dict):
        raise ConfigError('%s must hold a JSON object' % path)
    config.setdefault('name', os.path.basename(path)[:-5] if path.endswith('.json') else os.path.basename(path))
    missing = [key for key in REQUIRED if not config.get(key)]
    if missing:
        raise ConfigError('%s lacks %s' % (path, ', '.join(missing)))
    hooks = config.get('hooks') or []
    if not isinstance(hooks, list):
        raise ConfigError('%s: "hooks" must be a list' % path)
    try:
        config['hooks'] = [normalize_hook(hook) for hook in hooks]
    except ConfigError as exc:
        raise ConfigError('%s: %s' % (path, exc)) from None
    try:
        config['hook_timeout'] = float(config.get('hook_timeout') or DEFAULT_HOOK_TIMEOUT)
    except (TypeError, ValueError):
        raise ConfigError('%s: "hook_timeout" must be a number of seconds' % path) from None
    return config


def config_files(config_dir, names=None):
    """{name: path} of the configurations to process: all ``*.json`` files, or the named ones."""
    if names:
        return dict((name, os.path.join(config_dir, name + '.json')) for name in names)
    try:
        entries = sorted(os.listdir(config_dir))
    except OSError:
        return {}
    return dict((entry[:-5], os.path.join(config_dir, entry)) for entry in entries
                if entry.endswith('.json') and not entry.startswith('.'))


def run_hooks(config, runner=subprocess.run):
    """Run the hooks in order; stop at the first failure. True when all succeeded."""
    for argv in config['hooks']:
        try:
            result = runner(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            timeout=config['hook_timeout'], check=False)
        except subprocess.TimeoutExpired:
            log('%s: hook %s timed out after %gs' % (config['name'], shlex.join(argv), config['hook_timeout']))
            return False
        except OSError as exc:
            log('%s: hook %s could not run: %s' % (config['name'], shlex.join(argv), exc))
            return False
        output = (result.stdout or b'').decode('utf-8', 'replace').strip()
        if result.returncode != 0:
            detail = (': ' + output) if output else ''
            log('%s: hook %s failed with exit status %d%s' % (config['name'], shlex.join(argv), result.returncode, detail))
            return False
        log('%s: hook %s ok' % (config['name'], shlex.join(argv)))
    return True


def process(step_ca, config, hooks_only=False, runner=subprocess.run):
    """Renew one certificate when due and run its hooks; True on success."""
    name = config['name']
    if hooks_only:
        return run_hooks(config, runner)
    try:
        renewed = step_ca.renew_if_needed(config['ca_url'], config['root'], config['cert_path'], config['key_path'],
                                          chain_path=config.get('chain_path') or None,
                                          threshold=config.get('renew_before') or None)
    except step_ca.StepCAError as exc:
        log('%s: renewal failed: %s' % (name, exc))
        return False
    if not renewed:
        log('%s: not due' % name)
        return True
    info = step_ca.certificate_info(step_ca.load_certificate_file(config['cert_path'])[0])
    log('%s: renewed %s (serial %s, valid until %s)' % (name, config['cert_path'], info['serial'], info['not_after']))
    return run_hooks(config, runner)


def describe(step_ca, config):
    """One JSON-serializable line about a certificate's state (for --list)."""
    out = {'name': config['name'], 'cert_path': config['cert_path']}
    try:
        cert = step_ca.load_certificate_file(config['cert_path'])[0]
        info = step_ca.certificate_info(cert)
        due, why = step_ca.needs_renewal(cert, config.get('renew_before') or None)
        out.update(serial=info['serial'], not_after=info['not_after'], due=due, reason=why)
    except (step_ca.StepCAError, IOError, OSError, ValueError) as exc:
        out.update(error=str(exc))
    return out


def main(argv=None, runner=subprocess.run):
    parser = argparse.ArgumentParser(prog='phoenix-cert-renew', description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('names', nargs='*', help='certificates to process (default: all)')
    parser.add_argument('--config-dir', default=DEFAULT_CONFIG_DIR)
    parser.add_argument('--lib-dir', default=DEFAULT_LIB_DIR)
    parser.add_argument('--lock', default=DEFAULT_LOCK, help='lock file: one run at a time')
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument('--hooks', action='store_true', help='run the hooks of the named certificates, no renewal')
    mode.add_argument('--list', action='store_true', help='print the state of each certificate')
    args = parser.parse_args(argv)
    if args.hooks and not args.names:
        parser.error('--hooks needs the names of the certificates')

    configs = []
    for _name, path in sorted(config_files(args.config_dir, args.names).items()):
        try:
            configs.append(load_config(path))
        except ConfigError as exc:
            log('error: %s' % exc)
            return 2
    if not configs:
        log('no certificates configured in %s' % args.config_dir)
        return 0
    step_ca = import_client(args.lib_dir)
    if args.list:
        for config in configs:
            log(json.dumps(describe(step_ca, config), sort_keys=True))
        return 0
    with open(args.lock, 'a') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        failed = [config['name'] for config in configs if not process(step_ca, config, args.hooks, runner)]
    if failed:
        log('failed: %s' % ', '.join(failed))
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
