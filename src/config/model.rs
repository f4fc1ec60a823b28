//! The validated configuration: the domain types the rest of the daemon reads (`Config`,
//! `Target`, `Group`, …) and the questions it asks of them (which interval is in force, which
//! targets this shard probes). Nothing here knows TOML; `validate` builds these values.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveTime, Utc};
use chrono_tz::Tz;

use super::Diagnostic;
use crate::probe::{Binding, ProbeSpec};

#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub daemon: Daemon,
    pub defaults: Defaults,
    pub periods: Vec<Period>,
    pub maintenance: Vec<Maintenance>,
    pub groups: Vec<Group>,
    /// Shared with the scheduler: one copy of each target in the daemon.
    pub targets: Vec<Arc<Target>>,
    pub smtp: Option<Smtp>,
    pub contacts: Vec<Contact>,
    pub postal: Option<Postal>,
    /// Things that are allowed but probably not meant (printed by `check` and at start-up).
    pub warnings: Vec<Diagnostic>,
}

#[derive(Clone)]
pub struct Daemon {
    pub listen: SocketAddr,
    pub state_dir: PathBuf,
    pub vantage: String,
    pub api_token_env: Option<String>,
    /// The bearer token itself, read from `api_token_env`. Never logged.
    pub api_token: Option<String>,
    pub timezone: Tz,
    pub public_url: Option<String>,
    pub grafana_url: Option<String>,
    pub public_status: bool,
    pub language: Language,
    pub max_in_flight: usize,
    pub per_target_histograms: bool,
    /// `(i, n)`, 1-based: this daemon probes the targets whose name hashes to shard i of n.
    pub shard: Option<(u32, u32)>,
    pub shutdown_grace: Duration,
    /// Who runs the monitor: told of its own faults (a target it cannot observe), never the
    /// carriers' contacts.
    pub monitor_contacts: Vec<String>,
}

impl fmt::Debug for Daemon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Daemon")
            .field("listen", &self.listen)
            .field("state_dir", &self.state_dir)
            .field("vantage", &self.vantage)
            .field("api_token_env", &self.api_token_env)
            .field("api_token", &self.api_token.as_ref().map(|_| "<redacted>"))
            .field("timezone", &self.timezone)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    En,
    Vi,
}

#[derive(Debug, Clone)]
pub struct Defaults {
    pub interval: Duration,
    pub timeout: Duration,
    pub confirm: u32,
    pub recover: u32,
    pub objective: f64,
    pub max_outage: Option<Duration>,
    pub degraded_window: Duration,
    pub group_interval: Duration,
    pub repeat_interval: Duration,
    pub escalate_after: Duration,
}

#[derive(Debug, Clone)]
pub struct Period {
    pub name: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub interval: Option<Duration>,
    pub objective: Option<f64>,
    pub notify: Vec<String>,
    pub description: Option<String>,
}

impl Period {
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t < self.end
    }
}

#[derive(Debug, Clone)]
pub struct Maintenance {
    pub name: Option<String>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Empty `groups` and `targets` means everything.
    pub groups: Vec<String>,
    pub targets: Vec<String>,
    pub count_in_sla: bool,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupKind {
    Carrier,
    Postal,
    Portal,
}

#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    pub kind: GroupKind,
    pub display_name: Option<String>,
    pub contacts: Vec<String>,
    pub escalate_to: Vec<String>,
    pub contingency: Option<String>,
    pub runbook_url: Option<String>,
    pub objective: Option<f64>,
    pub max_outage: Option<Duration>,
    pub group_interval: Duration,
    pub repeat_interval: Duration,
    pub escalate_after: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub name: String,
    pub group: String,
    pub description: Option<String>,
    pub spec: ProbeSpec,
    /// Set on the target itself; otherwise the active period's or the default interval.
    pub interval: Option<Duration>,
    pub timeout: Duration,
    pub confirm: u32,
    pub recover: u32,
    pub objective: Option<f64>,
    pub max_outage: Option<Duration>,
    pub binding: Binding,
    /// Several uplinks (`source = [..]`): the target is probed through each, and is down only
    /// when `quorum` of them fail. Empty for a single path.
    pub uplinks: Vec<Binding>,
    pub quorum: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    None,
    Starttls,
    Tls,
}

#[derive(Clone)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub from: String,
    pub username: Option<String>,
    /// Read from `password_env`. Never logged.
    pub password: Option<String>,
    pub timeout: Duration,
    pub hello_name: Option<String>,
    /// Verify the server's certificate (STARTTLS and TLS). Off only for testing.
    pub tls_verify: bool,
    /// Extra CA certificate (PEM) to trust, for a private mail relay.
    pub ca_file: Option<PathBuf>,
}

impl fmt::Debug for Smtp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Smtp")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("from", &self.from)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Breach,
}

#[derive(Debug, Clone)]
pub struct Contact {
    pub name: String,
    pub emails: Vec<String>,
    pub language: Language,
    pub daily_summary: Option<NaiveTime>,
    pub min_severity: Severity,
}

#[derive(Debug, Clone)]
pub struct Postal {
    pub consignments: Option<PathBuf>,
    pub stale_after: Duration,
    pub at_risk_before: Duration,
    /// Days that are not business days for `J+N` standards (default Saturday and Sunday).
    pub weekend: Vec<chrono::Weekday>,
    /// Public holidays (local dates), not business days either.
    pub holidays: Vec<chrono::NaiveDate>,
    pub operators: Vec<PostalOperator>,
}

impl Postal {
    pub fn operator(&self, name: &str) -> Option<&PostalOperator> {
        self.operators.iter().find(|o| o.name == name)
    }
}

/// The normalised tracking vocabulary (DESIGN.md).
pub const TRACKING_STATUSES: [&str; 9] = [
    "pre_transit",
    "in_transit",
    "out_for_delivery",
    "delivered",
    "failed_attempt",
    "exception",
    "returned",
    "lost",
    "unknown",
];

#[derive(Clone)]
pub struct PostalOperator {
    pub name: String,
    /// The operator's `group`, or a group of its own name (created when none is named).
    pub group: String,
    /// The target that carries the tracking API's availability: `{name}-tracking-api`.
    pub api_target: String,
    pub track_url: String,
    pub method: reqwest::Method,
    /// Static headers, then headers whose values came from the environment (secrets, marked
    /// sensitive: `Debug` prints `Sensitive`).
    pub headers: Vec<(reqwest::header::HeaderName, reqwest::header::HeaderValue)>,
    pub poll: Duration,
    pub timeout: Duration,
    pub status_pointer: String,
    pub events_pointer: Option<String>,
    pub event_status_field: String,
    pub event_time_field: String,
    pub event_location_field: String,
    pub status_map: BTreeMap<String, String>,
    /// Business days allowed by the operator's standard (`J+N`).
    pub standard_days: Option<u32>,
    pub rate_limit: Option<f64>,
    pub concurrency: usize,
    pub webhook_secret: Option<String>,
    /// Tracking numbers per request (1: one request per consignment).
    pub batch_size: usize,
    pub batch_separator: String,
    /// Batch mode: the array of per-consignment objects in the answer.
    pub items_pointer: Option<String>,
    /// Batch mode and pushed events: where an item carries its tracking number.
    pub item_tracking_pointer: String,
}

impl fmt::Debug for PostalOperator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostalOperator")
            .field("name", &self.name)
            .field("track_url", &self.track_url)
            .field("poll", &self.poll)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// The interval in force for `target` at `now`: the target's own, else the interval of
    /// the first listed active period that sets one, else the default.
    pub fn interval_for(&self, target: &Target, now: DateTime<Utc>) -> Duration {
        target
            .interval
            .or_else(|| self.periods.iter().filter(|p| p.contains(now)).find_map(|p| p.interval))
            .unwrap_or(self.defaults.interval)
    }

    /// Whether a `[[maintenance]]` window covers this target at `now` (its notifications are
    /// silenced, the status page says so).
    pub fn in_maintenance(&self, target: &str, group: &str, now: DateTime<Utc>) -> bool {
        self.maintenance.iter().any(|m| {
            m.start <= now
                && now < m.end
                && ((m.groups.is_empty() && m.targets.is_empty())
                    || m.groups.iter().any(|g| g == group)
                    || m.targets.iter().any(|t| t == target))
        })
    }

    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// Targets this daemon probes: all of them, or its shard's.
    pub fn active_targets(&self) -> impl Iterator<Item = &Arc<Target>> {
        let shard = self.daemon.shard;
        self.targets.iter().filter(move |t| match shard {
            None => true,
            // Postal tracking runs on shard 1 only, its tracking API targets with it.
            Some((i, _)) if matches!(t.spec, ProbeSpec::Postal(_)) => i == 1,
            Some((i, n)) => shard_of(&t.name, n) == i,
        })
    }

    /// Whether this daemon tracks consignments: with a `[postal]` section, on shard 1 (or unsharded).
    pub fn tracks_postal(&self) -> bool {
        self.postal.is_some() && self.daemon.shard.is_none_or(|(i, _)| i == 1)
    }
}

/// FNV-1a of a target name: stable across daemons and releases (shards, probe phases).
pub fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// Stable shard (1-based) of a target name.
pub fn shard_of(name: &str, n: u32) -> u32 {
    (name_hash(name) % u64::from(n.max(1))) as u32 + 1
}
