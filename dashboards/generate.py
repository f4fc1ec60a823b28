#!/usr/bin/env python3
"""Generates the Grafana dashboards in this folder (JSON, schemaVersion 39).

    python3 dashboards/generate.py

Every query is checked against a real Prometheus scraping a real daemon by the tests
(tests/it/dashboards.rs). Edit here, not the JSON.
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
DS = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'group=~"$group", vantage=~"$vantage"'


def var_query(name, label, query, multi=True):
    return {
        "name": name, "label": label, "type": "query", "datasource": DS,
        "query": {"query": query, "refId": "v_" + name}, "definition": query,
        "refresh": 2, "multi": multi, "includeAll": True, "allValue": ".*",
        "current": {"text": "All", "value": "$__all"}, "sort": 1,
    }


def templating(extra=()):
    v = [
        {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
         "current": {}, "hide": 0, "refresh": 1},
        var_query("vantage", "Vantage", "label_values(thongsuot_build_info, vantage)"),
        var_query("group", "Group", "label_values(thongsuot_target_up{vantage=~\"$vantage\"}, group)"),
    ]
    v.extend(extra)
    return {"list": v}


TARGET_VAR = var_query("target", "Target", 'label_values(thongsuot_target_up{group=~"$group"}, target)')
PERIOD_VAR = var_query("period", "Period", "label_values(thongsuot_sla_availability_ratio, period)")

_id = [0]


def panel(kind, title, exprs, x, y, w, h, unit=None, thresholds=None, legend="{{target}}", options=None, description=""):
    _id[0] += 1
    targets = []
    for i, e in enumerate(exprs):
        expr, fmt = (e if isinstance(e, tuple) else (e, legend))
        targets.append({"datasource": DS, "expr": expr, "legendFormat": fmt, "refId": chr(65 + i)})
    defaults = {"color": {"mode": "thresholds" if thresholds else "palette-classic"}}
    if unit:
        defaults["unit"] = unit
    if thresholds:
        defaults["thresholds"] = {"mode": "absolute", "steps": thresholds}
    p = {
        "id": _id[0], "type": kind, "title": title, "description": description, "datasource": DS,
        "gridPos": {"x": x, "y": y, "w": w, "h": h}, "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": []}, "options": options or {},
    }
    return p


RED_GREEN_100 = [{"color": "red", "value": None}, {"color": "green", "value": 1}]
ZERO_GREEN = [{"color": "green", "value": None}, {"color": "red", "value": 1}]
UP_MAPPING = {
    "showValue": "never", "mergeValues": True, "rowHeight": 0.8,
}


def links():
    return [{"title": "thongsuot", "type": "dashboards", "tags": ["thongsuot"], "asDropdown": False, "includeVars": True,
             "keepTime": True}]


def dashboard(uid, title, panels, extra_vars=()):
    return {
        "uid": uid, "title": title, "tags": ["thongsuot"], "timezone": "browser", "schemaVersion": 39,
        "version": 1, "editable": True, "refresh": "30s", "time": {"from": "now-6h", "to": "now"},
        "templating": templating(extra_vars), "links": links(), "panels": panels,
        "annotations": {"list": []},
    }


def overview():
    _id[0] = 0
    return dashboard("thongsuot-overview", "thongsuot — exam period overview", [
        panel("stat", "SLA compliance per group (objective 100 %)",
              [('thongsuot_sla_availability_ratio{target="", period=~"$period", ' + SEL + "}", "{{group}} · {{period}}")],
              0, 0, 12, 6, unit="percentunit", thresholds=RED_GREEN_100,
              options={"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "background", "textMode": "value_and_name"},
              description="Availability over observed time in each period; red below 100 %."),
        panel("stat", "Targets down now", [("count(thongsuot_target_up{" + SEL + "} == 0) or vector(0)", "down")],
              12, 0, 4, 6, thresholds=ZERO_GREEN, options={"colorMode": "background"}),
        panel("stat", "Congested now", [("count(thongsuot_target_degraded{" + SEL + "} == 1) or vector(0)", "congested")],
              16, 0, 4, 6, thresholds=ZERO_GREEN, options={"colorMode": "background"}),
        panel("stat", "Groups in breach", [('count(thongsuot_sla_breach{target="", period=~"$period", ' + SEL + "} == 1) or vector(0)", "groups")],
              20, 0, 4, 6, thresholds=ZERO_GREEN, options={"colorMode": "background"}),
        panel("state-timeline", "State per target (1 up, 0 down)", ["thongsuot_target_up{" + SEL + "}"],
              0, 6, 24, 10, thresholds=RED_GREEN_100, options=UP_MAPPING),
        panel("table", "Breaches in the period", [('thongsuot_sla_breach{period=~"$period", ' + SEL + "} == 1", "{{group}} {{target}}")],
              0, 16, 12, 8, options={"showHeader": True}),
        panel("timeseries", "Confirmed downtime (s) per target", ["thongsuot_target_downtime_seconds_total{" + SEL + "}"],
              12, 16, 12, 8, unit="s"),
    ], extra_vars=[PERIOD_VAR])


def carrier():
    _id[0] = 0
    sel_t = 'group=~"$group", target=~"$target", vantage=~"$vantage"'
    return dashboard("thongsuot-carrier", "thongsuot — carrier detail", [
        panel("timeseries", "Availability over the selected range", ["avg_over_time(thongsuot_target_up{" + sel_t + "}[$__range])"],
              0, 0, 12, 8, unit="percentunit"),
        panel("timeseries", "Probe duration by phase", [("thongsuot_probe_phase_duration_seconds{" + sel_t + "}", "{{target}} {{phase}}")],
              12, 0, 12, 8, unit="s"),
        panel("timeseries", "ICMP packet loss", ["thongsuot_icmp_packet_loss_ratio{" + sel_t + "}"], 0, 8, 12, 8, unit="percentunit"),
        panel("timeseries", "ICMP round-trip time", ["thongsuot_icmp_rtt_seconds{" + sel_t + "}"], 12, 8, 12, 8, unit="s"),
        panel("timeseries", "Failure reasons (probes/s)",
              [('sum by (target, result) (rate(thongsuot_probes_total{result!="success", ' + sel_t + "}[$__rate_interval]))", "{{target}} {{result}}")],
              0, 16, 12, 8, unit="reqps"),
        panel("timeseries", "Probe success by vantage point", [("avg by (vantage) (thongsuot_probe_success{" + sel_t + "})", "{{vantage}}")],
              12, 16, 12, 8, unit="percentunit"),
    ], extra_vars=[TARGET_VAR])


def self_monitoring():
    _id[0] = 0
    v = 'vantage=~"$vantage"'
    return dashboard("thongsuot-self", "thongsuot — the monitor itself", [
        panel("timeseries", "Probes per second", [("sum by (vantage) (rate(thongsuot_probes_total{" + v + "}[$__rate_interval]))", "{{vantage}}")],
              0, 0, 12, 8, unit="reqps"),
        panel("timeseries", "Scheduler lag p99", [("histogram_quantile(0.99, sum by (le, vantage) (rate(thongsuot_scheduler_lag_seconds_bucket{" + v + "}[$__rate_interval])))", "{{vantage}}")],
              12, 0, 12, 8, unit="s"),
        panel("timeseries", "Probes in flight", [("thongsuot_probes_in_flight", "{{instance}}")], 0, 8, 8, 8),
        panel("timeseries", "Outbox (e-mails waiting)", [("thongsuot_outbox_pending", "{{instance}}")], 8, 8, 8, 8),
        panel("timeseries", "Notification latency p95 (confirmed → accepted)",
              [("histogram_quantile(0.95, sum by (le) (rate(thongsuot_notification_latency_seconds_bucket[1h])))", "p95")],
              16, 8, 8, 8, unit="s"),
        panel("timeseries", "SLA evaluation and store", [("thongsuot_sla_evaluation_duration_seconds", "evaluation {{instance}}"),
                                                          ("thongsuot_store_errors_total", "store errors {{instance}}")], 0, 16, 8, 8),
        panel("timeseries", "Resident memory", [("process_resident_memory_bytes{job=\"thongsuot\"}", "{{instance}}")], 8, 16, 8, 8, unit="bytes"),
        panel("table", "Build", [("thongsuot_build_info{" + v + "}", "{{version}} {{vantage}}")], 16, 16, 8, 8),
    ])


OPERATOR_VAR = var_query("operator", "Postal operator", "label_values(thongsuot_postal_consignments, operator)")


def postal():
    _id[0] = 0
    o = 'operator=~"$operator", vantage=~"$vantage"'
    return dashboard("thongsuot-postal", "thongsuot — postal consignments", [
        panel("stat", "On-time ratio (objective 100 %)", [("thongsuot_postal_on_time_ratio{" + o + "}", "{{operator}}")],
              0, 0, 8, 6, unit="percentunit", thresholds=RED_GREEN_100,
              options={"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "background", "textMode": "value_and_name"},
              description="Delivered on time / consignments whose outcome is known (delivered, failed or overdue)."),
        panel("stat", "Overdue now", [('sum(thongsuot_postal_consignments{state="overdue", ' + o + "}) or vector(0)", "overdue")],
              8, 0, 4, 6, thresholds=ZERO_GREEN, options={"colorMode": "background"}),
        panel("stat", "Failed (lost, returned, damaged)", [('sum(thongsuot_postal_consignments{state="failed", ' + o + "}) or vector(0)", "failed")],
              12, 0, 4, 6, thresholds=ZERO_GREEN, options={"colorMode": "background"}),
        panel("stat", "Delivered late", [('sum(thongsuot_postal_consignments{state="delivered_late", ' + o + "}) or vector(0)", "late")],
              16, 0, 4, 6, thresholds=ZERO_GREEN, options={"colorMode": "background"}),
        panel("stat", "Early warnings (stale, at risk)", [("sum(thongsuot_postal_warnings{" + o + "}) or vector(0)", "warnings")],
              20, 0, 4, 6, thresholds=ZERO_GREEN, options={"colorMode": "background"}),
        panel("timeseries", "Consignments by state", [("sum by (operator, state) (thongsuot_postal_consignments{" + o + "})", "{{operator}} {{state}}")],
              0, 6, 12, 8),
        panel("timeseries", "Delivery time p50 / p90 (accepted → delivered, since the daemon started)",
              [("histogram_quantile(0.5, sum by (le, operator) (thongsuot_postal_delivery_seconds_bucket{" + o + "}))", "p50 {{operator}}"),
               ("histogram_quantile(0.9, sum by (le, operator) (thongsuot_postal_delivery_seconds_bucket{" + o + "}))", "p90 {{operator}}")],
              12, 6, 12, 8, unit="s"),
        panel("state-timeline", "Tracking API up (1) / down (0)", ['thongsuot_target_up{kind="postal", vantage=~"$vantage"}'],
              0, 14, 12, 8, thresholds=RED_GREEN_100, options=UP_MAPPING),
        panel("timeseries", "Tracking requests per second by result",
              [("sum by (operator, result) (rate(thongsuot_postal_tracking_requests_total{" + o + "}[$__rate_interval]))", "{{operator}} {{result}}")],
              12, 14, 12, 8, unit="reqps"),
        panel("stat", "Bad rows in the consignments file", [("max(thongsuot_postal_csv_errors)", "rows")],
              0, 22, 6, 4, thresholds=ZERO_GREEN, options={"colorMode": "background"}),
    ], extra_vars=[OPERATOR_VAR])


def calls():
    """Test calls and messages (kinds `call` and `sms`): the KPIs of the report, live. Its call
    queries are checked against a daemon placing real calls (tests/it/calls.rs, sipp), its SMS
    queries against one sending through Kannel (tests/it/sms.rs)."""
    _id[0] = 0

    def ratio(kind):
        return ('sum(increase(thongsuot_probes_total{kind="%s", result="success", %s}[$__range])) / '
                'sum(increase(thongsuot_probes_total{kind="%s", %s}[$__range]))' % (kind, SEL, kind, SEL))

    def p95(metric):
        return "histogram_quantile(0.95, sum by (le, target) (rate(%s_bucket{%s}[$__rate_interval])))" % (metric, SEL)

    stat = {"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "background", "textMode": "value_and_name"}
    return dashboard("thongsuot-calls", "thongsuot — test calls and messages", [
        panel("stat", "Call setup success (selected range, objective 100 %)", [(ratio("call"), "calls")],
              0, 0, 6, 6, unit="percentunit", thresholds=RED_GREEN_100, options=stat,
              description="Test calls answered / placed (INVITE … 200 OK … BYE), from every call of the range."),
        panel("stat", "SMS completion (selected range, objective 100 %)", [(ratio("sms"), "messages")],
              6, 0, 6, 6, unit="percentunit", thresholds=RED_GREEN_100, options=stat,
              description="Test messages confirmed (delivery report or arrival, per target) / sent."),
        panel("state-timeline", "Call and SMS targets (1 up, 0 down)", ['thongsuot_target_up{kind=~"call|sms", ' + SEL + "}"],
              12, 0, 12, 6, thresholds=RED_GREEN_100, options=UP_MAPPING),
        panel("timeseries", "Call setup time p95 (INVITE → answer)", [p95("thongsuot_call_setup_seconds")], 0, 6, 12, 8, unit="s"),
        panel("timeseries", "Post-dial delay p95 (INVITE → first ringing)", [p95("thongsuot_call_post_dial_delay_seconds")],
              12, 6, 12, 8, unit="s"),
        panel("timeseries", "SMS delivery time p95 (submit → arrival)", [p95("thongsuot_sms_delivery_seconds")], 0, 14, 12, 8, unit="s"),
        panel("timeseries", "SMS delivery report time p95 (submit → report)", [p95("thongsuot_sms_delivery_report_seconds")],
              12, 14, 12, 8, unit="s"),
        panel("timeseries", "Test calls per minute by result",
              [('60 * sum by (target, result) (rate(thongsuot_probes_total{kind="call", ' + SEL + "}[$__rate_interval]))", "{{target}} {{result}}")],
              0, 22, 12, 8),
        panel("timeseries", "Test messages per minute by result",
              [('60 * sum by (target, result) (rate(thongsuot_probes_total{kind="sms", ' + SEL + "}[$__rate_interval]))", "{{target}} {{result}}")],
              12, 22, 12, 8),
    ])


def main():
    for d in (overview(), carrier(), self_monitoring(), postal(), calls()):
        with open(os.path.join(HERE, d["uid"] + ".json"), "w") as f:
            json.dump(d, f, indent=2, ensure_ascii=False)
            f.write("\n")


if __name__ == "__main__":
    main()
