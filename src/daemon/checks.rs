//! Start-up checks a misconfigured host fails early: ICMP sockets allowed, source addresses
//! present.

use crate::config::Config;
use crate::probe::ProbeSpec;

/// Checks that every ICMP family the config uses can open its socket (must run inside a
/// tokio runtime).
pub fn check_icmp(config: &Config) -> Result<(), String> {
    let mut v4 = false;
    let mut v6 = false;
    for t in config.active_targets() {
        if let ProbeSpec::Icmp(s) = &t.spec {
            match s.host.parse::<std::net::IpAddr>() {
                Ok(ip) if ip.is_ipv6() => v6 = true,
                _ => v4 = true,
            }
        }
    }
    if v4 {
        crate::probe::icmp::check_permission(false)?;
    }
    if v6 {
        crate::probe::icmp::check_permission(true)?;
    }
    Ok(())
}

/// Advice about the host when the ICMP echoes planned need a larger socket receive buffer than
/// the kernel gives by default: at each target's shortest interval (its own, else the shortest
/// of the default and every period's), summed over the host.
pub fn icmp_advice(config: &Config) -> Option<String> {
    let shortest =
        config.periods.iter().filter_map(|p| p.interval).fold(config.defaults.interval, std::time::Duration::min);
    let mut echoes_per_s = 0.0;
    for t in config.active_targets() {
        if let ProbeSpec::Icmp(s) = &t.spec {
            let paths = t.uplinks.len().max(1) as f64;
            let interval = t.interval.unwrap_or(shortest);
            echoes_per_s += f64::from(s.count) * paths / interval.as_secs_f64().max(0.001);
        }
    }
    crate::probe::icmp::buffer_advice(echoes_per_s)
}

/// Checks that every `source` address is an address of this machine (a probe bound to a foreign
/// address would fail every time, reading as an outage of the carrier).
pub fn check_sources(config: &Config) -> Result<(), String> {
    let mut bad = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for t in config.active_targets() {
        for src in t.binding.source.iter().chain(t.uplinks.iter().filter_map(|u| u.source.as_ref())) {
            if seen.insert(*src)
                && let Err(e) = std::net::UdpSocket::bind((*src, 0))
            {
                bad.push(format!("target {:?}: source {src} is not an address of this machine ({e})", t.name));
            }
        }
    }
    if bad.is_empty() { Ok(()) } else { Err(bad.join("\n")) }
}
