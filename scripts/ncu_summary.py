#!/usr/bin/env python3
"""Summarises the kernel times Nsight Compute recorded (`ncu --csv --metrics gpu__time_duration.sum`, any page)
for one or more runs, side by side: total device time and kernel count, time per kernel family (convolution,
matrix product, attention, group/layer norm, copies and casts, activations, other elementwise, reductions), and
the kernels that took the most time in each run.

  python3 scripts/ncu_summary.py tenmin=tenmin.csv pytorch=torch.csv [--top 25]

Used by scripts/gpu-kernels.sh; needs only the standard library.
"""
import argparse
import csv
import re
from collections import defaultdict

UNITS = {"nsecond": 1e-6, "ns": 1e-6, "usecond": 1e-3, "us": 1e-3, "msecond": 1.0, "ms": 1.0, "second": 1e3, "s": 1e3}

# first match wins; matched against the lower-cased demangled kernel name (ATen's strided elementwise kernels are
# named gpu_kernel_impl_nocast<functor>: "nocast" is not a cast)
FAMILIES = [
    ("attention", r"fmha|flash|attention|sdpa|_attn|mha_"),
    ("group norm", r"group_?norm|groupnorm"),
    ("layer norm", r"layer_?norm|layernorm"),
    ("convolution", r"conv|fprop|dgrad|wgrad|implicit_?gemm|im2col|col2im"),
    ("matrix product", r"gemm|nvjet|cublas|cutlass|splitk|split_k"),
    ("copy / cast", r"copy|(?<!no)cast|cat_|catarray|contiguous|transpose|permute"),
    ("activation", r"silu|gelu|sigmoid|tanh|softplus|swish"),
    ("reduction", r"reduce|sum_|norm_kernel|mean|var_|welford"),
    ("elementwise", r"elementwise|add|mul|sub|div|fill|where|pow|sqrt|exp"),
]


def family(name):
    low = name.lower()
    for fam, rx in FAMILIES:
        if re.search(rx, low):
            return fam
    return "other"


def read(path):
    """[(kernel name, milliseconds)] from an ncu CSV log (lines that are not CSV rows are skipped)."""
    rows = []
    with open(path, newline="", errors="replace") as f:
        lines = [ln for ln in f if ln.startswith('"')]
    reader = csv.reader(lines)
    header = None
    for r in reader:
        if header is None:
            if "Kernel Name" in r:
                header = {k: i for i, k in enumerate(r)}
            continue
        if len(r) != len(header) or r[header["Kernel Name"]] == "Kernel Name":
            continue
        name = r[header["Kernel Name"]]
        if "Metric Name" in header:  # details page: one row per metric
            if r[header["Metric Name"]] != "gpu__time_duration.sum":
                continue
            value, unit = r[header["Metric Value"]], r[header["Metric Unit"]]
        else:  # raw page: one row per kernel, a column per metric (units in the second row are skipped above)
            col = header.get("gpu__time_duration.sum")
            if col is None:
                continue
            value, unit = r[col], "nsecond"
        try:
            ms = float(value.replace(",", "")) * UNITS.get(unit.strip(), 1e-6)
        except ValueError:
            continue
        rows.append((name, ms))
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", metavar="LABEL=CSV")
    p.add_argument("--top", type=int, default=25)
    args = p.parse_args()
    runs = []
    for spec in args.runs:
        label, _, path = spec.partition("=")
        try:
            rows = read(path)
        except OSError as e:
            print(f"{label}: cannot read {path}: {e}")
            continue
        runs.append((label, rows))
    if not runs:
        raise SystemExit(1)
    width = max(14, *(len(label) for label, _ in runs))
    print("kernel time recorded by ncu (gpu__time_duration.sum, kernels run one at a time), ms:")
    print(f"  {'family':16s}" + "".join(f"{label:>{width}s} {'n':>6s}" for label, _ in runs))
    fams = [f for f, _ in FAMILIES] + ["other"]
    sums = []
    for label, rows in runs:
        t, n = defaultdict(float), defaultdict(int)
        for name, ms in rows:
            t[family(name)] += ms
            n[family(name)] += 1
        sums.append((t, n))
    for fam in fams:
        if any(n[fam] for _, n in sums):
            print(f"  {fam:16s}" + "".join(f"{t[fam]:{width}.3f} {n[fam]:6d}" for t, n in sums))
    print(f"  {'total':16s}" + "".join(f"{sum(t.values()):{width}.3f} {sum(n.values()):6d}" for t, n in sums))
    for label, rows in runs:
        by = defaultdict(lambda: [0.0, 0])
        for name, ms in rows:
            by[name][0] += ms
            by[name][1] += 1
        print(f"\n{label}: the {args.top} kernels with the most time (ms, count, family, name)")
        for name, (ms, n) in sorted(by.items(), key=lambda kv: -kv[1][0])[:args.top]:
            short = name if len(name) <= 150 else name[:147] + "..."
            print(f"  {ms:9.3f} {n:6d}  {family(name):14s} {short}")


if __name__ == "__main__":
    main()
