"""Tests for the FOMM reimplementation: checkpoint layout, errors, keypoints, animation, ONNX."""

import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from precompute.fomm import FommError, FommModel, FommNetworkConfig, make_random_checkpoint  # noqa: E402
from precompute.fomm.checkpoint import (  # noqa: E402
    build_generator,
    build_kp_detector,
    infer_config,
    load_networks,
)
from precompute.fomm.errors import import_onnxruntime, import_torch  # noqa: E402
from precompute.fomm.model import (  # noqa: E402
    DownBlock2d,
    ResBlock2d,
    UpBlock2d,
    convex_hull_area,
    normalize_kp,
)

SIZE = 256


def smooth_image(seed):
    """A blurry random RGB image in [0, 1], more image-like than white noise."""
    coarse = np.random.default_rng(seed).random((8, 8, 3)).astype(np.float32)
    return np.repeat(np.repeat(coarse, SIZE // 8, axis=0), SIZE // 8, axis=1)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_random_checkpoint(tmp_path_factory.mktemp("fomm") / "tiny.pth.tar")


@pytest.fixture(scope="module")
def torch_model(checkpoint):
    return FommModel.from_checkpoint(checkpoint, runtime="torch")


@pytest.fixture(scope="module")
def onnx_model(checkpoint):
    pytest.importorskip("onnxruntime")
    return FommModel.from_checkpoint(checkpoint, runtime="onnxruntime")


# --- checkpoint layout --------------------------------------------------------------------------


def test_random_checkpoint_round_trip(checkpoint):
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    kp_detector, generator, config = load_networks(checkpoint)
    tiny = FommNetworkConfig.tiny()
    assert infer_config(saved["kp_detector"], saved["generator"], base=tiny) == tiny
    for module, state in ((kp_detector, saved["kp_detector"]), (generator, saved["generator"])):
        loaded = module.state_dict()
        assert loaded.keys() == state.keys()
        for key, tensor in state.items():
            assert torch.equal(loaded[key], tensor), key


def test_vox256_layout_matches_official_keys_and_shapes():
    kp_state = build_kp_detector(FommNetworkConfig.vox256()).state_dict()
    generator_state = build_generator(FommNetworkConfig.vox256()).state_dict()
    assert len(kp_state) == 75 and len(generator_state) == 196
    assert kp_state["kp.weight"].shape == (10, 35, 7, 7)
    assert kp_state["jacobian.weight"].shape == (40, 35, 7, 7)
    assert kp_state["down.weight"].shape == (3, 1, 13, 13)
    assert kp_state["predictor.encoder.down_blocks.4.conv.weight"].shape == (1024, 512, 3, 3)
    assert kp_state["predictor.decoder.up_blocks.0.norm.num_batches_tracked"].shape == ()
    assert generator_state["first.conv.weight"].shape == (64, 3, 7, 7)
    assert generator_state["bottleneck.r5.conv2.weight"].shape == (256, 256, 3, 3)
    assert generator_state["up_blocks.1.conv.weight"].shape == (64, 128, 3, 3)
    assert generator_state["final.weight"].shape == (3, 64, 7, 7)
    assert generator_state["dense_motion_network.hourglass.encoder.down_blocks.0.conv.weight"].shape == (128, 44, 3, 3)
    assert generator_state["dense_motion_network.mask.weight"].shape == (11, 108, 7, 7)
    assert generator_state["dense_motion_network.occlusion.weight"].shape == (1, 108, 7, 7)
    assert generator_state["dense_motion_network.down.weight"].shape == (3, 1, 13, 13)
    assert infer_config(kp_state, generator_state) == FommNetworkConfig.vox256()


# --- checkpoint errors --------------------------------------------------------------------------


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(FommError, match="not found"):
        FommModel.from_checkpoint(tmp_path / "nope.pth.tar")


def test_unreadable_file_is_reported(tmp_path):
    path = tmp_path / "garbage.pth.tar"
    path.write_text("this is not a checkpoint")
    with pytest.raises(FommError, match="cannot read"):
        FommModel.from_checkpoint(path)


def test_dict_without_networks_is_not_a_fomm_checkpoint(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"model": {"weight": torch.zeros(1)}}, path)
    with pytest.raises(FommError, match="not a FOMM checkpoint.*'generator' and 'kp_detector'"):
        FommModel.from_checkpoint(path)


def edited_checkpoint(checkpoint, tmp_path, edit):
    """Save a copy of the checkpoint after `edit(contents)` changed it in place."""
    contents = torch.load(checkpoint, map_location="cpu", weights_only=True)
    edit(contents)
    path = tmp_path / "edited.pth.tar"
    torch.save(contents, path)
    return path


def test_pickled_objects_need_trust(checkpoint, tmp_path):
    import argparse

    path = edited_checkpoint(checkpoint, tmp_path, lambda c: c.update(options=argparse.Namespace(lr=1)))
    with pytest.raises(FommError, match="trust_pickle=True"):
        FommModel.from_checkpoint(path)
    assert FommModel.from_checkpoint(path, trust_pickle=True).config.num_kp == 10


def test_unexpected_key_is_reported(checkpoint, tmp_path):
    path = edited_checkpoint(checkpoint, tmp_path, lambda c: c["generator"].update(extra=torch.zeros(1)))
    with pytest.raises(FommError, match=r"generator state dict has 1 unexpected keys \(e.g. 'extra'\)"):
        FommModel.from_checkpoint(path)


def test_missing_key_is_reported(checkpoint, tmp_path):
    path = edited_checkpoint(checkpoint, tmp_path, lambda c: c["generator"].pop("final.bias"))
    with pytest.raises(FommError, match=r"1 missing keys \(e.g. 'final.bias'\)"):
        FommModel.from_checkpoint(path)


def test_missing_batch_counters_are_tolerated(checkpoint, tmp_path):
    def drop_counters(contents):
        for state in (contents["generator"], contents["kp_detector"]):
            for key in [key for key in state if key.endswith("num_batches_tracked")]:
                del state[key]

    path = edited_checkpoint(checkpoint, tmp_path, drop_counters)
    load_networks(path)


def test_wrong_shape_says_expected_and_got(checkpoint, tmp_path):
    path = edited_checkpoint(checkpoint, tmp_path, lambda c: c["generator"].update({"final.bias": torch.zeros(4)}))
    with pytest.raises(FommError, match=r"generator 'final.bias' expected \(3,\), got \(4,\)"):
        FommModel.from_checkpoint(path)


def test_explicit_config_is_checked_against_the_checkpoint(checkpoint):
    with pytest.raises(FommError, match="wrong shape in FOMM checkpoint"):
        FommModel.from_checkpoint(checkpoint, config=FommNetworkConfig.tiny().replace(gen_block_expansion=16))


def test_unknown_runtime_is_reported(checkpoint):
    with pytest.raises(FommError, match="unknown FOMM runtime"):
        FommModel.from_checkpoint(checkpoint, runtime="tensorflow")


@pytest.mark.parametrize("importer, module", [(import_torch, "torch"), (import_onnxruntime, "onnxruntime")])
def test_missing_runtime_package_names_the_extra(monkeypatch, importer, module):
    monkeypatch.setitem(sys.modules, module, None)
    hint = r"pip install torch==2\.13\.0 \(the CPU build, first\), then pip install -e '\.\[fomm\]'"
    with pytest.raises(FommError, match=hint):
        importer()


# --- keypoints and motion normalisation ---------------------------------------------------------


def test_keypoints_shapes_and_range(torch_model):
    values, jacobians = torch_model.keypoints(smooth_image(1))
    assert values.shape == (10, 2) and jacobians.shape == (10, 2, 2)
    assert values.dtype == np.float32
    assert np.all(np.abs(values) <= 1)


def test_convex_hull_area_matches_scipy():
    spatial = pytest.importorskip("scipy.spatial")
    points = np.random.default_rng(3).uniform(-1, 1, size=(10, 2))
    assert convex_hull_area(points) == pytest.approx(spatial.ConvexHull(points).volume, rel=1e-12)
    assert convex_hull_area([[0, 0], [1, 0], [0, 1], [0.2, 0.2]]) == pytest.approx(0.5)
    assert convex_hull_area([[0, 0], [1, 1], [2, 2]]) == 0.0


def random_kp(seed):
    rng = np.random.default_rng(seed)
    values = rng.uniform(-0.8, 0.8, size=(10, 2)).astype(np.float32)
    jacobians = (np.eye(2) + 0.2 * rng.standard_normal((10, 2, 2))).astype(np.float32)
    return values, jacobians


def test_normalize_kp_identity_gives_source_keypoints():
    source, driving = random_kp(0), random_kp(1)
    values, jacobians = normalize_kp(source, driving, driving)
    np.testing.assert_array_equal(values, source[0])
    np.testing.assert_allclose(jacobians, source[1], atol=1e-5)


def test_normalize_kp_scales_relative_motion():
    source, initial = random_kp(0), random_kp(1)
    driving = (initial[0] + 0.1, initial[1])
    scale = np.sqrt(convex_hull_area(source[0]) / convex_hull_area(initial[0]))
    values, _ = normalize_kp(source, driving, initial)
    np.testing.assert_allclose(values, source[0] + 0.1 * scale, atol=1e-6)
    unscaled, _ = normalize_kp(source, driving, initial, adapt_movement_scale=False)
    np.testing.assert_allclose(unscaled, source[0] + 0.1, atol=1e-6)
    absolute = normalize_kp(source, driving, initial, relative=False)
    assert absolute[0] is driving[0] and absolute[1] is driving[1]


# --- animation ----------------------------------------------------------------------------------


def test_animate_output_shape_and_range(torch_model):
    frame = torch_model.animate(smooth_image(1), smooth_image(2), smooth_image(3))
    assert frame.shape == (SIZE, SIZE, 3) and frame.dtype == np.float32
    assert frame.min() >= 0 and frame.max() <= 1


def test_animate_many_matches_animate(torch_model):
    source, initial = smooth_image(1), smooth_image(3)
    drivings = [smooth_image(2), smooth_image(4)]
    frames = list(torch_model.animate_many(source, drivings, initial))
    assert len(frames) == 2
    np.testing.assert_allclose(frames[1], torch_model.animate(source, drivings[1], initial), atol=1e-6)


def test_animate_rejects_wrong_image_shape(torch_model):
    with pytest.raises(FommError, match="must have shape"):
        torch_model.animate(np.zeros((128, 128, 3), np.float32), smooth_image(2), smooth_image(3))


# --- ONNX -----------------------------------------------------------------------------------------


def randomize_norms(network):
    for module in network.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.normal_(0, 0.1)
            module.running_var.uniform_(0.5, 2)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.normal_(0, 0.1)
    return network


@pytest.mark.parametrize("block, shape, rewritten_name", [
    (lambda: UpBlock2d(6, 5), (2, 6, 5, 7), "PhaseSplitUpBlock"),
    (lambda: ResBlock2d(128), (1, 128, 32, 32), "WinogradResBlock"),
    (lambda: DownBlock2d(128, 16), (1, 128, 32, 40), "WinogradDownBlock"),
    (lambda: ResBlock2d(16), (1, 16, 32, 32), "ResBlock2d"),  # too narrow to gain
])
def test_export_rewrites_compute_the_same_function(block, shape, rewritten_name):
    from precompute.fomm.rewrites import export_copy

    torch.manual_seed(0)
    network = randomize_norms(torch.nn.Sequential(block()).eval())
    image = torch.randn(*shape)
    with torch.no_grad():
        rewritten = export_copy(network, (image,))
        assert type(rewritten[0]).__name__ == rewritten_name
        torch.testing.assert_close(rewritten(image), network(image), atol=1e-4, rtol=1e-4)


def test_onnx_matches_torch(torch_model, onnx_model):
    images = [smooth_image(seed) for seed in (1, 2, 3)]
    for image in images:
        torch_kp, onnx_kp = torch_model.keypoints(image), onnx_model.keypoints(image)
        np.testing.assert_allclose(onnx_kp[0], torch_kp[0], atol=1e-3)
        np.testing.assert_allclose(onnx_kp[1], torch_kp[1], atol=1e-3)
    np.testing.assert_allclose(onnx_model.animate(*images), torch_model.animate(*images), atol=1e-3)


def test_onnx_export_is_cached_beside_the_checkpoint(checkpoint, onnx_model):
    cached = sorted(checkpoint.with_name(checkpoint.name + ".onnx-cache").glob("*/*.onnx"))
    assert [path.name for path in cached] == ["generator.onnx", "kp_detector.onnx"]
    modified = [path.stat().st_mtime_ns for path in cached]
    FommModel.from_checkpoint(checkpoint, runtime="onnxruntime")
    assert [path.stat().st_mtime_ns for path in cached] == modified


def test_damaged_onnx_cache_is_exported_again(checkpoint, onnx_model, tmp_path):
    import shutil

    cache = tmp_path / "cache"
    shutil.copytree(checkpoint.with_name(checkpoint.name + ".onnx-cache"), cache)
    (generator_file,) = cache.glob("*/generator.onnx")
    generator_file.write_bytes(b"not a model")
    model = FommModel.from_checkpoint(checkpoint, runtime="onnxruntime", cache_dir=cache)
    assert model.animate(smooth_image(1), smooth_image(2), smooth_image(3)).shape == (SIZE, SIZE, 3)
