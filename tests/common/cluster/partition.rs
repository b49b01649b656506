//! Partitions with nftables, and the loopback /24 each cluster claims so that the partitions of
//! tests running at the same time never touch each other.

use super::Cluster;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// The port of the listener on `127.A.B.254` that claims a /24 for one
/// cluster, above the kernel's ephemeral range so nothing else takes it.
const CLAIM_PORT: u16 = 64_999;

impl Cluster {
    /// Cuts control-plane node `id` off from the rest of the cluster: with
    /// nftables, drops every packet from `127.A.B.{id}` to another address
    /// of the cluster's /24 and the reverse, in the input and output hooks
    /// (table `veche_test_A_B_{id}`). The test and the CLI, which connect
    /// from 127.0.0.1, still reach it.
    pub fn partition(&self, id: u64) {
        let ip = self.ip(id);
        let net = format!("127.{}.{}.0/24", self.net.0, self.net.1);
        let table = self.table(id);
        let rules = format!(
            "ip saddr {ip} ip daddr {net} ip daddr != {ip} drop\n\
             ip daddr {ip} ip saddr {net} ip saddr != {ip} drop"
        );
        let script = format!(
            "table ip {table} {{\n\
               chain input {{\n type filter hook input priority -10; policy accept;\n{rules}\n}}\n\
               chain output {{\n type filter hook output priority -10; policy accept;\n{rules}\n}}\n\
             }}\n"
        );
        nft(&["-f", "-"], Some(&script));
        self.partitioned.lock().expect("lock").insert(id);
        eprintln!("[harness] partitioned control-plane node {id} ({ip}) from {net}");
    }

    /// Undoes [`Cluster::partition`]: deletes node `id`'s nftables table.
    pub fn heal(&self, id: u64) {
        nft(&["delete", "table", "ip", &self.table(id)], None);
        self.partitioned.lock().expect("lock").remove(&id);
        eprintln!("[harness] healed control-plane node {id}");
    }
}

/// Claims a loopback /24 `127.A.B.0/24` for one cluster by holding a
/// listener on `127.A.B.254:CLAIM_PORT`: another test process (or thread)
/// in the same network namespace fails to bind it and picks another.
pub(super) fn claim_subnet() -> (TcpListener, (u8, u8)) {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let seed = std::process::id()
        .wrapping_mul(7919)
        .wrapping_add(COUNTER.fetch_add(1, Ordering::Relaxed) * 104_729);
    for attempt in 0..2000u32 {
        let n = seed.wrapping_add(attempt) % (254 * 256);
        let (a, b) = ((1 + n / 256) as u8, (n % 256) as u8);
        let addr = SocketAddr::from((Ipv4Addr::new(127, a, b, 254), CLAIM_PORT));
        if let Ok(l) = TcpListener::bind(addr) {
            return (l, (a, b));
        }
    }
    panic!("could not claim a loopback /24 for a test cluster");
}

pub(super) fn nft_path() -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(["/usr/sbin", "/sbin", "/usr/bin"].map(PathBuf::from))
        .map(|dir| dir.join("nft"))
        .find(|p| p.is_file())
}

/// Runs `nft ARGS` with `stdin`, panicking with a clear message if nft is
/// missing or refuses.
fn nft(args: &[&str], stdin: Option<&str>) {
    let path = nft_path().unwrap_or_else(|| {
        panic!(
            "`nft` (Debian package nftables) is not installed, and the partition tests need \
             it: run ./scripts/test.sh, which installs it, or apt-get install nftables"
        )
    });
    let mut child = Command::new(&path)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()));
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(text.as_bytes())
            .expect("write the nft script");
    }
    let out = child.wait_with_output().expect("wait for nft");
    assert!(
        out.status.success(),
        "nft {} failed ({}): {}{}\n(partitions need root, or CAP_NET_ADMIN, in the test's \
         network namespace: run the tests through ./scripts/test.sh)",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr),
        stdin.map(|s| format!("\nscript:\n{s}")).unwrap_or_default()
    );
}
