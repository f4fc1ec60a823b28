//! The `thongsuot` binary: command line, logging, signals and exit codes. Everything else
//! lives in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use thongsuot::config::{Config, ConfigError};
use thongsuot::daemon::{self, Control, DaemonError};
use thongsuot::server::ReloadRequest;

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
}

/// Exit codes: 0 ok, 1 invalid config, 2 the daemon could not run.
const EXIT_CONFIG: u8 = 1;
const EXIT_RUNTIME: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match cli.command {
        Command::Check { config } => check(&config),
        Command::Run { config } => run(&config),
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn load(path: &std::path::Path) -> Result<Config, ExitCode> {
    match Config::load(path) {
        Ok(c) => Ok(c),
        Err(e @ ConfigError::Read { .. }) => {
            eprintln!("error: {e}");
            Err(ExitCode::from(EXIT_CONFIG))
        }
        Err(ConfigError::Invalid(diags)) => {
            for d in &diags {
                eprintln!("{d}");
            }
            eprintln!(
                "{}: {} error{}",
                path.display(),
                diags.len(),
                if diags.len() == 1 { "" } else { "s" }
            );
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
        daemon::check_icmp(&config)
    });
    if let Err(e) = icmp {
        eprintln!("{}: {e}", path.display());
        return ExitCode::from(EXIT_RUNTIME);
    }
    let mut kinds = std::collections::BTreeMap::<&str, usize>::new();
    for t in &config.targets {
        *kinds.entry(t.spec.kind()).or_default() += 1;
    }
    let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
    println!(
        "{}: OK: {} targets ({}), {} groups, {} periods, {} contacts, {} postal operators",
        path.display(),
        config.targets.len(),
        kinds.join(", "),
        config.groups.len(),
        config.periods.len(),
        config.contacts.len(),
        config.postal.as_ref().map_or(0, |p| p.operators.len()),
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
        daemon::run(config, control)
            .await
            .map_err(anyhow::Error::from)
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            match e.downcast_ref::<DaemonError>() {
                Some(DaemonError::Icmp(msg)) => eprintln!("error: {msg}"),
                _ => eprintln!("error: {e:#}"),
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
