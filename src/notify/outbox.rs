//! Delivery: the outbox sender drains due e-mails through the transport — SMTP (lettre: plain,
//! STARTTLS or implicit TLS, AUTH) or, with no `[smtp]`, `.eml` files under `state_dir/mail/`.
//! A message leaves the outbox only once the server accepted it; transient failures are retried
//! with exponential backoff and jitter; permanent (5xx) failures are kept and reported.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio_util::sync::CancellationToken;

use crate::config::{Smtp, SmtpTls};
use crate::metrics::Metrics;
use crate::store::notices::{NotifyDb, OutboxRow};

pub enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// No `[smtp]`: e-mails are written as `.eml` files here.
    Files(PathBuf),
}

/// Why a delivery failed, and whether trying again can help.
#[derive(Debug)]
pub struct SendError {
    pub permanent: bool,
    pub message: String,
}

impl Transport {
    pub fn from_config(smtp: Option<&Smtp>, state_dir: &std::path::Path) -> Result<Transport, String> {
        let Some(s) = smtp else {
            return Ok(Transport::Files(state_dir.join("mail")));
        };
        crate::tls::ensure_crypto_provider();
        let params = || -> Result<TlsParameters, String> {
            let mut b = TlsParameters::builder(s.host.clone()).dangerous_accept_invalid_certs(!s.tls_verify);
            if let Some(ca) = &s.ca_file {
                let pem = std::fs::read(ca).map_err(|e| format!("smtp.ca_file {}: {e}", ca.display()))?;
                let cert = Certificate::from_pem(&pem).map_err(|e| format!("smtp.ca_file {}: {e}", ca.display()))?;
                b = b.add_root_certificate(cert);
            }
            b.build_rustls().map_err(|e| format!("SMTP TLS settings: {e}"))
        };
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(s.host.clone())
            .port(s.port)
            .timeout(Some(s.timeout));
        b = match s.tls {
            SmtpTls::None => b.tls(Tls::None),
            SmtpTls::Starttls => b.tls(Tls::Required(params()?)),
            SmtpTls::Tls => b.tls(Tls::Wrapper(params()?)),
        };
        if let (Some(user), Some(pass)) = (&s.username, &s.password) {
            b = b.credentials(Credentials::new(user.clone(), pass.clone()));
        }
        if let Some(h) = &s.hello_name {
            b = b.hello_name(ClientId::Domain(h.clone()));
        }
        Ok(Transport::Smtp(b.build()))
    }

    pub fn describe(&self, smtp: Option<&Smtp>) -> String {
        match (self, smtp) {
            (Transport::Smtp(_), Some(s)) => {
                let tls = match s.tls {
                    SmtpTls::None => "plain, no TLS",
                    SmtpTls::Starttls => "STARTTLS",
                    SmtpTls::Tls => "implicit TLS",
                };
                format!("SMTP {}:{} ({tls})", s.host, s.port)
            }
            (Transport::Files(dir), _) => {
                format!("no [smtp] configured: e-mails are written as .eml files to {}", dir.display())
            }
            (Transport::Smtp(_), None) => "SMTP".into(),
        }
    }

    pub async fn send(&self, message: Message) -> Result<(), SendError> {
        match self {
            Transport::Smtp(t) => t.send(message).await.map(|_| ()).map_err(|e| {
                let message = crate::text::error_chain(&e);
                // A server without STARTTLS will not grow one by retrying: say what to set.
                if message.contains("STARTTLS is not supported") {
                    return SendError {
                        permanent: true,
                        message: format!(
                            "{message}: the server offers no STARTTLS; for a plain server set tls = \"none\" in [smtp] \
                             (or tls = \"tls\" for implicit TLS, usually port 465)"
                        ),
                    };
                }
                SendError { permanent: e.is_permanent(), message }
            }),
            Transport::Files(dir) => {
                let dir = dir.clone();
                let bytes = message.formatted();
                tokio::task::spawn_blocking(move || write_eml(&dir, &bytes))
                    .await
                    .map_err(|e| SendError { permanent: false, message: e.to_string() })?
                    .map_err(|e| SendError { permanent: false, message: e.to_string() })
            }
        }
    }
}

/// Writes atomically (a reader never sees half a message) and never over another message: the
/// name carries a sequence number, and the final link fails rather than replace a file.
fn write_eml(dir: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3f");
    let pid = std::process::id();
    for _ in 0..100 {
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("{stamp}-{pid}-{seq:06}.eml");
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, bytes)?;
        let linked = std::fs::hard_link(&tmp, dir.join(&name));
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("no free .eml file name"))
}

/// Builds the MIME message: multipart/alternative, UTF-8 text and HTML.
pub fn build_message(
    from: &str,
    recipients: &[String],
    subject: &str,
    text: &str,
    html: &str,
) -> Result<Message, String> {
    let from: Mailbox = format!("thongsuot <{from}>").parse().map_err(|e| format!("smtp.from {from:?}: {e}"))?;
    let mut b = Message::builder().from(from).subject(subject);
    for r in recipients {
        b = b.to(r.parse::<Mailbox>().map_err(|e| format!("recipient {r:?}: {e}"))?);
    }
    b.multipart(MultiPart::alternative_plain_html(text.to_string(), html.to_string()))
        .map_err(|e| format!("cannot build e-mail: {e}"))
}

/// Backoff before attempt `attempts + 1`: 2 s doubling to 5 min, with ±20 % jitter derived from
/// the message id so that many queued messages do not retry in lockstep.
pub fn backoff(id: i64, attempts: i64) -> Duration {
    let base = 2_000u64.saturating_mul(1u64 << attempts.clamp(0, 8)).min(300_000);
    let jitter = ((id.unsigned_abs().wrapping_mul(2_654_435_761) ^ attempts as u64) % 401) as f64 / 1000.0 - 0.2;
    Duration::from_millis((base as f64 * (1.0 + jitter)) as u64)
}

pub async fn with_db<T: Send + 'static>(
    db: &Arc<Mutex<NotifyDb>>,
    f: impl FnOnce(&NotifyDb) -> T + Send + 'static,
) -> Option<T> {
    let db = db.clone();
    tokio::task::spawn_blocking(move || {
        let guard = db.lock().unwrap_or_else(|p| p.into_inner());
        f(&guard)
    })
    .await
    .ok()
}

/// Sends due e-mails until cancelled. `wake` is notified when something is queued.
pub async fn run_sender(
    db: Arc<Mutex<NotifyDb>>,
    transport: Arc<Transport>,
    from: String,
    metrics: Arc<Metrics>,
    wake: Arc<tokio::sync::Notify>,
    cancel: CancellationToken,
) {
    let mut pruned_at = 0;
    loop {
        let now = chrono::Utc::now().timestamp_millis();
        // Hourly housekeeping: sent mail kept 30 days; mail undeliverable for 2 days is failed.
        if now - pruned_at > 3_600_000 {
            pruned_at = now;
            if let Some(Ok((deleted, failed))) =
                with_db(&db, move |d| d.prune(now, 30 * 86_400_000, 2 * 86_400_000)).await
                && failed > 0
            {
                tracing::error!(failed, deleted, "e-mails undeliverable for 2 days are now marked failed");
            }
        }
        let due = with_db(&db, move |d| d.due(now, 32)).await;
        let rows: Vec<OutboxRow> = match due {
            Some(Ok(r)) => r,
            Some(Err(e)) => {
                tracing::error!("outbox: {e}");
                Vec::new()
            }
            None => Vec::new(),
        };
        // Stopping: what is due is still delivered (the daemon bounds this by its shutdown
        // deadline); the sender ends once nothing more is due now.
        if cancel.is_cancelled() && rows.is_empty() {
            return;
        }
        for row in rows {
            deliver(&db, &transport, &from, &metrics, row).await;
        }
        if let Some(Ok(n)) = with_db(&db, |d| d.count("pending")).await {
            metrics.outbox_pending.set(n);
        }
        let next = with_db(&db, |d| d.next_due()).await.and_then(Result::ok).flatten();
        let now = chrono::Utc::now().timestamp_millis();
        let wait = match next {
            Some(t) if t <= now => Duration::ZERO,
            Some(t) => Duration::from_millis((t - now) as u64).min(Duration::from_secs(5)),
            None => Duration::from_secs(5),
        };
        if wait.is_zero() {
            continue;
        }
        tokio::select! {
            _ = cancel.cancelled() => {}
            _ = wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

async fn deliver(db: &Arc<Mutex<NotifyDb>>, transport: &Transport, from: &str, metrics: &Metrics, row: OutboxRow) {
    let id = row.id;
    let message = match build_message(from, &row.recipients, &row.subject, &row.text, &row.html) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(id, "e-mail cannot be built, kept as failed: {e}");
            metrics.notifications.with_label_values(&["failed"]).inc();
            let _ = with_db(db, move |d| d.mark_failed(id, &e)).await;
            return;
        }
    };
    // The transport has its own timeouts; this bounds a stuck peer as well.
    let result = match tokio::time::timeout(Duration::from_secs(60), transport.send(message)).await {
        Ok(r) => r,
        Err(_) => Err(SendError { permanent: false, message: "no answer from the SMTP server within 60 s".into() }),
    };
    let now = chrono::Utc::now().timestamp_millis();
    match result {
        Ok(()) => {
            metrics.notifications.with_label_values(&["sent"]).inc();
            if let Some(opened) = row.incident_opened_ms {
                metrics.notification_latency.observe(((now - opened).max(0)) as f64 / 1000.0);
            }
            tracing::info!(id, kind = %row.kind, to = %row.recipients.join(","), subject = %row.subject, "e-mail accepted");
            let _ = with_db(db, move |d| d.mark_sent(id, now)).await;
        }
        Err(e) if e.permanent => {
            metrics.notifications.with_label_values(&["failed"]).inc();
            tracing::error!(id, error = %e.message, "e-mail refused permanently; kept in the outbox as failed");
            let _ = with_db(db, move |d| d.mark_failed(id, &e.message)).await;
        }
        Err(e) => {
            metrics.notifications.with_label_values(&["retry"]).inc();
            let wait = backoff(id, row.attempts);
            tracing::warn!(id, attempt = row.attempts + 1, error = %e.message, "e-mail not delivered; retrying in {wait:?}");
            let next = now + wait.as_millis() as i64;
            let _ = with_db(db, move |d| d.mark_retry(id, next, &e.message)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let a = backoff(1, 0).as_millis();
        assert!((1600..=2400).contains(&a), "{a}");
        assert!(backoff(1, 3).as_millis() > backoff(1, 1).as_millis());
        assert!(backoff(1, 40).as_millis() <= 360_000);
        assert_ne!(backoff(1, 2), backoff(2, 2), "jitter differs between messages");
    }

    #[test]
    fn message_encodes_vietnamese_subject() {
        let m = build_message(
            "a@example.vn",
            &["b@example.vn".into()],
            "[VI PHẠM] vnpt: mất kết nối",
            "văn bản",
            "<p>html</p>",
        )
        .expect("message");
        let raw = String::from_utf8(m.formatted()).expect("ascii");
        assert!(raw.lines().any(|l| l.starts_with("Subject: ") && l.contains("=?utf-8?")), "{raw}");
        assert!(raw.contains("multipart/alternative"));
    }

    #[test]
    fn eml_files_written_in_the_same_millisecond_do_not_replace_each_other() {
        let dir = tempfile::tempdir().expect("tempdir");
        for i in 0..50 {
            super::write_eml(dir.path(), format!("message {i}").as_bytes()).expect("write");
        }
        let n = std::fs::read_dir(dir.path())
            .expect("dir")
            .filter(|e| e.as_ref().is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".eml")))
            .count();
        assert_eq!(n, 50);
    }
}
