//! The TOML file as written: serde structs that deny unknown keys and keep spans, so that
//! validation can point at `FILE:LINE:COL`. Nothing outside `config` sees these types.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

pub type S<T> = Spanned<T>;
pub type Opt<T> = Option<Spanned<T>>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub daemon: Option<RawDaemon>,
    pub defaults: Option<RawDefaults>,
    #[serde(default)]
    pub period: Vec<RawPeriod>,
    #[serde(default)]
    pub maintenance: Vec<RawMaintenance>,
    #[serde(default)]
    pub group: Vec<RawGroup>,
    // `[[target]]` tables are taken out of the document before this is deserialized and read
    // one at a time (see `Config::parse`).
    pub smtp: Option<RawSmtp>,
    #[serde(default)]
    pub contact: Vec<RawContact>,
    pub postal: Option<RawPostal>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDaemon {
    pub listen: Opt<String>,
    pub state_dir: Opt<String>,
    pub vantage: Opt<String>,
    pub api_token_env: Opt<String>,
    pub timezone: Opt<String>,
    pub public_url: Opt<String>,
    pub grafana_url: Opt<String>,
    pub public_status: Opt<bool>,
    pub language: Opt<String>,
    pub max_in_flight: Opt<i64>,
    pub per_target_histograms: Opt<bool>,
    pub shard: Opt<String>,
    pub shutdown_grace: Opt<String>,
    #[serde(default)]
    pub monitor_contacts: Vec<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    pub interval: Opt<String>,
    pub timeout: Opt<String>,
    pub confirm: Opt<i64>,
    pub recover: Opt<i64>,
    pub objective: Opt<f64>,
    pub max_outage: Opt<String>,
    pub degraded_window: Opt<String>,
    pub group_interval: Opt<String>,
    pub repeat_interval: Opt<String>,
    pub escalate_after: Opt<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPeriod {
    pub name: S<String>,
    pub start: S<toml::Value>,
    pub end: S<toml::Value>,
    pub interval: Opt<String>,
    pub objective: Opt<f64>,
    #[serde(default)]
    pub notify: Vec<S<String>>,
    pub description: Opt<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMaintenance {
    pub name: Opt<String>,
    pub start: S<toml::Value>,
    pub end: S<toml::Value>,
    #[serde(default)]
    pub groups: Vec<S<String>>,
    #[serde(default)]
    pub targets: Vec<S<String>>,
    pub count_in_sla: Opt<bool>,
    pub reason: Opt<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGroup {
    pub name: S<String>,
    pub kind: Opt<String>,
    pub display_name: Opt<String>,
    #[serde(default)]
    pub contacts: Vec<S<String>>,
    #[serde(default)]
    pub escalate_to: Vec<S<String>>,
    pub contingency: Opt<String>,
    pub runbook_url: Opt<String>,
    pub objective: Opt<f64>,
    pub max_outage: Opt<String>,
    pub group_interval: Opt<String>,
    pub repeat_interval: Opt<String>,
    pub escalate_after: Opt<String>,
}

/// Every key any kind of target may have: validated per kind afterwards (see STYLE.md on why
/// this is not a serde-tagged enum).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    pub name: S<String>,
    pub group: S<String>,
    pub kind: S<String>,
    pub description: Opt<String>,
    pub interval: Opt<String>,
    pub timeout: Opt<String>,
    pub confirm: Opt<i64>,
    pub recover: Opt<i64>,
    pub objective: Opt<f64>,
    pub max_outage: Opt<String>,
    /// One local address, or a list of them (one per uplink, with `quorum`).
    pub source: Opt<toml::Value>,
    pub quorum: Opt<i64>,
    pub interface: Opt<String>,
    // icmp
    pub host: Opt<String>,
    pub count: Opt<i64>,
    pub spacing: Opt<String>,
    pub max_loss: Opt<f64>,
    pub max_rtt: Opt<String>,
    // tcp, sip, tls
    pub address: Opt<String>,
    pub send: Opt<String>,
    pub expect: Opt<String>,
    // http
    pub url: Opt<String>,
    pub method: Opt<String>,
    pub headers: Opt<BTreeMap<String, String>>,
    pub headers_env: Opt<BTreeMap<String, String>>,
    pub body: Opt<String>,
    pub expect_status: Opt<Vec<i64>>,
    pub body_contains: Opt<String>,
    pub body_regex: Opt<String>,
    pub json_pointer: Opt<String>,
    pub json_equals: Opt<toml::Value>,
    pub max_latency: Opt<String>,
    pub tls_verify: Opt<bool>,
    pub ca_file: Opt<String>,
    pub follow_redirects: Opt<bool>,
    pub max_body_bytes: Opt<i64>,
    // dns
    pub server: Opt<String>,
    pub query: Opt<String>,
    pub record: Opt<String>,
    pub transport: Opt<String>,
    pub expect_rcode: Opt<String>,
    pub expect_answer: Opt<Vec<String>>,
    pub allow_empty: Opt<bool>,
    pub recursion_desired: Opt<bool>,
    // tls
    pub server_name: Opt<String>,
    pub min_days_left: Opt<i64>,
    // sip
    pub any_response: Opt<bool>,
    // heartbeat
    pub every: Opt<String>,
    // call
    pub uri: Opt<String>,
    pub hold: Opt<String>,
    pub username: Opt<String>,
    pub password_env: Opt<String>,
    // sms
    pub gateway: Opt<String>,
    pub from: Opt<String>,
    pub to: Opt<String>,
    pub deadline: Opt<String>,
    pub confirm_by: Opt<String>,
    pub daily_cap: Opt<i64>,
}

impl RawTarget {
    /// The kind-specific keys that are set, with their spans, to reject keys that do not
    /// apply to the target's kind.
    pub fn kind_keys(&self) -> Vec<(&'static str, std::ops::Range<usize>)> {
        let mut v = Vec::new();
        macro_rules! key {
            ($($f:ident),*) => {$(
                if let Some(x) = &self.$f { v.push((stringify!($f), x.span())); }
            )*};
        }
        key!(
            host,
            count,
            spacing,
            max_loss,
            max_rtt,
            address,
            send,
            expect,
            url,
            method,
            headers,
            headers_env,
            body,
            expect_status,
            body_contains,
            body_regex,
            json_pointer,
            json_equals,
            max_latency,
            tls_verify,
            ca_file,
            follow_redirects,
            max_body_bytes,
            server,
            query,
            record,
            transport,
            expect_rcode,
            expect_answer,
            allow_empty,
            recursion_desired,
            server_name,
            min_days_left,
            any_response,
            every,
            uri,
            hold,
            username,
            password_env,
            gateway,
            from,
            to,
            deadline,
            confirm_by,
            daily_cap
        );
        v
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSmtp {
    pub host: S<String>,
    pub port: Opt<i64>,
    pub tls: Opt<String>,
    pub from: S<String>,
    pub username: Opt<String>,
    pub password_env: Opt<String>,
    pub timeout: Opt<String>,
    pub hello_name: Opt<String>,
    pub tls_verify: Opt<bool>,
    pub ca_file: Opt<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawContact {
    pub name: S<String>,
    pub emails: S<Vec<String>>,
    pub language: Opt<String>,
    pub daily_summary: Opt<String>,
    pub min_severity: Opt<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPostal {
    pub consignments: Opt<String>,
    pub stale_after: Opt<String>,
    pub at_risk_before: Opt<String>,
    pub weekend: Opt<Vec<String>>,
    pub holidays: Opt<Vec<String>>,
    #[serde(default)]
    pub operator: Vec<RawOperator>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOperator {
    pub name: S<String>,
    pub group: Opt<String>,
    pub track_url: S<String>,
    pub method: Opt<String>,
    pub headers: Opt<BTreeMap<String, String>>,
    pub headers_env: Opt<BTreeMap<String, String>>,
    pub poll: Opt<String>,
    pub timeout: Opt<String>,
    pub status_pointer: S<String>,
    pub events_pointer: Opt<String>,
    pub event_status_field: Opt<String>,
    pub event_time_field: Opt<String>,
    pub event_location_field: Opt<String>,
    pub status_map: Opt<BTreeMap<String, String>>,
    pub standard: Opt<String>,
    pub rate_limit: Opt<f64>,
    pub concurrency: Opt<i64>,
    pub webhook_secret_env: Opt<String>,
    pub batch_size: Opt<i64>,
    pub batch_separator: Opt<String>,
    pub items_pointer: Opt<String>,
    pub item_tracking_pointer: Opt<String>,
    pub health_interval: Opt<String>,
}
