"""Open Fine-tuning Studio in the browser.

    python launch.py [--host H] [--port N] [--workspace DIR] [--share --auth USER:PASS]
                     [--auth-file FILE] [--annotator USER:PASS] [--annotator-file FILE] [--allow-reward-code]
"""

import argparse
import sys

from studio.cli import add_launch_args
from studio.errors import StudioError


def main() -> int:
    parser = argparse.ArgumentParser(description="Open Fine-tuning Studio.")
    add_launch_args(parser)
    args = parser.parse_args()
    try:
        from studio.ui.app import launch

        launch(host=args.host, port=args.port, workspace=args.workspace, share=args.share,
               auth=args.auth, open_browser=not args.no_browser, annotators=args.annotator,
               auth_file=args.auth_file, annotator_file=args.annotator_file,
               allow_reward_code=args.allow_reward_code)
    except StudioError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
