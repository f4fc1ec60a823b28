#!/usr/bin/env python3
"""thongsuot benchmark harness. Loopback only: every target is 127.0.0.0/8.

  python3 bench/bench.py kinds  [--rate 2000] [--seconds 20]   CPU per probe by kind, vs blackbox_exporter
  python3 bench/bench.py scale  [--targets 100000] [--interval 60] [--seconds 60]
  python3 bench/bench.py latency [--skip-defaults]                 outage -> e-mail, ours vs blackbox+Prometheus+Alertmanager
  python3 bench/bench.py all                                      all three, JSON to bench/results/latest.json

Needs: a release build (cargo build --release), nginx, dnsmasq, wrk and
prometheus-blackbox-exporter (Debian packages); run as root for ICMP.
"""
import argparse
import json
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "thongsuot")
TICK = os.sysconf("SC_CLK_TCK")
TOKEN = "bench-token-0123456789abcdef"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def status_bytes(pid, field):
    """A size from /proc/PID/status: VmRSS (resident now) or VmHWM (its peak)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def rss_bytes(pid):
    return status_bytes(pid, "VmRSS")


def http_get(url, timeout=30, data=None, headers=None):
    req = urllib.request.Request(url, data=data, headers=headers or {})
    t = time.monotonic()
    with urllib.request.urlopen(req, timeout=timeout) as r:
        body = r.read()
    return body, time.monotonic() - t


def wait(cond, limit, what):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        try:
            if cond():
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise SystemExit("timed out waiting for " + what)


class Peers:
    """nginx (HTTP and TCP targets, no keep-alive) and dnsmasq, on loopback."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.procs = []
        self.http_port = free_port()
        conf = os.path.join(tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write(
                "worker_processes 1;\npid %s/nginx.pid;\nerror_log %s/nginx-error.log crit;\n"
                "events { worker_connections 16384; }\n"
                "http { access_log off; keepalive_timeout 0;\n"
                "  client_body_temp_path %s; proxy_temp_path %s; fastcgi_temp_path %s; uwsgi_temp_path %s; scgi_temp_path %s;\n"
                "  server { listen 127.0.0.1:%d backlog=8192; location / { return 200 \"ok\\n\"; } } }\n"
                % (tmp, tmp, tmp, tmp, tmp, tmp, tmp, self.http_port)
            )
        self.procs.append(subprocess.Popen(["nginx", "-c", conf, "-g", "daemon off;"], stderr=subprocess.DEVNULL))
        self.dns_port = free_port()
        self.procs.append(
            subprocess.Popen(
                ["dnsmasq", "--no-daemon", "--port=%d" % self.dns_port, "--listen-address=127.0.0.1", "--bind-interfaces",
                 "--no-resolv", "--no-hosts", "--user=root", "--pid-file", "--cache-size=0", "--dns-forward-max=10000",
                 "--address=/thi.example.vn/127.0.0.9"],
                stderr=subprocess.DEVNULL,
            )
        )
        wait(lambda: socket.create_connection(("127.0.0.1", self.http_port), 1) is not None, 10, "nginx")

    def stop(self):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            p.wait(10)


def icmp_host(i):
    i += 1
    return "127.%d.%d.%d" % ((i >> 16) & 255, (i >> 8) & 255, i & 255 or 1)


def target_toml(kind, i, peers):
    head = '[[target]]\nname = "%s-%d"\ngroup = "bench"\nkind = "%s"\n' % (kind, i, kind)
    if kind == "icmp":
        return head + 'host = "%s"\ncount = 1\n' % icmp_host(i)
    if kind == "tcp":
        return head + 'address = "127.0.0.1:%d"\n' % peers.http_port
    if kind == "http":
        return head + 'url = "http://127.0.0.1:%d/t%d"\n' % (peers.http_port, i)
    if kind == "dns":
        return head + 'server = "127.0.0.1:%d"\nquery = "thi.example.vn"\n' % peers.dns_port
    raise ValueError(kind)


def config(kinds, n, interval, peers, port, state, histograms=True):
    timeout = min(5, interval)
    parts = [
        '[daemon]\nlisten = "127.0.0.1:%d"\nstate_dir = "%s"\nvantage = "bench"\napi_token_env = "THONGSUOT_API_TOKEN"\n'
        "max_in_flight = 4096\nper_target_histograms = %s\n" % (port, state, "true" if histograms else "false"),
        '[defaults]\ninterval = "%ds"\ntimeout = "%ds"\nconfirm = 3\nrecover = 2\n' % (interval, timeout),
        '[[group]]\nname = "bench"\n',
    ]
    for i in range(n):
        parts.append(target_toml(kinds[i % len(kinds)], i, peers))
    return "".join(parts)


def parse_metrics(text):
    """Sums of the series the harness needs."""
    probes = {}
    lag = {}
    targets = 0.0
    for line in text.splitlines():
        if line.startswith("thongsuot_probes_total{"):
            m = re.search(r'result="([^"]+)"', line)
            probes[m.group(1)] = probes.get(m.group(1), 0.0) + float(line.rsplit(" ", 1)[1])
        elif line.startswith("thongsuot_scheduler_lag_seconds_bucket{"):
            le = re.search(r'le="([^"]+)"', line).group(1)
            lag[float(le)] = float(line.rsplit(" ", 1)[1])
        elif line.startswith("thongsuot_targets{"):
            targets += float(line.rsplit(" ", 1)[1])
    return probes, lag, targets


def quantile(buckets_a, buckets_b, q):
    """q-quantile (upper bucket bound) of the histogram increase between two scrapes."""
    bounds = sorted(buckets_b)
    total = buckets_b[bounds[-1]] - buckets_a.get(bounds[-1], 0)
    if total <= 0:
        return None
    for b in bounds:
        if buckets_b[b] - buckets_a.get(b, 0) >= q * total:
            return b
    return float("inf")


class Daemon:
    def __init__(self, text, tmp):
        self.port = int(re.search(r"127\.0\.0\.1:(\d+)", text).group(1))
        self.path = os.path.join(tmp, "bench.toml")
        with open(self.path, "w") as f:
            f.write(text)
        self.log = open(os.path.join(tmp, "daemon.log"), "w")
        env = dict(os.environ, THONGSUOT_API_TOKEN=TOKEN, RUST_LOG="warn")
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen([BIN, "run", "--config", self.path], stderr=self.log, env=env)

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def scrape(self):
        body, secs = http_get(self.url("/metrics"), timeout=60)
        return body.decode(), secs, len(body)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def measure(d, interval, seconds, expected):
    """Skips one interval (all targets started), then measures `seconds`. The CPU window
    excludes the two `/metrics` scrapes (their cost is reported on its own): CPU per probe is
    cores used between the scrapes over probes/s."""
    time.sleep(interval + 2)
    t_a = time.monotonic()
    (text, _, _) = d.scrape()
    c_a, cpu_a = time.monotonic(), cpu_seconds(d.proc.pid)
    probes_a, lag_a, _ = parse_metrics(text)
    time.sleep(seconds)
    c_b, cpu_b = time.monotonic(), cpu_seconds(d.proc.pid)
    t_b = time.monotonic()
    (text, render, size) = d.scrape()
    scrape_cpu = cpu_seconds(d.proc.pid) - cpu_b
    probes_b, lag_b, _ = parse_metrics(text)
    dt = t_b - t_a
    done = sum(probes_b.values()) - sum(probes_a.values())
    failed = done - (probes_b.get("success", 0) - probes_a.get("success", 0))
    rate = done / dt
    cores = (cpu_b - cpu_a) / (c_b - c_a)
    return {
        "scheduled_per_s": expected,
        "achieved_per_s": round(rate, 1),
        "cpu_ms_per_probe": round(cores * 1000 / rate, 4) if done else None,
        "cpu_cores": round(cores, 3),
        "false_failures": int(failed),
        "failures_by_reason": {k: int(v - probes_a.get(k, 0)) for k, v in probes_b.items() if k != "success" and v - probes_a.get(k, 0) > 0},
        "lag_p50_s": quantile(lag_a, lag_b, 0.5),
        "lag_p99_s": quantile(lag_a, lag_b, 0.99),
        "lag_buckets": {str(k): int(lag_b[k] - lag_a.get(k, 0)) for k in sorted(lag_b)},
        "rss_mb": round(rss_bytes(d.proc.pid) / 2**20, 1),
        "peak_rss_mb": round(status_bytes(d.proc.pid, "VmHWM") / 2**20, 1),
        "metrics_render_s": round(render, 3),
        "metrics_render_cpu_s": round(scrape_cpu, 3),
        "metrics_bytes": size,
    }


def bench_kind(kind, rate, seconds, peers, tmp, interval=10):
    n = rate * interval
    port = free_port()
    d = Daemon(config([kind], n, interval, peers, port, os.path.join(tmp, "state-" + kind), histograms=False), tmp)
    try:
        wait(lambda: parse_metrics(d.scrape()[0])[2] >= n, 60, "targets scheduled")
        r = measure(d, interval, seconds, rate)
        r.update(kind=kind, targets=n, interval_s=interval)
        return r
    finally:
        d.stop()


BLACKBOX_MODULES = """modules:
  http_2xx: {prober: http, timeout: 5s, http: {preferred_ip_protocol: ip4}}
  tcp_connect: {prober: tcp, timeout: 5s, tcp: {preferred_ip_protocol: ip4}}
  icmp: {prober: icmp, timeout: 5s, icmp: {preferred_ip_protocol: ip4}}
  dns: {prober: dns, timeout: 5s, dns: {query_name: thi.example.vn, preferred_ip_protocol: ip4, transport_protocol: udp}}
"""


PACE_LUA = """-- wrk paced: each connection waits BENCH_DELAY_MS between its requests.
local d = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
function delay() return d end
"""


def wrk(url, seconds, conns, tmp, delay_ms=None):
    """Requests made by wrk (1 thread) in `seconds`; paced when `delay_ms` is given."""
    cmd = ["wrk", "-t1", "-c%d" % conns, "-d%ds" % seconds, url]
    env = dict(os.environ)
    if delay_ms is not None:
        script = os.path.join(tmp, "pace.lua")
        with open(script, "w") as f:
            f.write(PACE_LUA)
        cmd[1:1] = ["-s", script]
        env["BENCH_DELAY_MS"] = "%d" % max(0, round(delay_ms))
    out = subprocess.run(cmd, capture_output=True, text=True, env=env).stdout
    return int(re.search(r"(\d+) requests in", out).group(1))


def bench_blackbox(kind, rate, seconds, peers, tmp):
    """blackbox_exporter's `/probe` driven by wrk: first paced at our rate (the same probes/s, the
    CPU per probe compared), then as fast as it goes (its maximum probes/s). Each request is one
    probe."""
    exe = next((p for p in ("/usr/bin/prometheus-blackbox-exporter", "/usr/bin/blackbox_exporter") if os.path.exists(p)), None)
    if exe is None:
        return None
    conf = os.path.join(tmp, "blackbox.yml")
    with open(conf, "w") as f:
        f.write(BLACKBOX_MODULES)
    port = free_port()
    p = subprocess.Popen([exe, "--config.file", conf, "--web.listen-address", "127.0.0.1:%d" % port, "--log.level", "error"],
                         stderr=subprocess.DEVNULL)
    try:
        wait(lambda: http_get("http://127.0.0.1:%d/" % port, 2), 10, "blackbox_exporter")
        target = {
            "http": ("http_2xx", "http://127.0.0.1:%d/bb" % peers.http_port),
            "tcp": ("tcp_connect", "127.0.0.1:%d" % peers.http_port),
            "icmp": ("icmp", "127.0.0.2"),
            "dns": ("dns", "127.0.0.1:%d" % peers.dns_port),
        }[kind]
        url = "http://127.0.0.1:%d/probe?module=%s&target=%s" % ((port,) + target)
        conns = 16
        # Paced: a 3 s calibration gives the time a request takes at this rate, the delay
        # between requests of one connection makes up the rest.
        delay = conns * 1000.0 / rate
        got = wrk(url, 3, conns, tmp, delay) / 3
        latency_ms = max(0.0, conns * 1000.0 / max(got, 1) - delay)
        delay = conns * 1000.0 / rate - latency_ms
        cpu_a = cpu_seconds(p.pid)
        paced = wrk(url, seconds, conns, tmp, delay)
        cpu_b = cpu_seconds(p.pid)
        # Flat out.
        flat = wrk(url, seconds, conns, tmp)
        cpu_c = cpu_seconds(p.pid)
        ok = http_get(url)[0].decode()
        return {
            "kind": kind,
            "paced_probes_per_s": round(paced / seconds, 1),
            "cpu_ms_per_probe": round((cpu_b - cpu_a) * 1000 / paced, 4) if paced else None,
            "paced_cpu_cores": round((cpu_b - cpu_a) / seconds, 3),
            "max_probes_per_s": round(flat / seconds, 1),
            "max_cpu_ms_per_probe": round((cpu_c - cpu_b) * 1000 / flat, 4) if flat else None,
            "max_cpu_cores": round((cpu_c - cpu_b) / seconds, 3),
            "probe_success": "probe_success 1" in ok,
        }
    finally:
        p.terminate()
        p.wait(10)


def median(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    m = len(xs) // 2
    return xs[m] if len(xs) % 2 else round((xs[m - 1] + xs[m]) / 2, 4)


def kinds_table(rate, seconds, peers, tmp, only, blackbox=True, ceiling=None, repeat=1):
    rows = []
    for kind in only:
        # Ours and blackbox alternate `repeat` times: this machine drifts by ±30 % over minutes,
        # and a ratio from one pair of 20 s windows can land anywhere in that band. The row
        # keeps the median run of each, and the median of the per-round ratios.
        rounds = []
        for _ in range(max(1, repeat)):
            o = bench_kind(kind, rate, seconds, peers, tmp)
            b = bench_blackbox(kind, rate, seconds, peers, tmp) if blackbox else None
            rounds.append((o, b))
        ours = sorted((o for o, _ in rounds), key=lambda o: o.get("cpu_ms_per_probe") or 0)[(len(rounds) - 1) // 2]
        bbs = [b for _, b in rounds if b]
        bb = sorted(bbs, key=lambda b: b.get("cpu_ms_per_probe") or 0)[(len(bbs) - 1) // 2] if bbs else None
        if len(rounds) > 1:
            ours["rounds"] = [
                {"ours_cpu_ms_per_probe": o.get("cpu_ms_per_probe"), "ours_false_failures": o.get("false_failures"),
                 "blackbox_cpu_ms_per_probe": (b or {}).get("cpu_ms_per_probe"),
                 "ratio": round(b["cpu_ms_per_probe"] / o["cpu_ms_per_probe"], 1)
                 if b and b.get("cpu_ms_per_probe") and o.get("cpu_ms_per_probe") else None}
                for o, b in rounds
            ]
            ours["false_failures"] = sum(o.get("false_failures", 0) for o, _ in rounds)
            ours["cpu_ratio_median_of_rounds"] = median(x["ratio"] for x in ours["rounds"])
        if ceiling:
            # Our maximum: a 2 s interval and `ceiling` probes/s scheduled; what is achieved
            # without false failures is sustained (the schedule is a lower bound if all of it is).
            top = bench_kind(kind, ceiling, seconds, peers, tmp, interval=2)
            ours["max"] = {k: top[k] for k in ("scheduled_per_s", "achieved_per_s", "cpu_ms_per_probe", "cpu_cores",
                                               "false_failures", "failures_by_reason", "lag_p99_s", "rss_mb")}
        if bb:
            ours["blackbox"] = bb
            if ours.get("cpu_ms_per_probe") and bb.get("cpu_ms_per_probe"):
                ours["cpu_ratio_blackbox_over_ours"] = round(bb["cpu_ms_per_probe"] / ours["cpu_ms_per_probe"], 1)
            if ours.get("cpu_ms_per_probe") and bb.get("max_cpu_ms_per_probe"):
                ours["cpu_ratio_blackbox_flat_out_over_ours"] = round(bb["max_cpu_ms_per_probe"] / ours["cpu_ms_per_probe"], 1)
            if ours.get("max") and bb.get("max_probes_per_s"):
                ours["max_rate_ratio_ours_over_blackbox"] = round(ours["max"]["achieved_per_s"] / bb["max_probes_per_s"], 1)
        rows.append(ours)
        print_row(ours)
        if ours.get("rounds"):
            print("      %d rounds: ours %s ms/probe, blackbox %s -> ratios %s, median %s" % (
                len(ours["rounds"]), [x["ours_cpu_ms_per_probe"] for x in ours["rounds"]],
                [x["blackbox_cpu_ms_per_probe"] for x in ours["rounds"]], [x["ratio"] for x in ours["rounds"]],
                ours["cpu_ratio_median_of_rounds"]), flush=True)
    return rows


def print_row(r):
    bb = r.get("blackbox") or {}
    top = r.get("max") or {}
    print(
        "%-5s %6d targets %7.1f/%-5d probes/s  cpu %.4f ms/probe (%.2f cores)  lag p50 %s p99 %s  false failures %d  rss %.0f MB\n"
        "      blackbox at %s probes/s: %s ms/probe -> %sx ours | flat out: %s probes/s, %s ms/probe -> %sx"
        % (r["kind"], r["targets"], r["achieved_per_s"], r["scheduled_per_s"], r["cpu_ms_per_probe"] or -1, r["cpu_cores"],
           r["lag_p50_s"], r["lag_p99_s"], r["false_failures"], r["rss_mb"],
           bb.get("paced_probes_per_s"), bb.get("cpu_ms_per_probe"), r.get("cpu_ratio_blackbox_over_ours"),
           bb.get("max_probes_per_s"), bb.get("max_cpu_ms_per_probe"), r.get("cpu_ratio_blackbox_flat_out_over_ours")),
        flush=True,
    )
    if top:
        print(
            "      our max: %s of %s probes/s scheduled, %s ms/probe, false failures %s -> %sx blackbox's max"
            % (top.get("achieved_per_s"), top.get("scheduled_per_s"), top.get("cpu_ms_per_probe"), top.get("false_failures"),
               r.get("max_rate_ratio_ours_over_blackbox")),
            flush=True,
        )


def scale(targets, interval, seconds, peers, tmp):
    port = free_port()
    kinds = ["tcp", "http", "icmp", "dns"]
    text = config(kinds, targets, interval, peers, port, os.path.join(tmp, "state-scale"), histograms=False)
    d = Daemon(text, tmp)
    try:
        wait(lambda: parse_metrics(d.scrape()[0])[2] >= targets, 120, "targets scheduled")
        startup = time.monotonic() - d.t0
        r = measure(d, interval, seconds, round(targets / interval, 1))
        auth = {"Authorization": "Bearer " + TOKEN}
        for key, path in (("status_page", "/"), ("api_targets", "/api/v1/targets")):
            body, secs = http_get(d.url(path), timeout=120, headers=auth)
            r[key + "_s"], r[key + "_bytes"] = round(secs, 3), len(body)
        t = time.monotonic()
        body, _ = http_get(d.url("/-/reload"), timeout=120, data=b"", headers={"Authorization": "Bearer " + TOKEN})
        reload_s = time.monotonic() - t
        r.update(targets=targets, interval_s=interval, startup_s=round(startup, 2), reload_s=round(reload_s, 3),
                 rss_per_target_bytes=round(r["rss_mb"] * 2**20 / targets))
        print("scale: %s" % json.dumps(r), flush=True)
        return r
    finally:
        d.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["kinds", "scale", "latency", "all"])
    ap.add_argument("--rate", type=int, default=2000)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--targets", type=int, default=100000)
    ap.add_argument("--interval", type=int, default=60)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "latest.json"))
    ap.add_argument("--only", default="tcp,http,icmp,dns", help="kinds to run, comma-separated")
    ap.add_argument("--no-blackbox", action="store_true", help="skip the blackbox_exporter comparison")
    ap.add_argument("--ceiling", type=int, default=0,
                    help="kinds: also run ours at this many probes/s (2 s interval) for its maximum (0: skip)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="kinds: alternate ours and blackbox at the same rate this many times; medians are reported")
    ap.add_argument("--skip-defaults", action="store_true",
                    help="latency: skip the Prometheus stack with its defaults (minutes long)")
    ap.add_argument("--default-rmem", action="store_true",
                    help="leave net.core.rmem_default as it is (the bench otherwise sets the 4 MiB of deploy/sysctl.d)")
    a = ap.parse_args()
    if not os.path.exists(BIN):
        raise SystemExit("build first: cargo build --release")
    tmp = tempfile.mkdtemp(prefix="thongsuot-bench-")
    # The host as deploy/sysctl.d/60-thongsuot.conf sets it (ICMP at 10,000 echoes/s needs more
    # than the default socket buffer); put back afterwards.
    rmem = "/proc/sys/net/core/rmem_default"
    rmem_before = open(rmem).read().strip() if os.path.exists(rmem) else None
    if rmem_before is not None and not a.default_rmem:
        try:
            with open(rmem, "w") as f:
                f.write("4194304")
        except OSError as e:
            print("cannot raise net.core.rmem_default (%s): ICMP at 10,000/s may drop replies" % e, flush=True)
    peers = Peers(tmp)
    result = {"machine": {"cpus": os.cpu_count(), "kernel": platform.release(), "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                          "net.core.rmem_default": open(rmem).read().strip() if rmem_before is not None else None}}
    try:
        if a.what in ("kinds", "all"):
            result["kinds"] = kinds_table(a.rate, a.seconds, peers, tmp, a.only.split(","), not a.no_blackbox, a.ceiling,
                                         a.repeat)
        if a.what in ("scale", "all"):
            result["scale"] = scale(a.targets, a.interval, a.seconds, peers, tmp)
        if a.what in ("latency", "all"):
            # Its own peers (a listener, SMTP servers, the Prometheus stack); see bench/latency.py.
            import latency
            result["latency"] = latency.run(skip_defaults=a.skip_defaults, bin=BIN)
    finally:
        peers.stop()
        if rmem_before is not None and not a.default_rmem:
            try:
                with open(rmem, "w") as f:
                    f.write(rmem_before)
            except OSError:
                pass
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(result, f, indent=2)
    print("written", a.out)


if __name__ == "__main__":
    main()
