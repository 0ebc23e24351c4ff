//! Where Hermes' API server listens, as its configuration says and as the
//! live sockets show: the design keeps it on loopback (only the operator and
//! nginx on the same host talk to it). Read by `doctor`.
//!
//! Hermes takes the host from `platforms.api_server.extra.host` in its
//! config.yaml, else `API_SERVER_HOST` (its `.env` is loaded into the
//! environment), else 127.0.0.1 (`gateway/platforms/api_server.py`, both
//! generations; docs/hermes.md).

use crate::home::Home;
use std::net::IpAddr;

/// The host Hermes' API server is configured to bind, and where that was said.
pub fn configured_api_host(home: &Home) -> (String, String) {
    let configured =
        super::settings::config_value(home, &["platforms", "api_server", "extra", "host"]);
    if let Some(h) = configured.as_ref().and_then(|h| h.as_str()) {
        return (
            h.to_string(),
            format!(
                "platforms.api_server.extra.host in {}",
                home.hermes_config().display()
            ),
        );
    }
    if let Some(h) = crate::config::hermes_api_key(home, "API_SERVER_HOST") {
        return (
            h,
            format!(
                "API_SERVER_HOST ({} or the environment)",
                home.hermes_env().display()
            ),
        );
    }
    ("127.0.0.1".into(), "Hermes' default".into())
}

/// Whether a configured host (name or address) stays on this machine.
pub fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// The local addresses of TCP sockets listening on `port` (Linux
/// `/proc/net/tcp` and `tcp6`; empty elsewhere or when unreadable).
pub fn listeners_on(port: u16) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for (file, v6) in [("/proc/net/tcp", false), ("/proc/net/tcp6", true)] {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st …; st 0A = LISTEN.
            if f.len() < 4 || f[3] != "0A" {
                continue;
            }
            let Some((addr, p)) = f[1].split_once(':') else {
                continue;
            };
            if u16::from_str_radix(p, 16).ok() != Some(port) {
                continue;
            }
            if let Some(ip) = parse_proc_addr(addr, v6) {
                out.push(ip);
            }
        }
    }
    out
}

/// `/proc/net/tcp*` addresses: 32-bit words in host (little-endian) order.
fn parse_proc_addr(hex: &str, v6: bool) -> Option<IpAddr> {
    let words: Vec<u32> = (0..hex.len() / 8)
        .map(|i| u32::from_str_radix(&hex[i * 8..i * 8 + 8], 16).ok())
        .collect::<Option<_>>()?;
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    match (v6, bytes.len()) {
        (false, 4) => Some(IpAddr::from(<[u8; 4]>::try_from(&bytes[..]).ok()?)),
        (true, 16) => Some(IpAddr::from(<[u8; 16]>::try_from(&bytes[..]).ok()?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_addresses_and_loopback_hosts() {
        assert_eq!(
            parse_proc_addr("0100007F", false),
            Some("127.0.0.1".parse().unwrap())
        );
        assert_eq!(
            parse_proc_addr("00000000", false),
            Some("0.0.0.0".parse().unwrap())
        );
        assert_eq!(
            parse_proc_addr("00000000000000000000000001000000", true),
            Some("::1".parse().unwrap())
        );
        assert!(is_loopback_host("127.0.0.1") && is_loopback_host("::1"));
        assert!(is_loopback_host("[::1]") && is_loopback_host("localhost"));
        assert!(!is_loopback_host("0.0.0.0") && !is_loopback_host("::"));
        assert!(!is_loopback_host("10.1.2.3") && !is_loopback_host("example.com"));
        // A real listener on 127.0.0.1 is seen as loopback.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let seen = listeners_on(l.local_addr().unwrap().port());
        assert!(
            seen.iter().all(|ip| ip.is_loopback()) && !seen.is_empty(),
            "{seen:?}"
        );
    }
}
