"""``--camera-resize``: the camera's hardware crops the ROI and scales to the model's input.

The Pi ISP and the Jetson VIC are not on this machine, so these tests pin what the runtime asks
of them (the nvvidconv pipeline, the Picamera2 configuration and ScalerCrop) against the CPU
path's own crop, and that every other source refuses the option with the fix.
"""

from __future__ import annotations

import sys
import types

import cv2
import numpy as np
import pytest

from runtime.contract import InputContract
from runtime.preprocess import crop_roi, prepare_bgr
from runtime.session import capture_geometry
from runtime.sources import SourceError, open_source
from runtime.sources.camera_resize import CameraResize
from runtime.sources.gstreamer import CsiCamera
from runtime.sources.picam import Picamera2Device, scaler_crop, video_configuration
from tests.test_runtime_settings import parse

ROI = (0.25, 0.1, 0.75, 0.9)
CONTRACT = InputContract(224, 224, roi=ROI)


def test_camera_crop_is_the_cpu_crop():
    frame = np.arange(720 * 1280 * 3, dtype=np.uint32).reshape(720, 1280, 3)
    left, top, right, bottom = CameraResize.for_contract(CONTRACT).crop_edges(1280, 720)
    assert np.array_equal(frame[top:bottom, left:right], crop_roi(frame, CONTRACT))
    assert CameraResize(224, 224).crop_edges(1280, 720) is None


def test_loop_contract_drops_the_roi_the_camera_already_cut():
    assert capture_geometry(CONTRACT, False) == (CONTRACT, None)
    contract, resize = capture_geometry(CONTRACT, True)
    assert contract.roi is None and (contract.height, contract.width) == (224, 224)
    assert resize == CameraResize(224, 224, ROI)
    # A model-sized frame from the camera goes through prepare untouched but for the colour swap.
    frame = np.random.default_rng(0).integers(0, 255, (224, 224, 3), dtype=np.uint8)
    assert np.array_equal(prepare_bgr(frame, contract), cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))


def test_roi_setting_replaces_the_bundle_roi_and_aspect_keeping_models_fall_back_to_the_cpu_resize():
    contract, _ = capture_geometry(CONTRACT, False, "0,0,0.5,1")
    assert contract.roi == (0.0, 0.0, 0.5, 1.0)
    assert capture_geometry(CONTRACT, False, "full")[0].roi is None
    contract, resize = capture_geometry(InputContract(224, 224), True, "0.1,0.1,0.9,0.9")
    assert contract.roi is None and resize.roi == (0.1, 0.1, 0.9, 0.9)
    said = []
    letterbox = InputContract(224, 224, resize="letterbox")
    assert capture_geometry(letterbox, True, log=said.append) == (letterbox, None)  # the CPU resizes
    assert "camera-side resize is off" in said[0] and "'letterbox'" in said[0]


def test_csi_pipeline_crops_and_scales_on_the_vic():
    resize = CameraResize.for_contract(CONTRACT)
    pipeline = CsiCamera(width=1280, height=720, resize=resize).pipeline()
    assert ("nvvidconv flip-method=0 left=320 right=960 top=72 bottom=648 ! "
            "video/x-raw, width=(int)224, height=(int)224, format=(string)BGRx ! videoconvert") in pipeline
    whole = CsiCamera(resize=CameraResize(96, 96)).pipeline()
    assert "flip-method=0 ! video/x-raw, width=(int)96, height=(int)96, format=(string)BGRx" in whole
    with pytest.raises(SourceError, match="flip-method 0"):
        CsiCamera(flip_method=2, resize=resize).pipeline()


def test_picamera2_configuration_and_scaler_crop():
    resize = CameraResize.for_contract(CONTRACT)
    assert video_configuration((320, 240), 30, None) == {
        "main": {"format": "RGB888", "size": (320, 240)}, "controls": {"FrameRate": 30.0}, "buffer_count": 2}
    assert video_configuration((2304, 1296), None, resize) == {
        "main": {"format": "RGB888", "size": (224, 224)}, "controls": {}, "buffer_count": 2,
        "sensor": {"output_size": (2304, 1296)}}
    # ScalerCrop is in sensor pixels, offset by where the mode's field of view starts.
    assert scaler_crop((16, 8, 4608, 2592), resize) == (16 + 1152, 8 + 259, 2304, 2074)
    assert scaler_crop((0, 0, 4608, 2592), CameraResize(224, 224)) is None


class StandInPicamera2:
    """Records what the runtime asks of Picamera2 (the library needs libcamera and a Pi)."""

    calls: list = []

    def __init__(self, num):
        self.camera_controls = {}

    def create_video_configuration(self, **kwargs):
        return kwargs

    def configure(self, config):
        self.calls.append(("configure", config["main"]["size"]))
        self.camera_controls = {"ScalerCrop": ((0, 0, 64, 64), (0, 0, 4608, 2592), (0, 0, 4608, 2592))}

    def set_controls(self, controls):
        self.calls.append(("set_controls", controls))

    def start(self):
        self.calls.append(("start",))

    def close(self):
        self.calls.append(("close",))


def test_picamera2_sets_the_crop_after_configure_and_before_start(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", types.SimpleNamespace(Picamera2=StandInPicamera2))
    StandInPicamera2.calls = []
    Picamera2Device(0, resize=CameraResize.for_contract(CONTRACT)).open()
    assert StandInPicamera2.calls == [("configure", (224, 224)),
                                      ("set_controls", {"ScalerCrop": (1152, 259, 2304, 2074)}), ("start",)]


@pytest.mark.parametrize("spec", ["0", "/dev/video0", "rtsp://cam/stream", "videotestsrc ! appsink"])
def test_sources_without_a_hardware_scaler_refuse_with_the_fix(spec):
    with pytest.raises(SourceError, match="--camera-resize needs a camera that crops and scales") as err:
        open_source(spec, camera_resize=CameraResize(224, 224))
    assert "--no-camera-resize" in str(err.value) and "--width 320 --height 240" in str(err.value)


def test_files_refuse_too(tmp_path):
    cv2.imwrite(str(tmp_path / "part.png"), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(SourceError, match="picamera2 .* and csi://N"):
        open_source(str(tmp_path), camera_resize=CameraResize(224, 224))


def test_flags_and_profiles():
    assert parse("--camera-resize")[0].camera_resize is True
    assert parse()[0].camera_resize is False
    pi5, _ = parse("--profile", "pi5")
    assert pi5.camera_resize and pi5.source == "picamera2" and pi5.width is None
    assert parse("--profile", "pi5", "--source", "0", "--no-camera-resize")[0].camera_resize is False
    jetson, _ = parse("--profile", "jetson-orin-nano")
    assert jetson.camera_resize and (jetson.width, jetson.height) == (1280, 720)  # the sensor mode
    assert not parse("--profile", "pi4")[0].camera_resize  # USB camera: the CPU resizes
