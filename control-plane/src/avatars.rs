//! Profile pictures: what counts as one, and where they are kept.
//!
//! An upload is accepted by its content, never its name or declared type:
//! the first bytes must be the signature of PNG, JPEG or WebP, and the
//! image header behind them must parse (with `imagesize`, which reads only
//! the header: no pixel is decoded on the server) to sensible dimensions.
//! A text file named `.png`, or a JPEG signature followed by garbage, is
//! refused. The image is served back with the type detected here and
//! `nosniff`, so a browser never reinterprets it as something else.
//!
//! The bytes go to an object store ([`crate::blobs`]; a local directory by default:
//! `<data_dir>/avatars`), under a key unique per upload
//! (`users/<id>/<random>`), so a cached old picture is never served for a
//! new one and caches may keep each forever. Only the key is replicated
//! through Raft (in the user's record). In a cluster of several
//! control-plane nodes the store must be shared by all of them (a shared
//! mount: S3 is so far offered for recordings only, `[recordings.store]`).

use veche_protocol::limits::accounts::{MAX_AVATAR_BYTES, MAX_AVATAR_PIXELS};
use veche_protocol::UserId;

/// An image type Veche accepts as an avatar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AvatarKind {
    /// PNG.
    Png,
    /// JPEG.
    Jpeg,
    /// WebP.
    Webp,
}

impl AvatarKind {
    /// The `Content-Type` it is served with.
    pub fn content_type(self) -> &'static str {
        match self {
            AvatarKind::Png => "image/png",
            AvatarKind::Jpeg => "image/jpeg",
            AvatarKind::Webp => "image/webp",
        }
    }

    /// The kind for a stored content type, if it is one of ours.
    pub fn from_content_type(t: &str) -> Option<AvatarKind> {
        [AvatarKind::Png, AvatarKind::Jpeg, AvatarKind::Webp]
            .into_iter()
            .find(|k| k.content_type() == t)
    }
}

/// Why an upload is not an avatar; the message is shown to the person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotAnAvatar {
    /// Over [`MAX_AVATAR_BYTES`].
    #[error("the image is larger than {} MB", MAX_AVATAR_BYTES / (1024 * 1024))]
    TooLarge,
    /// Empty body.
    #[error("no image was sent")]
    Empty,
    /// Not PNG, JPEG or WebP by its first bytes.
    #[error("the file is not a PNG, JPEG or WebP image")]
    WrongType,
    /// The signature is right but the header does not parse.
    #[error("the file looks like a {0} image but is damaged or incomplete")]
    Damaged(&'static str),
    /// Wider or taller than [`MAX_AVATAR_PIXELS`], or zero.
    #[error("the image must be between 1 and {MAX_AVATAR_PIXELS} pixels wide and high")]
    BadDimensions,
}

/// The kind of image `bytes` holds, checked by content: signature first,
/// then the header must parse to dimensions within limits.
pub fn detect(bytes: &[u8]) -> Result<AvatarKind, NotAnAvatar> {
    if bytes.is_empty() {
        return Err(NotAnAvatar::Empty);
    }
    if bytes.len() > MAX_AVATAR_BYTES {
        return Err(NotAnAvatar::TooLarge);
    }
    let kind = if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        AvatarKind::Png
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        AvatarKind::Jpeg
    } else if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        AvatarKind::Webp
    } else {
        return Err(NotAnAvatar::WrongType);
    };
    let name = match kind {
        AvatarKind::Png => "PNG",
        AvatarKind::Jpeg => "JPEG",
        AvatarKind::Webp => "WebP",
    };
    let parsed = matches!(
        (imagesize::image_type(bytes), kind),
        (Ok(imagesize::ImageType::Png), AvatarKind::Png)
            | (Ok(imagesize::ImageType::Jpeg), AvatarKind::Jpeg)
            | (Ok(imagesize::ImageType::Webp), AvatarKind::Webp)
    );
    if !parsed {
        return Err(NotAnAvatar::Damaged(name));
    }
    let size = imagesize::blob_size(bytes).map_err(|_| NotAnAvatar::Damaged(name))?;
    let ok = |d: usize| (1..=MAX_AVATAR_PIXELS).contains(&d);
    if !ok(size.width) || !ok(size.height) {
        return Err(NotAnAvatar::BadDimensions);
    }
    Ok(kind)
}

/// Where avatars are kept: the shared object-store helper.
pub type AvatarStore = crate::blobs::BlobStore;
pub use crate::blobs::StoreFailed;

/// A fresh key for a new upload of `user`'s avatar: random, so each upload
/// has its own URL.
pub fn new_key(user: UserId) -> String {
    crate::blobs::BlobStore::random_key(&format!("users/{user}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    /// A real 1×1 PNG.
    pub(crate) const PNG_1X1: &[u8] = &[
        0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44,
        0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F,
        0x15, 0xC4, 0x89, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00,
        0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49,
        0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
    ];

    #[test]
    fn a_real_png_is_accepted_by_its_content() {
        assert_eq!(detect(PNG_1X1), Ok(AvatarKind::Png));
    }

    #[test]
    fn text_and_truncated_or_garbage_images_are_refused() {
        assert_eq!(detect(b"hello, I am a .png"), Err(NotAnAvatar::WrongType));
        assert_eq!(detect(b""), Err(NotAnAvatar::Empty));
        assert_eq!(
            detect(&[0xFF, 0xD8, 0xFF, 0x00, 0x01, 0x02, 0x03]),
            Err(NotAnAvatar::Damaged("JPEG"))
        );
        assert_eq!(detect(&PNG_1X1[..12]), Err(NotAnAvatar::Damaged("PNG")));
        assert_eq!(
            detect(b"RIFF\x00\x00\x00\x00WEBPjunk"),
            Err(NotAnAvatar::Damaged("WebP"))
        );
    }

    #[test]
    fn an_image_declaring_huge_dimensions_is_refused() {
        let mut png = PNG_1X1.to_vec();
        // Width in the IHDR chunk: 100 000 pixels.
        png[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        assert_eq!(detect(&png), Err(NotAnAvatar::BadDimensions));
    }

    #[test]
    fn an_oversized_body_is_refused_before_parsing() {
        let mut big = PNG_1X1.to_vec();
        big.resize(MAX_AVATAR_BYTES + 1, 0);
        assert_eq!(detect(&big), Err(NotAnAvatar::TooLarge));
    }

    #[tokio::test]
    async fn a_local_store_keeps_and_forgets_avatars() {
        let dir = tempfile::tempdir().unwrap();
        let store = AvatarStore::local(&dir.path().join("avatars")).unwrap();
        let key = new_key(UserId(7));
        assert_ne!(key, new_key(UserId(7)));
        assert_eq!(store.get(&key).await.unwrap(), None);
        store.put(&key, Bytes::from_static(PNG_1X1)).await.unwrap();
        assert_eq!(store.get(&key).await.unwrap().as_deref(), Some(PNG_1X1));
        store.delete(&key).await.unwrap();
        store.delete(&key).await.unwrap();
        assert_eq!(store.get(&key).await.unwrap(), None);
    }
}
