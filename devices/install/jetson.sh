#!/usr/bin/env bash
# Install the camera runtime on an NVIDIA Jetson (Orin Nano etc.) with JetPack 6 (Python 3.10).
# Usage: bash devices/install/jetson.sh [jetson-orin-nano]
#   ORT_INDEX: pip index with the JetPack-matched onnxruntime-gpu wheel (there is none on PyPI);
#   check https://pypi.jetson-ai-lab.io for the one matching your JetPack/CUDA.
set -euo pipefail
PROFILE=${1:-jetson-orin-nano}
ORT_INDEX=${ORT_INDEX:-https://pypi.jetson-ai-lab.io/jp6/cu126}
source "$(dirname "$0")/common.sh"

# The system OpenCV (JetPack's, with GStreamer for nvarguscamerasrc) is used through
# --system-site-packages: PyPI OpenCV wheels have no GStreamer, so none is installed here.
$SUDO apt-get update
$SUDO apt-get install -y python3-venv python3-pip
make_venv --system-site-packages
if ! "$VENV/bin/python" - <<'PY'
import re, sys
import cv2
sys.exit(0 if re.search(r"GStreamer:\s+YES", cv2.getBuildInformation()) else 1)
PY
then
  echo "error: the system OpenCV has no GStreamer support (needed for csi:// cameras)." >&2
  echo "fix: sudo apt-get install nvidia-opencv (part of nvidia-jetpack), then re-run this script" >&2
  exit 2
fi
# JetPack's OpenCV is built against numpy 1.x; tomli reads the TOML profiles on Python 3.10.
$SUDO "$VENV/bin/pip" install -r "$REPO/devices/requirements/jetson.txt"
$SUDO "$VENV/bin/pip" install --extra-index-url "$ORT_INDEX" onnxruntime-gpu
"$VENV/bin/python" -c "import onnxruntime as o; p = o.get_available_providers(); print('providers:', p); \
assert 'CUDAExecutionProvider' in p, 'onnxruntime-gpu without CUDA: wrong wheel for this JetPack'"
copy_app
check_runtime
install_service "$PROFILE"
