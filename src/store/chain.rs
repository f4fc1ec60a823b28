//! The tamper-evident ledger. Every outage and congestion interval opened or closed, every
//! incident opened, closed or acknowledged, every e-mail queued and its fate, and every config
//! loaded is an entry of one hash chain: entry *n* carries the SHA-256 of entry *n − 1*, and its
//! own hash covers its time, kind, record id and the record's content (canonical JSON). An entry
//! is written in the same transaction as the record it describes.
//!
//! [`verify`] recomputes the chain and compares the records with what the chain says of them: an
//! edited, deleted or inserted entry, and a record edited or added behind the daemon's back
//! (an interval shortened, an incident removed), are found and named. Records older than the
//! chain (stores created before schema v4) are counted as unchained, not as breaks.

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};

/// The `prev` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// SHA-256 of the body of a record (e-mail texts), hex.
pub fn digest(text: &str) -> String {
    crate::text::hex(ring::digest::digest(&ring::digest::SHA256, text.as_bytes()).as_ref())
}

fn entry_hash(prev: &str, seq: i64, at_ms: i64, kind: &str, ref_id: Option<i64>, payload: &str) -> String {
    let text =
        format!("{prev}\n{seq}\n{at_ms}\n{kind}\n{}\n{payload}", ref_id.map(|r| r.to_string()).unwrap_or_default());
    digest(&text)
}

/// Appends an entry. Must run inside the caller's write transaction (`BEGIN IMMEDIATE`), so two
/// connections cannot both extend the same head.
pub fn append(conn: &Connection, at_ms: i64, kind: &str, ref_id: Option<i64>, payload: &Value) -> rusqlite::Result<()> {
    let last: Option<(i64, String)> = conn
        .query_row("SELECT seq, hash FROM chain ORDER BY seq DESC LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (seq, prev) = match last {
        Some((s, h)) => (s + 1, h),
        None => (1, GENESIS.to_string()),
    };
    // serde_json's maps are sorted by key: the text is canonical.
    let text = payload.to_string();
    let hash = entry_hash(&prev, seq, at_ms, kind, ref_id, &text);
    conn.execute(
        "INSERT INTO chain (seq, at_ms, kind, ref_id, payload, prev, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![seq, at_ms, kind, ref_id, text, prev, hash],
    )?;
    Ok(())
}

/// Runs `f` in a `BEGIN IMMEDIATE` transaction (the write lock first: no snapshot conflicts
/// between the store's connections), committed when it succeeds, rolled back otherwise.
pub fn immediate<T>(conn: &Connection, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    match f(conn) {
        Ok(v) => {
            conn.execute_batch("COMMIT")?;
            Ok(v)
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// An interval's chained content.
pub fn interval_open(
    id: i64,
    target: &str,
    group: &str,
    kind: &str,
    start: i64,
    reason: Option<&str>,
    detail: Option<&str>,
) -> Value {
    json!({"id": id, "target": target, "group": group, "kind": kind, "start": start, "reason": reason, "detail": detail})
}

/// The newest entry.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Head {
    pub seq: i64,
    pub hash: String,
}

pub fn head(conn: &Connection) -> rusqlite::Result<Option<Head>> {
    conn.query_row("SELECT seq, hash FROM chain ORDER BY seq DESC LIMIT 1", [], |r| {
        Ok(Head { seq: r.get(0)?, hash: r.get(1)? })
    })
    .optional()
}

/// What [`verify`] found.
#[derive(Debug, Default)]
pub struct Verdict {
    pub entries: i64,
    pub head: Option<Head>,
    /// Where the chain or the records disagree, in words; empty when everything holds.
    pub breaks: Vec<String>,
    /// Records written before the chain existed.
    pub unchained: i64,
}

struct Entry {
    seq: i64,
    at_ms: i64,
    kind: String,
    ref_id: Option<i64>,
    payload: String,
    prev: String,
    hash: String,
}

/// What the ledger (or the store) says of one record: its content when created, then the
/// times set later (an interval's end, an incident's closing and acknowledgement, an e-mail's
/// sending), by name.
#[derive(Default, Clone, PartialEq)]
struct Record {
    content: Value,
    times: std::collections::BTreeMap<&'static str, Option<i64>>,
}

/// A kind of record the ledger covers: its table, how its entries are named, and what can change.
struct Kind {
    /// Word for messages.
    noun: &'static str,
    /// Entry kinds: the creation, then `(entry kind, payload field, time name)` for later changes.
    created: &'static str,
    changes: &'static [(&'static str, &'static str, &'static str)],
    /// Rows may leave the store by design (the outbox is pruned).
    pruned: bool,
}

const INTERVALS: Kind =
    Kind { noun: "interval", created: "interval.open", changes: &[("interval.close", "end", "end")], pruned: false };
const INCIDENTS: Kind = Kind {
    noun: "incident",
    created: "incident.open",
    changes: &[("incident.close", "closed", "closing time"), ("incident.ack", "at", "acknowledgement")],
    pruned: false,
};
const MAILS: Kind =
    Kind { noun: "e-mail", created: "mail.queued", changes: &[("mail.sent", "at", "sending time")], pruned: true };

/// Checks the chain and the records it covers.
pub fn verify(conn: &Connection) -> rusqlite::Result<Verdict> {
    let mut v = Verdict::default();
    let mut st = conn.prepare("SELECT seq, at_ms, kind, ref_id, payload, prev, hash FROM chain ORDER BY seq")?;
    let entries = st.query_map([], |r| {
        Ok(Entry {
            seq: r.get(0)?,
            at_ms: r.get(1)?,
            kind: r.get(2)?,
            ref_id: r.get(3)?,
            payload: r.get(4)?,
            prev: r.get(5)?,
            hash: r.get(6)?,
        })
    })?;
    let mut expected_prev = GENESIS.to_string();
    let mut expected_seq = 1;
    // What the chain says of each record, per kind: the last word wins.
    let kinds = [&INTERVALS, &INCIDENTS, &MAILS];
    let mut ledger: Vec<std::collections::BTreeMap<i64, Record>> = vec![Default::default(); kinds.len()];
    for e in entries {
        let e = e?;
        v.entries += 1;
        if e.seq != expected_seq {
            v.breaks.push(format!("entry #{expected_seq} is missing (next is #{})", e.seq));
        }
        if e.prev != expected_prev {
            v.breaks.push(format!("entry #{}: does not follow the entry before it (prev hash differs)", e.seq));
        }
        if entry_hash(&e.prev, e.seq, e.at_ms, &e.kind, e.ref_id, &e.payload) != e.hash {
            v.breaks.push(format!("entry #{} ({}): its content was changed (hash differs)", e.seq, e.kind));
        }
        expected_prev = e.hash.clone();
        expected_seq = e.seq + 1;
        v.head = Some(Head { seq: e.seq, hash: e.hash.clone() });
        let p: Value = serde_json::from_str(&e.payload).unwrap_or(Value::Null);
        let id = e.ref_id.unwrap_or(-1);
        for (k, map) in kinds.iter().zip(ledger.iter_mut()) {
            if e.kind == k.created {
                let times = k.changes.iter().map(|(_, _, name)| (*name, None)).collect();
                map.insert(id, Record { content: p.clone(), times });
            }
            for (entry, field, name) in k.changes {
                if e.kind == *entry {
                    map.entry(id).or_default().times.insert(*name, p[*field].as_i64());
                }
            }
        }
    }
    let stored = [intervals(conn)?, incidents(conn)?, mails(conn)?];
    for ((k, chained), rows) in kinds.iter().zip(&ledger).zip(stored) {
        compare(k, chained, rows, &mut v);
    }
    Ok(v)
}

/// Compares the store's records of one kind with what the ledger says of them.
fn compare(k: &Kind, chained: &std::collections::BTreeMap<i64, Record>, rows: Vec<(i64, Record)>, v: &mut Verdict) {
    // Rows older than the first chained one predate the chain.
    let first = chained.keys().next().copied().unwrap_or(i64::MAX);
    let name = |r: &Record| match (&r.content["target"], &r.content["subject"]) {
        (Value::String(t), _) => format!("{t:?}"),
        (_, Value::String(s)) => format!("{s:?}"),
        _ => String::new(),
    };
    let mut seen = std::collections::BTreeSet::new();
    for (id, row) in rows {
        seen.insert(id);
        let Some(rec) = chained.get(&id) else {
            if id < first {
                v.unchained += 1;
            } else {
                v.breaks.push(format!(
                    "{} {id} ({}) is not in the ledger: added behind the daemon's back",
                    k.noun,
                    name(&row)
                ));
            }
            continue;
        };
        if !rec.content.is_null() && rec.content != row.content {
            v.breaks.push(format!(
                "{} {id} ({}): changed since it was recorded (was {}, now {})",
                k.noun,
                name(&row),
                rec.content,
                row.content
            ));
        }
        for (time, at) in &row.times {
            let recorded = rec.times.get(time).copied().flatten();
            if recorded != *at {
                v.breaks.push(format!(
                    "{} {id} ({}): its {time} was changed (ledger: {}, store: {})",
                    k.noun,
                    name(&row),
                    when(recorded),
                    when(*at)
                ));
            }
        }
    }
    if !k.pruned {
        for (id, rec) in chained {
            if !seen.contains(id) {
                v.breaks.push(format!("{} {id} ({}) was deleted from the store", k.noun, name(rec)));
            }
        }
    }
}

/// A time in messages: RFC 3339 in UTC with milliseconds, or "open".
fn when(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::<chrono::Utc>::from_timestamp_millis)
        .map_or_else(|| "none".into(), |t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

fn record(content: Value, times: &[(&'static str, Option<i64>)]) -> Record {
    Record { content, times: times.iter().copied().collect() }
}

fn intervals(conn: &Connection) -> rusqlite::Result<Vec<(i64, Record)>> {
    let mut st =
        conn.prepare("SELECT id, target, grp, kind, start_ms, reason, detail, end_ms FROM intervals ORDER BY id")?;
    st.query_map([], |r| {
        let content = interval_open(
            r.get(0)?,
            &r.get::<_, String>(1)?,
            &r.get::<_, String>(2)?,
            &r.get::<_, String>(3)?,
            r.get(4)?,
            r.get::<_, Option<String>>(5)?.as_deref(),
            r.get::<_, Option<String>>(6)?.as_deref(),
        );
        Ok((r.get(0)?, record(content, &[("end", r.get(7)?)])))
    })?
    .collect()
}

fn incidents(conn: &Connection) -> rusqlite::Result<Vec<(i64, Record)>> {
    let mut st = conn.prepare(
        "SELECT id, grp, target, kind, since_ms, opened_ms, reason, detail, closed_ms, acked_ms FROM incidents ORDER BY id",
    )?;
    st.query_map([], |r| {
        let content = incident_open(
            r.get(0)?,
            &r.get::<_, String>(1)?,
            &r.get::<_, String>(2)?,
            &r.get::<_, String>(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get::<_, Option<String>>(6)?.as_deref(),
            r.get::<_, Option<String>>(7)?.as_deref(),
        );
        Ok((r.get(0)?, record(content, &[("closing time", r.get(8)?), ("acknowledgement", r.get(9)?)])))
    })?
    .collect()
}

fn mails(conn: &Connection) -> rusqlite::Result<Vec<(i64, Record)>> {
    let mut st =
        conn.prepare("SELECT id, kind, recipients, subject, text_body, html_body, sent_ms FROM outbox ORDER BY id")?;
    st.query_map([], |r| {
        let content = mail_queued(
            r.get(0)?,
            &r.get::<_, String>(1)?,
            &r.get::<_, String>(2)?,
            &r.get::<_, String>(3)?,
            &r.get::<_, String>(4)?,
            &r.get::<_, String>(5)?,
        );
        Ok((r.get(0)?, record(content, &[("sending time", r.get(6)?)])))
    })?
    .collect()
}

#[allow(clippy::too_many_arguments)]
pub fn incident_open(
    id: i64,
    group: &str,
    target: &str,
    kind: &str,
    since: i64,
    opened: i64,
    reason: Option<&str>,
    detail: Option<&str>,
) -> Value {
    json!({"id": id, "group": group, "target": target, "kind": kind, "since": since, "opened": opened, "reason": reason, "detail": detail})
}

pub fn mail_queued(id: i64, kind: &str, recipients: &str, subject: &str, text: &str, html: &str) -> Value {
    json!({"id": id, "kind": kind, "recipients": recipients, "subject": subject, "text_sha256": digest(text), "html_sha256": digest(html)})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let c = Connection::open_in_memory().expect("db");
        crate::store::schema::migrate(&c).map_err(|_| ()).expect("migrate");
        c
    }

    fn open_interval(c: &Connection, target: &str, start: i64) -> i64 {
        immediate(c, |c| {
            c.execute(
                "INSERT INTO intervals (target, grp, kind, start_ms) VALUES (?1, 'g', 'outage', ?2)",
                params![target, start],
            )?;
            let id = c.last_insert_rowid();
            append(c, start, "interval.open", Some(id), &interval_open(id, target, "g", "outage", start, None, None))?;
            Ok(id)
        })
        .expect("open")
    }

    fn close_interval(c: &Connection, id: i64, end: i64) {
        immediate(c, |c| {
            c.execute("UPDATE intervals SET end_ms = ?2 WHERE id = ?1", params![id, end])?;
            append(c, end, "interval.close", Some(id), &json!({"id": id, "end": end}))
        })
        .expect("close")
    }

    #[test]
    fn an_untouched_ledger_verifies() {
        let c = db();
        let a = open_interval(&c, "a", 1000);
        close_interval(&c, a, 5000);
        open_interval(&c, "b", 6000);
        let v = verify(&c).expect("verify");
        assert!(v.breaks.is_empty(), "{:?}", v.breaks);
        assert_eq!(v.entries, 3);
        assert_eq!(v.head.map(|h| h.seq), Some(3));
    }

    #[test]
    fn tampering_is_found_and_named() {
        // A shortened outage.
        let c = db();
        let a = open_interval(&c, "vnpt-dns", 1000);
        close_interval(&c, a, 90_000);
        c.execute("UPDATE intervals SET end_ms = 2000 WHERE id = ?1", [a]).expect("edit");
        let v = verify(&c).expect("verify");
        assert!(v.breaks.iter().any(|b| b.contains("its end was changed") && b.contains("vnpt-dns")), "{:?}", v.breaks);

        // A deleted outage.
        let c = db();
        let a = open_interval(&c, "vnpt-dns", 1000);
        c.execute("DELETE FROM intervals WHERE id = ?1", [a]).expect("delete");
        assert!(verify(&c).expect("verify").breaks.iter().any(|b| b.contains("was deleted")));

        // An edited entry, and a removed one.
        let c = db();
        let a = open_interval(&c, "a", 1000);
        close_interval(&c, a, 5000);
        open_interval(&c, "b", 6000);
        c.execute("UPDATE chain SET payload = replace(payload, '5000', '4000') WHERE seq = 2", []).expect("edit");
        c.execute("UPDATE intervals SET end_ms = 4000 WHERE id = ?1", [a]).expect("edit");
        let v = verify(&c).expect("verify");
        assert!(
            v.breaks.iter().any(|b| b.starts_with("entry #2") && b.contains("content was changed")),
            "{:?}",
            v.breaks
        );
        c.execute("DELETE FROM chain WHERE seq = 2", []).expect("delete");
        let v = verify(&c).expect("verify");
        assert!(v.breaks.iter().any(|b| b.contains("entry #2 is missing")), "{:?}", v.breaks);

        // A row slipped in without the daemon.
        let c = db();
        open_interval(&c, "a", 1000);
        c.execute("INSERT INTO intervals (target, grp, kind, start_ms) VALUES ('x', 'g', 'outage', 1)", [])
            .expect("insert");
        assert!(verify(&c).expect("verify").breaks.iter().any(|b| b.contains("not in the ledger")));
    }
}
