"""``python -m corpuskit.train BUILD RUN_DIR``: training without the catalog or the data root.

This is the entry point for distributed runs, because ``torchrun`` starts one copy of a module
per process and every copy must agree on the run folder::

    torchrun --standalone --nproc_per_node 2 -m corpuskit.train BUILD RUN --set max_steps=100
"""

from __future__ import annotations

import argparse
import sys

from corpuskit.errors import CorpuskitError
from corpuskit.train import TrainConfig, train


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m corpuskit.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("build_dir", help="token build folder (with meta.json)")
    parser.add_argument("run_dir", help="run folder to create (or to continue with --resume)")
    parser.add_argument("--model", default="gpt")
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--config", dest="config_file", help="YAML settings file")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override one setting (repeatable)")
    parser.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or log lines")
    args = parser.parse_args(argv)
    try:
        config = None
        if not args.resume or args.overrides or args.config_file:
            config = TrainConfig.from_preset(args.model, args.preset,
                                             config_file=args.config_file,
                                             overrides=args.overrides)
        train(args.build_dir, args.run_dir, config, progress=not args.quiet,
              log=(lambda _: None) if args.quiet else print, resume=args.resume)
    except (CorpuskitError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
