//! `thongsuot rules`: the generated file passes `promtool check rules`, and `promtool test rules`
//! (series in, alerts out) proves down with quorum across vantage points, raw probe failures for
//! confirm × interval, congestion, SLA breach, the watchdog and a dead daemon.

use std::process::Command;

use crate::support::*;

const CONFIG: &str = r#"
[daemon]
public_url = "http://thongsuot.example.vn"
grafana_url = "http://grafana.example.vn/d/thongsuot"

[defaults]
interval = "10s"
timeout = "2s"
confirm = 3

[[group]]
name = "vnpt"
contingency = "Plan B: backup leased line"

[[target]]
name = "a"
group = "vnpt"
kind = "tcp"
address = "127.0.0.1:1"

[postal]
[[postal.operator]]
name = "vnpost"
track_url = "http://127.0.0.1:1/track/{tracking}"
status_pointer = "/status"
"#;

const TESTS: &str = r#"
rule_files: [rules.yml]
evaluation_interval: 15s
tests:
  - interval: 15s
    input_series:
      # a: down from both vantage points from 30 s on; b: down from one of two only.
      - series: 'thongsuot_target_up{job="thongsuot",target="a",group="vnpt",kind="tcp",vantage="v1"}'
        values: '1 1 0 0 0 0 0 0 0 0 0 0'
      - series: 'thongsuot_target_up{job="thongsuot",target="a",group="vnpt",kind="tcp",vantage="v2"}'
        values: '1 1 0 0 0 0 0 0 0 0 0 0'
      - series: 'thongsuot_target_up{job="thongsuot",target="b",group="vnpt",kind="tcp",vantage="v1"}'
        values: '1 1 0 0 0 0 0 0 0 0 0 0'
      - series: 'thongsuot_target_up{job="thongsuot",target="b",group="vnpt",kind="tcp",vantage="v2"}'
        values: '1 1 1 1 1 1 1 1 1 1 1 1'
      - series: 'thongsuot_probe_success{job="thongsuot",target="a",group="vnpt",kind="tcp",vantage="v1"}'
        values: '1 0 0 0 0 0 0 0 0 0 0 0'
      - series: 'thongsuot_target_degraded{job="thongsuot",target="a",group="vnpt",kind="tcp",vantage="v1"}'
        values: '0 0 1 1 1 1 1 1 1 1 1 1'
      - series: 'thongsuot_sla_breach{job="thongsuot",target="",group="vnpt",kind="",vantage="v1",period="exam-day-1"}'
        values: '0 0 1 1 1 1 1 1 1 1 1 1'
      - series: 'thongsuot_period_active{job="thongsuot",period="exam-day-1",vantage="v1"}'
        values: '1 1 1 1 1 1 1 1 1 1 1 1'
      - series: 'thongsuot_postal_consignments{job="thongsuot",operator="vnpost",state="overdue",vantage="v1"}'
        values: '0 0 2 2 2 2 2 2 2 2 2 2'
      - series: 'thongsuot_postal_consignments{job="thongsuot",operator="vnpost",state="failed",vantage="v1"}'
        values: '0 0 0 1 1 1 1 1 1 1 1 1'
      - series: 'thongsuot_postal_consignments{job="thongsuot",operator="vnpost",state="delivered_late",vantage="v1"}'
        values: '0 0 0 0 0 0 0 0 0 0 0 0'
      - series: 'up{job="thongsuot",instance="d1"}'
        values: '1 1 1 1 0 0 0 0 0 0 0 0'
    alert_rule_test:
      - eval_time: 2m
        alertname: ThongsuotTargetDown
        exp_alerts:
          - exp_labels: {severity: breach, group: vnpt, target: a}
            exp_annotations:
              summary: "a (vnpt) is down from every vantage point"
              contingency: "Plan B: backup leased line"
              dashboard: "http://grafana.example.vn/d/thongsuot"
              status_page: "http://thongsuot.example.vn/"
              description: "Period and SLA impact: see thongsuot_sla_availability_ratio."
      - eval_time: 20s
        alertname: ThongsuotProbeFailing
        exp_alerts: []
      - eval_time: 1m
        alertname: ThongsuotProbeFailing
        exp_alerts:
          - exp_labels: {severity: breach, group: vnpt, target: a}
            exp_annotations:
              summary: "a (vnpt) fails its probes from every vantage point"
              contingency: "Plan B: backup leased line"
              dashboard: "http://grafana.example.vn/d/thongsuot"
              status_page: "http://thongsuot.example.vn/"
              description: "Period and SLA impact: see thongsuot_sla_availability_ratio."
      - eval_time: 1m
        alertname: ThongsuotTargetDegraded
        exp_alerts:
          - exp_labels: {severity: breach, group: vnpt, target: a, vantage: v1}
            exp_annotations:
              summary: "a (vnpt) is congested (packet loss or latency above thresholds)"
              contingency: "Plan B: backup leased line"
              dashboard: "http://grafana.example.vn/d/thongsuot"
              status_page: "http://thongsuot.example.vn/"
              description: "Period and SLA impact: see thongsuot_sla_availability_ratio."
      - eval_time: 1m
        alertname: ThongsuotSlaBreach
        exp_alerts:
          - exp_labels: {severity: breach, group: vnpt, job: thongsuot, vantage: v1, period: exam-day-1}
            exp_annotations:
              summary: "vnpt breaches its objective in period exam-day-1"
              contingency: "Plan B: backup leased line"
              dashboard: "http://grafana.example.vn/d/thongsuot"
      - eval_time: 1m
        alertname: ThongsuotWatchdog
        exp_alerts:
          - exp_labels: {severity: none}
            exp_annotations:
              summary: "Always firing: if this stops arriving, the alerting pipeline is broken."
      - eval_time: 1m
        alertname: ThongsuotConsignmentsOverdue
        exp_alerts:
          - exp_labels: {severity: breach, group: vnpost, operator: vnpost}
            exp_annotations:
              summary: "2 consignment(s) of vnpost are past their deadline, not delivered"
              description: "The list: GET /api/v1/consignments?state=… on the daemon."
              status_page: "http://thongsuot.example.vn/"
      - eval_time: 1m
        alertname: ThongsuotConsignmentFailed
        exp_alerts:
          - exp_labels: {severity: breach, group: vnpost, job: thongsuot, operator: vnpost, state: failed, vantage: v1}
            exp_annotations:
              summary: "a consignment of vnpost was lost, returned or damaged in the last 15 minutes"
              description: "The list: GET /api/v1/consignments?state=… on the daemon."
              status_page: "http://thongsuot.example.vn/"
      - eval_time: 1m
        alertname: ThongsuotConsignmentDeliveredLate
        exp_alerts: []
      - eval_time: 2m
        alertname: ThongsuotDown
        exp_alerts:
          - exp_labels: {severity: breach, job: thongsuot, instance: d1}
            exp_annotations:
              summary: "A thongsuot daemon is not being scraped: nothing is watched from there."
"#;

#[test]
fn generated_rules_pass_promtool_check_and_unit_tests() {
    if !require_tool("promtool", "prometheus") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("thongsuot.toml");
    std::fs::write(&cfg, CONFIG).expect("config");
    let out = Command::new(binary()).args(["rules", "--config"]).arg(&cfg).output().expect("rules");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::write(dir.path().join("rules.yml"), &out.stdout).expect("rules.yml");
    std::fs::write(dir.path().join("tests.yml"), TESTS).expect("tests.yml");

    let check = Command::new("promtool")
        .args(["check", "rules", "rules.yml"])
        .current_dir(dir.path())
        .output()
        .expect("promtool");
    assert!(
        check.status.success(),
        "promtool check rules:\n{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );

    let test = Command::new("promtool")
        .args(["test", "rules", "tests.yml"])
        .current_dir(dir.path())
        .output()
        .expect("promtool");
    assert!(
        test.status.success(),
        "promtool test rules:\n{}{}\nrules:\n{}",
        String::from_utf8_lossy(&test.stdout),
        String::from_utf8_lossy(&test.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn deploy_kit_configs_are_valid() {
    if !require_tool("promtool", "prometheus") || !require_tool("amtool", "prometheus-alertmanager") {
        return;
    }
    // prometheus.yml loads the rules generated next to it.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(repo_path("deploy/prometheus.yml"), dir.path().join("prometheus.yml")).expect("copy");
    let rules =
        Command::new(binary()).args(["rules", "--config"]).arg(repo_path("config/demo.toml")).output().expect("rules");
    assert!(rules.status.success());
    std::fs::write(dir.path().join("thongsuot-rules.yml"), &rules.stdout).expect("rules file");
    let out = Command::new("promtool")
        .args(["check", "config", "prometheus.yml"])
        .current_dir(dir.path())
        .output()
        .expect("promtool");
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));

    let out = Command::new("amtool")
        .args(["check-config"])
        .arg(repo_path("deploy/alertmanager.yml"))
        .output()
        .expect("amtool");
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // A breach of group vnpt reaches the NOC and the Department; the watchdog does not.
    let route = |labels: &[&str]| {
        let out = Command::new("amtool")
            .args(["config", "routes", "test", "--config.file"])
            .arg(repo_path("deploy/alertmanager.yml"))
            .args(labels)
            .output()
            .expect("amtool routes");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(route(&["alertname=ThongsuotTargetDown", "severity=breach", "group=vnpt"]), "noc-and-department");
    assert_eq!(route(&["alertname=ThongsuotWatchdog", "severity=none"]), "deadmans-switch");
}
