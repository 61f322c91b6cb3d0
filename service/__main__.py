"""``python -m service`` is the ``decroche`` command."""

import sys

from service.cli.main import main

# Guarded: an import's parsing process (spawned) must not run the command again.
if __name__ == "__main__":
    sys.exit(main())
