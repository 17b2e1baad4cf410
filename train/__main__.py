"""``python -m train --data DIR [options]``: train a defect classifier; see ``--help``.

Thin entry point: flags are generated from :class:`train.config.TrainConfig` (where every default
and help text lives), merged as defaults < ``--config FILE`` < flags, then ``train.pipeline.train``.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import MISSING, fields

from runtime.errors import EdgeFlagError
from runtime.tf_logs import quiet_tensorflow
from train.config import TrainConfig, resolve

_EPILOG = """\
two stages (pretrained weights): 1) the classifier head on cached features of the frozen backbone,
2) fine-tuning of the top blocks at a low learning rate with BatchNorm frozen. With --weights none
the whole net trains from scratch (--epochs-scratch). Early stopping restores the best epoch.

--strategy: default = one device; mirrored = all local GPUs (batch size is global);
multi-worker = several machines: run the same command on each with TF_CONFIG set, e.g.
  TF_CONFIG='{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}'
(the same worker list everywhere, each machine its own index; the photos at the same path on each).
Worker 0 writes the run; the others train in step and write nothing.

The good class is the folder whose name has a word ok/good/pass/normal/... (override: --ok-label).
A set that comes split (DATA/train/<class>/, DATA/test/<class>/) keeps its split; masks stored
beside the photos (x.png next to x.jpg, *_mask.png) are skipped and listed in data_report.md.
Outputs: <out>/<name>/ (model.keras, saved_model/, labels.txt, splits/, metrics.json, plots/,
data_report.md) and <out>/latest. Next: python -m export --run <out>/<name>

TensorFlow's own C++ start-up logging is hidden unless --verbose is given or TF_CPP_MIN_LOG_LEVEL
is set in the environment.
"""


def build_parser() -> argparse.ArgumentParser:
    """One flag per TrainConfig field (``image_size`` -> ``--image-size``), plus ``--config``."""
    p = argparse.ArgumentParser(prog="python -m train", description="Fine-tune a MobileNet on a folder of "
                                "photos (one sub-folder per class).", epilog=_EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="JSON or TOML file with TrainConfig fields (flags override it)")
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not MISSING else None
        help_ = f"{f.metadata['help']} (default: {default})"
        if f.type == "bool":
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_)
        else:
            conv = {"int": int, "float": float}.get(f.type, str)
            p.add_argument(flag, type=conv, default=None, choices=f.metadata.get("choices"), help=help_,
                           metavar=None if f.metadata.get("choices") else f.name.upper())
    return p


def main(argv: list[str] | None = None) -> int:
    """Parse flags, resolve the config, train; errors a user can fix exit 2 without a traceback."""
    args = vars(build_parser().parse_args(argv))
    # Only an explicit --verbose brings TensorFlow's logging back: progress lines are on by default.
    quiet_tensorflow(verbose=args["verbose"] is True)
    config_file = args.pop("config")
    try:
        config = resolve(args, config_file)
        if not config.data:
            raise EdgeFlagError("no dataset: pass --data DIR (one sub-folder per class) or set data in "
                                "the --config file")
        from train.pipeline import train

        train(config)
    except EdgeFlagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

