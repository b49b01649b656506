//! Room covers: what counts as a cover image, decoded off the async
//! threads, and where the images are kept.
//!
//! An upload is checked by content: its declared type must be PNG, JPEG or
//! WebP ([`veche_protocol::cover::precheck`], which also bounds the size
//! and wants the type's signature), then its header must give dimensions
//! within [`MIN_SIDE`]..=[`MAX_SIDE`], and then the whole image must
//! decode as that type (the `image` crate, built with those three decoders
//! only). A text file renamed `.png`, or a valid signature followed by
//! garbage or cut short, is refused with a sentence saying so. Decoding is
//! CPU work of up to 64 MiB, so it runs on a blocking thread, at most
//! [`MAX_CONCURRENT_DECODES`] at once per node; more wait their turn.
//!
//! The bytes go to a [`BlobStore`] (`<data_dir>/covers` by default) under
//! a key unique per upload (`rooms/<room id>/<random>`); the cover's text
//! and the image's key are replicated through Raft
//! (`store::covers`).

use crate::blobs::BlobStore;
use prometheus::{IntCounterVec, Opts, Registry};
use std::io::Cursor;
use std::sync::Arc;
use tokio::sync::Semaphore;
use veche_protocol::cover::{dimensions_ok, precheck, CoverKind, NotACover};
#[cfg(doc)]
use veche_protocol::limits::covers::MIN_SIDE;
use veche_protocol::limits::covers::{MAX_CONCURRENT_DECODES, MAX_SIDE};
use veche_protocol::RoomId;

/// An image that passed every check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckedImage {
    /// The type it decoded as.
    pub kind: CoverKind,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

fn format(kind: CoverKind) -> image::ImageFormat {
    match kind {
        CoverKind::Png => image::ImageFormat::Png,
        CoverKind::Jpeg => image::ImageFormat::Jpeg,
        CoverKind::Webp => image::ImageFormat::WebP,
    }
}

/// Checks `bytes` declared as `declared` in full, decoding every pixel:
/// blocking CPU work, see [`Decoder::check`].
pub fn check(declared: Option<&str>, bytes: &[u8]) -> Result<CheckedImage, NotACover> {
    let kind = precheck(declared, bytes.len() as u64, Some(bytes))?;
    let reader = || image::ImageReader::with_format(Cursor::new(bytes), format(kind));
    let (width, height) = reader()
        .into_dimensions()
        .map_err(|_| NotACover::NotValid(kind))?;
    dimensions_ok(width, height)?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    // RGBA at the largest size, with room for a decoder's buffers.
    limits.max_alloc = Some(u64::from(MAX_SIDE) * u64::from(MAX_SIDE) * 4 * 2);
    let mut r = reader();
    r.limits(limits);
    match r.decode() {
        Ok(img) if img.width() == width && img.height() == height => Ok(CheckedImage {
            kind,
            width,
            height,
        }),
        Err(image::ImageError::Limits(_)) => Err(NotACover::BadDimensions(width, height)),
        _ => Err(NotACover::NotValid(kind)),
    }
}

/// Runs [`check`] on blocking threads, a bounded number at once.
pub struct Decoder {
    permits: Arc<Semaphore>,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder {
            permits: Arc::new(Semaphore::new(MAX_CONCURRENT_DECODES)),
        }
    }
}

impl Decoder {
    /// [`check`] off the async threads, waiting for a free decode slot.
    pub async fn check(
        &self,
        declared: Option<String>,
        bytes: bytes::Bytes,
    ) -> Result<CheckedImage, NotACover> {
        let _permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        tokio::task::spawn_blocking(move || check(declared.as_deref(), &bytes))
            .await
            .unwrap_or_else(|e| {
                tracing::error!("a cover decode panicked: {e}");
                Err(NotACover::Empty)
            })
    }
}

/// What the cover routes share: the image store, the decoder and metrics.
pub struct Covers {
    /// The store, or why it could not be opened (then the image routes
    /// answer 503 and the rest works).
    store: Result<BlobStore, String>,
    /// Bounded decoding.
    pub decoder: Decoder,
    uploads: IntCounterVec,
    registry: Registry,
}

impl Covers {
    /// Covers kept in `dir`.
    pub fn new(dir: &std::path::Path) -> Self {
        let store = BlobStore::local(dir).map_err(|e| {
            tracing::error!("room covers are unavailable: {e}");
            e.to_string()
        });
        let registry =
            Registry::new_custom(Some("veche_cp".into()), None).expect("static prefix is valid");
        let uploads = IntCounterVec::new(
            Opts::new(
                "cover_uploads_total",
                "Cover image uploads on this node, by result (ok, wrong_type, too_large, \
                 not_valid, dimensions, empty)",
            ),
            &["result"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(uploads.clone()))
            .expect("unique metric");
        Covers {
            store,
            decoder: Decoder::default(),
            uploads,
            registry,
        }
    }

    /// The metrics of the cover routes, to serve at `/metrics`.
    pub fn metrics_registry(&self) -> Registry {
        self.registry.clone()
    }

    /// The store, or why there is none.
    pub fn store(&self) -> Result<&BlobStore, &str> {
        self.store.as_ref().map_err(|e| e.as_str())
    }

    /// Counts an upload's outcome.
    pub fn count(&self, outcome: &Result<CheckedImage, NotACover>) {
        let label = match outcome {
            Ok(_) => "ok",
            Err(NotACover::WrongType) => "wrong_type",
            Err(NotACover::TooLarge(_)) => "too_large",
            Err(NotACover::NotValid(_)) => "not_valid",
            Err(NotACover::BadDimensions(..)) => "dimensions",
            Err(NotACover::Empty) => "empty",
        };
        self.uploads.with_label_values(&[label]).inc();
    }

    /// A fresh key for a new image of `room`.
    pub fn new_key(room: RoomId) -> String {
        BlobStore::random_key(&format!("rooms/{}", room.0))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A real `w`×`h` image of `kind`, encoded by the `image` crate.
    pub(crate) fn encoded(kind: CoverKind, w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 90]));
        let mut out = Cursor::new(Vec::new());
        image::DynamicImage::ImageRgb8(img)
            .write_to(&mut out, format(kind))
            .expect("encode");
        out.into_inner()
    }

    #[test]
    fn real_png_jpeg_and_webp_images_are_accepted() {
        for kind in CoverKind::ALL {
            let bytes = encoded(kind, 64, 36);
            assert_eq!(
                check(Some(kind.content_type()), &bytes),
                Ok(CheckedImage {
                    kind,
                    width: 64,
                    height: 36
                }),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn a_renamed_text_file_a_truncated_image_and_garbage_are_refused() {
        let msg =
            |declared: &str, bytes: &[u8]| check(Some(declared), bytes).unwrap_err().to_string();
        assert_eq!(
            msg("image/png", b"just some text, renamed cover.png"),
            "The file is not a valid PNG image"
        );
        let png = encoded(CoverKind::Png, 64, 64);
        assert_eq!(
            msg("image/png", &png[..png.len() / 2]),
            "The file is not a valid PNG image"
        );
        let mut garbage = png[..40].to_vec();
        garbage.extend(std::iter::repeat_n(0x55u8, 400));
        assert_eq!(
            msg("image/png", &garbage),
            "The file is not a valid PNG image"
        );
        assert_eq!(
            msg("image/jpeg", &[0xFF, 0xD8, 0xFF, 0x00, 1, 2, 3]),
            "The file is not a valid JPEG image"
        );
        assert_eq!(
            msg("image/gif", b"GIF89a"),
            "The cover must be a PNG, JPEG or WebP image"
        );
        assert_eq!(
            msg("image/png", &encoded(CoverKind::Jpeg, 32, 32)),
            "The file is not a valid PNG image",
            "a JPEG declared as PNG"
        );
    }

    #[test]
    fn an_image_too_small_or_declaring_huge_dimensions_is_refused() {
        let tiny = encoded(CoverKind::Png, 8, 8);
        assert_eq!(
            check(Some("image/png"), &tiny),
            Err(NotACover::BadDimensions(8, 8))
        );
        // Refused from the header, before any pixel is decoded.
        let wide = encoded(CoverKind::Webp, MAX_SIDE + 1, 16);
        assert_eq!(
            check(Some("image/webp"), &wide),
            Err(NotACover::BadDimensions(MAX_SIDE + 1, 16))
        );
        let mut lying = encoded(CoverKind::Png, 32, 32);
        // A width in the IHDR chunk its checksum does not cover: damaged.
        lying[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        assert_eq!(
            check(Some("image/png"), &lying),
            Err(NotACover::NotValid(CoverKind::Png))
        );
    }

    #[tokio::test]
    async fn decodes_run_off_the_async_threads_with_the_same_answer() {
        let d = Decoder::default();
        let bytes = bytes::Bytes::from(encoded(CoverKind::Webp, 20, 20));
        let got = d.check(Some("image/webp".into()), bytes).await.unwrap();
        assert_eq!((got.width, got.height), (20, 20));
    }
}
