//! The daily summary e-mail, and the SLA figures e-mails quote (`Impact`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::outbox::with_db;
use super::render::MailKind;
use super::{Impact, Notifier, render};
use crate::config::Config;
use crate::store::notices::Outgoing;

impl Notifier {
    /// Sends each contact's daily summary once a day, at its local `daily_summary` time (and
    /// within the hour after it, so a daemon started late in the evening does not send one).
    pub(super) async fn daily_summaries(&mut self, config: &Config) {
        let tz = config.daemon.timezone;
        let now = Utc::now();
        let local = now.with_timezone(&tz);
        let today = local.date_naive();
        for c in config.contacts.iter() {
            let Some(at) = c.daily_summary else { continue };
            let Some(due) = today.and_time(at).and_local_timezone(tz).earliest() else { continue };
            let late = local.signed_duration_since(due);
            if late < chrono::Duration::zero() || late > chrono::Duration::hours(1) {
                continue;
            }
            if self.summaries.get(&c.name) == Some(&today) {
                continue;
            }
            let key = format!("summary:{}", c.name);
            let day = today.to_string();
            let (k, d2) = (key.clone(), day.clone());
            if with_db(&self.db, move |db| db.meta(&k)).await.and_then(Result::ok).flatten().as_deref()
                == Some(day.as_str())
            {
                self.summaries.insert(c.name.clone(), today);
                continue;
            }
            // The 24 hours before the summary time: a 07:00 summary covers yesterday's day too.
            let midnight = due.with_timezone(&Utc) - chrono::Duration::hours(24);
            let (cfg, path, live) = (config.clone(), self.store_path.clone(), self.run_started);
            let window = crate::sla::spans::Span::new(midnight.timestamp_millis(), now.timestamp_millis());
            let report = tokio::task::spawn_blocking(move || {
                let store = crate::store::Store::open_read_only(&path).ok()?;
                crate::report::build(&cfg, &store, "24h", window, None, now, Some(live)).ok()
            })
            .await
            .ok()
            .flatten();
            let Some(report) = report else { continue };
            let (from, to) = (window.start, window.end + 1);
            let incidents = with_db(&self.db, move |db| db.incidents_between(from, to))
                .await
                .and_then(Result::ok)
                .unwrap_or_default();
            let (subject, text, html) = render::summary(&report, &incidents, c.language, tz);
            let mail = Outgoing {
                kind: MailKind::Summary.as_str(),
                incident_opened_ms: None,
                recipients: c.emails.clone(),
                subject,
                text,
                html,
            };
            let at = now.timestamp_millis();
            let queued = with_db(&self.db, move |db| db.enqueue(&mail, at).and_then(|_| db.set_meta(&key, &d2))).await;
            match queued {
                Some(Ok(())) => {
                    self.summaries.insert(c.name.clone(), today);
                }
                Some(Err(e)) => tracing::error!("cannot queue the daily summary: {e}"),
                None => {}
            }
            self.wake_sender.notify_one();
        }
    }

    /// Availability so far and breach per target in the period in force (else the last 24 h).
    pub(super) async fn impact(&self, config: &Config, now: DateTime<Utc>) -> (String, HashMap<String, Impact>) {
        let cfg = config.clone();
        let path = self.store_path.clone();
        let live = self.run_started;
        let r = tokio::task::spawn_blocking(move || {
            let store = crate::store::Store::open_read_only(&path).ok()?;
            let (name, window, period) = crate::report::default_window(&cfg, now);
            let report = crate::report::build(&cfg, &store, &name, window, period, now, Some(live)).ok()?;
            let map = report
                .groups
                .iter()
                .flat_map(|g| {
                    g.targets.iter().map(|t| {
                        let f = &t.figures;
                        (
                            t.name.clone(),
                            Impact {
                                availability: f.availability,
                                breach: f.breach,
                                downtime_ms: f.downtime_ms,
                                observed_ms: f.observed_ms,
                                outages: f
                                    .outage_rows
                                    .iter()
                                    .map(|o| (o.start, o.observed_ms, o.unobserved_ms))
                                    .collect(),
                            },
                        )
                    })
                })
                .collect();
            Some((name, map))
        })
        .await
        .ok()
        .flatten();
        r.unwrap_or_else(|| ("last-24h".to_string(), HashMap::new()))
    }
}
