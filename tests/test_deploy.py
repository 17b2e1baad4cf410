"""``make deploy`` for real: an sshd (Debian's openssh-server) on loopback, a throwaway key, a temporary
PREFIX standing in for the board's /opt/edgeflag, and the camera program as the "service".

What must hold: the runtime (not the training code) and the bundle land there and are checked, the
service is restarted and its first stats line printed; a bundle that fails its checksum after the
copy, a wrong host and a refused key each give a clear error and leave the running service as it was.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from devices.deploy import DeployError, DeployPlan, deploy
from runtime.bundle import Bundle
from runtime.errors import BundleError
from runtime.fsutil import sha256_file
from tests.runtime_support import wait_for

REPO = Path(__file__).resolve().parents[1]
SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
pytestmark = pytest.mark.skipif(
    not (Path(SSHD).is_file() and shutil.which("rsync") and shutil.which("ssh")),
    reason="needs openssh-server, openssh-client and rsync (Debian: apt-get install openssh-server rsync)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    """An sshd on 127.0.0.1 that accepts one throwaway key for this user; yields its facts."""
    d = tmp_path_factory.mktemp("sshd")
    host_key, key, other = _keygen(d / "host_key"), _keygen(d / "client_key"), _keygen(d / "other_key")
    (d / "authorized_keys").write_text((d / "client_key.pub").read_text())
    (d / "authorized_keys").chmod(0o600)
    port = _free_port()
    (d / "sshd_config").write_text(f"""Port {port}
ListenAddress 127.0.0.1
HostKey {host_key}
AuthorizedKeysFile {d}/authorized_keys
PidFile {d}/sshd.pid
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
LogLevel VERBOSE
""")
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation folder
    log = open(d / "sshd.log", "w")
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(d / "sshd_config")], stderr=log)

    def listening() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0
    wait_for(listening, 20, "sshd listening")
    base = [f"Port={port}", "IdentitiesOnly=yes", "StrictHostKeyChecking=accept-new",
            f"UserKnownHostsFile={d}/known_hosts"]
    yield {"host": f"{getpass.getuser()}@127.0.0.1", "options": [*base, f"IdentityFile={key}"],
           "wrong_key": [*base, f"IdentityFile={other}"], "log": d / "sshd.log"}
    proc.terminate()
    proc.wait(10)
    log.close()


@pytest.fixture
def board(tmp_path):
    """The board's PREFIX with a runtime venv (this interpreter) and a video for the camera."""
    prefix = tmp_path / "opt-edgeflag"
    (prefix / "venv" / "bin").mkdir(parents=True)
    python = prefix / "venv" / "bin" / "python"
    python.write_text(f"#!/bin/sh\nexec {sys.executable} \"$@\"\n")  # the board's venv python
    python.chmod(0o755)
    video = tmp_path / "line.mp4"
    out = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (96, 96))
    rng = np.random.default_rng(0)
    for _ in range(600):  # 200 s at --fps 3: the "service" outlives the failed deploys below
        out.write(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8))
    out.release()
    yield prefix, video
    pid = prefix / "camera.pid"
    if pid.is_file():
        subprocess.run(["kill", pid.read_text().strip()], capture_output=True)


def _plan(sshd, prefix: Path, video: Path, bundle: Path, **kw) -> DeployPlan:
    # The test's "service": the camera program started in the background from PREFIX/app, like the
    # unit's ExecStart, logging to a file that the deploy follows for the first stats line.
    p = str(prefix)
    # "cd ...; nohup ... &", not "cd ... && nohup ... &": the latter backgrounds a subshell that keeps
    # ssh's stdout open, and the restart would return only when the camera ends.
    # The old process is waited for, as systemd's restart stops before it starts: one still writing
    # to the truncated log would leave a run of NUL bytes at the start of the new one.
    restart = (f"P={p}; if [ -f $P/camera.pid ]; then old=$(cat $P/camera.pid); kill $old 2>/dev/null; "
               f"for i in $(seq 100); do kill -0 $old 2>/dev/null || break; sleep 0.1; done; fi; "
               f"cd $P/app; nohup $P/venv/bin/python -m runtime.camera --bundle $P/bundle "
               f"--source {video} --realtime --fps 3 --headless --stats-every 1 "
               f"--events $P/events.jsonl > $P/camera.log 2>&1 < /dev/null & echo $! > $P/camera.pid")
    return DeployPlan(host=kw.pop("host", sshd["host"]), bundle=bundle, prefix=p,
                      ssh_options=kw.pop("ssh_options", sshd["options"]), restart_cmd=restart,
                      logs_cmd=f"tail -n +1 -F {p}/camera.log", wait_s=90, **kw)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def _corrupt_copy(bundle: Path, dest: Path) -> str:
    shutil.copytree(bundle, dest)
    artifact = Bundle.load(dest).artifacts[0]
    data = bytearray((dest / artifact.file).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (dest / artifact.file).write_bytes(bytes(data))
    return artifact.file


def test_deploy_installs_checks_restarts_and_refuses_bad_copies(sshd, board, tiny_bundle, tmp_path):
    prefix, video = board
    line = deploy(_plan(sshd, prefix, video, tiny_bundle), say=lambda _m: None)
    assert line.startswith("[stats]"), line
    app = prefix / "app"
    assert (app / "runtime" / "camera.py").is_file() and (app / "devices" / "pi4.toml").is_file()
    assert not (app / "train").exists() and not (app / "export").exists()  # no training code on the board
    live = prefix / "bundle"
    assert (live / "bundle.json").read_bytes() == (tiny_bundle / "bundle.json").read_bytes()
    shas = {a.file: a.sha256 for a in Bundle.load(live).artifacts}
    assert all(sha256_file(live / f) == s for f, s in shas.items())
    pid = int((prefix / "camera.pid").read_text())
    assert _alive(pid)

    bad = tmp_path / "bad-bundle"
    damaged = _corrupt_copy(tiny_bundle, bad)
    with pytest.raises(DeployError, match="does not match its bundle.json") as err:
        deploy(_plan(sshd, prefix, video, bad), say=lambda _m: None)
    assert damaged in str(err.value) and "not touched" in str(err.value)
    wrong_host = _plan(sshd, prefix, video, tiny_bundle,
                       ssh_options=[o for o in sshd["options"] if not o.startswith("Port=")]
                       + [f"Port={_free_port()}"])
    with pytest.raises(DeployError, match="cannot reach the board"):
        deploy(wrong_host, say=lambda _m: None)
    with pytest.raises(DeployError, match="refused the key"):
        deploy(_plan(sshd, prefix, video, tiny_bundle, ssh_options=sshd["wrong_key"]), say=lambda _m: None)
    # The running service is as it was: same process, same bundle, nothing swapped.
    assert _alive(pid) and int((prefix / "camera.pid").read_text()) == pid
    assert all(sha256_file(live / f) == s for f, s in shas.items())
    assert not (prefix / "bundle.prev").exists() and not (prefix / "app.prev").exists()

    # A second good deploy replaces the service, keeping the previous runtime and bundle aside.
    line = deploy(_plan(sshd, prefix, video, tiny_bundle), say=lambda _m: None)
    assert line.startswith("[stats]") and (prefix / "bundle.prev" / "bundle.json").is_file()
    new_pid = int((prefix / "camera.pid").read_text())
    assert new_pid != pid and _alive(new_pid)
    wait_for(lambda: not _alive(pid), 10, "the old camera process to stop")


def test_deploy_command_reports_a_refused_key_and_exits_2(sshd, tiny_bundle, tmp_path):
    opts = [arg for o in sshd["wrong_key"] for arg in ("--ssh-option", o)]
    out = subprocess.run([sys.executable, "-m", "devices", "deploy", "--host", sshd["host"], "--bundle",
                          str(tiny_bundle), "--prefix", str(tmp_path / "p"), *opts], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stderr.startswith("error: connect: the board refused the key") and "ssh-copy-id" in out.stderr
    assert not (tmp_path / "p").exists()


def test_a_broken_bundle_is_refused_before_the_board_is_contacted(tmp_path):
    (tmp_path / "b").mkdir()
    # 192.0.2.1 is TEST-NET-1: contacting it would end in a DeployError after ssh's timeout.
    with pytest.raises(BundleError, match="not a bundle"):
        deploy(DeployPlan(host="nobody@192.0.2.1", bundle=tmp_path / "b"), say=lambda _m: None)
