#!/usr/bin/env python3
"""One Markdown table of a folder of zoo epochs (bench/compare_zoo.sh): attnkit-MODEL.json (Google
Benchmark JSON of attnkit_bench_zoo_epochs), torch-MODEL.json and keras-MODEL.json (the peers'
--json), and the same names ending in -loaded for the runs with busy processes beside. Each
side's fastest repetition counts (other load only slows a run down); a ratio is peer seconds
over attnkit seconds, so above 1 means attnkit is faster.

With peak.json (attnkit's best product rate, peak/gemm) and the GFLOP of each attnkit epoch's
matrix products, a second table gives every epoch's floor, those products at that rate: a lower
bound on the epoch of any implementation whose products run no faster, and so a bound on how many
times faster than a peer any of them can be.

    python3 bench/zoo_table.py FOLDER "heading line" > table.md
"""
import glob
import json
import os
import re
import sys

PEERS = {"torch": "PyTorch", "keras": "Keras"}


def read(folder):
    """{(side, model, loaded): seconds}, {side: version} and {model: GFLOP of attnkit's products}."""
    seconds, versions, gflop = {}, {}, {}
    for path in sorted(glob.glob(os.path.join(folder, "*.json"))):
        match = re.fullmatch(r"(attnkit|torch|keras)-(.+?)(-loaded)?\.json", os.path.basename(path))
        if not match:
            continue
        side, model, loaded = match.group(1), match.group(2), match.group(3) is not None
        with open(path) as f:
            run = json.load(f)
        if side == "attnkit":
            for b in run["benchmarks"]:  # epoch/MODEL/iterations:1/manual_time, per repetition
                if b["name"].startswith("epoch/") and b.get("run_type", "iteration") == "iteration":
                    key = (side, b["name"].split("/")[1], loaded)
                    seconds[key] = min(seconds.get(key, float("inf")), b["real_time"])
                    if "GFLOP" in b:
                        gflop[key[1]] = b["GFLOP"]
        else:
            versions[side] = run["torch"] if side == "torch" else f'{run["keras"]} (TensorFlow {run["tensorflow"]})'
            for name, entry in run["models"].items():
                seconds[(side, name, loaded)] = entry["seconds"]
    return seconds, versions, gflop


def read_peak(folder):
    """(GFLOP/s, threads) of the fastest peak/gemm repetition, or None without peak.json."""
    path = os.path.join(folder, "peak.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        runs = [b for b in json.load(f)["benchmarks"] if b.get("run_type", "iteration") == "iteration"]
    best = max(runs, key=lambda b: b["GFLOP/s"])
    return best["GFLOP/s"] * 1e-9, int(best["threads"])


def geometric_mean(values):
    product = 1.0
    for v in values:
        product *= v
    return product ** (1 / len(values)) if values else float("nan")


def main():
    folder, heading = sys.argv[1:3]
    seconds, versions, gflop = read(folder)
    # In the order they ran (the zoo's).
    models = sorted({m for (side, m, _) in seconds if side == "attnkit"},
                    key=lambda m: os.path.getmtime(os.path.join(folder, f"attnkit-{m}.json")))
    peers = [p for p in PEERS if p in versions]
    conditions = [False] + ([True] if any(k[2] for k in seconds) else [])
    print(heading)
    print()
    header, rule = ["model"], ["---"]
    for loaded in conditions:
        tag = " loaded" if loaded else ""
        header.append(f"attnkit{tag} s")
        for peer in peers:
            header += [f"{PEERS[peer]}{tag} s", f"{PEERS[peer]}{tag} / attnkit"]
    if len(conditions) == 2:
        header.append("attnkit loaded / idle")
        header += [f"{PEERS[p]} loaded / idle" for p in peers]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    ratios = {(p, c): [] for p in peers for c in conditions}
    slowdown = []
    for model in models:
        row = [model]
        for loaded in conditions:
            ours = seconds.get(("attnkit", model, loaded))
            row.append(f"{ours:.3f}" if ours else "")
            for peer in peers:
                theirs = seconds.get((peer, model, loaded))
                row.append(f"{theirs:.3f}" if theirs else "")
                row.append(f"{theirs / ours:.2f}" if theirs and ours else "")
                if theirs and ours:
                    ratios[(peer, loaded)].append(theirs / ours)
        if len(conditions) == 2:
            for side in ["attnkit"] + peers:
                idle, busy = seconds.get((side, model, False)), seconds.get((side, model, True))
                row.append(f"{busy / idle:.2f}" if idle and busy else "")
                if side == "attnkit" and idle and busy:
                    slowdown.append(busy / idle)
        print("| " + " | ".join(row) + " |")
    print()
    for (peer, loaded), values in ratios.items():
        if values:
            print(f"- {PEERS[peer]} / attnkit{' with the load' if loaded else ', idle'}: smallest {min(values):.2f}, "
                  f"geometric mean {geometric_mean(values):.2f} over {len(values)} models")
    if slowdown:
        print(f"- attnkit's loaded epoch over its idle epoch: largest {max(slowdown):.2f}, "
              f"geometric mean {geometric_mean(slowdown):.2f}")
    peak = read_peak(folder)
    if peak and gflop:
        print_floors(models, peers, seconds, gflop, peak)


def print_floors(models, peers, seconds, gflop, peak):
    """Each idle epoch beside its floor: its matrix products at attnkit's best product rate."""
    rate, threads = peak
    print()
    print(f"Floors: each epoch's matrix products at attnkit's best product rate on this CPU, {rate:.0f} GFLOP/s "
          f"on {threads} threads (peak/gemm). The rest of an epoch (activations, softmax, the optimizer) is not "
          f"counted, so a floor is below what any implementation whose products run no faster can reach.")
    print()
    header = ["model", "products GFLOP", "floor s", "attnkit / floor"] + [f"{PEERS[p]} / floor" for p in peers]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    bounded = {p: [] for p in peers}
    for model in models:
        if model not in gflop:
            continue
        floor = gflop[model] / rate
        row = [model, f"{gflop[model]:.2f}", f"{floor:.3f}"]
        for side in ["attnkit"] + peers:
            s = seconds.get((side, model, False))
            row.append(f"{s / floor:.1f}" if s else "")
            if side != "attnkit" and s and s / floor < 5:
                bounded[side].append(f"{model} ({s / floor:.1f})")
        print("| " + " | ".join(row) + " |")
    print()
    for peer, names in bounded.items():
        print(f"- {PEERS[peer]}'s epoch is within 5 times the floor, so no implementation at this rate is 5 times "
              f"faster, on: {', '.join(names) if names else 'none'}")


if __name__ == "__main__":
    main()
