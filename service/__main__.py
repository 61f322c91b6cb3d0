"""``python -m service`` is the ``decroche`` command."""

import sys

from service.cli import main

sys.exit(main())
