//! The one way Veche's tests and load harness start Veche processes.
//!
//! `veche serve`, `veche control-plane` and `veche media-node` are started
//! as child processes of the `veche` binary whose path the caller gives
//! (`env!("CARGO_BIN_EXE_veche")` in tests, `current_exe()` in `veche
//! loadtest`), so this crate depends on no other Veche crate and can be
//! used by all of them without a cycle.
//!
//! - [`process`]: spawn with every output line prefixed and copied to a log
//!   file or to stderr, readiness by the line (and URL) the process prints,
//!   SIGTERM-then-SIGKILL stop, kill, restart.
//! - [`certs`]: a relay CA and per-node certificates (`veche cluster ca`,
//!   `veche cluster cert`).
//! - [`net`]: a free port on a loopback address.
//! - [`TempDir`], [`now_ms`] and [`cluster_secret`].
#![deny(missing_docs)]

pub mod certs;
pub mod net;
mod output;
pub mod process;
mod tempdir;

pub use certs::Certs;
pub use net::{free_port, free_udp_port};
pub use output::find_url;
pub use process::{Launch, Output, Process, Ready};
pub use tempdir::TempDir;

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch: the wall clock Veche's messages carry
/// (`sent_at_ms`, chat timestamps). 0 if the clock is before 1970.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Bytes of randomness in a [`cluster_secret`]. The secret is their hex
/// encoding, twice as long, so it clears the control plane's 32-byte
/// minimum with room to spare.
pub const SECRET_BYTES: usize = 32;

/// A fresh random cluster secret: [`SECRET_BYTES`] random bytes as 64 hex
/// characters. Every process of one cluster gets the same one through
/// `VECHE_CLUSTER_SECRET`.
pub fn cluster_secret() -> String {
    random_hex(SECRET_BYTES)
}

/// `n` random bytes from the OS, as `2n` lowercase hex characters (unique
/// directory names, room numbers, secrets).
pub fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
        .expect("the OS random number generator is available");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_cluster_secret_is_at_least_32_bytes_and_fresh_each_time() {
        let (a, b) = (cluster_secret(), cluster_secret());
        assert!(a.len() >= 32, "{a}");
        assert_eq!(a.len(), 2 * SECRET_BYTES);
        assert_ne!(a, b);
    }

    #[test]
    fn now_ms_is_after_2020() {
        assert!(now_ms() > 1_577_836_800_000);
    }
}
