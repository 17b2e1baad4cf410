#!/usr/bin/env bash
# Install the camera runtime on a Raspberry Pi 4 or 5 with Raspberry Pi OS Bookworm 64-bit.
# Usage: bash devices/install/pi.sh [pi4|pi5]        (PREFIX=/opt/edgeflag by default)
set -euo pipefail
PROFILE=${1:-pi5}
source "$(dirname "$0")/common.sh"

# Picamera2 is apt-only on Bookworm (PEP 668: everything else goes in a venv that can see it).
$SUDO apt-get update
$SUDO apt-get install -y python3-venv python3-picamera2
make_venv --system-site-packages
# Pins (and why) in devices/requirements/pi.txt, shared with the arm64 emulation test.
$SUDO "$VENV/bin/pip" install -r "$REPO/devices/requirements/pi.txt"
copy_app
check_runtime
install_service "$PROFILE"
