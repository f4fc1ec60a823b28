//! The SLA states evaluated, and what changed turned into e-mails and metrics.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};

use super::{Tracker, blocking};
use crate::config::{Config, Language, Severity};
use crate::model::notice::Outgoing;
use crate::postal::mail::{self, News};
use crate::postal::{Consignment, SlaState, Warning};

impl Tracker {
    /// Evaluates every consignment, updates the metrics, and queues e-mails about what changed.
    pub(super) async fn evaluate(&self) {
        let config = self.config.borrow().clone();
        let Some(postal) = config.postal.as_ref() else { return };
        let now = Utc::now();
        let now_ms = now.timestamp_millis();
        let (stale, risk) = (postal.stale_after.as_millis() as i64, postal.at_risk_before.as_millis() as i64);
        // (tracking, state, warning, notified, notified_ms) to store; news per operator.
        let mut updates = Vec::new();
        let mut news: BTreeMap<String, Vec<(News, Consignment)>> = BTreeMap::new();
        {
            let mut st = self.lock();
            st.dirty = false;
            // An operator's news waits for the end of its polling round: one e-mail per round.
            let busy = st.polling.clone();
            for c in st.items.values_mut() {
                let (state, warning) = c.evaluate(now_ms, stale, risk);
                let changed_state = (state, warning) != (c.state, c.warning);
                c.state = state;
                c.warning = warning;
                let key = c.news_key();
                let mut notified = c.notified.clone();
                let mut notified_ms = c.notified_ms;
                let group = postal.operator(&c.operator).map_or(c.operator.as_str(), |o| o.group.as_str());
                // Not tracked yet: its first answer may change the news (and joins its round's e-mail).
                let untracked = c.last_poll_ms.is_none() && c.last_ok_ms.is_none();
                let silenced = || config.in_maintenance("", group, now) || busy.contains(&c.operator) || untracked;
                if notified.as_deref() != Some(key.as_str()) {
                    let previous_news = notified.as_deref().is_some_and(|k| k != "on_track" && k != "unknown");
                    let item = if state.is_breach() {
                        Some(News::Breach)
                    } else if warning.is_some() {
                        Some(News::Warning)
                    } else if previous_news && state == SlaState::DeliveredOnTime {
                        Some(News::Cleared)
                    } else {
                        None
                    };
                    match item {
                        Some(_) if silenced() => {}
                        Some(n) => {
                            news.entry(c.operator.clone()).or_default().push((n, c.clone()));
                            notified = Some(key);
                            notified_ms = Some(now_ms);
                        }
                        // Nothing to tell (on track, unknown): remember quietly, except that an
                        // unknown spell does not erase what was told.
                        None if state != SlaState::Unknown => notified = Some(key),
                        None => {}
                    }
                } else if state == SlaState::Overdue && c.wants_polling(now_ms) {
                    // Told already, and still not delivered: the papers are still missing, and
                    // the e-mail is repeated every `repeat_interval` until they are (or until it
                    // is no longer tracked, a month past its deadline).
                    let repeat = config.group(group).map_or(config.defaults.repeat_interval, |g| g.repeat_interval);
                    match notified_ms {
                        // Told by a version that did not keep the time: counted from now.
                        None => notified_ms = Some(now_ms),
                        Some(t) if now_ms - t >= repeat.as_millis() as i64 && !silenced() => {
                            news.entry(c.operator.clone()).or_default().push((News::Reminder, c.clone()));
                            notified_ms = Some(now_ms);
                        }
                        Some(_) => {}
                    }
                }
                if changed_state || notified != c.notified || notified_ms != c.notified_ms {
                    c.notified = notified.clone();
                    c.notified_ms = notified_ms;
                    updates.push((c.tracking.clone(), state, warning, notified, notified_ms));
                }
            }
        }
        self.update_metrics(&config);
        if updates.is_empty() {
            return;
        }
        let mails = self.compose(&config, &news, now);
        let n_mails = mails.len();
        match blocking(&self.db, move |db| db.save_states(&updates, &mails, now_ms)).await {
            Ok(()) => {
                if n_mails > 0 {
                    for (op, items) in &news {
                        tracing::warn!(operator = %op, consignments = items.len(), e_mails = n_mails, "postal breaches/warnings queued");
                    }
                    self.wake_sender.notify_one();
                }
            }
            Err(e) => {
                // Not marked told either: the next evaluation tries again.
                self.metrics.store_errors.inc();
                let mut st = self.lock();
                for items in news.values() {
                    for (_, c) in items {
                        // Back to what was told before (the copy was taken then): the same news
                        // (a breach, a reminder) is tried again.
                        if let Some(x) = st.items.get_mut(&c.tracking) {
                            x.notified = c.notified.clone();
                            x.notified_ms = c.notified_ms;
                        }
                    }
                }
                tracing::error!("cannot store consignment states: {e}");
            }
        }
    }

    pub(super) fn update_metrics(&self, config: &Config) {
        let v = self.vantage.as_str();
        for s in self.summaries() {
            for state in SlaState::ALL {
                let n = s.states.get(state.as_str()).copied().unwrap_or(0);
                self.metrics
                    .postal_consignments
                    .with_label_values(&[s.operator.as_str(), state.as_str(), v])
                    .set(n as i64);
            }
            match s.on_time_ratio {
                Some(r) => self.metrics.postal_on_time.with_label_values(&[s.operator.as_str(), v]).set(r),
                None => {
                    let _ = self.metrics.postal_on_time.remove_label_values(&[s.operator.as_str(), v]);
                }
            }
        }
        let st = self.lock();
        for o in config.postal.iter().flat_map(|p| &p.operators) {
            for w in [Warning::Stale, Warning::AtRisk] {
                let n = st.items.values().filter(|c| c.operator == o.name && c.warning == Some(w)).count();
                self.metrics.postal_warnings.with_label_values(&[o.name.as_str(), w.as_str(), v]).set(n as i64);
            }
        }
    }

    /// One e-mail per operator and recipient, in the recipient's language.
    pub(super) fn compose(
        &self,
        config: &Config,
        news: &BTreeMap<String, Vec<(News, Consignment)>>,
        now: DateTime<Utc>,
    ) -> Vec<Outgoing> {
        let mut out = Vec::new();
        let Some(postal) = config.postal.as_ref() else { return out };
        for (operator, items) in news {
            let group_name = postal.operator(operator).map_or(operator.as_str(), |o| o.group.as_str());
            let group = config.group(group_name);
            // address -> (language, severity the address accepts, consignments it concerns (None: all))
            let mut to: BTreeMap<String, (Language, Severity, Option<HashSet<&str>>)> = BTreeMap::new();
            if let Some(g) = group {
                // Those who take warnings first: they get everything; the others breaches only.
                for sev in [Severity::Warning, Severity::Breach] {
                    for (lang, addrs) in crate::notify::recipients(config, g, sev, now, false) {
                        for a in addrs {
                            to.entry(a).or_insert((lang, sev, None));
                        }
                    }
                }
            }
            for (_, c) in items {
                for name in &c.contacts {
                    let found: Vec<(String, Language, Severity)> = if name.contains('@') {
                        vec![(name.clone(), config.daemon.language, Severity::Warning)]
                    } else {
                        config
                            .contacts
                            .iter()
                            .filter(|x| x.name == *name)
                            .flat_map(|x| x.emails.iter().map(move |e| (e.clone(), x.language, x.min_severity)))
                            .collect()
                    };
                    for (addr, lang, sev) in found {
                        let entry = to.entry(addr).or_insert((lang, sev, Some(HashSet::new())));
                        if let Some(set) = entry.2.as_mut() {
                            set.insert(c.tracking.as_str());
                        }
                    }
                }
            }
            if to.is_empty() {
                tracing::warn!(%operator, "postal news but no contact to tell (set contacts on the operator's group or the consignments)");
                continue;
            }
            let cx = mail::Ctx {
                operator,
                group_display: group.and_then(|g| g.display_name.as_deref()),
                contingency: group.and_then(|g| g.contingency.as_deref()),
                status_url: config.daemon.public_url.as_deref(),
                grafana_url: config.daemon.grafana_url.as_deref(),
                tz: config.daemon.timezone,
                now_ms: now.timestamp_millis(),
            };
            for (addr, (lang, sev, only)) in to {
                let mine: Vec<(News, &Consignment)> = items
                    .iter()
                    // Warnings, and the all-clear after them, only to those who take warnings.
                    .filter(|(n, _)| matches!(n, News::Breach | News::Reminder) || sev == Severity::Warning)
                    .filter(|(_, c)| only.as_ref().is_none_or(|s| s.contains(c.tracking.as_str())))
                    .map(|(n, c)| (*n, c))
                    .collect();
                if mine.is_empty() {
                    continue;
                }
                let (subject, text, html) = mail::render(&mine, &cx, lang);
                out.push(Outgoing {
                    kind: "postal",
                    incident_opened_ms: None,
                    recipients: vec![addr],
                    subject,
                    text,
                    html,
                });
            }
        }
        out
    }
}
