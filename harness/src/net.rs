//! Free ports. A port is found by binding port 0 and letting it go; the
//! process started next binds it a moment later. Another process could take
//! it in between, which on a test machine's loopback is rare enough.

use std::net::{IpAddr, TcpListener, UdpSocket};

/// A free TCP port on `ip`.
///
/// Fails with a message that says why, e.g. when `ip` is a loopback
/// address other than 127.0.0.1 on a system that does not route all of
/// 127.0.0.0/8 to `lo` (Linux does).
pub fn free_port(ip: impl Into<IpAddr>) -> Result<u16, String> {
    let ip = ip.into();
    TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| explain(ip, e))
}

/// A free UDP port on `ip` (a media node's QUIC relay endpoint).
pub fn free_udp_port(ip: impl Into<IpAddr>) -> Result<u16, String> {
    let ip = ip.into();
    UdpSocket::bind((ip, 0))
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .map_err(|e| explain(ip, e))
}

fn explain(ip: IpAddr, e: std::io::Error) -> String {
    format!(
        "cannot bind {ip}: {e} (every node needs its own loopback address; Linux routes all \
         of 127.0.0.0/8 to lo)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn a_free_port_can_be_bound_again() {
        let ip = Ipv4Addr::new(127, 0, 0, 1);
        let port = free_port(ip).unwrap();
        assert_ne!(port, 0);
        TcpListener::bind((ip, port)).expect("the port is still free");
        let udp = free_udp_port(ip).unwrap();
        UdpSocket::bind((ip, udp)).expect("the UDP port is still free");
    }
}
