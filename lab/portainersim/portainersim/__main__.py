# -*- coding: utf-8 -*-
"""python3 -m portainersim [Portainer CLI flags]"""

import sys

from portainersim.server import main

sys.exit(main())
