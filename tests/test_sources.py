"""File, folder and spec handling of runtime.sources, on real files written with OpenCV."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from runtime.errors import EdgeFlagError
from runtime.sources import ACCEPTED_FORMS, SourceError, open_source
from runtime.sources.capture import stream_source
from runtime.sources.gstreamer import APPSINK, CsiCamera, gstreamer_available
from runtime.sources.image_folder import ImageFolderSource
from runtime.sources.video_file import VideoFileSource

STEP, BASE = 10, 5  # frame i is a flat grey of BASE + STEP * i: decodable back to i through lossy codecs


def write_video(path: Path, n: int, fourcc: str, fps: float = 25.0, size=(64, 48)) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    assert writer.isOpened(), f"this OpenCV cannot write {fourcc}"
    for i in range(n):
        writer.write(np.full((size[1], size[0], 3), BASE + STEP * i, np.uint8))
    writer.release()
    return path


def level_index(image: np.ndarray) -> int:
    return round((float(image.mean()) - BASE) / STEP)


@pytest.mark.parametrize(("fourcc", "suffix"), [("mp4v", ".mp4"), ("MJPG", ".avi")])
def test_video_file_delivers_every_frame_in_order(tmp_path, fourcc, suffix):
    path = write_video(tmp_path / f"line{suffix}", 20, fourcc)
    with open_source(str(path)) as src:
        assert isinstance(src, VideoFileSource) and not src.live
        frames = list(src)
        stats = src.stats
    assert [f.index for f in frames] == list(range(20))
    assert [level_index(f.image) for f in frames] == list(range(20))
    assert all(f.image.shape == (48, 64, 3) and f.image.dtype == np.uint8 for f in frames)
    assert stats["frames"] == 20 and stats["dropped_stale"] == 0 and stats["corrupt_skipped"] == 0
    assert stats["fps"] == pytest.approx(25.0)


def test_realtime_replay_keeps_every_frame_and_paces_to_the_file_rate(tmp_path):
    path = write_video(tmp_path / "line.mp4", 6, "mp4v", fps=50.0)
    with open_source(str(path), realtime=True) as src:
        assert src._pacer.period == pytest.approx(1 / 50.0)
        assert [f.index for f in src] == list(range(6))
    with open_source(str(path), realtime=True, fps=100.0) as src:
        assert src._pacer.period == pytest.approx(1 / 100.0)
    with open_source(str(path)) as src:
        assert src._pacer.period == 0.0  # not realtime: as fast as the loop reads


def test_stop_ends_a_file_source_early(tmp_path):
    path = write_video(tmp_path / "line.mp4", 10, "mp4v")
    with open_source(str(path)) as src:
        assert src.read().index == 0
        src.stop()
        assert src.read() is None


def _write_parts(folder: Path) -> list[str]:
    folder.mkdir()
    colours = {"part_000.png": (255, 0, 0), "part_001.png": (0, 255, 0), "part_003.png": (0, 0, 255),
               "part_005.jpg": (255, 255, 255)}
    for name, bgr in colours.items():
        cv2.imwrite(str(folder / name), np.full((20, 30, 3), bgr, np.uint8))
    good = (folder / "part_003.png").read_bytes()
    (folder / "part_002.png").write_bytes(good[: len(good) // 2])  # truncated
    (folder / "part_004.png").write_bytes(b"")  # empty
    (folder / "notes.txt").write_text("not an image")
    return sorted(colours)


def test_folder_replays_sorted_and_skips_corrupt_files(tmp_path):
    _write_parts(tmp_path / "parts")
    with open_source(str(tmp_path / "parts")) as src:
        assert isinstance(src, ImageFolderSource)
        frames = list(src)
        stats = src.stats
    assert [Path(f.name).name for f in frames] == ["part_000.png", "part_001.png", "part_003.png",
                                                   "part_005.jpg"]
    assert [f.index for f in frames] == [0, 1, 3, 5]  # positions in the listing: gaps are skipped files
    assert stats["corrupt_skipped"] == 2 and stats["frames"] == 4 and stats["files"] == 6
    assert any("part_002.png" in c for c in stats["corrupt_files"])
    # Frames are BGR like a camera's: the first file was written as pure blue in BGR order.
    assert frames[0].image[0, 0].tolist() == [255, 0, 0]
    assert frames[2].image[0, 0].tolist() == [0, 0, 255]


def test_glob_selects_matching_files_in_sorted_order(tmp_path):
    _write_parts(tmp_path / "parts")
    with open_source(str(tmp_path / "parts" / "*.png")) as src:
        names = [Path(f.name).name for f in src]
        assert src.stats["corrupt_skipped"] == 2
    assert names == ["part_000.png", "part_001.png", "part_003.png"]
    (tmp_path / "parts" / "sub").mkdir()
    cv2.imwrite(str(tmp_path / "parts" / "sub" / "deep.png"), np.zeros((8, 8, 3), np.uint8))
    with open_source(str(tmp_path / "parts" / "**" / "*.png")) as src:
        assert "deep.png" in [Path(f.name).name for f in src]


def test_single_image_file_is_a_one_frame_replay(tmp_path):
    cv2.imwrite(str(tmp_path / "one.png"), np.zeros((8, 8, 3), np.uint8))
    with open_source(str(tmp_path / "one.png")) as src:
        assert [f.index for f in src] == [0]


def test_csi_builds_the_jetson_argus_pipeline():
    pipeline = CsiCamera(sensor_id=1, width=1920, height=1080, fps=29.97, flip_method=2).pipeline()
    assert pipeline == (
        "nvarguscamerasrc sensor-id=1 ! video/x-raw(memory:NVMM), width=(int)1920, height=(int)1080, "
        "format=(string)NV12, framerate=(fraction)30000/1001 ! nvvidconv flip-method=2 ! "
        "video/x-raw, format=(string)BGRx ! videoconvert ! video/x-raw, format=(string)BGR ! "
        "appsink drop=true max-buffers=1 sync=false")
    assert CsiCamera().pipeline().startswith("nvarguscamerasrc sensor-id=0 ! ")
    assert "framerate=(fraction)30/1" in CsiCamera().pipeline()
    assert "framerate=(fraction)25/2" in CsiCamera(fps=12.5).pipeline()
    assert pipeline.endswith(APPSINK)


@pytest.mark.skipif(gstreamer_available(), reason="this OpenCV has GStreamer; the error path cannot occur")
@pytest.mark.parametrize("spec", ["csi://0", "videotestsrc ! videoconvert ! appsink"])
def test_pipelines_without_gstreamer_explain_the_fix(spec):
    with pytest.raises(SourceError, match="built without GStreamer") as err:
        open_source(spec)
    assert "--system-site-packages" in str(err.value)


@pytest.mark.parametrize(("spec", "match"), [
    ("", "empty --source"),
    ("no/such/video.mp4", "no such file or folder"),
    ("rstp://camera/stream", "did you mean rtsp://"),
    ("csi://front", "expected a camera number"),
    ("picamera2://x", "expected a camera number"),
])
def test_bad_specs_say_what_was_given_and_what_is_accepted(spec, match):
    with pytest.raises(SourceError, match=match) as err:
        open_source(spec)
    assert isinstance(err.value, EdgeFlagError)
    if spec:
        assert repr(spec) in str(err.value)
    assert ACCEPTED_FORMS in str(err.value)


def test_unopenable_files_and_folders_fail_at_open(tmp_path):
    (tmp_path / "fake.mp4").write_text("not a video")
    with pytest.raises(SourceError, match="could not open this file as a video"):
        open_source(str(tmp_path / "fake.mp4")).open()
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="no image files found"):
        open_source(str(tmp_path / "empty")).open()
    with pytest.raises(SourceError, match="no image files found"):
        open_source(str(tmp_path / "*.png")).open()


def test_missing_v4l2_camera_fails_at_open_with_a_hint():
    src = open_source("/dev/video97")
    assert src.live
    with pytest.raises(SourceError, match="V4L2") as err:
        src.open()
    assert "picamera2" in str(err.value)


def test_picamera2_missing_gives_the_install_recipe():
    try:
        import picamera2  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("picamera2 is installed here")
    with pytest.raises(SourceError, match="apt install -y python3-picamera2"):
        open_source("picamera2")


def test_unreachable_stream_fails_at_open_and_hides_credentials():
    from runtime.sources import ReconnectPolicy

    src = stream_source("rtsp://admin:s3cret@127.0.0.1:9/stream", policy=ReconnectPolicy(stall_timeout=2))
    assert "s3cret" not in src.description and "admin:***@127.0.0.1:9/stream" in src.description
    with pytest.raises(SourceError, match="could not open"):
        src.open()
