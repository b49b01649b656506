//! Conformance cases for [`AccountStore`]: every sentence of the accounts
//! contract (`accounts.rs`), on every store `conformance::run_all` runs.

use super::accounts::{
    AccountCommand, AccountOutput, AccountRefusal, OidcLink, Session, SessionSource,
};
use super::conformance_kit::{Case, StoreFactory};
use super::error::StoreError;
use super::model::CommandError;
use super::AccountStore;
use std::path::Path;
use veche_protocol::UserId;

/// The accounts cases, named.
pub(crate) fn cases<F: StoreFactory>() -> [(&'static str, Case<F>); 5] {
    [
        (
            "a user's email is unique and a retry is not a duplicate",
            |f, d| Box::pin(emails_are_unique(f, d)),
        ),
        (
            "an oidc identity is provisioned once and follows the claims",
            |f, d| Box::pin(oidc_identity_is_provisioned_once(f, d)),
        ),
        ("sessions expire, end one by one or all together", |f, d| {
            Box::pin(sessions_expire_and_end(f, d))
        }),
        (
            "deleting a user ends their sessions and frees the email",
            |f, d| Box::pin(deleting_a_user_ends_their_sessions(f, d)),
        ),
        ("profiles change only what is given", |f, d| {
            Box::pin(profiles_change_only_what_is_given(f, d))
        }),
    ]
}

fn create(email: &str, at: u64) -> AccountCommand {
    AccountCommand::CreateUser {
        email: email.into(),
        display_name: "Ada".into(),
        is_admin: false,
        password_hash: Some("$argon2id$fake".into()),
        oidc: None,
        created_at_ms: at,
    }
}

fn refused<T: std::fmt::Debug>(r: Result<T, StoreError>) -> AccountRefusal {
    match r {
        Err(StoreError::Refused(CommandError::Account(e))) => e,
        other => panic!("expected an account refusal, got {other:?}"),
    }
}

fn session(user: UserId, n: u8, expires: u64) -> AccountCommand {
    AccountCommand::CreateSession(Session {
        token_hash: [n; 32],
        user_id: user,
        source: SessionSource::Password,
        created_at_ms: 1,
        expires_at_ms: expires,
    })
}

async fn emails_are_unique<F: StoreFactory>(f: &F, dir: &Path) {
    let s = f.open(dir).await;
    let ada = s.account_user(create("ada@example.test", 1)).await.unwrap();
    let again = s.account_user(create("ada@example.test", 1)).await.unwrap();
    assert_eq!(
        ada, again,
        "a retry of the same command returns the same user"
    );
    assert_eq!(
        refused(s.account_user(create("ada@example.test", 2)).await),
        AccountRefusal::EmailTaken
    );
    let bob = s.account_user(create("bob@example.test", 3)).await.unwrap();
    assert!(bob.id > ada.id);
    assert_eq!(
        s.user_by_email("ada@example.test").await.unwrap(),
        Some(ada.clone())
    );
    assert_eq!(s.user(bob.id).await.unwrap(), Some(bob.clone()));
    assert_eq!(s.users().await.unwrap(), vec![ada, bob]);
    assert_eq!(s.user_by_email("nobody@example.test").await.unwrap(), None);
    f.close(s).await;
}

async fn oidc_identity_is_provisioned_once<F: StoreFactory>(f: &F, dir: &Path) {
    let s = f.open(dir).await;
    let link = OidcLink {
        issuer: "http://idp".into(),
        subject: "sub-1".into(),
    };
    let provision =
        |email: &str, name: &str, admin: bool, by_email: bool| AccountCommand::ProvisionOidcUser {
            link: link.clone(),
            email: email.into(),
            display_name: name.into(),
            is_admin: admin,
            link_by_email: by_email,
            now_ms: 5,
        };
    let first = s
        .account_user(provision("a@x.test", "A", true, false))
        .await
        .unwrap();
    let second = s
        .account_user(provision("a2@x.test", "A Two", false, false))
        .await
        .unwrap();
    assert_eq!(first.id, second.id, "one identity, one user");
    assert_eq!(
        (
            second.email.as_str(),
            second.display_name.as_str(),
            second.is_admin
        ),
        ("a2@x.test", "A Two", false)
    );
    assert_eq!(
        s.user_by_email("a@x.test").await.unwrap(),
        None,
        "the old email is free again"
    );

    // A password account with the provider's email: linked only when the
    // provider vouches for the email.
    let local = s.account_user(create("c@x.test", 9)).await.unwrap();
    let other = |by_email| AccountCommand::ProvisionOidcUser {
        link: OidcLink {
            issuer: "http://idp".into(),
            subject: "sub-2".into(),
        },
        email: "c@x.test".into(),
        display_name: "C".into(),
        is_admin: false,
        link_by_email: by_email,
        now_ms: 6,
    };
    assert_eq!(
        refused(s.account_user(other(false)).await),
        AccountRefusal::EmailTaken
    );
    let linked = s.account_user(other(true)).await.unwrap();
    assert_eq!(linked.id, local.id);
    assert!(linked.password_hash.is_some(), "linking keeps the password");
    f.close(s).await;
}

async fn sessions_expire_and_end<F: StoreFactory>(f: &F, dir: &Path) {
    let s = f.open(dir).await;
    let ada = s.account_user(create("ada@example.test", 1)).await.unwrap();
    for n in 1..=3 {
        s.account(session(ada.id, n, 1_000)).await.unwrap();
    }
    let (sess, user) = s
        .session([1; 32], 999)
        .await
        .unwrap()
        .expect("a live session");
    assert_eq!((sess.user_id, user.id), (ada.id, ada.id));
    assert_eq!(
        s.session([1; 32], 1_000).await.unwrap(),
        None,
        "expired at its deadline"
    );
    assert_eq!(
        s.account(AccountCommand::RevokeSession {
            token_hash: [1; 32]
        })
        .await
        .unwrap(),
        AccountOutput::Removed(1)
    );
    assert_eq!(
        s.account(AccountCommand::RevokeSession {
            token_hash: [1; 32]
        })
        .await
        .unwrap(),
        AccountOutput::Removed(0)
    );
    assert_eq!(s.session([1; 32], 2).await.unwrap(), None);
    assert!(s.session([2; 32], 2).await.unwrap().is_some());
    assert_eq!(
        s.account(AccountCommand::RevokeUserSessions { user_id: ada.id })
            .await
            .unwrap(),
        AccountOutput::Removed(2)
    );
    assert_eq!(
        s.session([3; 32], 2).await.unwrap(),
        None,
        "signed out everywhere"
    );
    assert_eq!(
        refused(s.account(session(UserId(999), 4, 1_000)).await),
        AccountRefusal::NoSuchUser
    );
    f.close(s).await;
}

async fn deleting_a_user_ends_their_sessions<F: StoreFactory>(f: &F, dir: &Path) {
    let s = f.open(dir).await;
    let ada = s.account_user(create("ada@example.test", 1)).await.unwrap();
    s.account(session(ada.id, 1, 1_000)).await.unwrap();
    assert_eq!(
        s.account(AccountCommand::DeleteUser { user_id: ada.id })
            .await
            .unwrap(),
        AccountOutput::Removed(1)
    );
    assert_eq!(
        s.session([1; 32], 2).await.unwrap(),
        None,
        "a deleted account's session stops working"
    );
    assert_eq!(s.user(ada.id).await.unwrap(), None);
    assert_eq!(
        s.account(AccountCommand::DeleteUser { user_id: ada.id })
            .await
            .unwrap(),
        AccountOutput::Removed(0)
    );
    let again = s.account_user(create("ada@example.test", 2)).await.unwrap();
    assert_ne!(again.id, ada.id, "ids are never reused");
    f.close(s).await;
}

async fn profiles_change_only_what_is_given<F: StoreFactory>(f: &F, dir: &Path) {
    let s = f.open(dir).await;
    let ada = s.account_user(create("ada@example.test", 1)).await.unwrap();
    let renamed = s
        .account_user(AccountCommand::UpdateProfile {
            user_id: ada.id,
            display_name: Some("Ada L.".into()),
            avatar: None,
        })
        .await
        .unwrap();
    assert_eq!(renamed.display_name, "Ada L.");
    assert_eq!(renamed.password_hash, ada.password_hash);
    let admin = s
        .account_user(AccountCommand::SetAdmin {
            user_id: ada.id,
            is_admin: true,
        })
        .await
        .unwrap();
    assert!(admin.is_admin && admin.display_name == "Ada L.");
    assert_eq!(
        refused(
            s.account_user(AccountCommand::SetAdmin {
                user_id: UserId(77),
                is_admin: true
            })
            .await
        ),
        AccountRefusal::NoSuchUser
    );
    if F::DURABLE {
        f.close(s).await;
        let s = f.open(dir).await;
        assert_eq!(
            s.user(ada.id).await.unwrap(),
            Some(admin),
            "accounts survive a reopen"
        );
        f.close(s).await;
    } else {
        f.close(s).await;
    }
}
