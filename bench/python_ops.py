"""attnkit's ops called from Python: what a call costs beyond the same call from C++, and
attnkit's attention beside PyTorch's in one process.

    bench/compare_python.sh            # builds, runs the C++ side, then this
    PYTHONPATH=build/python .venv-python/bin/python bench/python_ops.py --cpp CPP.json [--device cpu|cuda]

--cpp names build/bench/attnkit_bench_call_overhead's JSON (--benchmark_format=json): its per-call
times are the C++ side of the overhead table. The comparison with PyTorch runs the training
regime of bench/attention.cpp (batch 32, length 20, width 128) and a longer one, forward plus
backward, through attnkit.torch and torch.nn.functional.scaled_dot_product_attention (PyTorch
is needed: bench/torch_python.sh gives the Python that has it). Times are the best of 3 rounds
(torch_attention.py's seconds_per_call).
"""
import argparse
import json

import numpy as np

import attnkit
from torch_attention import seconds_per_call


def overhead(cpp_json):
    rng = np.random.default_rng(0)
    x3, w8 = rng.uniform(-1, 1, (1, 4, 8)).astype(np.float32), rng.uniform(-1, 1, 8).astype(np.float32)
    x2, w88 = rng.uniform(-1, 1, (4, 8)).astype(np.float32), rng.uniform(-1, 1, (8, 8)).astype(np.float32)
    t3, t8, t2, t88 = (attnkit.from_dlpack(a) for a in (x3, w8, x2, w88))
    calls = {
        "sdpa": (lambda: attnkit.scaled_dot_product_attention(t3, t3, t3),
                 lambda: attnkit.scaled_dot_product_attention(x3, x3, x3)),
        "additive": (lambda: attnkit.additive_attention(t3, t8), lambda: attnkit.additive_attention(x3, w8)),
        "gating": (lambda: attnkit.gating_attention(t2, t88), lambda: attnkit.gating_attention(x2, w88)),
    }
    cpp = {}
    if cpp_json:
        for b in json.load(open(cpp_json))["benchmarks"]:
            unit = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b["time_unit"]]
            cpp[b["name"].replace("BM_call_", "")] = b["real_time"] * unit
    print("Calling an op (forward, float32, cpu, sizes where the work is nearly nothing), microseconds a call:")
    print()
    print("| op | C++ | Python, attnkit.Tensor arguments | Python, NumPy arguments | Python - C++ (Tensor) |"
          " Python - C++ (NumPy) |")
    print("|---|---|---|---|---|---|")
    for name, (with_tensors, with_numpy) in calls.items():
        tensors, arrays = seconds_per_call(with_tensors, "cpu", 20000), seconds_per_call(with_numpy, "cpu", 20000)
        base = cpp.get(name)
        cells = [f"{base * 1e6:.2f}" if base else "-", f"{tensors * 1e6:.2f}", f"{arrays * 1e6:.2f}"]
        cells += [f"{(tensors - base) * 1e6:.2f}", f"{(arrays - base) * 1e6:.2f}"] if base else ["-", "-"]
        print(f"| {name} | " + " | ".join(cells) + " |")


def versus_pytorch(device):
    import torch
    import torch.nn.functional as F

    import attnkit.torch as ak

    if not hasattr(F, "scaled_dot_product_attention"):
        print(f"\nattnkit beside PyTorch: not run (PyTorch {torch.__version__} has no scaled_dot_product_attention)")
        return
    print(f"\nScaled dot-product attention, forward plus backward, float32 on {device} (PyTorch {torch.__version__}),"
          " milliseconds a call:")
    print()
    print("| batch | length | heads | head dim | attnkit (attnkit.torch) | PyTorch SDPA | PyTorch / attnkit |")
    print("|---|---|---|---|---|---|---|")
    for B, T, H, d in ((32, 20, 4, 32), (8, 256, 8, 64)):
        generator = torch.Generator().manual_seed(1)
        q, k, v = (torch.randn(B, T, H, d, generator=generator).to(device).requires_grad_() for _ in range(3))
        dout = torch.randn(B, T, H, d, generator=generator).to(device)

        def ours():
            ak.scaled_dot_product_attention(q, k, v, causal=True).backward(dout)

        def theirs():
            F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                           is_causal=True).transpose(1, 2).backward(dout)

        times = [seconds_per_call(call, device, 20) for call in (ours, theirs)]
        print(f"| {B} | {T} | {H} | {d} | {times[0] * 1e3:.3f} | {times[1] * 1e3:.3f} | {times[1] / times[0]:.2f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpp", help="attnkit_bench_call_overhead's JSON")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    overhead(args.cpp)
    versus_pytorch(args.device)


if __name__ == "__main__":
    main()
