"""`scanwatch share`: STIX 2.1 a partner imports unattended, and pseudonyms
a partner can reproduce.

Every bundle a test here writes goes through `stix2-validator --strict`
and `stix2.parse(..., allow_custom=False)` (`share()` below does both).
The trees come from the project's own captures (pcaps/) and one IPv6 scan
built here with dpkt; the MISP check runs MISP's own STIX 2 import library
(misp-stix), the Crypto-PAn check an independent implementation
(yacryptopan).
"""

import copy
import datetime
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import tempfile

import dpkt
import pytest
import stix2

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("SCANWATCH", os.path.join(ROOT, "target", "release", "scanwatch"))
PYBIN = os.path.join(ROOT, "target", "pyenv", "bin")
P = lambda n: os.path.join(ROOT, "pcaps", n)  # noqa: E731

TLP = {
    "clear": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "green": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "amber": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    "amber+strict": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    "red": "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
KEY_HEX = open(os.path.join(ROOT, "crates", "cli", "testdata", "cryptopan-key.hex")).read().strip()
V6_SCANNER, V6_TARGET = "2001:db8:bad::5", "2001:db8:1::10"


def run(*args, ok=True, **kw):
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=300, **kw)
    if ok:
        assert p.returncode == 0, f"{args}: {p.stderr}"
    return p


def ipv6_scan(path, ports=200, t0=1795600000.0):
    """An IPv6 SYN scan of `ports` ports of one host, each answered by a RST."""
    src, dst = (socket.inet_pton(socket.AF_INET6, a) for a in (V6_SCANNER, V6_TARGET))
    with open(path, "wb") as f:
        w = dpkt.pcap.Writer(f)
        for i in range(ports):
            for fwd in (True, False):
                tcp = dpkt.tcp.TCP(sport=40000 if fwd else i + 1, dport=i + 1 if fwd else 40000,
                                   seq=1000 if fwd else 0, ack=0 if fwd else 1001,
                                   flags=dpkt.tcp.TH_SYN if fwd else dpkt.tcp.TH_RST | dpkt.tcp.TH_ACK,
                                   win=1024)
                ip6 = dpkt.ip6.IP6(src=src if fwd else dst, dst=dst if fwd else src, nxt=6, hlim=64,
                                   data=tcp, plen=len(bytes(tcp)))
                eth = dpkt.ethernet.Ethernet(src=b"\x02" * 6, dst=b"\x04" * 6,
                                             type=dpkt.ethernet.ETH_TYPE_IP6, data=ip6)
                w.writepkt(bytes(eth), ts=t0 + i * 0.01 + (0 if fwd else 0.001))


@pytest.fixture(scope="module")
def trees():
    d = tempfile.mkdtemp(prefix="scanwatch-share-")
    v6 = os.path.join(d, "v6.pcap")
    ipv6_scan(v6)
    t = {"dir": d}
    for name, sensor, files, extra in [
        ("east", "east", ["nmap_syn_vertical_1-1000.pcap", "hping3_udp_horizontal_p161.pcap"], []),
        ("west", "west", ["nmap_syn_block_20hosts_8ports.pcap", "nmap_icmp_pingsweep.pcap", v6], []),
        # The same scanner, later, at the same sensor.
        ("later", "east", ["nmap_fin_vertical_top200.pcap", "nmap_connect_horizontal_p22.pcap"], []),
        ("loop", "lab", ["nmap_connect_vertical_loopback_1-400.pcap"], []),
        ("home", "edge", ["nmap_syn_block_20hosts_8ports.pcap"], ["--home-net", "198.18.0.0/15"]),
    ]:
        t[name] = os.path.join(d, name)
        reads = [a for f in files for a in ("-r", f if os.path.isabs(f) else P(f))]
        run(BIN, "run", "-q", *reads, "-w", t[name], "--sensor", sensor, *extra)
    key = os.path.join(d, "key.hex")
    with open(key, "w") as f:
        f.write(KEY_HEX + "\n")
    os.chmod(key, 0o600)
    t["key"] = key
    yield t
    shutil.rmtree(d, ignore_errors=True)


def share(trees, *args, name="b.json"):
    """Writes a bundle, checks it with stix2-validator --strict and
    stix2.parse without custom content; returns (bundle, text, stderr)."""
    out = os.path.join(trees["dir"], name)
    p = run(BIN, "share", *args, "-o", out)
    v = run(os.path.join(PYBIN, "stix2_validator"), "--strict", out, ok=False)
    assert v.returncode == 0 and "STIX JSON: Valid" in v.stdout, v.stdout + v.stderr
    text = open(out).read()
    stix2.parse(text, allow_custom=False)
    return json.loads(text), text, p.stderr


def of_type(b, t):
    return [o for o in b["objects"] if o["type"] == t]


def scanner_of(ind):
    return ind["pattern"].split("src_ref.value = '")[1].split("'")[0]


def ts(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.mark.parametrize("tlp", [None, *TLP])
def test_every_tlp_level_marks_every_object(trees, tlp):
    b, _, _ = share(trees, trees["east"], trees["west"], *(["--tlp", tlp] if tlp else []))
    want = TLP[tlp or "amber"]                         # amber by default
    marks = of_type(b, "marking-definition")
    assert [m["id"] for m in marks] == [want]
    ext = marks[0]["extensions"]["extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"]
    assert ext == {"extension_type": "property-extension", "tlp_2_0": tlp or "amber"}
    assert marks[0]["name"] == "TLP:" + (tlp or "amber").upper()
    others = [o for o in b["objects"] if o["type"] != "marking-definition"]
    assert len(others) > 5 and all(o["object_marking_refs"] == [want] for o in others)


def test_a_bad_tlp_or_validity_is_refused(trees):
    for bad in (["--tlp", "white"], ["--valid-days", "0"]):
        p = run(BIN, "share", trees["east"], *bad, ok=False)
        assert p.returncode != 0 and ("--tlp" in p.stderr or "--valid-days" in p.stderr), p.stderr


def test_indicators_sightings_validity_and_confidence(trees):
    b, text, _ = share(trees, trees["east"], trees["west"], "--valid-days", "7")
    inds = {scanner_of(o): o for o in of_type(b, "indicator")}
    # 198.18.0.2 (both sensors), 198.18.0.3 (east, UDP), the IPv6 scanner (west).
    assert set(inds) == {"198.18.0.2", "198.18.0.3", V6_SCANNER}
    sights = of_type(b, "sighting")
    sensors = {o["id"]: o["name"] for o in of_type(b, "identity") if o["identity_class"] == "system"}
    where = {(o["sighting_of_ref"], sensors[o["where_sighted_refs"][0]]) for o in sights}
    assert where == {(inds["198.18.0.2"]["id"], "scanwatch sensor operator sensor east"),
                     (inds["198.18.0.2"]["id"], "scanwatch sensor operator sensor west"),
                     (inds["198.18.0.3"]["id"], "scanwatch sensor operator sensor east"),
                     (inds[V6_SCANNER]["id"], "scanwatch sensor operator sensor west")}
    facts_ext = of_type(b, "extension-definition")[0]["id"]
    for ip, ind in inds.items():
        assert ind["indicator_types"] == ["malicious-activity"] and ind["pattern_type"] == "stix"
        assert ind["kill_chain_phases"] == [{"kill_chain_name": "lockheed-martin-cyber-kill-chain",
                                             "phase_name": "reconnaissance"}]
        mine = [s for s in sights if s["sighting_of_ref"] == ind["id"]]
        first = min(s["first_seen"] for s in mine)
        last = max(s["last_seen"] for s in mine)
        # Times from the packets: created/valid_from at the first probe,
        # modified at the last, valid 7 days after the last.
        assert ind["created"] == ind["valid_from"] == first and ind["modified"] == last
        assert ts(ind["valid_until"]) - ts(last) == datetime.timedelta(days=7)
        # The confidence rule of the README, recomputed from the facts.
        facts = [s["extensions"][facts_ext] for s in mine]
        probes, answered = sum(f["probes"] for f in facts), sum(f["answered"] for f in facts)
        want = 40 + 15 * min(len(mine) - 1, 2) + 10 * (probes >= 100) + 10 * (probes >= 1000)
        want += 10 if 2 * answered < probes else (-20 if 10 * answered > 9 * probes else 0)
        assert ind["confidence"] == want, (ip, probes, answered)
        for s in mine:
            assert s["count"] >= 1 and s["first_seen"] <= s["last_seen"]
            assert s["created"] == s["first_seen"] and s["modified"] == s["last_seen"]
    v6 = inds[V6_SCANNER]["pattern"]
    assert v6 == (f"[network-traffic:src_ref.type = 'ipv6-addr' AND network-traffic:src_ref.value = "
                  f"'{V6_SCANNER}' AND network-traffic:protocols[*] = 'tcp']")
    assert "(network-traffic:protocols[*] = 'icmp' OR network-traffic:protocols[*] = 'tcp')" \
        in inds["198.18.0.2"]["pattern"]
    # No custom properties anywhere; the scanned side left out by default.
    assert not any(k.startswith("x_") for o in b["objects"] for k in o)
    assert "198.19." not in text and V6_TARGET not in text


def test_misp_imports_the_scanners_as_ip_src(trees):
    from misp_stix_converter import ExternalSTIX2toMISPParser
    b, text, _ = share(trees, trees["east"], trees["west"])
    p = ExternalSTIX2toMISPParser()
    p.load_stix_bundle(stix2.parse(text, allow_custom=False))
    p.parse_stix_bundle()
    ev = p.misp_event
    assert not any(p.errors.values()), dict(p.errors)
    attrs = [a for a in ev.attributes] + [a for o in ev.objects for a in o.attributes]
    src = {a.value for a in attrs if a.type == "ip-src"}
    assert src == {scanner_of(o) for o in of_type(b, "indicator")}
    assert all(a.to_ids for a in attrs if a.type == "ip-src")
    assert not [a for a in attrs if a.type == "ip-dst"]


def test_same_input_same_bytes_and_a_growing_sighting_gets_a_newer_modified(trees):
    _, one, _ = share(trees, trees["east"], trees["west"], name="one.json")
    _, two, _ = share(trees, trees["east"], trees["west"], name="two.json")
    assert one == two
    # A second capture of the same scanner at the same sensor, later.
    a, _, _ = share(trees, trees["east"], name="a.json")
    g, _, _ = share(trees, trees["east"], trees["later"], name="g.json")
    ida = {o["id"]: o for o in a["objects"]}
    idg = {o["id"]: o for o in g["objects"]}
    assert set(ida) <= set(idg)                        # same ids for the same things
    grown = 0
    for i, old in ida.items():
        new = idg[i]
        if old == new:
            continue
        assert old["type"] in ("indicator", "sighting"), old["type"]
        assert new["created"] == old["created"] and new["modified"] > old["modified"]
        grown += 1
        if old["type"] == "sighting":
            assert new["count"] > old["count"] and new["last_seen"] > old["last_seen"]
    ind = [o for o in g["objects"] if o["type"] == "indicator" and scanner_of(o) == "198.18.0.2"][0]
    assert idg[ind["id"]]["modified"] > ida[ind["id"]]["modified"]
    assert grown == 2                                  # 198.18.0.2's indicator and east sighting
    # Objects that did not change are byte-identical (198.18.0.3, identities, markings).
    assert sum(ida[i] == idg[i] for i in ida) == len(ida) - 2


def test_loopback_and_our_own_scanners_are_not_indicators(trees):
    # A loopback scan is never an indicator, even with --own-scanners.
    b, _, err = share(trees, trees["loop"], "--own-scanners")
    assert of_type(b, "indicator") == [] and of_type(b, "sighting") == []
    assert "1 loopback scanner(s) never shared" in err, err
    # 198.18.0.2 inside --home-net 198.18.0.0/15: ours, left out unless asked.
    b, _, err = share(trees, trees["home"])
    assert of_type(b, "indicator") == [] and "1 scans by our own hosts left out" in err, err
    b, _, _ = share(trees, trees["home"], "--own-scanners")
    assert [scanner_of(o) for o in of_type(b, "indicator")] == ["198.18.0.2"]


def test_pseudonyms_are_crypto_pan_that_partners_reproduce(trees):
    from yacryptopan import CryptoPAn
    cp = CryptoPAn(bytes.fromhex(KEY_HEX))

    def targets(b):
        ext = of_type(b, "extension-definition")[0]["id"]
        return {(s["sighting_of_ref"], s["where_sighted_refs"][0]):
                (s["extensions"][ext].get("targets"), s["extensions"][ext].get("targets_form"))
                for s in of_type(b, "sighting")}

    clear, _, _ = share(trees, trees["east"], trees["west"], "--targets", "clear", name="c.json")
    pseud, text, _ = share(trees, trees["east"], trees["west"], "--targets", "pseudonym",
                           "--key-file", trees["key"], name="p.json")
    tc, tp = targets(clear), targets(pseud)
    assert tc.keys() == tp.keys()
    n6 = 0
    for k, (ct, form) in tc.items():
        pt, pform = tp[k]
        assert (form, pform) == ("clear", "pseudonym") and ct
        assert not set(ct) & set(pt)
        assert set(pt) == {cp.anonymize(t) for t in ct}   # an independent Crypto-PAn agrees
        n6 += sum(ipaddress.ip_address(t).version == 6 for t in pt)
        assert not any(t in text for t in ct)
    assert n6 == 1                                     # the IPv6 target too
    # The same key file as raw bytes gives the same pseudonyms.
    raw = os.path.join(trees["dir"], "key.raw")
    with open(raw, "wb") as f:
        f.write(bytes.fromhex(KEY_HEX))
    os.chmod(raw, 0o600)
    again, _, err = share(trees, trees["east"], trees["west"], "--targets", "pseudonym",
                          "--key-file", raw, name="p2.json")
    assert targets(again) == tp and "warning" not in err


def test_the_key_comes_from_a_file_only(trees):
    p = run(BIN, "share", trees["east"], "--targets", "pseudonym", "--key", "k1", ok=False)
    assert p.returncode != 0 and "--key-file" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    p = run(BIN, "share", trees["east"], "--targets", "pseudonym", ok=False)
    assert p.returncode != 0 and "--key-file" in p.stderr
    # A key without --targets pseudonym would do nothing: said, not ignored.
    p = run(BIN, "share", trees["east"], "--key-file", trees["key"], ok=False)
    assert p.returncode != 0 and "--targets pseudonym" in p.stderr
    bad = os.path.join(trees["dir"], "bad.key")
    for content in (KEY_HEX[:32] + "\n", KEY_HEX + "\n\n", "secret\n"):
        with open(bad, "w") as f:
            f.write(content)
        os.chmod(bad, 0o600)
        p = run(BIN, "share", trees["east"], "--targets", "pseudonym", "--key-file", bad, ok=False)
        assert p.returncode != 0 and len(p.stderr.strip().splitlines()) == 1, p.stderr
        assert "bad.key" in p.stderr, p.stderr
    # Readable by others: works, with a warning.
    loose = os.path.join(trees["dir"], "loose.key")
    with open(loose, "w") as f:
        f.write(KEY_HEX)
    os.chmod(loose, 0o644)
    _, _, err = share(trees, trees["east"], "--targets", "pseudonym", "--key-file", loose, name="l.json")
    assert "can be read by others" in err and "chmod 600" in err, err
