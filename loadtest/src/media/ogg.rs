//! A minimal Ogg packet extractor for an in-memory clip.
//!
//! `rtc::media::io::ogg_reader` returns whole page payloads. An Opus sender needs the packets
//! inside the pages, one per 20 ms frame. A page's segment table gives those packets
//! (RFC 3533 §6): a packet is a run of 255-byte segments ended by one shorter segment, and it may
//! continue onto the next page. That is about thirty lines, so we undo the lacing here. CRCs are
//! not checked: the input is our own embedded clip, covered by tests.

use bytes::{Bytes, BytesMut};

use super::ParseError;

const CONTAINER: &str = "Ogg";
const PAGE_HEADER_LEN: usize = 27;

/// Extracts every packet from an Ogg clip, in order, across all pages.
///
/// For Ogg Opus the first two packets are the `OpusHead` and `OpusTags` headers (RFC 7845). The
/// audio packets follow. A packet that fits on one page is a zero-copy slice of `data`. One that
/// spans pages is copied together. A packet still unfinished at the end of the data is dropped.
///
/// # Errors
///
/// [`ParseError::BadSignature`] if a page doesn't start with `OggS`, and
/// [`ParseError::Truncated`] if a page header or its segments run past the end.
pub fn packets(data: &Bytes) -> Result<Vec<Bytes>, ParseError> {
    let mut packets = Vec::new();
    // A packet continuing onto the next page: bytes gathered so far.
    let mut partial: Option<BytesMut> = None;
    let mut offset = 0;
    while offset < data.len() {
        let truncated = ParseError::Truncated {
            container: CONTAINER,
            offset,
        };
        let header = data
            .get(offset..offset + PAGE_HEADER_LEN)
            .ok_or(truncated.clone())?;
        if &header[..4] != b"OggS" {
            return Err(ParseError::BadSignature {
                container: CONTAINER,
                offset,
            });
        }
        let segment_count = usize::from(header[26]);
        let table_start = offset + PAGE_HEADER_LEN;
        let lacing = data
            .get(table_start..table_start + segment_count)
            .ok_or(truncated.clone())?;
        let body_len: usize = lacing.iter().map(|&l| usize::from(l)).sum();
        let body_start = table_start + segment_count;
        if body_start + body_len > data.len() {
            return Err(truncated);
        }

        let mut packet_start = body_start;
        let mut cursor = body_start;
        for &len in lacing {
            cursor += usize::from(len);
            if len == 255 {
                continue; // The packet goes on in the next segment.
            }
            let piece = data.slice(packet_start..cursor);
            packets.push(match partial.take() {
                None => piece,
                Some(mut head) => {
                    head.extend_from_slice(&piece);
                    head.freeze()
                }
            });
            packet_start = cursor;
        }
        if packet_start < cursor {
            // The last segment was 255 bytes long, so the packet continues on the next page.
            partial
                .get_or_insert_with(BytesMut::new)
                .extend_from_slice(&data[packet_start..cursor]);
        }
        offset = body_start + body_len;
    }
    Ok(packets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(lacing: &[u8], body: &[u8]) -> Vec<u8> {
        let mut v = b"OggS".to_vec();
        v.resize(26, 0);
        v.push(lacing.len() as u8);
        v.extend_from_slice(lacing);
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn undoes_lacing_within_and_across_pages() {
        let long: Vec<u8> = (0..300u16).map(|i| i as u8).collect();
        // Page 1: a 3-byte packet, then the first 255 bytes of a 300-byte packet.
        let mut clip = page(&[3, 255], &[[1, 2, 3].as_slice(), &long[..255]].concat());
        // Page 2: the last 45 bytes, then an empty packet, then a 2-byte one.
        clip.extend(page(
            &[45, 0, 2],
            &[&long[255..], [9, 9].as_slice()].concat(),
        ));
        let p = packets(&Bytes::from(clip)).unwrap();
        assert_eq!(p.len(), 4);
        assert_eq!(&p[0][..], &[1, 2, 3]);
        assert_eq!(&p[1][..], &long[..]);
        assert!(p[2].is_empty());
        assert_eq!(&p[3][..], &[9, 9]);
    }

    #[test]
    fn rejects_truncated_page_and_bad_signature() {
        let mut clip = page(&[3], &[1, 2, 3]);
        clip.pop();
        assert!(matches!(
            packets(&Bytes::from(clip)),
            Err(ParseError::Truncated { offset: 0, .. })
        ));
        let mut clip = page(&[3], &[1, 2, 3]);
        clip[1] = b'x';
        assert!(matches!(
            packets(&Bytes::from(clip)),
            Err(ParseError::BadSignature { .. })
        ));
    }
}
