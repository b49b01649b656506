//! Comparing and checking shared secrets. Every comparison of a secret in
//! Veche goes through [`secrets_match`], so none can be guessed byte by
//! byte from response timing: the cluster secret, the room creation
//! secret, the rejoin secret's hash on the control plane, and the resume
//! token on a media node.

use ring::hmac;

/// Shortest shared secret accepted, in bytes: 32 bytes is what
/// `openssl rand -hex 32` gives twice over, and what no one brute-forces.
pub const MIN_SECRET_BYTES: usize = 32;

/// True when `presented` equals `expected`, in time that depends on
/// neither their contents nor where they differ, nor on the expected
/// length. Built on ring's HMAC verification, whose tag comparison is
/// constant-time (ring's bare `constant_time::verify_slices_are_equal` is
/// deprecated with no promise about side channels): `expected` is tagged
/// under a key random to this process, and `presented` is verified
/// against that tag.
pub fn secrets_match(presented: &[u8], expected: &[u8]) -> bool {
    static KEY: std::sync::OnceLock<hmac::Key> = std::sync::OnceLock::new();
    let key = KEY.get_or_init(|| {
        hmac::Key::generate(hmac::HMAC_SHA256, &ring::rand::SystemRandom::new())
            .expect("OS RNG available")
    });
    let tag = hmac::sign(key, expected);
    hmac::verify(key, presented, tag.as_ref()).is_ok()
}

/// Refuses a secret too short to resist guessing, naming the setting
/// (`what`) and how to make a good one.
pub fn check_secret(what: &str, secret: &str) -> Result<(), String> {
    if secret.len() < MIN_SECRET_BYTES {
        return Err(format!(
            "{what} is {} bytes long; it must be at least {MIN_SECRET_BYTES} bytes. \
             Make one with `openssl rand -hex 32`",
            secret.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_bytes_match() {
        assert!(secrets_match(b"correct horse", b"correct horse"));
        assert!(!secrets_match(b"correct horse", b"correct hors"));
        assert!(!secrets_match(b"correct horse", b"correct horsf"));
        assert!(!secrets_match(b"", b"x"));
        assert!(secrets_match(b"", b""));
    }

    #[test]
    fn a_secret_under_32_bytes_is_refused_with_how_to_make_one() {
        let e = check_secret("cluster secret", &"a".repeat(31)).unwrap_err();
        assert!(
            e.contains("cluster secret") && e.contains("openssl rand -hex 32"),
            "{e}"
        );
        assert!(check_secret("cluster secret", &"a".repeat(32)).is_ok());
    }
}
