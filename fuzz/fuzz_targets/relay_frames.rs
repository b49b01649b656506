//! The media-node relay (cascading over QUIC): control-stream frames (a
//! 4-byte big-endian length, then a MessagePack `RelayMsg`) and the 3-byte
//! datagram header with its NACK payload. A peer is authenticated by the
//! cluster CA, but a broken or compromised node must not be able to crash
//! or balloon another.
//!
//! Each input is read twice: as the bytes of a control stream, frame after
//! frame the way the node's reader takes them (`check_len` on the prefix,
//! then exactly that many bytes to `decode`), and as one datagram.
//!
//! Invariants beyond "no panic":
//! - a length accepted by `check_len` is the prefix's value and at most
//!   `MAX_CONTROL_FRAME`; a refused one is over it;
//! - the decoder is only ever given the bytes of its own frame, and a
//!   decoded message encodes to a frame whose prefix is its body's length
//!   and whose body decodes to the same message;
//! - a datagram header parses exactly when the datagram has 3 bytes and a
//!   known kind, writes back to the same 3 bytes, and the payload is the
//!   rest of the datagram;
//! - a NACK payload decodes to one sequence number per whole pair of bytes
//!   and encodes back to those bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veche_protocol::relay::{
    decode_nack, encode_nack, DatagramHeader, RelayDecodeError, RelayMsg, DATAGRAM_HEADER_LEN,
    MAX_CONTROL_FRAME,
};

fn control_stream(mut stream: &[u8]) {
    while stream.len() >= 4 {
        let prefix: [u8; 4] = stream[..4].try_into().expect("4 bytes");
        let declared = u32::from_be_bytes(prefix) as usize;
        let len = match RelayMsg::check_len(prefix) {
            Ok(len) => len,
            Err(RelayDecodeError::TooLarge(n)) => {
                assert_eq!(n, declared);
                assert!(n > MAX_CONTROL_FRAME);
                return; // The node drops the link.
            }
            Err(e) => panic!("check_len gave {e:?}"),
        };
        assert_eq!(len, declared);
        assert!(len <= MAX_CONTROL_FRAME);
        // The stream ends inside the frame: the reader waits, then sees
        // the end of the stream, and decodes nothing.
        let Some(body) = stream.get(4..4 + len) else {
            return;
        };
        match RelayMsg::decode(body) {
            Ok(msg) => {
                let _ = msg.room();
                let frame = msg.encode();
                let again = RelayMsg::check_len(frame[..4].try_into().expect("4 bytes"))
                    .expect("an encoded frame is within the limit");
                assert_eq!(again, frame.len() - 4);
                let back = RelayMsg::decode(&frame[4..]).expect("an encoded frame decodes");
                assert_eq!(back, msg);
            }
            Err(_) => return, // The node drops the link.
        }
        stream = &stream[4 + len..];
    }
}

fn datagram(d: &[u8]) {
    let parsed = DatagramHeader::parse(d);
    let expected = d.len() >= DATAGRAM_HEADER_LEN && d[0] <= 2;
    assert_eq!(parsed.is_some(), expected);
    if let Some((header, payload)) = parsed {
        let mut written = Vec::new();
        header.write(&mut written);
        assert_eq!(&written[..], &d[..DATAGRAM_HEADER_LEN]);
        assert_eq!(payload, &d[DATAGRAM_HEADER_LEN..]);
        let seqs = decode_nack(payload);
        assert_eq!(seqs.len(), payload.len() / 2);
        assert_eq!(encode_nack(&seqs), &payload[..payload.len() / 2 * 2]);
    }
}

fuzz_target!(|data: &[u8]| {
    control_stream(data);
    datagram(data);
});
