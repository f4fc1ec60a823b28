//! The writer thread: one connection, ops batched into transactions so probes never wait for
//! the disk. `Flush` answers once everything sent before it is committed.

use std::time::Duration;

use rusqlite::{Transaction, params};
use tokio::sync::{mpsc, oneshot};

use super::{IntervalKind, Store, chain};

#[derive(Debug)]
pub enum Op {
    /// The run is still alive at `at` (its observed time extends to here).
    Heartbeat {
        run: i64,
        at: i64,
    },
    /// Targets configured in this run (first time seen is kept).
    Targets {
        at: i64,
        targets: Vec<(String, String, String)>,
    },
    Open {
        target: String,
        group: String,
        kind: IntervalKind,
        start: i64,
        reason: Option<String>,
        detail: Option<String>,
    },
    Close {
        target: String,
        kind: IntervalKind,
        end: i64,
    },
    Event {
        at: i64,
        target: String,
        event: &'static str,
        detail: Option<String>,
    },
    /// A config was loaded (start-up or reload): its file's hash goes into the ledger.
    Config {
        at: i64,
        path: String,
        sha256: String,
    },
    Flush(oneshot::Sender<()>),
}

pub(super) fn apply_one(tx: &Transaction<'_>, op: &Op) -> Result<(), rusqlite::Error> {
    match op {
        Op::Heartbeat { run, at } => {
            tx.execute("UPDATE runs SET last_ms = MAX(last_ms, ?2) WHERE id = ?1", params![run, at])?;
        }
        Op::Targets { at, targets } => {
            let mut st = tx.prepare_cached(
                "INSERT INTO targets (name, grp, kind, first_seen_ms, last_seen_ms) VALUES (?1, ?2, ?3, ?4, ?4)
                 ON CONFLICT(name) DO UPDATE SET grp = excluded.grp, kind = excluded.kind, last_seen_ms = excluded.last_seen_ms",
            )?;
            for (name, group, kind) in targets {
                st.execute(params![name, group, kind, at])?;
            }
        }
        Op::Open { target, group, kind, start, reason, detail } => {
            // Never two open intervals of a kind per target.
            close_open(tx, target, kind.as_str(), *start)?;
            tx.execute(
                "INSERT INTO intervals (target, grp, kind, start_ms, reason, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![target, group, kind.as_str(), start, reason, detail],
            )?;
            let id = tx.last_insert_rowid();
            let payload =
                chain::interval_open(id, target, group, kind.as_str(), *start, reason.as_deref(), detail.as_deref());
            chain::append(tx, *start, "interval.open", Some(id), &payload)?;
        }
        Op::Close { target, kind, end } => {
            close_open(tx, target, kind.as_str(), *end)?;
        }
        Op::Config { at, path, sha256 } => {
            chain::append(tx, *at, "config", None, &serde_json::json!({"path": path, "sha256": sha256}))?;
        }
        Op::Event { at, target, event, detail } => {
            tx.execute(
                "INSERT INTO events (at_ms, target, event, detail) VALUES (?1, ?2, ?3, ?4)",
                params![at, target, event, detail],
            )?;
        }
        Op::Flush(_) => {}
    }
    Ok(())
}

/// Ends the open interval of `kind` of `target` at `end` (not before its start), with its
/// ledger entry.
fn close_open(tx: &Transaction<'_>, target: &str, kind: &str, end: i64) -> Result<(), rusqlite::Error> {
    let open: Vec<(i64, i64)> = {
        let mut st =
            tx.prepare_cached("SELECT id, start_ms FROM intervals WHERE target = ?1 AND kind = ?2 AND end_ms IS NULL")?;
        st.query_map(params![target, kind], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?
    };
    for (id, start) in open {
        let end = end.max(start);
        tx.execute("UPDATE intervals SET end_ms = ?2 WHERE id = ?1", params![id, end])?;
        chain::append(tx, end, "interval.close", Some(id), &serde_json::json!({"id": id, "end": end}))?;
    }
    Ok(())
}

/// Whether the writer can write: since when its commits fail, and the last error. For `/readyz`.
#[derive(Default)]
pub struct WriterHealth {
    failing_since_ms: std::sync::atomic::AtomicI64,
    last_error: std::sync::Mutex<String>,
}

impl WriterHealth {
    /// `Some((since_ms, error))` while commits fail.
    pub fn failing(&self) -> Option<(i64, String)> {
        let since = self.failing_since_ms.load(std::sync::atomic::Ordering::Relaxed);
        (since != 0).then(|| (since, self.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone()))
    }

    fn ok(&self) {
        self.failing_since_ms.store(0, std::sync::atomic::Ordering::Relaxed);
    }

    fn failed(&self, e: &super::StoreError) {
        let now = chrono::Utc::now().timestamp_millis();
        let _ = self.failing_since_ms.compare_exchange(
            0,
            now,
            std::sync::atomic::Ordering::Relaxed,
            std::sync::atomic::Ordering::Relaxed,
        );
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = e.to_string();
    }
}

/// Cheap to clone; sending never blocks the caller.
#[derive(Clone)]
pub struct StoreHandle {
    tx: mpsc::UnboundedSender<Op>,
}

impl StoreHandle {
    pub fn send(&self, op: Op) {
        if self.tx.send(op).is_err() {
            tracing::error!("store writer has stopped; a write was lost");
        }
    }

    /// Waits until every op sent before is committed (or the writer is gone).
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        self.send(Op::Flush(tx));
        let _ = rx.await;
    }
}

/// Largest batch committed in one transaction.
const MAX_BATCH: usize = 2048;

/// Starts the writer thread on an open store. It ends when every handle is dropped.
pub fn spawn(
    mut store: Store,
    health: std::sync::Arc<WriterHealth>,
    on_error: impl Fn(&super::StoreError) + Send + 'static,
) -> std::io::Result<(StoreHandle, std::thread::JoinHandle<()>)> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Op>();
    let thread = std::thread::Builder::new().name("thongsuot-store".into()).spawn(move || {
        let mut batch = Vec::with_capacity(64);
        while let Some(op) = rx.blocking_recv() {
            batch.push(op);
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(op) => batch.push(op),
                    Err(_) => break,
                }
            }
            // A failed commit (disk full, I/O error) is retried with the same batch: the
            // ops stay in memory until the disk takes them.
            let mut delay = Duration::from_millis(100);
            loop {
                match store.apply(&batch) {
                    Ok(()) => {
                        health.ok();
                        break;
                    }
                    Err(e) => {
                        health.failed(&e);
                        on_error(&e);
                        tracing::error!("store write failed, retrying in {delay:?}: {e}");
                        std::thread::sleep(delay);
                        delay = (delay * 2).min(Duration::from_secs(10));
                        // Let new ops queue meanwhile; flushes still wait for this batch.
                    }
                }
            }
            for op in batch.drain(..) {
                if let Op::Flush(done) = op {
                    let _ = done.send(());
                }
            }
        }
    })?;
    Ok((StoreHandle { tx }, thread))
}
