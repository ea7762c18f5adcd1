"""Model size and speed: parameters, multiply-accumulates, frames per second."""
from __future__ import annotations

import time

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["count_parameters", "count_macs", "measure_fps", "example_input", "train_step_time", "markdown_table"]


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements (buffers such as BatchNorm statistics and
    adjacency matrices excluded). Works on ``meta``-device models."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def example_input(model: nn.Module, batch_size: int = 1, num_frames: int | None = None,
                  device: str | torch.device = "cpu") -> Tensor:
    """A random lifter input for ``model``: (B, T, J, C) for sequence models
    (``model.num_frames``), (B, J, C) for single-frame ones unless
    ``num_frames`` is given."""
    joints = getattr(model, "num_joints", 17)
    chans = getattr(model, "in_chans", 2)
    frames = getattr(model, "num_frames", None) if num_frames is None else num_frames
    shape = (batch_size, joints, chans) if frames is None else (batch_size, frames, joints, chans)
    return torch.randn(shape, device=device)


def _sdpa_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    """FLOPs of softmax(q k^T) v for (B, H, Nq, d) queries, (B, H, Nk, d) keys
    and (B, H, Nk, dv) values: two batched matrix products."""
    *batch, n_q, d = query_shape
    n_k, d_v = key_shape[-2], value_shape[-1]
    heads = 1
    for s in batch:
        heads *= s
    return 2 * heads * n_q * n_k * d + 2 * heads * n_q * n_k * d_v


# CPU's fused attention kernel has no formula in torch's registry (CUDA and
# meta paths do); without this the attention products would count as zero.
_CUSTOM_FLOPS = {}
if hasattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu"):
    _CUSTOM_FLOPS[torch.ops.aten._scaled_dot_product_flash_attention_for_cpu] = _sdpa_flops


def count_macs(model: nn.Module, example_input: Tensor) -> int:
    """Multiply-accumulates of one forward pass on ``example_input``.

    Counted with :class:`torch.utils.flop_counter.FlopCounterMode` (matrix
    products, convolutions and attention; element-wise ops are ignored) as
    FLOPs / 2. Runs in eval mode under ``no_grad``; ``meta`` tensors work, so
    large models can be counted without computing anything.
    """
    was_training = model.training
    model.eval()
    try:
        counter = FlopCounterMode(display=False, custom_mapping=_CUSTOM_FLOPS)
        with torch.no_grad(), counter:
            model(example_input)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops()) // 2


def measure_fps(
    model: nn.Module,
    num_frames: int,
    batch_size: int = 1,
    warmup: int = 1,
    iters: int = 3,
    num_threads: int | None = None,
    device: str | torch.device = "cpu",
) -> float:
    """Inference speed in frames per second.

    Feeds ``batch_size`` windows of ``num_frames`` frames, (B, T, 17, 2),
    so one forward lifts ``batch_size * num_frames`` frames (for a
    single-frame model the frames are folded into the batch). Eval mode,
    ``inference_mode``; ``warmup`` untimed passes, then the median over
    ``iters`` timed passes. ``num_threads`` temporarily sets torch's
    intra-op thread count (default: leave it as is).
    """
    was_training = model.training
    old_threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    model.eval()
    x = example_input(model, batch_size, num_frames, device)
    try:
        with torch.inference_mode():
            for _ in range(warmup):
                model(x)
            times = []
            for _ in range(max(iters, 1)):
                if x.device.type == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                model(x)
                if x.device.type == "cuda":
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - t0)
    finally:
        model.train(was_training)
        torch.set_num_threads(old_threads)
    times.sort()
    return batch_size * num_frames / times[len(times) // 2]


def train_step_time(
    model: nn.Module,
    batch_size: int = 4,
    num_frames: int | None = None,
    steps: int = 3,
    num_threads: int | None = None,
) -> float:
    """Seconds of one training step (forward, MSE loss, backward, AdamW
    update) on random (B, T, 17, 2) windows (or (B, 17, 2) for single-frame
    models with ``num_frames=None``). One untimed warm-up step, then the
    fastest of ``steps`` (the least disturbed by other processes).
    The steps update ``model``'s weights (use a throwaway model); the thread
    count is restored and the model left in train mode."""
    old_threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    model.train()
    x = example_input(model, batch_size, num_frames)
    target = torch.randn(*x.shape[:-1], 3)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    times = []
    try:
        for i in range(steps + 1):
            t0 = time.perf_counter()
            loss = (model(x) - target).square().mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if i:
                times.append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(old_threads)
    return min(times)


def _bench_rows(skip_paper: bool, train_threads: int) -> list[dict]:
    from video3d.models.registry import LIFTERS, build_model

    rows = []
    for arch, spec in LIFTERS.items():
        for preset in spec.presets:
            paper = preset == "paper"
            with torch.device("meta"):
                meta_model = build_model(arch, preset)
            frames = getattr(meta_model, "num_frames", None)
            window = frames or 1
            macs = count_macs(meta_model, example_input(meta_model, 1, frames, device="meta"))
            row = dict(arch=arch, preset=preset, params=count_parameters(meta_model),
                       macs_per_frame=macs / window, fps=None, fps_setup="", step_s=None)
            if not (paper and skip_paper):
                torch.manual_seed(0)
                model = build_model(arch, preset)
                if frames:  # sequence model: batches of whole windows
                    batch = 1 if paper else 4
                    row["fps"] = measure_fps(model, frames, batch, warmup=0 if paper else 1,
                                             iters=1 if paper else 3)
                    row["fps_setup"] = f"{batch} x {frames}-frame window"
                else:  # single-frame model: 243 frames folded into the batch
                    row["fps"] = measure_fps(model, 243, 1, iters=3)
                    row["fps_setup"] = "243 frames"
                if not paper:
                    row["step_s"] = train_step_time(
                        model, 4 if frames else 128, frames, num_threads=train_threads)
            rows.append(row)
    return rows


def markdown_table(rows: list[dict]) -> str:
    """Format :func:`_bench_rows` output as a markdown table."""
    lines = ["| arch | preset | params | MACs / frame | CPU frames/s (input) | train step (s) |",
             "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        fps = f"{r['fps']:.0f} ({r['fps_setup']})" if r["fps"] else "-"
        step = f"{r['step_s']:.2f}" if r["step_s"] else "-"
        lines.append(f"| {r['arch']} | {r['preset']} | {r['params'] / 1e6:.2f} M | "
                     f"{r['macs_per_frame'] / 1e6:.1f} M | {fps} | {step} |")
    return "\n".join(lines)


if __name__ == "__main__":  # python -m video3d.models.profile [--skip-paper]
    import argparse

    ap = argparse.ArgumentParser(description="Parameters, MACs and CPU speed of every lifter preset.")
    ap.add_argument("--skip-paper", action="store_true", help="do not time the paper-size models")
    ap.add_argument("--train-threads", type=int, default=2, help="torch threads for the training-step timing")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(markdown_table(_bench_rows(args.skip_paper, args.train_threads)))
