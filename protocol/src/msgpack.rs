//! Decoding MessagePack bodies from other Veche processes with a nesting
//! limit that fits a tokio worker's stack.
//!
//! rmp_serde stops at 1024 levels of nesting. A recursive type such as the
//! control plane's `Command::Batch` spends one level per array, and in an
//! unoptimised build each level of its decoder takes a few KiB of stack:
//! about 600 nested batches in one leader RPC or Raft append overflowed a
//! 2 MiB tokio worker stack, which aborts the whole process (found while
//! fuzzing the RPC, by a deep-nesting probe on a debug build; see
//! docs/robustness.md). No real message nests deeper than about a dozen
//! levels.

use serde::de::DeserializeOwned;

pub use crate::limits::rpc::MAX_RPC_DEPTH;

/// `rmp_serde::from_slice` with nesting limited to [`MAX_RPC_DEPTH`], for
/// every body that arrives over the network.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, rmp_serde::decode::Error> {
    let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
    de.set_max_depth(MAX_RPC_DEPTH);
    T::deserialize(&mut de)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    /// Shaped like the control plane's `Command`: an externally tagged
    /// enum with a variant that holds more of itself.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Nest {
        Leaf { text: String, at: u64 },
        Batch(Vec<Nest>),
    }

    fn nested(depth: usize) -> Vec<u8> {
        let mut b = Vec::new();
        for _ in 0..depth {
            b.extend_from_slice(&[0x81, 0xa5]);
            b.extend_from_slice(b"Batch");
            b.push(0x91);
        }
        b.extend_from_slice(&[0x81, 0xa5]);
        b.extend_from_slice(b"Batch");
        b.push(0x90);
        b
    }

    #[test]
    fn real_messages_decode_as_with_rmp_serde() {
        let v = Nest::Batch(vec![
            Nest::Leaf {
                text: "hi".into(),
                at: 5,
            },
            Nest::Batch(vec![]),
        ]);
        let bytes = rmp_serde::to_vec_named(&v).unwrap();
        assert_eq!(from_slice::<Nest>(&bytes).unwrap(), v);
        assert!(from_slice::<Nest>(&nested(20)).is_ok());
    }

    #[test]
    fn a_body_nested_past_the_limit_is_refused_on_a_tokio_sized_stack() {
        let run = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(|| {
                for depth in [600, 5_000, 100_000, MAX_RPC_DEPTH] {
                    assert!(from_slice::<Nest>(&nested(depth)).is_err(), "{depth}");
                }
            })
            .unwrap();
        run.join().expect("decoding overflowed a 2 MiB stack");
    }
}
