//! Consignments and their tracking events in the store file (schema v3). A consignment's news
//! is marked told and its e-mails queued in one transaction: a crash cannot lose the e-mail of a
//! breach that was marked told, nor tell it twice.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;
use super::notices::{Outgoing, enqueue_on};
use crate::model::postal::{Consignment, SlaState, TrackEvent, Tracking, Warning};

/// What an evaluation stores of a consignment: tracking, state, warning, the news last told and
/// when (ms).
pub type StateUpdate = (String, SlaState, Option<Warning>, Option<String>, Option<i64>);

pub struct PostalDb {
    path: PathBuf,
    conn: Connection,
}

const COLUMNS: &str = "tracking, operator, kind, description, origin, destination, accepted_ms, deadline_ms, contacts, source, status, status_raw, location, last_event_ms, delivered_ms, last_poll_ms, last_ok_ms, error, state, warning, notified, notified_ms";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Consignment> {
    let contacts: String = r.get(8)?;
    Ok(Consignment {
        tracking: r.get(0)?,
        operator: r.get(1)?,
        kind: r.get(2)?,
        description: r.get(3)?,
        origin: r.get(4)?,
        destination: r.get(5)?,
        accepted_ms: r.get(6)?,
        deadline_ms: r.get(7)?,
        contacts: contacts.split(';').filter(|s| !s.is_empty()).map(str::to_string).collect(),
        source: r.get(9)?,
        status: Tracking::parse(&r.get::<_, String>(10)?).unwrap_or(Tracking::Unknown),
        status_raw: r.get(11)?,
        location: r.get(12)?,
        last_event_ms: r.get(13)?,
        delivered_ms: r.get(14)?,
        last_poll_ms: r.get(15)?,
        last_ok_ms: r.get(16)?,
        error: r.get(17)?,
        state: SlaState::parse(&r.get::<_, String>(18)?).unwrap_or(SlaState::Unknown),
        warning: r.get::<_, Option<String>>(19)?.as_deref().and_then(Warning::parse),
        notified: r.get(20)?,
        // Absent from the reports' query: a store of schema 4 (a backup, or read before the
        // daemon migrated it) has no such column.
        notified_ms: r.get(21).unwrap_or(None),
    })
}

/// Consignments read-only, for reports (a plain connection, no writer).
pub fn read_all(conn: &Connection) -> rusqlite::Result<Vec<Consignment>> {
    let columns = COLUMNS.trim_end_matches(", notified_ms");
    let mut st = conn.prepare(&format!("SELECT {columns} FROM consignments ORDER BY deadline_ms, tracking"))?;
    st.query_map([], row)?.collect()
}

impl PostalDb {
    /// Opens the store file (already created and migrated by `Store::open`).
    pub fn open(path: &Path) -> Result<PostalDb, StoreError> {
        Ok(PostalDb { path: path.to_path_buf(), conn: super::connect(path, super::Access::Shared)? })
    }

    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite { path: self.path.clone(), source }
    }

    pub fn all(&self) -> Result<Vec<Consignment>, StoreError> {
        read_all(&self.conn).map_err(|e| self.err(e))
    }

    /// Registers consignments: new ones are inserted; known ones get the registered fields
    /// (operator, deadline, contacts…) and keep what tracking found.
    pub fn register(&mut self, items: &[Consignment], now: i64) -> Result<(), StoreError> {
        let tx = self.conn.transaction().map_err(|e| StoreError::Sqlite { path: self.path.clone(), source: e })?;
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT INTO consignments (tracking, operator, kind, description, origin, destination, accepted_ms, deadline_ms, contacts, source, created_ms, updated_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)
                     ON CONFLICT (tracking) DO UPDATE SET operator = excluded.operator, kind = excluded.kind,
                       description = excluded.description, origin = excluded.origin, destination = excluded.destination,
                       accepted_ms = excluded.accepted_ms, deadline_ms = excluded.deadline_ms, contacts = excluded.contacts,
                       source = excluded.source, updated_ms = excluded.updated_ms",
                )
                .map_err(|e| StoreError::Sqlite { path: self.path.clone(), source: e })?;
            for c in items {
                st.execute(params![
                    c.tracking,
                    c.operator,
                    c.kind,
                    c.description,
                    c.origin,
                    c.destination,
                    c.accepted_ms,
                    c.deadline_ms,
                    c.contacts.join(";"),
                    c.source,
                    now
                ])
                .map_err(|e| StoreError::Sqlite { path: self.path.clone(), source: e })?;
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// Saves what tracking found for a consignment, and its new events.
    pub fn save_tracking(
        &mut self,
        c: &Consignment,
        events: &[TrackEvent],
        source: &str,
        now: i64,
    ) -> Result<usize, StoreError> {
        let path = self.path.clone();
        let err = |source| StoreError::Sqlite { path: path.clone(), source };
        let tx = self.conn.transaction().map_err(err)?;
        tx.execute(
            "UPDATE consignments SET status = ?2, status_raw = ?3, location = ?4, last_event_ms = ?5, delivered_ms = ?6,
               last_poll_ms = ?7, last_ok_ms = ?8, error = ?9, updated_ms = ?10 WHERE tracking = ?1",
            params![
                c.tracking,
                c.status.as_str(),
                c.status_raw,
                c.location,
                c.last_event_ms,
                c.delivered_ms,
                c.last_poll_ms,
                c.last_ok_ms,
                c.error,
                now
            ],
        )
        .map_err(err)?;
        let mut added = 0;
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO consignment_events (tracking, at_ms, status, raw, location, source) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(err)?;
            for e in events {
                added += st
                    .execute(params![c.tracking, e.at_ms, e.status.as_str(), e.raw, e.location, source])
                    .map_err(err)?;
            }
        }
        tx.commit().map_err(err)?;
        Ok(added)
    }

    /// Records evaluated states, marks news as told and queues its e-mails, in one transaction.
    pub fn save_states(&mut self, states: &[StateUpdate], mails: &[Outgoing], now: i64) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |source| StoreError::Sqlite { path: path.clone(), source };
        // Immediate: the e-mails' ledger entries extend the chain's head.
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(err)?;
        {
            let mut st = tx
                .prepare_cached("UPDATE consignments SET state = ?2, warning = ?3, notified = ?4, notified_ms = ?5 WHERE tracking = ?1")
                .map_err(err)?;
            for (t, state, warning, notified, notified_ms) in states {
                st.execute(params![t, state.as_str(), warning.map(Warning::as_str), notified, notified_ms])
                    .map_err(err)?;
            }
        }
        for m in mails {
            enqueue_on(&tx, m, now).map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    pub fn events(&self, tracking: &str) -> Result<Vec<(TrackEvent, String)>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT at_ms, status, raw, location, source FROM consignment_events WHERE tracking = ?1 ORDER BY at_ms, id",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([tracking], |r| {
                Ok((
                    TrackEvent {
                        at_ms: r.get(0)?,
                        status: Tracking::parse(&r.get::<_, String>(1)?).unwrap_or(Tracking::Unknown),
                        raw: r.get(2)?,
                        location: r.get(3)?,
                    },
                    r.get(4)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    pub fn delete(&mut self, tracking: &str) -> Result<bool, StoreError> {
        let path = self.path.clone();
        let err = |source| StoreError::Sqlite { path: path.clone(), source };
        let tx = self.conn.transaction().map_err(err)?;
        let n = tx.execute("DELETE FROM consignments WHERE tracking = ?1", [tracking]).map_err(err)?;
        tx.execute("DELETE FROM consignment_events WHERE tracking = ?1", [tracking]).map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(n > 0)
    }

    pub fn exists(&self, tracking: &str) -> Result<bool, StoreError> {
        self.conn
            .query_row("SELECT 1 FROM consignments WHERE tracking = ?1", [tracking], |_| Ok(()))
            .optional()
            .map(|r| r.is_some())
            .map_err(|e| self.err(e))
    }
}
