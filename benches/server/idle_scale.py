#!/usr/bin/env python3
"""Memory per idle stream at several stream counts (issue #16, item 3).

The harness's `idle-10k` holds 10,000 streams; this holds each count given
(default 10,000 and 18,000: one process here may open at most 20,000
files) with the harness's own load client, the way its driver does:
fresh server pinned to CPU 0, the driver's warm-up, then the client (CPU 1)
opens the `/idle` streams over 8 loopback source addresses, and the
server's RSS is read half-way through the hold. It also reads the kernel's
side: the slab memory (`/proc/meminfo` `Slab`) and the TCP buffer pages
(`/proc/net/sockstat` `TCP ... mem`), whose growth counts both ends of
every loopback connection.

    cargo build --release --manifest-path benches/server/Cargo.toml
    cp -r ../shared/bench /tmp/bench && (cd /tmp/bench && ./run.sh --help >/dev/null)
    python3 benches/server/idle_scale.py --bench /tmp/bench \\
        --server "axum-sse=benches/server/target/release/bench_server --port {port}" \\
        --server "axum-builtin=/tmp/bench/target/release/axum-builtin --port {port}" \\
        --counts 10000,18000 --rounds 3

Loopback only; every run is bounded by the client's `--timeout` and the
server is stopped by its PID.
"""

import argparse
import json
import os
import resource
import shlex
import signal
import socket
import statistics
import subprocess
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def slab_kib():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("Slab:"):
                return int(line.split()[1])
    raise RuntimeError("no Slab")


def tcp_mem_pages():
    with open("/proc/net/sockstat") as f:
        for line in f:
            if line.startswith("TCP:"):
                fields = line.split()
                return int(fields[fields.index("mem") + 1])
    raise RuntimeError("no TCP line")


def healthy(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def measure(load, template, port, count, hold):
    cmd = ["taskset", "-c", "0"] + shlex.split(template.format(port=port))
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 20
        while not healthy(port):
            if time.time() > deadline or server.poll() is not None:
                raise RuntimeError(f"server did not start: {template}")
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
        subprocess.run(["taskset", "-c", "1", load, "throughput", "--url", url + "/stream?n=2000&size=16",
                        "--conns", "2", "--events", "2000", "--timeout", "15"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)
        before = (rss_kib(server.pid), slab_kib(), tcp_mem_pages())
        client = subprocess.Popen(["taskset", "-c", "1", load, "idle", "--url", url, "--conns", str(count),
                                   "--hold", str(hold), "--src-ips", "8", "--timeout", "120"],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        held = None
        result = None
        for line in client.stdout:
            if line.startswith("READY"):
                time.sleep(hold / 2)
                held = (rss_kib(server.pid), slab_kib(), tcp_mem_pages())
            elif line.startswith("{"):
                result = line.strip()
        client.wait()
        if held is None or result is None or json.loads(result).get("connected") != count:
            raise RuntimeError(f"client did not hold {count} streams: {result}")
        return {
            "rss_kib": (held[0] - before[0]) / count,
            # Both ends of each loopback connection are in the kernel here.
            "slab_kib_per_socket": (held[1] - before[1]) / (2 * count),
            "tcp_buf_pages": held[2] - before[2],
        }
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", required=True, help="a built copy of the harness (for target/release/load)")
    ap.add_argument("--server", action="append", required=True, help="NAME=command template with {port}")
    ap.add_argument("--counts", default="10000,18000")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--hold", type=float, default=3.0)
    ap.add_argument("--port", type=int, default=18300)
    opt = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    load = os.path.join(opt.bench, "target", "release", "load")
    servers = [s.split("=", 1) for s in opt.server]
    counts = [int(c) for c in opt.counts.split(",")]
    results = {}
    for r in range(opt.rounds):
        for count in counts:
            for name, template in servers:
                m = measure(load, template, opt.port, count, opt.hold)
                results.setdefault((name, count), []).append(m)
                print(f"round {r + 1} {name} {count}: {m['rss_kib']:.2f} KiB RSS/stream, "
                      f"slab {m['slab_kib_per_socket']:.2f} KiB/socket, TCP buffer pages {m['tcp_buf_pages']}",
                      flush=True)
    print()
    print("| server | streams | RSS KiB / stream | kernel slab KiB / socket | TCP buffer pages held |")
    print("|---|---|---|---|---|")
    for (name, count), ms in results.items():
        def cell(key, fmt):
            values = [m[key] for m in ms]
            return f"{fmt.format(statistics.median(values))} [{fmt.format(min(values))}–{fmt.format(max(values))}]"
        print(f"| {name} | {count:,} | {cell('rss_kib', '{:.2f}')} | {cell('slab_kib_per_socket', '{:.2f}')} "
              f"| {cell('tcp_buf_pages', '{:.0f}')} |")


if __name__ == "__main__":
    main()
