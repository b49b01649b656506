//! Shared secrets at the HTTP edge: the bearer header, and the comparison
//! and strength rules every part shares (`veche_protocol::secret`).

use axum::http::{header, HeaderMap};
pub use veche_protocol::secret::{check_secret, secrets_match, MIN_SECRET_BYTES};

/// The bearer token of an `Authorization: Bearer <token>` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// SHA-256 of a bearer credential the browser holds (a session cookie's
/// token, a guest pass's, an owner key): what the store keeps instead of
/// the credential, so a copy of the database signs no one in.
pub(crate) fn token_hash(token: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, token);
    d.as_ref().try_into().expect("SHA-256 is 32 bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_token_is_read_from_the_authorization_header() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer(&h), None);
    }
}
