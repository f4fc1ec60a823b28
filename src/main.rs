//! The `thongsuot` binary: command line, logging, signals and exit codes. Everything else
//! lives in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use thongsuot::config::{Config, ConfigError};
use thongsuot::daemon::ReloadRequest;
use thongsuot::daemon::{self, Control, DaemonError};

/// Watches telecom carriers and postal operators against the exam-season promises.
#[derive(Parser)]
#[command(name = "thongsuot", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon. SIGHUP or `POST /-/reload` re-reads the config; SIGTERM stops it.
    Run {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate a config file: every error as FILE:LINE:COL: message, exit code 1.
    Check {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Prometheus recording and alerting rules (YAML) equivalent to the built-in breach logic,
    /// for deployments that alert through Prometheus + Alertmanager.
    Rules {
        #[arg(long, short)]
        config: PathBuf,
        /// The Prometheus job name that scrapes the daemons.
        #[arg(long, default_value = "thongsuot")]
        job: String,
    },
    /// Copy the store to FILE while the daemon runs (SQLite online backup).
    Backup {
        #[arg(long, short)]
        config: PathBuf,
        /// Destination file (must not exist).
        #[arg(long)]
        to: PathBuf,
    },
    /// Check the tamper-evident ledger of the store: every entry follows the one before it, and
    /// the outages, incidents and e-mails in the store are what the ledger recorded. Exit 3 if not.
    Verify {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Send a sample breach e-mail to ADDRESS through the configured [smtp], to check the
    /// settings (or write it as an .eml file when no [smtp] is configured).
    TestEmail {
        #[arg(long, short)]
        config: PathBuf,
        /// Recipient of the test message.
        #[arg(long)]
        to: String,
        /// en or vi (default: daemon.language).
        #[arg(long)]
        lang: Option<String>,
    },
    /// SLA report from the store: per group and target, availability over observed time,
    /// coverage, downtime, outages. Default window: the period in force now, else the last 24 h.
    Report {
        #[arg(long, short)]
        config: PathBuf,
        /// A [[period]] name from the config.
        #[arg(long, conflicts_with_all = ["from", "to"])]
        period: Option<String>,
        /// Start of a custom window (RFC 3339 or local time in daemon.timezone).
        #[arg(long, requires = "to")]
        from: Option<String>,
        #[arg(long, requires = "from")]
        to: Option<String>,
        /// text, md, csv, json or html.
        #[arg(long, default_value = "text")]
        format: thongsuot::report::render::Format,
        /// en or vi (default: daemon.language).
        #[arg(long)]
        lang: Option<String>,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

/// Exit codes: 0 ok, 1 invalid config, 2 the daemon could not run, 3 the ledger does not verify.
const EXIT_CONFIG: u8 = 1;
const EXIT_RUNTIME: u8 = 2;
const EXIT_LEDGER: u8 = 3;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match cli.command {
        Command::Check { config } => check(&config),
        Command::Run { config } => {
            tune_allocator();
            run(&config)
        }
        Command::TestEmail { config, to, lang } => test_email(&config, &to, lang),
        Command::Backup { config, to } => backup(&config, &to),
        Command::Verify { config } => verify(&config),
        Command::Rules { config, job } => match load_offline(&config) {
            Ok(c) => {
                print!("{}", thongsuot::rules::generate(&c, &job));
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Report { config, period, from, to, format, lang, output } => {
            report(&config, period, from.zip(to), format, lang, output)
        }
    }
}

/// Tunes glibc's allocator by running the daemon again (same process, same arguments) with
/// `GLIBC_TUNABLES` set to [`TUNABLES`]:
/// - `hugetlb=1`: the heap is backed by transparent huge pages. A probe touches its target's
///   state once per interval, so with a large fleet nearly every access misses the TLB when the
///   heap is in small pages; huge pages make a probe cheaper without growing resident memory.
/// - `arena_max=1`: every thread allocates from that one huge-paged heap. Thread arenas are
///   mapped apart, in small pages: the probe threads' allocations and whatever a worker thread
///   built (slots, copies of targets) would land there, out of the huge pages' reach, and each
///   arena keeps memory of its own. Blocks up to about 1 KiB come from each thread's cache
///   without the arena's lock; larger ones take it, which on many cores may contend.
/// - `mmap_threshold=1 MiB`, fixed: every block of 1 MiB or more is mapped on its own and given
///   back to the kernel when freed. By default the threshold rises to the size of the last such
///   block freed (up to 32 MiB), so the SLA report of a large fleet (rebuilt every 30 s while
///   the previous one is still served) would move into the heap and stay there, twice over;
///   with the threshold fixed, each report's memory goes back to the kernel when it is freed.
///
/// A `GLIBC_TUNABLES` already set is respected (set it, even empty, to opt out); where glibc or
/// the kernel do not support a setting it does nothing.
const TUNABLES: &str = "glibc.malloc.hugetlb=1:glibc.malloc.arena_max=1:glibc.malloc.mmap_threshold=1048576";

fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt;
        if std::env::var_os("GLIBC_TUNABLES").is_some() {
            return;
        }
        let Ok(exe) = std::env::current_exe() else { return };
        // Only returns when the exec failed: then the daemon runs as it is.
        let err =
            std::process::Command::new(exe).args(std::env::args_os().skip(1)).env("GLIBC_TUNABLES", TUNABLES).exec();
        tracing::debug!("running without huge pages: {err}");
    }
}

fn backup(path: &std::path::Path, to: &std::path::Path) -> ExitCode {
    let config = match load_offline(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if to.exists() {
        eprintln!("error: {} exists; choose a new file", to.display());
        return ExitCode::from(EXIT_CONFIG);
    }
    let src = thongsuot::store::Store::path_in(&config.daemon.state_dir);
    match thongsuot::store::Store::open_read_only(&src).and_then(|s| s.backup_to(to)) {
        Ok(()) => {
            println!("{} copied to {}", src.display(), to.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

fn verify(path: &std::path::Path) -> ExitCode {
    let config = match load_offline(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let src = thongsuot::store::Store::path_in(&config.daemon.state_dir);
    let verdict = match thongsuot::store::Store::open_read_only(&src).and_then(|s| s.verify()) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    let head = verdict.head.as_ref().map_or_else(|| "empty".to_string(), |h| format!("entry #{} {}", h.seq, h.hash));
    if verdict.breaks.is_empty() {
        println!(
            "{}: ledger OK: {} entries, head {head}{}",
            src.display(),
            verdict.entries,
            if verdict.unchained > 0 {
                format!(" ({} records older than the ledger are not covered)", verdict.unchained)
            } else {
                String::new()
            }
        );
        return ExitCode::SUCCESS;
    }
    for b in &verdict.breaks {
        println!("{}: BROKEN: {b}", src.display());
    }
    println!(
        "{}: ledger does NOT verify: {} problem(s); {} entries, head {head}",
        src.display(),
        verdict.breaks.len(),
        verdict.entries
    );
    ExitCode::from(EXIT_LEDGER)
}

fn parse_lang(
    lang: Option<&str>,
    default: thongsuot::config::Language,
) -> Result<thongsuot::config::Language, ExitCode> {
    use thongsuot::config::Language;
    match lang {
        None => Ok(default),
        Some("en") => Ok(Language::En),
        Some("vi") => Ok(Language::Vi),
        Some(other) => {
            eprintln!("error: --lang must be en or vi, not {other:?}");
            Err(ExitCode::from(EXIT_CONFIG))
        }
    }
}

fn test_email(path: &std::path::Path, to: &str, lang: Option<String>) -> ExitCode {
    use thongsuot::notify::outbox::{Transport, build_message};
    use thongsuot::notify::render::{Context, Item, MailKind, render};
    let config = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let lang = match parse_lang(lang.as_deref(), config.daemon.language) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let now = chrono::Utc::now().timestamp_millis();
    let group = config.groups.first();
    let cx = Context {
        group: group.map_or_else(|| "example".to_string(), |g| g.name.clone()),
        group_display: group.and_then(|g| g.display_name.clone()),
        contingency: group.and_then(|g| g.contingency.clone()),
        runbook_url: group.and_then(|g| g.runbook_url.clone()),
        vantage: config.daemon.vantage.clone(),
        period: "test".into(),
        status_url: config.daemon.public_url.as_ref().map(|u| format!("{u}/")),
        grafana_url: config.daemon.grafana_url.clone(),
        tz: config.daemon.timezone,
        now_ms: now,
    };
    let item = Item {
        target: config.targets.first().map_or_else(|| "example-target".to_string(), |t| t.name.clone()),
        description: None,
        degraded: false,
        since_ms: now - 252_000,
        until_ms: None,
        reason: Some("timeout".into()),
        detail: Some("sample: no answer within 3s".into()),
        availability: Some(0.9971),
        downtime_ms: 252_000,
        observed_ms: 86_400_000,
        breach: true,
        ack_link: None,
        lengths: Some((252_000, 0)),
    };
    let (subject, text, html) = render(MailKind::Test, &[item], &cx, lang);
    let from = config.smtp.as_ref().map_or_else(|| "thongsuot@localhost".to_string(), |s| s.from.clone());
    let message = match build_message(&from, &[to.to_string()], &subject, &text, &html) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    let result = rt.block_on(async {
        let transport = Transport::from_config(config.smtp.as_ref(), &config.daemon.state_dir)?;
        eprintln!("{}", transport.describe(config.smtp.as_ref()));
        transport.send(message).await.map_err(|e| {
            format!("{} ({})", e.message, if e.permanent { "permanent: the server refused it" } else { "transient" })
        })
    });
    match result {
        Ok(()) => {
            println!("test e-mail to {to} accepted: {subject}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: test e-mail to {to} failed: {e}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

fn report(
    path: &std::path::Path,
    period: Option<String>,
    range: Option<(String, String)>,
    format: thongsuot::report::render::Format,
    lang: Option<String>,
    output: Option<PathBuf>,
) -> ExitCode {
    use thongsuot::config::Language;
    use thongsuot::sla::spans::Span;
    let config = match load_offline(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let tz = config.daemon.timezone;
    let lang = match lang.as_deref() {
        None => config.daemon.language,
        Some("en") => Language::En,
        Some("vi") => Language::Vi,
        Some(other) => {
            eprintln!("error: --lang must be en or vi, not {other:?}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let now = chrono::Utc::now();
    let (name, window, p) = if let Some(name) = period {
        match config.periods.iter().find(|p| p.name == name) {
            Some(p) => (p.name.clone(), Span::new(p.start.timestamp_millis(), p.end.timestamp_millis()), Some(p)),
            None => {
                let known: Vec<&str> = config.periods.iter().map(|p| p.name.as_str()).collect();
                eprintln!("error: no period {name:?} in {}; periods: {}", path.display(), known.join(", "));
                return ExitCode::from(EXIT_CONFIG);
            }
        }
    } else if let Some((from, to)) = range {
        let parse = |s: &str| thongsuot::config::units::parse_time_str(s, tz);
        match (parse(&from), parse(&to)) {
            (Ok(f), Ok(t)) if t > f => {
                ("custom".to_string(), Span::new(f.timestamp_millis(), t.timestamp_millis()), None)
            }
            (Ok(_), Ok(_)) => {
                eprintln!("error: --to must be after --from");
                return ExitCode::from(EXIT_CONFIG);
            }
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("error: {e}");
                return ExitCode::from(EXIT_CONFIG);
            }
        }
    } else {
        thongsuot::report::default_window(&config, now)
    };
    let store_path = thongsuot::store::Store::path_in(&config.daemon.state_dir);
    let built = thongsuot::store::Store::open_read_only(&store_path)
        .and_then(|store| thongsuot::report::build(&config, &store, &name, window, p, now, None));
    let report = match built {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    let text = thongsuot::report::render::render(&report, format, lang, tz);
    match output {
        Some(file) => {
            if let Err(e) = std::fs::write(&file, text) {
                eprintln!("error: cannot write {}: {e}", file.display());
                return ExitCode::from(EXIT_RUNTIME);
            }
        }
        None => print!("{text}"),
    }
    ExitCode::SUCCESS
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal (journald and log files get plain text), and never with NO_COLOR.
    use std::io::IsTerminal;
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).init();
}

fn load(path: &std::path::Path) -> Result<Config, ExitCode> {
    report_errors(path, Config::load(path))
}

/// For commands that read the store but never use a secret (`report`, `rules`, `backup`): a
/// secret missing from the environment is not an error there.
fn load_offline(path: &std::path::Path) -> Result<Config, ExitCode> {
    report_errors(path, Config::load_with_env(path, &|k| Some(std::env::var(k).unwrap_or_else(|_| "unused".into()))))
}

fn report_errors(path: &std::path::Path, loaded: Result<Config, ConfigError>) -> Result<Config, ExitCode> {
    match loaded {
        Ok(c) => Ok(c),
        Err(e @ ConfigError::Read { .. }) => {
            eprintln!("error: {e}");
            Err(ExitCode::from(EXIT_CONFIG))
        }
        Err(ConfigError::Invalid(diags)) => {
            for d in &diags {
                eprintln!("{d}");
            }
            eprintln!("{}: {} error{}", path.display(), diags.len(), if diags.len() == 1 { "" } else { "s" });
            Err(ExitCode::from(EXIT_CONFIG))
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("thongsuot")
        .build()
        .context("cannot start the async runtime")
}

fn check(path: &std::path::Path) -> ExitCode {
    let config = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    for w in &config.warnings {
        eprintln!("warning: {w}");
    }
    let icmp = runtime().map_err(|e| e.to_string()).and_then(|rt| {
        let _guard = rt.enter();
        daemon::check_icmp(&config).and_then(|()| daemon::check_sources(&config))
    });
    if let Err(e) = icmp {
        eprintln!("{}: {e}", path.display());
        return ExitCode::from(EXIT_RUNTIME);
    }
    if let Some(advice) = daemon::icmp_advice(&config) {
        eprintln!("warning: {advice}");
    }
    let mut kinds = std::collections::BTreeMap::<&str, usize>::new();
    for t in &config.targets {
        *kinds.entry(t.spec.kind()).or_default() += 1;
    }
    let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let n = |count: usize, word: &str| format!("{count} {word}{}", if count == 1 { "" } else { "s" });
    // The consignments file is data, not config: its bad rows are warnings (the daemon loads the rest).
    if let Some(csv) = config.postal.as_ref().and_then(|p| p.consignments.as_ref()) {
        let (rows, errors) = thongsuot::postal::intake::load_csv(csv, &config, chrono::Utc::now());
        for e in &errors {
            eprintln!("warning: {e}");
        }
        println!("{}: {} loaded, {} with errors", csv.display(), n(rows.len(), "consignment"), errors.len());
    }
    println!(
        "{}: OK: {} ({}), {}, {}, {}, {}",
        path.display(),
        n(config.targets.len(), "target"),
        kinds.join(", "),
        n(config.groups.len(), "group"),
        n(config.periods.len(), "period"),
        n(config.contacts.len(), "contact"),
        n(config.postal.as_ref().map_or(0, |p| p.operators.len()), "postal operator"),
    );
    ExitCode::SUCCESS
}

fn run(path: &std::path::Path) -> ExitCode {
    let config = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    let result = rt.block_on(async move {
        let control = Control::new();
        spawn_signal_handlers(&control)?;
        daemon::run(config, control, thongsuot::http::router).await.map_err(anyhow::Error::from)
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            match e.downcast_ref::<DaemonError>() {
                Some(DaemonError::Icmp(msg)) => eprintln!("error: {msg}"),
                // Our errors already carry their cause in their text.
                _ => eprintln!("error: {e}"),
            }
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

/// SIGTERM/SIGINT stop the daemon; SIGHUP reloads its config.
fn spawn_signal_handlers(control: &Control) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    let mut hup = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;
    let shutdown = control.shutdown.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
        shutdown.cancel();
    });
    let reloader = control.reloader();
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP received: reloading config");
            if reloader.send(ReloadRequest { reply: None }).await.is_err() {
                break;
            }
        }
    });
    Ok(())
}
