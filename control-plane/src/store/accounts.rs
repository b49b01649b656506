//! Accounts and sessions: who may sign in, and the proof that they did.
//!
//! Written once against the document tables ([`super::docs`]), so the Raft
//! state machine and [`super::MemStore`] run this same code.
//!
//! - A user has an email (unique, lower-cased), a display name, an admin
//!   flag, and either a password hash (an argon2 PHC string, computed by
//!   the proposer: hashing is slow and salted, so it must never run inside
//!   apply), an OIDC identity (issuer and subject), or both.
//! - A session is stored under the SHA-256 of its cookie token, never the
//!   token: a copy of the database or a snapshot does not sign anyone in.
//!   Sessions expire at a time the proposer chose; a session read after
//!   that is treated as absent, so expiry needs no write.

use super::db::DbError;
use super::docs::{next_id, DocKey, DocTable, Docs, DocsMut};
use serde::{Deserialize, Serialize};
use veche_protocol::{UnixMillis, UserId};

/// An identity at an OIDC provider: the pair the provider guarantees
/// stable (an email can change; `sub` cannot).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcLink {
    /// The provider's issuer URL.
    pub issuer: String,
    /// The `sub` claim.
    pub subject: String,
}

/// A stored avatar: the object's key in the avatar store and its type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AvatarRef {
    /// Object key, unique per upload, so caches never serve an old image.
    pub key: String,
    /// `image/png`, `image/jpeg` or `image/webp`, as detected from content.
    pub content_type: String,
}

/// A user account.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Assigned at apply time.
    pub id: UserId,
    /// Lower-cased email, unique among users.
    pub email: String,
    /// The name shown to others; only the user (or an admin) changes it.
    pub display_name: String,
    /// May see the administration pages and manage users.
    pub is_admin: bool,
    /// Argon2id PHC string, if the user can sign in with a password.
    pub password_hash: Option<String>,
    /// The OIDC identity, if the user signs in through SSO.
    pub oidc: Option<OidcLink>,
    /// Profile picture, if any.
    #[serde(default)]
    pub avatar: Option<AvatarRef>,
    /// Creation time (proposer's clock).
    pub created_at_ms: UnixMillis,
}

impl std::fmt::Debug for User {
    /// Everything but the password hash: a hash in a log is a gift to an
    /// offline guesser.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("display_name", &self.display_name)
            .field("is_admin", &self.is_admin)
            .field(
                "password_hash",
                &self.password_hash.as_ref().map(|_| "<redacted>"),
            )
            .field("oidc", &self.oidc)
            .field("avatar", &self.avatar)
            .field("created_at_ms", &self.created_at_ms)
            .finish()
    }
}

/// How a session was started; logout differs (RP-initiated logout for SSO).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionSource {
    /// Email and password.
    Password,
    /// The OIDC provider.
    Oidc,
}

/// A signed-in browser.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// SHA-256 of the cookie token.
    pub token_hash: [u8; 32],
    /// Whose session.
    pub user_id: UserId,
    /// How it was started.
    pub source: SessionSource,
    /// Start (proposer's clock).
    pub created_at_ms: UnixMillis,
    /// After this, the session no longer signs anyone in.
    pub expires_at_ms: UnixMillis,
}

/// A write to accounts or sessions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccountCommand {
    /// Create a user. Refused with [`AccountRefusal::EmailTaken`] if the
    /// email is in use, unless it is the same user created by this same
    /// command before (a retry: same email and creation time).
    CreateUser {
        /// Lower-cased email.
        email: String,
        /// Display name.
        display_name: String,
        /// Administrator.
        is_admin: bool,
        /// Argon2 PHC string.
        password_hash: Option<String>,
        /// OIDC identity.
        oidc: Option<OidcLink>,
        /// Creation time.
        created_at_ms: UnixMillis,
    },
    /// Sign-in through OIDC: the user with this identity, created on the
    /// first sign-in; on later ones the email, name and admin flag follow
    /// the provider's claims (the provider is the source of truth for its
    /// users). A password account with the same email is linked to the
    /// identity only if `link_by_email` (the provider says the email is
    /// verified); otherwise the sign-in is refused with
    /// [`AccountRefusal::EmailTaken`]. Idempotent.
    ProvisionOidcUser {
        /// The identity.
        link: OidcLink,
        /// Lower-cased email from the claims.
        email: String,
        /// Name from the claims.
        display_name: String,
        /// Whether the claims put the user in the admin group.
        is_admin: bool,
        /// May an existing account with this email be linked.
        link_by_email: bool,
        /// Time of this sign-in.
        now_ms: UnixMillis,
    },
    /// Change a user's profile. `None` fields stay as they are.
    UpdateProfile {
        /// Whose.
        user_id: UserId,
        /// New display name.
        display_name: Option<String>,
        /// New avatar (`Some(None)` removes it).
        #[serde(with = "avatar_change")]
        avatar: Option<Option<AvatarRef>>,
    },
    /// Replace a user's password hash.
    SetPassword {
        /// Whose.
        user_id: UserId,
        /// Argon2 PHC string.
        password_hash: String,
    },
    /// Grant or withdraw administration.
    SetAdmin {
        /// Whose.
        user_id: UserId,
        /// Administrator or not.
        is_admin: bool,
    },
    /// Delete a user and every session of theirs. Deleting a deleted user
    /// changes nothing.
    DeleteUser {
        /// Whose.
        user_id: UserId,
    },
    /// Start a session. Refused with [`AccountRefusal::NoSuchUser`] for a
    /// user that does not exist (deleted between sign-in and commit).
    CreateSession(Session),
    /// End one session (sign out). Ending an ended one changes nothing.
    RevokeSession {
        /// SHA-256 of its token.
        token_hash: [u8; 32],
    },
    /// End every session of a user (sign out everywhere).
    RevokeUserSessions {
        /// Whose.
        user_id: UserId,
    },
}

/// `UpdateProfile::avatar` on the wire. A plain `Option<Option<_>>`
/// loses its inner `None` in any self-describing format (`Some(None)` is
/// written as nil and read back as `None`: "remove the picture" became
/// "leave it"), so the change travels as an explicit enum.
mod avatar_change {
    use super::AvatarRef;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    enum Change {
        Remove,
        Set(AvatarRef),
    }

    pub fn serialize<S: Serializer>(
        v: &Option<Option<AvatarRef>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let change = match v {
            None => None,
            Some(None) => Some(Change::Remove),
            Some(Some(a)) => Some(Change::Set(a.clone())),
        };
        change.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<AvatarRef>>, D::Error> {
        Ok(match Option::<Change>::deserialize(d)? {
            None => None,
            Some(Change::Remove) => Some(None),
            Some(Change::Set(a)) => Some(Some(a)),
        })
    }
}

impl AccountCommand {
    /// Every account command may be applied twice with the effect of once.
    pub fn is_idempotent(&self) -> bool {
        true
    }
}

/// What an account command answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccountOutput {
    /// The user as stored after the command.
    User(User),
    /// The session started.
    Session(Session),
    /// How many sessions or users were removed.
    Removed(u64),
}

/// Why an account command was refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AccountRefusal {
    /// Another user has this email.
    #[error("an account with this email already exists")]
    EmailTaken,
    /// No such user.
    #[error("no such user")]
    NoSuchUser,
}

/// Users by id.
const USERS: DocTable<u64, User> = DocTable::new("users");
/// User id by lower-cased email.
const USER_EMAILS: DocTable<str, u64> = DocTable::new("user_emails");
/// User id by (issuer, subject).
const USER_OIDC: DocTable<(String, String), u64> = DocTable::new("user_oidc");
/// Sessions by token hash.
const SESSIONS: DocTable<[u8; 32], Session> = DocTable::new("sessions");
/// Token hashes by (user, token hash), to end all of a user's sessions.
const USER_SESSIONS: DocTable<(u64, [u8; 32]), ()> = DocTable::new("user_sessions");

type Applied = Result<Result<AccountOutput, AccountRefusal>, DbError>;

/// Applies one account command.
pub(crate) fn apply(d: &mut (impl DocsMut + ?Sized), cmd: AccountCommand) -> Applied {
    match cmd {
        AccountCommand::CreateUser {
            email,
            display_name,
            is_admin,
            password_hash,
            oidc,
            created_at_ms,
        } => {
            if let Some(id) = USER_EMAILS.get(d, &email)? {
                let user = user(d, UserId(id))?;
                return Ok(match user {
                    Some(u) if u.created_at_ms == created_at_ms => Ok(AccountOutput::User(u)),
                    _ => Err(AccountRefusal::EmailTaken),
                });
            }
            let user = User {
                id: UserId(next_id(d, "users")?),
                email,
                display_name,
                is_admin,
                password_hash,
                oidc,
                avatar: None,
                created_at_ms,
            };
            store_user(d, None, &user)?;
            Ok(Ok(AccountOutput::User(user)))
        }
        AccountCommand::ProvisionOidcUser {
            link,
            email,
            display_name,
            is_admin,
            link_by_email,
            now_ms,
        } => {
            let by_link = USER_OIDC.get(d, &(link.issuer.clone(), link.subject.clone()))?;
            let by_email = USER_EMAILS.get(d, &email)?;
            let existing = match (by_link, by_email) {
                (Some(id), Some(other)) if other != id => {
                    return Ok(Err(AccountRefusal::EmailTaken))
                }
                (Some(id), _) => user(d, UserId(id))?,
                (None, Some(id)) => {
                    let u = user(d, UserId(id))?;
                    if !link_by_email || u.as_ref().is_some_and(|u| u.oidc.is_some()) {
                        return Ok(Err(AccountRefusal::EmailTaken));
                    }
                    u
                }
                (None, None) => None,
            };
            let updated = match existing {
                Some(old) => {
                    let new = User {
                        email,
                        display_name,
                        is_admin,
                        oidc: Some(link),
                        ..old.clone()
                    };
                    store_user(d, Some(&old), &new)?;
                    new
                }
                None => {
                    let new = User {
                        id: UserId(next_id(d, "users")?),
                        email,
                        display_name,
                        is_admin,
                        password_hash: None,
                        oidc: Some(link),
                        avatar: None,
                        created_at_ms: now_ms,
                    };
                    store_user(d, None, &new)?;
                    new
                }
            };
            Ok(Ok(AccountOutput::User(updated)))
        }
        AccountCommand::UpdateProfile {
            user_id,
            display_name,
            avatar,
        } => modify(d, user_id, |u| {
            if let Some(n) = display_name {
                u.display_name = n;
            }
            if let Some(a) = avatar {
                u.avatar = a;
            }
        }),
        AccountCommand::SetPassword {
            user_id,
            password_hash,
        } => modify(d, user_id, |u| u.password_hash = Some(password_hash)),
        AccountCommand::SetAdmin { user_id, is_admin } => {
            modify(d, user_id, |u| u.is_admin = is_admin)
        }
        AccountCommand::DeleteUser { user_id } => {
            let Some(old) = user(d, user_id)? else {
                return Ok(Ok(AccountOutput::Removed(0)));
            };
            revoke_user_sessions(d, user_id)?;
            USERS.remove(d, &user_id.0)?;
            USER_EMAILS.remove(d, &old.email)?;
            if let Some(l) = &old.oidc {
                USER_OIDC.remove(d, &(l.issuer.clone(), l.subject.clone()))?;
            }
            Ok(Ok(AccountOutput::Removed(1)))
        }
        AccountCommand::CreateSession(session) => {
            if !USERS.contains(d, &session.user_id.0)? {
                return Ok(Err(AccountRefusal::NoSuchUser));
            }
            SESSIONS.put(d, &session.token_hash, &session)?;
            USER_SESSIONS.put(d, &(session.user_id.0, session.token_hash), &())?;
            Ok(Ok(AccountOutput::Session(session)))
        }
        AccountCommand::RevokeSession { token_hash } => {
            let Some(s) = SESSIONS.get(d, &token_hash)? else {
                return Ok(Ok(AccountOutput::Removed(0)));
            };
            SESSIONS.remove(d, &token_hash)?;
            USER_SESSIONS.remove(d, &(s.user_id.0, token_hash))?;
            Ok(Ok(AccountOutput::Removed(1)))
        }
        AccountCommand::RevokeUserSessions { user_id } => Ok(Ok(AccountOutput::Removed(
            revoke_user_sessions(d, user_id)?,
        ))),
    }
}

/// Writes `new` and keeps the email and OIDC indexes in step with it.
fn store_user(
    d: &mut (impl DocsMut + ?Sized),
    old: Option<&User>,
    new: &User,
) -> Result<(), DbError> {
    if let Some(old) = old {
        if old.email != new.email {
            USER_EMAILS.remove(d, &old.email)?;
        }
        if let Some(l) = old.oidc.as_ref().filter(|l| Some(*l) != new.oidc.as_ref()) {
            USER_OIDC.remove(d, &(l.issuer.clone(), l.subject.clone()))?;
        }
    }
    USERS.put(d, &new.id.0, new)?;
    USER_EMAILS.put(d, &new.email, &new.id.0)?;
    if let Some(l) = &new.oidc {
        USER_OIDC.put(d, &(l.issuer.clone(), l.subject.clone()), &new.id.0)?;
    }
    Ok(())
}

fn modify(d: &mut (impl DocsMut + ?Sized), id: UserId, change: impl FnOnce(&mut User)) -> Applied {
    let Some(old) = user(d, id)? else {
        return Ok(Err(AccountRefusal::NoSuchUser));
    };
    let mut new = old.clone();
    change(&mut new);
    store_user(d, Some(&old), &new)?;
    Ok(Ok(AccountOutput::User(new)))
}

fn revoke_user_sessions(d: &mut (impl DocsMut + ?Sized), id: UserId) -> Result<u64, DbError> {
    let keys = USER_SESSIONS.scan_keys(d, &id.0.key_bytes(), false, usize::MAX)?;
    for (key, ()) in &keys {
        let hash: [u8; 32] = key[8..].try_into().map_err(|_| {
            DbError::Inconsistent(format!("user_sessions key of {} bytes", key.len()))
        })?;
        SESSIONS.remove(d, &hash)?;
        USER_SESSIONS.remove(d, &(id.0, hash))?;
    }
    Ok(keys.len() as u64)
}

/// The user with this id.
pub(crate) fn user(d: &(impl Docs + ?Sized), id: UserId) -> Result<Option<User>, DbError> {
    USERS.get(d, &id.0)
}

/// The user with this (lower-cased) email.
pub(crate) fn user_by_email(
    d: &(impl Docs + ?Sized),
    email: &str,
) -> Result<Option<User>, DbError> {
    match USER_EMAILS.get(d, email)? {
        Some(id) => user(d, UserId(id)),
        None => Ok(None),
    }
}

/// Every user, by id.
pub(crate) fn users(d: &(impl Docs + ?Sized)) -> Result<Vec<User>, DbError> {
    USERS.scan(d, &[], false, usize::MAX)
}

/// The session with this token hash and its user, if the session exists,
/// has not expired at `now_ms`, and its user still exists.
pub(crate) fn session(
    d: &(impl Docs + ?Sized),
    token_hash: &[u8; 32],
    now_ms: UnixMillis,
) -> Result<Option<(Session, User)>, DbError> {
    let Some(s) = SESSIONS.get(d, token_hash)? else {
        return Ok(None);
    };
    if s.expires_at_ms <= now_ms {
        return Ok(None);
    }
    Ok(user(d, s.user_id)?.map(|u| (s, u)))
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removing_an_avatar_survives_the_log_encoding() {
        let a = AvatarRef {
            key: "users/1/ab".into(),
            content_type: "image/png".into(),
        };
        for avatar in [None, Some(None), Some(Some(a))] {
            let cmd = AccountCommand::UpdateProfile {
                user_id: UserId(1),
                display_name: None,
                avatar,
            };
            let bytes = rmp_serde::to_vec_named(&cmd).unwrap();
            let back: AccountCommand = rmp_serde::from_slice(&bytes).unwrap();
            assert_eq!(back, cmd);
        }
    }
}
