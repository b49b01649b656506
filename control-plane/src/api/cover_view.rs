//! How a room's stored cover is shown in the REST API ([`CoverView`]):
//! apart from `covers.rs` (the routes) so that `rooms.rs`, which builds
//! every `RoomView`, and the cover routes, which answer one, both use it
//! without importing each other.

use crate::error::ApiError;
use crate::store::covers::{Cover, CoverImage};
use crate::store::model::Room;
use crate::store::CoverStore;
use crate::ControlPlane;
use std::sync::Arc;
use veche_protocol::cover::CoverView;

/// How a stored cover is shown for the room with `slug`.
pub(super) fn cover_view(slug: &str, c: &Cover) -> CoverView {
    let image = c.image.as_ref();
    CoverView {
        title: c.title.clone(),
        description: c.description.clone(),
        image_url: image.map(|i| format!("/api/rooms/{slug}/cover/image?v={}", version_of(i))),
        image_width: image.map(|i| i.width),
        image_height: image.map(|i| i.height),
    }
}

/// The `v` of an image's URL: the random part of its key, so the URL
/// changes with every upload and names nothing guessable.
pub(super) fn version_of(i: &CoverImage) -> &str {
    i.key.rsplit('/').next().unwrap_or(&i.key)
}

/// The cover of `room` as a view, if it has one.
pub(super) async fn view_of(
    cp: &Arc<ControlPlane>,
    room: &Room,
) -> Result<Option<CoverView>, ApiError> {
    Ok(cp
        .replicated()
        .cover(room.id)
        .await?
        .map(|c| cover_view(room.slug.as_str(), &c)))
}
