#!/usr/bin/env python3
"""Helpers for bench/run.sh (standard library only).

  report.py fio JSON read|write bw|iops
      print one number from a fio --output-format=json file:
      bw -> MB/s (10^6 bytes per second), iops -> I/O per second.

  report.py table RESULTS.tsv HEADER.md SYSTEMS...
      print the Markdown report: HEADER.md, then one table per metric with one
      row per system (in the order given): median over repeats, ratio to ext4
      native, to passthrough_hp for metadata/open metrics, and to gocryptfs
      for the wardfs-sensitive row.

RESULTS.tsv lines (tab-separated):  workload metric system repeat value note
value is a number, or FAIL/SKIP with the reason in note. A failure recorded
for metric "*" covers every metric of that workload.
"""
import json
import re
import statistics
import sys
from collections import defaultdict

# metric -> (title, unit, compare with passthrough_hp?)
METRICS = [
    ("seqwrite", "Sequential write, 1 MiB blocks, end_fsync", "MB/s", False),
    ("seqread-cold", "Sequential read, 1 MiB blocks, cold cache", "MB/s", False),
    ("seqread-warm", "Sequential read, 1 MiB blocks, warm cache", "MB/s", False),
    ("randread", "Random read, 4 KiB, psync, 1 job", "IOPS", False),
    ("randread-miss", "Random read, 4 KiB, psync, 1 job, page-cache misses only (20,000 reads from a dropped cache)", "IOPS", False),
    ("randwrite", "Random write, 4 KiB, psync, 1 job", "IOPS", False),
    ("create", "Metadata: create (+ write) small files", "files/s", True),
    ("stat", "Metadata: stat small files", "files/s", True),
    ("read", "Metadata: open + read + close small files", "files/s", True),
    ("delete", "Metadata: delete small files (cold, after remount)", "files/s", True),
]
OPEN_RE = re.compile(r"^open-(\d+)t$")


def fio_value(path, direction, what):
    with open(path) as f:
        text = f.read()
    # fio may print warnings before the JSON object.
    data = json.loads(text[text.index("{"):])
    job = data["jobs"][0]
    if job.get("error"):
        sys.exit(f"fio reported error {job['error']}")
    side = job[direction]
    if what == "bw":
        return side["bw_bytes"] / 1e6
    return side["iops"]


def fmt_value(v):
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def fmt_ratio(a, b):
    if a is None or b is None or b == 0:
        return "–"
    return f"{a / b:.2f}x"


def workload_of(metric):
    """The run.sh workload that produces a metric (failures are per workload)."""
    if metric.startswith("seqread"):
        return "seqread"
    if metric in ("create", "stat", "read"):
        return "metadata"
    if metric == "delete":
        return "metadata-delete"
    if metric.startswith("open-"):
        return "open"
    return metric


def table(results_path, header_path, systems):
    vals = defaultdict(list)        # (metric, system) -> [float]
    fails = {}                      # (workload, system) -> first failure note
    failed_workloads = set()
    with open(results_path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 5:
                continue
            workload, metric, system, _rep, value = parts[:5]
            note = parts[5] if len(parts) > 5 else ""
            if value in ("FAIL", "SKIP"):
                fails.setdefault((workload, system), f"{value}: {note}" if note else value)
                failed_workloads.add(workload)
                continue
            vals[(metric, system)].append(float(value))
    seen = {m for m, _ in vals}

    # Which tables: every metric with data, plus those of workloads that only
    # failed (so a failure is never silently dropped from the report).
    metrics = [m for m in METRICS if m[0] in seen or workload_of(m[0]) in failed_workloads]
    open_metrics = sorted((m for m in seen if OPEN_RE.match(m)),
                          key=lambda m: int(OPEN_RE.match(m).group(1)))
    if not open_metrics and "open" in failed_workloads:
        open_metrics = ["open-all"]
    for m in open_metrics:
        n = OPEN_RE.match(m)
        metrics.append((m, "Open-heavy: open + close existing files, " +
                        (f"{n.group(1)} thread(s)" if n else "all thread counts"),
                        "opens/s", True))

    def median(metric, system):
        v = vals.get((metric, system))
        return statistics.median(v) if v else None

    def failure(metric, system):
        return fails.get((workload_of(metric), system))

    # The encrypted wardfs is also compared with the encrypted peer.
    encrypting = ("wardfs-sensitive", "wardfs-names")
    vs_gc = any(s in systems for s in encrypting) and "gocryptfs" in systems
    with open(header_path) as f:
        out = [f.read().rstrip("\n"), ""]
    for metric, title, unit, vs_hp in metrics:
        out.append(f"### {title} ({unit}, median)")
        out.append("")
        cols = ["system", f"median {unit}", "vs ext4"]
        if vs_hp:
            cols.append("vs passthrough_hp")
        if vs_gc:
            cols.append("vs gocryptfs")
        cols.append("runs")
        out.append("| " + " | ".join(cols) + " |")
        out.append("|" + "|".join([" --- "] + [" ---: "] * (len(cols) - 2) + [" --- "]) + "|")
        base = median(metric, "ext4")
        hp = median(metric, "passthrough_hp")
        gc = median(metric, "gocryptfs")
        for s in systems:
            m = median(metric, s)
            if m is None:
                why = failure(metric, s) or "no data"
                row = [s, why] + ["–"] * (len(cols) - 2)
            else:
                runs = ", ".join(fmt_value(v) for v in vals[(metric, s)])
                extra = failure(metric, s)
                if extra:
                    runs += f" (some runs {extra})"
                row = [s, fmt_value(m), fmt_ratio(m, base)]
                if vs_hp:
                    row.append(fmt_ratio(m, hp))
                if vs_gc:
                    row.append(fmt_ratio(m, gc) if s in encrypting else "–")
                row.append(runs)
            out.append("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |")
        out.append("")
    out.append("Ratios are system median / reference median: above 1.00x is faster "
               "than the reference.")
    print("\n".join(out))


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "fio":
        print(f"{fio_value(sys.argv[2], sys.argv[3], sys.argv[4]):.3f}")
    elif len(sys.argv) >= 5 and sys.argv[1] == "table":
        table(sys.argv[2], sys.argv[3], sys.argv[4:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
