//! Consignments in: the CSV file re-read when it changes, and registrations by the API.

use std::time::SystemTime;

use chrono::Utc;

use super::{Tracker, blocking, now_ms};
use crate::postal::Consignment;
use crate::postal::intake::{self, Registration};

impl Tracker {
    /// Re-reads the CSV file when its size or modification time changed.
    pub(super) async fn check_csv(&self) {
        let config = self.config.borrow().clone();
        let Some(path) = config.postal.as_ref().and_then(|p| p.consignments.clone()) else { return };
        let stamp = std::fs::metadata(&path).ok().map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()));
        if Some(stamp) == self.lock().csv_stamp {
            return;
        }
        let (cfg, p) = (config.clone(), path.clone());
        let read = tokio::task::spawn_blocking(move || intake::load_csv(&p, &cfg, Utc::now())).await;
        let Ok((items, errors)) = read else { return };
        for e in &errors {
            tracing::warn!("consignments: {e}");
        }
        self.metrics.postal_csv_errors.set(errors.len() as i64);
        let n = items.len();
        match self.register(items).await {
            Ok(new) => {
                tracing::info!(file = %path.display(), rows = n, new, errors = errors.len(), "consignments loaded")
            }
            Err(e) => {
                tracing::error!("cannot store consignments from {}: {e}", path.display());
                return;
            }
        }
        let mut st = self.lock();
        st.csv_errors = errors;
        st.csv_stamp = Some(stamp);
    }

    /// Stores and adopts registrations; returns how many were new.
    pub(super) async fn register(&self, items: Vec<Consignment>) -> Result<usize, String> {
        if items.is_empty() {
            return Ok(0);
        }
        let now = now_ms();
        // Known ones keep their tracking; only registered fields change.
        let changed: Vec<Consignment> = {
            let st = self.lock();
            items
                .into_iter()
                .filter(|c| {
                    st.items.get(&c.tracking).is_none_or(|o| {
                        (
                            o.operator.as_str(),
                            o.kind.as_str(),
                            o.accepted_ms,
                            o.deadline_ms,
                            &o.contacts,
                            &o.description,
                        ) != (
                            c.operator.as_str(),
                            c.kind.as_str(),
                            c.accepted_ms,
                            c.deadline_ms,
                            &c.contacts,
                            &c.description,
                        ) || (&o.origin, &o.destination) != (&c.origin, &c.destination)
                    })
                })
                .collect()
        };
        if changed.is_empty() {
            return Ok(0);
        }
        let to_store = changed.clone();
        blocking(&self.db, move |db| db.register(&to_store, now)).await?;
        let mut st = self.lock();
        let mut new = 0;
        for c in changed {
            match st.items.get_mut(&c.tracking) {
                Some(old) => reregister(old, c),
                None => {
                    new += 1;
                    st.items.insert(c.tracking.clone(), c);
                }
            }
        }
        st.dirty = true;
        Ok(new)
    }

    /// `POST /api/v1/consignments`: registers what is valid, reports the rest by index. `Err`:
    /// the store could not save them (nothing registered; the caller should retry).
    pub async fn register_api(&self, regs: Vec<Registration>) -> Result<(Vec<String>, Vec<(usize, String)>), String> {
        let config = self.config.borrow().clone();
        let now = Utc::now();
        let mut ok = Vec::new();
        let mut errors = Vec::new();
        for (i, r) in regs.iter().enumerate() {
            match intake::validate(r, &config, "api", now) {
                Ok(c) => ok.push(c),
                Err(e) => errors.push((i, e)),
            }
        }
        let names: Vec<String> = ok.iter().map(|c| c.tracking.clone()).collect();
        if let Err(e) = self.register(ok).await {
            return Err(format!("store: {e}"));
        }
        Ok((names, errors))
    }

    /// Forgets a consignment (a mistaken registration): memory and store, events included.
    pub async fn remove(&self, tracking: &str) -> Result<bool, String> {
        let t = tracking.to_string();
        let found = blocking(&self.db, move |db| db.delete(&t)).await?;
        let was = self.lock().items.remove(tracking).is_some();
        self.lock().dirty = true;
        Ok(found || was)
    }
}

/// Sets the registered fields of `new` on `old`, keeping what tracking found.
pub(super) fn reregister(old: &mut Consignment, new: Consignment) {
    old.operator = new.operator;
    old.kind = new.kind;
    old.description = new.description;
    old.origin = new.origin;
    old.destination = new.destination;
    old.accepted_ms = new.accepted_ms;
    old.deadline_ms = new.deadline_ms;
    old.contacts = new.contacts;
    old.source = new.source;
}
