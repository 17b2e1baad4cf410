"""The device program is slim: numpy, OpenCV and one engine, never TensorFlow (proved in subprocesses)."""

from __future__ import annotations

import json
import subprocess
import sys

from runtime.bundle import Bundle
from tests.runtime_support import REPO, belt, camera_env, confident_parts

FORBIDDEN = ("tensorflow", "keras", "tf2onnx", "onnx", "matplotlib", "train", "export", "benchmarks")
ENGINES = ("ai_edge_litert", "tflite_runtime", "onnxruntime")

# Report top-level third-party/our packages imported by the snippet run before it.
REPORT = """
import json, sys
top = {m.split('.')[0] for m in sys.modules} - set(sys.stdlib_module_names)
print(json.dumps(sorted(top)))
"""


def imported_after(snippet: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", snippet + REPORT], cwd=REPO, env=camera_env(),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_importing_the_camera_program_pulls_in_no_tensorflow():
    mods = imported_after("import runtime.camera, runtime.session, runtime.frame_loop, runtime.driver\n"
                          "import runtime.overlay\n"
                          "import runtime.profile, runtime.debounce, runtime.stats\n"
                          "import runtime.sources, runtime.sinks\n")
    assert not mods & set(FORBIDDEN), sorted(mods & set(FORBIDDEN))
    assert not mods & set(ENGINES)  # engines load only when an artifact is opened


def test_help_imports_nothing_heavy():
    # --help must be instant on a Pi: not even numpy or OpenCV are imported for it.
    mods = imported_after("import runtime.camera as c\n"
                          "try:\n    c.main(['--help'])\nexcept SystemExit:\n    pass\n")
    assert not mods & {"numpy", "cv2", *FORBIDDEN, *ENGINES}, sorted(mods)
    out = subprocess.run([sys.executable, "-m", "runtime.camera", "--help"], cwd=REPO, env=camera_env(),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "--source" in out.stdout and "--profile" in out.stdout


def test_a_full_run_uses_numpy_opencv_and_exactly_one_engine(tiny_bundle, tiny_run, tmp_path):
    video = tmp_path / "belt.mp4"
    belt(tiny_run, confident_parts(tiny_bundle, tiny_run), "odo", video, frames_per_part=4)
    artifact = Bundle.load(tiny_bundle).select()
    mods = imported_after(
        "from runtime.session import run\n"
        f"s = run({str(tiny_bundle)!r}, {str(video)!r}, events={str(tmp_path / 'e.jsonl')!r}, "
        "stats_every=0, show=False, log=lambda line: None)\n"
        "assert s.frames == 12 and s.events == 2, s\n")
    assert not mods & set(FORBIDDEN), sorted(mods & set(FORBIDDEN))
    engine = "ai_edge_litert" if artifact.format == "tflite" else "onnxruntime"
    assert mods & set(ENGINES) == {engine}
    assert {"numpy", "cv2", "runtime"} <= mods
