//! Conformance cases for [`PolicyStore`]: every sentence of the room
//! policies contract (`policies.rs`), on every store `conformance::run_all`
//! runs (MemStore, Raft, and the forwarding layer).

use super::conformance_kit::{Case, StoreFactory};
use super::error::StoreError;
use super::model::CommandError;
use super::policies::{PolicyCommand, PolicyRefusal, PolicyStore};
use std::path::Path;
use veche_protocol::moderation::{MediaGroup, ModAction, Role, SettingsChange};
use veche_protocol::rpc::{Actor, ModerateRequest, PresentParticipant};
use veche_protocol::{ParticipantId, RoomId, UserId};

/// The policy cases, named.
pub(crate) fn cases<F: StoreFactory>() -> [(&'static str, Case<F>); 3] {
    [
        (
            "a room nobody moderated has the default policy, and hosts are recorded once",
            |f, d| Box::pin(hosts_are_recorded_once(f, d)),
        ),
        (
            "a moderation action is decided against the committed policy",
            |f, d| Box::pin(an_action_is_decided_against_the_committed_policy(f, d)),
        ),
        (
            "a refused action commits nothing, and policies survive a reopen",
            |f, d| Box::pin(a_refused_action_commits_nothing(f, d)),
        ),
    ]
}

fn pid(s: &str) -> ParticipantId {
    ParticipantId(s.into())
}

fn act(room: RoomId, by: &str, role: Role, action: ModAction) -> PolicyCommand {
    PolicyCommand::Act(ModerateRequest {
        room_id: room,
        actor: Some(Actor {
            participant_id: pid(by),
            display_name: format!("{by} name"),
            claimed_role: role,
        }),
        action,
        present: vec![PresentParticipant {
            participant_id: pid("p-bob"),
            claimed_role: Role::Guest,
            user: Some(UserId(4)),
            pass: None,
        }],
        at_ms: 50,
    })
}

fn host(room: RoomId, id: &str) -> PolicyCommand {
    PolicyCommand::RecordHost {
        room_id: room,
        participant_id: pid(id),
    }
}

fn refused<T: std::fmt::Debug>(r: Result<T, StoreError>) -> PolicyRefusal {
    match r {
        Err(StoreError::Refused(CommandError::Policy(e))) => e,
        other => panic!("expected a policy refusal, got {other:?}"),
    }
}

async fn hosts_are_recorded_once<F: StoreFactory>(f: &F, dir: &Path) {
    let s = f.open(dir).await;
    let room = RoomId(1);
    let empty = s.room_policy(room).await.unwrap();
    assert_eq!(empty, Default::default());
    let once = s.policy_command(host(room, "p-h")).await.unwrap();
    assert_eq!(once.version, 1);
    assert_eq!(once.role_of(&pid("p-h"), Role::Participant), Role::Host);
    assert_eq!(
        s.policy_command(host(room, "p-h")).await.unwrap(),
        once,
        "recording the same host again changes nothing"
    );
    assert_eq!(s.room_policy(room).await.unwrap(), once);
    assert_eq!(
        s.room_policy(RoomId(2)).await.unwrap(),
        Default::default(),
        "policies are per room"
    );
    let settings = s
        .policy_command(PolicyCommand::ChangeSettings {
            room_id: room,
            change: SettingsChange {
                lobby: Some(true),
                ..Default::default()
            },
        })
        .await
        .unwrap();
    assert!(settings.settings.lobby);
    assert_eq!(settings.version, 2);
    assert!(settings.hosts.contains(&pid("p-h")), "the host stays");
    f.close(s).await;
}

async fn an_action_is_decided_against_the_committed_policy<F: StoreFactory>(f: &F, dir: &Path) {
    let s = f.open(dir).await;
    let room = RoomId(1);
    s.policy_command(host(room, "p-h")).await.unwrap();
    let make_mod = ModAction::MakeModerator {
        participant_id: pid("p-m"),
    };
    // p-m is nobody yet: refused, then made a moderator by the host, then
    // allowed, because the committed policy changed in between.
    let ban = ModAction::Remove {
        participant_id: pid("p-bob"),
        ban: true,
    };
    assert!(matches!(
        refused(
            s.policy_command(act(room, "p-m", Role::Participant, ban.clone()))
                .await
        ),
        PolicyRefusal::Forbidden(_)
    ));
    s.policy_command(act(room, "p-h", Role::Participant, make_mod))
        .await
        .unwrap();
    let banned = s
        .policy_command(act(room, "p-m", Role::Participant, ban))
        .await
        .unwrap();
    assert_eq!(banned.version, 3);
    let removal = &banned.removed[&pid("p-bob")];
    assert!(removal.ban);
    assert_eq!(removal.user, Some(UserId(4)));
    assert_eq!(s.room_policy(room).await.unwrap(), banned);
    f.close(s).await;
}

async fn a_refused_action_commits_nothing<F: StoreFactory>(f: &F, dir: &Path) {
    let s = f.open(dir).await;
    let room = RoomId(1);
    let muted = s
        .policy_command(act(
            room,
            "p-h",
            Role::Host,
            ModAction::Mute {
                participant_id: pid("p-bob"),
                group: MediaGroup::Microphone,
            },
        ))
        .await
        .unwrap();
    let unmute = act(
        room,
        "p-bob",
        Role::Guest,
        ModAction::UnmuteSelf {
            group: MediaGroup::Microphone,
        },
    );
    assert!(matches!(
        refused(s.policy_command(unmute).await),
        PolicyRefusal::Forbidden(_)
    ));
    assert_eq!(
        s.room_policy(room).await.unwrap(),
        muted,
        "the refusal changed nothing"
    );
    if F::DURABLE {
        f.close(s).await;
        let s = f.open(dir).await;
        assert_eq!(
            s.room_policy(room).await.unwrap(),
            muted,
            "policies survive a reopen"
        );
        f.close(s).await;
    } else {
        f.close(s).await;
    }
}
