//! Whether a request came over HTTPS, for a cookie whose `Secure` follows the request's scheme:
//! the request's own scheme, or what trusted reverse proxies say in `Forwarded` (RFC 7239) or
//! `X-Forwarded-Proto`.
//!
//! The headers are parsed by hand: the grammar is a few lines, and the walk along the chain of
//! proxies needs `Forwarded`, `X-Forwarded-Proto` and `X-Forwarded-For` together.

use std::net::{IpAddr, SocketAddr};

use http::header::FORWARDED;
use http::uri::Scheme;
use http::{HeaderMap, Request};
use ipnet::IpNet;
use session_core::Error;

/// The address of the peer that sent the request (the TCP client: a browser, or a reverse
/// proxy), as a request extension.
///
/// A cookie whose `Secure` attribute follows the request's scheme
/// ([`Builder::with_secure_auto`](crate::Builder::with_secure_auto)) believes a proxy's
/// `Forwarded` or `X-Forwarded-Proto` only if this address is one of the trusted proxies. With
/// the `axum` feature, axum's `ConnectInfo<SocketAddr>` (from
/// `into_make_service_with_connect_info::<SocketAddr>()`) is read too; another server inserts
/// a `PeerAddr` in each request's extensions before the layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerAddr(pub SocketAddr);

/// The reverse proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub(crate) struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses addresses (`10.0.0.1`, `::1`) and networks (`10.0.0.0/8`, `fd00::/8`).
    pub(crate) fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, Error> {
        entries
            .iter()
            .map(|entry| {
                let entry = entry.as_ref().trim();
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        Error::invalid_config(format!(
                            "trusted proxy {entry:?} is neither an IP address nor a network (e.g. 10.0.0.1, 10.0.0.0/8, fd00::/8)"
                        ))
                    })
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// Whether `request` reached the client-facing server over HTTPS.
    pub(crate) fn is_https<B>(&self, request: &Request<B>) -> bool {
        if let Some(scheme) = request.uri().scheme() {
            // HTTP/2's `:scheme`, or an absolute-form request target.
            return *scheme == Scheme::HTTPS;
        }
        match peer(request) {
            Some(peer) if self.contains(peer) => self
                .forwarded(request.headers())
                .or_else(|| self.x_forwarded(request.headers()))
                .unwrap_or(false),
            _ => false,
        }
    }

    /// The scheme per `Forwarded`: the nearest proxy's element is the last one; while the
    /// client an element names (`for=`) is itself a trusted proxy, the element before it is
    /// believed too, so the answer is what the outermost trusted proxy saw.
    fn forwarded(&self, headers: &HeaderMap) -> Option<bool> {
        let elements = list(headers, FORWARDED.as_str());
        let mut https = None;
        for element in elements.iter().rev() {
            let mut proto = None;
            let mut client = None;
            for (name, value) in pairs(element) {
                if name.eq_ignore_ascii_case("proto") {
                    proto = Some(value.eq_ignore_ascii_case("https"));
                } else if name.eq_ignore_ascii_case("for") {
                    client = node_ip(&value);
                }
            }
            let Some(proto) = proto else { break };
            https = Some(proto);
            if !client.is_some_and(|ip| self.contains(ip)) {
                break;
            }
        }
        https
    }

    /// The scheme per `X-Forwarded-Proto`: hop by hop with `X-Forwarded-For` when both list
    /// the same number of hops, else the last value (the nearest proxy's).
    fn x_forwarded(&self, headers: &HeaderMap) -> Option<bool> {
        let protos = list(headers, "x-forwarded-proto");
        let clients = list(headers, "x-forwarded-for");
        let is_https = |proto: &str| proto.trim().eq_ignore_ascii_case("https");
        if protos.len() != clients.len() {
            return protos.last().map(|p| is_https(p));
        }
        let mut https = None;
        for (proto, client) in protos.iter().zip(&clients).rev() {
            https = Some(is_https(proto));
            if !node_ip(client.trim()).is_some_and(|ip| self.contains(ip)) {
                break;
            }
        }
        https
    }
}

/// The peer's address, from [`PeerAddr`] or axum's `ConnectInfo`.
fn peer<B>(request: &Request<B>) -> Option<IpAddr> {
    let extensions = request.extensions();
    if let Some(PeerAddr(address)) = extensions.get::<PeerAddr>() {
        return Some(address.ip());
    }
    #[cfg(feature = "axum")]
    if let Some(info) = extensions.get::<axum::extract::ConnectInfo<SocketAddr>>() {
        return Some(info.0.ip());
    }
    None
}

/// The comma-separated elements of every header called `name`, in order, with commas inside
/// quoted strings kept.
fn list(headers: &HeaderMap, name: &str) -> Vec<String> {
    let mut out = Vec::new();
    for value in headers.get_all(name) {
        let Ok(value) = value.to_str() else { continue };
        let mut current = String::new();
        let mut quoted = false;
        let mut escaped = false;
        for c in value.chars() {
            if escaped {
                escaped = false;
            } else if quoted && c == '\\' {
                escaped = true;
            } else if c == '"' {
                quoted = !quoted;
            } else if c == ',' && !quoted {
                out.push(std::mem::take(&mut current).trim().to_owned());
                continue;
            }
            current.push(c);
        }
        out.push(current.trim().to_owned());
    }
    out.retain(|element| !element.is_empty());
    out
}

/// The `name=value` pairs of one `Forwarded` element, values unquoted.
fn pairs(element: &str) -> impl Iterator<Item = (&str, String)> {
    element.split(';').filter_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        let value = value.trim();
        let value = match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            Some(inner) => inner.replace('\\', ""),
            None => value.to_owned(),
        };
        Some((name.trim(), value))
    })
}

/// The IP address of a node: `192.0.2.1`, `192.0.2.1:8080`, `[2001:db8::1]`,
/// `[2001:db8::1]:8080` or a bare IPv6 address; `None` for `unknown` and obfuscated names.
fn node_ip(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(address) = node.parse::<SocketAddr>() {
        return Some(address.ip());
    }
    node.strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|inner| inner.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted(entries: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(entries).expect("valid entries")
    }

    fn request(peer: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut request = Request::get("/").body(()).expect("request");
        request
            .extensions_mut()
            .insert(PeerAddr(peer.parse().expect("socket address")));
        for (name, value) in headers {
            request.headers_mut().append(
                http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                value.parse().expect("value"),
            );
        }
        request
    }

    #[test]
    fn entries_parse_as_addresses_and_networks() {
        let proxies = trusted(&["10.0.0.0/8", "192.0.2.7", "::1", "fd00::/8"]);
        for ip in ["10.1.2.3", "192.0.2.7", "::1", "fd00::5", "::ffff:10.0.0.1"] {
            assert!(proxies.contains(ip.parse().expect("ip")), "{ip}");
        }
        for ip in ["11.0.0.1", "192.0.2.8", "::2"] {
            assert!(!proxies.contains(ip.parse().expect("ip")), "{ip}");
        }
        assert!(TrustedProxies::parse(&["proxy.internal"]).is_err());
        assert!(TrustedProxies::parse(&["10.0.0.0/33"]).is_err());
    }

    #[test]
    fn headers_count_only_from_a_trusted_peer() {
        let proxies = trusted(&["10.0.0.1"]);
        for headers in [
            &[("x-forwarded-proto", "https")][..],
            &[("forwarded", "for=198.51.100.1;proto=https")][..],
        ] {
            assert!(proxies.is_https(&request("10.0.0.1:5000", headers)));
            assert!(!proxies.is_https(&request("203.0.113.9:5000", headers)));
        }
        assert!(!proxies.is_https(&request("10.0.0.1:5000", &[])));
        assert!(!proxies.is_https(&request("10.0.0.1:5000", &[("x-forwarded-proto", "http")])));
    }

    #[test]
    fn forwarded_wins_over_x_forwarded_proto() {
        let proxies = trusted(&["10.0.0.1"]);
        let request = request(
            "10.0.0.1:1",
            &[
                ("forwarded", "for=198.51.100.1;proto=http"),
                ("x-forwarded-proto", "https"),
            ],
        );
        assert!(!proxies.is_https(&request));
    }

    #[test]
    fn a_chain_of_trusted_proxies_is_followed_to_the_outermost() {
        let proxies = trusted(&["10.0.0.0/8"]);
        // A CDN (10.0.0.2) reached over HTTPS forwards over HTTP to the balancer (10.0.0.1).
        let chain = "for=198.51.100.1;proto=https, for=10.0.0.2;proto=http";
        assert!(proxies.is_https(&request("10.0.0.1:1", &[("forwarded", chain)])));
        // A client-written element in front of an untrusted hop is not believed.
        let spoofed = "for=1.2.3.4;proto=http, for=198.51.100.1;proto=https";
        assert!(proxies.is_https(&request("10.0.0.1:1", &[("forwarded", spoofed)])));
        let xff = [
            ("x-forwarded-for", "198.51.100.1, 10.0.0.2"),
            ("x-forwarded-proto", "https, http"),
        ];
        assert!(proxies.is_https(&request("10.0.0.1:1", &xff)));
        let single = [
            ("x-forwarded-for", "198.51.100.1, 10.0.0.2"),
            ("x-forwarded-proto", "https"),
        ];
        assert!(proxies.is_https(&request("10.0.0.1:1", &single)));
    }

    #[test]
    fn forwarded_nodes_in_every_form() {
        let proxies = trusted(&["10.0.0.0/8", "2001:db8::/32"]);
        for node in [
            "\"[2001:db8::2]:4711\"",
            "\"[2001:db8::2]\"",
            "10.0.0.2:80",
            "10.0.0.2",
        ] {
            let header = format!("for=198.51.100.1;proto=https, for={node};proto=http");
            assert!(
                proxies.is_https(&request("10.0.0.1:1", &[("forwarded", &header)])),
                "{node}"
            );
        }
        for node in ["unknown", "_hidden", "\"[::1]\""] {
            let header = format!("for=198.51.100.1;proto=https, for={node};proto=http");
            assert!(
                !proxies.is_https(&request("10.0.0.1:1", &[("forwarded", &header)])),
                "{node}"
            );
        }
    }

    #[test]
    fn an_https_uri_is_https_without_headers() {
        let request = Request::get("https://example.org/")
            .body(())
            .expect("request");
        assert!(TrustedProxies::default().is_https(&request));
    }
}
