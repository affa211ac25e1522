#!/usr/bin/env bash
# Installs what scanwatch needs on Debian 12 (as root): libpcap for capture,
# jq, tcpdump, iproute2, nmap and tcpreplay for the live tests, editcap/mergecap
# (wireshark-common) to split and merge captures in the merge tests, Python with
# pyarrow/dpkt/pytest for the output tests; for the package test
# (tests/test_package.py) what the .deb depends on (adduser, libcap2-bin for
# setcap; libpcap0.8 comes with libpcap-dev), systemd for
# `systemd-analyze verify` (not started: only its tools are used), binutils
# for strip, logrotate to check the snippet.
# Idempotent: does nothing that is already there.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
need=()
for p in libpcap-dev jq tcpdump iproute2 nmap tcpreplay wireshark-common python3 python3-venv gzip \
         adduser libcap2-bin systemd binutils logrotate; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
# Java for the Spark SQL check of scripts/sql (PySpark comes from PyPI).
command -v java >/dev/null 2>&1 || need+=(default-jre-headless)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "scanwatch needs Rust >= 1.88 (cargo); install it with rustup (https://rustup.rs) and run again" >&2
  exit 1
fi
