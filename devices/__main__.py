"""``python -m devices detect|deploy``: which profile fits this machine; a bundle onto a board.

  python -m devices detect            # the profile, the evidence, the CPU's int8-relevant features
  python -m devices detect --json     # the same as JSON, for scripts (make deploy, a fleet inventory)
  python -m devices deploy --host pi@line3-pi --bundle bundles/latest   # make deploy HOST=... BUNDLE=...
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from runtime.detect import detect


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m devices", description="Board tooling.")
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("detect", help="name the device profile that fits this machine, and why")
    d.add_argument("--root", default="/", help="read /proc and /etc under this folder (default /)")
    d.add_argument("--json", action="store_true", help="print JSON instead of text")
    _deploy_parser(sub)
    a = p.parse_args(argv)
    if a.cmd == "deploy":
        return _deploy(a)
    found = detect(a.root)
    print(json.dumps({**asdict(found), "int8_hint": found.int8_hint()}, indent=2) if a.json
          else found.text())
    return 0


def _deploy_parser(sub) -> None:
    d = sub.add_parser("deploy", help="copy the runtime and a bundle to a board over ssh, check it there, "
                       "restart the service (make deploy HOST=... BUNDLE=...)")
    d.add_argument("--host", required=True, help="ssh destination, user@board")
    d.add_argument("--bundle", required=True, type=Path, help="the bundle folder (bundles/<name>)")
    d.add_argument("--profile", default="auto", help="device profile for the install recipe (default: "
                   "what detect names on the board)")
    d.add_argument("--prefix", default="/opt/edgeflag", help="install folder on the board")
    d.add_argument("--ssh-option", action="append", default=[], metavar="OPT",
                   help="ssh -o option, repeatable (Port=2222, IdentityFile=~/.ssh/board)")
    d.add_argument("--install", choices=("auto", "always", "never"), default="auto",
                   help="run the install recipe: auto = when the board has no runtime yet")
    d.add_argument("--restart-cmd", help="run on the board instead of systemctl enable + restart "
                   "edgeflag-camera")
    d.add_argument("--logs-cmd", help="run on the board instead of following the service's journal")
    d.add_argument("--wait", type=float, default=120.0, help="seconds to wait for the first stats line")


def _deploy(a: argparse.Namespace) -> int:
    from devices.deploy import DeployPlan, main_deploy

    return main_deploy(DeployPlan(host=a.host, bundle=a.bundle, profile=a.profile, prefix=a.prefix,
                                  ssh_options=a.ssh_option, install=a.install, restart_cmd=a.restart_cmd,
                                  logs_cmd=a.logs_cmd, wait_s=a.wait))


if __name__ == "__main__":
    sys.exit(main())
