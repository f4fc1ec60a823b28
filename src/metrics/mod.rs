//! The metrics: one `Metrics` struct registered once and passed in. Daemon-wide families live
//! in a prometheus-crate registry; per-target series live in a compact [`table::Table`] and each
//! target holds its own cell ([`TargetMetrics`]), so the probe path does no label lookups.

mod out;
mod sla_series;
pub mod table;

pub use out::Out;
pub use sla_series::SlaSeries;

use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

use crate::probe::Outcome;

pub struct Metrics {
    pub registry: Registry,
    per_target_histograms: bool,
    /// Per-target series (rendered by [`table::Table`], not the registry).
    pub per_target: table::Table,
    /// The SLA series of the last evaluation (targets and groups), rendered like the table.
    pub sla: SlaSeries,
    pub scheduler_lag: Histogram,
    pub probes_skipped: IntCounter,
    pub probes_late: IntCounter,
    pub probe_panics: IntCounter,
    pub probes_in_flight: IntGauge,
    pub targets: IntGaugeVec,
    pub config_reload_success: IntGauge,
    pub config_reload_timestamp: Gauge,
    pub events_dropped: IntCounter,
    pub period_active: IntGaugeVec,
    pub store_errors: IntCounter,
    pub sla_eval_seconds: Gauge,
    pub notifications: IntCounterVec,
    pub outbox_pending: IntGauge,
    pub notification_latency: Histogram,
    pub call_setup: HistogramVec,
    pub call_post_dial: HistogramVec,
    pub sms_delivery: HistogramVec,
    pub sms_dlr: HistogramVec,
    pub postal_consignments: IntGaugeVec,
    pub postal_on_time: GaugeVec,
    pub postal_warnings: IntGaugeVec,
    pub postal_delivery: HistogramVec,
    pub postal_requests: IntCounterVec,
    pub postal_csv_errors: IntGauge,
    pub monitor_faults: IntCounterVec,
}

#[derive(Debug, thiserror::Error)]
#[error("metrics registry: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help)
}

impl Metrics {
    pub fn new(vantage: &str, per_target_histograms: bool) -> Result<Metrics, MetricsError> {
        let registry = Registry::new();
        let m = Metrics {
            per_target_histograms,
            per_target: table::Table::default(),
            sla: SlaSeries::default(),
            scheduler_lag: Histogram::with_opts(
                HistogramOpts::new("thongsuot_scheduler_lag_seconds", "Actual minus planned start of each probe.")
                    .buckets(vec![0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            )?,
            probes_skipped: IntCounter::with_opts(opts(
                "thongsuot_probes_skipped_total",
                "Planned probes skipped because the daemon could not run them on time.",
            ))?,
            probes_late: IntCounter::with_opts(opts(
                "thongsuot_probes_late_total",
                "Probes that started more than 1 s after their planned slot.",
            ))?,
            probe_panics: IntCounter::with_opts(opts(
                "thongsuot_probe_panics_total",
                "Probes that ended in an internal error (a bug): their slots are unobserved, not failures.",
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
            period_active: IntGaugeVec::new(
                opts(
                    "thongsuot_period_active",
                    "1 while the period is in force (last-24h always), 0 once it has ended.",
                ),
                &["period", "vantage"],
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
            call_setup: HistogramVec::new(
                HistogramOpts::new("thongsuot_call_setup_seconds", "Test calls: INVITE to answer (200 OK).")
                    .buckets(vec![0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 30.0]),
                &["target", "group", "vantage"],
            )?,
            call_post_dial: HistogramVec::new(
                HistogramOpts::new(
                    "thongsuot_call_post_dial_delay_seconds",
                    "Test calls: INVITE to the first 180 Ringing or 183 Session Progress.",
                )
                .buckets(vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0]),
                &["target", "group", "vantage"],
            )?,
            sms_delivery: HistogramVec::new(
                HistogramOpts::new(
                    "thongsuot_sms_delivery_seconds",
                    "Test messages: submit to delivery (arrival at the test SIM, or the delivery report when that alone confirms).",
                )
                .buckets(vec![1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0]),
                &["target", "group", "vantage"],
            )?,
            sms_dlr: HistogramVec::new(
                HistogramOpts::new(
                    "thongsuot_sms_delivery_report_seconds",
                    "Test messages: submit to the gateway's delivery report saying delivered.",
                )
                .buckets(vec![1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0]),
                &["target", "group", "vantage"],
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
            monitor_faults: IntCounterVec::new(
                opts(
                    "thongsuot_monitor_faults_total",
                    "Slots in which the monitor itself could not observe the target (fault: setup, panic): unobserved, not the target's failure.",
                ),
                &["target", "group", "kind", "vantage", "fault"],
            )?,
            registry,
        };
        let build = IntGaugeVec::new(
            opts("thongsuot_build_info", "Build of the running daemon (always 1)."),
            &["version", "vantage"],
        )?;
        build.with_label_values(&[env!("CARGO_PKG_VERSION"), vantage]).set(1);
        let r = &m.registry;
        r.register(Box::new(build))?;
        r.register(Box::new(m.scheduler_lag.clone()))?;
        r.register(Box::new(m.probes_skipped.clone()))?;
        r.register(Box::new(m.probes_late.clone()))?;
        r.register(Box::new(m.probe_panics.clone()))?;
        r.register(Box::new(m.probes_in_flight.clone()))?;
        r.register(Box::new(m.targets.clone()))?;
        r.register(Box::new(m.config_reload_success.clone()))?;
        r.register(Box::new(m.config_reload_timestamp.clone()))?;
        r.register(Box::new(m.events_dropped.clone()))?;
        r.register(Box::new(m.period_active.clone()))?;
        r.register(Box::new(m.store_errors.clone()))?;
        r.register(Box::new(m.sla_eval_seconds.clone()))?;
        r.register(Box::new(m.notifications.clone()))?;
        r.register(Box::new(m.outbox_pending.clone()))?;
        r.register(Box::new(m.notification_latency.clone()))?;
        r.register(Box::new(m.call_setup.clone()))?;
        r.register(Box::new(m.monitor_faults.clone()))?;
        r.register(Box::new(m.call_post_dial.clone()))?;
        r.register(Box::new(m.sms_delivery.clone()))?;
        r.register(Box::new(m.sms_dlr.clone()))?;
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

    /// Prepares the series of one target. They appear at its first result, so a target never
    /// shows `probe_success 0` or `target_up 0` before it was probed.
    pub fn target(&self, target: &str, group: &str, kind: &'static str, vantage: &str) -> TargetMetrics {
        TargetMetrics { cell: self.per_target.add([target, group, kind, vantage], self.per_target_histograms) }
    }

    /// Records one probe outcome for a target.
    pub fn observe(&self, tm: &mut TargetMetrics, outcome: &Outcome) {
        let c = &tm.cell;
        c.probe(outcome.failure.as_ref().map(|f| f.kind), outcome.elapsed.as_secs_f64());
        for (phase, d) in outcome.phases.iter() {
            c.phase(phase, d.as_secs_f64());
        }
        if let Some(expiry) = outcome.cert_expiry {
            c.cert_expiry(expiry as f64);
        }
        if let Some(e) = &outcome.echo {
            c.icmp(e.loss_ratio(), e.rtt_avg.map(|r| r.as_secs_f64()));
        }
        if let Some(call) = &outcome.call {
            let [t, g, _, v] = c.values();
            if let Some(s) = call.setup {
                self.call_setup.with_label_values(&[t, g, v]).observe(s.as_secs_f64());
            }
            if let Some(p) = call.post_dial_delay {
                self.call_post_dial.with_label_values(&[t, g, v]).observe(p.as_secs_f64());
            }
        }
        if let Some(sms) = &outcome.sms {
            let [t, g, _, v] = c.values();
            if let (Some(d), None) = (sms.delivered, &outcome.failure) {
                self.sms_delivery.with_label_values(&[t, g, v]).observe(d.as_secs_f64());
            }
            if let Some(d) = sms.dlr {
                self.sms_dlr.with_label_values(&[t, g, v]).observe(d.as_secs_f64());
            }
        }
    }

    /// Records what the state machine made of the result: health, downtime, flaps.
    pub fn observe_state(&self, tm: &mut TargetMetrics, up: Option<bool>, downtime: std::time::Duration, flap: bool) {
        // `target_up` appears only once there is a verdict: an unconfirmed failure run at
        // start-up must not read as an outage.
        if let Some(up) = up {
            tm.cell.up(up);
        }
        if !downtime.is_zero() {
            tm.cell.add_downtime(downtime.as_secs_f64());
        }
        if flap {
            tm.cell.add_flaps(1);
        }
    }

    /// Continues the counters of a target from what the store kept across restarts.
    pub fn restore_counters(&self, tm: &TargetMetrics, downtime: std::time::Duration, flaps: u64) {
        if !downtime.is_zero() {
            tm.cell.add_downtime(downtime.as_secs_f64());
        }
        if flaps > 0 {
            tm.cell.add_flaps(flaps);
        }
    }

    pub fn observe_uplink(&self, tm: &mut TargetMetrics, source: &str, ok: bool) {
        tm.cell.uplink(source, ok);
    }

    /// Counts a slot the monitor could not observe (`fault`: setup, panic).
    pub fn monitor_fault(&self, tm: &TargetMetrics, fault: &str) {
        let [t, g, k, v] = tm.cell.values();
        self.monitor_faults.with_label_values(&[t, g, k, v, fault]).inc();
    }

    pub fn set_degraded(&self, tm: &TargetMetrics, degraded: bool) {
        tm.cell.degraded(degraded);
    }

    /// Drops every series of a target that left the config.
    pub fn remove_target(&self, tm: &TargetMetrics) {
        self.per_target.remove(&tm.cell);
        let [t, g, _, v] = tm.cell.values();
        let _ = self.call_setup.remove_label_values(&[t, g, v]);
        let _ = self.call_post_dial.remove_label_values(&[t, g, v]);
        let _ = self.sms_delivery.remove_label_values(&[t, g, v]);
        let _ = self.sms_dlr.remove_label_values(&[t, g, v]);
        let [t, g, k, v] = tm.cell.values();
        for fault in ["setup", "panic"] {
            let _ = self.monitor_faults.remove_label_values(&[t, g, k, v, fault]);
        }
    }

    /// The text exposition format: the registry's families, then the per-target ones.
    pub fn render(&self) -> String {
        let mut out = Out::default();
        self.render_into(&mut out);
        out.finish()
    }

    /// The same, into `out` (which may hand it on in chunks as it goes).
    pub fn render_into(&self, out: &mut Out) {
        let mut buf = Vec::with_capacity(64 * 1024);
        let families = self.registry.gather();
        if let Err(e) = TextEncoder::new().encode(&families, &mut buf) {
            tracing::error!("cannot encode metrics: {e}");
        }
        let _ = std::fmt::Write::write_str(out, &String::from_utf8_lossy(&buf));
        self.per_target.render(out);
        self.sla.render(out);
    }
}

/// One target's series.
pub struct TargetMetrics {
    cell: std::sync::Arc<table::Cell>,
}

impl TargetMetrics {
    pub fn has_labels(&self, target: &str, group: &str, kind: &str, vantage: &str) -> bool {
        self.cell.has_labels([target, group, kind, vantage])
    }
}
