//! Room covers on the wire: what the REST API shows of a room's cover, the
//! body that sets its text, the image types accepted, and the words of
//! every refusal. The web client (`web/public/lib/covers.js`) checks a
//! file before uploading with the same rules and the same sentences, so a
//! person sees one message whichever side refused.

use crate::limits::covers::{MAX_BYTES, MAX_SIDE, MIN_SIDE};
use serde::{Deserialize, Serialize};

/// A room's cover as the REST API shows it (inside
/// [`crate::rpc::RoomView`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoverView {
    /// The title; empty when only an image was set.
    #[serde(default)]
    pub title: String,
    /// The description; may be empty.
    #[serde(default)]
    pub description: String,
    /// Where the image is served (`/api/rooms/{slug}/cover/image?v=..`),
    /// if there is one. The `v` names this upload, so the URL changes with
    /// the image and a cache may keep each URL forever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    /// The image's size in pixels, if there is one, so a page can reserve
    /// its space before it loads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_width: Option<u32>,
    /// The image's height in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_height: Option<u32>,
}

/// `PUT /api/rooms/{slug}/cover` body: the cover's text. The image is set
/// apart (`PUT /api/rooms/{slug}/cover/image`), as a raw body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetCoverRequest {
    /// Up to [`crate::limits::covers::MAX_TITLE_CHARS`] chars; may be empty.
    pub title: String,
    /// Up to [`crate::limits::covers::MAX_DESCRIPTION_CHARS`] chars; may
    /// be empty.
    #[serde(default)]
    pub description: String,
}

/// An image type a cover may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CoverKind {
    /// PNG.
    Png,
    /// JPEG.
    Jpeg,
    /// WebP.
    Webp,
}

impl CoverKind {
    /// Every accepted kind.
    pub const ALL: [CoverKind; 3] = [CoverKind::Png, CoverKind::Jpeg, CoverKind::Webp];

    /// The `Content-Type` an upload declares and the image is served with.
    pub fn content_type(self) -> &'static str {
        match self {
            CoverKind::Png => "image/png",
            CoverKind::Jpeg => "image/jpeg",
            CoverKind::Webp => "image/webp",
        }
    }

    /// Its name in messages.
    pub fn name(self) -> &'static str {
        match self {
            CoverKind::Png => "PNG",
            CoverKind::Jpeg => "JPEG",
            CoverKind::Webp => "WebP",
        }
    }

    /// The kind a declared `Content-Type` names (parameters such as
    /// `; charset=` ignored, `image/jpg` taken as JPEG), if it is one of
    /// ours.
    pub fn from_content_type(t: &str) -> Option<CoverKind> {
        let t = t
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if t == "image/jpg" {
            return Some(CoverKind::Jpeg);
        }
        Self::ALL.into_iter().find(|k| k.content_type() == t)
    }

    /// Whether `bytes` start with this kind's signature.
    pub fn signed_by(self, bytes: &[u8]) -> bool {
        match self {
            CoverKind::Png => bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
            CoverKind::Jpeg => bytes.starts_with(&[0xFF, 0xD8, 0xFF]),
            CoverKind::Webp => {
                bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP"
            }
        }
    }
}

/// Why an upload is not a cover; `Display` is the sentence shown to the
/// person (the same as the web client's pre-check).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotACover {
    /// The declared type is not PNG, JPEG or WebP.
    #[error("The cover must be a PNG, JPEG or WebP image")]
    WrongType,
    /// Over [`MAX_BYTES`]; the size in bytes.
    #[error("The cover image is {} MB; the limit is {} MB", megabytes(*.0), MAX_BYTES / (1024 * 1024))]
    TooLarge(u64),
    /// No bytes.
    #[error("No cover image was sent")]
    Empty,
    /// Declared as a kind, but its bytes do not decode as one: a renamed
    /// file, or garbage or a truncation after a valid signature.
    #[error("The file is not a valid {} image", .0.name())]
    NotValid(CoverKind),
    /// Width or height outside [`MIN_SIDE`]..=[`MAX_SIDE`].
    #[error(
        "The cover image is {0}×{1} pixels; each side must be between {MIN_SIDE} and {MAX_SIDE} pixels"
    )]
    BadDimensions(u32, u32),
}

/// `bytes` in megabytes (MiB) with one decimal, rounded up, so that a file
/// just over the limit never reads as exactly the limit.
pub fn megabytes(bytes: u64) -> String {
    let tenths = (bytes * 10).div_ceil(1024 * 1024);
    format!("{}.{}", tenths / 10, tenths % 10)
}

/// Whether a `width`×`height` image may be a cover.
pub fn dimensions_ok(width: u32, height: u32) -> Result<(), NotACover> {
    let ok = |d: u32| (MIN_SIDE..=MAX_SIDE).contains(&d);
    if ok(width) && ok(height) {
        Ok(())
    } else {
        Err(NotACover::BadDimensions(width, height))
    }
}

/// The checks made before any decoding: the declared type, the size (the
/// declared length when the body is not read yet) and the signature.
pub fn precheck(
    declared: Option<&str>,
    len: u64,
    bytes: Option<&[u8]>,
) -> Result<CoverKind, NotACover> {
    let kind = declared
        .and_then(CoverKind::from_content_type)
        .ok_or(NotACover::WrongType)?;
    if len > MAX_BYTES as u64 {
        return Err(NotACover::TooLarge(len));
    }
    if let Some(bytes) = bytes {
        if bytes.is_empty() {
            return Err(NotACover::Empty);
        }
        if !kind.signed_by(bytes) {
            return Err(NotACover::NotValid(kind));
        }
    }
    Ok(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_say_what_is_wrong_in_the_words_the_page_shows() {
        assert_eq!(
            precheck(Some("text/plain"), 10, None)
                .unwrap_err()
                .to_string(),
            "The cover must be a PNG, JPEG or WebP image"
        );
        assert_eq!(
            precheck(Some("image/png"), 3_250_000, None)
                .unwrap_err()
                .to_string(),
            "The cover image is 3.1 MB; the limit is 2 MB"
        );
        assert_eq!(
            precheck(Some("image/png"), 11, Some(b"hello world"))
                .unwrap_err()
                .to_string(),
            "The file is not a valid PNG image"
        );
        assert_eq!(
            dimensions_ok(10_000, 200).unwrap_err().to_string(),
            "The cover image is 10000×200 pixels; each side must be between 16 and 4096 pixels"
        );
    }

    #[test]
    fn a_file_just_over_the_limit_never_reads_as_the_limit() {
        assert_eq!(megabytes(MAX_BYTES as u64 + 1), "2.1");
        assert_eq!(megabytes(MAX_BYTES as u64), "2.0");
    }

    #[test]
    fn declared_types_are_matched_without_parameters_or_case() {
        assert_eq!(
            CoverKind::from_content_type("image/PNG"),
            Some(CoverKind::Png)
        );
        assert_eq!(
            CoverKind::from_content_type("image/jpg"),
            Some(CoverKind::Jpeg)
        );
        assert_eq!(
            CoverKind::from_content_type("image/webp; q=1"),
            Some(CoverKind::Webp)
        );
        assert_eq!(CoverKind::from_content_type("image/gif"), None);
        assert!(precheck(Some("image/jpeg"), 4, Some(&[0xFF, 0xD8, 0xFF, 0])).is_ok());
        assert_eq!(precheck(None, 4, None), Err(NotACover::WrongType));
    }

    #[test]
    fn a_room_view_without_a_cover_has_no_cover_field() {
        let v = CoverView {
            title: "Board".into(),
            description: String::new(),
            image_url: None,
            image_width: None,
            image_height: None,
        };
        let j = serde_json::to_value(&v).unwrap();
        assert!(j.get("image_url").is_none());
    }
}
