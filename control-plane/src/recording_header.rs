//! The duration of a file whose node never finished it.
//!
//! The media node's muxer (libwebm) reserves the WebM header's `Duration`
//! element when a file starts and fills it in when the file ends. A file
//! still being written, or cut short by its node's death, therefore says
//! it lasts one tick (1 ms), and a browser's `<video>` stops there. The
//! index knows better: its segments say how much media arrived. So while
//! a file is not complete, the bytes of that one element are replaced on
//! their way out ([`patch_stream`]) with the index's duration; the objects
//! themselves never change.
//!
//! [`find_duration`] walks just enough EBML (RFC 8794) to find the element
//! in the first bytes of segment 0: the EBML header, then the `Segment`
//! element's children up to `Info`, whose `TimestampScale` and `Duration`
//! it reads. Anything unexpected gives `None`, and the file is served as
//! it is.

use bytes::{Bytes, BytesMut};
use futures::stream::{BoxStream, StreamExt};

/// Bytes of segment 0 read to find the header's `Duration`: libwebm
/// writes the EBML header, a reserved seek head and `Info` first, well
/// within this.
pub const HEAD_BYTES: u64 = 4096;

const EBML: u32 = 0x1A45_DFA3;
const SEGMENT: u32 = 0x1853_8067;
const INFO: u32 = 0x1549_A966;
const TIMESTAMP_SCALE: u32 = 0x2A_D7B1;
const DURATION: u32 = 0x4489;
const CLUSTER: u32 = 0x1F43_B675;
const TRACKS: u32 = 0x1654_AE6B;

/// Where a file's `Duration` value is, and in what unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DurationSlot {
    /// Byte offset of the float in the file.
    pub offset: u64,
    /// Its size: 4 or 8 bytes (an IEEE float, big-endian).
    pub len: usize,
    /// Nanoseconds per tick (`TimestampScale`; WebM's default 1 ms).
    pub scale_ns: u64,
}

impl DurationSlot {
    /// The value's bytes for a duration of `ms` milliseconds.
    pub fn bytes_for(&self, ms: u64) -> Vec<u8> {
        let ticks = ms as f64 * 1e6 / self.scale_ns.max(1) as f64;
        match self.len {
            4 => (ticks as f32).to_be_bytes().to_vec(),
            _ => ticks.to_be_bytes().to_vec(),
        }
    }
}

/// An element ID (its marker bits kept, as the specification writes IDs)
/// and its length in bytes.
fn read_id(b: &[u8]) -> Option<(u32, usize)> {
    let first = *b.first()?;
    let len = first.leading_zeros() as usize + 1;
    if len > 4 || b.len() < len {
        return None;
    }
    Some((
        b[..len].iter().fold(0u32, |v, x| v << 8 | u32::from(*x)),
        len,
    ))
}

/// A data size and its length in bytes; `None` for the size means unknown
/// (all value bits set), which libwebm writes until the file ends.
fn read_size(b: &[u8]) -> Option<(Option<u64>, usize)> {
    let first = *b.first()?;
    let len = first.leading_zeros() as usize + 1;
    if len > 8 || b.len() < len {
        return None;
    }
    let mask = if len == 8 { 0 } else { 0xFFu8 >> len };
    let mut v = u64::from(first & mask);
    let mut all_ones = first & mask == mask;
    for x in &b[1..len] {
        v = v << 8 | u64::from(*x);
        all_ones &= *x == 0xFF;
    }
    Some(((!all_ones).then_some(v), len))
}

/// One element header at `pos`: (id, data start, data size).
fn element(b: &[u8], pos: usize) -> Option<(u32, usize, Option<u64>)> {
    let (id, il) = read_id(b.get(pos..)?)?;
    let (size, sl) = read_size(b.get(pos + il..)?)?;
    Some((id, pos + il + sl, size))
}

/// Finds the `Duration` of a WebM file from its first bytes.
pub fn find_duration(head: &[u8]) -> Option<DurationSlot> {
    let (id, start, size) = element(head, 0)?;
    if id != EBML {
        return None;
    }
    let (id, mut pos, _) = element(head, start + usize::try_from(size?).ok()?)?;
    if id != SEGMENT {
        return None;
    }
    // The segment's children, up to `Info`.
    loop {
        let (id, start, size) = element(head, pos)?;
        if id == CLUSTER || id == TRACKS {
            return None;
        }
        let size = usize::try_from(size?).ok()?;
        if id == INFO {
            return info_duration(head, start, start + size);
        }
        pos = start + size;
    }
}

fn info_duration(head: &[u8], mut pos: usize, end: usize) -> Option<DurationSlot> {
    let mut scale_ns = 1_000_000;
    let mut slot = None;
    while pos < end {
        let (id, start, size) = element(head, pos)?;
        let size = usize::try_from(size?).ok()?;
        let data = head.get(start..start + size)?;
        match id {
            TIMESTAMP_SCALE if (1..=8).contains(&size) => {
                scale_ns = data.iter().fold(0u64, |v, x| v << 8 | u64::from(*x));
            }
            DURATION if size == 4 || size == 8 => slot = Some((start, size)),
            _ => {}
        }
        pos = start + size;
    }
    let (offset, len) = slot?;
    Some(DurationSlot {
        offset: offset as u64,
        len,
        scale_ns,
    })
}

/// `body` (the file's bytes from offset `start` on) with the bytes at
/// `patch.0` replaced by `patch.1` wherever they pass.
pub fn patch_stream(
    body: BoxStream<'static, Result<Bytes, std::io::Error>>,
    start: u64,
    patch: (u64, Vec<u8>),
) -> BoxStream<'static, Result<Bytes, std::io::Error>> {
    let mut at = start;
    body.map(move |chunk| {
        let chunk = chunk?;
        let from = at;
        at += chunk.len() as u64;
        let (p_at, p) = (&patch.0, &patch.1);
        let p_end = p_at + p.len() as u64;
        if p_end <= from || *p_at >= at {
            return Ok(chunk);
        }
        let mut out = BytesMut::from(&chunk[..]);
        for (i, byte) in p.iter().enumerate() {
            let abs = p_at + i as u64;
            if (from..at).contains(&abs) {
                out[(abs - from) as usize] = *byte;
            }
        }
        Ok(out.freeze())
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::stream;

    /// The start of a file as libwebm writes it before it ends: the EBML
    /// header, an unknown-size segment, a void, `Info` with the scale and a
    /// 4-byte duration of one tick, then `Tracks`.
    fn head() -> Vec<u8> {
        let mut b = vec![0x1A, 0x45, 0xDF, 0xA3, 0x84, 0x42, 0x86, 0x81, 0x01];
        b.extend([
            0x18, 0x53, 0x80, 0x67, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        ]);
        b.extend([0xEC, 0x83, 0, 0, 0]);
        let mut info = vec![0x2A, 0xD7, 0xB1, 0x83, 0x0F, 0x42, 0x40];
        info.extend([0x44, 0x89, 0x84]);
        info.extend(1.0f32.to_be_bytes());
        b.extend([0x15, 0x49, 0xA9, 0x66, 0x80 | info.len() as u8]);
        b.extend(info);
        b.extend([0x16, 0x54, 0xAE, 0x6B, 0x80]);
        b
    }

    #[test]
    fn the_duration_of_an_unfinished_file_is_found_after_the_segment_header() {
        let h = head();
        let slot = find_duration(&h).expect("found");
        assert_eq!((slot.len, slot.scale_ns), (4, 1_000_000));
        let at = slot.offset as usize;
        assert_eq!(f32::from_be_bytes(h[at..at + 4].try_into().unwrap()), 1.0);
        assert_eq!(slot.bytes_for(20_305), 20_305.0f32.to_be_bytes().to_vec());
    }

    #[test]
    fn anything_but_webm_has_no_duration_to_patch() {
        assert_eq!(find_duration(b"not a webm file at all"), None);
        assert_eq!(find_duration(&[]), None);
        let mut h = head();
        h.truncate(30);
        assert_eq!(find_duration(&h), None, "cut inside Info");
    }

    #[test]
    fn a_patch_lands_on_its_bytes_across_chunk_boundaries_and_ranges() {
        let file: Vec<u8> = (0u8..100).collect();
        let patch = (10u64, vec![0xAA, 0xBB, 0xCC, 0xDD]);
        for split in [5usize, 11, 12, 13, 50] {
            for start in [0u64, 8, 12] {
                let body = &file[start as usize..];
                let (a, b) = body.split_at(split.min(body.len()));
                let s = stream::iter(vec![
                    Ok(Bytes::copy_from_slice(a)),
                    Ok(Bytes::copy_from_slice(b)),
                ])
                .boxed();
                let got: Vec<u8> = futures::executor::block_on(
                    patch_stream(s, start, patch.clone()).collect::<Vec<_>>(),
                )
                .into_iter()
                .flat_map(|c| c.unwrap().to_vec())
                .collect();
                let mut want = file.clone();
                want[10..14].copy_from_slice(&patch.1);
                assert_eq!(got, want[start as usize..], "split {split}, start {start}");
            }
        }
    }
}
