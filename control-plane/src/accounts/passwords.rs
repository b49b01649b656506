//! Passwords: hashing, verification and the strength check.
//!
//! - **Hash**: argon2id (RFC 9106), stored as a PHC string
//!   (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`), so the parameters
//!   travel with each hash and can be raised later without breaking old
//!   ones. The parameters are OWASP's first recommendation for argon2id
//!   (Password Storage Cheat Sheet): 19 MiB of memory, 2 passes, 1 lane.
//!   That costs tens of milliseconds per guess on a server core, and the
//!   memory makes GPU guessing of a leaked hash expensive.
//! - **Where it runs**: hashing is deliberately slow, so it never runs on
//!   an async worker ([`hash`] and [`verify`] go through
//!   `spawn_blocking`) and never inside a Raft apply (the proposer hashes;
//!   the log carries the PHC string). A semaphore bounds how many run at
//!   once ([`MAX_CONCURRENT_HASHES`]), since each takes 19 MiB.
//! - **Strength**: the zxcvbn estimator, with the user's email and name as
//!   words an attacker would try first. A refusal says why, in zxcvbn's
//!   words ("This is a top-10 common password").

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::OnceLock;
use tokio::sync::Semaphore;
use veche_protocol::limits::accounts::{
    MAX_CONCURRENT_HASHES, MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS, MIN_PASSWORD_SCORE,
};

/// The argon2id instance with OWASP's recommended parameters
/// (m = 19 MiB, t = 2, p = 1).
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("OWASP's parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashing failed: only on a broken RNG or a runtime shutting down.
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

/// Hashes `password` with a fresh random salt into a PHC string. Slow on
/// purpose; call [`hash`] from async code.
pub fn hash_blocking(password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// Whether `password` matches the PHC string `phc`. A malformed string
/// matches nothing. Slow on purpose; call [`verify`] from async code.
pub fn verify_blocking(phc: &str, password: &str) -> bool {
    match PasswordHash::new(phc) {
        // The parameters come from the string, so hashes made with older
        // parameters still verify.
        Ok(parsed) => argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash of a password nobody knows, computed once, to verify against
/// when a sign-in names an email with no account: the answer then takes as
/// long as for a real account, so timing does not tell which emails exist.
pub fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let secret: [u8; 16] = crate::random_bytes();
        let pw: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        hash_blocking(&pw).expect("hashing a random password works")
    })
}

/// Runs hashing off the async workers, at most
/// [`MAX_CONCURRENT_HASHES`] at a time.
pub struct Hasher {
    permits: Semaphore,
}

impl Default for Hasher {
    fn default() -> Self {
        Hasher {
            permits: Semaphore::new(MAX_CONCURRENT_HASHES),
        }
    }
}

impl Hasher {
    /// Hashes `password` (see [`hash_blocking`]).
    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| HashError(e.to_string()))?;
        let pw = password.to_owned();
        tokio::task::spawn_blocking(move || hash_blocking(&pw))
            .await
            .map_err(|e| HashError(e.to_string()))?
    }

    /// Verifies `password` against `phc`, or against [`dummy_hash`] when
    /// there is no hash (no such account, or an SSO-only one), so every
    /// sign-in costs the same. `false` in the second case, always.
    pub async fn verify(&self, phc: Option<&str>, password: &str) -> bool {
        let Ok(_permit) = self.permits.acquire().await else {
            return false;
        };
        let real = phc.is_some();
        let phc = phc.map(str::to_owned);
        let pw = password.to_owned();
        let matched = tokio::task::spawn_blocking(move || {
            let phc = phc.as_deref().unwrap_or_else(|| dummy_hash());
            verify_blocking(phc, &pw)
        })
        .await
        .unwrap_or(false);
        real && matched
    }
}

/// Why a new password was refused; the message is shown to the person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeakPassword {
    /// Shorter than [`MIN_PASSWORD_CHARS`].
    #[error("the password is too short: use at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    /// Longer than [`MAX_PASSWORD_BYTES`].
    #[error("the password is too long: at most {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    /// The estimator found it guessable; the text says why and what helps.
    #[error("the password is too easy to guess: {0}")]
    Guessable(String),
}

/// Checks a new password: its length, then zxcvbn's estimate with
/// `user_inputs` (the email, its local part, the display name) counted as
/// known words. Refuses a score under [`MIN_PASSWORD_SCORE`] with
/// zxcvbn's warning and suggestions as the reason.
pub fn check_strength(password: &str, user_inputs: &[&str]) -> Result<(), WeakPassword> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(WeakPassword::TooLong);
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(WeakPassword::TooShort);
    }
    let estimate = zxcvbn::zxcvbn(password, user_inputs);
    if u8::from(estimate.score()) >= MIN_PASSWORD_SCORE {
        return Ok(());
    }
    let mut reasons: Vec<String> = Vec::new();
    if let Some(f) = estimate.feedback() {
        if let Some(w) = f.warning() {
            reasons.push(w.to_string());
        }
        reasons.extend(f.suggestions().iter().map(|s| s.to_string()));
    }
    if reasons.is_empty() {
        reasons.push("Add another word or two. Uncommon words are better.".into());
    }
    Err(WeakPassword::Guessable(reasons.join(" ")))
}

/// The words a user's password should not be built from: their email,
/// its parts, and their name.
pub fn user_inputs<'a>(email: &'a str, display_name: &'a str) -> Vec<&'a str> {
    let mut v = vec![email, display_name];
    if let Some((local, domain)) = email.split_once('@') {
        v.push(local);
        v.extend(domain.split('.'));
    }
    v.extend(display_name.split_whitespace());
    v.retain(|s| !s.is_empty());
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_and_no_other() {
        let h = hash_blocking("correct horse battery staple").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_blocking(&h, "correct horse battery staple"));
        assert!(!verify_blocking(&h, "correct horse battery stapl"));
        assert!(!verify_blocking("not a phc string", "anything"));
        let again = hash_blocking("correct horse battery staple").unwrap();
        assert_ne!(h, again, "two hashes of one password share a salt");
    }

    #[tokio::test]
    async fn an_account_without_a_hash_never_verifies() {
        let hasher = Hasher::default();
        assert!(!hasher.verify(None, "whatever it is").await);
        let h = hasher.hash("a long enough phrase").await.unwrap();
        assert!(hasher.verify(Some(&h), "a long enough phrase").await);
    }

    #[test]
    fn a_common_password_is_refused_with_the_reason() {
        let err = check_strength("password123", &[]).unwrap_err();
        let WeakPassword::Guessable(why) = &err else {
            panic!("{err:?}")
        };
        assert!(why.to_lowercase().contains("common"), "{why}");
    }

    #[test]
    fn a_password_made_of_the_users_own_email_is_refused() {
        let inputs = user_inputs("quortex.vimble@zanthor.example", "Quortex Vimble");
        let pw = "quortexvimble";
        assert!(check_strength(pw, &[]).is_ok(), "strong without the inputs");
        assert!(check_strength(pw, &inputs).is_err(), "weak with them");
    }

    #[test]
    fn length_limits_come_before_the_estimate() {
        assert_eq!(check_strength("Xq7#", &[]), Err(WeakPassword::TooShort));
        let long = "x".repeat(MAX_PASSWORD_BYTES + 1);
        assert_eq!(check_strength(&long, &[]), Err(WeakPassword::TooLong));
        assert!(check_strength("tangerine ocelot gravel lantern", &[]).is_ok());
    }
}
