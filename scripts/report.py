#!/usr/bin/env python3
"""The analyst's first look: a self-contained HTML page with PNG plots, made
from one or more scanwatch output folders (Arrow or Parquet, one sensor or
many).

    python3 scripts/report.py OUT_DIR... [-o report/]

It loads the `flows` and `detections` tables with Hive partitioning
(sensor=, date=, hour=), registers them in DuckDB, and runs the SQL files of
scripts/sql/ unchanged: the same queries run on a cluster with Spark SQL or
Trino over the same Parquet tree (see the README). The page shows scans over
time by scanner, the top scanners, the ports and services probed, the open
doors (probed services that answered), and, across several sensors, the
campaign view: the scanners that touched more than one sensor, when and
where. Needs duckdb, pyarrow and matplotlib (scripts/pyenv.sh installs them).
"""

import argparse
import base64
import datetime as dt
import glob
import html
import os
import sys

import duckdb
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.dataset as ds  # noqa: E402

SQL_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sql")


def load_table(dirs, table):
    """One Arrow table from every folder's `table`, Parquet or Arrow IPC,
    with the Hive columns; a folder without sensor= levels is sensor
    'default'."""
    parts = []
    for d in dirs:
        root = os.path.join(d, table)
        if not os.path.isdir(root):
            continue
        for fmt, ext in (("parquet", "parquet"), ("ipc", "arrow")):
            files = sorted(glob.glob(os.path.join(root, "**", f"*.{ext}"), recursive=True))
            if not files:
                continue
            t = ds.dataset(files, format=fmt, partitioning="hive",
                           partition_base_dir=root).to_table()
            if "sensor" not in t.column_names:
                t = t.append_column("sensor", pa.array(["default"] * t.num_rows, pa.string()))
            else:
                t = t.set_column(t.column_names.index("sensor"), "sensor",
                                 t.column("sensor").cast(pa.string()))
            for c in ("date", "hour"):
                if c in t.column_names:
                    t = t.drop_columns([c])
            parts.append(t)
    if not parts:
        return None
    return pa.concat_tables(parts, promote_options="default")


def query(con, name):
    with open(os.path.join(SQL_DIR, name)) as f:
        cur = con.execute(f.read())
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, row)) for row in cur.fetchall()]


def save(fig, out, name):
    path = os.path.join(out, name)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_over_time(rows, out):
    fig, ax = plt.subplots(figsize=(9, 4))
    by = {}
    for r in rows:
        by.setdefault(r["scanner"], []).append((r["hour_start"], r["probes"], r["kind"]))
    top = sorted(by, key=lambda s: -sum(p for _, p, _ in by[s]))[:10]
    markers = {"vertical": "s", "horizontal": "o", "block": "D"}
    for s in top:
        for kind in sorted({k for _, _, k in by[s]}):
            pts = [(h, p) for h, p, k in by[s] if k == kind]
            ax.scatter([h for h, _ in pts], [p for _, p in pts], marker=markers.get(kind, "x"),
                       s=60, label=f"{s} ({kind})")
    hours = [r["hour_start"] for r in rows]
    ax.set_xlim(min(hours) - dt.timedelta(hours=2), max(hours) + dt.timedelta(hours=2))
    ax.set_yscale("log")
    ax.set_ylabel("probes in scans starting that hour")
    ax.set_title("Scans over time, by scanner")
    ax.legend(fontsize=7, loc="best")
    fig.autofmt_xdate()
    return save(fig, out, "scans_over_time.png")


def plot_bars(labels, values, title, xlabel, out, name, color):
    fig, ax = plt.subplots(figsize=(9, max(2.5, 0.35 * len(labels) + 1)))
    ax.barh(range(len(labels)), values, color=color)
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    return save(fig, out, name)


def plot_campaign(rows, out):
    fig, ax = plt.subplots(figsize=(9, max(2.5, 0.45 * len(rows) + 1)))
    sensors = sorted({r["sensor"] for r in rows})
    colors = {s: plt.cm.tab10(i % 10) for i, s in enumerate(sensors)}
    labels = []
    for i, r in enumerate(rows):
        labels.append(f"{r['scanner']} @ {r['sensor']}")
        ax.plot([r["first_seen"], r["last_seen"]], [i, i], lw=6, color=colors[r["sensor"]],
                solid_capstyle="butt")
        ax.plot([r["first_seen"]], [i], "k|", ms=12)
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_title("Campaign: scanners seen by more than one sensor")
    fig.autofmt_xdate()
    return save(fig, out, "campaign.png")


def overview(pngs, path):
    """All plots on one picture (for a README or a slide)."""
    import matplotlib.image as mpimg
    order = [k for k in ("doors", "over", "top", "ports", "camp") if k in pngs]
    if not order:
        return
    cols = 2
    rows = (len(order) + 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(16, 5.5 * rows))
    flat = axes.ravel() if hasattr(axes, "ravel") else [axes]
    for ax in flat:
        ax.axis("off")
    for ax, k in zip(flat, order):
        ax.imshow(mpimg.imread(pngs[k]))
    fig.suptitle("scanwatch report", fontsize=16)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def img(path):
    with open(path, "rb") as f:
        b64 = base64.b64encode(f.read()).decode()
    return f'<img alt="{html.escape(os.path.basename(path))}" src="data:image/png;base64,{b64}">'


def table(rows, cols, limit=50):
    if not rows:
        return "<p><em>none</em></p>"
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(r[c]))}</td>" for c in cols) + "</tr>"
        for r in rows[:limit])
    more = f"<p>… and {len(rows) - limit} more</p>" if len(rows) > limit else ""
    return f"<table><tr>{head}</tr>{body}</table>{more}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dirs", nargs="+", help="scanwatch output folders (-w DIR)")
    ap.add_argument("-o", "--out", default="report", help="where report.html and the PNGs go")
    a = ap.parse_args()
    dets = load_table(a.dirs, "detections")
    flows = load_table(a.dirs, "flows")
    if dets is None or flows is None:
        sys.exit("report.py: no flows/ or detections/ tables under " + " ".join(a.dirs))
    os.makedirs(a.out, exist_ok=True)
    con = duckdb.connect()
    con.register("detections", dets)
    con.register("flows", flows)

    over = query(con, "scans_over_time.sql")
    top = query(con, "top_scanners.sql")
    ports = query(con, "ports_probed.sql")
    doors = query(con, "open_doors.sql")
    camp = query(con, "campaign.sql")
    sensors = sorted(set(dets.column("sensor").to_pylist()) | set(flows.column("sensor").to_pylist()))

    pngs = {}
    if over:
        pngs["over"] = plot_over_time(over, a.out)
    if top:
        pngs["top"] = plot_bars([r["scanner"] for r in top], [r["probes"] for r in top],
                                "Top scanners", "probes", a.out, "top_scanners.png", "#b03a2e")
    if ports:
        pngs["ports"] = plot_bars([f"{r['port']}/{r['proto']}" for r in ports],
                                  [r["probes"] for r in ports], "Ports and services probed",
                                  "probes by detected scanners", a.out, "ports_probed.png", "#2e86c1")
    if doors:
        # Which services are exposed: per port, the targets that answered.
        per = {}
        for r in doors:
            per.setdefault(f"{r['port']}/{r['proto']}", set()).add(r["target"])
        items = sorted(per.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:25]
        pngs["doors"] = plot_bars([k for k, _ in items], [len(v) for _, v in items],
                                  "Open doors: probed services that answered",
                                  "targets that answered a scanner", a.out, "open_doors.png", "#1e8449")
    if camp:
        pngs["camp"] = plot_campaign(camp, a.out)

    n_scanners = len({r["scanner"] for r in top}) if top else 0
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    sec = []
    sec.append(f"<p>{dets.num_rows} scan records from {n_scanners} scanners, {flows.num_rows} flows, "
               f"sensors: {', '.join(map(html.escape, sensors))}. Made {when} from "
               f"{', '.join(map(html.escape, a.dirs))}.</p>")
    sec.append("<h2>Open doors</h2><p>Services that answered a scanner: check these first.</p>")
    sec.append(img(pngs["doors"]) if "doors" in pngs else "")
    sec.append(table(doors, ["scanner", "target", "port", "proto", "sensor", "first_answer"]))
    sec.append("<h2>Scans over time</h2>" + (img(pngs["over"]) if "over" in pngs else "<p><em>none</em></p>"))
    sec.append("<h2>Top scanners</h2>" + (img(pngs["top"]) if "top" in pngs else ""))
    sec.append(table(top, ["scanner", "scans", "probes", "answered", "max_targets", "max_ports",
                           "first_seen", "last_seen", "sensors"]))
    sec.append("<h2>Ports and services probed</h2>" + (img(pngs["ports"]) if "ports" in pngs else ""))
    sec.append(table(ports, ["port", "proto", "probes", "scanners", "targets"]))
    sec.append("<h2>Campaign: scanners seen by more than one sensor</h2>")
    sec.append(img(pngs["camp"]) if "camp" in pngs else
               "<p><em>no scanner was seen by more than one sensor</em></p>")
    sec.append(table(camp, ["scanner", "sensor", "first_seen", "last_seen", "scans", "probes"]))
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>scanwatch report</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;font-size:13px;margin:1em 0}}td,th{{border:1px solid #ccc;padding:3px 8px}}
th{{background:#eee}}img{{max-width:100%}}</style></head>
<body><h1>scanwatch report</h1>{''.join(sec)}</body></html>
"""
    overview(pngs, os.path.join(a.out, "overview.png"))
    path = os.path.join(a.out, "report.html")
    with open(path, "w") as f:
        f.write(page)
    print(f"report.py: {path} ({len(pngs)} plots)")


if __name__ == "__main__":
    main()
