"""The `riskserve` console script: the command line of the Rust binary, run in this process by the native module."""

from __future__ import annotations

import sys


def main(argv=None) -> int:
    from riskserve import _native

    args = ["riskserve", *(sys.argv[1:] if argv is None else argv)]
    # Flush what Python buffered so that it comes before the command's own output.
    sys.stdout.flush()
    sys.stderr.flush()
    return _native.run_cli(args)


if __name__ == "__main__":
    sys.exit(main())
