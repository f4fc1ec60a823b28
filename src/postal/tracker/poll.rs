//! Tracking in: polling rounds per operator (within its rate limit and concurrency) and
//! events pushed to the signed webhook.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::{PushError, PushResult, ROUND_MAX, Tracker, blocking, now_ms};
use crate::config::PostalOperator;
use crate::postal::adapter::{self, MAX_BODY, Parsed};
use crate::postal::{Consignment, TrackEvent, Tracking};
use crate::probe::{Failure, FailureKind};

impl Tracker {
    /// Starts a polling round for each operator that has consignments due and none in flight.
    pub(super) fn start_rounds(self: &Arc<Self>, cancel: &CancellationToken) {
        let config = self.config.borrow().clone();
        let Some(postal) = config.postal.as_ref() else { return };
        let now = now_ms();
        for op in &postal.operators {
            let due: Vec<String> = {
                let mut st = self.lock();
                if st.polling.contains(&op.name) {
                    continue;
                }
                let poll = op.poll.as_millis() as i64;
                let mut due: Vec<(i64, String)> = st
                    .items
                    .values()
                    .filter(|c| c.operator == op.name && c.wants_polling(now))
                    .filter(|c| c.last_poll_ms.is_none_or(|t| now - t >= poll))
                    .map(|c| (c.last_poll_ms.unwrap_or(0), c.tracking.clone()))
                    .collect();
                if due.is_empty() {
                    continue;
                }
                due.sort();
                due.truncate(ROUND_MAX);
                st.polling.insert(op.name.clone());
                due.into_iter().map(|(_, t)| t).collect()
            };
            let me = self.clone();
            let op = op.clone();
            let cancel = cancel.clone();
            tokio::spawn(async move {
                let name = op.name.clone();
                tokio::select! {
                    _ = cancel.cancelled() => {}
                    _ = me.round(&op, due) => {}
                }
                let mut st = me.lock();
                st.polling.remove(&name);
                st.dirty = true;
            });
        }
    }

    /// One polling round: batches of `batch_size`, at most `concurrency` in flight, request
    /// starts spaced by the rate limit.
    pub(super) async fn round(self: &Arc<Self>, op: &PostalOperator, due: Vec<String>) {
        let client = match self.client.get("") {
            Ok(c) => c,
            Err(f) => {
                tracing::error!(operator = %op.name, "cannot build the tracking client: {}", f.detail);
                return;
            }
        };
        let gap = op.rate_limit.map(|r| Duration::from_secs_f64(1.0 / r));
        let sem = Arc::new(tokio::sync::Semaphore::new(op.concurrency.max(1)));
        let mut set = tokio::task::JoinSet::new();
        let mut next_start = tokio::time::Instant::now();
        for chunk in due.chunks(op.batch_size.max(1)) {
            if let Some(g) = gap {
                tokio::time::sleep_until(next_start).await;
                next_start = tokio::time::Instant::now() + g;
            }
            let Ok(permit) = sem.clone().acquire_owned().await else { break };
            let (me, op, client, chunk) = (self.clone(), op.clone(), client.clone(), chunk.to_vec());
            set.spawn(async move {
                let _permit = permit;
                let started = Instant::now();
                let result = fetch(&client, &op, &chunk).await;
                me.apply_poll(&op, &chunk, result, started.elapsed()).await;
            });
            // Reap finished requests as we go: a long round must not hold every result.
            while set.try_join_next().is_some() {}
        }
        while set.join_next().await.is_some() {}
    }

    pub(super) async fn apply_poll(
        &self,
        op: &PostalOperator,
        chunk: &[String],
        result: Result<Vec<u8>, Failure>,
        took: Duration,
    ) {
        let tz = self.config.borrow().daemon.timezone;
        let now = now_ms();
        // Per tracking number: a parsed answer, or the reason there is none.
        let (answers, health): (Vec<adapter::Answer>, Result<(), Failure>) = match result {
            Err(f) => {
                let reason = format!("tracking API: {}", f.detail);
                (chunk.iter().map(|t| (t.clone(), Err(reason.clone()))).collect(), Err(f))
            }
            Ok(body) if op.batch_size > 1 => match adapter::parse_batch(op, &body, tz) {
                Ok(items) => {
                    let mut by: HashMap<String, Result<Parsed, String>> = items.into_iter().collect();
                    let answers = chunk
                        .iter()
                        .map(|t| {
                            let r = by.remove(t).unwrap_or_else(|| Err("not in the batch answer".into()));
                            (t.clone(), r)
                        })
                        .collect();
                    (answers, Ok(()))
                }
                Err(e) => {
                    let f = Failure::new(FailureKind::Body, e.clone());
                    (chunk.iter().map(|t| (t.clone(), Err(e.clone()))).collect(), Err(f))
                }
            },
            Ok(body) => {
                let t = chunk.first().cloned().unwrap_or_default();
                match adapter::parse(op, &body, tz) {
                    Ok(p) => (vec![(t, Ok(p))], Ok(())),
                    Err(e) => (vec![(t, Err(e.clone()))], Err(Failure::new(FailureKind::Body, e))),
                }
            }
        };
        let label = match &health {
            Ok(()) => "ok",
            Err(f) => f.kind.label(),
        };
        self.metrics.postal_requests.with_label_values(&[op.name.as_str(), label, self.vantage.as_str()]).inc();
        if let Err(f) = &health {
            tracing::debug!(operator = %op.name, "tracking request failed: {f}");
        }
        // A number the operator does not know is not the API's failure.
        let health = match health {
            Err(f) if f.kind == FailureKind::Answer => Ok(()),
            h => h,
        };
        self.health.record(&op.name, chunk.first().map_or("", String::as_str), took, health);

        let mut saves = Vec::new();
        {
            let mut st = self.lock();
            for (t, r) in &answers {
                let Some(c) = st.items.get_mut(t) else { continue };
                c.last_poll_ms = Some(now);
                let events = match r {
                    Ok(p) => {
                        let was_delivered = c.delivered_ms.is_some();
                        apply_parsed(c, p, now);
                        if !was_delivered && let Some(d) = c.delivered_ms {
                            self.observe_delivery(c, d);
                        }
                        p.events.clone()
                    }
                    Err(e) => {
                        c.error = Some(e.clone());
                        Vec::new()
                    }
                };
                saves.push((c.clone(), events));
            }
            st.dirty = true;
        }
        if let Err(e) = blocking(&self.db, move |db| {
            for (c, events) in &saves {
                db.save_tracking(c, events, "poll", now)?;
            }
            Ok(())
        })
        .await
        {
            self.metrics.store_errors.inc();
            tracing::error!("cannot store tracking results: {e}");
        }
    }

    pub(super) fn observe_delivery(&self, c: &Consignment, delivered_ms: i64) {
        let secs = (delivered_ms - c.accepted_ms).max(0) as f64 / 1000.0;
        self.metrics.postal_delivery.with_label_values(&[c.operator.as_str(), self.vantage.as_str()]).observe(secs);
    }

    /// `POST /api/v1/postal/{operator}/events` (signature already checked).
    pub async fn push(&self, operator: &str, body: &[u8]) -> Result<PushResult, PushError> {
        let config = self.config.borrow().clone();
        let op = config
            .postal
            .as_ref()
            .and_then(|p| p.operator(operator))
            .ok_or_else(|| PushError::Invalid("unknown operator".into()))?;
        let parsed = adapter::parse_push(op, body, config.daemon.timezone).map_err(PushError::Invalid)?;
        let now = now_ms();
        let mut out = PushResult::default();
        let mut saves: Vec<(Consignment, Vec<TrackEvent>)> = Vec::new();
        {
            let mut st = self.lock();
            for (t, r) in parsed {
                let e = match r {
                    Ok(e) => e,
                    Err(e) => {
                        out.errors.push(format!("{t}: {e}"));
                        continue;
                    }
                };
                let Some(c) = st.items.get_mut(&t).filter(|c| c.operator == operator) else {
                    out.unknown_tracking.push(t);
                    continue;
                };
                let was_delivered = c.delivered_ms.is_some();
                apply_event(c, &e, now);
                if !was_delivered && let Some(d) = c.delivered_ms {
                    self.observe_delivery(c, d);
                }
                out.accepted += 1;
                match saves.iter_mut().find(|(x, _)| x.tracking == t) {
                    Some((x, evs)) => {
                        *x = c.clone();
                        evs.push(e);
                    }
                    None => saves.push((c.clone(), vec![e])),
                }
            }
            st.dirty = true;
        }
        blocking(&self.db, move |db| {
            for (c, events) in &saves {
                db.save_tracking(c, events, "push", now)?;
            }
            Ok(())
        })
        .await
        .map_err(PushError::Store)?;
        Ok(out)
    }
}

/// Applies a usable tracking answer. An answer whose newest event is older than what is already
/// known (a pushed event, say) does not set the status back.
pub(super) fn apply_parsed(c: &mut Consignment, p: &Parsed, now: i64) {
    let current = p.last_event().is_none_or(|e| c.last_event_ms.is_none_or(|t| e.at_ms >= t));
    if current {
        c.status = p.status;
        c.status_raw = Some(p.raw.clone());
    }
    if let Some(e) = p.last_event() {
        c.last_event_ms = Some(c.last_event_ms.map_or(e.at_ms, |t| t.max(e.at_ms)));
        if current && e.location.is_some() {
            c.location = e.location.clone();
        }
    }
    if c.status == Tracking::Delivered && c.delivered_ms.is_none() {
        // The delivery event's time; without events, the first answer that said delivered.
        c.delivered_ms = Some(p.delivered_ms().or(c.last_event_ms).unwrap_or(now));
    }
    c.last_ok_ms = Some(now);
    c.error = None;
}

/// Applies one pushed event: the newest event sets the status.
pub(super) fn apply_event(c: &mut Consignment, e: &TrackEvent, now: i64) {
    if c.last_event_ms.is_none_or(|t| e.at_ms >= t) {
        c.status = e.status;
        c.status_raw = Some(e.raw.clone());
        c.last_event_ms = Some(e.at_ms);
        if e.location.is_some() {
            c.location = e.location.clone();
        }
    }
    if e.status == Tracking::Delivered {
        c.delivered_ms = Some(c.delivered_ms.map_or(e.at_ms, |t| t.min(e.at_ms)));
    }
    c.last_ok_ms = Some(now);
    c.error = None;
}

/// One tracking request: the body of a 2xx answer (at most [`MAX_BODY`]), else a failure.
pub(super) async fn fetch(client: &reqwest::Client, op: &PostalOperator, chunk: &[String]) -> Result<Vec<u8>, Failure> {
    let numbers: Vec<String> = chunk.iter().map(|t| crate::text::url_encode(t)).collect();
    let url = op.track_url.replace("{tracking}", &numbers.join(&op.batch_separator));
    let mut req = client.request(op.method.clone(), url).timeout(op.timeout);
    for (k, v) in &op.headers {
        req = req.header(k, v);
    }
    let mut resp = req.send().await.map_err(crate::probe::http::classify)?;
    let status = resp.status().as_u16();
    if status == 404 && op.batch_size == 1 {
        // The API works; it does not know this number (yet).
        return Err(Failure::new(FailureKind::Answer, "the operator does not know this tracking number (404)"));
    }
    if !(200..300).contains(&status) {
        return Err(Failure::new(FailureKind::Status, format!("status {status}")));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(crate::probe::http::classify)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(Failure::new(FailureKind::TooLarge, format!("answer larger than {} KiB", MAX_BODY / 1024)));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
