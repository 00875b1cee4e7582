#!/usr/bin/env python3
"""Tables (Markdown) of bench/attention.cpp's results beside PyTorch's (bench/torch_attention.py),
and optionally a plot of SDPA throughput against sequence length.

    python3 bench/attention_table.py OURS.json [TORCH.json] [--plot FILE.png]
"""
import argparse
import json


def load(path):
    with open(path) as f:
        return json.load(f)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ours")
    parser.add_argument("torch", nargs="?")
    parser.add_argument("--plot")
    args = parser.parse_args()
    ours = load(args.ours)
    context = ours["context"]
    runs = {b["name"].replace("/manual_time", ""): b for b in ours["benchmarks"]}  # Google Benchmark's suffix
    peer = load(args.torch)["results"] if args.torch else {}
    seconds = lambda b: b["real_time"] * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "ns": 1e-9}[b["time_unit"]]  # noqa: E731

    print(f"device {context.get('device')} {context.get('gpu', '')}; ceilings measured in the same run: mma.sync "
          f"f16 {context.get('ceiling_mma_f16_tflops', '-')} TFLOP/s, bf16 {context.get('ceiling_mma_bf16_tflops', '-')} "
          f"TFLOP/s, copy {context.get('ceiling_copy_gbytes_per_second', '-')} GB/s; launch floor "
          f"{context.get('launch_floor_microseconds', '-')} us")
    print()
    print("Training regime (batch 32, length 20, f32, forward plus backward), microseconds per call:")
    print()
    engines = [e for e in ("fused", "unfused", "cpu") if any(n.startswith(f"sdpa_train/{e}/") for n in runs)]
    first = engines[0]
    print("| heads | width | " + " | ".join(engines) + (f" | {engines[1]} / {first}" if len(engines) > 1 else "")
          + f" | PyTorch | PyTorch / {first} |")
    print("|---|---|" + "---|" * (len(engines) + (len(engines) > 1) + 2))
    for name, b in runs.items():
        if not name.startswith(f"sdpa_train/{first}/"):
            continue
        _, _, h, w = name.split("/")
        times = [seconds(runs[name.replace(f"/{first}/", f"/{e}/")]) for e in engines]
        cells = [f"{t * 1e6:.1f}" for t in times] + ([f"{times[1] / times[0]:.2f}"] if len(times) > 1 else [])
        torch_entry = peer.get(name.replace(f"/{first}/", "/torch/"))
        cells += [f"{torch_entry['seconds'] * 1e6:.1f}", f"{torch_entry['seconds'] / times[0]:.2f}"] if torch_entry \
            else ["-", "-"]
        print(f"| {h[1:]} | {w[1:]} | " + " | ".join(cells) + " |")

    long_rows = [n for n in runs if n.startswith("sdpa_fwd/") or n.startswith("sdpa_bwd/")]
    if long_rows:
        print()
        print("Long regime (16 heads, batch 16384 / length, at most 16), TFLOP/s:")
        print()
        print("| pass | engine | dtype | head dim | length | causal | TFLOP/s | of the mma.sync ceiling "
              "| PyTorch | ours / PyTorch | cuDNN | ours / cuDNN |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for name in long_rows:
            parts = name.split("/")
            b = runs[name]
            cells = []
            for peer_engine in ("torch", "cudnn"):  # PyTorch's default backend; its cuDNN backend forced
                entry = peer.get(name.replace(f"/{parts[1]}/", f"/{peer_engine}/")) if parts[1] == "fused" else None
                cells += [f"{entry['TFLOP']:.1f}", f"{b['TFLOP'] / entry['TFLOP']:.2f}"] if entry else ["-", "-"]
            ceiling = f"{b['of_mma_ceiling']:.2f}" if "of_mma_ceiling" in b else "-"
            print(f"| {parts[0][5:]} | {parts[1]} | {parts[2]} | {parts[3][1:]} | {parts[4][1:]} | "
                  f"{'yes' if len(parts) > 5 else 'no'} | {b['TFLOP']:.1f} | {ceiling} | " + " | ".join(cells) + " |")

    variant_rows = [n for n in runs if n.startswith(("sdpa_variant/", "sdpa_varlen/"))]
    if variant_rows:
        print()
        print("Variants of the long regime (forward plus backward; bias [1, 16, T, T], 4 key heads, or dropout"
              " 0.1; sequences of lengths T / 8 to T packed or padded, beside PyTorch's padded), TFLOP/s:")
        print()
        print("| dtype | head dim | length | variant | attnkit | PyTorch | attnkit / PyTorch |")
        print("|---|---|---|---|---|---|---|")
        for name in variant_rows:
            _, _, dtype, dim, length, variant = name.split("/")
            b = runs[name]
            entry = peer.get(name.replace("/fused/", "/torch/").replace("/packed", "/padded"))
            cells = [f"{entry['TFLOP']:.1f}", f"{b['TFLOP'] / entry['TFLOP']:.2f}"] if entry else ["-", "-"]
            print(f"| {dtype} | {dim[1:]} | {length[1:]} | {variant} | {b['TFLOP']:.1f} | " + " | ".join(cells) + " |")

    decode_rows = [n for n in runs if n.startswith("sdpa_decode/")]
    if decode_rows:
        print()
        print("Decoding steps (batch 8, 32 query heads, one query, the last step appended in place), GB/s of"
              " the caches read once:")
        print()
        print("| dtype | cache steps | key heads | splits | attnkit | of bandwidth | PyTorch | attnkit / PyTorch |")
        print("|---|---|---|---|---|---|---|---|")
        for name in decode_rows:
            _, _, dtype, _, steps, kv, splits = name.split("/")
            b = runs[name]
            entry = peer.get("/".join(name.replace("/fused/", "/torch/").split("/")[:-1]))
            cells = [f"{entry['GB']:.0f}", f"{b['GB'] / entry['GB']:.2f}"] if entry else ["-", "-"]
            fraction = f"{b['of_bandwidth']:.2f}" if "of_bandwidth" in b else "-"
            chosen = "the op's" if splits == "splits0" else "1"
            print(f"| {dtype} | {steps[1:]} | {kv[2:]} | {chosen} | {b['GB']:.0f} | {fraction} | " + " | ".join(cells) + " |")

    print()
    print("Additive pooling and gating (forward plus backward), GB/s of the bytes that must move once:")
    print()
    print("| op | size | attnkit (fused, or the cpu op) | of bandwidth | unfused | PyTorch |")
    print("|---|---|---|---|---|---|")
    for name, b in runs.items():
        op, engine, size = name.split("/")[0], name.split("/")[1], name.split("/")[-1]
        if op not in ("additive", "gating_features", "gating_time") or engine not in ("fused", "cpu"):
            continue
        unfused = runs.get(name.replace("/fused/", "/unfused/")) if engine == "fused" else None
        torch_entry = peer.get(name.replace(f"/{engine}/", "/torch/"))
        fraction = f"{b['of_bandwidth']:.2f}" if "of_bandwidth" in b else "-"
        unfused_text = f"{unfused['GB']:.1f}" if unfused else "-"
        torch_text = f"{torch_entry['GB']:.1f}" if torch_entry else "-"
        print(f"| {op} | {size} | {b['GB']:.1f} | {fraction} | {unfused_text} | {torch_text} |")

    if args.plot and long_rows:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        figure, axis = plt.subplots(figsize=(7, 4.5))
        for engine, style in (("fused", "-o"), ("torch", "--s"), ("cudnn", "-.d"), ("unfused", ":^")):
            for dtype in ("bf16", "f32"):
                lengths, rates = [], []
                for T in (512, 1024, 2048, 4096, 8192):
                    key = f"sdpa_fwd/{engine}/{dtype}/d128/t{T}"
                    entry = peer.get(key) if engine in ("torch", "cudnn") else runs.get(key)
                    if entry:
                        lengths.append(T)
                        rates.append(entry["TFLOP"])
                if lengths:
                    axis.plot(lengths, rates, style, label=f"{engine} {dtype}")
        axis.set_xscale("log", base=2)
        axis.set_xlabel("sequence length (16 heads, head dim 128, forward)")
        axis.set_ylabel("TFLOP/s")
        axis.legend()
        axis.grid(alpha=0.3)
        figure.tight_layout()
        figure.savefig(args.plot, dpi=120)


if __name__ == "__main__":
    main()
