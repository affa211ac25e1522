"""The Debian package: built by scripts/package.sh, installed with `dpkg -i`,
checked as installed (files, user, statoverride, capabilities, conffiles,
man pages, completions, `systemd-analyze verify` on the unit), the installed
binary run as the `scanwatch` user (no root: the package's file
capabilities) on a live capture of a bounded nmap scan between two network
namespaces this test creates (no default route), and `dpkg --purge`.

Needs root (dpkg, namespaces); skipped with the reason otherwise, except
under CI=true, where it fails. The package is built from $SCANWATCH when set
(the binary the other tests run, so nothing is compiled here), else with
`scripts/package.sh --profile ci`. Every namespace and the package are
removed whatever happens; every process and wait is bounded in time.
"""

import grp
import json
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INSTALLED = "/usr/bin/scanwatch"
UNIT = "/lib/systemd/system/scanwatch.service"
CONFIG = "/etc/scanwatch/scanwatch.toml"

NET = "10.232.0"
TARGET = f"{NET}.1"
SCANNER = f"{NET}.100"
# CAP_NET_ADMIN is bit 12, CAP_NET_RAW bit 13.
CAPS = (1 << 12) | (1 << 13)


def sh(*args, timeout=60, check=True, **kw):
    return subprocess.run(list(args), check=check, timeout=timeout,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def need_root():
    if os.geteuid() == 0:
        return
    msg = "the package test needs root (dpkg -i, network namespaces)"
    if os.environ.get("CI") == "true":
        pytest.fail(msg + " (CI=true: it must run)")
    pytest.skip(msg)


def is_installed():
    r = sh("dpkg-query", "-W", "-f", "${Status}", "scanwatch", check=False)
    return r.returncode == 0 and "installed" in r.stdout and "not-installed" not in r.stdout


def purge():
    return sh("dpkg", "--purge", "scanwatch", timeout=120, check=False)


@pytest.fixture(scope="module")
def deb():
    need_root()
    for tool in ("dpkg-deb", "strip", "gzip"):
        if shutil.which(tool) is None:
            pytest.fail(f"building the package needs {tool}: run scripts/deps.sh")
    env = dict(os.environ)
    if os.environ.get("SCANWATCH"):
        env["SCANWATCH_BIN"] = os.environ["SCANWATCH"]
    r = sh("bash", os.path.join(ROOT, "scripts", "package.sh"), "--profile", "ci",
           timeout=1800, check=False, env=env)
    assert r.returncode == 0, r.stderr
    path = r.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r".*/scanwatch_\d+\.\d+\.\d+_[a-z0-9]+\.deb", path), path
    return path


@pytest.fixture(scope="module")
def installed(deb):
    if is_installed():
        pytest.fail("a scanwatch package is already installed here: not touching it")
    try:
        r = sh("dpkg", "-i", deb, timeout=120, check=False)
        assert r.returncode == 0, f"dpkg -i failed (dependencies: scripts/deps.sh):\n{r.stdout}{r.stderr}"
        yield deb
    finally:
        if is_installed():
            purge()


def test_installed_files_user_and_capabilities(installed):
    # The version names the commit, and is the version of the binary tested.
    v = sh(INSTALLED, "--version").stdout.strip()
    assert re.fullmatch(r"scanwatch \d+\.\d+\.\d+ \(([0-9a-f]{7,} \d{4}-\d\d-\d\d|[0-9a-f]{7,}|unknown)\)", v), v
    if os.environ.get("SCANWATCH"):
        assert v == sh(os.environ["SCANWATCH"], "--version").stdout.strip()
    assert os.path.basename(installed).startswith(f"scanwatch_{v.split()[1]}_")

    user = pwd.getpwnam("scanwatch")
    assert user.pw_uid < 1000 and user.pw_uid != 0, user   # a system user
    assert user.pw_shell in ("/usr/sbin/nologin", "/bin/false"), user
    assert grp.getgrgid(user.pw_gid).gr_name == "scanwatch"
    st = os.stat("/var/lib/scanwatch")
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (user.pw_uid, 0o750)

    # The binary: stripped, root:scanwatch 0750, capture capabilities.
    st = os.stat(INSTALLED)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, user.pw_gid, 0o750)
    sections = sh("readelf", "-S", "-W", INSTALLED).stdout
    assert ".text" in sections and ".symtab" not in sections and ".debug_" not in sections
    caps = sh("getcap", INSTALLED).stdout
    assert re.search(r"cap_net_admin,cap_net_raw[=+]eip", caps), caps
    assert sh("dpkg-statoverride", "--list", INSTALLED).stdout.split() == \
        ["root", "scanwatch", "750", INSTALLED]
    # Someone outside the group cannot run it at all.
    r = sh("runuser", "-u", "nobody", "--", INSTALLED, "--version", check=False)
    assert r.returncode != 0 and "ermission denied" in r.stderr, r

    status = sh("dpkg-query", "-s", "scanwatch").stdout
    assert re.search(r"^Depends:.*libpcap0\.8", status, re.M), status
    conffiles = {line.split()[0] for line in status.split("Conffiles:\n")[1].splitlines()
                 if line.startswith(" /")}
    assert conffiles == {CONFIG, "/etc/default/scanwatch", "/etc/logrotate.d/scanwatch"}

    # Man pages, from the clap definitions: one per command.
    pages = sorted(os.listdir("/usr/share/man/man1"))
    ours = [p for p in pages if p.startswith("scanwatch")]
    assert "scanwatch.1.gz" in ours and "scanwatch-run.1.gz" in ours, ours
    run_page = sh("zcat", "/usr/share/man/man1/scanwatch-run.1.gz").stdout
    assert run_page.startswith(".ie") or ".TH" in run_page.split("\n", 5)[-1]
    assert re.search(r"^\.TH scanwatch-run 1 ", run_page, re.M), run_page[:300]
    assert "\\-\\-interface" in run_page
    if shutil.which("man"):
        text = sh("man", "-l", "/usr/share/man/man1/scanwatch-run.1.gz",
                  env={**os.environ, "MANWIDTH": "80", "MANPAGER": "cat", "PAGER": "cat"}).stdout
        assert "SYNOPSIS" in text and "--interface" in text, text[:500]

    # Completions: bash loads them and completes the commands.
    r = sh("bash", "-c", "source /usr/share/bash-completion/completions/scanwatch && "
           "COMP_WORDS=(scanwatch ru) COMP_CWORD=1 COMP_LINE='scanwatch ru' COMP_POINT=12 && "
           "_scanwatch scanwatch ru scanwatch && printf '%s\\n' \"${COMPREPLY[@]}\"")
    assert "run" in r.stdout.split(), r
    assert os.path.isfile("/usr/share/zsh/vendor-completions/_scanwatch")
    assert os.path.isfile("/usr/share/fish/vendor_completions.d/scanwatch.fish")

    # logrotate signals the service, not every process named scanwatch.
    with open("/etc/logrotate.d/scanwatch") as f:
        rot = f.read()
    assert "/var/lib/scanwatch/alerts.jsonl" in rot and "systemctl kill -s HUP scanwatch.service" in rot
    assert "copytruncate" not in re.sub(r"#.*", "", rot)
    if shutil.which("logrotate"):
        r = sh("logrotate", "-d", "/etc/logrotate.d/scanwatch", check=False)
        assert r.returncode == 0 and "error" not in r.stderr.lower(), r.stderr


def test_unit_verifies(installed):
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze missing (package systemd): run scripts/deps.sh")
    r = sh("systemd-analyze", "verify", UNIT, check=False)
    # Without systemd as PID 1 (a container) verify still loads the unit
    # from disk; only lines about our unit count, not about the host's.
    ours = [line for line in (r.stdout + r.stderr).splitlines() if "scanwatch" in line]
    assert r.returncode == 0 and not ours, f"rc {r.returncode}\n{r.stdout}{r.stderr}"
    with open(UNIT) as f:
        unit = f.read()
    for line in ("User=scanwatch", "AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN",
                 "CapabilityBoundingSet=CAP_NET_RAW CAP_NET_ADMIN", "NoNewPrivileges=yes",
                 "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
                 "ReadWritePaths=/var/lib/scanwatch", "Restart=on-failure",
                 "EnvironmentFile=-/etc/default/scanwatch",
                 "ExecReload=/bin/kill -HUP $MAINPID"):
        assert re.search(f"^{re.escape(line)}$", unit, re.M), line
    # ExecStart: the config file and the arguments of /etc/default/scanwatch,
    # which point at the folder the unit may write.
    assert re.search(r"^ExecStart=/usr/bin/scanwatch run --config /etc/scanwatch/scanwatch.toml \$SCANWATCH_ARGS$",
                     unit, re.M)
    args = sh("sh", "-c", ". /etc/default/scanwatch && printf %s \"$SCANWATCH_ARGS\"").stdout.split()
    assert args[args.index("-w") + 1] == "/var/lib/scanwatch" and "-i" in args, args


def test_default_config_and_every_documented_key(installed):
    """The installed config is what the service reads; with every key it
    shows uncommented it is still accepted (unknown keys are an error), and
    gives the same detections (the keys show the defaults)."""
    pcap = os.path.join(ROOT, "pcaps", "nmap_syn_block_20hosts_8ports.pcap")
    with open(CONFIG) as f:
        text = f.read()
    key = re.compile(r"^# ((\[\[?[a-z_.]+\]\]?)|([a-z_0-9]+ = .*))$")
    full = "\n".join(m.group(1) if (m := key.match(line)) else line for line in text.splitlines())
    shown = [line for line in full.splitlines() if re.match(r"^[a-z_0-9]+ = ", line)]
    assert len(shown) >= 25, shown
    # A folder the scanwatch user can reach (pytest's tmp_path is root's, 0700).
    tmp = tempfile.mkdtemp(prefix="scanwatch-pkg-config-")
    try:
        shutil.chown(tmp, "scanwatch", "scanwatch")
        uncommented = os.path.join(tmp, "all.toml")
        with open(uncommented, "w") as f:
            f.write(full + "\n")
        runs = {}
        for name, cfg in (("installed", CONFIG), ("every key", uncommented)):
            out = os.path.join(tmp, name.replace(" ", "-"))
            # Not capture: no capability needed, only the scanwatch group.
            r = sh("runuser", "-u", "scanwatch", "--", INSTALLED, "run", "-q", "--config", cfg,
                   "-r", pcap, "-w", out, "--alerts", "-", "--no-flows", check=False)
            assert r.returncode == 0, (name, r.stderr)
            runs[name] = sorted((a["src_ip"], a["alert"]["context"]["scan"]["kind"])
                                for a in map(json.loads, r.stdout.splitlines()))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    assert runs["installed"] and runs["installed"] == runs["every key"], runs


@pytest.fixture
def lab():
    """Namespace A (the sensor's side, veth va) and B (the scanner, veth vb);
    no default route in either."""
    for tool in ("ip", "nmap", "runuser"):
        if shutil.which(tool) is None:
            pytest.fail(f"the package's live test needs {tool}: run scripts/deps.sh")
    tag = f"{os.getpid() % 100000}"
    a, b, va, vb = f"swpa{tag}", f"swpb{tag}", f"vpa{tag}", f"vpb{tag}"
    out = tempfile.mkdtemp(prefix="scanwatch-pkg-")
    try:
        sh("ip", "netns", "add", a)
        sh("ip", "netns", "add", b)
        sh("ip", "link", "add", va, "type", "veth", "peer", "name", vb)
        sh("ip", "link", "set", va, "netns", a)
        sh("ip", "link", "set", vb, "netns", b)
        sh("ip", "-n", a, "addr", "add", f"{TARGET}/24", "dev", va)
        sh("ip", "-n", b, "addr", "add", f"{SCANNER}/24", "dev", vb)
        for ns, dev in ((a, va), (b, vb)):
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        for ns in (a, b):
            assert "default" not in sh("ip", "-n", ns, "route").stdout
        shutil.chown(out, "scanwatch", "scanwatch")
        time.sleep(1.0)   # the link settles (IPv6 DAD, ARP) before the scan
        yield {"a": a, "b": b, "va": va, "vb": vb, "out": out}
    finally:
        for ns in (a, b):
            subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL, timeout=30)
        shutil.rmtree(out, ignore_errors=True)


def proc_status(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def sensor_pid(runuser_pid, timeout=10):
    """runuser forks the command: its child is scanwatch."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with open(f"/proc/{runuser_pid}/task/{runuser_pid}/children") as f:
                kids = f.read().split()
        except FileNotFoundError:
            return None
        for k in kids:
            try:
                if os.readlink(f"/proc/{k}/exe") == INSTALLED:
                    return int(k)
            except OSError:
                pass
        time.sleep(0.05)
    return None


def test_installed_binary_captures_a_scan_as_the_scanwatch_user(installed, lab):
    out = lab["out"]
    # Root only enters the namespace; runuser drops to scanwatch before the
    # binary runs, whose capabilities come from the package's setcap.
    p = subprocess.Popen(
        ["ip", "netns", "exec", lab["a"], "runuser", "-u", "scanwatch", "--",
         INSTALLED, "run", "--config", CONFIG, "-i", lab["va"], "-w", out, "--stats-every", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        pid = sensor_pid(p.pid)
        assert pid is not None, f"no scanwatch under runuser: {p.poll()} {p.stderr.read() if p.poll() is not None else ''}"
        st = proc_status(pid)
        uid = pwd.getpwnam("scanwatch").pw_uid
        assert st["Uid"].split() == [str(uid)] * 4, st["Uid"]
        assert int(st["CapEff"], 16) == CAPS and int(st["CapPrm"], 16) == CAPS, st
        stats = os.path.join(out, "stats.jsonl")
        deadline = time.time() + 10
        while time.time() < deadline and not (os.path.exists(stats) and os.path.getsize(stats) > 0):
            assert p.poll() is None, f"scanwatch exited early: {p.communicate(timeout=10)}"
            time.sleep(0.05)
        assert os.path.getsize(stats) > 0, "scanwatch did not start capturing within 10 s"

        r = sh("ip", "netns", "exec", lab["b"], "nmap", "-n", "-Pn", "-sS", "-p", "1-200",
               "--max-retries", "0", "--host-timeout", "20s", "-S", SCANNER, "-e", lab["vb"],
               TARGET, timeout=60, check=False)
        assert r.returncode == 0, r.stderr

        path = os.path.join(out, "alerts.jsonl")
        seen = []
        deadline = time.time() + 10
        while time.time() < deadline and not seen:
            if os.path.exists(path):
                with open(path) as f:
                    seen = [a for a in map(json.loads, (l for l in f if l.endswith("\n")))
                            if a["event_type"] == "alert" and a["src_ip"] == SCANNER]
            time.sleep(0.05)
        assert seen, f"no alert for {SCANNER}; stderr so far unavailable, out: {os.listdir(out)}"
        scan = seen[0]["alert"]["context"]["scan"]
        assert scan["kind"] == "vertical" and scan["proto"] == "tcp" and scan["phase"] == "start", scan
        assert scan["targets"] == [TARGET] and scan["rejected"] >= 20, scan

        os.kill(pid, signal.SIGTERM)
        stdout, stderr = p.communicate(timeout=15)
        assert p.returncode == 0, stderr
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate(timeout=10)
    # What it wrote belongs to the service user.
    for d, _, files in os.walk(out):
        for name in files:
            assert os.stat(os.path.join(d, name)).st_uid == uid, (d, name)
    with open(os.path.join(out, "stats.jsonl")) as f:
        last = [json.loads(line) for line in f][-1]
    assert last["kind"] == "exit" and last["received"] >= 200, last


def test_purge_removes_everything(installed):
    r = purge()
    assert r.returncode == 0, r.stdout + r.stderr
    assert not is_installed()
    for path in (INSTALLED, UNIT, CONFIG, "/etc/default/scanwatch", "/etc/logrotate.d/scanwatch",
                 "/var/lib/scanwatch", "/usr/share/man/man1/scanwatch.1.gz"):
        assert not os.path.lexists(path), path
    with pytest.raises(KeyError):
        pwd.getpwnam("scanwatch")
    with pytest.raises(KeyError):
        grp.getgrnam("scanwatch")
    assert sh("dpkg-statoverride", "--list", INSTALLED, check=False).returncode != 0
