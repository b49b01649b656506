//! What every conformance module shares: how a store is opened and
//! closed for a case ([`StoreFactory`]), and the shape of a case. Apart
//! from `conformance.rs`, which runs the cases of every capability's
//! module (`conformance_accounts.rs`...), so that those modules need not
//! import the runner that imports them.

use super::DocAccess;
use super::Store;
use std::future::Future;
use std::path::Path;
use veche_protocol::moderation::{ModAction, Role};
use veche_protocol::rpc::{Actor, ModerateRequest, PresentParticipant};
use veche_protocol::{ParticipantId, RoomId, UserId};

/// Opens and closes one kind of store.
pub trait StoreFactory: Sync {
    /// The store.
    type Store: Store + DocAccess;
    /// Whether what was written before [`StoreFactory::close`] is there
    /// after [`StoreFactory::open`] on the same directory. When not, the
    /// reopen case is skipped (and says so).
    const DURABLE: bool;
    /// Opens the store whose data lives in `dir` (empty the first time).
    fn open(&self, dir: &Path) -> impl Future<Output = Self::Store> + Send;
    /// Closes the store, releasing `dir`.
    fn close(&self, store: Self::Store) -> impl Future<Output = ()> + Send;
}

/// One case: runs on a fresh store opened in a fresh directory.
pub type Case<F> =
    for<'a> fn(&'a F, &'a Path) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// The request a media node relays when `p-host`, a host named `name`
/// signed in as `user` and alone in `room`, takes `action` at `at_ms`.
pub(crate) fn host_acts(
    room: RoomId,
    user: UserId,
    name: &str,
    action: ModAction,
    at_ms: u64,
) -> ModerateRequest {
    let host = ParticipantId("p-host".into());
    ModerateRequest {
        room_id: room,
        actor: Some(Actor {
            participant_id: host.clone(),
            display_name: name.into(),
            claimed_role: Role::Host,
        }),
        action,
        present: vec![PresentParticipant {
            participant_id: host,
            claimed_role: Role::Host,
            user: Some(user),
            pass: None,
        }],
        at_ms,
    }
}
