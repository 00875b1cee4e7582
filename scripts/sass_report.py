#!/usr/bin/env python3
"""Reads the SASS of attnkit's attention kernels and prints one table row per kernel.

Input: cubins built for sm_90, disassembled here with `cuobjdump -sass` and `-res-usage`, and
the launch table of scripts/attention_launch_table.cpp (threads and dynamic shared memory of
each kernel instance, from the kernels' own traits). Output: a Markdown table (registers, local
memory, spill instructions, shared memory, occupancy on an H100, HMMA count, SASS instructions
per HMMA over the whole function and over the main loop) and the predicted TFLOP/s of the
tensor-core kernels. Exits 1 when an attention kernel uses local memory (spills, a stack frame,
LDL or STL): the static gate that CI runs.

The main loop is the loop (a backward branch and its target) that holds the most HMMA; among
loops that hold as many, the shortest. NOPs are not counted: they pad, nothing issues them.
"""
import argparse
import json
import re
import subprocess
import sys

# An H100 SXM5 per SM (CUDA C Programming Guide, "Compute Capability 9.0"): 64 K registers,
# 64 warps, 32 blocks, 228 KB of shared memory of which 1 KB is reserved per block; registers
# are given to warps in units of 256.
H100_REGISTERS = 65536
H100_MAX_WARPS = 64
H100_MAX_BLOCKS = 32
H100_SHARED = 228 * 1024
H100_SHARED_RESERVED = 1024
REGISTER_UNIT = 256
# The issue-bound model of bench/NOTES.md: an SM's four schedulers each issue one instruction a
# cycle, and the mma.sync rate (about 650 TFLOP/s on 132 SMs at 1.755 GHz) is one m16n8k16 HMMA
# (4096 FLOP) per scheduler every 5.8 cycles. A main loop that issues more than 5.8 instructions
# per HMMA is bound by issue, at 5.8 / (its instructions per HMMA) of the mma rate.
MMA_TFLOPS = 650.0
CYCLES_PER_HMMA = 5.8

INSTRUCTION = re.compile(r"^\s+/\*([0-9a-f]{4,})\*/\s+(.*?)\s*;")
FUNCTION = re.compile(r"^\s+Function : (\S+)")
BRANCH_TARGET = re.compile(r"\bBRA\s+(?:`?\(?)(0x[0-9a-f]+)")
RESOURCES = re.compile(r"REG:(\d+) STACK:(\d+) SHARED:(\d+) LOCAL:(\d+)")


def run(command):
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def demangle(names):
    out = run(["c++filt"] + names).splitlines() if names else []
    return dict(zip(names, out))


def parse_sass(text):
    """{mangled name: [(address, opcode, full text)]} without NOPs."""
    functions, current = {}, None
    for line in text.splitlines():
        match = FUNCTION.match(line)
        if match:
            current = functions.setdefault(match.group(1), [])
            continue
        match = INSTRUCTION.match(line)
        if match and current is not None:
            body = match.group(2)
            words = body.split()
            opcode = words[1] if words[0].startswith("@") and len(words) > 1 else words[0]
            if opcode != "NOP":
                current.append((int(match.group(1), 16), opcode, body))
    return functions


def parse_resources(text):
    resources, name = {}, None
    for line in text.splitlines():
        if line.strip().startswith("Function "):
            name = line.strip()[len("Function "):].rstrip(":")
        match = RESOURCES.search(line)
        if match and name:
            resources[name] = tuple(int(x) for x in match.groups())
    return resources


def is_hmma(opcode):
    return opcode.startswith("HMMA")


def main_loop(instructions):
    """(instructions, HMMA) of the loop that holds the most HMMA, or None without a loop."""
    best = None
    for address, opcode, body in instructions:
        match = BRANCH_TARGET.search(body)
        if not match or "BRA" not in opcode:
            continue
        target = int(match.group(1), 16)
        if target >= address:
            continue
        inside = [op for a, op, _ in instructions if target <= a <= address]
        key = (sum(map(is_hmma, inside)), -len(inside))
        if best is None or key > best[0]:
            best = (key, len(inside))
    if best is None:
        return None
    return best[1], best[0][0]


def short_name(demangled):
    """forward_kernel<ForwardTraits<__nv_bfloat16, 128, true>> -> ('forward', 'modifiers', 'bf16', '128'):
    the variant is 'modifiers' for the instances with score modifiers (a template argument true)."""
    match = re.search(r"::(\w+)_kernel<(.*)>\(", demangled)
    if not match:
        match = re.search(r"::(\w+)\(", demangled)
        return (match.group(1) if match else demangled), "", "", ""
    kind, args = match.group(1), match.group(2)
    variant = "modifiers" if re.search(r"\btrue\b", args) else "plain"
    dtype = "bf16" if "bfloat16" in args else "f16" if "half" in args else "f32"
    numbers = re.findall(r"\b(\d+)\b", args)
    return kind, variant, dtype, numbers[-1] if numbers else ""


def occupancy(registers, shared_bytes, threads):
    warps = (threads + 31) // 32
    per_warp = -(-registers * 32 // REGISTER_UNIT) * REGISTER_UNIT
    blocks = min(H100_MAX_BLOCKS, H100_MAX_WARPS // warps, H100_REGISTERS // (per_warp * warps))
    blocks = min(blocks, H100_SHARED // (shared_bytes + H100_SHARED_RESERVED))
    return blocks, blocks * warps


def predicted_tflops(loop_per_hmma, warps_per_sm):
    """The issue-bound figure, for kernels with at least two warps per scheduler (else none)."""
    if loop_per_hmma is None or warps_per_sm < 8:
        return None
    return MMA_TFLOPS * min(1.0, CYCLES_PER_HMMA / loop_per_hmma)


def report(cubins, launch_table, cuobjdump, source_of):
    launches = {}
    for line in open(launch_table):
        entry = json.loads(line)
        launches[(entry["kernel"], entry["variant"], entry["dtype"], str(entry["dim"]))] = entry
    rows, failures = [], []
    for cubin in cubins:
        functions = parse_sass(run([cuobjdump, "-sass", cubin]))
        resources = parse_resources(run([cuobjdump, "-res-usage", cubin]))
        names = demangle(sorted(functions))
        for mangled in sorted(functions, key=lambda n: short_name(names[n])):
            instructions = functions[mangled]
            kind, variant, dtype, dim = short_name(names[mangled])
            registers, stack, static_shared, local = resources.get(mangled, (0, 0, 0, 0))
            opcodes = [op for _, op, _ in instructions]
            hmma = sum(map(is_hmma, opcodes))
            local_ops = sum(op.startswith(("LDL", "STL")) for op in opcodes)
            launch = launches.get((kind, variant, dtype, dim), {})
            shared = static_shared + launch.get("shared_bytes", 0)
            threads = launch.get("threads")
            blocks, warps = occupancy(registers, shared, threads) if threads else (None, None)
            loop = main_loop(instructions)
            whole_per_hmma = len(instructions) / hmma if hmma else None
            loop_per_hmma = loop[0] / loop[1] if loop and loop[1] else None
            rows.append(dict(file=source_of[cubin], kernel=kind, variant=variant, dtype=dtype, dim=dim, registers=registers,
                             local=local + stack, ldl_stl=local_ops, shared=shared, threads=threads,
                             blocks=blocks, warps=warps, instructions=len(instructions), hmma=hmma,
                             whole_per_hmma=whole_per_hmma, loop_instructions=loop[0] if loop else None,
                             loop_hmma=loop[1] if loop else None, loop_per_hmma=loop_per_hmma,
                             predicted=predicted_tflops(loop_per_hmma, warps or 0)))
            if local or stack or local_ops:
                failures.append(f"{source_of[cubin]}: {names[mangled]}: {local + stack} bytes of local memory, "
                                f"{local_ops} LDL/STL")
    return rows, failures


def fmt(value, digits=1):
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def print_table(rows):
    print("| file | kernel | variant | dtype | dim (f32: columns a lane) | regs | local bytes | LDL/STL | shared KB | blocks/SM (warps) "
          "| SASS | HMMA | SASS/HMMA | loop SASS/HMMA (loop HMMA) | issue-bound TFLOP/s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        occupancy_text = f"{r['blocks']} ({r['warps']})" if r["blocks"] is not None else "-"
        loop_text = f"{fmt(r['loop_per_hmma'])} ({r['loop_hmma']})" if r["loop_per_hmma"] else "-"
        print(f"| {r['file']} | {r['kernel']} | {r['variant'] or '-'} | {r['dtype']} | {r['dim']} | {r['registers']} | {r['local']} "
              f"| {r['ldl_stl']} | {r['shared'] / 1024:.1f} | {occupancy_text} | {r['instructions']} "
              f"| {r['hmma']} | {fmt(r['whole_per_hmma'])} | {loop_text} | {fmt(r['predicted'], 0)} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cuobjdump", required=True)
    parser.add_argument("--launch-table", required=True, help="JSON lines: kernel, dtype, dim, threads, shared_bytes")
    parser.add_argument("--json", help="also write the rows here")
    parser.add_argument("cubins", nargs="+", help="SOURCE=CUBIN pairs")
    args = parser.parse_args()
    source_of = {}
    for pair in args.cubins:
        source, cubin = pair.split("=", 1)
        source_of[cubin] = source
    rows, failures = report(list(source_of), args.launch_table, args.cuobjdump, source_of)
    print_table(rows)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(rows, out, indent=1)
    for failure in failures:
        print(f"sass_report: local memory in an attention kernel: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
