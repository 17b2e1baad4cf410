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
# apt's picamera2/simplejpeg are built against numpy 1.24: numpy must stay < 2, and with it the
# last OpenCV and ml_dtypes that accept numpy 1 (this set resolves on cp311 aarch64).
$SUDO "$VENV/bin/pip" install "numpy<2" "ml_dtypes<0.6" "opencv-python-headless<4.12" "ai-edge-litert==2.3.0"
copy_app
check_runtime
install_service "$PROFILE"
