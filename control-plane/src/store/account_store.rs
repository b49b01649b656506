//! [`AccountStore`]: accounts and sessions (`accounts.rs`) as the API
//! uses them, on every store.

use super::access::DocAccess;
use super::accounts::{
    session, user, user_by_email, users, AccountCommand, AccountOutput, Session, User,
};
use super::error::StoreError;
use super::model::{Command, CommandOutput};
use super::seam;
use std::future::Future;
use veche_protocol::{UnixMillis, UserId};

/// Accounts and sessions as the API uses them. Implemented once for every
/// store ([`DocAccess`]); the contract is checked by the conformance cases
/// in `accounts_tests.rs` on both stores.
pub trait AccountStore: DocAccess {
    /// Runs an account command; a refusal is [`StoreError::Refused`].
    fn account(
        &self,
        cmd: AccountCommand,
    ) -> impl Future<Output = Result<AccountOutput, StoreError>> + Send {
        async move {
            seam::expect(
                self.commit(Command::Accounts(cmd)).await?,
                "an account command",
                |o| match o {
                    CommandOutput::Accounts(a) => Ok(*a),
                    other => Err(other),
                },
            )
        }
    }

    /// Runs an account command answered with a user.
    fn account_user(
        &self,
        cmd: AccountCommand,
    ) -> impl Future<Output = Result<User, StoreError>> + Send {
        async move {
            match self.account(cmd).await? {
                AccountOutput::User(u) => Ok(u),
                other => Err(StoreError::Inconsistent(format!(
                    "expected a user, got {other:?}"
                ))),
            }
        }
    }

    /// The user with this id.
    fn user(&self, id: UserId) -> impl Future<Output = Result<Option<User>, StoreError>> + Send {
        self.read_docs(move |d| user(d, id))
    }

    /// The user with this (lower-cased) email.
    fn user_by_email(
        &self,
        email: &str,
    ) -> impl Future<Output = Result<Option<User>, StoreError>> + Send {
        let email = email.to_owned();
        self.read_docs(move |d| user_by_email(d, &email))
    }

    /// Every user, by id.
    fn users(&self) -> impl Future<Output = Result<Vec<User>, StoreError>> + Send {
        self.read_docs(|d| users(d))
    }

    /// The unexpired session with this token hash, and its user.
    fn session(
        &self,
        token_hash: [u8; 32],
        now_ms: UnixMillis,
    ) -> impl Future<Output = Result<Option<(Session, User)>, StoreError>> + Send {
        self.read_docs(move |d| session(d, &token_hash, now_ms))
    }
}

impl<S: DocAccess + ?Sized> AccountStore for S {}
