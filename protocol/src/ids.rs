//! Typed identifiers. Each one is a newtype so that a room id can never be
//! passed where a participant id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Internal, stable id of a room, assigned by the control plane's state
/// machine when the room is committed. It is not a secret: the slug is what
/// grants access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RoomId(pub u64);

/// The unguessable, URL-safe part of a room link: 16 random bytes (128 bits)
/// in unpadded base64url, so always 22 characters from `[A-Za-z0-9_-]`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RoomSlug(String);

/// Length in characters of a [`RoomSlug`].
pub const SLUG_LEN: usize = 22;

impl RoomSlug {
    /// Builds a slug from 16 bytes of randomness. The caller supplies the
    /// bytes so this crate stays free of I/O and RNG state.
    pub fn from_random(bytes: [u8; 16]) -> Self {
        use base64::Engine;
        RoomSlug(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Parses a slug from untrusted input (a URL path segment).
    pub fn parse(s: &str) -> Result<Self, InvalidId> {
        if s.len() == SLUG_LEN
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            Ok(RoomSlug(s.to_owned()))
        } else {
            Err(InvalidId {
                what: "room slug",
                expected: "22 characters of A-Z, a-z, 0-9, '-' or '_'",
            })
        }
    }

    /// The slug as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RoomSlug {
    type Error = InvalidId;
    fn try_from(s: String) -> Result<Self, InvalidId> {
        RoomSlug::parse(&s)
    }
}

impl From<RoomSlug> for String {
    fn from(s: RoomSlug) -> String {
        s.0
    }
}

impl fmt::Display for RoomSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A malformed identifier in untrusted input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what}: expected {expected}")]
pub struct InvalidId {
    /// Which kind of id was malformed.
    pub what: &'static str,
    /// What a valid one looks like, for the error message.
    pub expected: &'static str,
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// Builds an id from 8 random bytes, with a short type prefix so
            /// that ids are recognisable in logs.
            pub fn from_random(bytes: [u8; 8]) -> Self {
                let mut s = String::with_capacity(2 + 16);
                s.push_str($prefix);
                for b in bytes {
                    s.push_str(&format!("{b:02x}"));
                }
                $name(s)
            }
            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// A participant's id for one presence in one room. A reconnect that
    /// resumes the session keeps it; a fresh join gets a new one.
    ParticipantId,
    "p"
);
string_id!(
    /// A published media track. It is also the `msid` track id the node
    /// uses towards subscribers (see [`crate::signal::TrackInfo::id`]).
    TrackId,
    "t"
);

/// A media node's id, unique in the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(pub u64);

/// A chat message's id, assigned when it is committed. Ids are unique
/// across the cluster and increase with commit order, so "messages before
/// id X" is a stable page boundary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MessageId(pub u64);

/// A user account's id, assigned by the control plane's state machine.
/// Not a secret: it appears in admin pages and statistics; a session
/// cookie, not an id, is what proves who someone is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub u64);

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug_from_random_is_22_url_safe_chars_and_parses_back() {
        let s = RoomSlug::from_random([0xff; 16]);
        assert_eq!(s.as_str().len(), SLUG_LEN);
        assert_eq!(RoomSlug::parse(s.as_str()).unwrap(), s);
    }

    #[test]
    fn slug_parse_rejects_wrong_length_and_characters() {
        assert!(RoomSlug::parse("short").is_err());
        assert!(RoomSlug::parse("aaaaaaaaaaaaaaaaaaaa/a").is_err());
        assert!(RoomSlug::parse("aaaaaaaaaaaaaaaaaaaaaaa").is_err());
    }

    #[test]
    fn slug_deserialization_validates() {
        let bad: Result<RoomSlug, _> = serde_json::from_str("\"../etc/passwd\"");
        assert!(bad.is_err());
    }
}
