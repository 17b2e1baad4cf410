# Shared steps of the install recipes: sourced by pi.sh, jetson.sh and desktop.sh, not run alone.
# Installs only the runtime (runtime/ + devices/) under $PREFIX: no training code, no TensorFlow.
# Layout:  $PREFIX/venv (Python + numpy + OpenCV + one engine)   $PREFIX/app (runtime/, devices/)
#          $PREFIX/bundle (copy a bundle here)   /var/lib/edgeflag (events, snapshots; the service's)

PREFIX=${PREFIX:-/opt/edgeflag}
APP="$PREFIX/app"
VENV="$PREFIX/venv"
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SERVICE_USER=${SERVICE_USER:-edgeflag}
SUDO=${SUDO-sudo}  # SUDO= (empty) when already root

make_venv() {  # $1: extra venv flags (e.g. --system-site-packages)
  $SUDO mkdir -p "$PREFIX"
  [ -x "$VENV/bin/python" ] || $SUDO "${PYTHON:-python3}" -m venv ${1:-} "$VENV"
  $SUDO "$VENV/bin/pip" install --upgrade pip
}

copy_app() {
  $SUDO mkdir -p "$APP" "$PREFIX/bundle"
  $SUDO rm -rf "$APP/runtime" "$APP/devices"
  $SUDO cp -r "$REPO/runtime" "$REPO/devices" "$APP/"
  $SUDO find "$APP" -name __pycache__ -prune -exec rm -rf {} +
}

check_runtime() {  # the program starts, and TensorFlow is not needed (nor present)
  (cd "$APP" && "$VENV/bin/python" -m runtime.camera --list-profiles)
  (cd "$APP" && "$VENV/bin/python" -c "import sys, runtime.session, runtime.backends as b; \
print('engines:', [s.name for s in b.list_backends() if s.available()]); \
assert 'tensorflow' not in sys.modules")
}

render_unit() {  # the service unit for this PREFIX (the shipped file says /opt/edgeflag)
  sed "s|/opt/edgeflag|$PREFIX|g" "$REPO/devices/systemd/edgeflag-camera.service"
}

install_service() {  # $1: device profile name; SKIP_SERVICE=1 only installs the program
  if [ -n "${SKIP_SERVICE:-}" ]; then
    echo "SKIP_SERVICE set: not installing the systemd service. Try it:"
    echo "  cd $APP && $VENV/bin/python -m runtime.camera --profile $1 --bundle BUNDLE --source SOURCE"
    return
  fi
  if ! id -u "$SERVICE_USER" >/dev/null 2>&1; then
    $SUDO useradd --system --home-dir "$PREFIX" --shell /usr/sbin/nologin "$SERVICE_USER"
  fi
  for group in video gpio render; do  # cameras, GPIO reject output, Jetson GPU
    if getent group "$group" >/dev/null; then $SUDO usermod -aG "$group" "$SERVICE_USER"; fi
  done
  # ONNX Runtime's TensorRT provider writes its engine cache next to the artifact.
  $SUDO install -d -o "$SERVICE_USER" "$PREFIX/bundle/trt_cache"
  render_unit | $SUDO tee /etc/systemd/system/edgeflag-camera.service >/dev/null
  if [ ! -f /etc/default/edgeflag-camera ]; then
    printf 'EDGEFLAG_PROFILE=%s\n# extra flags, e.g. --source /dev/video2 --sink webhook:http://plc:8080/reject\nEDGEFLAG_ARGS=\n' \
      "$1" | $SUDO tee /etc/default/edgeflag-camera >/dev/null
  fi
  $SUDO systemctl daemon-reload
  echo "installed. Next: copy a bundle (bundles/<name>/ from the training machine) to $PREFIX/bundle,"
  echo "check it:  cd $APP && $VENV/bin/python -m runtime.camera --profile $1 --bundle $PREFIX/bundle --max-frames 100"
  echo "then:      sudo systemctl enable --now edgeflag-camera   (logs: journalctl -u edgeflag-camera -f)"
}
