"""FommEngine end to end: real FaceMesh on a shipped portrait, a generated driving video, tiny FOMM."""

import json
from pathlib import Path

import cv2
import matplotlib
import numpy as np
import pytest

from monalisa.config import FommConfig
from monalisa.errors import MonalisaError
from precompute.fomm.engine import FommEngine
from precompute.fomm.errors import FommError
from precompute.portrait import find_faces, load_portrait

GRACE = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
YAWS = [-30.0, -15.0, 0.0, 15.0, 30.0]
FRAMES = 16


@pytest.fixture(scope="module")
def portrait():
    image = load_portrait(GRACE)
    return image, find_faces(image, "largest")[0]


def write_driving(path, image, frames=FRAMES, gaze=True):
    """The portrait's head sliding a little left and right (a stand-in for a person), 30 fps."""
    crop = image[60:420, 80:440]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, (320, 320))
    for i in range(frames):
        shift = np.float32([[1, 0, 6 * np.sin(2 * np.pi * i / frames)], [0, 1, 0]])
        frame = cv2.warpAffine(cv2.resize(crop, (320, 320)), shift, (320, 320), borderMode=cv2.BORDER_REPLICATE)
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    if gaze:
        yaw = np.linspace(1, -1, frames)
        samples = [{"index": i, "t": i / 30, "x": (1 - y) / 2, "y": 0.5, "yaw": float(y), "pitch": 0.0}
                   for i, y in enumerate(yaw)]
        path.with_suffix(".json").write_text(json.dumps({"format": "monalisa-gaze/1", "frames": samples}))
    return path


class EchoModel:
    """Stands in for FOMM: returns the driving crops, and counts them."""

    def __init__(self):
        self.calls = []

    def animate_many(self, source, drivings, driving_initial, relative=True, adapt_movement_scale=True):
        assert source.shape == driving_initial.shape == (256, 256, 3)
        assert source.dtype == np.float32 and 0 <= source.min() and source.max() <= 1
        assert relative and adapt_movement_scale
        for driving in drivings:
            self.calls.append(driving)
            yield driving


def test_engine_blends_each_cell_inside_the_head_square_only(tmp_path, portrait):
    image, face = portrait
    video = write_driving(tmp_path / "gaze.mp4", image)
    model = EchoModel()
    engine = FommEngine(image, face, tmp_path / "unused.pth.tar", video, FommConfig(), YAWS, [0.0],
                        model=model, progress=False)
    rect = engine.patch_rect()
    x0, y0, x1, y1 = face.box
    assert rect.x <= x0 and rect.y <= y0 and rect.x + rect.width >= x1 and rect.y + rect.height >= y1
    assert rect.fits_in(image.shape[1], image.shape[0])
    patches = [engine.render(yaw, 0.0) for yaw in YAWS]
    for patch in patches:
        assert patch.shape == (rect.height, rect.width, 3) and patch.dtype == np.uint8
        # the alpha is ~0 at the square's border: the painting shows through there
        original = image[rect.slices]
        assert np.abs(patch[0].astype(int) - original[0]).max() <= 6
    frames = engine.driving.cell_frames[0]
    assert frames[0] > frames[-1]  # column 0 (yaw -30) needs the dot at the right: recorded yaw -1
    assert len(model.calls) == len(set(frames.tolist()))  # one network run per distinct frame
    engine.render(YAWS[0], 0.0)
    assert len(model.calls) == len(set(frames.tolist()))
    params = engine.params()
    assert params["driving"] == "gaze.mp4" and params["driving_gaze"] == "recorded"
    assert params["driving_frames"] == [frames.tolist()]
    assert json.loads(json.dumps(params)) == params


def test_missing_checkpoint_is_reported_before_the_video_is_read(tmp_path, portrait):
    image, face = portrait
    with pytest.raises(FommError, match="checkpoint not found"):
        FommEngine(image, face, tmp_path / "none.pth.tar", tmp_path / "none.mp4", FommConfig(), YAWS, [0.0])


def test_driving_errors_are_one_line(tmp_path, portrait):
    image, face = portrait
    blank = tmp_path / "blank.mp4"
    writer = cv2.VideoWriter(str(blank), cv2.VideoWriter_fourcc(*"mp4v"), 30, (64, 64))
    for _ in range(5):
        writer.write(np.zeros((64, 64, 3), np.uint8))
    writer.release()
    with pytest.raises(MonalisaError, match="no face found in the driving video") as caught:
        FommEngine(image, face, tmp_path / "x", blank, FommConfig(), YAWS, [0.0], model=EchoModel(),
                   progress=False)
    assert "\n" not in str(caught.value)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from precompute.fomm import make_random_checkpoint

    return make_random_checkpoint(tmp_path_factory.mktemp("fomm") / "tiny.pth.tar")


def test_tiny_random_fomm_end_to_end(tmp_path, portrait, checkpoint):
    image, face = portrait
    video = write_driving(tmp_path / "gaze.mp4", image, frames=8)
    engine = FommEngine(image, face, checkpoint, video, FommConfig(runtime="torch"), [-20.0, 0.0, 20.0],
                        [0.0], progress=False)
    rect = engine.patch_rect()
    patches = [engine.render(yaw, 0.0) for yaw in (-20.0, 0.0, 20.0)]
    for patch in patches:
        assert patch.shape == (rect.height, rect.width, 3) and patch.dtype == np.uint8
    centre = (slice(rect.height // 3, 2 * rect.height // 3), slice(rect.width // 3, 2 * rect.width // 3))
    assert not np.array_equal(patches[1][centre], image[rect.slices][centre])  # the network drew here
    assert engine.params()["checkpoint_sha256"] and engine.params()["runtime"] == "torch"


def test_measured_path_follows_real_irises(tmp_path, portrait):
    """No gaze.json: the irises (turned by the warp engine, read by FaceMesh) decide the frames."""
    from monalisa.config import WarpConfig
    from precompute.warp import WarpEngine

    image, face = portrait
    turns = np.linspace(-30, 30, 9)
    warp = WarpEngine(image, [face], WarpConfig(), turns.tolist(), [0.0])
    rect = warp.patch_rect()
    video = tmp_path / "plain.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 30, (image.shape[1], image.shape[0]))
    for yaw in turns:
        frame = image.copy()
        frame[rect.slices] = warp.render(float(yaw), 0.0)
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    engine = FommEngine(image, face, tmp_path / "x", video, FommConfig(), YAWS, [0.0], model=EchoModel(),
                        progress=False)
    frames = engine.driving.cell_frames[0]
    assert engine.driving.gaze_source == "measured"
    assert np.all(np.diff(frames) >= 0) and frames[0] <= 1 and frames[-1] >= 7
    assert engine.driving.initial_frame in (3, 4, 5)


def test_cli_builds_a_fomm_pool(tmp_path, portrait, checkpoint, capsys):
    from monalisa.cli import main
    from monalisa.pool.format import load_pool

    video = write_driving(tmp_path / "gaze.mp4", portrait[0], frames=6)
    out = tmp_path / "pool"
    argv = ["precompute", str(GRACE), "--engine", "fomm", "--checkpoint", str(checkpoint), "--driving", str(video),
            "--out", str(out), "--yaw-steps", "2", "--runtime", "torch", "--no-sheet"]
    assert main(argv) == 0
    pool = load_pool(out)
    assert pool.manifest.engine == "fomm" and pool.cols == 2
    assert pool.manifest.engine_params["checkpoint"] == "tiny.pth.tar"
    assert np.array_equal(pool.portrait, portrait[0])

    argv[argv.index(str(checkpoint))] = str(tmp_path / "missing.pth.tar")
    assert main(argv) != 0
    assert "FOMM checkpoint not found" in capsys.readouterr().err
