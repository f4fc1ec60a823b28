//! The daemon: wires config, scheduler, metrics, event log and HTTP server together, and
//! applies reloads. `run` takes its triggers (shutdown, reload) from the caller: only
//! `main.rs` knows signals and exit codes.

mod checks;
mod health;
mod reload;
mod sla;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::notify::Notifier;
use crate::notify::ack::AckKey;
use crate::notify::outbox::Transport;
use crate::probe::Probers;
use crate::scheduler::{Scheduler, Shared};
use crate::status::Board;
use crate::store::notices::NotifyDb;
use crate::store::{Op, Store, StoreHandle};
pub use checks::{check_icmp, check_sources, icmp_advice};
pub use health::SelfHealth;
use health::watch_load;
use reload::reload;
use sla::sla_metrics;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create state directory {path}: {source}")]
    StateDir {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Icmp(String),
    #[error(transparent)]
    Metrics(#[from] crate::metrics::MetricsError),
    #[error("HTTP server: {0}")]
    Server(std::io::Error),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("cannot start the store writer: {0}")]
    Writer(std::io::Error),
    #[error("cannot create the acknowledgement key in the state directory: {0}")]
    AckKey(std::io::Error),
    #[error("{0}")]
    Smtp(String),
}

/// The latest SLA reports (every started period and the last 24 h), for the status page and API.
/// A request to re-read the config file; the answer says what changed or why it was refused.
pub struct ReloadRequest {
    pub reply: Option<oneshot::Sender<Result<crate::scheduler::Applied, Vec<String>>>>,
}

/// What the HTTP layer serves: the daemon's running parts, shared.
pub struct Handles {
    pub metrics: Arc<Metrics>,
    /// Every target's state now (the status pages and the API read it).
    pub board: Arc<Board>,
    /// The config in force; a reload replaces it.
    pub config: watch::Receiver<Arc<Config>>,
    /// Asks the daemon to re-read the config file.
    pub reload: mpsc::Sender<ReloadRequest>,
    /// False while starting and stopping (`/readyz` answers 503).
    pub ready: Arc<AtomicBool>,
    /// Commands to the notifier (acknowledgements).
    pub notify: crate::notify::NotifyHandle,
    /// Signs and checks the acknowledgement links of e-mails.
    pub ack_key: Arc<AckKey>,
    /// Incidents and the outbox (read-only use here: pages, API, `/readyz`).
    pub incidents: Arc<std::sync::Mutex<NotifyDb>>,
    /// Pushes of heartbeat targets.
    pub heartbeats: Arc<crate::probe::heartbeat::Heartbeats>,
    /// The SLA figures of the periods in force, refreshed by the SLA task.
    pub sla: SlaCache,
    /// The store file, opened read-only for reports.
    pub store_path: std::path::PathBuf,
    /// When this run started (ms): reports count the time since as observed.
    pub run_started: i64,
    pub postal: Arc<crate::postal::tracker::Tracker>,
    pub health: Arc<SelfHealth>,
    /// Test messages waiting for their delivery report or arrival.
    pub sms: Arc<crate::probe::sms::SmsHub>,
}

/// Builds the HTTP service over the handles (`thongsuot::http::router`): passed in, so that
/// the daemon does not depend on the HTTP layer that depends on it.
pub type App = fn(Handles) -> axum::Router;

pub type SlaCache = Arc<std::sync::RwLock<Arc<Vec<crate::report::Report>>>>;

/// How often the daemon records that it is alive: the most observed time a crash can lose.
pub const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(2);
/// How often SLA figures are recomputed for `/metrics`.
pub const SLA_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// The caller's handles on a running daemon.
pub struct Control {
    pub shutdown: CancellationToken,
    reload_tx: mpsc::Sender<ReloadRequest>,
    reload_rx: mpsc::Receiver<ReloadRequest>,
}

impl Control {
    pub fn new() -> Control {
        let (reload_tx, reload_rx) = mpsc::channel(8);
        Control { shutdown: CancellationToken::new(), reload_tx, reload_rx }
    }

    /// A sender for reload requests (SIGHUP in `main.rs`).
    pub fn reloader(&self) -> mpsc::Sender<ReloadRequest> {
        self.reload_tx.clone()
    }
}

impl Default for Control {
    fn default() -> Self {
        Control::new()
    }
}

/// Creates the state directory, readable by the daemon's user only.
fn create_state_dir(path: &std::path::Path) -> Result<(), DaemonError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let err = |source| DaemonError::StateDir { path: path.to_path_buf(), source };
    if !path.exists() {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(path).map_err(err)?;
    } else {
        let meta = std::fs::metadata(path).map_err(err)?;
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(path = %path.display(), "state directory is readable by others; consider chmod 700");
        }
    }
    Ok(())
}

/// Runs the daemon until `control.shutdown` is cancelled.
pub async fn run(config: Config, mut control: Control, app: App) -> Result<(), DaemonError> {
    let listener = TcpListener::bind(config.daemon.listen)
        .await
        .map_err(|source| DaemonError::Listen { addr: config.daemon.listen, source })?;
    run_on(config, listener, &mut control, app).await
}

/// As [`run`], on a listener the caller bound (tests bind `127.0.0.1:0`).
pub async fn run_on(config: Config, listener: TcpListener, control: &mut Control, app: App) -> Result<(), DaemonError> {
    crate::tls::ensure_crypto_provider();
    create_state_dir(&config.daemon.state_dir)?;
    check_icmp(&config).map_err(DaemonError::Icmp)?;
    check_sources(&config).map_err(DaemonError::Icmp)?;
    for w in config.warnings.iter().map(ToString::to_string).chain(icmp_advice(&config)) {
        tracing::warn!("{w}");
    }

    let metrics = Arc::new(Metrics::new(&config.daemon.vantage, config.daemon.per_target_histograms)?);
    let store_path = Store::path_in(&config.daemon.state_dir);
    let store = Store::open(&store_path)?;
    let restored = store.restore()?;
    let run_started = unix_ms();
    let run_id = store.begin_run(run_started, &config.daemon.vantage)?;
    let errors = metrics.clone();
    let self_health = Arc::new(SelfHealth::default());
    let (store_handle, store_thread) =
        crate::store::writer::spawn(store, self_health.writer.clone(), move |_| errors.store_errors.inc())
            .map_err(DaemonError::Writer)?;
    let load = tokio::spawn(watch_load(metrics.clone(), self_health.clone()));

    let board = Arc::new(Board::default());
    let pushes = Arc::new(crate::probe::heartbeat::Heartbeats::default());
    let (events_tx, events_rx) = mpsc::channel(4096);
    let config = Arc::new(config);
    let (config_tx, config_rx) = watch::channel(config.clone());
    let probers = Probers::with_heartbeats(pushes.clone());
    let postal_health = probers.postal.clone();
    let sms_hub = probers.sms.clone();
    let sla_now = Arc::new(tokio::sync::Notify::new());
    let shared = Arc::new(Shared {
        probers,
        metrics: metrics.clone(),
        board: board.clone(),
        semaphore: Arc::new(Semaphore::new(config.daemon.max_in_flight)),
        events: events_tx,
        config: config_rx.clone(),
        vantage: config.daemon.vantage.clone(),
        store: store_handle.clone(),
        restored: std::sync::Mutex::new(restored),
        sla_now: sla_now.clone(),
    });
    let root = control.shutdown.child_token();
    let mut scheduler = Scheduler::new(shared, root.clone());
    let applied = scheduler.apply(&config).await;
    record_targets(&store_handle, &config);
    record_config(&store_handle, &config);
    metrics.config_reload_success.set(1);
    metrics.config_reload_timestamp.set(unix_now());
    tracing::info!(
        targets = applied.added.len(),
        listen = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        vantage = %config.daemon.vantage,
        config = %config.path.display(),
        store = %store_path.display(),
        "thongsuot {} started",
        env!("CARGO_PKG_VERSION")
    );

    let heartbeat = tokio::spawn(heartbeats(store_handle.clone(), run_id));
    let sla_cache: SlaCache = Arc::default();
    let sla = tokio::spawn(sla_metrics(
        store_path.clone(),
        config_rx.clone(),
        metrics.clone(),
        run_started,
        sla_now.clone(),
        sla_cache.clone(),
    ));

    // Notifications: incidents and the outbox share the store file.
    let notify_db = Arc::new(std::sync::Mutex::new(NotifyDb::open(&store_path)?));
    let ack_key = Arc::new(AckKey::load_or_create(&config.daemon.state_dir).map_err(DaemonError::AckKey)?);
    let transport =
        Arc::new(Transport::from_config(config.smtp.as_ref(), &config.daemon.state_dir).map_err(DaemonError::Smtp)?);
    tracing::info!("e-mail: {}", transport.describe(config.smtp.as_ref()));
    let from = config.smtp.as_ref().map_or_else(|| "thongsuot@localhost".to_string(), |s| s.from.clone());
    let outbox_wake = Arc::new(tokio::sync::Notify::new());
    let (notify_handle, notify_commands) = crate::notify::channel();
    let notifier = Notifier::new(
        config_rx.clone(),
        notify_db.clone(),
        ack_key.clone(),
        outbox_wake.clone(),
        store_path.clone(),
        run_started,
    );
    let notifier_stop = CancellationToken::new();
    let events = tokio::spawn(notifier.run(events_rx, notify_commands, notifier_stop.clone()));
    let sender_stop = CancellationToken::new();
    let sender = tokio::spawn(crate::notify::outbox::run_sender(
        notify_db.clone(),
        transport,
        from,
        metrics.clone(),
        outbox_wake.clone(),
        sender_stop.clone(),
    ));

    // Postal consignments: always running, idle without a [postal] section (a reload may add one).
    let tracker = crate::postal::tracker::Tracker::new(
        config_rx.clone(),
        crate::store::consignments::PostalDb::open(&store_path)?,
        postal_health,
        metrics.clone(),
        outbox_wake.clone(),
    )?;
    let tracker_stop = CancellationToken::new();
    let tracker_task = tokio::spawn(tracker.clone().run(tracker_stop.clone()));

    let ready = Arc::new(AtomicBool::new(true));
    let app = app(Handles {
        metrics: metrics.clone(),
        board,
        config: config_rx,
        reload: control.reloader(),
        ready: ready.clone(),
        notify: notify_handle,
        ack_key,
        incidents: notify_db,
        heartbeats: pushes,
        sla: sla_cache,
        store_path: store_path.clone(),
        run_started,
        postal: tracker,
        health: self_health,
        sms: sms_hub,
    });
    // systemd: ready now; the watchdog is fed from a task of the runtime, so a stalled runtime
    // (the failure the watchdog exists for) stops feeding it.
    crate::sdnotify::ready();
    let watchdog = crate::sdnotify::watchdog_interval().map(|every| {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                crate::sdnotify::watchdog();
            }
        })
    });
    let server_stop = root.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
            .with_graceful_shutdown(async move { server_stop.cancelled().await })
            .await
    });

    loop {
        tokio::select! {
            _ = control.shutdown.cancelled() => break,
            req = control.reload_rx.recv() => {
                let Some(req) = req else { break };
                let result = reload(&config_tx, &mut scheduler, &metrics).await;
                if result.is_ok() {
                    record_targets(&store_handle, &config_tx.borrow());
                    record_config(&store_handle, &config_tx.borrow());
                    // Removed targets must leave the SLA series now, not in 30 s.
                    sla_now.notify_one();
                }
                if let Some(reply) = req.reply {
                    let _ = reply.send(result);
                }
            }
        }
    }

    tracing::info!("shutting down");
    crate::sdnotify::stopping();
    if let Some(w) = watchdog {
        w.abort();
    }
    ready.store(false, Ordering::Release);
    // One deadline for the whole shutdown (within systemd's TimeoutStopSec): running probes and
    // the postal round get the first half of it, so that what must reach the disk and the outbox
    // — the last heartbeat, the notifier's last e-mails — still has time when they overrun.
    let grace = config_tx.borrow().daemon.shutdown_grace;
    let start = tokio::time::Instant::now();
    let (half, deadline) = (start + grace / 2, start + grace);
    let late = |stage: &str| {
        tracing::warn!(
            stage,
            "shutdown: {stage} did not finish within daemon.shutdown_grace ({grace:?}); stopped anyway"
        );
    };
    scheduler.shutdown(half.saturating_duration_since(tokio::time::Instant::now())).await;
    drop(scheduler);
    heartbeat.abort();
    sla.abort();
    load.abort();
    tracker_stop.cancel();
    if tokio::time::timeout_at(half, tracker_task).await.is_err() {
        late("the postal tracker");
    }
    // The last observed instant, then everything committed before the writer stops.
    store_handle.send(Op::Heartbeat { run: run_id, at: unix_ms() });
    if tokio::time::timeout_at(deadline, store_handle.flush()).await.is_err() {
        late("the store writer (flush)");
    }
    drop(store_handle);
    if tokio::time::timeout_at(deadline, tokio::task::spawn_blocking(move || store_thread.join())).await.is_err() {
        late("the store writer");
    }
    // The scheduler is gone, so the event channel is closed: the notifier queues what is left
    // and ends. Pending e-mails stay in the outbox for the next start.
    if tokio::time::timeout_at(deadline, events).await.is_err() {
        late("the notifier");
        notifier_stop.cancel();
    }
    sender_stop.cancel();
    if tokio::time::timeout_at(deadline, sender).await.is_err() {
        late("the e-mail sender");
    }
    // The HTTP server has had the whole shutdown to finish its requests.
    match tokio::time::timeout_at(
        deadline.max(tokio::time::Instant::now() + std::time::Duration::from_millis(100)),
        server,
    )
    .await
    {
        Ok(Ok(Err(e))) => return Err(DaemonError::Server(e)),
        Ok(_) => {}
        Err(_) => late("the HTTP server"),
    }
    tracing::info!(seconds = start.elapsed().as_secs_f64(), "stopped");
    Ok(())
}

fn unix_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Records which targets this run watches (their first-seen time anchors observed time).
fn record_targets(store: &StoreHandle, config: &Config) {
    let targets =
        config.active_targets().map(|t| (t.name.clone(), t.group.clone(), t.spec.kind().to_string())).collect();
    store.send(Op::Targets { at: unix_ms(), targets });
}

/// Puts the hash of the config file in force into the ledger.
fn record_config(store: &StoreHandle, config: &Config) {
    let Ok(text) = std::fs::read_to_string(&config.path) else { return };
    store.send(Op::Config {
        at: unix_ms(),
        path: config.path.display().to_string(),
        sha256: crate::store::chain::digest(&text),
    });
}

async fn heartbeats(store: StoreHandle, run: i64) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        store.send(Op::Heartbeat { run, at: unix_ms() });
    }
}

fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}
