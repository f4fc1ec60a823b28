//! `[smtp]`: the mail relay that carries every e-mail. Beyond the values themselves, it warns of
//! settings that work but fail later (STARTTLS expected of a plain local relay, a password in
//! clear).

use std::path::Path;

use super::{looks_like_email, resolve_path};
use crate::config::builtin;
use crate::config::diagnostics::Cx;
use crate::config::model::{Smtp, SmtpTls};
use crate::config::raw::RawSmtp;

pub fn smtp(cx: &mut Cx<'_>, s: &RawSmtp, base: &Path, env: &dyn Fn(&str) -> Option<String>) -> Smtp {
    let tls = match s.tls.as_ref().map(|t| (t.get_ref().as_str(), t.span())) {
        None | Some(("starttls", _)) => SmtpTls::Starttls,
        Some(("none", _)) => SmtpTls::None,
        Some(("tls", _)) => SmtpTls::Tls,
        Some((other, span)) => {
            cx.error(span, format!("smtp.tls must be none, starttls or tls, not {other:?}"));
            SmtpTls::Starttls
        }
    };
    let default_port = match tls {
        SmtpTls::None => builtin::SMTP_PORT_PLAIN,
        SmtpTls::Starttls => builtin::SMTP_PORT_STARTTLS,
        SmtpTls::Tls => builtin::SMTP_PORT_TLS,
    };
    let port = cx.count(&s.port, "smtp.port: ", 1, 65535).map_or(default_port, |p| p as u16);
    if s.tls.is_none() && port != builtin::SMTP_PORT_STARTTLS {
        // A local relay or catcher on 25, 1025, 2525 usually offers no STARTTLS: without this
        // the first e-mail fails only when an outage happens.
        cx.warn(
            s.host.span(),
            format!(
                "smtp.tls is not set, so STARTTLS is required; a server on port {port} often offers none \
                 (a local relay, Mailpit): set tls = \"none\" for a plain server, or check with `thongsuot test-email`"
            ),
        );
    }
    if !looks_like_email(s.from.get_ref()) {
        cx.error(s.from.span(), format!("smtp.from: {:?} is not an e-mail address", s.from.get_ref()));
    }
    if s.host.get_ref().trim().is_empty() {
        cx.error(s.host.span(), "smtp.host is empty");
    }
    let password = cx.secret(&s.password_env, env, "smtp.password_env: ");
    if s.username.is_some()
        && s.password_env.is_none()
        && let Some(u) = &s.username
    {
        cx.warn(u.span(), "smtp.username is set without smtp.password_env: no login will be attempted");
    }
    if tls == SmtpTls::None
        && let Some(span) = s.tls_verify.as_ref().map(|v| v.span()).or(s.ca_file.as_ref().map(|c| c.span()))
    {
        cx.warn(span, "smtp.tls_verify and smtp.ca_file have no effect with tls = \"none\"");
    }
    if tls == SmtpTls::None
        && let Some(p) = &s.password_env
    {
        cx.warn(p.span(), "smtp.password_env with tls = \"none\": the password crosses the network in clear");
    }
    if s.password_env.is_some()
        && s.username.is_none()
        && let Some(p) = &s.password_env
    {
        cx.error(p.span(), "smtp.password_env is set but smtp.username is not");
    }
    Smtp {
        host: s.host.get_ref().clone(),
        port,
        tls,
        from: s.from.get_ref().clone(),
        username: s.username.as_ref().map(|u| u.get_ref().clone()),
        password,
        timeout: cx.duration(&s.timeout, "smtp.timeout: ").unwrap_or(builtin::SMTP_TIMEOUT),
        hello_name: s.hello_name.as_ref().map(|u| u.get_ref().clone()),
        tls_verify: s.tls_verify.as_ref().is_none_or(|b| *b.get_ref()),
        ca_file: s.ca_file.as_ref().map(|c| {
            let path = resolve_path(base, c.get_ref());
            match std::fs::read_to_string(&path) {
                Ok(pem) if pem.contains("-----BEGIN CERTIFICATE-----") => {}
                Ok(_) => cx.error(c.span(), format!("smtp.ca_file {} holds no PEM certificate", path.display())),
                Err(e) => cx.error(c.span(), format!("smtp.ca_file {}: {e}", path.display())),
            }
            path
        }),
    }
}
