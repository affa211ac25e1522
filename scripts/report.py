#!/usr/bin/env python3
"""The analyst's first look: a self-contained HTML page with PNG plots, made
from one or more scanwatch output folders (Arrow or Parquet, one sensor or
many, with or without flows).

    python3 scripts/report.py OUT_DIR... [-o report/] [--since T] [--until T] [--sensor NAME]...

The tables are never loaded into Python: scripts/swviews.py makes DuckDB
views over the files (Parquet through DuckDB's reader, Arrow IPC through a
pyarrow dataset DuckDB scans batch by batch), and the SQL files of
scripts/sql/ run on them unchanged: the same queries run on a cluster with
Spark SQL or Trino over the same Parquet tree (see the README). --since,
--until (UTC; since inclusive, until exclusive, on when a record began) and
--sensor prune whole date=/hour=/sensor= partitions before any file is
opened. The page shows scans over time by scanner, the top scanners, the
ports and services probed, the open doors (from the detections' own `open`
lists, and the `campaigns` table of `scanwatch correlate` when a folder has
one), and, across several sensors, the campaign view. Output written with
--no-flows gives the same page, with the ports taken from the detections.
Needs duckdb, pyarrow and matplotlib (scripts/pyenv.sh installs them).
"""

import argparse
import base64
import datetime as dt
import html
import os
import sys

import duckdb
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import swviews  # noqa: E402

SQL_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sql")


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


PORTS_FROM_DETECTIONS = """
SELECT p.port AS port, d.proto AS proto, COUNT(DISTINCT d.detection_id) AS records,
       COUNT(DISTINCT d.scanner) AS scanners
FROM detections d CROSS JOIN UNNEST(d.ports) AS p(port)
WHERE d.proto IN ('tcp', 'udp')
GROUP BY p.port, d.proto
ORDER BY scanners DESC, records DESC, port, proto
LIMIT 25
"""

# The campaigns' open doors, per sensor, parsed as in sql/open_doors.sql.
CAMPAIGN_DOORS = """
SELECT scanner, target, port, proto, sensor, COUNT(DISTINCT campaign) AS records,
       MIN(first_seen) AS first_seen, 'campaigns' AS source
FROM (SELECT scanner, campaign, proto, ps.sensor AS sensor, ps.first_seen AS first_seen,
             replace(replace(CASE WHEN proto IN ('tcp', 'udp')
                                  THEN regexp_extract(door, '^(.*):[0-9]+$', 1)
                                  ELSE door END, '[', ''), ']', '') AS target,
             CASE WHEN proto IN ('tcp', 'udp')
                  THEN CAST(regexp_extract(door, ':([0-9]+)$', 1) AS INTEGER) END AS port
      FROM (SELECT c.scanner, c.campaign, c.proto, s.ps
            FROM campaigns c CROSS JOIN UNNEST(c.per_sensor) AS s(ps)) x
      CROSS JOIN UNNEST(x.ps.open) AS o(door)
      {where}) y
GROUP BY scanner, target, port, proto, sensor
ORDER BY scanner, target, port, proto, sensor
"""

CAMPAIGNS = """
SELECT campaign, scanner, kind, proto, technique, array_to_string(sensors, ' ') AS sensors,
       probes, dst_count AS targets, below_threshold_everywhere, first_seen, last_seen
FROM campaigns {where}
ORDER BY first_seen, campaign
"""


def rows_of(con, text):
    cur = con.execute(text)
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, row)) for row in cur.fetchall()]


def walk_text(name, w):
    busy = f", {w.in_progress} parts being written or hidden left out" if w.in_progress else ""
    return (f"{name}: {w.files_kept} of {w.files_seen} files read "
            f"({w.partitions_kept} of {w.partitions_seen} hour partitions{busy})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dirs", nargs="+", help="scanwatch output folders (-w DIR, or correlate's -o OUT)")
    ap.add_argument("-o", "--out", default="report", help="where report.html and the PNGs go")
    ap.add_argument("--since", type=swviews.parse_when, metavar="T",
                    help="only records that began at or after T (UTC, YYYY-MM-DD[THH:MM:SS])")
    ap.add_argument("--until", type=swviews.parse_when, metavar="T",
                    help="only records that began before T (UTC)")
    ap.add_argument("--sensor", action="append", metavar="NAME",
                    help="only this sensor (repeatable; `default` for a tree written without --sensor)")
    ap.add_argument("--memory-limit", default="512MB",
                    help="DuckDB's memory limit (it spills to disk beyond) [512MB]")
    a = ap.parse_args()
    if a.since and a.until and a.since >= a.until:
        sys.exit("report.py: --since must be before --until")
    for d in a.dirs:
        if not any(os.path.isdir(os.path.join(d, t)) for t in swviews.TABLES):
            sys.exit(f"report.py: {d}: no flows/, detections/ or campaigns/ table")
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{a.memory_limit}'")
    con.execute("SET preserve_insertion_order = false")
    info = swviews.make_views(con, a.dirs, a.since, a.until, a.sensor)
    if "detections" not in info:
        sys.exit("report.py: no detections/ table under " + " ".join(a.dirs))
    known = set().union(*(w.sensors_seen for w in info.values()))
    missing = sorted(set(a.sensor or []) - known)
    if missing:
        sys.exit(f"report.py: no sensor {', '.join(missing)} in the trees (sensors: {', '.join(sorted(known))})")
    for name, w in info.items():
        for path in w.odd:
            print(f"report.py: warning: {path}: not a partition or a part; not read", file=sys.stderr)
    os.makedirs(a.out, exist_ok=True)
    has_flows = "flows" in info
    has_camp = "campaigns" in info

    over = query(con, "scans_over_time.sql")
    top = query(con, "top_scanners.sql")
    doors = [dict(r, source="detections") for r in query(con, "open_doors.sql")]
    camp = query(con, "campaign.sql")
    if has_flows:
        ports = query(con, "ports_probed.sql")
    else:
        ports = rows_of(con, PORTS_FROM_DETECTIONS)
    campaigns = []
    if has_camp:
        where = ""
        if a.sensor:
            names = ", ".join("'" + s.replace("'", "''") + "'" for s in a.sensor)
            where = f"WHERE ps.sensor IN ({names})"
        doors += rows_of(con, CAMPAIGN_DOORS.format(where=where))
        cwhere = ""
        if a.sensor:
            cwhere = "WHERE " + " OR ".join(
                "list_contains(sensors, '" + s.replace("'", "''") + "')" for s in a.sensor)
        campaigns = rows_of(con, CAMPAIGNS.format(where=cwhere))
    n_dets = con.execute("SELECT count(*) FROM detections").fetchone()[0]
    n_flows = con.execute("SELECT count(*) FROM flows").fetchone()[0] if has_flows else None
    sensors = sorted(set().union(*(w.sensors_seen for w in info.values())))
    if a.sensor:
        sensors = [s for s in sensors if s in set(a.sensor)]

    pngs = {}
    if over:
        pngs["over"] = plot_over_time(over, a.out)
    if top:
        pngs["top"] = plot_bars([r["scanner"] for r in top], [r["probes"] for r in top],
                                "Top scanners", "probes", a.out, "top_scanners.png", "#b03a2e")
    if ports and has_flows:
        pngs["ports"] = plot_bars([f"{r['port']}/{r['proto']}" for r in ports],
                                  [r["probes"] for r in ports], "Ports and services probed",
                                  "probes by detected scanners", a.out, "ports_probed.png", "#2e86c1")
    elif ports:
        pngs["ports"] = plot_bars([f"{r['port']}/{r['proto']}" for r in ports],
                                  [r["scanners"] for r in ports],
                                  "Ports and services probed (from the detections: no flows table)",
                                  "detected scanners that probed it", a.out, "ports_probed.png", "#2e86c1")
    if doors:
        # Which services are exposed: per port, the targets that answered.
        per = {}
        for r in doors:
            key = f"{r['port']}/{r['proto']}" if r["port"] is not None else r["proto"]
            per.setdefault(key, set()).add(r["target"])
        items = sorted(per.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:25]
        pngs["doors"] = plot_bars([k for k, _ in items], [len(v) for _, v in items],
                                  "Open doors: probed services that answered",
                                  "targets that answered a scanner", a.out, "open_doors.png", "#1e8449")
    if camp:
        pngs["camp"] = plot_campaign(camp, a.out)

    n_scanners = con.execute("SELECT count(DISTINCT scanner) FROM detections").fetchone()[0]
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    flows_text = f"{n_flows} flows" if has_flows else "no flows table (written with --no-flows)"
    scope = []
    if a.since:
        scope.append(f"since {a.since:%Y-%m-%d %H:%M:%S} UTC")
    if a.until:
        scope.append(f"until {a.until:%Y-%m-%d %H:%M:%S} UTC")
    if a.sensor:
        scope.append("sensors " + ", ".join(a.sensor))
    read = "; ".join(walk_text(n, w) for n, w in info.items())
    sec = []
    sec.append(f"<p>{n_dets} scan records from {n_scanners} scanners, {flows_text}, "
               f"sensors: {', '.join(map(html.escape, sensors))}. "
               f"{'Records that began ' + html.escape(', '.join(scope)) + '. ' if scope else ''}"
               f"Made {when} from {', '.join(map(html.escape, a.dirs))}.</p>")
    sec.append(f"<p class=small>Read: {html.escape(read)}.</p>")
    odd = [p for w in info.values() for p in w.odd]
    if odd:
        sec.append(f"<p><strong>{len(odd)} names in the tree are neither a partition nor a part and "
                   f"were not read:</strong> {html.escape(', '.join(odd[:20]))}</p>")
    sec.append("<h2>Open doors</h2><p>Services that answered a scanner: check these first. "
               "From the detections' own <code>open</code> lists"
               f"{' and the campaigns table' if has_camp else ''}.</p>")
    sec.append(img(pngs["doors"]) if "doors" in pngs else "")
    sec.append(table(doors, ["scanner", "target", "port", "proto", "sensor", "records", "first_seen",
                             "source"]))
    sec.append("<h2>Scans over time</h2>" + (img(pngs["over"]) if "over" in pngs else "<p><em>none</em></p>"))
    sec.append("<h2>Top scanners</h2>" + (img(pngs["top"]) if "top" in pngs else ""))
    sec.append(table(top, ["scanner", "scans", "probes", "answered", "max_targets", "max_ports",
                           "first_seen", "last_seen", "sensors"]))
    sec.append("<h2>Ports and services probed</h2>" + (img(pngs["ports"]) if "ports" in pngs else ""))
    if has_flows:
        sec.append(table(ports, ["port", "proto", "probes", "scanners", "targets"]))
    else:
        sec.append("<p>No flows table: the ports are the detections' <code>ports</code> lists "
                   "(scanners and scan records per port, not probes).</p>")
        sec.append(table(ports, ["port", "proto", "scanners", "records"]))
    sec.append("<h2>Campaign: scanners seen by more than one sensor</h2>")
    sec.append(img(pngs["camp"]) if "camp" in pngs else
               "<p><em>no scanner was seen by more than one sensor</em></p>")
    sec.append(table(camp, ["scanner", "sensor", "first_seen", "last_seen", "scans", "probes"]))
    sec.append("<h2>Campaigns across sensors (scanwatch correlate)</h2>")
    if has_camp:
        sec.append("<p>Scanners whose contacts over all sensors make a scan; "
                   "<code>below_threshold_everywhere</code>: no sensor flagged them alone.</p>")
        sec.append(table(campaigns, ["campaign", "scanner", "kind", "proto", "technique", "sensors",
                                     "probes", "targets", "below_threshold_everywhere", "first_seen",
                                     "last_seen"]))
    else:
        sec.append("<p><strong>no campaigns table</strong>: none of the folders has a "
                   "<code>campaigns/</code> table (<code>scanwatch correlate DIR… -o OUT</code> "
                   "writes one; give OUT to report.py too).</p>")
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>scanwatch report</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;font-size:13px;margin:1em 0}}td,th{{border:1px solid #ccc;padding:3px 8px}}
th{{background:#eee}}img{{max-width:100%}}.small{{font-size:12px;color:#555}}</style></head>
<body><h1>scanwatch report</h1>{''.join(sec)}</body></html>
"""
    overview(pngs, os.path.join(a.out, "overview.png"))
    path = os.path.join(a.out, "report.html")
    with open(path, "w") as f:
        f.write(page)
    print(f"report.py: {path} ({len(pngs)} plots); {n_dets} scan records, {flows_text}; "
          f"{'campaigns table: ' + str(len(campaigns)) + ' rows' if has_camp else 'no campaigns table'}; "
          f"{read}")


if __name__ == "__main__":
    main()
