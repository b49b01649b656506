//! A child network namespace joined to the test's by a veth pair, for
//! browsers on networks the test controls: UDP dropped by nftables, or an
//! address that changes mid-call.
//!
//! The tests already run in a loopback-only namespace as root; a child
//! namespace is held open by a `sleep` started under `unshare -n`, and
//! everything inside it runs under `nsenter -t <pid> -n`. The parent end of
//! the veth gets `10.A.B.1/24`, the child end `10.A.B.2/24` (A.B from the
//! holder's pid, so concurrent tests never share a subnet or an interface
//! name). Dropping the value kills the holder, which deletes the namespace
//! and both ends of the veth.

use std::net::{IpAddr, Ipv4Addr};
use std::process::{Child, Command, Stdio};

/// A network namespace with a veth to the test's namespace.
pub struct ChildNet {
    holder: Child,
    /// The holder's pid: `nsenter -t <pid> -n` enters the namespace.
    pub pid: u32,
    /// The parent end's name.
    pub host_if: String,
    /// The child end's name.
    pub child_if: String,
    /// The parent end's address: what the child reaches servers at.
    pub host_ip: Ipv4Addr,
    /// The child end's current address.
    pub child_ip: Ipv4Addr,
}

/// Runs `cmd` and panics with its output unless it succeeds.
fn must(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl ChildNet {
    /// Creates the namespace and the veth, both ends up and addressed, the
    /// child's default route through the parent end.
    pub fn create() -> ChildNet {
        let holder = Command::new("unshare")
            .args(["-n", "sleep", "infinity"])
            .stdin(Stdio::null())
            .spawn()
            .expect("unshare (util-linux) runs");
        let pid = holder.id();
        let (a, b) = (((pid >> 8) & 0xff) as u8, (pid & 0xff) as u8);
        let net = ChildNet {
            holder,
            pid,
            host_if: format!("vh{pid}"),
            child_if: format!("vc{pid}"),
            host_ip: Ipv4Addr::new(10, a, b, 1),
            child_ip: Ipv4Addr::new(10, a, b, 2),
        };
        // `unshare` may not have switched namespaces yet when we look.
        let mine = std::fs::read_link("/proc/self/ns/net").expect("own netns");
        for _ in 0..100 {
            match std::fs::read_link(format!("/proc/{pid}/ns/net")) {
                Ok(ns) if ns != mine => break,
                _ => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        }
        must(
            Command::new("ip")
                .args(["link", "add", &net.host_if, "type", "veth", "peer", "name"])
                .args([&net.child_if, "netns", &pid.to_string()]),
        );
        must(Command::new("ip").args([
            "addr",
            "add",
            &format!("{}/24", net.host_ip),
            "dev",
            &net.host_if,
        ]));
        // No IPv6 on the veth: its link-local address would appear a second
        // or two after the link comes up (duplicate address detection), and
        // a Chromium that started meanwhile takes that for a network change
        // and aborts the page's loads (`net::ERR_NETWORK_CHANGED`: a CI
        // failure). Best effort: a kernel without IPv6 has nothing to turn
        // off.
        let no_ipv6 = |dev: &str| format!("net.ipv6.conf.{dev}.disable_ipv6=1");
        let _ = Command::new("sysctl")
            .args(["-qw", &no_ipv6(&net.host_if)])
            .status();
        let _ = net
            .command("sysctl")
            .args(["-qw", &no_ipv6(&net.child_if)])
            .status();
        must(Command::new("ip").args(["link", "set", &net.host_if, "up"]));
        net.exec(&["ip", "link", "set", "lo", "up"]);
        net.exec(&[
            "ip",
            "addr",
            "add",
            &format!("{}/24", net.child_ip),
            "dev",
            &net.child_if,
        ]);
        // Removing the primary address must not take a secondary one (the
        // new address of `readdress`) along.
        net.exec(&[
            "sysctl",
            "-qw",
            &format!("net.ipv4.conf.{}.promote_secondaries=1", net.child_if),
        ]);
        net.exec(&["ip", "link", "set", &net.child_if, "up"]);
        net.exec(&[
            "ip",
            "route",
            "add",
            "default",
            "via",
            &net.host_ip.to_string(),
        ]);
        net
    }

    /// A command that runs `program` inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.args(["-t", &self.pid.to_string(), "-n", program]);
        c
    }

    /// Runs `args` inside the namespace; panics unless it succeeds.
    pub fn exec(&self, args: &[&str]) {
        must(self.command(args[0]).args(&args[1..]));
    }

    /// The parent end's address, as an `IpAddr`.
    pub fn host(&self) -> IpAddr {
        IpAddr::V4(self.host_ip)
    }

    /// Drops every UDP datagram leaving or entering the child's veth (in
    /// the child, with nftables), as a network that lets only TCP out.
    pub fn block_udp(&self) {
        let rules = format!(
            "table inet veche_strict {{\n\
             chain out {{ type filter hook output priority 0; oifname \"{0}\" meta l4proto udp drop; }}\n\
             chain in {{ type filter hook input priority 0; iifname \"{0}\" meta l4proto udp drop; }}\n\
             }}\n",
            self.child_if
        );
        let mut child = self
            .command("nft")
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("nft runs");
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(rules.as_bytes())
            .expect("rules written");
        assert!(
            child.wait().expect("nft ends").success(),
            "nft refused {rules}"
        );
    }

    /// Moves the child to another network, as a laptop that went from
    /// Wi-Fi to a phone hotspot: the parent end gets a gateway address on
    /// a new subnet (`10.A.(B+128 mod 256).1/24`), the child end an address
    /// there, the old address goes (which ends every flow that used it),
    /// and the default route points at the new gateway. The parent end's
    /// first address, where the servers listen, stays reachable through
    /// that route. Returns the new address.
    pub fn readdress(&mut self) -> Ipv4Addr {
        let [a, b, c, _] = self.child_ip.octets();
        let c2 = c.wrapping_add(128);
        let gateway = Ipv4Addr::new(a, b, c2, 1);
        let new = Ipv4Addr::new(a, b, c2, 2);
        // `replace`: a second move goes back to the first subnet, whose
        // gateway is the parent end's first address, already there.
        must(Command::new("ip").args([
            "addr",
            "replace",
            &format!("{gateway}/24"),
            "dev",
            &self.host_if,
        ]));
        self.exec(&[
            "ip",
            "addr",
            "add",
            &format!("{new}/24"),
            "dev",
            &self.child_if,
        ]);
        self.exec(&[
            "ip",
            "addr",
            "del",
            &format!("{}/24", self.child_ip),
            "dev",
            &self.child_if,
        ]);
        self.exec(&[
            "ip",
            "route",
            "replace",
            "default",
            "via",
            &gateway.to_string(),
        ]);
        self.child_ip = new;
        new
    }
}

impl Drop for ChildNet {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        // The namespace goes with its last process and takes the child end
        // along; deleting the parent end is for when something still holds
        // the namespace (a browser that has not exited yet).
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .stderr(Stdio::null())
            .status();
    }
}
