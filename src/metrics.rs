//! The Prometheus registry: one `Metrics` struct registered once and passed in. Per-target
//! handles are resolved once per target ([`TargetMetrics`]) so the probe path does no label
//! lookups.

use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

use crate::probe::{FailureKind, Outcome, Phase};

const TARGET_LABELS: [&str; 4] = ["target", "group", "kind", "vantage"];

pub struct Metrics {
    pub registry: Registry,
    per_target_histograms: bool,
    probe_success: GaugeVec,
    probe_duration: HistogramVec,
    probe_last_duration: GaugeVec,
    probe_phase: GaugeVec,
    probes_total: IntCounterVec,
    target_up: IntGaugeVec,
    downtime: prometheus::CounterVec,
    flaps: IntCounterVec,
    icmp_loss: GaugeVec,
    icmp_rtt: GaugeVec,
    cert_expiry: GaugeVec,
    uplink_success: GaugeVec,
    pub scheduler_lag: Histogram,
    pub probes_skipped: IntCounter,
    pub probes_in_flight: IntGauge,
    pub targets: IntGaugeVec,
    pub config_reload_success: IntGauge,
    pub config_reload_timestamp: Gauge,
    pub events_dropped: IntCounter,
    degraded: IntGaugeVec,
    pub sla_availability: GaugeVec,
    pub sla_coverage: GaugeVec,
    pub sla_breach: IntGaugeVec,
    pub period_active: IntGaugeVec,
    pub sla_budget: GaugeVec,
    pub store_errors: IntCounter,
    pub sla_eval_seconds: Gauge,
    pub notifications: IntCounterVec,
    pub outbox_pending: IntGauge,
    pub notification_latency: Histogram,
    pub postal_consignments: IntGaugeVec,
    pub postal_on_time: GaugeVec,
    pub postal_warnings: IntGaugeVec,
    pub postal_delivery: HistogramVec,
    pub postal_requests: IntCounterVec,
    pub postal_csv_errors: IntGauge,
}

/// Labels of the SLA series: a target's (with `group`), or a group's (`target=""`, `kind=""`).
pub const SLA_LABELS: [&str; 5] = ["target", "group", "kind", "vantage", "period"];

#[derive(Debug, thiserror::Error)]
#[error("metrics registry: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help)
}

impl Metrics {
    pub fn new(vantage: &str, per_target_histograms: bool) -> Result<Metrics, MetricsError> {
        let registry = Registry::new();
        let probe_buckets = vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
        let m = Metrics {
            per_target_histograms,
            probe_success: GaugeVec::new(
                opts("thongsuot_probe_success", "1 if the last probe of the target succeeded, else 0."),
                &TARGET_LABELS,
            )?,
            probe_duration: HistogramVec::new(
                HistogramOpts::new("thongsuot_probe_duration_seconds", "Duration of probes, start to verdict.")
                    .buckets(probe_buckets),
                &TARGET_LABELS,
            )?,
            probe_last_duration: GaugeVec::new(
                opts("thongsuot_probe_last_duration_seconds", "Duration of the last probe of the target."),
                &TARGET_LABELS,
            )?,
            probe_phase: GaugeVec::new(
                opts(
                    "thongsuot_probe_phase_duration_seconds",
                    "Duration of each phase of the last probe (resolve, connect, tls, processing, transfer, setup, rtt).",
                ),
                &["target", "group", "kind", "vantage", "phase"],
            )?,
            probes_total: IntCounterVec::new(
                opts("thongsuot_probes_total", "Probes run, by result: success or the failure reason."),
                &["target", "group", "kind", "vantage", "result"],
            )?,
            target_up: IntGaugeVec::new(
                opts("thongsuot_target_up", "1 while the target is up, 0 while a confirmed outage is open."),
                &TARGET_LABELS,
            )?,
            downtime: prometheus::CounterVec::new(
                opts(
                    "thongsuot_target_downtime_seconds_total",
                    "Confirmed downtime, backdated to the first failed probe of each outage.",
                ),
                &TARGET_LABELS,
            )?,
            flaps: IntCounterVec::new(
                opts("thongsuot_target_flaps_total", "Failure runs shorter than `confirm` (not outages)."),
                &TARGET_LABELS,
            )?,
            icmp_loss: GaugeVec::new(
                opts(
                    "thongsuot_icmp_packet_loss_ratio",
                    "Share of echo requests of the last ICMP probe left unanswered.",
                ),
                &TARGET_LABELS,
            )?,
            uplink_success: GaugeVec::new(
                opts(
                    "thongsuot_uplink_probe_success",
                    "1 if the last probe through this uplink (source address) succeeded.",
                ),
                &["target", "group", "kind", "vantage", "source"],
            )?,
            cert_expiry: GaugeVec::new(
                opts(
                    "thongsuot_tls_cert_expiry_timestamp_seconds",
                    "When the peer's leaf certificate expires (tls and https targets).",
                ),
                &TARGET_LABELS,
            )?,
            icmp_rtt: GaugeVec::new(
                opts("thongsuot_icmp_rtt_seconds", "Mean round-trip time of the echo replies of the last ICMP probe."),
                &TARGET_LABELS,
            )?,
            scheduler_lag: Histogram::with_opts(
                HistogramOpts::new("thongsuot_scheduler_lag_seconds", "Actual minus planned start of each probe.")
                    .buckets(vec![0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            )?,
            probes_skipped: IntCounter::with_opts(opts(
                "thongsuot_probes_skipped_total",
                "Planned probes skipped because the daemon could not run them on time.",
            ))?,
            probes_in_flight: IntGauge::with_opts(opts("thongsuot_probes_in_flight", "Probes running now."))?,
            targets: IntGaugeVec::new(opts("thongsuot_targets", "Targets probed by this daemon, by kind."), &["kind"])?,
            config_reload_success: IntGauge::with_opts(opts(
                "thongsuot_config_last_reload_success",
                "1 if the last config (re)load succeeded.",
            ))?,
            config_reload_timestamp: Gauge::with_opts(opts(
                "thongsuot_config_last_reload_success_timestamp_seconds",
                "When the config was last loaded successfully (Unix time).",
            ))?,
            events_dropped: IntCounter::with_opts(opts(
                "thongsuot_events_dropped_total",
                "State events dropped because their consumer was stalled.",
            ))?,
            degraded: IntGaugeVec::new(
                opts(
                    "thongsuot_target_degraded",
                    "1 while the target is congested: loss or p95 latency over its thresholds in the sliding window.",
                ),
                &TARGET_LABELS,
            )?,
            sla_availability: GaugeVec::new(
                opts(
                    "thongsuot_sla_availability_ratio",
                    "Availability over observed time in the period (group series have target=\"\").",
                ),
                &SLA_LABELS,
            )?,
            sla_coverage: GaugeVec::new(
                opts(
                    "thongsuot_sla_coverage_ratio",
                    "Observed time / elapsed time of the period: time the monitor was not running is unobserved.",
                ),
                &SLA_LABELS,
            )?,
            sla_breach: IntGaugeVec::new(
                opts(
                    "thongsuot_sla_breach",
                    "1 if the objective of the period is breached (availability, max outage, or congestion at 100 %).",
                ),
                &SLA_LABELS,
            )?,
            period_active: IntGaugeVec::new(
                opts(
                    "thongsuot_period_active",
                    "1 while the period is in force (last-24h always), 0 once it has ended.",
                ),
                &["period", "vantage"],
            )?,
            sla_budget: GaugeVec::new(
                opts(
                    "thongsuot_sla_error_budget_remaining_ratio",
                    "Share of the error budget left in the period (objectives below 100 % only).",
                ),
                &SLA_LABELS,
            )?,
            store_errors: IntCounter::with_opts(opts(
                "thongsuot_store_errors_total",
                "Failed writes to the embedded store (retried).",
            ))?,
            sla_eval_seconds: Gauge::with_opts(opts(
                "thongsuot_sla_evaluation_duration_seconds",
                "Time the last SLA evaluation took.",
            ))?,
            notifications: IntCounterVec::new(
                opts(
                    "thongsuot_notifications_total",
                    "E-mail delivery attempts by result: sent, retry (transient failure), failed (permanent).",
                ),
                &["result"],
            )?,
            outbox_pending: IntGauge::with_opts(opts(
                "thongsuot_outbox_pending",
                "E-mails in the outbox waiting to be accepted by the SMTP server.",
            ))?,
            notification_latency: Histogram::with_opts(
                HistogramOpts::new(
                    "thongsuot_notification_latency_seconds",
                    "From an incident's confirmation to the SMTP server accepting its first e-mail.",
                )
                .buckets(vec![0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0]),
            )?,
            postal_consignments: IntGaugeVec::new(
                opts(
                    "thongsuot_postal_consignments",
                    "Registered consignments by operator and SLA state (on_track, delivered_on_time, delivered_late, overdue, failed, unknown).",
                ),
                &["operator", "state", "vantage"],
            )?,
            postal_on_time: GaugeVec::new(
                opts(
                    "thongsuot_postal_on_time_ratio",
                    "Delivered on time / consignments whose outcome is known (delivered, failed or overdue).",
                ),
                &["operator", "vantage"],
            )?,
            postal_warnings: IntGaugeVec::new(
                opts(
                    "thongsuot_postal_warnings",
                    "Consignments on track with an early warning: stale (no event for stale_after) or at_risk.",
                ),
                &["operator", "warning", "vantage"],
            )?,
            postal_delivery: HistogramVec::new(
                HistogramOpts::new(
                    "thongsuot_postal_delivery_seconds",
                    "Accepted to delivered, for consignments seen delivered by this daemon.",
                )
                .buckets(vec![
                    3600.0,
                    4.0 * 3600.0,
                    8.0 * 3600.0,
                    12.0 * 3600.0,
                    86400.0,
                    1.5 * 86400.0,
                    2.0 * 86400.0,
                    3.0 * 86400.0,
                    5.0 * 86400.0,
                    7.0 * 86400.0,
                    14.0 * 86400.0,
                ]),
                &["operator", "vantage"],
            )?,
            postal_requests: IntCounterVec::new(
                opts(
                    "thongsuot_postal_tracking_requests_total",
                    "Tracking API requests by result: ok, or the failure reason.",
                ),
                &["operator", "result", "vantage"],
            )?,
            postal_csv_errors: IntGauge::with_opts(opts(
                "thongsuot_postal_csv_errors",
                "Rows of the consignments CSV file that could not be loaded at its last reading.",
            ))?,
            registry,
        };
        let build = IntGaugeVec::new(
            opts("thongsuot_build_info", "Build of the running daemon (always 1)."),
            &["version", "vantage"],
        )?;
        build.with_label_values(&[env!("CARGO_PKG_VERSION"), vantage]).set(1);
        let r = &m.registry;
        r.register(Box::new(build))?;
        r.register(Box::new(m.probe_success.clone()))?;
        r.register(Box::new(m.probe_duration.clone()))?;
        r.register(Box::new(m.probe_last_duration.clone()))?;
        r.register(Box::new(m.probe_phase.clone()))?;
        r.register(Box::new(m.probes_total.clone()))?;
        r.register(Box::new(m.target_up.clone()))?;
        r.register(Box::new(m.downtime.clone()))?;
        r.register(Box::new(m.flaps.clone()))?;
        r.register(Box::new(m.icmp_loss.clone()))?;
        r.register(Box::new(m.icmp_rtt.clone()))?;
        r.register(Box::new(m.cert_expiry.clone()))?;
        r.register(Box::new(m.uplink_success.clone()))?;
        r.register(Box::new(m.scheduler_lag.clone()))?;
        r.register(Box::new(m.probes_skipped.clone()))?;
        r.register(Box::new(m.probes_in_flight.clone()))?;
        r.register(Box::new(m.targets.clone()))?;
        r.register(Box::new(m.config_reload_success.clone()))?;
        r.register(Box::new(m.config_reload_timestamp.clone()))?;
        r.register(Box::new(m.events_dropped.clone()))?;
        r.register(Box::new(m.degraded.clone()))?;
        r.register(Box::new(m.sla_availability.clone()))?;
        r.register(Box::new(m.sla_coverage.clone()))?;
        r.register(Box::new(m.sla_breach.clone()))?;
        r.register(Box::new(m.period_active.clone()))?;
        r.register(Box::new(m.sla_budget.clone()))?;
        r.register(Box::new(m.store_errors.clone()))?;
        r.register(Box::new(m.sla_eval_seconds.clone()))?;
        r.register(Box::new(m.notifications.clone()))?;
        r.register(Box::new(m.outbox_pending.clone()))?;
        r.register(Box::new(m.notification_latency.clone()))?;
        r.register(Box::new(m.postal_consignments.clone()))?;
        r.register(Box::new(m.postal_on_time.clone()))?;
        r.register(Box::new(m.postal_warnings.clone()))?;
        r.register(Box::new(m.postal_delivery.clone()))?;
        r.register(Box::new(m.postal_requests.clone()))?;
        r.register(Box::new(m.postal_csv_errors.clone()))?;
        for result in ["sent", "retry", "failed"] {
            m.notifications.with_label_values(&[result]);
        }
        #[cfg(target_os = "linux")]
        r.register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))?;
        Ok(m)
    }

    /// Prepares the handles of one target. Series are created at its first result, so a
    /// target never shows `probe_success 0` or `target_up 0` before it was probed.
    pub fn target(&self, target: &str, group: &str, kind: &'static str, vantage: &str) -> TargetMetrics {
        TargetMetrics {
            labels: [target.to_string(), group.to_string(), kind.to_string(), vantage.to_string()],
            handles: None,
            is_icmp: kind == "icmp",
            uplinks: Vec::new(),
            up: None,
        }
    }

    fn handles<'a>(&self, tm: &'a mut TargetMetrics) -> &'a Handles {
        let labels = &tm.labels;
        tm.handles.get_or_insert_with(|| {
            let [t, g, k, v] = labels;
            let l = [t.as_str(), g.as_str(), k.as_str(), v.as_str()];
            Handles {
                success: self.probe_success.with_label_values(&l),
                duration: self.per_target_histograms.then(|| self.probe_duration.with_label_values(&l)),
                last_duration: self.probe_last_duration.with_label_values(&l),
                ok_total: self.probes_total.with_label_values(&[t, g, k, v, "success"]),
                downtime: self.downtime.with_label_values(&l),
                flaps: self.flaps.with_label_values(&l),
            }
        })
    }

    /// Records one probe outcome for a target.
    pub fn observe(&self, tm: &mut TargetMetrics, outcome: &Outcome) {
        let secs = outcome.elapsed.as_secs_f64();
        let h = self.handles(tm);
        h.success.set(if outcome.ok() { 1.0 } else { 0.0 });
        h.last_duration.set(secs);
        if let Some(d) = &h.duration {
            d.observe(secs);
        }
        if outcome.ok() {
            h.ok_total.inc();
        }
        let [t, g, k, v] = &tm.labels;
        if let Some(f) = &outcome.failure {
            self.probes_total.with_label_values(&[t, g, k, v, f.kind.label()]).inc();
        }
        for (phase, d) in outcome.phases.iter() {
            self.probe_phase.with_label_values(&[t, g, k, v, phase.label()]).set(d.as_secs_f64());
        }
        if let Some(expiry) = outcome.cert_expiry {
            self.cert_expiry.with_label_values(&[t, g, k, v]).set(expiry as f64);
        }
        if let Some(e) = &outcome.echo {
            self.icmp_loss.with_label_values(&[t, g, k, v]).set(e.loss_ratio());
            if let Some(rtt) = e.rtt_avg {
                self.icmp_rtt.with_label_values(&[t, g, k, v]).set(rtt.as_secs_f64());
            }
        }
    }

    /// Records what the state machine made of the result: health, downtime, flaps.
    pub fn observe_state(&self, tm: &mut TargetMetrics, up: Option<bool>, downtime: std::time::Duration, flap: bool) {
        // `target_up` appears only once there is a verdict: an unconfirmed failure run at
        // start-up must not read as an outage.
        if let Some(up) = up {
            let labels = &tm.labels;
            let gauge = tm.up.get_or_insert_with(|| {
                let [t, g, k, v] = labels;
                self.target_up.with_label_values(&[t, g, k, v])
            });
            gauge.set(i64::from(up));
        }
        let h = self.handles(tm);
        if !downtime.is_zero() {
            h.downtime.inc_by(downtime.as_secs_f64());
        }
        if flap {
            h.flaps.inc();
        }
    }

    /// Continues the counters of a target from what the store kept across restarts.
    pub fn restore_counters(&self, tm: &TargetMetrics, downtime: std::time::Duration, flaps: u64) {
        let [t, g, k, v] = &tm.labels;
        let l = [t.as_str(), g.as_str(), k.as_str(), v.as_str()];
        if !downtime.is_zero() {
            self.downtime.with_label_values(&l).inc_by(downtime.as_secs_f64());
        }
        if flaps > 0 {
            self.flaps.with_label_values(&l).inc_by(flaps);
        }
    }

    pub fn observe_uplink(&self, tm: &mut TargetMetrics, source: &str, ok: bool) {
        if !tm.uplinks.iter().any(|s| s == source) {
            tm.uplinks.push(source.to_string());
        }
        let [t, g, k, v] = &tm.labels;
        self.uplink_success.with_label_values(&[t, g, k, v, source]).set(if ok { 1.0 } else { 0.0 });
    }

    pub fn set_degraded(&self, tm: &TargetMetrics, degraded: bool) {
        let [t, g, k, v] = &tm.labels;
        self.degraded.with_label_values(&[t, g, k, v]).set(i64::from(degraded));
    }

    /// Drops every series of a target that left the config.
    pub fn remove_target(&self, tm: &TargetMetrics) {
        let [t, g, k, v] = &tm.labels;
        let l = [t.as_str(), g.as_str(), k.as_str(), v.as_str()];
        let _ = self.probe_success.remove_label_values(&l);
        let _ = self.probe_duration.remove_label_values(&l);
        let _ = self.probe_last_duration.remove_label_values(&l);
        let _ = self.target_up.remove_label_values(&l);
        let _ = self.downtime.remove_label_values(&l);
        let _ = self.flaps.remove_label_values(&l);
        let _ = self.degraded.remove_label_values(&l);
        let _ = self.cert_expiry.remove_label_values(&l);
        for s in &tm.uplinks {
            let _ = self.uplink_success.remove_label_values(&[t, g, k, v, s]);
        }
        if tm.is_icmp {
            let _ = self.icmp_loss.remove_label_values(&l);
            let _ = self.icmp_rtt.remove_label_values(&l);
        }
        for p in Phase::ALL {
            let _ = self.probe_phase.remove_label_values(&[t, g, k, v, p.label()]);
        }
        let _ = self.probes_total.remove_label_values(&[t, g, k, v, "success"]);
        for f in FailureKind::ALL {
            let _ = self.probes_total.remove_label_values(&[t, g, k, v, f.label()]);
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::with_capacity(64 * 1024);
        let families = self.registry.gather();
        if let Err(e) = TextEncoder::new().encode(&families, &mut buf) {
            tracing::error!("cannot encode metrics: {e}");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// One target's metric handles, resolved at its first result.
pub struct TargetMetrics {
    labels: [String; 4],
    handles: Option<Handles>,
    is_icmp: bool,
    /// Uplink sources that have a series (to remove them with the target).
    uplinks: Vec<String>,
    /// `target_up`, created at the first verdict and kept (no label lookup per probe).
    up: Option<IntGauge>,
}

impl TargetMetrics {
    pub fn has_labels(&self, target: &str, group: &str, kind: &str, vantage: &str) -> bool {
        self.labels == [target, group, kind, vantage]
    }
}

struct Handles {
    success: Gauge,
    duration: Option<Histogram>,
    last_duration: Gauge,
    ok_total: IntCounter,
    downtime: prometheus::Counter,
    flaps: IntCounter,
}
