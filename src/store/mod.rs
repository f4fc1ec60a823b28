//! The embedded store (SQLite, WAL) under `daemon.state_dir`: outage and degradation
//! intervals, state events, the daemon's own runs (heartbeats, for unobserved time) and the
//! targets it has seen. Writes go through one writer thread that batches them into
//! transactions, off the probe path; reads open their own connection.

pub mod chain;
pub mod consignments;
pub mod notices;
pub(crate) mod schema;
pub mod writer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, params};

use crate::sla::ledger::Interval;
use crate::sla::spans::Span;

pub use writer::{Op, StoreHandle};

pub const FILE_NAME: &str = "thongsuot.db";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {path}: {source}{}", hint(source))]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "store {path} was written by a newer thongsuot (schema {found}, this build knows {known}); upgrade thongsuot or point daemon.state_dir elsewhere"
    )]
    TooNew { path: PathBuf, found: i64, known: i64 },
    #[error("no store at {0}: the daemon has not run with this state_dir yet")]
    Missing(PathBuf),
}

/// What an operator can do about a store that is not a database any more.
fn hint(e: &rusqlite::Error) -> &'static str {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) | Some(rusqlite::ErrorCode::DatabaseCorrupt) => {
            " — the file is damaged: stop thongsuot, move it aside (keep it as evidence) and start again for an \
             empty ledger, or put back a copy made with `thongsuot backup`"
        }
        Some(rusqlite::ErrorCode::DiskFull) => {
            " — the disk is full: free space; pending writes are kept in memory and retried"
        }
        Some(rusqlite::ErrorCode::CannotOpen)
        | Some(rusqlite::ErrorCode::PermissionDenied)
        | Some(rusqlite::ErrorCode::ReadOnly) => {
            " — check that daemon.state_dir exists and is writable by the daemon's user"
        }
        _ => "",
    }
}

/// Kinds of recorded intervals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntervalKind {
    Outage,
    Degraded,
    /// The monitor could not observe this target (a setup failure, a caught panic): neither up
    /// nor down, and not counted as observed time.
    Unobserved,
}

impl IntervalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IntervalKind::Outage => "outage",
            IntervalKind::Degraded => "degraded",
            IntervalKind::Unobserved => "unobserved",
        }
    }

    pub fn parse(s: &str) -> Option<IntervalKind> {
        [IntervalKind::Outage, IntervalKind::Degraded, IntervalKind::Unobserved].into_iter().find(|k| k.as_str() == s)
    }
}

/// What a restarting daemon takes back from the store.
#[derive(Debug, Default)]
pub struct Restored {
    /// Open outage start per target.
    pub open_outages: HashMap<String, i64>,
    /// Open degradation start per target.
    pub open_degradations: HashMap<String, i64>,
    /// Open monitor fault (unobserved interval) start per target.
    pub open_unobserved: HashMap<String, i64>,
    /// Downtime within observed time so far, per target (ms).
    pub downtime_ms: HashMap<String, i64>,
    pub flaps: HashMap<String, u64>,
}

/// Everything the ledger needs about one target over a window.
#[derive(Debug, Default, Clone)]
pub struct TargetHistory {
    pub group: String,
    pub kind: String,
    pub first_seen: Option<i64>,
    pub outages: Vec<Interval>,
    pub degradations: Vec<Interval>,
    /// Monitor faults: time this target was not observed although the daemon ran.
    pub unobserved: Vec<Interval>,
}

/// What the store knows of its targets for one window: when each was first seen, and the
/// intervals of those that had any in it (with their group and kind, for targets that left the
/// config). Kept apart: nearly all targets have nothing in the window, and a full history for
/// each would be built at every SLA evaluation only to stay empty.
#[derive(Debug, Default)]
pub struct Histories {
    pub first_seen: HashMap<String, i64>,
    pub with_intervals: HashMap<String, TargetHistory>,
}

impl Histories {
    /// The history of `name`, taken out (a target is reported once).
    pub fn take(&mut self, name: &str) -> TargetHistory {
        self.with_intervals.remove(name).unwrap_or_else(|| TargetHistory {
            first_seen: self.first_seen.get(name).copied(),
            ..TargetHistory::default()
        })
    }
}

/// How a connection to the store file is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// The writer's own: creates the file, sets WAL and runs the migrations.
    Owner,
    /// A second writer on a file the owner opened (the notifier's, the postal tracker's): it
    /// waits longer for the lock, its transactions being the rarer ones.
    Shared,
    /// Reports and the SLA task: never writes.
    ReadOnly,
}

/// The one way a connection to the store is opened. WAL: readers never block the writer;
/// synchronous=NORMAL in WAL keeps every committed transaction across a process crash.
pub(crate) fn connect(path: &Path, access: Access) -> Result<Connection, StoreError> {
    let err = |source| StoreError::Sqlite { path: path.to_path_buf(), source };
    let conn = match access {
        Access::ReadOnly => {
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        }
        Access::Owner | Access::Shared => Connection::open(path),
    }
    .map_err(err)?;
    match access {
        Access::Owner => {
            conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;")
                .map_err(err)?;
            conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(err)?;
        }
        Access::Shared => {
            conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(err)?;
            conn.execute_batch("PRAGMA synchronous=NORMAL;").map_err(err)?;
        }
        Access::ReadOnly => conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(err)?,
    }
    Ok(conn)
}

pub struct Store {
    path: PathBuf,
    conn: Connection,
}

impl Store {
    pub fn path_in(state_dir: &Path) -> PathBuf {
        state_dir.join(FILE_NAME)
    }

    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite { path: self.path.clone(), source }
    }

    /// Opens (creating and migrating) the store for writing.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let store = Store { path: path.to_path_buf(), conn: connect(path, Access::Owner)? };
        schema::migrate(&store.conn).map_err(|e| match e {
            schema::MigrateError::TooNew { found, known } => {
                StoreError::TooNew { path: path.to_path_buf(), found, known }
            }
            schema::MigrateError::Sqlite(source) => StoreError::Sqlite { path: path.to_path_buf(), source },
        })?;
        Ok(store)
    }

    /// Opens an existing store for reading only (reports).
    pub fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        if !path.exists() {
            return Err(StoreError::Missing(path.to_path_buf()));
        }
        let conn = connect(path, Access::ReadOnly)?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|source| StoreError::Sqlite { path: path.to_path_buf(), source })?;
        if version > schema::VERSION {
            return Err(StoreError::TooNew { path: path.to_path_buf(), found: version, known: schema::VERSION });
        }
        Ok(Store { path: path.to_path_buf(), conn })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Starts a run of the daemon; returns its id.
    pub fn begin_run(&self, at: i64, vantage: &str) -> Result<i64, StoreError> {
        self.conn
            .execute(
                "INSERT INTO runs (started_ms, last_ms, vantage, version) VALUES (?1, ?1, ?2, ?3)",
                params![at, vantage, env!("CARGO_PKG_VERSION")],
            )
            .map_err(|e| self.err(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// The newest ledger entry.
    pub fn chain_head(&self) -> Result<Option<chain::Head>, StoreError> {
        chain::head(&self.conn).map_err(|source| StoreError::Sqlite { path: self.path.clone(), source })
    }

    /// Checks the ledger against the records (`thongsuot verify`).
    pub fn verify(&self) -> Result<chain::Verdict, StoreError> {
        chain::verify(&self.conn).map_err(|source| StoreError::Sqlite { path: self.path.clone(), source })
    }

    /// The per-probe records of test calls and messages in `window`: (target, detail JSON).
    pub fn kpi_events(&self, window: Span) -> Result<Vec<(String, String)>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT target, detail FROM events WHERE event = 'kpi' AND at_ms >= ?1 AND at_ms < ?2 ORDER BY target, at_ms",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![window.start, window.end], |r| {
                Ok((r.get(0)?, r.get::<_, Option<String>>(1)?.unwrap_or_default()))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// Every registered consignment (reports re-evaluate their states).
    pub fn consignments(&self) -> Result<Vec<crate::model::postal::Consignment>, StoreError> {
        consignments::read_all(&self.conn).map_err(|source| StoreError::Sqlite { path: self.path.clone(), source })
    }

    /// The daemon's runs overlapping `window`: when it was observing.
    pub fn runs(&self, window: Span) -> Result<Vec<Span>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT started_ms, last_ms FROM runs WHERE last_ms > ?1 AND started_ms < ?2 ORDER BY started_ms",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![window.start, window.end], |r| Ok(Span::new(r.get(0)?, r.get(1)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// State to restore before the first probe of a new run.
    pub fn restore(&self) -> Result<Restored, StoreError> {
        let mut out = Restored::default();
        {
            let mut st = self
                .conn
                .prepare("SELECT target, kind, start_ms FROM intervals WHERE end_ms IS NULL")
                .map_err(|e| self.err(e))?;
            let rows = st
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?)))
                .map_err(|e| self.err(e))?;
            for row in rows {
                let (target, kind, start) = row.map_err(|e| self.err(e))?;
                match IntervalKind::parse(&kind) {
                    Some(IntervalKind::Outage) => out.open_outages.insert(target, start),
                    Some(IntervalKind::Degraded) => out.open_degradations.insert(target, start),
                    Some(IntervalKind::Unobserved) => out.open_unobserved.insert(target, start),
                    None => {
                        tracing::warn!(%target, %kind, "interval of an unknown kind in the store: ignored");
                        None
                    }
                };
            }
        }
        let all = Span::new(i64::MIN / 4, i64::MAX / 4);
        let runs = crate::sla::spans::SpanSet::new(self.runs(all)?);
        let last_seen = runs.spans().last().map_or(0, |s| s.end);
        {
            let mut st = self
                .conn
                .prepare("SELECT target, start_ms, end_ms FROM intervals WHERE kind = 'outage'")
                .map_err(|e| self.err(e))?;
            let rows = st
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, Option<i64>>(2)?)))
                .map_err(|e| self.err(e))?;
            for row in rows {
                let (target, start, end) = row.map_err(|e| self.err(e))?;
                let span = crate::sla::spans::SpanSet::new(vec![Span::new(start, end.unwrap_or(last_seen))]);
                *out.downtime_ms.entry(target).or_default() += span.intersect(&runs).total();
            }
        }
        {
            let mut st = self
                .conn
                .prepare("SELECT target, COUNT(*) FROM events WHERE event = 'flap' GROUP BY target")
                .map_err(|e| self.err(e))?;
            let rows =
                st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))).map_err(|e| self.err(e))?;
            for row in rows {
                let (target, n) = row.map_err(|e| self.err(e))?;
                out.flaps.insert(target, n.max(0) as u64);
            }
        }
        Ok(out)
    }

    /// Every target's intervals overlapping `window`, with when it was first seen.
    pub fn histories(&self, window: Span) -> Result<Histories, StoreError> {
        let mut out = Histories::default();
        {
            let mut st =
                self.conn.prepare_cached("SELECT name, first_seen_ms FROM targets").map_err(|e| self.err(e))?;
            let rows =
                st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))).map_err(|e| self.err(e))?;
            for row in rows {
                let (name, first) = row.map_err(|e| self.err(e))?;
                out.first_seen.insert(name, first);
            }
        }
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT i.target, i.kind, i.start_ms, i.end_ms, i.reason, t.grp, t.kind
                 FROM intervals i LEFT JOIN targets t ON t.name = i.target
                 WHERE i.start_ms < ?2 AND (i.end_ms IS NULL OR i.end_ms > ?1) ORDER BY i.start_ms",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![window.start, window.end], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    Interval { start: r.get(2)?, end: r.get(3)?, reason: r.get(4)? },
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, Option<String>>(6)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        for row in rows {
            let (target, kind, interval, group, target_kind) = row.map_err(|e| self.err(e))?;
            let first_seen = out.first_seen.get(&target).copied();
            let h = out.with_intervals.entry(target).or_insert_with(|| TargetHistory {
                group: group.unwrap_or_default(),
                kind: target_kind.unwrap_or_default(),
                first_seen,
                ..TargetHistory::default()
            });
            match IntervalKind::parse(&kind) {
                Some(IntervalKind::Outage) => h.outages.push(interval),
                Some(IntervalKind::Degraded) => h.degradations.push(interval),
                Some(IntervalKind::Unobserved) => h.unobserved.push(interval),
                None => {
                    tracing::warn!(%kind, start = interval.start, "interval of an unknown kind in the store: ignored")
                }
            }
        }
        Ok(out)
    }

    /// A consistent copy of the live store (SQLite online backup: the daemon keeps running).
    pub fn backup_to(&self, dest: &Path) -> Result<(), StoreError> {
        self.conn
            .backup(rusqlite::MAIN_DB, dest, None::<fn(rusqlite::backup::Progress)>)
            .map_err(|source| StoreError::Sqlite { path: dest.to_path_buf(), source })
    }

    /// Runs a batch of writes in one transaction.
    pub fn apply(&mut self, ops: &[Op]) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |source| StoreError::Sqlite { path: path.clone(), source };
        // Immediate: ledger entries extend the chain's head, shared with other connections.
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(err)?;
        for op in ops {
            writer::apply_one(&tx, op).map_err(err)?;
        }
        tx.commit().map_err(err)
    }
}
