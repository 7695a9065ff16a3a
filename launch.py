"""Open Fine-tuning Studio in the browser.

    python launch.py [--host H] [--port N] [--workspace DIR] [--share --auth USER:PASS]
                     [--auth-file FILE] [--annotator USER:PASS] [--annotator-file FILE] [--allow-reward-code]
"""

import argparse
import sys

from studio.cli import add_launch_args, cmd_launch
from studio.errors import StudioError


def main() -> int:
    parser = argparse.ArgumentParser(description="Open Fine-tuning Studio.")
    add_launch_args(parser)
    args = parser.parse_args()
    try:
        return cmd_launch(args)
    except StudioError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
