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
(step_ca.renew_if_needed: key, certificate and chain swapped as one unit, the key stays), then run the hooks
in order whenever the certificate's serial differs from the one last handed to them. That serial is recorded
in ``<state dir>/<name>.hooks.json`` only after every hook succeeded, so a failed reload is retried by the
next run even though the certificate is no longer due. A hook is an argv list, or a string split like a
shell would (no shell runs it). Exit status 0 when every certificate is fine, 1 when one failed (the others
still run), 2 on bad usage or configuration. One run at a time, and never while step_ca_certificate writes:
both take the lock file (flock).

    phoenix-cert-renew                        # every certificate that is due, and hooks not yet run
    phoenix-cert-renew nginx traefik          # only these
    phoenix-cert-renew --pending-hooks nginx  # no renewal: nginx's hooks, if its serial was not handed yet
    phoenix-cert-renew --hooks nginx          # run nginx's hooks now, whatever was handed
    phoenix-cert-renew --list                 # state of every certificate, as JSON lines
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
DEFAULT_STATE_DIR = '/var/lib/phoenix-certs'
DEFAULT_HOOK_TIMEOUT = 120
REQUIRED = ('name', 'ca_url', 'root', 'cert_path', 'key_path')


class ConfigError(Exception):
    """A certificate's configuration file is missing or wrong."""


def log(message):
    sys.stdout.write(message + '\n')
    sys.stdout.flush()


def import_client(lib_dir):
    """The Step-CA client (the package plugins/module_utils/step_ca, copied to ``lib_dir``/step_ca)."""
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


def state_path(state_dir, config):
    return os.path.join(state_dir, '%s.hooks.json' % config['name'])


def handed_serial(state_dir, config):
    """The serial last handed to the certificate's hooks (None: never, or unreadable)."""
    try:
        with open(state_path(state_dir, config)) as handle:
            data = json.load(handle)
    except (IOError, OSError, ValueError):
        return None
    return str(data.get('serial')) if isinstance(data, dict) and data.get('serial') is not None else None


def record_handed(state_dir, config, serial):
    """Remember that the hooks have taken ``serial`` (written after they all succeeded; atomic)."""
    os.makedirs(state_dir, mode=0o755, exist_ok=True)
    path = state_path(state_dir, config)
    tmp = '%s.%d.tmp' % (path, os.getpid())
    with open(tmp, 'w') as handle:
        json.dump({'serial': serial, 'cert_path': config['cert_path'], 'hooks': config['hooks']}, handle)
        handle.write('\n')
        handle.flush()
        os.fsync(handle.fileno())
    os.rename(tmp, path)


def current_serial(step_ca, config):
    return step_ca.certificate_info(step_ca.load_certificate_file(config['cert_path'])[0])['serial']


def hand_over(step_ca, config, state_dir, runner, force=False):
    """Run the hooks when the certificate's serial is not the one last handed to them (or ``force``)."""
    name = config['name']
    if not config['hooks']:
        return True
    try:
        serial = current_serial(step_ca, config)
    except (step_ca.StepCAError, IOError, OSError, ValueError) as exc:
        log('%s: cannot read %s for the hooks: %s' % (name, config['cert_path'], exc))
        return False
    handed = handed_serial(state_dir, config)
    if handed == serial and not force:
        return True
    if not force:
        log('%s: serial %s not handed to the hooks yet (last: %s)' % (name, serial, handed or 'none'))
    if not run_hooks(config, runner):
        log('%s: hooks failed; the next run tries again' % name)
        return False
    record_handed(state_dir, config, serial)
    log('%s: serial %s handed to the hooks' % (name, serial))
    return True


def process(step_ca, config, mode=None, runner=subprocess.run, state_dir=DEFAULT_STATE_DIR):
    """Renew one certificate when due, then run its hooks if its serial is new to them; True on success.

    ``mode``: None (renew and hand over), ``'pending'`` (hand over only) or ``'hooks'`` (run the hooks)."""
    name = config['name']
    if mode == 'hooks':
        return hand_over(step_ca, config, state_dir, runner, force=True)
    if mode == 'pending':
        return hand_over(step_ca, config, state_dir, runner)
    ok = True
    try:
        renewed = step_ca.renew_if_needed(config['ca_url'], config['root'], config['cert_path'], config['key_path'],
                                          chain_path=config.get('chain_path') or None,
                                          threshold=config.get('renew_before') or None)
    except step_ca.StepCAError as exc:
        log('%s: renewal failed: %s' % (name, exc))
        renewed, ok = False, False
    if renewed:
        info = step_ca.certificate_info(step_ca.load_certificate_file(config['cert_path'])[0])
        log('%s: renewed %s (serial %s, valid until %s)' % (name, config['cert_path'], info['serial'],
                                                            info['not_after']))
    elif ok:
        log('%s: not due' % name)
    # Also when nothing was due: a hook that failed last time gets the certificate now.
    return hand_over(step_ca, config, state_dir, runner) and ok


def describe(step_ca, config):
    """One JSON-serializable line about a certificate's state (for --list)."""
    out = {'name': config['name'], 'cert_path': config['cert_path']}
    try:
        cert = step_ca.load_certificate_file(config['cert_path'])[0]
        info = step_ca.certificate_info(cert)
        due, why = step_ca.needs_renewal(cert, config.get('renew_before') or None)
        out.update(serial=info['serial'], not_after=info['not_after'], due=due, reason=why)
        if config['hooks']:
            out['hooks_pending'] = handed_serial(config.get('state_dir', DEFAULT_STATE_DIR), config) != info['serial']
    except (step_ca.StepCAError, IOError, OSError, ValueError) as exc:
        out.update(error=str(exc))
    return out


def main(argv=None, runner=subprocess.run):
    parser = argparse.ArgumentParser(prog='phoenix-cert-renew', description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('names', nargs='*', help='certificates to process (default: all)')
    parser.add_argument('--config-dir', default=DEFAULT_CONFIG_DIR)
    parser.add_argument('--lib-dir', default=DEFAULT_LIB_DIR)
    parser.add_argument('--lock', default=DEFAULT_LOCK, help='lock file: one run at a time')
    parser.add_argument('--state-dir', default=DEFAULT_STATE_DIR,
                        help='where the serial last handed to each certificate\'s hooks is kept')
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument('--hooks', action='store_true', help='run the hooks of the named certificates, no renewal')
    mode.add_argument('--pending-hooks', action='store_true',
                      help='no renewal: run the hooks of the named certificates whose serial they have not had')
    mode.add_argument('--list', action='store_true', help='print the state of each certificate')
    args = parser.parse_args(argv)
    if (args.hooks or args.pending_hooks) and not args.names:
        parser.error('--hooks and --pending-hooks need the names of the certificates')

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
            log(json.dumps(describe(step_ca, dict(config, state_dir=args.state_dir)), sort_keys=True))
        return 0
    mode = 'hooks' if args.hooks else 'pending' if args.pending_hooks else None
    with open(args.lock, 'a') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        failed = [config['name'] for config in configs
                  if not process(step_ca, config, mode, runner, state_dir=args.state_dir)]
    if failed:
        log('failed: %s' % ', '.join(failed))
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
