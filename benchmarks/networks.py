"""Every network and preset at ×2, one channel: cost and speed on this machine (the table RCAN
practitioners use when pruning).

For each preset of each network: parameters, FLOPs per output pixel (multiply-adds, counted
by torch.utils.flop_counter), a training step's time (Adam, L1, batch of 16 LR patches of
24²), inference output megapixels per second in fp32 and bf16 (autocast) on a 96 × 96 LR
image, and the achieved GFLOP/s of fp32 inference ÷ PEAK (this CPU's practical oneDNN fp32
peak, 410 GFLOP/s on the 2-core development machine; pass --peak for another). Ratios are
against RCAN paper in the same run. Weights are random: speed does not depend on them.

    python benchmarks/networks.py [--device cpu|cuda] [--repeats 3] [--only rcan,edsr]
"""

from __future__ import annotations

import argparse
import time

import torch

from srbio.models import NETWORKS, build_network, count_parameters
from srbio.models.summary import flops_per_output_pixel


def _seconds(fn, repeats: int) -> float:
    """Best wall time of ``repeats`` calls after one warm-up call."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def train_step_seconds(net: torch.nn.Module, device: torch.device, repeats: int) -> float:
    """One Adam step of L1 loss on a batch of 16 LR patches of 24² (×2)."""
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    depth = [8] if net.config["name"] == "rcan3d" else []  # 3D: patches of 8 planes
    x = torch.rand(16, 1, *depth, 24, 24, device=device)
    y = torch.rand(16, 1, *depth, 48, 48, device=device)

    def step() -> None:
        opt.zero_grad()
        torch.nn.functional.l1_loss(net(x), y).backward()
        opt.step()
        _sync(device)

    return _seconds(step, repeats)


def inference_mpx_per_s(net: torch.nn.Module, device: torch.device, repeats: int, *,
                        bf16: bool, side: int = 96) -> float:
    """Output megapixels per second on one side × side LR image."""
    net.eval()
    depth = [8] if net.config["name"] == "rcan3d" else []  # 3D: a volume of 8 planes
    x = torch.rand(1, 1, *depth, side, side, device=device)

    def run() -> None:
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            net(x)
        _sync(device)

    return (2 * side) ** 2 * (depth or [1])[0] / 1e6 / _seconds(run, repeats)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--peak", type=float, default=410.0, help="practical fp32 GFLOP/s peak")
    p.add_argument("--only", default="", help="comma-separated network names")
    a = p.parse_args()
    device = torch.device(a.device)
    torch.manual_seed(0)
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"×2, 1 channel; peak {a.peak:g} GFLOP/s")
    print(f"{'network':9s} {'preset':11s} {'params':>11s} {'FLOP/px':>11s} {'step s':>7s} "
          f"{'Mpx/s fp32':>10s} {'Mpx/s bf16':>10s} {'bf16/fp32':>9s} {'% peak':>7s} "
          f"{'× paper':>7s}  (× paper: fp32 Mpx/s ÷ RCAN paper's)")
    names = [n for n in NETWORKS if not a.only or n in a.only.split(",")]
    cases = [(n, preset) for n in names for preset in NETWORKS[n].presets]
    if ("rcan", "paper") in cases:  # the reference of the last column first
        cases.insert(0, cases.pop(cases.index(("rcan", "paper"))))
    reference = None
    for name, preset in cases:
        net = build_network(name, scale=2, preset=preset).to(device)
        flops = flops_per_output_pixel(name, scale=2, preset=preset)
        step = train_step_seconds(net, device, a.repeats)
        fp32 = inference_mpx_per_s(net, device, a.repeats, bf16=False)
        bf16 = inference_mpx_per_s(net, device, a.repeats, bf16=True)
        gflops = fp32 * 1e6 * flops / 1e9
        if (name, preset) == ("rcan", "paper"):
            reference = fp32
        ratio = f"{fp32 / reference:7.1f}" if reference else "      —"
        print(f"{name:9s} {preset:11s} {count_parameters(net):11,d} {flops:11,.0f} "
              f"{step:7.3f} {fp32:10.3f} {bf16:10.3f} {bf16 / fp32:9.2f} "
              f"{100 * gflops / a.peak:6.1f}% {ratio}", flush=True)

if __name__ == "__main__":
    main()
