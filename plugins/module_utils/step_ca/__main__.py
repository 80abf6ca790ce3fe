# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``python3 -m step_ca --ca-url URL --root R --cert C --key K [--chain F] [--threshold 33%]`` on a guest.

Run from the directory that holds the package (the step_certificates role's library directory)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from .renew import cli_renew

if __name__ == '__main__':
    raise SystemExit(cli_renew())
