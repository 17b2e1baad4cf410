#!/usr/bin/env bash
# Install the camera runtime on an x86-64 Linux desktop/server (Python >= 3.11), CPU or NVIDIA GPU.
# Usage: bash devices/install/desktop.sh [desktop]
set -euo pipefail
PROFILE=${1:-desktop}
source "$(dirname "$0")/common.sh"

make_venv
ORT=onnxruntime
if command -v nvidia-smi >/dev/null 2>&1; then ORT=onnxruntime-gpu; fi  # CUDA provider
$SUDO "$VENV/bin/pip" install numpy opencv-python-headless "ai-edge-litert>=2.3,<3" "$ORT"
copy_app
check_runtime
install_service "$PROFILE"
