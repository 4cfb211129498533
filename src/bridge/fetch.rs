//! The XEP-0066 fetcher: a file an XMPP user announced by URL is fetched and put into the
//! Matrix media repository. The URL comes from anyone who can send a message, so the fetch
//! must not reach the bridge's own network (SSRF, issue #11 H3 and L2):
//!
//! - the host is resolved **once**, every address is vetted ([`is_public`], or allowed by
//!   `media.allow_private_hosts`), and the HTTP client is pinned to exactly those addresses,
//!   so a second DNS answer (rebinding) is never asked for;
//! - the peer the response came from is checked against the vetted set again;
//! - no proxy from the environment, no redirects, bounded size and time.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use crate::bridge::Bridge;
use crate::config::Media;
use crate::core::ids::MatrixUserId;
use crate::matrix::client::UploadedFile;

/// Why a file was not fetched (the URL then goes as text).
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("not a URL: {0}")]
    NotUrl(#[from] url::ParseError),
    #[error("only http and https URLs are fetched")]
    Scheme,
    #[error("the URL has no host")]
    NoHost,
    #[error("cannot resolve {host}: {source}")]
    Resolve { host: String, source: std::io::Error },
    #[error("{host} has no address")]
    NoAddress { host: String },
    #[error("{host} resolves to {addr}, which is not a public address")]
    Private { host: String, addr: IpAddr },
    #[error("the answer came from {0}, which was not vetted")]
    UnvettedPeer(String),
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    #[error("fetching: {0}")]
    Http(#[source] reqwest::Error),
    #[error("the server answered {0}")]
    Status(reqwest::StatusCode),
    #[error("larger than {0} bytes")]
    TooLarge(u64),
    #[error("uploading: {0}")]
    Upload(String),
}

/// A fetched file.
#[derive(Debug)]
pub struct Fetched {
    pub bytes: Vec<u8>,
    pub mimetype: String,
    pub name: String,
}

impl Bridge {
    /// Fetch a file an XMPP user announced and upload it to the media repository as `user`.
    pub(super) async fn fetch_to_matrix(&self, user: &MatrixUserId, url: &str) -> Result<UploadedFile, FetchError> {
        let media = self.current_config().media.clone();
        let file = fetch(url, &media, system_lookup).await?;
        let size = file.bytes.len() as u64;
        let mxc = self
            .matrix
            .upload(user, file.bytes, &file.mimetype)
            .await
            .map_err(|e| FetchError::Upload(e.to_string()))?;
        Ok(UploadedFile { mxc, name: file.name, mimetype: file.mimetype, size })
    }
}

/// The system resolver, the one [`fetch`] uses outside tests.
pub async fn system_lookup(host: String, port: u16) -> std::io::Result<Vec<SocketAddr>> {
    Ok(tokio::net::lookup_host((host.as_str(), port)).await?.collect())
}

/// Fetch `url` within `media`'s bounds, resolving its host once with `lookup`.
pub async fn fetch<L, F>(url: &str, media: &Media, lookup: L) -> Result<Fetched, FetchError>
where
    L: FnOnce(String, u16) -> F,
    F: Future<Output = std::io::Result<Vec<SocketAddr>>>,
{
    let parsed = url::Url::parse(url)?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(FetchError::Scheme);
    }
    let host = parsed.host().ok_or(FetchError::NoHost)?.to_owned();
    let port = parsed.port_or_known_default().ok_or(FetchError::NoHost)?;
    let vetted = vetted_addrs(&host, port, &media.allow_private_hosts, lookup).await?;
    let mut client = reqwest::Client::builder()
        .timeout(Duration::from_secs(media.fetch_timeout_secs))
        .connect_timeout(Duration::from_secs(media.fetch_timeout_secs.min(10)))
        .redirect(reqwest::redirect::Policy::none())
        // `*_PROXY` would send the request elsewhere, past the address check.
        .no_proxy();
    if let url::Host::Domain(name) = &host {
        // Pinned: reqwest connects to these and never asks DNS itself (port from the URL).
        client = client.resolve_to_addrs(name, &vetted);
    }
    let client = client.build().map_err(FetchError::Client)?;
    let mut response = client.get(parsed.clone()).send().await.map_err(|e| FetchError::Http(e.without_url()))?;
    // Belt and braces: the connection really went to a vetted address.
    if let Some(peer) = response.remote_addr()
        && !vetted.iter().any(|a| a.ip() == peer.ip())
    {
        return Err(FetchError::UnvettedPeer(peer.to_string()));
    }
    if !response.status().is_success() {
        return Err(FetchError::Status(response.status()));
    }
    if response.content_length().is_some_and(|n| n > media.max_bytes) {
        return Err(FetchError::TooLarge(media.max_bytes));
    }
    let mimetype = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or(v).trim().to_owned())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "application/octet-stream".to_owned());
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| FetchError::Http(e.without_url()))? {
        if bytes.len() as u64 + chunk.len() as u64 > media.max_bytes {
            return Err(FetchError::TooLarge(media.max_bytes));
        }
        bytes.extend_from_slice(&chunk);
    }
    let name = parsed
        .path_segments()
        .and_then(|mut s| s.next_back().map(str::to_owned))
        .map(|n| url::form_urlencoded::parse(n.as_bytes()).map(|(k, _)| k.into_owned()).collect::<String>())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "file".to_owned());
    Ok(Fetched { bytes, mimetype, name })
}

/// The addresses a fetch from `host` may connect to: resolved once, each one public or
/// allowed. `allow` holds host names (all their addresses allowed: the operator trusts that
/// name) and IP addresses (that exact address allowed, whatever name led to it). One address
/// that is neither refuses the host.
pub async fn vetted_addrs<L, F>(
    host: &url::Host<String>,
    port: u16,
    allow: &[String],
    lookup: L,
) -> Result<Vec<SocketAddr>, FetchError>
where
    L: FnOnce(String, u16) -> F,
    F: Future<Output = std::io::Result<Vec<SocketAddr>>>,
{
    let (name, addrs) = match host {
        url::Host::Ipv4(ip) => (ip.to_string(), vec![SocketAddr::new(IpAddr::V4(*ip), port)]),
        url::Host::Ipv6(ip) => (ip.to_string(), vec![SocketAddr::new(IpAddr::V6(*ip), port)]),
        url::Host::Domain(name) => {
            let addrs = lookup(name.clone(), port)
                .await
                .map_err(|source| FetchError::Resolve { host: name.clone(), source })?;
            (name.clone(), addrs)
        }
    };
    if addrs.is_empty() {
        return Err(FetchError::NoAddress { host: name });
    }
    let name_allowed = matches!(host, url::Host::Domain(_)) && allow.iter().any(|h| h.eq_ignore_ascii_case(&name));
    for addr in &addrs {
        let ip = addr.ip();
        let ip_allowed = allow.iter().any(|h| h.trim_matches(['[', ']']).parse::<IpAddr>().is_ok_and(|a| a == ip));
        if !(is_public(ip) || name_allowed || ip_allowed) {
            return Err(FetchError::Private { host: name, addr: ip });
        }
    }
    Ok(addrs)
}

/// Is this an address on the public internet? Everything in the IANA special-purpose
/// registries that is not globally reachable is refused; for IPv6 only global unicast
/// (2000::/3) can be public, and the forms that embed an IPv4 address are judged by it.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let special = a == 0                                  // 0/8 "this network" (routable on Linux ≥ 5.3)
        || a == 10                                        // 10/8 private
        || (a == 100 && (b & 0xc0) == 64)                 // 100.64/10 shared (CGN)
        || a == 127                                       // 127/8 loopback
        || (a == 169 && b == 254)                         // 169.254/16 link-local, cloud metadata
        || (a == 172 && (b & 0xf0) == 16)                 // 172.16/12 private
        || (a == 192 && b == 0 && c == 0)                 // 192.0.0/24 IETF assignments
        || (a == 192 && b == 0 && c == 2)                 // 192.0.2/24 TEST-NET-1
        || (a == 192 && b == 88 && c == 99)               // 192.88.99/24 6to4 relay anycast
        || (a == 192 && b == 168)                         // 192.168/16 private
        || (a == 198 && (b & 0xfe) == 18)                 // 198.18/15 benchmarking
        || (a == 198 && b == 51 && c == 100)              // 198.51.100/24 TEST-NET-2
        || (a == 203 && b == 0 && c == 113)               // 203.0.113/24 TEST-NET-3
        || a >= 224; // 224/4 multicast, 240/4 reserved, 255.255.255.255 broadcast
    !special
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible; also covers :: and ::1).
    if s[..5] == [0; 5] && (s[5] == 0xffff || s[5] == 0) {
        return is_public_v4(embedded(s[6], s[7]));
    }
    // ::ffff:0:a.b.c.d (SIIT translated) and 64:ff9b::a.b.c.d (NAT64 well-known prefix).
    if (s[..4] == [0; 4] && s[4] == 0xffff && s[5] == 0) || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_public_v4(embedded(s[6], s[7]));
    }
    // 2002:a.b.c.d::/48 6to4: the v4 address it tunnels to.
    if s[0] == 0x2002 {
        return is_public_v4(embedded(s[1], s[2]));
    }
    let global_unicast = (s[0] & 0xe000) == 0x2000;
    let special = match s[0] {
        0x2001 => s[1] < 0x200 || s[1] == 0x0db8, // 2001::/23 IETF (Teredo, ORCHID, …), 2001:db8::/32 documentation
        0x3fff => s[1] < 0x1000,                  // 3fff::/20 documentation
        0x5f00 => true,                           // 5f00::/16 SRv6 SIDs
        _ => false,
    };
    // Outside 2000::/3 lie ::/8 (the forms above), 64:ff9b:1::/48, 100::/64 discard,
    // fc00::/7 unique local, fe80::/10 link-local, fec0::/10 site-local and ff00::/8 multicast.
    global_unicast && !special
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn special_purpose_ipv4_ranges_are_refused() {
        for private in [
            "0.0.0.0",
            "0.1.2.3",
            "10.1.2.3",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "127.0.0.2",
            "169.254.169.254",
            "172.16.5.5",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.0.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            assert!(!is_public(ip(private)), "{private}");
        }
        for public in
            ["1.1.1.1", "93.184.216.34", "100.63.255.255", "100.128.0.1", "172.15.0.1", "172.32.0.1", "198.20.0.1"]
        {
            assert!(is_public(ip(public)), "{public}");
        }
    }

    #[test]
    fn special_purpose_ipv6_ranges_are_refused() {
        for private in [
            "::",
            "::1",
            "100::1",
            "64:ff9b:1::1",
            "2001::1",
            "2001:0:4136:e378::1",
            "2001:2::1",
            "2001:1ff::1",
            "2001:db8::1",
            "3fff::1",
            "5f00::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "feff::1",
            "ff02::1",
            "ff0e::1",
        ] {
            assert!(!is_public(ip(private)), "{private}");
        }
        for public in ["2606:2800:220:1::1", "2a00:1450:4001::1", "2001:200::1", "2001:4860:4860::8888"] {
            assert!(is_public(ip(public)), "{public}");
        }
    }

    #[test]
    fn ipv6_forms_of_ipv4_addresses_are_judged_by_the_ipv4_address() {
        for private in [
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "::10.0.0.1",
            "::ffff:0:127.0.0.1",
            "64:ff9b::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::192.168.1.1",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::1",
            "2002:c0a8:0101::",
            "2002::1",
        ] {
            assert!(!is_public(ip(private)), "{private}");
        }
        for public in ["::ffff:93.184.216.34", "::93.184.216.34", "64:ff9b::5db8:d822", "2002:5db8:d822::1"] {
            assert!(is_public(ip(public)), "{public}");
        }
    }

    fn answers(addrs: &[&str]) -> impl FnOnce(String, u16) -> std::future::Ready<std::io::Result<Vec<SocketAddr>>> {
        let addrs: Vec<IpAddr> = addrs.iter().map(|a| ip(a)).collect();
        move |_, port| std::future::ready(Ok(addrs.into_iter().map(|a| SocketAddr::new(a, port)).collect()))
    }

    fn domain(name: &str) -> url::Host<String> {
        url::Host::Domain(name.to_owned())
    }

    #[tokio::test]
    async fn every_resolved_address_is_vetted() {
        let none: &[String] = &[];
        let ok = vetted_addrs(&domain("files.example"), 443, none, answers(&["93.184.216.34"])).await;
        assert_eq!(ok.expect("public").len(), 1);
        // One private address among public ones refuses the host.
        let mixed = vetted_addrs(&domain("files.example"), 80, none, answers(&["93.184.216.34", "10.0.0.1"])).await;
        assert!(matches!(mixed, Err(FetchError::Private { .. })), "{mixed:?}");
        let mapped = vetted_addrs(&domain("files.example"), 80, none, answers(&["::ffff:127.0.0.1"])).await;
        assert!(matches!(mapped, Err(FetchError::Private { .. })), "{mapped:?}");
        let empty = vetted_addrs(&domain("files.example"), 80, none, answers(&[])).await;
        assert!(matches!(empty, Err(FetchError::NoAddress { .. })), "{empty:?}");
        // Literal addresses are vetted without a lookup.
        let literal = vetted_addrs(&url::Host::Ipv4(Ipv4Addr::LOCALHOST), 80, none, answers(&["93.184.216.34"])).await;
        assert!(matches!(literal, Err(FetchError::Private { .. })), "{literal:?}");
    }

    #[tokio::test]
    async fn the_allow_list_applies_to_the_vetted_address() {
        let allow = vec!["127.0.0.1".to_owned(), "intranet.example".to_owned()];
        let lo = url::Host::Ipv4(Ipv4Addr::LOCALHOST);
        assert!(vetted_addrs(&lo, 80, &allow, answers(&[])).await.is_ok());
        // A name that resolves to the allowed address is fine; to another private one it is not,
        // even a name that merely looks like an allowed one.
        assert!(vetted_addrs(&domain("up.example"), 80, &allow, answers(&["127.0.0.1"])).await.is_ok());
        for (name, addr) in [("up.example", "127.0.0.2"), ("up.example", "::1"), ("127.0.0.1.nip.example", "10.0.0.1")]
        {
            let got = vetted_addrs(&domain(name), 80, &allow, answers(&[addr])).await;
            assert!(matches!(got, Err(FetchError::Private { .. })), "{name} {addr}: {got:?}");
        }
        let other_loopback = url::Host::Ipv4(Ipv4Addr::new(127, 0, 0, 2));
        assert!(vetted_addrs(&other_loopback, 80, &allow, answers(&[])).await.is_err());
        let mapped = url::Host::Ipv6(Ipv4Addr::LOCALHOST.to_ipv6_mapped());
        assert!(vetted_addrs(&mapped, 80, &allow, answers(&[])).await.is_err());
        // An allowed name: the operator trusts whatever it resolves to.
        assert!(vetted_addrs(&domain("intranet.example"), 80, &allow, answers(&["10.1.1.1"])).await.is_ok());
    }

    /// A tiny HTTP server on loopback answering every request with `body`; returns its port and
    /// a counter of the requests it got.
    async fn serve(body: &'static str) -> (u16, Arc<AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(answer.as_bytes()).await;
            }
        });
        (port, hits)
    }

    fn media(allow: &[&str]) -> Media {
        Media { allow_private_hosts: allow.iter().map(|h| (*h).to_owned()).collect(), ..Media::default() }
    }

    /// DNS rebinding: the name is resolved once, and the connection goes to that answer. The
    /// lookup can only be called once (`FnOnce`); a resolver that answers something else the
    /// second time is never asked again, and the system resolver (which does not know the
    /// made-up name) is never asked at all.
    #[tokio::test]
    async fn the_connection_goes_to_the_vetted_address_only() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (port, hits) = serve("vetted").await;
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let lookup = move |host: String, port: u16| {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            assert_eq!(host, "rebind.invalid");
            // First answer allowed; any later one would be the internal target.
            let ip = if n == 0 { ip("127.0.0.1") } else { ip("169.254.169.254") };
            std::future::ready(Ok(vec![SocketAddr::new(ip, port)]))
        };
        let got = fetch(&format!("http://rebind.invalid:{port}/f.txt"), &media(&["127.0.0.1"]), lookup)
            .await
            .expect("fetched from the pinned address");
        assert_eq!(got.bytes, b"vetted");
        assert_eq!(got.name, "f.txt");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(hits.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_refused_address_is_never_connected_to() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (port, hits) = serve("secret").await;
        for url in [
            format!("http://127.0.0.1:{port}/"),
            format!("http://[::ffff:127.0.0.1]:{port}/"),
            format!("http://0.0.0.0:{port}/"),
            format!("http://intranet.invalid:{port}/"),
        ] {
            let got = fetch(&url, &media(&[]), answers(&["127.0.0.1"])).await;
            assert!(matches!(got, Err(FetchError::Private { .. })), "{url}: {got:?}");
        }
        assert_eq!(hits.load(Ordering::SeqCst), 0);
        let scheme = fetch("gopher://example.org/", &media(&[]), answers(&[])).await;
        assert!(matches!(scheme, Err(FetchError::Scheme)), "{scheme:?}");
    }
}
