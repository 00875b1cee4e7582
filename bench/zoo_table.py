#!/usr/bin/env python3
"""Merges attnkit's zoo epochs (Google Benchmark JSON of attnkit_bench_zoo_epochs) with
PyTorch's (bench/torch_zoo.py --json) into one Markdown table with their ratio.

    python3 bench/zoo_table.py OURS.json TORCH.json "heading line" > table.md
"""
import json
import sys


def main():
    ours_path, torch_path, heading = sys.argv[1:4]
    with open(ours_path) as f:
        ours = json.load(f)
    with open(torch_path) as f:
        peer = json.load(f)
    # Google Benchmark names them epoch/MODEL/iterations:1/manual_time.
    seconds = {b["name"].split("/")[1]: b["real_time"] for b in ours["benchmarks"] if b["name"].startswith("epoch/")}
    print(heading)
    print()
    print(f"| model | attnkit s/epoch | PyTorch {peer['torch']} s/epoch | PyTorch / attnkit | attnkit samples/s |")
    print("|---|---|---|---|---|")
    faster = 0
    for name, ours_s in seconds.items():
        torch_s = peer["models"][name]["seconds"]
        faster += torch_s / ours_s >= 2
        print(f"| {name} | {ours_s:.3f} | {torch_s:.3f} | {torch_s / ours_s:.2f} | {7671 / ours_s:.0f} |")
    print()
    print(f"attnkit is at least 2 times as fast as PyTorch on {faster} of {len(seconds)} models.")


if __name__ == "__main__":
    main()
