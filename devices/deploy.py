"""``make deploy``: the runtime and a bundle onto a board over ssh, checked there, then the service restarted.

Steps, each of which stops the deploy with a clear error before anything running is touched:
1. the bundle is loaded here (``bundle.json`` valid) and the profile, if given, exists;
2. ``ssh`` reaches the board (a wrong host, a refused key and an unknown host key are told apart);
3. ``rsync`` copies ``runtime/`` and ``devices/`` (no training code) and the bundle into a staging
   folder, ``PREFIX/.deploy/`` (kept, so the next deploy sends only what changed);
4. the board checks every artifact's sha256 (and ``bundle.json``'s) with ``sha256sum``;
5. the profile's install recipe runs when the board has no runtime yet (``PREFIX/venv``);
Only then are ``PREFIX/app`` and ``PREFIX/bundle`` replaced (the old ones kept as ``*.prev``), the
service restarted and its log followed until the first ``[stats]`` line, which is printed.
"""

from __future__ import annotations

import json
import re
import selectors
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from runtime.bundle import Bundle
from runtime.errors import EdgeFlagError
from runtime.fsutil import sha256_file
from runtime.profile import load_profile

REPO = Path(__file__).resolve().parents[1]
APP_DIRS = ("runtime", "devices")  # what a board needs; train/ and export/ stay on the desktop
SERVICE = "edgeflag-camera"
_SSH_ERRORS = (  # ssh's stderr -> what it means and how to fix it
    (re.compile(r"Permission denied|Too many authentication failures"),
     "the board refused the key", "install your public key on the board (ssh-copy-id {host}) or pass "
     "--ssh-option IdentityFile=PATH for the key it accepts"),
    (re.compile(r"Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED"),
     "the board's host key is unknown or changed", "connect once with `ssh {host}` and check the key, "
     "or fix ~/.ssh/known_hosts"),
    (re.compile(r"Could not resolve hostname|Connection refused|timed out|No route to host|"
                r"Network is unreachable|Connection closed|Connection reset"),
     "cannot reach the board", "check the address and port, that the board is on and on this network, "
     "and that its ssh server runs (sudo systemctl status ssh)"),
)


class DeployError(EdgeFlagError):
    """A deploy step failed; the message says which, what was found and how to fix it."""


@dataclass
class Board:
    """An ssh destination, the remote ``PREFIX`` and the ssh options to reach it."""

    host: str
    prefix: str = "/opt/edgeflag"
    ssh_options: list[str] = field(default_factory=list)
    sudo: str = ""  # set by probe(): "" as root or when PREFIX is writable, else "sudo -n"

    def ssh_argv(self) -> list[str]:
        opts = [arg for o in self.ssh_options for arg in ("-o", o)]
        return ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", *opts]

    def run(self, script: str, what: str, timeout: float = 600) -> str:
        """Run a bash ``script`` on the board (fed on stdin, so nothing needs quoting twice)."""
        try:
            out = subprocess.run([*self.ssh_argv(), self.host, "bash -s"], input=script, text=True,
                                 capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise DeployError(f"{what} on {self.host}: no answer within {timeout:.0f} s") from exc
        if out.returncode == 255:  # ssh's own failure, not the script's
            raise self._ssh_error(out.stderr, what)
        if out.returncode != 0:
            raise DeployError(f"{what} on {self.host} failed (exit {out.returncode}):\n"
                              f"{(out.stdout + out.stderr).strip()[-2000:]}")
        return out.stdout

    def _ssh_error(self, stderr: str, what: str) -> DeployError:
        for pattern, meaning, fix in _SSH_ERRORS:
            if pattern.search(stderr):
                return DeployError(f"{what}: {meaning} ({self.host}): {stderr.strip()[-300:]}. "
                                   f"Fix: {fix.format(host=self.host)}. Nothing on the board was changed")
        return DeployError(f"{what}: ssh to {self.host} failed: {stderr.strip()[-500:]}")

    def rsync(self, sources: list[str], dest: str, what: str) -> None:
        """Copy ``sources`` into ``dest`` on the board, deleting what they no longer have (a source
        ending in ``/`` copies the folder's contents, as rsync does)."""
        cmd = ["rsync", "-a", "--delete", "--exclude", "__pycache__", "-e", shlex.join(self.ssh_argv()),
               *([f"--rsync-path={self.sudo} rsync"] if self.sudo else []),
               *sources, f"{self.host}:{dest}"]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
        if out.returncode != 0:
            raise DeployError(f"{what}: rsync to {self.host}:{dest} failed (exit {out.returncode}): "
                              f"{out.stderr.strip()[-500:]}. Fix: the board needs rsync "
                              "(sudo apt-get install rsync) and room on its disk (df -h)")


def manifest(bundle_dir: Path) -> str:
    """``sha256sum -c`` input for the bundle: every artifact from bundle.json, and bundle.json itself."""
    bundle = Bundle.load(bundle_dir)
    lines = [f"{a.sha256}  {a.file}" for a in bundle.artifacts]
    lines.append(f"{sha256_file(bundle_dir / 'bundle.json')}  bundle.json")
    return "\n".join(lines) + "\n"


def probe(board: Board) -> bool:
    """Reach the board; returns whether it already has the runtime's venv. Sets ``board.sudo``."""
    p = shlex.quote(board.prefix)
    out = board.run(f"""set -e
if [ "$(id -u)" = 0 ]; then echo root
elif [ -w {p} ] || {{ [ ! -e {p} ] && [ -w "$(dirname {p})" ]; }}; then echo writable
elif sudo -n true 2>/dev/null; then echo sudo; else echo nosudo; fi
command -v rsync >/dev/null && echo rsync || echo norsync
[ -x {p}/venv/bin/python ] && echo venv || echo novenv
""", "connect")
    facts = out.split()
    if "nosudo" in facts:
        raise DeployError(f"{board.host}: the deploy user cannot write {board.prefix} and sudo asks for a "
                          "password. Fix: deploy as a user with passwordless sudo, or as root, or give a "
                          "--prefix the user owns. Nothing was changed")
    if "norsync" in facts:
        raise DeployError(f"{board.host}: rsync is not installed there. Fix: ssh {board.host} "
                          "sudo apt-get install -y rsync. Nothing was changed")
    board.sudo = "sudo -n" if "sudo" in facts else ""
    return "venv" in facts


def stage(board: Board, bundle_dir: Path) -> None:
    """Copy the runtime and the bundle to ``PREFIX/.deploy`` and check the bundle's sha256s there."""
    staging = f"{board.prefix}/.deploy"
    board.run(f"{board.sudo} mkdir -p {shlex.quote(staging)}/app {shlex.quote(staging)}/bundle",
              "make the staging folder")
    board.rsync([str(REPO / d) for d in APP_DIRS], f"{staging}/app/", "copy the runtime")
    board.rsync([f"{bundle_dir.resolve()}/"], f"{staging}/bundle/", "copy the bundle")
    check = f"cd {shlex.quote(staging)}/bundle && {board.sudo} sha256sum --check --strict --quiet <<'EOF'\n"
    try:
        board.run(check + manifest(bundle_dir) + "EOF\n", "check the bundle's sha256s")
    except DeployError as exc:
        raise DeployError(f"the bundle copied to {board.host}:{staging}/bundle does not match its "
                          f"bundle.json, so it was not installed and the running service was not "
                          f"touched. {exc}\nFix: if the files differ here too, the bundle was changed "
                          f"after export: re-export it (python -m export); else deploy again") from exc


def install(board: Board, profile: str) -> None:
    """Run the profile's install recipe on the board from the staged copy (first deploy only)."""
    recipe = load_profile(profile).install
    if recipe is None:
        raise DeployError(f"profile {profile} names no install recipe; install the runtime by hand "
                          f"(see devices/install/) and deploy again")
    rel = recipe.relative_to(REPO)
    board.run(f"cd {shlex.quote(board.prefix)}/.deploy/app && PREFIX={shlex.quote(board.prefix)} "
              f"SUDO={shlex.quote(board.sudo)} bash {shlex.quote(str(rel))} {shlex.quote(profile)}",
              f"install recipe {rel}", timeout=3600)


def swap(board: Board) -> None:
    """Make the staged runtime and bundle the live ones; the previous ones stay as ``*.prev``."""
    p, s = shlex.quote(board.prefix), board.sudo
    board.run(f"""set -e
cd {p}
{s} rm -rf app.new bundle.new app.prev bundle.prev
{s} cp -a .deploy/app app.new
{s} cp -a .deploy/bundle bundle.new
# TensorRT's engine cache must stay writable by the service: keep the folder and its owner.
if [ -d bundle/trt_cache ]; then {s} mkdir -p bundle.new/trt_cache; \
{s} chown --reference=bundle/trt_cache bundle.new/trt_cache; fi
for d in app bundle; do
  if [ -e "$d" ]; then {s} mv "$d" "$d.prev"; fi
  {s} mv "$d.new" "$d"
done
""", "install the new runtime and bundle")


def restart(board: Board, restart_cmd: str | None, logs_cmd: str | None, wait_s: float) -> str:
    """Restart the service and return its first ``[stats]`` line (waits up to ``wait_s``).

    Defaults: ``systemctl enable`` (so it also starts at boot) and ``restart``, and the service's
    journal from the moment before the restart (so an old instance's stats line is not taken for the
    new one's).
    """
    since = board.run("date +%s", "read the board's clock").strip()
    s = board.sudo
    board.run(restart_cmd or f"{s} systemctl enable --quiet {SERVICE} && {s} systemctl restart {SERVICE}",
              "restart the service", timeout=wait_s)
    logs_cmd = logs_cmd or f"{board.sudo} journalctl -u {SERVICE} -f -o cat --since @{since}"
    proc = subprocess.Popen([*board.ssh_argv(), board.host, logs_cmd], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline, tail = time.monotonic() + wait_s, []
    try:
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
                break
            line = proc.stdout.readline()
            if not line:
                break
            tail = (tail + [line.rstrip()])[-20:]
            if "[stats]" in line:
                return line.strip()
    finally:
        proc.kill()
        proc.wait()
    raise DeployError(f"the service on {board.host} was restarted but printed no [stats] line within "
                      f"{wait_s:.0f} s. Its last lines:\n" + "\n".join(tail) +
                      f"\nFix: read the log on the board ({logs_cmd}); the previous runtime and bundle "
                      f"are in {board.prefix}/app.prev and bundle.prev")


@dataclass
class DeployPlan:
    """What ``python -m devices deploy`` was asked to do."""

    host: str
    bundle: Path
    profile: str = "auto"
    prefix: str = "/opt/edgeflag"
    ssh_options: list[str] = field(default_factory=list)
    install: str = "auto"  # auto: only when the board has no venv; always; never
    restart_cmd: str | None = None  # None: systemctl enable + restart edgeflag-camera
    logs_cmd: str | None = None  # None: the service's journal since the restart
    wait_s: float = 120.0


def deploy(plan: DeployPlan, say=print) -> str:
    """Run the deploy steps; returns the service's first stats line. Raises DeployError."""
    manifest(plan.bundle)  # a broken bundle fails here, before the board is contacted
    if plan.profile != "auto":
        load_profile(plan.profile)
    board = Board(plan.host, plan.prefix, plan.ssh_options)
    has_venv = probe(board)
    say(f"deploy: {plan.host} reached ({'with sudo' if board.sudo else 'no sudo needed'}; runtime "
        f"{'installed' if has_venv else 'not installed yet'})")
    stage(board, plan.bundle)
    say(f"deploy: runtime and bundle copied to {plan.prefix}/.deploy, sha256s checked on the board")
    if plan.install == "always" or (plan.install == "auto" and not has_venv):
        install(board, _remote_profile(board) if plan.profile == "auto" else plan.profile)
        say("deploy: install recipe done")
    elif not has_venv:
        raise DeployError(f"{plan.host} has no runtime in {plan.prefix}/venv and --install never was "
                          "given. Fix: deploy with --install auto")
    swap(board)
    say(f"deploy: {plan.prefix}/app and {plan.prefix}/bundle replaced (previous ones: *.prev); restarting")
    return restart(board, plan.restart_cmd, plan.logs_cmd, plan.wait_s)


def _remote_profile(board: Board) -> str:
    """The profile ``python -m devices detect`` names on the board (with the board's python3)."""
    out = board.run(f"cd {shlex.quote(board.prefix)}/.deploy/app && python3 -m devices detect --json",
                    "detect the board")
    return json.loads(out)["profile"]


def main_deploy(plan: DeployPlan) -> int:
    """CLI wrapper: print progress and the first stats line; 2 with the reason on failure."""
    try:
        line = deploy(plan)
    except EdgeFlagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"deploy: done. First stats line from {plan.host}:\n{line}")
    return 0
