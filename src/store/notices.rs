//! Incidents and the e-mail outbox in the store. The notifier owns one connection (SQLite
//! serialises it with the ledger writer; both are short transactions).

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::json;

use super::{StoreError, chain};
pub use crate::model::notice::{IncidentKind, IncidentRow, OutboxRow, Outgoing, Reconcile, Unreconciled};

/// Queues one e-mail on `conn`, with its ledger entry, inside the caller's `BEGIN IMMEDIATE`
/// transaction.
pub fn enqueue_on(conn: &Connection, mail: &Outgoing, now: i64) -> rusqlite::Result<i64> {
    let recipients = mail.recipients.join(",");
    conn.execute(
        "INSERT INTO outbox (created_ms, kind, incident_opened_ms, recipients, subject, text_body, html_body, next_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?1)",
        params![now, mail.kind, mail.incident_opened_ms, recipients, mail.subject, mail.text, mail.html],
    )?;
    let id = conn.last_insert_rowid();
    let payload = chain::mail_queued(id, mail.kind, &recipients, &mail.subject, &mail.text, &mail.html);
    chain::append(conn, now, "mail.queued", Some(id), &payload)?;
    Ok(id)
}

pub struct NotifyDb {
    path: PathBuf,
    conn: Connection,
}

const INCIDENT_COLUMNS: &str = "id, grp, target, kind, since_ms, opened_ms, closed_ms, reason, detail, acked_ms, acked_by, notified_ms, escalated_ms, silenced, resolved_told_ms";

fn incident(r: &rusqlite::Row<'_>) -> rusqlite::Result<IncidentRow> {
    Ok(IncidentRow {
        id: r.get(0)?,
        group: r.get(1)?,
        target: r.get(2)?,
        kind: IncidentKind::parse(&r.get::<_, String>(3)?),
        since_ms: r.get(4)?,
        opened_ms: r.get(5)?,
        closed_ms: r.get(6)?,
        reason: r.get(7)?,
        detail: r.get(8)?,
        acked_ms: r.get(9)?,
        acked_by: r.get(10)?,
        notified_ms: r.get(11)?,
        escalated_ms: r.get(12)?,
        silenced: r.get::<_, i64>(13)? != 0,
        resolved_told_ms: r.get(14)?,
    })
}

impl NotifyDb {
    /// Opens the store file (already created and migrated by `Store::open`).
    pub fn open(path: &Path) -> Result<NotifyDb, StoreError> {
        Ok(NotifyDb { path: path.to_path_buf(), conn: super::connect(path, super::Access::Shared)? })
    }

    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite { path: self.path.clone(), source }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn open_incident(
        &self,
        group: &str,
        target: &str,
        kind: IncidentKind,
        since_ms: i64,
        opened_ms: i64,
        reason: Option<&str>,
        detail: Option<&str>,
        silenced: bool,
    ) -> Result<i64, StoreError> {
        chain::immediate(&self.conn, |c| {
            c.execute(
                "INSERT INTO incidents (grp, target, kind, since_ms, opened_ms, reason, detail, silenced) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![group, target, kind.as_str(), since_ms, opened_ms, reason, detail, i64::from(silenced)],
            )?;
            let id = c.last_insert_rowid();
            let payload = chain::incident_open(id, group, target, kind.as_str(), since_ms, opened_ms, reason, detail);
            chain::append(c, opened_ms, "incident.open", Some(id), &payload)?;
            Ok(id)
        })
        .map_err(|e| self.err(e))
    }

    pub fn close_incident(&self, id: i64, closed_ms: i64) -> Result<(), StoreError> {
        chain::immediate(&self.conn, |c| {
            let n = c.execute(
                "UPDATE incidents SET closed_ms = ?2 WHERE id = ?1 AND closed_ms IS NULL",
                params![id, closed_ms],
            )?;
            if n > 0 {
                chain::append(c, closed_ms, "incident.close", Some(id), &json!({"id": id, "closed": closed_ms}))?;
            }
            Ok(())
        })
        .map_err(|e| self.err(e))
    }

    /// Closed incidents with something not yet told: their opening or their resolution.
    pub fn untold_closed(&self) -> Result<Vec<IncidentRow>, StoreError> {
        let sql = format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE silenced = 0 AND closed_ms IS NOT NULL \
             AND (notified_ms IS NULL OR resolved_told_ms IS NULL) ORDER BY id"
        );
        let mut st = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let rows = st.query_map([], incident).map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// Queues `mails` and records what they tell — openings (`opened`) and resolutions
    /// (`resolved`) — and the batching windows, in one transaction: after a crash either all of
    /// it is in the store or none.
    pub fn tell(
        &self,
        mails: &[Outgoing],
        opened: &[i64],
        resolved: &[i64],
        at: i64,
        windows: &str,
    ) -> Result<(), StoreError> {
        chain::immediate(&self.conn, |c| {
            for m in mails {
                enqueue_on(c, m, at)?;
            }
            for id in opened {
                c.execute("UPDATE incidents SET notified_ms = ?2 WHERE id = ?1 AND notified_ms IS NULL", params![id, at])?;
            }
            for id in resolved {
                c.execute(
                    "UPDATE incidents SET resolved_told_ms = ?2 WHERE id = ?1 AND resolved_told_ms IS NULL",
                    params![id, at],
                )?;
            }
            c.execute(
                "INSERT INTO meta (key, value) VALUES ('notify.windows', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![windows],
            )?;
            Ok(())
        })
        .map_err(|e| self.err(e))
    }

    /// What the store's intervals say that the incidents do not (the daemon died between
    /// recording a transition and the notifier taking it in): outages and congestion still open
    /// with no incident, and open incidents whose interval has ended (with its end) or never
    /// reached the store.
    /// `run_started`: the start of this run (the previous runs' heartbeats are before it).
    pub fn unreconciled(&self, run_started: i64) -> Result<Reconcile, StoreError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT i.target, i.grp, i.kind, i.start_ms, i.reason, i.detail FROM intervals i
                 WHERE i.end_ms IS NULL AND i.kind IN ('outage', 'degraded') AND NOT EXISTS
                   (SELECT 1 FROM incidents n WHERE n.target = i.target AND n.kind = i.kind AND n.since_ms = i.start_ms)
                 ORDER BY i.start_ms",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| {
                Ok(Unreconciled {
                    target: r.get(0)?,
                    group: r.get(1)?,
                    kind: IncidentKind::parse(&r.get::<_, String>(2)?),
                    since_ms: r.get(3)?,
                    reason: r.get(4)?,
                    detail: r.get(5)?,
                })
            })
            .map_err(|e| self.err(e))?;
        let open = rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))?;
        let mut st = self
            .conn
            .prepare(
                "SELECT n.id, i.end_ms FROM incidents n JOIN intervals i
                   ON i.target = n.target AND i.kind = n.kind AND i.start_ms = n.since_ms
                 WHERE n.closed_ms IS NULL AND i.end_ms IS NOT NULL",
            )
            .map_err(|e| self.err(e))?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(|e| self.err(e))?;
        let mut ended: Vec<(i64, i64)> = rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))?;
        // Open incidents whose interval never reached the store (the daemon died before the
        // writer committed it): nothing was observed of them after the previous run's last
        // heartbeat, so they end there.
        let mut st = self
            .conn
            .prepare(
                "SELECT n.id, MAX(n.opened_ms, COALESCE((SELECT MAX(last_ms) FROM runs WHERE started_ms < ?1), n.opened_ms))
                 FROM incidents n WHERE n.closed_ms IS NULL AND NOT EXISTS
                   (SELECT 1 FROM intervals i WHERE i.target = n.target AND i.kind = n.kind AND i.start_ms = n.since_ms)",
            )
            .map_err(|e| self.err(e))?;
        let rows = st.query_map(params![run_started], |r| Ok((r.get(0)?, r.get(1)?))).map_err(|e| self.err(e))?;
        ended.extend(rows.collect::<Result<Vec<(i64, i64)>, _>>().map_err(|e| self.err(e))?);
        Ok((open, ended))
    }

    pub fn open_incidents(&self) -> Result<Vec<IncidentRow>, StoreError> {
        let sql = format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE closed_ms IS NULL ORDER BY id");
        let mut st = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let rows = st.query_map([], incident).map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    pub fn incident(&self, id: i64) -> Result<Option<IncidentRow>, StoreError> {
        let sql = format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = ?1");
        self.conn.query_row(&sql, params![id], incident).optional().map_err(|e| self.err(e))
    }

    /// Incidents overlapping `[from, to)`, newest first.
    pub fn incidents_between(&self, from: i64, to: i64) -> Result<Vec<IncidentRow>, StoreError> {
        let sql = format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE opened_ms < ?2 AND (closed_ms IS NULL OR closed_ms > ?1) ORDER BY opened_ms DESC"
        );
        let mut st = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let rows = st.query_map(params![from, to], incident).map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    pub fn mark_notified(&self, ids: &[i64], at: i64) -> Result<(), StoreError> {
        for id in ids {
            self.conn
                .execute("UPDATE incidents SET notified_ms = ?2 WHERE id = ?1", params![id, at])
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    pub fn unsilence(&self, ids: &[i64]) -> Result<(), StoreError> {
        for id in ids {
            self.conn
                .execute("UPDATE incidents SET silenced = 0 WHERE id = ?1", params![id])
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Housekeeping: sent e-mails older than `keep_ms` are deleted; pending ones retried for
    /// longer than `give_up_ms` are marked failed.
    pub fn prune(&self, now: i64, keep_ms: i64, give_up_ms: i64) -> Result<(usize, usize), StoreError> {
        let deleted = self
            .conn
            .execute("DELETE FROM outbox WHERE state = 'sent' AND sent_ms < ?1", params![now - keep_ms])
            .map_err(|e| self.err(e))?;
        let failed = self
            .conn
            .execute(
                "UPDATE outbox SET state = 'failed', last_error = COALESCE(last_error, '') || ' (gave up retrying)'
                 WHERE state = 'pending' AND attempts > 0 AND created_ms < ?1",
                params![now - give_up_ms],
            )
            .map_err(|e| self.err(e))?;
        Ok((deleted, failed))
    }

    pub fn mark_escalated(&self, ids: &[i64], at: i64) -> Result<(), StoreError> {
        for id in ids {
            self.conn
                .execute("UPDATE incidents SET escalated_ms = ?2 WHERE id = ?1", params![id, at])
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Acknowledges an incident; false if there is no such incident.
    pub fn ack(&self, id: i64, at: i64, by: &str) -> Result<bool, StoreError> {
        chain::immediate(&self.conn, |c| {
            let n = c.execute(
                "UPDATE incidents SET acked_ms = ?2, acked_by = ?3 WHERE id = ?1 AND acked_ms IS NULL",
                params![id, at, by],
            )?;
            if n > 0 {
                chain::append(c, at, "incident.ack", Some(id), &json!({"id": id, "at": at, "by": by}))?;
                return Ok(true);
            }
            // Already acknowledged (the first acknowledgement stands), or no such incident.
            c.query_row("SELECT 1 FROM incidents WHERE id = ?1", params![id], |_| Ok(()))
                .optional()
                .map(|r| r.is_some())
        })
        .map_err(|e| self.err(e))
    }

    /// Queues one e-mail; it is on disk before anything tries to send it.
    pub fn enqueue(&self, mail: &Outgoing, now: i64) -> Result<i64, StoreError> {
        chain::immediate(&self.conn, |c| enqueue_on(c, mail, now)).map_err(|e| self.err(e))
    }

    pub fn due(&self, now: i64, limit: usize) -> Result<Vec<OutboxRow>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT id, kind, incident_opened_ms, recipients, subject, text_body, html_body, attempts FROM outbox
                 WHERE state = 'pending' AND next_ms <= ?1 ORDER BY id LIMIT ?2",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![now, limit as i64], |r| {
                Ok(OutboxRow {
                    id: r.get(0)?,
                    kind: r.get(1)?,
                    incident_opened_ms: r.get(2)?,
                    recipients: r.get::<_, String>(3)?.split(',').filter(|s| !s.is_empty()).map(String::from).collect(),
                    subject: r.get(4)?,
                    text: r.get(5)?,
                    html: r.get(6)?,
                    attempts: r.get(7)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// When the next pending e-mail is due, if any.
    pub fn next_due(&self) -> Result<Option<i64>, StoreError> {
        self.conn
            .query_row("SELECT MIN(next_ms) FROM outbox WHERE state = 'pending'", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    pub fn mark_sent(&self, id: i64, at: i64) -> Result<(), StoreError> {
        chain::immediate(&self.conn, |c| {
            c.execute(
                "UPDATE outbox SET state = 'sent', sent_ms = ?2, attempts = attempts + 1, last_error = NULL WHERE id = ?1",
                params![id, at],
            )?;
            chain::append(c, at, "mail.sent", Some(id), &json!({"id": id, "at": at}))
        })
        .map_err(|e| self.err(e))
    }

    pub fn mark_retry(&self, id: i64, next: i64, error: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE outbox SET attempts = attempts + 1, next_ms = ?2, last_error = ?3 WHERE id = ?1",
                params![id, next, error],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn mark_failed(&self, id: i64, error: &str) -> Result<(), StoreError> {
        chain::immediate(&self.conn, |c| {
            c.execute(
                "UPDATE outbox SET state = 'failed', attempts = attempts + 1, last_error = ?2 WHERE id = ?1",
                params![id, error],
            )?;
            let at = chrono::Utc::now().timestamp_millis();
            chain::append(c, at, "mail.failed", Some(id), &json!({"id": id, "error": error}))
        })
        .map_err(|e| self.err(e))
    }

    /// When the oldest pending e-mail was queued, and how many are pending.
    pub fn oldest_pending(&self) -> Result<Option<(i64, i64)>, StoreError> {
        self.conn
            .query_row("SELECT MIN(created_ms), COUNT(*) FROM outbox WHERE state = 'pending'", [], |r| {
                Ok(r.get::<_, Option<i64>>(0)?.map(|m| (m, r.get::<_, i64>(1).unwrap_or(0))))
            })
            .map_err(|e| self.err(e))
    }

    pub fn count(&self, state: &str) -> Result<i64, StoreError> {
        self.conn
            .query_row("SELECT COUNT(*) FROM outbox WHERE state = ?1", params![state], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}
