//! A reload: the new config validated, applied to the scheduler, and the answer saying
//! what changed beyond the targets.

use std::sync::Arc;

use tokio::sync::watch;

use super::{check_icmp, check_sources, icmp_advice, unix_now};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::scheduler::Scheduler;

/// Re-reads the config file; a bad file changes nothing.
pub(super) async fn reload(
    config_tx: &watch::Sender<Arc<Config>>,
    scheduler: &mut Scheduler,
    metrics: &Metrics,
) -> Result<crate::scheduler::Applied, Vec<String>> {
    let old = config_tx.borrow().clone();
    // Read and validated right here, on the thread that runs the daemon's main future (`block_on`
    // in main.rs, not a runtime worker: probes and the API do not wait for it), the thread that
    // loaded the config at start. On a pool thread each reload would grow another allocator
    // arena by the size of a parse, and that memory would stay with the daemon.
    let loaded = Config::reload(&old);
    let new = match loaded {
        Ok(c) => c,
        Err(e) => {
            let msgs = e.messages();
            for m in &msgs {
                tracing::error!("reload rejected, old config keeps running: {m}");
            }
            metrics.config_reload_success.set(0);
            return Err(msgs);
        }
    };
    if let Err(e) = check_icmp(&new).and_then(|()| check_sources(&new)) {
        tracing::error!("reload rejected, old config keeps running: {e}");
        metrics.config_reload_success.set(0);
        return Err(vec![e]);
    }
    let smtp_changed = format!("{:?}", new.smtp) != format!("{:?}", old.smtp)
        || new.smtp.as_ref().map(|s| &s.password) != old.smtp.as_ref().map(|s| &s.password);
    if smtp_changed {
        tracing::warn!("[smtp] changes take effect at the next restart; e-mail still goes through the old settings");
    }
    if new.daemon.listen != old.daemon.listen || new.daemon.state_dir != old.daemon.state_dir {
        tracing::warn!("daemon.listen and daemon.state_dir changes take effect at the next restart");
    }
    for w in new.warnings.iter().map(ToString::to_string).chain(icmp_advice(&new)) {
        tracing::warn!("{w}");
    }
    let new = Arc::new(new);
    config_tx.send_replace(new.clone());
    let mut applied = scheduler.apply(&new).await;
    applied.other = changed_beyond_targets(&old, &new, smtp_changed);
    metrics.config_reload_success.set(1);
    metrics.config_reload_timestamp.set(unix_now());
    tracing::info!(
        added = applied.added.len(),
        removed = applied.removed.len(),
        changed = applied.changed.len(),
        unchanged = applied.unchanged,
        other = %applied.other.join("; "),
        "config reloaded"
    );
    Ok(applied)
}

/// The sections other than targets that a reload changed, by name.
fn changed_beyond_targets(old: &Config, new: &Config, smtp_changed: bool) -> Vec<String> {
    fn named<T: std::fmt::Debug>(what: &str, old: &[T], new: &[T], name: impl Fn(&T) -> String, out: &mut Vec<String>) {
        let find = |list: &[T], n: &str| list.iter().find(|x| name(x) == n).map(|x| format!("{x:?}"));
        for x in new {
            match find(old, &name(x)) {
                None => out.push(format!("{what} {:?} added", name(x))),
                Some(before) if before != format!("{x:?}") => out.push(format!("{what} {:?} changed", name(x))),
                Some(_) => {}
            }
        }
        for x in old.iter().filter(|x| find(new, &name(x)).is_none()) {
            out.push(format!("{what} {:?} removed", name(x)));
        }
    }
    let mut out = Vec::new();
    named("period", &old.periods, &new.periods, |p| p.name.clone(), &mut out);
    // Maintenance windows need not have a name: the start tells them apart.
    let window = |m: &crate::config::Maintenance| m.name.clone().unwrap_or_else(|| m.start.to_rfc3339());
    named("maintenance", &old.maintenance, &new.maintenance, window, &mut out);
    named("group", &old.groups, &new.groups, |g| g.name.clone(), &mut out);
    named("contact", &old.contacts, &new.contacts, |c| c.name.clone(), &mut out);
    if format!("{:?}", old.defaults) != format!("{:?}", new.defaults) {
        out.push("[defaults] changed".into());
    }
    if format!("{:?}", old.postal) != format!("{:?}", new.postal) {
        out.push("[postal] changed".into());
    }
    if smtp_changed {
        out.push("[smtp] changed (takes effect at the next restart)".into());
    }
    if old.daemon.listen != new.daemon.listen || old.daemon.state_dir != new.daemon.state_dir {
        out.push("daemon.listen or daemon.state_dir changed (takes effect at the next restart)".into());
    }
    out
}
