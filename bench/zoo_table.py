#!/usr/bin/env python3
"""One Markdown table of a folder of zoo epochs: attnkit-MODEL.json (Google Benchmark JSON of
attnkit_bench_zoo_epochs) and torch-MODEL.json (bench/torch_zoo.py --json) for each model, with
the ratio of the two; each side's fastest repetition counts (other load only slows a run down).

    python3 bench/zoo_table.py FOLDER "heading line" > table.md
"""
import glob
import json
import os
import sys


def main():
    folder, heading = sys.argv[1:3]
    ours, peer, version = {}, {}, "?"
    for path in sorted(glob.glob(os.path.join(folder, "attnkit-*.json"))):
        with open(path) as f:
            for b in json.load(f)["benchmarks"]:  # epoch/MODEL/iterations:1/manual_time, per repetition
                if b["name"].startswith("epoch/") and b.get("run_type", "iteration") == "iteration":
                    name = b["name"].split("/")[1]
                    ours[name] = min(ours.get(name, float("inf")), b["real_time"])
    for path in sorted(glob.glob(os.path.join(folder, "torch-*.json"))):
        with open(path) as f:
            run = json.load(f)
        version = run["torch"]
        for name, entry in run["models"].items():
            peer[name] = entry["seconds"]
    print(heading)
    print()
    print(f"| model | attnkit s/epoch | PyTorch {version} s/epoch | PyTorch / attnkit | attnkit samples/s |")
    print("|---|---|---|---|---|")
    faster = 0
    for name, seconds in ours.items():
        if name not in peer:
            continue
        faster += peer[name] / seconds >= 2
        print(f"| {name} | {seconds:.3f} | {peer[name]:.3f} | {peer[name] / seconds:.2f} | {7671 / seconds:.0f} |")
    print()
    print(f"attnkit is at least 2 times as fast as PyTorch on {faster} of {len(ours)} models.")


if __name__ == "__main__":
    main()
