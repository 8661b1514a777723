"""One context's `kirvis run` in a fleet (`chaoskirvis.run.fleet`): ``python -m chaoskirvis.run.one_context``.

It reads the command line the fleet parsed (pickled on standard input) and plays the `kirvis run` handler
with it. It imports nothing else first: `kirvis run` configures logging before chaoslib and the activity
modules are imported (see `chaoskirvis.run`).
"""
from __future__ import annotations

import pickle
import sys


def main() -> int:
    args = pickle.load(sys.stdin.buffer)
    from chaoslib.exceptions import ActivityFailed

    try:
        return args.handler(args)
    except ActivityFailed as exc:  # as `kirvis` itself answers it
        print(f"kirvis: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
