# Copyright: Contributors to the thinkheads.phoenix collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Offline stand-in for the get-pip.py script that ansible-test bootstraps pip with.

ansible-test creates its virtual environments without pip and then downloads
https://ci-files.testing.ansible.com/ansible-test/get-pip-<version>.py, a host that is
not reachable from CI. It looks for a cached copy first, at
~/.ansible/test/cache/get_pip_<version>.py; `make sanity` puts this file there.

Like get-pip.py, it installs the packages named on the command line (pip==<version>),
but it runs pip from the wheel bundled with the interpreter's ensurepip module, so
only PyPI is needed. The get-pip.py-only options --no-setuptools and --no-wheel are
accepted and dropped: nothing but the requested packages is installed.
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys

import ensurepip


def main() -> int:
    args = [arg for arg in sys.argv[1:] if arg not in ('--no-setuptools', '--no-wheel')]
    wheels = sorted(glob.glob(os.path.join(os.path.dirname(ensurepip.__file__), '_bundled', 'pip-*.whl')))

    if not wheels:
        sys.stderr.write('get_pip.py: no pip wheel bundled with ensurepip in %s\n' % sys.executable)
        return 1

    # A pip wheel is importable as a zip: run its `pip` package to install the real pip.
    return subprocess.call([sys.executable, os.path.join(wheels[-1], 'pip'), 'install', '--no-cache-dir'] + args)


if __name__ == '__main__':
    sys.exit(main())
