"""DuckDB views over scanwatch output trees, without loading them.

    import swviews
    con = duckdb.connect()
    info = swviews.make_views(con, ["OUT1", "OUT2"], since=..., until=..., sensors=["east"])

Every folder's `flows`, `detections` and (from `scanwatch correlate`)
`campaigns` tables become the views `flows`, `detections`, `campaigns`, Arrow
IPC and Parquet alike, each with a text `sensor` column: the `sensor=` level
of the tree, or `default` for a tree written without `--sensor`. That is the
one contract the SQL files of scripts/sql/ rely on.

Filters prune before anything is opened: the tree is walked once
(`TABLE/[sensor=NAME/]date=YYYY-MM-DD/hour=HH|all/part-*`), and only the
files of the partitions that can hold a wanted row are handed to DuckDB;
the rest are never opened. The time filter is on the time the partition is
keyed on, which is when a record began: `ts` for flows, `ts_first` for
detections (a scan that began before `since` is not in, even if it went on
after), `first_seen` for campaigns (one flat folder, filtered by row).
`since` is inclusive, `until` exclusive.

Parquet is read by DuckDB's own `read_parquet`; Arrow IPC files through a
`pyarrow.dataset` DuckDB scans lazily (batch by batch, only the columns and
rows a query asks for). Names in the tree that are not a partition or a
part (`part-*.arrow`, `part-*.parquet`) are counted and listed in `info`,
never silently passed over; parts being written (`.tmp`) and hidden folders
(compaction's staging) are counted apart.
"""

import datetime as dt
import os
import re

import pyarrow.dataset as ds

HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
TIME_COLUMN = {"flows": "ts", "detections": "ts_first", "campaigns": "first_seen"}
TABLES = ("flows", "detections", "campaigns")
DEFAULT_SENSOR = "default"
_DATE = re.compile(r"^date=(\d{4})-(\d{2})-(\d{2})$")
_HOUR = re.compile(r"^hour=(\d{2}|all)$")
_FORMATS = {".arrow": "ipc", ".parquet": "parquet"}


def parse_when(text):
    """A UTC time from `YYYY-MM-DD`, `YYYY-MM-DDTHH[:MM[:SS]]` (or a space
    for T), with an optional `Z` or `+00:00`; a time without zone is UTC."""
    t = text.strip().replace(" ", "T")
    if t.endswith("Z"):
        t = t[:-1] + "+00:00"
    try:
        when = dt.datetime.fromisoformat(t)
    except ValueError:
        raise ValueError(f"not a time: {text!r} (use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS, UTC)")
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.astimezone(dt.timezone.utc)


class Walk:
    """What one table's walk found over all folders."""

    def __init__(self, table):
        self.table = table
        # (folder root, format, has sensor level, partitioned) -> [file paths]
        self.groups = {}
        self.files_seen = 0
        self.files_kept = 0
        self.partitions_seen = 0
        self.partitions_kept = 0
        self.in_progress = 0
        self.odd = []          # paths that are neither a partition nor a part
        self.sensors_seen = set()
        self.roots = []

    def add(self, root, fmt, sensor_level, partitioned, path):
        self.groups.setdefault((root, fmt, sensor_level, partitioned), []).append(path)
        self.files_kept += 1


def _overlaps(start, length, since, until):
    end = start + length
    return (since is None or end > since) and (until is None or start < until)


def _part_files(walk, folder):
    """(format, path) of the parts directly in `folder`; counts the rest."""
    out = []
    for e in sorted(os.scandir(folder), key=lambda e: e.name):
        if e.name.startswith("."):
            walk.in_progress += 1
            continue
        if e.name.endswith(".tmp"):
            walk.in_progress += 1
            continue
        ext = os.path.splitext(e.name)[1]
        if e.is_file() and ext in _FORMATS:
            walk.files_seen += 1
            out.append((_FORMATS[ext], e.path))
        else:
            walk.odd.append(e.path)
    return out


def walk_table(dirs, table, since=None, until=None, sensors=None):
    """The files of `table` under every folder of `dirs` whose partition can
    hold a row in [since, until) of one of `sensors` (None: any)."""
    w = Walk(table)
    want = set(sensors) if sensors else None
    for d in dirs:
        root = os.path.join(d, table)
        if not os.path.isdir(root):
            continue
        w.roots.append(root)
        top = sorted(os.scandir(root), key=lambda e: e.name)
        if any(e.is_dir() and e.name.startswith("sensor=") for e in top):
            levels = []
            for e in top:
                if e.is_dir() and e.name.startswith("sensor="):
                    levels.append((e.name[len("sensor="):], e.path))
                elif e.name.startswith(".") or e.name.endswith(".tmp"):
                    w.in_progress += 1
                else:
                    w.odd.append(e.path)
            sensor_level = True
        else:
            levels = [(DEFAULT_SENSOR, root)]
            sensor_level = False
        for sensor, sdir in levels:
            w.sensors_seen.add(sensor)
            keep_sensor = want is None or sensor in want
            flat = []
            for e in sorted(os.scandir(sdir), key=lambda e: e.name):
                m = _DATE.match(e.name) if e.is_dir() else None
                if m is None:
                    if e.is_file() or e.name.startswith(".") or e.name.endswith(".tmp"):
                        flat.append(e)
                    else:
                        w.odd.append(e.path)
                    continue
                try:
                    day = dt.datetime(int(m[1]), int(m[2]), int(m[3]), tzinfo=dt.timezone.utc)
                except ValueError:
                    w.odd.append(e.path)
                    continue
                for h in sorted(os.scandir(e.path), key=lambda e: e.name):
                    hm = _HOUR.match(h.name) if h.is_dir() else None
                    if hm is None:
                        if h.name.startswith(".") or h.name.endswith(".tmp"):
                            w.in_progress += 1
                        else:
                            w.odd.append(h.path)
                        continue
                    if hm[1] == "all":
                        start, length = day, DAY
                    elif int(hm[1]) < 24:
                        start, length = day + int(hm[1]) * HOUR, HOUR
                    else:
                        w.odd.append(h.path)
                        continue
                    w.partitions_seen += 1
                    if not (keep_sensor and _overlaps(start, length, since, until)):
                        # Pruned: counted, never opened.
                        w.files_seen += sum(1 for f in os.scandir(h.path)
                                            if os.path.splitext(f.name)[1] in _FORMATS)
                        continue
                    w.partitions_kept += 1
                    for fmt, path in _part_files(w, h.path):
                        w.add(root, fmt, sensor_level, True, path)
            # Unpartitioned parts (the campaigns table): filtered by row.
            for e in flat:
                if e.name.startswith(".") or e.name.endswith(".tmp"):
                    w.in_progress += 1
                    continue
                ext = os.path.splitext(e.name)[1]
                if ext not in _FORMATS:
                    w.odd.append(e.path)
                    continue
                w.files_seen += 1
                if keep_sensor or not sensor_level:
                    w.add(root, _FORMATS[ext], sensor_level, False, e.path)
    return w


def _sql_str(s):
    return "'" + s.replace("'", "''") + "'"


def _ts_sql(t):
    return f"TIMESTAMPTZ {_sql_str(t.strftime('%Y-%m-%d %H:%M:%S.%f+00:00'))}"


def make_views(con, dirs, since=None, until=None, sensors=None, tables=TABLES):
    """Creates the views `flows`, `detections` and `campaigns` (those found)
    in DuckDB connection `con`. Returns {table: Walk} for the tables found
    (a table with no folder anywhere is absent from it, and has no view)."""
    con.execute("SET TimeZone = 'UTC'")
    info = {}
    for table in tables:
        w = walk_table(dirs, table, since, until, sensors)
        if not w.roots:
            continue
        info[table] = w
        selects = []
        for i, ((root, fmt, sensor_level, partitioned), files) in enumerate(sorted(w.groups.items())):
            src = f"_sw_{table}_{i}"
            if fmt == "parquet":
                lst = ", ".join(_sql_str(f) for f in files)
                hive = "true" if partitioned else "false"
                con.execute(f"CREATE OR REPLACE VIEW {src} AS SELECT * FROM read_parquet([{lst}], "
                            f"hive_partitioning = {hive}, union_by_name = true)")
            else:
                part = "hive" if partitioned else None
                dset = ds.dataset(files, format="ipc", partitioning=part,
                                  partition_base_dir=root if partitioned else None)
                con.register(src, dset)
            cols = [c[0] for c in con.execute(f"SELECT * FROM {src} LIMIT 0").description]
            drop = [c for c in ("date", "hour", "sensor") if c in cols]
            star = f"* EXCLUDE ({', '.join(drop)})" if drop else "*"
            sensor = "CAST(sensor AS VARCHAR)" if "sensor" in cols else _sql_str(DEFAULT_SENSOR)
            selects.append(f"SELECT {star}, {sensor} AS sensor FROM {src}")
        cond = []
        tcol = TIME_COLUMN[table]
        if since is not None:
            cond.append(f"{tcol} >= {_ts_sql(since)}")
        if until is not None:
            cond.append(f"{tcol} < {_ts_sql(until)}")
        if sensors and table != "campaigns":
            cond.append(f"sensor IN ({', '.join(_sql_str(s) for s in sensors)})")
        where = (" WHERE " + " AND ".join(cond)) if cond else ""
        if selects:
            body = " UNION ALL BY NAME ".join(f"({s})" for s in selects)
            con.execute(f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM ({body}){where}")
        else:
            # Every partition pruned: an empty view with the table's columns,
            # from any one file of the table.
            any_file = _first_file(w.roots)
            if any_file is None:
                del info[table]
                continue
            fmt = _FORMATS[os.path.splitext(any_file)[1]]
            if fmt == "parquet":
                con.execute(f"CREATE OR REPLACE VIEW _sw_{table}_empty AS SELECT * FROM "
                            f"read_parquet({_sql_str(any_file)}) LIMIT 0")
            else:
                con.register(f"_sw_{table}_empty", ds.dataset([any_file], format="ipc").schema.empty_table())
            con.execute(f"CREATE OR REPLACE VIEW {table} AS SELECT *, CAST(NULL AS VARCHAR) AS sensor "
                        f"FROM _sw_{table}_empty")
    return info


def _first_file(roots):
    for root in roots:
        for d, _, files in os.walk(root):
            for f in sorted(files):
                if os.path.splitext(f)[1] in _FORMATS:
                    return os.path.join(d, f)
    return None
