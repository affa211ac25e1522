"""TAXII 2.1 push against a real server: OASIS's reference server medallion
(memory backend) on loopback, read back with taxii2-client.

a) `scanwatch share --taxii` round-trips every object of a bundle built from
   the project's captures (same ids, same content), in several envelopes
   (a small max_content_length), and a second push doubles nothing;
b) `scanwatch run -i … --taxii` inside a network namespace (medallion on the
   namespace's 127.0.0.1): the indicator is on the server within 5 s of the
   start alert;
c) the server is away during the scan and comes back: the objects arrive;
   and a run stopped (SIGTERM) with a non-empty spool hands it to the next
   run, which delivers it.

The live tests need root, iproute2 and nmap (scripts/deps.sh); medallion and
taxii2-client come from scripts/pyenv.sh. Every wait is bounded; every
server, scanwatch and namespace is removed whatever happens.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("SCANWATCH", os.path.join(ROOT, "target", "release", "scanwatch"))
PY = sys.executable
PCAPS = os.path.join(ROOT, "pcaps")
COLLECTION = "91a7b528-80eb-42ed-a74d-c6fbd5a26116"
USER, PASSWORD = "sensor1", "s3cret-Pass"

# 198.51.100.0/24 (TEST-NET-2): public-looking, so shareable as indicators.
NET = "198.51.100"
TARGETS = [f"{NET}.{i}" for i in range(1, 11)]
SCANNER = f"{NET}.200"
SWEEPER = f"{NET}.201"


def run(*args, ok=True, timeout=120, **kw):
    p = subprocess.run(list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=timeout, **kw)
    if ok and p.returncode != 0:
        pytest.fail(f"{args} exited {p.returncode}: {p.stderr[-3000:]}")
    return p


def ns_prefix(ns):
    return ["ip", "netns", "exec", ns] if ns else []


class Medallion:
    """medallion on 127.0.0.1:port (in namespace `ns` if given), memory
    backend: one API root `api1` with one writable collection."""

    def __init__(self, workdir, port, ns=None, max_len=9765625):
        self.ns, self.port = ns, port
        self.url = f"http://127.0.0.1:{port}/api1/"
        self.data = os.path.join(workdir, f"medallion-data-{port}.json")
        self.conf = os.path.join(workdir, f"medallion-{port}.json")
        with open(self.data, "w") as f:
            json.dump({
                "/discovery": {
                    "title": "scanwatch test", "description": "", "contact": "",
                    "default": self.url, "api_roots": [self.url]},
                "api1": {
                    "information": {
                        "title": "api1", "description": "",
                        "versions": ["application/taxii+json;version=2.1"],
                        "max_content_length": max_len},
                    "status": [],
                    "collections": [{
                        "id": COLLECTION, "title": "scans", "description": "",
                        "can_read": True, "can_write": True,
                        "media_types": ["application/stix+json;version=2.1"],
                        "objects": [], "manifest": []}]}}, f)
        with open(self.conf, "w") as f:
            json.dump({"backend": {"module": "medallion.backends.memory_backend",
                                   "module_class": "MemoryBackend", "filename": self.data},
                       "users": {USER: PASSWORD},
                       "taxii": {"max_page_size": 100}}, f)
        self.proc = None

    def start(self):
        self.log = self.conf + ".log"
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(
                ns_prefix(self.ns) + [PY, "-c", "from medallion.scripts.run import main; main()",
                                      "--host", "127.0.0.1", "--port", str(self.port), self.conf],
                stdout=subprocess.DEVNULL, stderr=log, text=True)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"medallion exited: {open(self.log).read()[-2000:]}")
            p = run(*ns_prefix(self.ns), PY, "-c",
                    "import socket,sys; s=socket.socket(); s.settimeout(1);"
                    f"sys.exit(s.connect_ex(('127.0.0.1', {self.port})))", ok=False, timeout=10)
            if p.returncode == 0:
                return self
            time.sleep(0.1)
        self.stop()
        pytest.fail("medallion did not listen within 20 s")

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None


READER = r"""
import json, sys, time
from taxii2client.v21 import Collection, as_pages
url, user, pw, mode = sys.argv[1:5]
col = Collection(url + "collections/%s/" % sys.argv[5], user=user, password=pw)
# medallion 3.0.0 answers 500 to any GET of objects whose result holds an
# object with its own `version` property (an extension-definition, which STIX
# requires to have one): it takes that for the object's version. So objects
# are read by type, extension definitions through the manifest only.
TYPES = ["marking-definition", "identity", "indicator", "sighting"]
if mode == "all":  # the newest version of every object
    out = []
    for t in TYPES:
        for env in as_pages(col.get_objects, per_request=50, type=t):
            out.extend(env.get("objects", []))
    print(json.dumps(out))
elif mode == "manifest":  # one record per (id, version) the server holds, all versions
    out = []
    for env in as_pages(col.get_manifest, per_request=50, version="all"):
        out.extend(env.get("objects", []))
    print(json.dumps(out))
else:  # poll: print (time, id) of the first indicator seen, or give up at the deadline
    deadline = time.time() + float(mode)
    seen = set()
    while time.time() < deadline and not seen:
        try:
            env = col.get_objects(type="indicator")
            for o in env.get("objects", []):
                if o["id"] not in seen:
                    seen.add(o["id"])
                    print(json.dumps({"t": time.time(), "id": o["id"], "type": o["type"],
                                      "pattern": o.get("pattern", "")}), flush=True)
        except Exception as e:  # the server is away: try again
            pass
        time.sleep(0.1)
"""


def read_all(server, mode="all"):
    p = run(*ns_prefix(server.ns), PY, "-c", READER, server.url, USER, PASSWORD, mode,
            COLLECTION, timeout=60)
    return json.loads(p.stdout)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def work():
    d = tempfile.mkdtemp(prefix="scanwatch-taxii-")
    os.chmod(d, 0o755)
    pw = os.path.join(d, "password")
    with open(pw, "w") as f:
        f.write(PASSWORD + "\n")
    os.chmod(pw, 0o600)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def taxii_args(server, work):
    return ["--taxii", server.url, "--collection", COLLECTION,
            "--taxii-user", USER, "--password-file", os.path.join(work, "password")]


def test_share_round_trips_every_object_and_doubles_nothing(work):
    tree = os.path.join(work, "tree")
    for sensor, caps in (("east", ["nmap_syn_vertical_1-1000.pcap", "hping3_udp_horizontal_p161.pcap"]),
                         ("west", ["nmap_syn_block_20hosts_8ports.pcap", "zmap_syn_horizontal_p80.pcap"])):
        reads = [a for c in caps for a in ("-r", os.path.join(PCAPS, c))]
        run(BIN, "run", "-q", *reads, "-w", tree, "--sensor", sensor)
    # A small max_content_length: the bundle goes in several envelopes.
    server = Medallion(work, free_port(), max_len=6000).start()
    try:
        bundle_path = os.path.join(work, "bundle.json")
        p = run(BIN, "share", tree, "-o", bundle_path, "--taxii", server.url,
                "--collection", COLLECTION, "--user", USER,
                "--password-file", os.path.join(work, "password"))
        with open(bundle_path) as f:
            bundle = json.load(f)
        sent = {o["id"]: o for o in bundle["objects"]}
        assert sum(o["type"] == "indicator" for o in sent.values()) >= 2
        assert sum(o["type"] == "sighting" for o in sent.values()) >= 3
        assert f"{len(sent)} of {len(sent)} objects delivered" in p.stderr, p.stderr
        assert len(json.dumps(bundle)) > 2 * 6000, "the test must need several envelopes"
        got = read_all(server)
        ext = sorted(i for i, o in sent.items() if o["type"] == "extension-definition")
        assert len(ext) == 1, "the scan-facts extension definition"
        assert sorted([o["id"] for o in got] + ext) == sorted(sent), "every object once, no other"
        for o in got:
            assert o == sent[o["id"]], f"{o['id']} differs on the server"
        manifest = read_all(server, "manifest")
        assert sorted(m["id"] for m in manifest) == sorted(sent)
        # The same push again: every object is already there (medallion
        # refuses a version it holds; scanwatch checks it holds it), exit 0,
        # and the server still holds one version of each.
        p = run(BIN, "share", tree, *taxii_args(server, work))
        assert f"{len(sent)} of {len(sent)} objects delivered" in p.stderr, p.stderr
        assert read_all(server, "manifest") == manifest, "one version of each, no more"
        assert read_all(server) == got
        # A wrong password: a clear one-line error and a non-zero exit.
        bad = os.path.join(work, "bad")
        with open(bad, "w") as f:
            f.write("wrong\n")
        os.chmod(bad, 0o600)
        p = run(BIN, "share", tree, "--taxii", server.url, "--collection", COLLECTION,
                "--user", USER, "--password-file", bad, ok=False)
        assert p.returncode != 0
        assert "HTTP 401" in p.stderr and "nothing was acknowledged" in p.stderr, p.stderr
        # An unknown collection: the same, with 404.
        p = run(BIN, "share", tree, "--taxii", server.url, "--collection", "no-such",
                "--user", USER, "--password-file", os.path.join(work, "password"), ok=False)
        assert p.returncode != 0 and "HTTP 404" in p.stderr, p.stderr
        # The password is never taken from the command line.
        p = run(BIN, "share", tree, "--taxii", server.url, "--collection", COLLECTION,
                "--user", USER, "--password", PASSWORD, ok=False)
        assert p.returncode != 0
    finally:
        server.stop()
    # The server is not there at all: non-zero, one line that says so.
    p = run(BIN, "share", tree, *taxii_args(server, work), ok=False)
    assert p.returncode != 0 and "TAXII push to" in p.stderr, p.stderr


# --- live ----------------------------------------------------------------

def sh(*args, timeout=30, check=True):
    return subprocess.run(list(args), check=check, timeout=timeout,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def lab(work):
    """Namespace A (sensor, targets, medallion on its loopback) and B
    (scanners), joined by a veth pair; no default route anywhere."""
    if os.geteuid() != 0:
        pytest.fail("the live TAXII tests need root (network namespaces, raw capture)")
    for tool in ("ip", "nmap"):
        if shutil.which(tool) is None:
            pytest.fail(f"the live TAXII tests need {tool}: run scripts/deps.sh")
    tag = f"{os.getpid() % 100000}"
    a, b, va, vb = f"stxa{tag}", f"stxb{tag}", f"txa{tag}", f"txb{tag}"
    procs = []
    try:
        sh("ip", "netns", "add", a)
        sh("ip", "netns", "add", b)
        sh("ip", "link", "add", va, "type", "veth", "peer", "name", vb)
        sh("ip", "link", "set", va, "netns", a)
        sh("ip", "link", "set", vb, "netns", b)
        for t in TARGETS:
            sh("ip", "-n", a, "addr", "add", f"{t}/24", "dev", va)
        sh("ip", "-n", b, "addr", "add", f"{SCANNER}/24", "dev", vb)
        sh("ip", "-n", b, "addr", "add", f"{SWEEPER}/24", "dev", vb)
        for ns, dev in ((a, va), (b, vb)):
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        time.sleep(1.0)
        out = os.path.join(work, "out")
        os.makedirs(out)
        yield {"a": a, "b": b, "va": va, "vb": vb, "out": out, "work": work, "procs": procs}
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
        for ns in (a, b):
            subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL, timeout=30)


def start_sensor(lab, server, *extra):
    stats = os.path.join(lab["out"], "stats.jsonl")
    before = os.path.getsize(stats) if os.path.exists(stats) else 0
    p = subprocess.Popen(
        ["ip", "netns", "exec", lab["a"], BIN, "run", "-q", "-i", lab["va"], "-w", lab["out"],
         "--stats-every", "1", "--home-net", f"{NET}.0/25", *taxii_args(server, lab["work"]),
         *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lab["procs"].append(p)
    deadline = time.time() + 10
    while time.time() < deadline:
        if os.path.exists(stats) and os.path.getsize(stats) > before:
            return p
        if p.poll() is not None:
            pytest.fail(f"scanwatch exited early: {p.stderr.read()}")
        time.sleep(0.05)
    pytest.fail("scanwatch did not start capturing within 10 s")


def nmap(lab, *args, src=SCANNER):
    return sh("ip", "netns", "exec", lab["b"], "nmap", "-n", "-Pn", "-sS", "--max-retries", "1",
              "--host-timeout", "30s", "-S", src, "-e", lab["vb"], *args, timeout=90)


def start_alert(out, scanner, deadline):
    path = os.path.join(out, "alerts.jsonl")
    while time.time() < deadline:
        if os.path.exists(path):
            with open(path) as f:
                for line in f:
                    if not line.endswith("\n"):
                        continue
                    a = json.loads(line)
                    if a.get("src_ip") == scanner and "start" in json.dumps(a.get("alert", {})):
                        return a
        time.sleep(0.1)
    pytest.fail(f"no start alert for {scanner} in {path}")


def alert_time(a):
    # EVE timestamps: 2026-12-01T03:44:06.123456+0000 (packet time, which on a
    # live capture is the kernel's receive time).
    from datetime import datetime
    return datetime.strptime(a["timestamp"], "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def poller(lab, server, secs):
    p = subprocess.Popen(ns_prefix(server.ns) + [PY, "-c", READER, server.url, USER, PASSWORD,
                                                 str(secs), COLLECTION],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lab["procs"].append(p)
    return p


def first_seen(poll, want, timeout):
    """(time, line) of the first poll line for which want(line) holds."""
    out, _ = poll.communicate(timeout=timeout)
    for line in out.splitlines():
        o = json.loads(line)
        if want(o):
            return o["t"], o
    return None, None


def stop(p, timeout=30):
    p.send_signal(signal.SIGTERM)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate(timeout=10)
        pytest.fail(f"scanwatch did not exit within {timeout} s of SIGTERM")
    return p.returncode, out, err


def is_indicator_of(ip):
    return lambda o: o["type"] == "indicator" and f"'{ip}'" in o["pattern"]


def test_live_indicator_on_the_server_within_5_s_of_the_start_alert(lab):
    server = Medallion(lab["work"], 5000, ns=lab["a"]).start()
    try:
        sensor = start_sensor(lab, server)
        poll = poller(lab, server, 25)
        nmap(lab, "-p", "1-100", TARGETS[0])
        a = start_alert(lab["out"], SCANNER, time.time() + 15)
        t_seen, o = first_seen(poll, is_indicator_of(SCANNER), 40)
        assert t_seen is not None, "the scanner's indicator never reached the server"
        latency = t_seen - alert_time(a)
        print(f"\nTAXII latency: indicator on the server {latency:.2f} s after the start alert")
        with open(os.path.join(ROOT, "target", "taxii-latency.json"), "w") as f:
            json.dump({"latency_s": latency}, f)
        assert latency < 5.0, f"indicator on the server {latency:.2f} s after the alert"
        # The same scanner goes on (the same scan record): at the end of the
        # run its sighting and indicator get a new version.
        nmap(lab, "-p", "101-400", TARGETS[0])
        time.sleep(1)
        rc, _, err = stop(sensor)
        assert rc == 0, err
        assert "still queued" not in err or " 0 still queued" in err, err
        objs = read_all(server)
        ids = {o["id"] for o in objs}
        ind = [o for o in objs if is_indicator_of(SCANNER)(o)]
        sig = [o for o in objs if o["type"] == "sighting" and o["sighting_of_ref"] == ind[0]["id"]]
        assert sig, "the sighting was pushed too"
        assert all(r in ids for r in sig[0]["where_sighted_refs"]), "its sensor identity too"
        # The scan grew after its start: the sighting has a start version and
        # later ones, each with a later `modified`; the newest is served.
        versions = sorted(m["version"] for m in read_all(server, "manifest")
                          if m["id"] == sig[0]["id"])
        phases = [json.loads(l)["alert"]["context"]["scan"]["phase"]
                  for l in open(os.path.join(lab["out"], "alerts.jsonl"))]
        assert len(versions) >= 2, (versions, phases, err)
        assert len(set(versions)) == len(versions)
        assert sig[0]["modified"] == versions[-1] and sig[0]["created"] <= versions[0]
        ext = next(iter(v for k, v in sig[0]["extensions"].items()))
        assert ext["port_count"] >= 400, ext
        # What went to the server is strict STIX 2.1.
        bundle = os.path.join(lab["work"], "pushed.json")
        with open(bundle, "w") as f:
            json.dump({"type": "bundle", "id": "bundle--6f6c1d2a-1e44-4a3e-9b7a-0d6f4b3c2a10",
                       "objects": objs}, f)
        v = run(os.path.join(os.path.dirname(PY), "stix2_validator"), "--strict", bundle, ok=False)
        assert v.returncode == 0, v.stdout + v.stderr
        stats = [json.loads(l) for l in open(os.path.join(lab["out"], "stats.jsonl"))]
        last = stats[-1]["taxii"]
        assert last["pushed"] >= 4 and last["queued"] == 0 and last["failed"] == 0, last
    finally:
        server.stop()


def test_live_server_away_then_back_and_the_spool_survives_a_restart(lab):
    server = Medallion(lab["work"], 5001, ns=lab["a"])
    spool = os.path.join(lab["work"], "spool")
    try:
        # 1. The server is away during the scan; it comes back after.
        sensor = start_sensor(lab, server, "--taxii-spool", spool)
        nmap(lab, "-p", "1-300", TARGETS[1])
        start_alert(lab["out"], SCANNER, time.time() + 15)
        time.sleep(2)
        journal = os.path.join(spool, "journal.jsonl")
        assert os.path.getsize(journal) > 0, "queued on disk while the server is away"
        server.start()
        back = time.time()
        poll = poller(lab, server, 45)
        t_seen, _ = first_seen(poll, is_indicator_of(SCANNER), 60)
        assert t_seen is not None, "the queued indicator never arrived after the server came back"
        print(f"\nTAXII: queued indicator delivered {t_seen - back:.1f} s after the server came back")
        # 2. The server goes away again; a new scanner is queued; scanwatch
        #    is stopped with the spool not empty.
        server.stop()
        nmap(lab, "-p", "1-300", TARGETS[2], src=SWEEPER)
        start_alert(lab["out"], SWEEPER, time.time() + 15)
        time.sleep(1)
        rc, _, err = stop(sensor, timeout=40)
        assert "still queued in" in err and "sent first by the next run" in err, err
        with open(journal) as f:
            queued = [json.loads(l)["queued"] for l in f if l.strip()]
        assert any(is_indicator_of(SWEEPER)(o) for o in queued if o["type"] == "indicator")
        # 3. The server is back (empty: memory backend); the next run, on a
        #    tiny capture with the same spool, sends the spool first.
        server.start()
        p = run("ip", "netns", "exec", lab["a"], BIN, "run", "-q", "-r",
                os.path.join(PCAPS, "nmap_icmp_pingsweep.pcap"), "-w",
                os.path.join(lab["work"], "out2"), "--taxii-spool", spool,
                *taxii_args(server, lab["work"]), timeout=60)
        assert "left in the spool by an earlier run" in p.stderr, p.stderr
        objs = read_all(server)
        sweeper = [o for o in objs if is_indicator_of(SWEEPER)(o)]
        assert len(sweeper) == 1, "the spooled indicator was delivered once"
        spooled = {o["id"]: o for o in queued}
        for o in objs:
            if o["id"] in spooled:
                assert o == spooled[o["id"]]
        with open(journal) as f:
            assert [l for l in f if l.strip()] == [], "the spool is empty once delivered"
    finally:
        server.stop()
