//! Schema and migrations, versioned with `PRAGMA user_version`. A migration is appended, never
//! edited: the index of a migration plus one is the version it produces.

use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    // 1: the first ledger.
    "CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        started_ms INTEGER NOT NULL,
        last_ms INTEGER NOT NULL,
        vantage TEXT NOT NULL,
        version TEXT NOT NULL
     );
     CREATE TABLE targets (
        name TEXT PRIMARY KEY,
        grp TEXT NOT NULL,
        kind TEXT NOT NULL,
        first_seen_ms INTEGER NOT NULL,
        last_seen_ms INTEGER NOT NULL
     );
     CREATE TABLE intervals (
        id INTEGER PRIMARY KEY,
        target TEXT NOT NULL,
        grp TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('outage', 'degraded')),
        start_ms INTEGER NOT NULL,
        end_ms INTEGER,
        reason TEXT,
        detail TEXT
     );
     CREATE INDEX intervals_by_target ON intervals (target, start_ms);
     CREATE INDEX intervals_open ON intervals (target, kind) WHERE end_ms IS NULL;
     CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        at_ms INTEGER NOT NULL,
        target TEXT NOT NULL,
        event TEXT NOT NULL,
        detail TEXT
     );
     CREATE INDEX events_by_target ON events (target, at_ms);",
    // 2: incidents and the e-mail outbox.
    "CREATE TABLE incidents (
        id INTEGER PRIMARY KEY,
        grp TEXT NOT NULL,
        target TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('outage', 'degraded')),
        since_ms INTEGER NOT NULL,
        opened_ms INTEGER NOT NULL,
        closed_ms INTEGER,
        reason TEXT,
        detail TEXT,
        acked_ms INTEGER,
        acked_by TEXT,
        notified_ms INTEGER,
        escalated_ms INTEGER,
        silenced INTEGER NOT NULL DEFAULT 0
     );
     CREATE INDEX incidents_open ON incidents (target) WHERE closed_ms IS NULL;
     CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        created_ms INTEGER NOT NULL,
        kind TEXT NOT NULL,
        incident_opened_ms INTEGER,
        recipients TEXT NOT NULL,
        subject TEXT NOT NULL,
        text_body TEXT NOT NULL,
        html_body TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_ms INTEGER NOT NULL,
        last_error TEXT,
        sent_ms INTEGER
     );
     CREATE INDEX outbox_due ON outbox (next_ms) WHERE state = 'pending';
     CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
    // 3: postal consignments and their tracking events.
    "CREATE TABLE consignments (
        tracking TEXT PRIMARY KEY,
        operator TEXT NOT NULL,
        kind TEXT NOT NULL,
        description TEXT,
        origin TEXT,
        destination TEXT,
        accepted_ms INTEGER NOT NULL,
        deadline_ms INTEGER NOT NULL,
        contacts TEXT NOT NULL DEFAULT '',
        source TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'unknown',
        status_raw TEXT,
        location TEXT,
        last_event_ms INTEGER,
        delivered_ms INTEGER,
        last_poll_ms INTEGER,
        last_ok_ms INTEGER,
        error TEXT,
        state TEXT NOT NULL DEFAULT 'unknown',
        warning TEXT,
        notified TEXT,
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL
     );
     CREATE INDEX consignments_by_deadline ON consignments (deadline_ms);
     CREATE TABLE consignment_events (
        id INTEGER PRIMARY KEY,
        tracking TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        status TEXT NOT NULL,
        raw TEXT NOT NULL,
        location TEXT,
        source TEXT NOT NULL,
        UNIQUE (tracking, at_ms, raw)
     );",
    // 4: the tamper-evident ledger (store/chain.rs).
    "CREATE TABLE chain (
        seq INTEGER PRIMARY KEY,
        at_ms INTEGER NOT NULL,
        kind TEXT NOT NULL,
        ref_id INTEGER,
        payload TEXT NOT NULL,
        prev TEXT NOT NULL,
        hash TEXT NOT NULL
     );",
    // 5: when the last e-mail about a consignment was queued (reminders of an overdue one).
    "ALTER TABLE consignments ADD COLUMN notified_ms INTEGER;",
    // 6: unobserved intervals (monitor faults). SQLite cannot change a CHECK: the table is
    // rebuilt with the same ids (the ledger refers to them).
    "CREATE TABLE intervals_v6 (
        id INTEGER PRIMARY KEY,
        target TEXT NOT NULL,
        grp TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('outage', 'degraded', 'unobserved')),
        start_ms INTEGER NOT NULL,
        end_ms INTEGER,
        reason TEXT,
        detail TEXT
     );
     INSERT INTO intervals_v6 (id, target, grp, kind, start_ms, end_ms, reason, detail)
        SELECT id, target, grp, kind, start_ms, end_ms, reason, detail FROM intervals;
     DROP TABLE intervals;
     ALTER TABLE intervals_v6 RENAME TO intervals;
     CREATE INDEX intervals_by_target ON intervals (target, start_ms);
     CREATE INDEX intervals_open ON intervals (target, kind) WHERE end_ms IS NULL;",
    // 7: when an incident's resolution was told (queued); what closed before this version was.
    "ALTER TABLE incidents ADD COLUMN resolved_told_ms INTEGER;
     UPDATE incidents SET resolved_told_ms = closed_ms WHERE closed_ms IS NOT NULL;
     CREATE INDEX incidents_untold ON incidents (id) WHERE silenced = 0 AND (notified_ms IS NULL OR (closed_ms IS NOT NULL AND resolved_told_ms IS NULL));",
];

pub const VERSION: i64 = MIGRATIONS.len() as i64;

pub enum MigrateError {
    TooNew { found: i64, known: i64 },
    Sqlite(rusqlite::Error),
}

impl From<rusqlite::Error> for MigrateError {
    fn from(e: rusqlite::Error) -> Self {
        MigrateError::Sqlite(e)
    }
}

pub fn migrate(conn: &Connection) -> Result<(), MigrateError> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > VERSION {
        return Err(MigrateError::TooNew { found, known: VERSION });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = i as i64 + 1;
        conn.execute_batch(&format!("BEGIN; {sql}; PRAGMA user_version = {version}; COMMIT;"))?;
        tracing::info!(version, "store schema migrated");
    }
    Ok(())
}
