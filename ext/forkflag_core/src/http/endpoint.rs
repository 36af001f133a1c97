//! The server's base URL, parsed once at configuration time.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv6Addr};

use crate::CoreError;

/// Where the Unleash API lives: scheme, host, port and base path
/// (`http://127.0.0.1:4242/api`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    tls: bool,
    /// Lower-case host name, or an IP literal without brackets.
    host: String,
    port: u16,
    /// Empty, or starts with `/` and has no trailing `/`.
    base_path: String,
}

impl Endpoint {
    /// Parses "http://host:port/api", "https://[::1]:8443/unleash/api",
    /// "http://localhost:4242/api/" ...
    ///
    /// Errors (`CoreError::InvalidConfig`) name the URL and what is wrong:
    /// a scheme other than http or https, no host, a bad port, a query or
    /// fragment, user information.
    pub fn parse(url: &str) -> Result<Endpoint, CoreError> {
        let bad =
            |why: &str| CoreError::InvalidConfig(format!("invalid server URL {url:?}: {why}"));
        if url
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err(bad("spaces and control characters are not allowed"));
        }
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("expected http://host[:port]/path or https://..."))?;
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "http" => false,
            "https" => true,
            _ => return Err(bad("the scheme must be http or https")),
        };
        if rest.contains('?') || rest.contains('#') {
            return Err(bad(
                "a query string or fragment is not allowed; give the API base only",
            ));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if let Some((_, after)) = authority.rsplit_once('@') {
            // Never echo credentials: name the URL with them masked.
            let masked = format!("{scheme}://***@{after}{path}");
            return Err(CoreError::InvalidConfig(format!(
                "invalid server URL {masked:?}: user information (user:password@) is not allowed; \
                 the token goes in `token`"
            )));
        }
        let (host, port) = split_authority(authority).map_err(|why| bad(&why))?;
        let port = match port {
            None => {
                if tls {
                    443
                } else {
                    80
                }
            }
            Some(p) => parse_port(p).ok_or_else(|| bad(&format!("bad port {p:?}")))?,
        };
        Ok(Endpoint {
            tls,
            host,
            port,
            base_path: path.trim_end_matches('/').to_owned(),
        })
    }

    /// Whether requests go over TLS (https).
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The host name, or the IP address (IPv6 without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The TCP port (the scheme's default when the URL gives none).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The base path, empty or starting with `/`, without a trailing `/`.
    pub fn base_path(&self) -> &str {
        &self.base_path
    }

    /// The `Host` header's value: the host (bracketed if IPv6) and the port
    /// unless it is the scheme's default.
    pub fn authority(&self) -> String {
        let mut out = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port != if self.tls { 443 } else { 80 } {
            let _ = write!(out, ":{}", self.port);
        }
        out
    }

    /// Base URL + path, for messages (e.g.
    /// "http://127.0.0.1:4242/api/client/features").
    pub fn display_url(&self, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}{}{path}", self.authority(), self.base_path)
    }
}

/// Splits "host", "host:port", "[v6]" or "[v6]:port".
fn split_authority(authority: &str) -> Result<(String, Option<&str>), String> {
    if let Some(bracketed) = authority.strip_prefix('[') {
        let (inside, after) = bracketed
            .split_once(']')
            .ok_or_else(|| "unclosed [ in the host".to_owned())?;
        let ip: Ipv6Addr = inside
            .parse()
            .map_err(|_| format!("{inside:?} is not an IPv6 address"))?;
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| format!("unexpected {after:?} after the IPv6 address"))?,
            ),
        };
        return Ok((ip.to_string(), port));
    }
    let (host, port) = match authority.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    };
    if host.is_empty() {
        return Err("no host".to_owned());
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok((ip.to_string(), port));
    }
    let valid = host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if !valid || host.starts_with('.') || host.contains("..") {
        return Err(format!("{host:?} is not a valid host name"));
    }
    Ok((host.to_ascii_lowercase(), port))
}

fn parse_port(text: &str) -> Option<u16> {
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u16>().ok().filter(|&p| p != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(url: &str) -> (bool, String, u16, String) {
        let e = Endpoint::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        (
            e.is_tls(),
            e.host().to_owned(),
            e.port(),
            e.base_path().to_owned(),
        )
    }

    #[test]
    fn parses_the_usual_forms() {
        let cases = [
            ("http://host:4242/api", (false, "host", 4242, "/api")),
            (
                "https://[::1]:8443/unleash/api",
                (true, "::1", 8443, "/unleash/api"),
            ),
            (
                "http://localhost:4242/api/",
                (false, "localhost", 4242, "/api"),
            ),
            (
                "HTTPS://Unleash.Example.COM",
                (true, "unleash.example.com", 443, ""),
            ),
            ("http://10.0.0.7/", (false, "10.0.0.7", 80, "")),
            ("https://[::1]/api", (true, "::1", 443, "/api")),
        ];
        for (url, (tls, host, port, base)) in cases {
            assert_eq!(
                parts(url),
                (tls, host.to_owned(), port, base.to_owned()),
                "{url}"
            );
        }
    }

    #[test]
    fn display_url_and_authority() {
        let e = Endpoint::parse("http://127.0.0.1:4242/api").unwrap();
        assert_eq!(
            e.display_url("/client/features"),
            "http://127.0.0.1:4242/api/client/features"
        );
        assert_eq!(e.authority(), "127.0.0.1:4242");
        let e = Endpoint::parse("https://[::1]:443/api/").unwrap();
        assert_eq!(e.authority(), "[::1]");
        assert_eq!(e.display_url("/x"), "https://[::1]/api/x");
    }

    #[test]
    fn errors_name_the_url_and_the_problem() {
        for (url, why) in [
            ("ftp://host/api", "scheme"),
            ("host:4242/api", "expected http://"),
            ("http:///api", "no host"),
            ("http://:4242/api", "no host"),
            ("http://host:0/api", "bad port"),
            ("http://host:65536/api", "bad port"),
            ("http://host:42a/api", "bad port"),
            ("http://host:/api", "bad port"),
            ("http://host/api?x=1", "query"),
            ("http://host/api#top", "fragment"),
            ("http://ho st/api", "spaces"),
            ("http://[::1/api", "unclosed"),
            ("http://[nope]/api", "IPv6"),
            ("http://a..b/api", "host name"),
            ("http://host:1:2/api", "bad port"),
        ] {
            let err = Endpoint::parse(url).expect_err(url).to_string();
            assert!(err.contains(url), "{err}");
            assert!(err.contains(why), "{url}: {err}");
        }
        let err = Endpoint::parse("http://user:s3cret@host/api")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("user information") && err.contains("http://***@host/api"),
            "{err}"
        );
        assert!(!err.contains("s3cret"), "{err}");
    }
}
