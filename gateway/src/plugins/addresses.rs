//! Which addresses a plugin's HTTP requests may reach through a host name: public ones only.
//! Loopback, private, link-local (cloud metadata at 169.254.169.254 among them), unique-local,
//! shared and unspecified addresses are refused when a name resolves to them, so that a granted
//! name cannot be pointed (or rebound) at the gateway's own network; the operator reaches such
//! an address by granting the address itself. The check runs when the connection is made, on
//! the addresses actually connected to.

use std::net::{IpAddr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Whether `ip` is a public address.
pub fn public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // shared address space (RFC 6598)
                || (a == 192 && b == 0)) // IETF protocol assignments
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local, e.g. fd00:ec2::254
                || (first & 0xffc0) == 0xfe80) // link local
        }
    }
}

/// The resolver of the plugins' HTTP client: the system's, keeping public addresses only.
#[derive(Debug, Default)]
pub struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> =
                found.iter().copied().filter(|a| public(a.ip())).collect();
            if public.is_empty() {
                let refused = found
                    .first()
                    .map_or("nothing".to_owned(), |a| a.ip().to_string());
                return Err(format!(
                    "{host} resolves to {refused}, a private, local or metadata address: grant the address itself to reach it"
                )
                .into());
            }
            let addrs: Addrs = Box::new(public.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_local_and_metadata_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:4700::1111", "8.8.8.8"] {
            assert!(public(ip.parse().unwrap()), "{ip}");
        }
    }
}
