//! `kind = "http"`: one HTTP(S) request and the checks on its answer. Its keys and their checks.

use crate::config::builtin;
use crate::config::diagnostics::Cx;
use crate::config::raw::RawTarget;
use crate::config::validate::request::request;
use crate::config::validate::url_error;
use crate::probe::ProbeSpec;
use crate::probe::http::HttpSpec;

use super::{TargetCx, ca_file, required};

pub const KEYS: &[&str] = &[
    "url",
    "method",
    "headers",
    "headers_env",
    "body",
    "expect_status",
    "body_contains",
    "body_regex",
    "json_pointer",
    "json_equals",
    "max_latency",
    "tls_verify",
    "ca_file",
    "follow_redirects",
    "max_body_bytes",
];

pub fn spec(cx: &mut Cx<'_>, t: &RawTarget, k: &mut TargetCx<'_>) -> Option<ProbeSpec> {
    let (p, base, env) = (k.p, k.base, k.env);
    let url_v = required(cx, &t.url, t, p, "url")?;
    let url = match reqwest::Url::parse(url_v.get_ref()) {
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => u,
        Ok(u) => {
            cx.error(url_v.span(), format!("{p}url scheme must be http or https, not {}", u.scheme()));
            return None;
        }
        Err(e) => {
            cx.error(url_v.span(), format!("{p}url {:?}: {}", url_v.get_ref(), url_error(&e)));
            return None;
        }
    };
    let request = request(cx, p, &t.method, &t.headers, &t.headers_env, env);
    let mut expect_status = Vec::new();
    if let Some(s) = &t.expect_status {
        for code in s.get_ref() {
            match u16::try_from(*code) {
                Ok(c) if (100..600).contains(&c) => expect_status.push(c),
                _ => cx.error(s.span(), format!("{p}expect_status: {code} is not an HTTP status code")),
            }
        }
    }
    let body_regex = t.body_regex.as_ref().and_then(|r| match regex::Regex::new(r.get_ref()) {
        Ok(re) => Some(re),
        Err(e) => {
            cx.error(r.span(), format!("{p}body_regex: {e}"));
            None
        }
    });
    if let Some(ptr) = &t.json_pointer
        && !ptr.get_ref().is_empty()
        && !ptr.get_ref().starts_with('/')
    {
        cx.error(ptr.span(), format!("{p}json_pointer must start with '/' (RFC 6901), e.g. \"/status\""));
    }
    if t.json_equals.is_some()
        && t.json_pointer.is_none()
        && let Some(j) = &t.json_equals
    {
        cx.error(j.span(), format!("{p}json_equals needs json_pointer"));
    }
    let json_equals = t.json_equals.as_ref().and_then(|v| match serde_json::to_value(v.get_ref()) {
        Ok(j) => Some(j),
        Err(e) => {
            cx.error(v.span(), format!("{p}json_equals: {e}"));
            None
        }
    });
    let ca_file = ca_file(cx, t, p, base);
    let max_body_bytes = match &t.max_body_bytes {
        Some(b) if *b.get_ref() < 1 || *b.get_ref() > 1 << 30 => {
            cx.error(b.span(), format!("{p}max_body_bytes must be between 1 and 1073741824"));
            builtin::MAX_BODY_BYTES
        }
        Some(b) => *b.get_ref() as usize,
        None => builtin::MAX_BODY_BYTES,
    };
    Some(ProbeSpec::Http(Box::new(HttpSpec {
        url,
        headers: request.typed(),
        method: request.method,
        body: t.body.as_ref().map(|b| b.get_ref().clone()),
        expect_status,
        body_contains: t.body_contains.as_ref().map(|b| b.get_ref().clone()),
        body_regex,
        json_pointer: t.json_pointer.as_ref().map(|b| b.get_ref().clone()),
        json_equals,
        max_latency: cx.duration(&t.max_latency, &format!("{p}max_latency: ")),
        tls_verify: t.tls_verify.as_ref().is_none_or(|b| *b.get_ref()),
        ca_file,
        follow_redirects: t.follow_redirects.as_ref().is_none_or(|b| *b.get_ref()),
        max_body_bytes,
    })))
}
