#!/usr/bin/env python3
"""Side by side: the issue-14 targets against several bench runs' JSON files (bench/all.sh).

    summary.py RUN.json... > bench/results.md
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench import delta, fmt, machine_info  # noqa: E402


def label(m: dict) -> str:
    return {"sqlite": "SQLite", "postgres": "PostgreSQL"}.get(m["db"], m["db"]) + (" (scale)" if m["scale"] else "")


def verdict(ok) -> str:
    return "" if ok is None else " ✓" if ok else " ✗"


def main(paths: list[str]) -> int:
    runs = []
    for p in paths:
        try:
            with open(p) as f:
                runs.append((p, json.load(f)))
        except OSError as e:
            print(f"summary.py: skipping {p}: {e}", file=sys.stderr)
    if not runs:
        return 1
    L = ["# ucbridge benchmark results", ""]
    L.extend(machine_info(os.path.dirname(HERE)))
    L.append("- each column is one `bench/run.sh` run (bench/all.sh ran them one after another); its full "
             "report is the file named under the table. ✓ target met, ✗ not met.")
    L.append("")
    head = "| measure | target | " + " | ".join(label(m) for _, m in runs) + " |"
    L += [head, "|---|---|" + "---|" * len(runs)]
    keys = []
    for _, m in runs:
        keys += [k for k in m["phases"] if k not in keys]
    for k in keys:
        cells = []
        for _, m in runs:
            p = m["phases"].get(k)
            if p is None:
                cells.append("–")
            elif " paced " in k:
                ok = None if p["dp50"] is None or p["dp99"] is None else p["dp50"] <= 5 and p["dp99"] <= 20
                cells.append(f"{delta(p['dp50'], 0)} / {delta(p['dp99'], 0)}{verdict(ok)}")
            else:
                ok = None if p["ratio"] is None else p["ratio"] >= 0.9
                cells.append(f"{fmt(p['ratio'], 2)}{verdict(ok)}")
        target = "added p50 ≤ 5 / p99 ≤ 20 ms" if " paced " in k else "≥ 0.9 of M→M msg/s"
        L.append(f"| {k} | {target} | " + " | ".join(cells) + " |")

    def simple(name, target, get, ok):
        cells = []
        for _, m in runs:
            v = get(m)
            cells.append(f"{v}{verdict(ok(m))}" if v is not None else "–")
        L.append(f"| {name} | {target} | " + " | ".join(cells) + " |")

    simple("CPU per bridged message", "≤ 300 µs", lambda m: f"{fmt(m['cpu_us_per_msg'], 0)} µs (log `{m['log']}`)",
           lambda m: None if m["cpu_us_per_msg"] is None else m["cpu_us_per_msg"] <= 300)
    for k, name, lim in (("rss_idle_kb", "RSS idle after start", 15), ("hwm_kb", "RSS peak", 30),
                         ("rss_after_kb", "RSS after the bench (quiet)", 20)):
        simple(name, f"≤ {lim} MiB", lambda m, k=k: f"{fmt(m['rss_mib'].get(k))} MiB",
               lambda m, k=k, lim=lim: None if m["rss_mib"].get(k) is None else m["rss_mib"][k] <= lim)
    # Not a target of its own: the part of RSS that is the program's heap and stacks (the rest
    # is its own code, mapped from the file, clean and reclaimable).
    simple("of which anonymous, idle / end", "–",
           lambda m: (f"{fmt(m['rss_mib'].get('anon_idle_kb'))} / {fmt(m['rss_mib'].get('anon_end_kb'))} MiB"
                      if m["rss_mib"].get("anon_idle_kb") is not None else None),
           lambda m: None)
    simple("out of order / lost / duplicates", "0 / 0 / 0", lambda m: f"{m['ooo']} / {m['lost']} / {m['dup']}",
           lambda m: m["ooo"] == 0 and m["lost"] == 0 and m["dup"] == 0)
    simple("start-up, spawn to healthy", "≤ 5 s (scale)", lambda m: f"{fmt((m['startup_ms'] or 0) / 1000, 2)} s",
           lambda m: (m["startup_ms"] or 0) <= 5000 if m["scale"] else None)
    L.append("")
    L.append("Runs: " + ", ".join(f"[{label(m)}]({os.path.basename(os.path.splitext(p)[0])}.md)" for p, m in runs) + ".")
    L.append("")
    print("\n".join(L))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
