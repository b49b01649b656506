//! A minimal IVF reader over an in-memory clip.
//!
//! `rtc::media::io::ivf_reader` exists, but it reads from an `io::Read` and copies every frame
//! into a fresh buffer. This reader slices the input [`Bytes`] instead. For a clip embedded with
//! `include_bytes!`, every frame is then a zero-copy view of static memory, and cloning one into
//! a packet costs nothing.
//!
//! Layout (<https://wiki.multimedia.cx/index.php/IVF>): a 32-byte file header (`DKIF`, version,
//! header length, FourCC, width, height, timebase, frame count), then for each frame a 12-byte
//! header (little-endian `u32` size, `u64` timestamp) and the frame itself.

use bytes::Bytes;

use super::ParseError;

const CONTAINER: &str = "IVF";
const FILE_HEADER_LEN: usize = 32;
const FRAME_HEADER_LEN: usize = 12;

/// The IVF file header fields a sender cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IvfHeader {
    /// Codec FourCC, `*b"VP80"` for VP8.
    pub fourcc: [u8; 4],
    /// Frame width in pixels.
    pub width: u16,
    /// Frame height in pixels.
    pub height: u16,
    /// Timebase denominator. For a constant-rate clip this is the frame rate (30).
    pub timebase_den: u32,
    /// Timebase numerator (1 for a constant-rate clip).
    pub timebase_num: u32,
}

/// One encoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IvfFrame {
    /// The frame as the encoder wrote it: what an RTP payloader splits up.
    pub data: Bytes,
    /// Presentation timestamp in timebase units. The sources ignore it and pace by their own
    /// schedule.
    pub timestamp: u64,
    /// Whether the frame is a VP8 keyframe (see [`is_vp8_keyframe`]).
    pub keyframe: bool,
}

/// Whether an encoded VP8 frame is a keyframe.
///
/// Bit 0 of the first byte of the VP8 frame tag is the inverse keyframe flag (RFC 6386 §9.1).
/// 0 means keyframe. An empty frame is not a keyframe.
pub fn is_vp8_keyframe(frame: &[u8]) -> bool {
    frame.first().is_some_and(|b| b & 0x01 == 0)
}

/// Parses a whole IVF clip into its header and frames.
///
/// Frames are slices of `data` (no copy). The keyframe flag is computed with the VP8 rule
/// ([`is_vp8_keyframe`]), so it is meaningful only when `fourcc` is `VP80`.
///
/// # Errors
///
/// [`ParseError::BadSignature`] if `data` doesn't start with `DKIF`, and
/// [`ParseError::Truncated`] if a header or frame runs past the end.
pub fn parse(data: &Bytes) -> Result<(IvfHeader, Vec<IvfFrame>), ParseError> {
    let file_header = data.get(..FILE_HEADER_LEN).ok_or(ParseError::Truncated {
        container: CONTAINER,
        offset: data.len(),
    })?;
    if &file_header[..4] != b"DKIF" {
        return Err(ParseError::BadSignature {
            container: CONTAINER,
            offset: 0,
        });
    }
    let u16_at = |i: usize| u16::from_le_bytes([file_header[i], file_header[i + 1]]);
    let u32_at = |i: usize| {
        u32::from_le_bytes([
            file_header[i],
            file_header[i + 1],
            file_header[i + 2],
            file_header[i + 3],
        ])
    };
    let header = IvfHeader {
        fourcc: [
            file_header[8],
            file_header[9],
            file_header[10],
            file_header[11],
        ],
        width: u16_at(12),
        height: u16_at(14),
        timebase_den: u32_at(16),
        timebase_num: u32_at(20),
    };
    // The header states its own length. Honour it (never below 32) so that a longer future
    // header still parses.
    let mut offset = usize::from(u16_at(6)).max(FILE_HEADER_LEN);

    let mut frames = Vec::new();
    while offset < data.len() {
        let truncated = ParseError::Truncated {
            container: CONTAINER,
            offset,
        };
        let frame_header = data
            .get(offset..offset + FRAME_HEADER_LEN)
            .ok_or(truncated.clone())?;
        let size = u32::from_le_bytes(frame_header[..4].try_into().expect("4 bytes")) as usize;
        let timestamp = u64::from_le_bytes(frame_header[4..].try_into().expect("8 bytes"));
        let start = offset + FRAME_HEADER_LEN;
        let end = start.checked_add(size).ok_or(truncated.clone())?;
        if end > data.len() {
            return Err(truncated);
        }
        let frame = data.slice(start..end);
        frames.push(IvfFrame {
            keyframe: is_vp8_keyframe(&frame),
            data: frame,
            timestamp,
        });
        offset = end;
    }
    Ok((header, frames))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_clip() -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(b"DKIF");
        v.extend_from_slice(&0u16.to_le_bytes());
        v.extend_from_slice(&32u16.to_le_bytes());
        v.extend_from_slice(b"VP80");
        v.extend_from_slice(&640u16.to_le_bytes());
        v.extend_from_slice(&360u16.to_le_bytes());
        v.extend_from_slice(&30u32.to_le_bytes());
        v.extend_from_slice(&1u32.to_le_bytes());
        v.extend_from_slice(&2u32.to_le_bytes());
        v.extend_from_slice(&0u32.to_le_bytes());
        for (ts, frame) in [(0u64, &[0x10u8, 0xaa][..]), (1, &[0x11, 0xbb, 0xcc][..])] {
            v.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            v.extend_from_slice(&ts.to_le_bytes());
            v.extend_from_slice(frame);
        }
        v
    }

    #[test]
    fn parses_header_frames_and_keyframe_flags() {
        let (h, frames) = parse(&Bytes::from(tiny_clip())).unwrap();
        assert_eq!(&h.fourcc, b"VP80");
        assert_eq!(
            (h.width, h.height, h.timebase_den, h.timebase_num),
            (640, 360, 30, 1)
        );
        assert_eq!(frames.len(), 2);
        assert_eq!(&frames[0].data[..], &[0x10, 0xaa]);
        assert!(frames[0].keyframe);
        assert_eq!(frames[1].timestamp, 1);
        assert!(!frames[1].keyframe);
    }

    #[test]
    fn rejects_truncated_frame_and_bad_signature() {
        let mut clip = tiny_clip();
        clip.pop();
        assert!(matches!(
            parse(&Bytes::from(clip)),
            Err(ParseError::Truncated { offset: 46, .. })
        ));
        let mut clip = tiny_clip();
        clip[0] = b'X';
        assert!(matches!(
            parse(&Bytes::from(clip)),
            Err(ParseError::BadSignature { .. })
        ));
        assert!(matches!(
            parse(&Bytes::from_static(b"DKIF")),
            Err(ParseError::Truncated { .. })
        ));
    }
}
