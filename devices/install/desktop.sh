#!/usr/bin/env bash
# Install the camera runtime on a Linux desktop/server or any other CPU (x86-64 or aarch64), Python
# >= 3.10 (PYTHON=/path/to/python3.10 picks one that is not the system's), CPU or NVIDIA GPU.
# Usage: bash devices/install/desktop.sh [desktop|generic-cpu|jetson-nano]
set -euo pipefail
PROFILE=${1:-desktop}
source "$(dirname "$0")/common.sh"

make_venv
ORT=onnxruntime
if command -v nvidia-smi >/dev/null 2>&1; then ORT=onnxruntime-gpu; fi  # CUDA provider
$SUDO "$VENV/bin/pip" install -r "$REPO/devices/requirements/cpu.txt" "$ORT"
copy_app
check_runtime
install_service "$PROFILE"
