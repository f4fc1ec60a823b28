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
    /// The name as written (HTTP names are case-insensitive; `name` is lower case).
    pub written: String,
    pub name: HeaderName,
    /// Marked sensitive when it came from the environment.
    pub value: HeaderValue,
    /// The value as a string, for the requests that are built from strings.
    pub text: String,
}

impl Request {
    /// The headers as the HTTP probe sends them.
    pub fn typed(&self) -> Vec<(HeaderName, HeaderValue)> {
        self.headers.iter().map(|h| (h.name.clone(), h.value.clone())).collect()
    }

    /// The headers as written, for the SMS gateway's and the postal operator's requests.
    pub fn plain(self) -> Vec<(String, String)> {
        self.headers.into_iter().map(|h| (h.written, h.text)).collect()
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
                (Ok(name), Ok(value)) => out.push(Header { written: k.clone(), name, value, text: v.clone() }),
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
                        out.push(Header { written: k.clone(), name, value, text: v });
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
        let expected: Vec<(String, String)> =
            [("Accept", "b"), ("X-Api", "a"), ("Authorization", "s3cret")].map(|(k, v)| (k.into(), v.into())).into();

        let c = parse(&sms(headers)).expect("valid sms target");
        let Some(ProbeSpec::Sms(s)) = c.targets.first().map(|t| &t.spec) else { panic!("no sms target") };
        assert_eq!(s.headers, expected);
        assert_eq!(s.method, reqwest::Method::POST);

        let c = parse(&operator(headers)).expect("valid operator");
        let o = c.postal.as_ref().and_then(|p| p.operators.first()).expect("an operator");
        assert_eq!(o.headers, expected);
        assert_eq!(o.method, reqwest::Method::POST);

        let http =
            format!("[[target]]\nname = \"web\"\ngroup = \"g\"\nkind = \"http\"\nurl = \"http://x/\"\n{headers}\n");
        let c = parse(&http).expect("valid http target");
        let Some(ProbeSpec::Http(h)) = c.targets.first().map(|t| &t.spec) else { panic!("no http target") };
        let typed: Vec<(&str, bool)> = h.headers.iter().map(|(k, v)| (k.as_str(), v.is_sensitive())).collect();
        assert_eq!(typed, [("accept", false), ("x-api", false), ("authorization", true)]);
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
