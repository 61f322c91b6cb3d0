"""The ``decroche`` command: the parser, made of one module per command group, and ``main``.

Exit status: 0 on success, 1 on a failure the user can fix (the message says how), 2 on bad
arguments (argparse's own convention).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from service.cli import accounts, campaigns, config, digest, imports, privacy, reports, server
from service.cli.support import UserError
from service.db.embedded import EmbeddedDatabaseError
from service.db.errors import OneLineOutages
from service.municipality.model import ConfigError

log = logging.getLogger("decroche")

# Each group adds its sub-commands, in the order ``decroche --help`` lists them.
GROUPS = (server, reports, accounts, imports, campaigns, digest, privacy, config)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="decroche",
        description=("Décroché: telephony quality for town halls (Engagement 8 answer times)."),
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.add_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # pgserver narrates every start and stop at INFO; only its warnings matter to users.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    # twilio's client logs every request and its headers at INFO: a page per mystery call.
    logging.getLogger("twilio").setLevel(logging.WARNING)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("asyncpg.pool").addFilter(OneLineOutages())
    try:
        return int(args.func(args))
    except (ConfigError, UserError, EmbeddedDatabaseError) as exc:
        print(f"decroche: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`decroche … | head`): stop quietly, as other tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
