//! Who owns a room: its signed-in creator, or whoever presents its owner
//! key. An anonymous creator gets the key once, in the create response: 32
//! random bytes whose SHA-256 the room keeps. Presented as
//! [`OWNER_KEY_HEADER`], it acts as the owner, as a host link would: the
//! browser that created the room keeps it, and may hand it on. I/O-free.

use super::auth::Viewer;
use crate::secret::secrets_match;
use crate::store::model::Room;
use axum::http::HeaderMap;
use veche_protocol::pass::OWNER_KEY_HEADER;
use veche_protocol::UserId;

/// SHA-256 of an owner key's text: what a room keeps of it.
pub(super) fn owner_key_hash(key: &str) -> [u8; 32] {
    super::auth::token_hash(key.as_bytes())
}

/// Whether the requester owns `room`: signed in as its owner, or presenting
/// its owner key (compared in constant time, as every secret is).
pub(super) fn owns(room: &Room, user: Option<UserId>, headers: &HeaderMap) -> bool {
    if room.owner.is_some() && room.owner == user {
        return true;
    }
    let presented = headers
        .get(OWNER_KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|k| !k.is_empty());
    match (room.owner_key_hash, presented) {
        (Some(stored), Some(key)) => secrets_match(&owner_key_hash(key), &stored),
        _ => false,
    }
}

/// The signed-in user's id, if any.
pub(super) fn user_id(viewer: &Viewer) -> Option<UserId> {
    viewer.0.as_ref().map(|s| s.user.id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::model::NewRoom;
    use veche_protocol::RoomSlug;

    fn room(owner: Option<UserId>, key: Option<&str>) -> Room {
        NewRoom {
            owner,
            owner_key_hash: key.map(owner_key_hash),
            ..NewRoom::open(RoomSlug::from_random([1; 16]), "r".into(), 1)
        }
        .into_room(veche_protocol::RoomId(1))
    }

    fn with_key(key: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(OWNER_KEY_HEADER, key.parse().unwrap());
        h
    }

    #[test]
    fn the_owner_is_the_signed_in_creator_or_whoever_holds_the_owner_key() {
        let signed = room(Some(UserId(4)), None);
        assert!(owns(&signed, Some(UserId(4)), &HeaderMap::new()));
        assert!(!owns(&signed, Some(UserId(5)), &HeaderMap::new()));
        assert!(!owns(&signed, None, &HeaderMap::new()));
        assert!(!owns(&signed, None, &with_key("anything")));
        let keyed = room(None, Some("the-key"));
        assert!(owns(&keyed, None, &with_key("the-key")));
        assert!(!owns(&keyed, None, &with_key("the-kez")));
        assert!(!owns(&keyed, None, &with_key("")));
        assert!(!owns(&keyed, None, &HeaderMap::new()));
        assert!(
            !owns(&room(None, None), None, &HeaderMap::new()),
            "a room from before owners has none"
        );
    }
}
