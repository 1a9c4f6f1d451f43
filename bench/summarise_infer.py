"""Reads `lottery bench infer --json` lines on stdin (one per round) and prints the medians as
the Markdown table BENCHMARKS.md records."""
import json
import statistics
import sys

runs = [json.loads(line) for line in sys.stdin if line.strip()]


def med(f):
    return statistics.median(f(r) for r in runs)


first = runs[0]
print(f"{first['source']}, {first['live_weights']} live weights, {first['threads']} threads, "
      f"median of {len(runs)} rounds\n")
print("| network | batch-1 latency µs | batch-64 examples/s | batch-256 examples/s |")
print("|---|---:|---:|---:|")
rows = [("compact sparse (ours)", lambda r: r["sparse"]),
        ("dense, burn flex", lambda r: r["dense"]),
        ("dense, PyTorch", lambda r: r["torch"]),
        ("floor, sparse", lambda r: r["floor"]["sparse"]),
        ("floor, dense", lambda r: r["floor"]["dense"])]
for name, get in rows:
    lat = med(lambda r: get(r)["batch1_latency_us"])
    b64 = med(lambda r: get(r)["batch64_samples_per_s"])
    b256 = med(lambda r: get(r)["batch256_samples_per_s"])
    print(f"| {name} | {lat:.2f} | {b64:,.0f} | {b256:,.0f} |")
lat = [r["torch"]["batch1_latency_us"] / r["sparse"]["batch1_latency_us"] for r in runs]
thr = [r["sparse"]["batch256_samples_per_s"] / r["torch"]["batch256_samples_per_s"] for r in runs]
print("\nsparse vs PyTorch, per round: batch-1 latency "
      + ", ".join(f"{x:.1f}×" for x in lat) + " lower; batch-256 throughput "
      + ", ".join(f"{x:.1f}×" for x in thr) + " higher")
print(f"measured floor inputs: memory bandwidth {med(lambda r: r['floor']['memory_bandwidth_gb_s']):.1f} GB/s, "
      f"GEMM {med(lambda r: r['floor']['gemm_gflop_s']):.1f} GFLOP/s")
