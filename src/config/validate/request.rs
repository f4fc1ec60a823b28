//! The HTTP request a config describes with `method`, `headers` and `headers_env`: an `http`
//! target's, an SMS gateway's (`kind = "sms"`) and a postal operator's. Parsed here once, with
//! the same checks and messages for all three: a method, header names and values that HTTP
//! accepts, and `headers_env` values read from the environment and marked sensitive.

use std::collections::BTreeMap;

use reqwest::header::{HeaderName, HeaderValue};

use crate::config::diagnostics::Cx;
use crate::config::raw::Opt;

/// A request's method and headers: the static `headers`, then those of `headers_env`, each
/// table in key order (the order they are sent in).
pub struct Request {
    pub method: reqwest::Method,
    pub headers: Vec<Header>,
}

pub struct Header {
    /// Lower case (HTTP names are case-insensitive).
    pub name: HeaderName,
    /// Marked sensitive when it came from the environment: `Debug` prints `Sensitive`, and
    /// reqwest and hyper treat it as a secret.
    pub value: HeaderValue,
}

impl Request {
    /// The headers as the three requests send them, sensitive values still marked.
    pub fn typed(&self) -> Vec<(HeaderName, HeaderValue)> {
        self.headers.iter().map(|h| (h.name.clone(), h.value.clone())).collect()
    }
}

/// Parses `method` (default GET), `headers` and `headers_env`; `p` starts every message.
pub fn request(
    cx: &mut Cx<'_>,
    p: &str,
    method: &Opt<String>,
    headers: &Opt<BTreeMap<String, String>>,
    headers_env: &Opt<BTreeMap<String, String>>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Request {
    let method = match method {
        None => reqwest::Method::GET,
        Some(m) => match reqwest::Method::from_bytes(m.get_ref().to_ascii_uppercase().as_bytes()) {
            Ok(m) => m,
            Err(_) => {
                cx.error(m.span(), format!("{p}invalid HTTP method {:?}", m.get_ref()));
                reqwest::Method::GET
            }
        },
    };
    let mut out = Vec::new();
    if let Some(h) = headers {
        for (k, v) in h.get_ref() {
            match (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(v)) {
                (Ok(name), Ok(value)) => out.push(Header { name, value }),
                _ => cx.error(h.span(), format!("{p}invalid header {k:?}: {v:?}")),
            }
        }
    }
    if let Some(h) = headers_env {
        for (k, var) in h.get_ref() {
            let value = env(var).filter(|v| !v.is_empty());
            match (HeaderName::from_bytes(k.as_bytes()), value) {
                (Ok(name), Some(v)) => match HeaderValue::from_str(&v) {
                    Ok(mut value) => {
                        value.set_sensitive(true);
                        out.push(Header { name, value });
                    }
                    Err(_) => {
                        cx.error(h.span(), format!("{p}headers_env: the value of {var} is not a valid header value"))
                    }
                },
                (Err(_), _) => cx.error(h.span(), format!("{p}headers_env: invalid header name {k:?}")),
                (_, None) => cx
                    .error(h.span(), format!("{p}headers_env: environment variable {var} (for header {k}) is not set")),
            }
        }
    }
    Request { method, headers: out }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use reqwest::header::{HeaderName, HeaderValue};

    use crate::config::Config;
    use crate::probe::ProbeSpec;

    const HEAD: &str = "[daemon]\npublic_url = \"http://10.0.0.5:9798\"\n\n[[group]]\nname = \"g\"\n";

    fn parse(body: &str) -> Result<Config, Vec<String>> {
        let env = |k: &str| (k == "SECRET").then(|| "s3cret".to_string());
        Config::parse(Path::new("t.toml"), &format!("{HEAD}{body}"), &env).map_err(|e| e.messages())
    }

    fn sms(extra: &str) -> String {
        format!(
            "[[target]]\nname = \"sms\"\ngroup = \"g\"\nkind = \"sms\"\ngateway = \"http\"\nurl = \"http://gw/\"\n\
             to = \"1\"\ninterval = \"1h\"\n{extra}\n"
        )
    }

    fn operator(extra: &str) -> String {
        format!(
            "[postal]\n[[postal.operator]]\nname = \"vnpost\"\ntrack_url = \"https://api.vn/t/{{tracking}}\"\n\
             status_pointer = \"/status\"\n{extra}\n"
        )
    }

    #[test]
    fn the_three_requests_keep_their_headers_as_before() {
        let headers = "method = \"post\"\nheaders = { X-Api = \"a\", Accept = \"b\" }\nheaders_env = { Authorization = \"SECRET\" }";
        let expected = [("accept", "b", false), ("x-api", "a", false), ("authorization", "s3cret", true)];
        let seen = |h: &[(HeaderName, HeaderValue)]| -> Vec<(String, String, bool)> {
            h.iter()
                .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned(), v.is_sensitive()))
                .collect()
        };
        let expected: Vec<(String, String, bool)> = expected.map(|(k, v, s)| (k.into(), v.into(), s)).into();

        let c = parse(&sms(headers)).expect("valid sms target");
        let Some(ProbeSpec::Sms(s)) = c.targets.first().map(|t| &t.spec) else { panic!("no sms target") };
        assert_eq!(seen(&s.headers), expected);
        assert_eq!(s.method, reqwest::Method::POST);

        let c = parse(&operator(headers)).expect("valid operator");
        let o = c.postal.as_ref().and_then(|p| p.operators.first()).expect("an operator");
        assert_eq!(seen(&o.headers), expected);
        assert_eq!(o.method, reqwest::Method::POST);

        let http =
            format!("[[target]]\nname = \"web\"\ngroup = \"g\"\nkind = \"http\"\nurl = \"http://x/\"\n{headers}\n");
        let c = parse(&http).expect("valid http target");
        let Some(ProbeSpec::Http(h)) = c.targets.first().map(|t| &t.spec) else { panic!("no http target") };
        assert_eq!(seen(&h.headers), expected);
    }

    // The SMS gateway's and the postal operator's `headers_env` values were turned back into
    // strings: `{:?}` of the config (logs, panics) printed the secrets, and reqwest did not know
    // they were sensitive. They keep the parser's typed, sensitive values now, as `http` does.
    #[test]
    fn header_secrets_of_sms_and_postal_requests_are_not_printed() {
        const SECRET: &str = "xK9-very-distinctive-api-key-Qz7";
        let env = |k: &str| (k == "GW_KEY").then(|| SECRET.to_string());
        let extra = "headers = { X-Api = \"public\" }\nheaders_env = { Authorization = \"GW_KEY\" }";
        let text = format!("{HEAD}{}{}", sms(extra), operator(extra));
        let c = Config::parse(Path::new("t.toml"), &text, &env).map_err(|e| e.messages()).expect("valid config");

        let printed = format!("{c:?}");
        assert!(!printed.contains(SECRET), "a header secret in the config's Debug output: {printed}");
        assert!(printed.contains("public"), "the static header is still shown: {printed}");

        let secret = |headers: &[(HeaderName, HeaderValue)]| {
            headers.iter().find(|(k, _)| k == "authorization").map(|(_, v)| (v.as_bytes().to_vec(), v.is_sensitive()))
        };
        let sms = c.targets.iter().find_map(|t| match &t.spec {
            ProbeSpec::Sms(s) => Some(s.headers.clone()),
            _ => None,
        });
        assert_eq!(sms.as_deref().and_then(secret), Some((SECRET.as_bytes().to_vec(), true)));
        let api = c.targets.iter().find_map(|t| match &t.spec {
            ProbeSpec::Postal(p) => Some(p.headers.clone()),
            _ => None,
        });
        assert_eq!(api.as_deref().and_then(secret), Some((SECRET.as_bytes().to_vec(), true)));
        let op = c.postal.as_ref().and_then(|p| p.operators.first()).map(|o| o.headers.clone());
        assert_eq!(op.as_deref().and_then(secret), Some((SECRET.as_bytes().to_vec(), true)));
    }

    // Until the three requests shared this parser, the SMS gateway's and the postal operator's
    // header names and values were not checked: an invalid one failed every request at run time.
    #[test]
    fn invalid_headers_of_sms_and_postal_requests_are_errors() {
        let e = parse(&sms("headers = { \"Bad Name\" = \"v\" }")).err().unwrap_or_default();
        assert!(e.iter().any(|m| m.ends_with("target \"sms\": invalid header \"Bad Name\": \"v\"")), "{e:?}");
        let e = parse(&sms("headers_env = { \"Bad Name\" = \"SECRET\" }")).err().unwrap_or_default();
        assert!(
            e.iter().any(|m| m.ends_with("target \"sms\": headers_env: invalid header name \"Bad Name\"")),
            "{e:?}"
        );

        let e = parse(&operator("headers = { X = \"a\\u0001b\" }")).err().unwrap_or_default();
        assert!(
            e.iter().any(|m| m.ends_with("postal operator \"vnpost\": invalid header \"X\": \"a\\u{1}b\"")),
            "{e:?}"
        );
        let e = parse(&operator("headers_env = { \"Bad Name\" = \"SECRET\" }")).err().unwrap_or_default();
        assert!(
            e.iter().any(|m| m.ends_with("postal operator \"vnpost\": headers_env: invalid header name \"Bad Name\"")),
            "{e:?}"
        );
    }
}
