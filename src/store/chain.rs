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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of the body of a record (e-mail texts), hex.
pub fn digest(text: &str) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, text.as_bytes()).as_ref())
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
    // What the chain says of each record: the last word wins.
    let mut intervals: std::collections::BTreeMap<i64, (Value, Option<i64>)> = Default::default();
    let mut incidents: std::collections::BTreeMap<i64, (Value, Option<i64>, Option<i64>)> = Default::default();
    let mut mails: std::collections::BTreeMap<i64, (Value, Option<i64>)> = Default::default();
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
        match e.kind.as_str() {
            "interval.open" => {
                intervals.insert(id, (p, None));
            }
            "interval.close" => {
                if let Some(x) = intervals.get_mut(&id) {
                    x.1 = p["end"].as_i64();
                } else {
                    intervals.insert(id, (Value::Null, p["end"].as_i64()));
                }
            }
            "incident.open" => {
                incidents.insert(id, (p, None, None));
            }
            "incident.close" => {
                if let Some(x) = incidents.get_mut(&id) {
                    x.1 = p["closed"].as_i64();
                }
            }
            "incident.ack" => {
                if let Some(x) = incidents.get_mut(&id) {
                    x.2 = p["at"].as_i64();
                }
            }
            "mail.queued" => {
                mails.insert(id, (p, None));
            }
            "mail.sent" => {
                if let Some(x) = mails.get_mut(&id) {
                    x.1 = p["at"].as_i64();
                }
            }
            _ => {}
        }
    }
    check_intervals(conn, &intervals, &mut v)?;
    check_incidents(conn, &incidents, &mut v)?;
    check_mails(conn, &mails, &mut v)?;
    Ok(v)
}

/// Rows with an id above the first chained one must be chained; rows below it predate the chain.
fn first_chained<T>(m: &std::collections::BTreeMap<i64, T>) -> i64 {
    m.keys().next().copied().unwrap_or(i64::MAX)
}

/// A time in messages: RFC 3339 in UTC with milliseconds, or "open".
fn when(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::<chrono::Utc>::from_timestamp_millis)
        .map_or_else(|| "open".into(), |t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

fn check_intervals(
    conn: &Connection,
    chained: &std::collections::BTreeMap<i64, (Value, Option<i64>)>,
    v: &mut Verdict,
) -> rusqlite::Result<()> {
    let first = first_chained(chained);
    let mut st =
        conn.prepare("SELECT id, target, grp, kind, start_ms, end_ms, reason, detail FROM intervals ORDER BY id")?;
    let rows = st.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            interval_open(
                r.get(0)?,
                &r.get::<_, String>(1)?,
                &r.get::<_, String>(2)?,
                &r.get::<_, String>(3)?,
                r.get(4)?,
                r.get::<_, Option<String>>(6)?.as_deref(),
                r.get::<_, Option<String>>(7)?.as_deref(),
            ),
            r.get::<_, Option<i64>>(5)?,
        ))
    })?;
    let mut seen = std::collections::BTreeSet::new();
    for row in rows {
        let (id, content, end) = row?;
        seen.insert(id);
        match chained.get(&id) {
            None if id < first => v.unchained += 1,
            None => v.breaks.push(format!(
                "interval {id} ({} {}) is not in the ledger: added behind the daemon's back",
                content["target"], content["kind"]
            )),
            Some((open, chained_end)) => {
                if !open.is_null() && *open != content {
                    v.breaks.push(format!(
                        "interval {id} ({}): changed since it was recorded (was {open}, now {content})",
                        content["target"]
                    ));
                }
                if *chained_end != end {
                    v.breaks.push(format!(
                        "interval {id} ({}): its end was changed (ledger: {}, store: {})",
                        content["target"],
                        when(*chained_end),
                        when(end)
                    ));
                }
            }
        }
    }
    for (id, (open, _)) in chained {
        if !seen.contains(id) {
            v.breaks.push(format!("interval {id} ({}) was deleted from the store", open["target"]));
        }
    }
    Ok(())
}

fn check_incidents(
    conn: &Connection,
    chained: &std::collections::BTreeMap<i64, (Value, Option<i64>, Option<i64>)>,
    v: &mut Verdict,
) -> rusqlite::Result<()> {
    let first = first_chained(chained);
    let mut st = conn.prepare("SELECT id, grp, target, kind, since_ms, opened_ms, reason, detail, closed_ms, acked_ms FROM incidents ORDER BY id")?;
    let rows = st.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            incident_open(
                r.get(0)?,
                &r.get::<_, String>(1)?,
                &r.get::<_, String>(2)?,
                &r.get::<_, String>(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get::<_, Option<String>>(6)?.as_deref(),
                r.get::<_, Option<String>>(7)?.as_deref(),
            ),
            r.get::<_, Option<i64>>(8)?,
            r.get::<_, Option<i64>>(9)?,
        ))
    })?;
    let mut seen = std::collections::BTreeSet::new();
    for row in rows {
        let (id, content, closed, acked) = row?;
        seen.insert(id);
        match chained.get(&id) {
            None if id < first => v.unchained += 1,
            None => v.breaks.push(format!(
                "incident {id} ({}) is not in the ledger: added behind the daemon's back",
                content["target"]
            )),
            Some((open, c, a)) => {
                if *open != content {
                    v.breaks.push(format!("incident {id} ({}): changed since it was recorded", content["target"]));
                }
                if *c != closed {
                    v.breaks.push(format!("incident {id} ({}): its closing time was changed", content["target"]));
                }
                if *a != acked {
                    v.breaks.push(format!("incident {id} ({}): its acknowledgement was changed", content["target"]));
                }
            }
        }
    }
    for (id, (open, _, _)) in chained {
        if !seen.contains(id) {
            v.breaks.push(format!("incident {id} ({}) was deleted from the store", open["target"]));
        }
    }
    Ok(())
}

fn check_mails(
    conn: &Connection,
    chained: &std::collections::BTreeMap<i64, (Value, Option<i64>)>,
    v: &mut Verdict,
) -> rusqlite::Result<()> {
    let first = first_chained(chained);
    let mut st =
        conn.prepare("SELECT id, kind, recipients, subject, text_body, html_body, sent_ms FROM outbox ORDER BY id")?;
    let rows = st.query_map([], |r| {
        let recipients: String = r.get(2)?;
        Ok((
            r.get::<_, i64>(0)?,
            mail_queued(
                r.get(0)?,
                &r.get::<_, String>(1)?,
                &recipients,
                &r.get::<_, String>(3)?,
                &r.get::<_, String>(4)?,
                &r.get::<_, String>(5)?,
            ),
            r.get::<_, Option<i64>>(6)?,
        ))
    })?;
    let mut seen = std::collections::BTreeSet::new();
    for row in rows {
        let (id, content, sent) = row?;
        seen.insert(id);
        match chained.get(&id) {
            None if id < first => v.unchained += 1,
            None => v.breaks.push(format!(
                "e-mail {id} ({}) is not in the ledger: added behind the daemon's back",
                content["subject"]
            )),
            Some((queued, s)) => {
                if *queued != content {
                    v.breaks.push(format!("e-mail {id}: changed since it was queued (recipients, subject or text)"));
                }
                if *s != sent {
                    v.breaks.push(format!("e-mail {id}: its sending time was changed"));
                }
            }
        }
    }
    // Old e-mails are pruned from the outbox by design: a missing one is not a break.
    let _ = seen;
    Ok(())
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
