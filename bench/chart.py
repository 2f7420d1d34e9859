# SPDX-License-Identifier: Apache-2.0
"""results.png for bench/run.py, drawn with matplotlib (Debian: python3-matplotlib).

    draw("throughput" | "live" | "backlog", path, ctx, summary, unavailable) -> path or None

DESIGN. The figures are the ones results.md shows, from run.py's summary
({(case, contender): {metric: {median, min, max}, ok_runs, ...}}): bars at the median
of the verified runs, error bars from min to max. Throughput: one row per corpus kind,
MB/s and CPU-s/GiB side by side. Live: one group of bars per rate, p99 latency and the
contender's CPU (% of one core). Backlog: peak RSS while the broker was down and
overall (with issue 6's 64 MiB target for ringtail), and the time to full delivery
after the broker's return. A contender without verified runs in a case gets no bar
there (its row in results.md says why). matplotlib is imported here, inside draw(), so
that run.py can report an ImportError and go on without a chart; the Agg backend needs
no display.
"""

THROUGHPUT_PANELS = (("mb_s", "MB/s (10^6 B/s), higher is better"),
                     ("cpu_s_per_gib", "CPU-s/GiB, lower is better"))
LIVE_PANELS = (("p99_ms", "p99 latency, ms (append → broker append time)"),
               ("cpu_pct", "contender CPU, % of one core"))
# Backlog: issue 6's target for ringtail with a 10 GB backlog, a line on the RSS panel;
# the panels get room above the bars for the legend (the bars are often of a height).
RSS_TARGET = (64, "target for ringtail: ≤ 64 MiB (10 GB backlog)")
HEADROOM = 1.4


def _bars(ax, groups, names, stat, plt):
    """Grouped bars: one group per entry of groups, one bar per contender with verified
    runs; stat(group, name) is the {median, min, max} of a bar, or None."""
    width = 0.8 / max(len(names), 1)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    drawn = False
    for j, name in enumerate(names):
        xs, meds, lo, hi = [], [], [], []
        for i, group in enumerate(groups):
            st = stat(group, name)
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


def _panels(mode, ctx, summary):
    """The chart's rows of panels, each (title, groups, their labels, stat(group, name),
    options or None: line, a horizontal line (y, label) drawn when ringtail is there;
    headroom, the top of the y axis over the highest bar's, the legend then upper left)."""
    def metric(m):
        return lambda case, name: summary.get((case, name), {}).get(m)

    if mode == "throughput":
        return [[(title, [kind], [f"corpus {kind}"], metric(m), None)
                 for m, title in THROUGHPUT_PANELS] for kind in ctx["kinds"]]
    if mode == "live":
        labels = [f"{r:,} lines/s" for r in ctx["rates"]]
        return [[(title, ctx["rates"], labels, metric(m), None) for m, title in LIVE_PANELS]]
    if mode == "backlog":
        kind = ctx["kinds"][0]

        def stat(m, name):
            return summary.get((kind, name), {}).get(m)

        return [[("peak RSS (VmHWM), MiB, lower is better",
                  ["peak_rss_down_mib", "peak_rss_mib"],
                  [f"while the broker was down ({ctx['down_s']:g} s)", "overall, until exit"],
                  stat, {"line": RSS_TARGET, "headroom": HEADROOM}),
                 ("delivery after the broker's return, s, lower is better",
                  ["delivery_after_up_s"],
                  [f"{kind} corpus, {ctx['corpora'][kind]['bytes'] / 1e9:,.2f} GB"], stat,
                  {"headroom": HEADROOM})]]
    raise ValueError(f"no chart for mode {mode}")


def draw(mode, path, ctx, summary, unavailable):
    """Writes the chart of a throughput, live or backlog run to path; None if there is
    nothing to draw (no contender verified anything). Raises ImportError without
    matplotlib."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in ctx["contenders"] if n not in unavailable]
    rows = _panels(mode, ctx, summary)
    ncols = max(len(r) for r in rows)
    fig, axes = plt.subplots(len(rows), ncols, squeeze=False,
                             figsize=(5.5 * ncols, 3.6 * len(rows) + 0.6))
    drawn = False
    for r, panels in enumerate(rows):
        for c, (title, groups, labels, stat, opts) in enumerate(panels):
            ax = axes[r][c]
            opts = opts or {}
            if _bars(ax, groups, names, stat, plt):
                drawn = True
                if opts.get("line") and "ringtail" in names:
                    y, label = opts["line"]
                    ax.axhline(y, color="grey", linestyle="--", linewidth=0.8, label=label)
                if opts.get("headroom"):
                    ax.set_ylim(top=opts["headroom"] * ax.get_ylim()[1])
                    ax.legend(fontsize=8, loc="upper left")
                else:
                    ax.legend(fontsize=8)
            ax.set_xticks(range(len(groups)))
            ax.set_xticklabels(labels)
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
