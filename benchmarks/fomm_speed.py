"""Time FOMM animation per frame with the torch and onnxruntime runtimes and print the speed-up.

    python benchmarks/fomm_speed.py                       # random vox-256-sized weights
    python benchmarks/fomm_speed.py --checkpoint vox-cpk.pth.tar --frames 10

The two runtimes are timed in alternating rounds and each reports its fastest round, so a busy
machine slows both alike instead of skewing the ratio. One frame = keypoints of the driving
frame + normalisation + generator, the steady-state cost inside `animate_many`.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv):
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, help="FOMM checkpoint (default: random vox-256 weights)")
    parser.add_argument("--frames", type=int, default=3, help="driving frames per timing round")
    parser.add_argument("--rounds", type=int, default=5, help="alternating timing rounds per runtime")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for both runtimes")
    return parser.parse_args(argv)


def smooth_random_image(rng, size=256):
    """A blurry random RGB image in [0, 1] (keypoint heatmaps behave better than on pure noise)."""
    coarse = rng.random((size // 32, size // 32, 3)).astype(np.float32)
    return np.repeat(np.repeat(coarse, 32, axis=0), 32, axis=1)


def time_round(model, source, drivings, initial):
    """Seconds per frame for one pass over `drivings`."""
    start = time.perf_counter()
    for _ in model.animate_many(source, drivings, initial):
        pass
    return (time.perf_counter() - start) / len(drivings)


def run(checkpoint, frames, rounds, threads):
    """Load both runtimes, time them alternately, print the results; return (torch_ms, onnx_ms)."""
    from precompute.fomm import FommModel

    print(f"checkpoint: {checkpoint}")
    models = {}
    for runtime in ("torch", "onnxruntime"):
        start = time.perf_counter()
        models[runtime] = FommModel.from_checkpoint(checkpoint, runtime=runtime, threads=threads)
        print(f"{runtime:12s} loaded in {time.perf_counter() - start:.1f} s")

    rng = np.random.default_rng(0)
    source, initial = smooth_random_image(rng), smooth_random_image(rng)
    drivings = [smooth_random_image(rng) for _ in range(frames)]
    outputs = {name: next(model.animate_many(source, drivings[:1], initial)) for name, model in models.items()}
    difference = float(np.abs(outputs["torch"] - outputs["onnxruntime"]).max())

    best = {name: float("inf") for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            best[name] = min(best[name], time_round(model, source, drivings, initial))
    torch_ms, onnx_ms = best["torch"] * 1000, best["onnxruntime"] * 1000
    print(f"torch        {torch_ms:8.1f} ms/frame")
    print(f"onnxruntime  {onnx_ms:8.1f} ms/frame")
    print(f"speed-up     {torch_ms / onnx_ms:8.2f}x   (max |torch - onnx| = {difference:.2e})")
    return torch_ms, onnx_ms


def main(argv=None):
    """Entry point; returns the process exit code."""
    args = parse_args(argv)
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from precompute.fomm import FommError, FommNetworkConfig, make_random_checkpoint

    try:
        if args.checkpoint:
            run(args.checkpoint, args.frames, args.rounds, args.threads)
            return 0
        with tempfile.TemporaryDirectory(prefix="fomm-speed-") as directory:
            checkpoint = make_random_checkpoint(Path(directory) / "random-vox256.pth.tar", FommNetworkConfig.vox256())
            run(checkpoint, args.frames, args.rounds, args.threads)
        return 0
    except FommError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
