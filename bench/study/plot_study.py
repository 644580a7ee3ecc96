#!/usr/bin/env python3
"""Plots of a scaling study: time, bytes and load imbalance versus world size.

Usage: plot_study.py OUT_DIR   (reads OUT_DIR/results.json, writes OUT_DIR/{time,bytes,imbalance}.png)

A study of several variants (partition schemes x source exchanges) gets one plot per metric
instead, a line per variant: OUT_DIR/compare_{bytes,halo,edge_imbalance,node_imbalance,time}.png.
"""
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


COMPARED = [
    ("compare_bytes.png", "MiB sent per step, busiest rank", lambda r: r["max_rank_bytes_sent"] / 2**20),
    ("compare_halo.png", "halo MiB, max rank", lambda r: r["halo_bytes_max"] / 2**20),
    ("compare_edge_imbalance.png", "edge imbalance (max / mean)", lambda r: r["edges_imbalance"]),
    ("compare_node_imbalance.png", "node imbalance (max / mean)", lambda r: r["dst_nodes_imbalance"]),
]


def variants(rows):
    groups = {}
    for r in rows:
        key = f'{r.get("scheme", "contiguous")}, {r.get("src_exchange", "all_gather")}'
        groups.setdefault(key, []).append(r)
    return groups


def compare(results, groups, title, save):
    metrics = list(COMPARED)
    if not results["plan_only"]:
        metrics.append(("compare_time.png", "ms per step", lambda r: r["step_seconds"] * 1e3))
    for name, label, value in metrics:
        fig, ax = plt.subplots(figsize=(6, 4))
        for key, rows in groups.items():
            ax.plot([r["world_size"] for r in rows], [value(r) for r in rows], marker="o", label=key)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("world size W")
        ax.set_ylabel(label)
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7)
        save(fig, name)


def main(out_dir):
    with open(os.path.join(out_dir, "results.json")) as f:
        results = json.load(f)
    rows = results["world_sizes"]
    ws = [r["world_size"] for r in rows]
    title = f'{results["name"]}: {results["graph"]["name"]}'
    written = []

    def save(fig, name):
        path = os.path.join(out_dir, name)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    groups = variants(rows)
    if len(groups) > 1:
        compare(results, groups, title, save)
        print("plots: " + ", ".join(written))
        return

    if not results["plan_only"]:
        fig, ax = plt.subplots(figsize=(6, 4))
        stages = sorted({s for r in rows for s in r["stage_seconds"]})
        for s in stages:
            ax.plot(ws, [r["stage_seconds"].get(s, 0) * 1e3 for r in rows], marker="o", label=s)
        ax.plot(ws, [r["critical_path_cpu_seconds"] * 1e3 for r in rows], "k--", marker="s",
                label="critical path (max rank CPU)")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("world size W")
        ax.set_ylabel("ms per step")
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7)
        save(fig, "time.png")

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(ws, [r["max_rank_bytes_sent"] / 2**20 for r in rows], marker="o",
            label="max bytes sent by a rank")
    ax.plot(ws, [r["total_bytes_sent"] / 2**20 for r in rows], marker="s", label="all ranks")
    if "halo_bytes_max" in rows[0]:
        ax.plot(ws, [r["halo_bytes_max"] / 2**20 for r in rows], "--", marker="^",
                label="halo only (lower bound), max rank")
    ax.set_xscale("log", base=2)
    ax.set_yscale("symlog")
    ax.set_xlabel("world size W")
    ax.set_ylabel("MiB per step")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    save(fig, "bytes.png")

    fig, ax = plt.subplots(figsize=(6, 4))
    for key, label in (("dst_nodes_imbalance", "dst nodes"), ("edges_imbalance", "edges"),
                       ("halo_imbalance", "halo source nodes")):
        ax.plot(ws, [r[key] for r in rows], marker="o", label=label)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("world size W")
    ax.set_ylabel("imbalance (max / mean)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    save(fig, "imbalance.png")
    print("plots: " + ", ".join(written))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
