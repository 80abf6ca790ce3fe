# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Phoenix config model: one place that loads, validates and normalizes the JSON configs.

Public API::

    from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.model import load_config
    config = load_config('etc', 'stacks', environment='production')
    config.report.errors, config.report.warnings, config.guests, config.stacks, config.hypervisor
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type
