#!/usr/bin/env python3
"""Detection latency: a healthy TCP target is cut (its listener killed with SIGKILL) at a known
instant → how long until an e-mail about it is accepted by a real SMTP server. Loopback only:
every address is 127.0.0.1.

Measured for
  - thongsuot, its own path (probe → incident → e-mail), over --trials targets cut at different
    phases of their probe interval;
  - blackbox_exporter + Prometheus + Alertmanager tuned to thongsuot's cadence (scrape and
    evaluation every --interval, `for` = (confirm - 1) × interval, group_wait 0s);
  - the same stack with its documented defaults (scrape and evaluation every 1m, group_wait 30s)
    and `for` = (confirm - 1) × 1m, 2m by default; skipped with --skip-defaults. Its run is
    capped by --defaults-cap (8 min).
The three run concurrently, each with its own listener, SMTP server and processes.

  python3 bench/latency.py [--interval 5] [--confirm 3] [--trials 3] [--skip-defaults] [--json FILE]

Needs: a release build (or --bin), python3-aiosmtpd, prometheus, prometheus-alertmanager and
prometheus-blackbox-exporter (Debian packages; promtool and amtool validate the configs).

As a module: add_arguments(parser) adds the options above, run(args or keyword options) runs the
measurement and returns a JSON-able dict.
"""
import argparse
import concurrent.futures
import datetime
import glob
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

from bench import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMTP_SERVER = os.path.join(ROOT, "tests", "peers", "smtp_server.py")
BLACKBOX = "/usr/bin/prometheus-blackbox-exporter"
PROMETHEUS = "/usr/bin/prometheus"
ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
DOMAIN = "latency.example.vn"

# The target: accepts and closes connections on 127.0.0.1:PORT, printing READY, then the time of
# each accepted connection (each probe). Ends by itself after LIFE seconds.
LISTENER = r"""
import socket, sys, time
port, life = int(sys.argv[1]), float(sys.argv[2])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen(64)
s.settimeout(0.5)
print("READY", flush=True)
end = time.monotonic() + life
while time.monotonic() < end:
    try:
        c, _ = s.accept()
    except TimeoutError:
        continue
    print(repr(time.time()), flush=True)
    c.close()
"""


class Expired(Exception):
    """A bounded wait ran out, or the run was stopped."""


def dur(seconds):
    """A duration as thongsuot, Prometheus and Alertmanager all read it: "5s", "1m", "1500ms"."""
    ms = round(seconds * 1000)
    if ms % 3600000 == 0 and ms:
        return "%dh" % (ms // 3600000)
    if ms % 60000 == 0 and ms:
        return "%dm" % (ms // 60000)
    if ms % 1000 == 0:
        return "%ds" % (ms // 1000)
    return "%dms" % ms


def clock(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%H:%M:%S.%f")[:-3]


def get_json(url):
    with urllib.request.urlopen(url, timeout=2) as r:
        return json.load(r)


def python_with_aiosmtpd():
    """Debian's interpreter when it has aiosmtpd (as tests/it/support.rs), else this one."""
    for py in ("/usr/bin/python3", sys.executable):
        if subprocess.run([py, "-c", "import aiosmtpd"], stderr=subprocess.DEVNULL).returncode == 0:
            return py
    raise SystemExit("aiosmtpd is required: apt-get install -y python3-aiosmtpd")


def wait_until(cond, deadline, what, stop, check=None, step=0.2):
    """Polls cond() until it returns something true (returned) or time.monotonic() passes
    deadline. A cond() failing with OSError or ValueError (server not up yet, half-written
    answer) counts as false. check() may raise when a process it watches has died."""
    while time.monotonic() < deadline:
        if stop.is_set():
            raise Expired("stopped while waiting for " + what)
        if check:
            check()
        try:
            v = cond()
        except (OSError, ValueError):
            v = None
        if v:
            return v
        time.sleep(step)
    raise Expired("timed out waiting for " + what)


def sleep_until(t, stop):
    """Sleeps until time.time() reaches t (at most an interval ahead), unless stopped."""
    while time.time() < t:
        if stop.is_set():
            raise Expired("stopped")
        time.sleep(min(t - time.time(), 0.2))


class Procs:
    """The processes of one system under test, each logging to DIR/NAME.log. stop() ends them
    all: SIGTERM, then SIGKILL for those still running after a bounded wait."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.items = []

    def start(self, name, argv, watch=True):
        """watch: check() fails if it exits (not for the listeners, which are killed on purpose)."""
        log = os.path.join(self.tmp, name + ".log")
        with open(log, "w") as f:
            p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.items.append((name, p, watch))
        return p

    def log(self, name):
        with open(os.path.join(self.tmp, name + ".log"), errors="replace") as f:
            return f.read()

    def tail(self, name, lines=8):
        return " | ".join(self.log(name).strip().splitlines()[-lines:])

    def check(self):
        for name, p, watch in self.items:
            if watch and p.poll() is not None:
                raise RuntimeError("%s exited with status %s: %s" % (name, p.returncode, self.tail(name)))

    def stop(self):
        for _, p, _ in self.items:
            if p.poll() is None:
                p.terminate()
        for _, p, _ in self.items:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)


class Listener:
    """The TCP target. Its log gives the time of every probe, so the cut's phase is known."""

    def __init__(self, procs, name, life, stop):
        self.procs, self.name = procs, name
        self.port = free_port()
        self.proc = procs.start(name, [sys.executable, "-c", LISTENER, str(self.port), str(life)], watch=False)
        wait_until(lambda: self.procs.log(name).startswith("READY"), time.monotonic() + 10, name, stop)

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def probes(self):
        return [float(x) for x in self.procs.log(self.name).split()[1:]]

    def plan_cut(self, phase, interval, stop, deadline):
        """The first instant at least 0.2 s ahead that lies `phase` × interval after a probe, the
        probes being every interval from the last one seen (thongsuot's slots and Prometheus'
        scrapes are periodic). The phase actually hit is read back from the log after the cut."""
        last = wait_until(lambda: self.probes()[-1:], deadline, self.name + " probed", stop)[0]
        periods = max(0, math.ceil((time.time() + 0.2 - last) / interval - phase))
        return last + (periods + phase) * interval

    def cut(self):
        """Kills the listener (SIGKILL); returns the time of the kill. Once reaped, the port refuses."""
        t = time.time()
        self.proc.kill()
        self.proc.wait(5)
        return t

    def last_probe_before(self, t):
        return max((p for p in self.probes() if p <= t), default=None)


class Mailbox:
    """tests/peers/smtp_server.py on 127.0.0.1: every accepted message as a JSON file."""

    def __init__(self, procs, name, stop):
        self.procs, self.name = procs, name
        self.port = free_port()
        self.dir = os.path.join(procs.tmp, name)
        os.mkdir(self.dir)
        procs.start(name, [python_with_aiosmtpd(), SMTP_SERVER, "--port", str(self.port), "--dir", self.dir])
        wait_until(lambda: "READY" in self.procs.log(name), time.monotonic() + 15, name, stop, procs.check)

    def first_to(self, rcpt, after):
        """The first message to rcpt accepted at or after `after` (time.time()), or None."""
        for path in sorted(glob.glob(os.path.join(self.dir, "*.json"))):
            with open(path, encoding="utf-8") as f:
                m = json.load(f)
            if rcpt in m["rcpt_tos"] and m["accepted_at"] >= after:
                return m
        return None


def cut_record(listener, cut, interval):
    """What the listener's log says about a cut: the last probe before it and the phase."""
    last = listener.last_probe_before(cut)
    return {
        "target": listener.address,
        "cut": round(cut, 3),
        "last_probe_before_cut": round(last, 3),
        "phase": round((cut - last) / interval, 3),
    }


# --- thongsuot -----------------------------------------------------------------------------

def thongsuot_config(port, smtp_port, targets, o):
    """targets: [(name, address)]. One group and one contact per target, so that each trial's
    first report is sent at once (incidents of one group within group_interval would be
    gathered into a follow-up)."""
    parts = [
        '[daemon]\nlisten = "127.0.0.1:%d"\nstate_dir = "state"\nvantage = "latency"\n' % port,
        '[defaults]\ninterval = "%s"\ntimeout = "%s"\nconfirm = %d\nrecover = 2\n' % (dur(o["interval"]), dur(o["timeout"]), o["confirm"]),
        '[smtp]\nhost = "127.0.0.1"\nport = %d\ntls = "none"\nfrom = "thongsuot@%s"\n' % (smtp_port, DOMAIN),
    ]
    for name, address in targets:
        parts.append(
            '[[group]]\nname = "{n}"\ncontacts = ["{n}"]\n'
            '[[contact]]\nname = "{n}"\nemails = ["{n}@{d}"]\nlanguage = "en"\n'
            '[[target]]\nname = "{n}"\ngroup = "{n}"\nkind = "tcp"\naddress = "{a}"\n'.format(n=name, d=DOMAIN, a=address)
        )
    return "\n".join(parts)


def run_thongsuot(o, stop, tmp):
    interval, confirm, n = o["interval"], o["confirm"], o["trials"]
    bound = confirm * interval + 1
    # Phases spread from just after a probe (the worst case, about confirm × interval) to just
    # before the next one (the best, about (confirm - 1) × interval).
    phases = [0.5] if n == 1 else [0.05 + 0.9 * k / (n - 1) for k in range(n)]
    # Start-up, one interval per cut (they are made one after the other), then the e-mails.
    deadline = time.monotonic() + 60 + n * interval + 2 * bound
    procs = Procs(tmp)
    try:
        mail = Mailbox(procs, "thongsuot-smtp", stop)
        targets = [Listener(procs, "thongsuot-target-%d" % (k + 1), deadline - time.monotonic(), stop) for k in range(n)]
        names = ["latency-%d" % (k + 1) for k in range(n)]
        port = free_port()
        path = os.path.join(tmp, "thongsuot.toml")
        with open(path, "w") as f:
            f.write(thongsuot_config(port, mail.port, [(nm, t.address) for nm, t in zip(names, targets)], o))
        check = subprocess.run([o["bin"], "check", "--config", path], capture_output=True, text=True, timeout=30)
        if check.returncode != 0:
            raise SystemExit("thongsuot check failed:\n" + check.stdout + check.stderr)
        procs.start("thongsuot", [o["bin"], "run", "--config", path])
        api = "http://127.0.0.1:%d/api/v1/" % port

        def all_up():
            return all(t["state"] == "up" for t in get_json(api + "targets")["targets"])

        wait_until(all_up, time.monotonic() + 30 + 3 * interval, "thongsuot: every target up", stop, procs.check)
        cuts = {}
        for k, (t, ph) in enumerate(zip(targets, phases)):
            sleep_until(t.plan_cut(ph, interval, stop, deadline), stop)
            cuts[k] = t.cut()
        messages = {}

        def all_mailed():
            for k in range(n):
                messages[k] = messages.get(k) or mail.first_to("%s@%s" % (names[k], DOMAIN), cuts[k])
            return all(messages.values())

        error = None
        try:
            wait_until(all_mailed, deadline, "thongsuot's e-mails", stop, procs.check)
        except Expired as e:
            error = "%s; log: %s" % (e, procs.tail("thongsuot"))
        incidents = {i["target"]: i for i in get_json(api + "incidents")["incidents"]}
        trials = []
        for k, ph in enumerate(phases):
            r = cut_record(targets[k], cuts[k], interval)
            # The next probe slot after the last success fails first; confirm - 1 slots later the
            # outage is declared (expected, ignoring the probe and send times).
            r.update(name=names[k], planned_phase=round(ph, 3),
                     expected_detection_s=round(r["last_probe_before_cut"] + confirm * interval - cuts[k], 3))
            inc = incidents.get(names[k])
            if inc:
                r.update(first_failed_probe_s=round(inc["since_ms"] / 1000 - cuts[k], 3),
                         declared_down_s=round(inc["opened_ms"] / 1000 - cuts[k], 3))
            m = messages.get(k)
            if m:
                r.update(accepted_at=round(m["accepted_at"], 3), latency_s=round(m["accepted_at"] - cuts[k], 3),
                         subject=m["subject"], recipient=m["rcpt_tos"][0])
            trials.append(r)
        lat = [t["latency_s"] for t in trials if "latency_s" in t]
        out = {
            "settings": {"interval": dur(interval), "timeout": dur(o["timeout"]), "confirm": confirm, "recover": 2},
            "bound_s": bound,
            "bound": "confirm x interval + 1 s (the project's target): cut just after a probe, the next "
                     "slot is the first failure, failure number %d (confirm x interval after the cut) "
                     "declares the outage and its first report leaves at once; +1 s for the probes and "
                     "the SMTP exchange" % confirm,
            "trials": trials,
            "latency_s": {"min": min(lat), "mean": round(sum(lat) / len(lat), 3), "max": max(lat)} if lat else None,
            "within_bound": bool(lat) and len(lat) == n and max(lat) <= bound,
        }
        if error:
            out["error"] = error
        return out
    finally:
        procs.stop()


# --- blackbox_exporter + Prometheus + Alertmanager ------------------------------------------

# Prometheus' `for` is optional and defaults to 0s: the alert then fires at the first evaluation
# that sees a failed probe, with no confirmation at all, so no default fits a comparison. Both runs
# use (confirm - 1) × scrape_interval, which is `confirm` consecutive failed probes (the first
# failure, then confirm - 1 scrapes later), the confirmation thongsuot applies: 2m at the default
# 1m scrapes with confirm = 3.
FOR_NOTE = ("Prometheus' `for` is optional and defaults to 0s (fire at the first failing evaluation, no "
            "confirmation); chosen as (confirm - 1) x scrape_interval: %d consecutive failed probes, "
            "the confirmation of thongsuot's confirm = %d")


def stack_settings(o, tuned):
    if tuned:
        iv = o["interval"]
        return {
            "scrape_interval": iv, "scrape_timeout": iv, "evaluation_interval": iv,
            "for": (o["confirm"] - 1) * iv, "module_timeout": o["timeout"],
            "group_wait": 0, "group_interval": 300, "repeat_interval": 4 * 3600,
        }
    # The documented defaults, written out: Prometheus' global scrape_interval 1m, scrape_timeout
    # 10s, evaluation_interval 1m; Alertmanager's group_wait 30s, group_interval 5m,
    # repeat_interval 4h; a blackbox module without a timeout probes for the scrape timeout less
    # 0.5 s. `for` has no usable default (see FOR_NOTE).
    return {
        "scrape_interval": 60, "scrape_timeout": 10, "evaluation_interval": 60,
        "for": (o["confirm"] - 1) * 60, "module_timeout": None,
        "group_wait": 30, "group_interval": 300, "repeat_interval": 4 * 3600,
    }


def stack_bound(s):
    """Worst case from the cut to the e-mail leaving Alertmanager (see the `bound` text)."""
    return s["scrape_interval"] + s["evaluation_interval"] + s["for"] + s["group_wait"]


def stack_configs(tmp, s, target, ports, rcpt, smtp_port):
    """Writes blackbox.yml, rules.yml, prometheus.yml and alertmanager.yml under tmp."""
    module = "  tcp_connect:\n    prober: tcp\n"
    if s["module_timeout"] is not None:
        module += "    timeout: %s\n" % dur(s["module_timeout"])
    files = {
        "blackbox.yml": "modules:\n" + module + "    tcp:\n      preferred_ip_protocol: ip4\n",
        "rules.yml": (
            "groups:\n- name: latency\n  rules:\n  - alert: ProbeFailing\n    expr: probe_success == 0\n"
            "    for: %s\n    annotations:\n      summary: 'probe of {{ $labels.instance }} failing'\n" % dur(s["for"])
        ),
        # The relabelling of the blackbox_exporter documentation: instance = the probed address.
        "prometheus.yml": (
            "global:\n  scrape_interval: %s\n  scrape_timeout: %s\n  evaluation_interval: %s\n"
            "rule_files: [rules.yml]\n"
            "alerting:\n  alertmanagers:\n  - static_configs:\n    - targets: ['127.0.0.1:%d']\n"
            "scrape_configs:\n- job_name: blackbox\n  metrics_path: /probe\n  params: {module: [tcp_connect]}\n"
            "  static_configs:\n  - targets: ['%s']\n"
            "  relabel_configs:\n  - source_labels: [__address__]\n    target_label: __param_target\n"
            "  - source_labels: [__param_target]\n    target_label: instance\n"
            "  - target_label: __address__\n    replacement: 127.0.0.1:%d\n"
            % (dur(s["scrape_interval"]), dur(s["scrape_timeout"]), dur(s["evaluation_interval"]), ports["am"], target, ports["bb"])
        ),
        "alertmanager.yml": (
            "route:\n  receiver: mail\n  group_wait: %s\n  group_interval: %s\n  repeat_interval: %s\n"
            "receivers:\n- name: mail\n  email_configs:\n  - to: %s\n    from: alertmanager@%s\n"
            "    smarthost: 127.0.0.1:%d\n    require_tls: false\n"
            % (dur(s["group_wait"]), dur(s["group_interval"]), dur(s["repeat_interval"]), rcpt, DOMAIN, smtp_port)
        ),
    }
    for name, text in files.items():
        with open(os.path.join(tmp, name), "w") as f:
            f.write(text)
    return {k: os.path.join(tmp, k) for k in files}


def validate(argv):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise SystemExit("%s failed:\n%s%s" % (" ".join(argv), r.stdout, r.stderr))


def run_stack(o, stop, tmp, tuned, cap):
    label = "stack-tuned" if tuned else "stack-defaults"
    s = stack_settings(o, tuned)
    si, ei = s["scrape_interval"], s["evaluation_interval"]
    bound = stack_bound(s)
    deadline = time.monotonic() + cap
    procs = Procs(tmp)
    try:
        mail = Mailbox(procs, label + "-smtp", stop)
        target = Listener(procs, label + "-target", cap, stop)
        rcpt = "%s@%s" % (label, DOMAIN)
        ports = {"bb": free_port(), "prom": free_port(), "am": free_port()}
        files = stack_configs(tmp, s, target.address, ports, rcpt, mail.port)
        validate([BLACKBOX, "--config.file", files["blackbox.yml"], "--config.check"])
        validate(["promtool", "check", "config", files["prometheus.yml"]])
        validate(["amtool", "check-config", files["alertmanager.yml"]])
        procs.start(label + "-blackbox", [BLACKBOX, "--config.file", files["blackbox.yml"],
                                          "--web.listen-address", "127.0.0.1:%d" % ports["bb"]])
        # --cluster.listen-address= switches clustering off (it would bind 0.0.0.0:9094).
        procs.start(label + "-alertmanager", [ALERTMANAGER, "--config.file", files["alertmanager.yml"],
                                              "--storage.path", os.path.join(tmp, "am-data"),
                                              "--web.listen-address", "127.0.0.1:%d" % ports["am"],
                                              "--cluster.listen-address="])
        procs.start(label + "-prometheus", [PROMETHEUS, "--config.file", files["prometheus.yml"],
                                            "--storage.tsdb.path", os.path.join(tmp, "prom-data"),
                                            "--web.listen-address", "127.0.0.1:%d" % ports["prom"]])
        prom = "http://127.0.0.1:%d/api/v1/" % ports["prom"]

        def probe_success():
            q = urllib.parse.quote('probe_success{instance="%s"}' % target.address)
            res = get_json(prom + "query?query=" + q)["data"]["result"]
            return res and res[0]["value"][1] == "1"

        # The first scrape comes at a hashed offset within scrape_interval.
        wait_until(probe_success, min(deadline, time.monotonic() + 30 + 2 * si), label + ": probe_success 1", stop,
                   procs.check, step=0.5)
        sleep_until(target.plan_cut(0.5, si, stop, deadline), stop)
        cut = target.cut()
        error = None
        try:
            m = wait_until(lambda: mail.first_to(rcpt, cut), deadline, label + ": e-mail", stop, procs.check, step=0.25)
        except Expired as e:
            m = None
            error = "%s (cap %ds); alertmanager log: %s" % (e, cap, procs.tail(label + "-alertmanager"))

        def first_sample(selector, value=None):
            """Seconds from the cut to the first raw sample of selector after it (with that value):
            a scrape's or a rule evaluation's timestamp. None if there is none."""
            q = urllib.parse.quote("%s[%ds]" % (selector, cap + 60))
            ts = [t for series in get_json(prom + "query?query=" + q)["data"]["result"] for t, v in series["values"]
                  if t >= cut and (value is None or v == value)]
            return round(min(ts) - cut, 3) if ts else None

        alert = 'ALERTS{alertname="ProbeFailing",instance="%s",alertstate="%%s"}' % target.address
        r = cut_record(target, cut, si)
        r.update(
            settings={k: "unset (scrape_timeout - 0.5s)" if v is None else dur(v) for k, v in s.items()},
            rule={"expr": "probe_success == 0", "for": dur(s["for"]), "for_note": FOR_NOTE % (o["confirm"], o["confirm"])},
            bound_s=bound,
            bound="scrape_interval + evaluation_interval + for + group_wait = %s + %s + %s + %s: the first failed "
                  "scrape comes up to one scrape_interval after the cut, the rule sees it at the next evaluation "
                  "(pending), the alert fires `for` later, and Alertmanager holds a new group for group_wait "
                  "before e-mailing (group_interval only paces the group's later notifications)"
                  % (dur(si), dur(ei), dur(s["for"]), dur(s["group_wait"])),
            # From Prometheus' own samples: the first failed scrape, and the evaluations that made
            # the alert pending (none when `for` is 0s) and firing.
            first_failed_probe_s=first_sample('probe_success{instance="%s"}' % target.address, "0"),
            pending_s=first_sample(alert % "pending"),
            firing_s=first_sample(alert % "firing"),
        )
        if m:
            r.update(accepted_at=round(m["accepted_at"], 3), latency_s=round(m["accepted_at"] - cut, 3),
                     subject=m["subject"], recipient=m["rcpt_tos"][0])
        r["within_bound"] = bool(m) and r["latency_s"] <= bound
        if error:
            r["error"] = error
        return r
    finally:
        procs.stop()


# --- the run --------------------------------------------------------------------------------

def add_arguments(p):
    p.add_argument("--interval", type=float, default=5,
                   help="thongsuot's probe interval, seconds; the tuned stack scrapes and evaluates at it (default 5)")
    p.add_argument("--confirm", type=int, default=3, help="failed probes before an outage is declared (default 3)")
    p.add_argument("--trials", type=int, default=3, help="thongsuot targets, cut at phases spread over the interval (default 3)")
    p.add_argument("--skip-defaults", action="store_true", help="skip the stack with its defaults (minutes long)")
    p.add_argument("--defaults-cap", type=float, default=480, help="seconds the defaults run may take in all (default 480)")
    p.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "thongsuot"), help="the thongsuot binary")
    p.add_argument("--json", metavar="FILE", help="write the result there")


def preflight(o):
    if o["interval"] < 1 or o["confirm"] < 1 or o["trials"] < 1:
        raise SystemExit("--interval must be at least 1 s, --confirm and --trials at least 1")
    for exe in (o["bin"], BLACKBOX, PROMETHEUS, ALERTMANAGER, shutil.which("promtool"), shutil.which("amtool")):
        if not exe or not os.access(exe, os.X_OK):
            raise SystemExit("missing %s: cargo build --release; apt-get install -y prometheus prometheus-alertmanager "
                             "prometheus-blackbox-exporter python3-aiosmtpd" % (exe or "promtool/amtool"))
    python_with_aiosmtpd()


def table(res):
    """phase: of the cut within the probe (scrape) interval; detected: outage declared by
    thongsuot, alert firing in Prometheus; both counted from the cut, like the latency."""
    rows = [("system", "cut (UTC)", "phase", "detected s", "e-mail accepted", "latency s", "bound s")]

    def secs(v):
        return "-" if v is None else "%.2f" % v

    def row(name, r, detected, bound):
        rows.append((name, clock(r["cut"]), "%.2f" % r["phase"], secs(detected),
                     clock(r["accepted_at"]) if "accepted_at" in r else "none", secs(r.get("latency_s")), "%g" % bound))

    ts = res["thongsuot"]
    for t in ts["trials"]:
        row("thongsuot %s" % t["name"], t, t.get("declared_down_s"), ts["bound_s"])
    for key, name in (("stack_tuned", "blackbox+prom+am tuned"), ("stack_defaults", "blackbox+prom+am defaults")):
        if not res[key].get("skipped"):
            row(name, res[key], res[key]["firing_s"], res[key]["bound_s"])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def run(args=None, **options):
    """Runs the measurement. args: an argparse namespace (extra attributes are ignored), and/or
    keyword options named as add_arguments' destinations; the rest take their defaults.
    Prints the table and returns the result (a JSON-able dict); writes it to `json` if set."""
    p = argparse.ArgumentParser()
    add_arguments(p)
    o = vars(p.parse_args([]))
    o.update({k: v for k, v in vars(args or argparse.Namespace()).items() if k in o})
    o.update(options)
    o["timeout"] = min(2.0, o["interval"])
    preflight(o)
    stop = threading.Event()
    tmp = tempfile.mkdtemp(prefix="thongsuot-latency-")
    jobs = {
        "thongsuot": lambda d: run_thongsuot(o, stop, d),
        "stack_tuned": lambda d: run_stack(o, stop, d, True, 60 + 4 * stack_bound(stack_settings(o, True))),
    }
    if not o["skip_defaults"]:
        jobs["stack_defaults"] = lambda d: run_stack(o, stop, d, False, o["defaults_cap"])
    t0 = time.monotonic()
    try:
        with concurrent.futures.ThreadPoolExecutor(len(jobs)) as ex:
            futures = {}
            for name, job in jobs.items():
                os.mkdir(os.path.join(tmp, name))
                futures[ex.submit(job, os.path.join(tmp, name))] = name
            try:
                done, _ = concurrent.futures.wait(futures, return_when=concurrent.futures.FIRST_EXCEPTION)
                for f in done:
                    if f.exception():
                        raise f.exception()
                results = {futures[f]: f.result() for f in futures}
            except BaseException:
                # Ctrl-C or a failed system: the others give up at their next poll and stop
                # their processes before the executor lets go.
                stop.set()
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    res = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release()},
        "options": {k: o[k] for k in ("interval", "timeout", "confirm", "trials", "skip_defaults", "defaults_cap")},
        "thongsuot": results["thongsuot"],
        "stack_tuned": results["stack_tuned"],
        "stack_defaults": results.get("stack_defaults", {"skipped": True}),
        "total_s": round(time.monotonic() - t0, 1),
    }
    print(table(res), flush=True)
    if o["json"]:
        with open(o["json"], "w") as f:
            json.dump(res, f, indent=2, ensure_ascii=False)
    return res


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(p)
    a = p.parse_args()
    # SIGTERM ends the run like Ctrl-C: through run()'s clean-up, every process stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))
    try:
        res = run(a)
    except (Expired, RuntimeError) as e:
        sys.exit("latency: %s" % e)
    if a.json:
        print("written", a.json)
    else:
        print(json.dumps(res, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
