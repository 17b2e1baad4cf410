"""A Debian bookworm arm64 userland (the base of Raspberry Pi OS) run under qemu user-mode emulation.

``python -m devices.emulate build`` makes the sysroot from Debian's packages and installs the Pi
recipe's pinned requirements (``devices/requirements/pi.txt``) from aarch64 wheels; ``run CMD...``
runs a command of it with the repository importable. Nothing arm64 runs while building (no binfmt).
"""

from devices.emulate.qemu import arm_command, arm_env
from devices.emulate.sysroot import Sysroot, build, missing_tools

__all__ = ["Sysroot", "build", "missing_tools", "arm_command", "arm_env"]
