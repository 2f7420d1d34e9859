# SPDX-License-Identifier: Apache-2.0
"""results.png for bench/run.py, drawn with matplotlib (Debian: python3-matplotlib).

    draw("throughput" | "live", path, ctx, summary, unavailable) -> path or None

DESIGN. The figures are the ones results.md shows, from run.py's summary
({(case, contender): {metric: {median, min, max}, ok_runs, ...}}): bars at the median
of the verified runs, error bars from min to max. Throughput: one row per corpus kind,
MB/s and CPU-s/GiB side by side. Live: one group of bars per rate, p99 latency and the
contender's CPU (% of one core). A contender without verified runs in a case gets no
bar there (its row in results.md says why). matplotlib is imported here, inside draw(),
so that run.py can report an ImportError and go on without a chart; the Agg backend
needs no display.
"""

THROUGHPUT_PANELS = (("mb_s", "MB/s (10^6 B/s), higher is better"),
                     ("cpu_s_per_gib", "CPU-s/GiB, lower is better"))
LIVE_PANELS = (("p99_ms", "p99 latency, ms (append → broker append time)"),
               ("cpu_pct", "contender CPU, % of one core"))


def _bars(ax, groups, names, summary, metric, plt):
    """Grouped bars: one group per case, one bar per contender with verified runs."""
    width = 0.8 / max(len(names), 1)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    drawn = False
    for j, name in enumerate(names):
        xs, meds, lo, hi = [], [], [], []
        for i, case in enumerate(groups):
            st = summary.get((case, name), {}).get(metric)
            if not st:
                continue
            xs.append(i - 0.4 + width * (j + 0.5))
            meds.append(st["median"])
            lo.append(st["median"] - st["min"])
            hi.append(st["max"] - st["median"])
        if xs:
            drawn = True
            ax.bar(xs, meds, width * 0.92, yerr=[lo, hi], capsize=3, label=name,
                   color=colors[j % len(colors)])
            for x, v in zip(xs, meds):
                ax.annotate(f"{v:,.3g}", (x, v), ha="center", va="bottom", fontsize=7,
                            xytext=(0, 2), textcoords="offset points")
    return drawn


def draw(mode, path, ctx, summary, unavailable):
    """Writes the chart of a throughput or live run to path; None if there is nothing to
    draw (no contender verified anything). Raises ImportError without matplotlib."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in ctx["contenders"] if n not in unavailable]
    if mode == "throughput":
        rows = [[kind] for kind in ctx["kinds"]]
        panels = THROUGHPUT_PANELS
        labels = [[f"corpus {kind}"] for kind in ctx["kinds"]]
    elif mode == "live":
        rows = [ctx["rates"]]
        panels = LIVE_PANELS
        labels = [[f"{r:,} lines/s" for r in ctx["rates"]]]
    else:
        raise ValueError(f"no chart for mode {mode}")
    fig, axes = plt.subplots(len(rows), len(panels), squeeze=False,
                             figsize=(5.5 * len(panels), 3.6 * len(rows) + 0.6))
    drawn = False
    for r, groups in enumerate(rows):
        for c, (metric, title) in enumerate(panels):
            ax = axes[r][c]
            if _bars(ax, groups, names, summary, metric, plt):
                drawn = True
                ax.legend(fontsize=8)
            ax.set_xticks(range(len(groups)))
            ax.set_xticklabels(labels[r])
            ax.set_title(title, fontsize=9)
            ax.grid(axis="y", alpha=0.3)
            ax.set_axisbelow(True)
            ax.set_ylim(bottom=0)
    if not drawn:
        plt.close(fig)
        return None
    fig.suptitle(f"ringtail bench: {ctx['title']}\n{ctx['finished']}; median of the verified "
                 f"runs, error bars min–max", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
