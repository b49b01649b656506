//! A recorded file as HTTP serves it: the concatenation of its segment
//! objects ([`segment_key`]), whose sizes the index knows, so a byte range
//! of the file maps to ranges of a few objects without asking the store.
//! Browsers seek in a `<video>` with `Range` requests; this module decides
//! what a `Range` header asks for ([`parse_range`], pure), which object
//! ranges make it up ([`map_range`], pure), and streams them
//! ([`stream_file`]). It also deletes everything a recording stored
//! ([`delete_objects`]).

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt};
use std::ops::Range;
use std::sync::Arc;
use veche_protocol::recording::{
    recording_prefix, segment_key, FileId, RecordedSource, RecordingId,
};

/// What to answer a request for a file of `total` bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RangeAnswer {
    /// 200 with the whole file: no `Range`, one this server ignores (not
    /// `bytes=`, malformed), or several ranges (RFC 9110 lets a server
    /// answer a multi-range request with the whole representation, and a
    /// `multipart/byteranges` body helps no browser).
    Whole,
    /// 206 with these bytes (`start..end`, end exclusive, never empty).
    Partial(Range<u64>),
    /// 416: the range starts at or past the end.
    Unsatisfiable,
}

/// Decides a `Range` header against a file of `total` bytes (RFC 9110
/// §14.1.2): `bytes=a-b`, `bytes=a-`, `bytes=-n`. An invalid header is
/// ignored, as the RFC says, rather than refused.
pub fn parse_range(header: Option<&str>, total: u64) -> RangeAnswer {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeAnswer::Whole;
    };
    if spec.contains(',') {
        return RangeAnswer::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeAnswer::Whole;
    };
    let number = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    match (first.trim(), last.trim()) {
        ("", suffix) => match number(suffix) {
            None => RangeAnswer::Whole,
            Some(0) => RangeAnswer::Unsatisfiable,
            Some(_) if total == 0 => RangeAnswer::Unsatisfiable,
            Some(n) => RangeAnswer::Partial(total.saturating_sub(n)..total),
        },
        (a, "") => match number(a) {
            None => RangeAnswer::Whole,
            Some(a) if a >= total => RangeAnswer::Unsatisfiable,
            Some(a) => RangeAnswer::Partial(a..total),
        },
        (a, b) => match (number(a), number(b)) {
            (Some(a), Some(b)) if a <= b => {
                if a >= total {
                    RangeAnswer::Unsatisfiable
                } else {
                    RangeAnswer::Partial(a..b.saturating_add(1).min(total))
                }
            }
            // `last < first` or not numbers: an invalid range, ignored.
            _ => RangeAnswer::Whole,
        },
    }
}

/// One piece of a file's byte range: bytes `range` of segment `seq`'s
/// object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Piece {
    /// The segment.
    pub seq: u32,
    /// Bytes of its object (end exclusive, never empty).
    pub range: Range<u64>,
}

/// The object ranges that make up bytes `wanted` of a file whose segments
/// are `segments` (`(seq, bytes)` in file order). Bytes past the last
/// segment are not there and are left out.
pub fn map_range(segments: &[(u32, u64)], wanted: Range<u64>) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut at = 0u64;
    for &(seq, size) in segments {
        let seg = at..at + size;
        at += size;
        let start = wanted.start.max(seg.start);
        let end = wanted.end.min(seg.end);
        if start < end {
            pieces.push(Piece {
                seq,
                range: start - seg.start..end - seg.start,
            });
        }
        if at >= wanted.end {
            break;
        }
    }
    pieces
}

/// The file's size: its segments together.
pub fn total_bytes(segments: &[(u32, u64)]) -> u64 {
    segments.iter().map(|(_, b)| b).sum()
}

/// An object store's error as an I/O error for a response body.
fn io_error(e: object_store::Error) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// The bytes of `pieces`, object after object, as they arrive from the
/// store (never the whole file in memory). A missing or short object ends
/// the stream with an error, which ends the response early: the client
/// sees a truncated body rather than wrong bytes.
pub fn stream_file(
    store: Arc<dyn ObjectStore>,
    recording: RecordingId,
    file: FileId,
    pieces: Vec<Piece>,
) -> BoxStream<'static, Result<Bytes, std::io::Error>> {
    stream::iter(pieces)
        .then(move |piece| {
            let store = store.clone();
            let key = ObjectPath::from(segment_key(&recording, &file, piece.seq));
            async move {
                let options =
                    GetOptions::new().with_range(Some(GetRange::Bounded(piece.range.clone())));
                let got = store.get_opts(&key, options).await.map_err(io_error)?;
                if got.range != piece.range {
                    return Err(std::io::Error::other(format!(
                        "object {key} is shorter than the index says ({:?} of {:?})",
                        got.range, piece.range
                    )));
                }
                Ok::<_, std::io::Error>(got.into_stream().map_err(io_error))
            }
        })
        .try_flatten()
        .boxed()
}

/// A file name that is safe in a header and on every disk: ASCII letters,
/// digits, `-` and `_`; anything else becomes `_`.
pub fn safe_name(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .take(60)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.trim_matches('_').is_empty() {
        "recording".into()
    } else {
        cleaned
    }
}

/// `<room>-<name>-camera.webm`.
pub fn download_name(room: &str, person: &str, source: RecordedSource) -> String {
    let source = match source {
        RecordedSource::Camera => "camera",
        RecordedSource::Screen => "screen",
    };
    format!("{}-{}-{source}.webm", safe_name(room), safe_name(person))
}

/// The answer to a (possibly ranged) GET of `total` bytes whose body for
/// range `r` is `body(r)`.
pub fn ranged(
    headers: &HeaderMap,
    total: u64,
    disposition: Option<String>,
    body: impl FnOnce(Range<u64>) -> Body,
) -> Response {
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, bytes) = match parse_range(range, total) {
        RangeAnswer::Whole => (StatusCode::OK, 0..total),
        RangeAnswer::Partial(r) => (StatusCode::PARTIAL_CONTENT, r),
        RangeAnswer::Unsatisfiable => {
            let mut resp = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{total}")) {
                resp.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return resp;
        }
    };
    let len = bytes.end - bytes.start;
    let content_range = format!(
        "bytes {}-{}/{total}",
        bytes.start,
        bytes.end.saturating_sub(1)
    );
    let mut resp = Response::new(if len == 0 { Body::empty() } else { body(bytes) });
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("video/webm"));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    // A file still being written grows: never cached by the browser as is.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    if status == StatusCode::PARTIAL_CONTENT {
        if let Ok(v) = HeaderValue::from_str(&content_range) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    if let Some(name) = disposition {
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
    }
    resp
}

/// Deletes every object under the recording's prefix (segments and the
/// export). Listing and deleting again finds nothing, so a retry after a
/// failure is safe.
pub async fn delete_objects(store: &dyn ObjectStore, id: &RecordingId) -> Result<(), String> {
    let prefix = ObjectPath::from(recording_prefix(id));
    let keys: Vec<ObjectPath> = store
        .list(Some(&prefix))
        .map_ok(|meta| meta.location)
        .try_collect()
        .await
        .map_err(|e| format!("listing the objects of recording {id}: {e}"))?;
    for key in &keys {
        match store.delete(key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(format!("deleting {key}: {e}")),
        }
    }
    tracing::info!(recording = %id, objects = keys.len(), "recording objects deleted");
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use object_store::local::LocalFileSystem;
    use object_store::PutPayload;

    #[test]
    fn recording_ranges_of_every_form_are_understood() {
        let p = |h: &str| parse_range(Some(h), 1000);
        assert_eq!(parse_range(None, 1000), RangeAnswer::Whole);
        assert_eq!(p("bytes=0-99"), RangeAnswer::Partial(0..100));
        assert_eq!(p("bytes=990-2000"), RangeAnswer::Partial(990..1000));
        assert_eq!(p("bytes=500-"), RangeAnswer::Partial(500..1000));
        assert_eq!(p("bytes=-100"), RangeAnswer::Partial(900..1000));
        assert_eq!(p("bytes=-5000"), RangeAnswer::Partial(0..1000));
        assert_eq!(p("bytes=999-999"), RangeAnswer::Partial(999..1000));
    }

    #[test]
    fn recording_ranges_past_the_end_are_unsatisfiable() {
        let p = |h: &str| parse_range(Some(h), 1000);
        assert_eq!(p("bytes=1000-"), RangeAnswer::Unsatisfiable);
        assert_eq!(p("bytes=1000-1001"), RangeAnswer::Unsatisfiable);
        assert_eq!(p("bytes=-0"), RangeAnswer::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-"), 0), RangeAnswer::Unsatisfiable);
    }

    #[test]
    fn recording_ranges_that_are_malformed_or_multiple_get_the_whole_file() {
        for h in [
            "bytes=0-1,5-6",
            "items=0-1",
            "bytes=5-1",
            "bytes=abc",
            "bytes=-",
            "bytes=1-x",
            "bytes=+1-2",
            "bytes=99999999999999999999999-",
            "",
        ] {
            assert_eq!(parse_range(Some(h), 1000), RangeAnswer::Whole, "{h:?}");
        }
    }

    #[test]
    fn recording_range_maps_onto_the_segments_it_spans() {
        let segs = [(0, 100), (1, 50), (2, 0), (3, 200)];
        assert_eq!(total_bytes(&segs), 350);
        assert_eq!(
            map_range(&segs, 0..350),
            vec![
                Piece {
                    seq: 0,
                    range: 0..100
                },
                Piece {
                    seq: 1,
                    range: 0..50
                },
                Piece {
                    seq: 3,
                    range: 0..200
                },
            ]
        );
        assert_eq!(
            map_range(&segs, 90..160),
            vec![
                Piece {
                    seq: 0,
                    range: 90..100
                },
                Piece {
                    seq: 1,
                    range: 0..50
                },
                Piece {
                    seq: 3,
                    range: 0..10
                },
            ]
        );
        assert_eq!(
            map_range(&segs, 120..130),
            vec![Piece {
                seq: 1,
                range: 20..30
            }]
        );
        assert_eq!(map_range(&segs, 400..500), vec![]);
    }

    fn answer(range: Option<&str>, total: u64, name: Option<&str>) -> Response {
        let mut h = HeaderMap::new();
        if let Some(r) = range {
            h.insert(header::RANGE, HeaderValue::from_str(r).unwrap());
        }
        ranged(&h, total, name.map(str::to_owned), |r| {
            Body::from(format!("{}..{}", r.start, r.end))
        })
    }

    fn header_of(resp: &Response, name: header::HeaderName) -> Option<String> {
        resp.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    }

    #[test]
    fn recording_file_responses_carry_the_range_headers_browsers_seek_with() {
        let whole = answer(None, 1000, None);
        assert_eq!(whole.status(), StatusCode::OK);
        assert_eq!(
            header_of(&whole, header::CONTENT_LENGTH).as_deref(),
            Some("1000")
        );
        assert_eq!(
            header_of(&whole, header::ACCEPT_RANGES).as_deref(),
            Some("bytes")
        );
        assert_eq!(
            header_of(&whole, header::CONTENT_TYPE).as_deref(),
            Some("video/webm")
        );
        assert_eq!(header_of(&whole, header::CONTENT_RANGE), None);
        assert_eq!(header_of(&whole, header::CONTENT_DISPOSITION), None);

        let part = answer(Some("bytes=100-199"), 1000, None);
        assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(
            header_of(&part, header::CONTENT_LENGTH).as_deref(),
            Some("100")
        );
        assert_eq!(
            header_of(&part, header::CONTENT_RANGE).as_deref(),
            Some("bytes 100-199/1000")
        );

        let tail = answer(Some("bytes=-10"), 1000, None);
        assert_eq!(
            header_of(&tail, header::CONTENT_RANGE).as_deref(),
            Some("bytes 990-999/1000")
        );

        let multi = answer(Some("bytes=0-1,5-9"), 1000, None);
        assert_eq!(multi.status(), StatusCode::OK);

        let past = answer(Some("bytes=1000-"), 1000, None);
        assert_eq!(past.status(), StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(
            header_of(&past, header::CONTENT_RANGE).as_deref(),
            Some("bytes */1000")
        );

        let empty = answer(None, 0, None);
        assert_eq!(empty.status(), StatusCode::OK);
        assert_eq!(
            header_of(&empty, header::CONTENT_LENGTH).as_deref(),
            Some("0")
        );
    }

    #[test]
    fn recording_downloads_get_a_readable_name_that_is_safe_in_a_header() {
        assert_eq!(
            download_name("Weekly sync", "Ann", RecordedSource::Camera),
            "Weekly_sync-Ann-camera.webm"
        );
        assert_eq!(
            download_name("x", "\"evil\"\r\nSet-Cookie: a=b", RecordedSource::Screen),
            "x-_evil___Set-Cookie__a_b-screen.webm"
        );
        assert_eq!(safe_name("Сергей"), "recording");
        let resp = answer(None, 5, Some("a-b-camera.webm"));
        assert_eq!(
            header_of(&resp, header::CONTENT_DISPOSITION).as_deref(),
            Some("attachment; filename=\"a-b-camera.webm\"")
        );
    }

    /// Segments of 0..=255 repeated, cut at odd sizes, in a real local
    /// store: any range read through the mapping equals that slice of the
    /// concatenation.
    pub(crate) async fn put_segments(
        store: &dyn ObjectStore,
        rec: &RecordingId,
        file: &FileId,
        sizes: &[u64],
    ) -> (Vec<(u32, u64)>, Vec<u8>) {
        let mut whole = Vec::new();
        let mut segs = Vec::new();
        for (seq, size) in sizes.iter().enumerate() {
            let bytes: Vec<u8> = (0..*size)
                .map(|i| ((whole.len() as u64 + i) % 251) as u8)
                .collect();
            whole.extend_from_slice(&bytes);
            store
                .put(
                    &ObjectPath::from(segment_key(rec, file, seq as u32)),
                    PutPayload::from(bytes),
                )
                .await
                .unwrap();
            segs.push((seq as u32, *size));
        }
        (segs, whole)
    }

    pub(crate) async fn read_range(
        store: Arc<dyn ObjectStore>,
        rec: &RecordingId,
        file: &FileId,
        segs: &[(u32, u64)],
        range: Range<u64>,
    ) -> Vec<u8> {
        let chunks: Vec<Bytes> =
            stream_file(store, rec.clone(), file.clone(), map_range(segs, range))
                .try_collect()
                .await
                .unwrap();
        chunks.concat()
    }

    #[tokio::test]
    async fn recording_file_ranges_stream_the_right_bytes_from_a_local_store() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ObjectStore> =
            Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap());
        let rec = RecordingId::from_random([1; 8]);
        let file = FileId::from_random([2; 8]);
        let (segs, whole) = put_segments(store.as_ref(), &rec, &file, &[700, 13, 1000, 5]).await;
        for range in [0..1718, 0..1, 690..720, 713..714, 1717..1718, 100..1500] {
            let got = read_range(store.clone(), &rec, &file, &segs, range.clone()).await;
            assert_eq!(
                got,
                whole[range.start as usize..range.end as usize],
                "{range:?}"
            );
        }
    }

    #[tokio::test]
    async fn recording_file_with_a_missing_segment_fails_instead_of_sending_wrong_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ObjectStore> =
            Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap());
        let rec = RecordingId::from_random([1; 8]);
        let file = FileId::from_random([2; 8]);
        let (mut segs, _) = put_segments(store.as_ref(), &rec, &file, &[10, 10]).await;
        segs.push((2, 10));
        let got: Result<Vec<Bytes>, _> = stream_file(store, rec, file, map_range(&segs, 0..30))
            .try_collect()
            .await;
        assert!(got.is_err(), "a missing object streamed: {got:?}");
    }

    #[tokio::test]
    async fn recording_deletion_removes_every_object_of_that_recording_only() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ObjectStore> =
            Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap());
        let gone = RecordingId::from_random([1; 8]);
        let kept = RecordingId::from_random([3; 8]);
        let file = FileId::from_random([2; 8]);
        put_segments(store.as_ref(), &gone, &file, &[10, 10]).await;
        put_segments(store.as_ref(), &kept, &file, &[10]).await;
        delete_objects(store.as_ref(), &gone).await.unwrap();
        let left: Vec<_> = store
            .list(None)
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .unwrap();
        assert_eq!(left, vec![segment_key(&kept, &file, 0)]);
        // Again: nothing left to delete is not an error.
        delete_objects(store.as_ref(), &gone).await.unwrap();
    }
}
