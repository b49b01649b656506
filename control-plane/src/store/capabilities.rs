//! The commands of the capabilities kept in document tables (accounts,
//! passes, statistics, room policies, covers, recordings, E2EE), applied the same way by both stores: the redb
//! state machine and `MemStore` each hand such a command here with their
//! own `DocsMut`, so neither carries a copy of the dispatch.

use super::db::DbError;
use super::docs::DocsMut;
use super::model::{Command, CommandError, CommandOutput, CommandResult};
use super::stats::{StatsCommand, StatsEffects, StatsOutput};

/// Applies a command of a document-table capability. Any other command
/// is a caller's bug, refused as an inconsistency.
pub(crate) fn apply(
    d: &mut (impl DocsMut + ?Sized),
    cmd: Command,
) -> Result<CommandResult, DbError> {
    Ok(match cmd {
        Command::Accounts(c) => super::accounts::apply(d, c)?
            .map(|o| CommandOutput::Accounts(Box::new(o)))
            .map_err(CommandError::Account),
        Command::Passes(c) => super::passes::apply(d, c)?
            .map(|o| CommandOutput::Passes(Box::new(o)))
            .map_err(CommandError::Pass),
        Command::Stats(c) => Ok(CommandOutput::Stats(stats(d, c)?)),
        Command::Policies(c) => super::policies::apply(d, c)?
            .map(|p| CommandOutput::Policy(Box::new(p)))
            .map_err(CommandError::Policy),
        Command::Covers(c) => Ok(CommandOutput::Covers(Box::new(super::covers::apply(d, c)?))),
        Command::Recordings(c) => Ok(CommandOutput::Recordings(Box::new(
            super::recordings::apply(d, c)?,
        ))),
        Command::E2ee(c) => super::e2ee::apply(d, c)?
            .map(CommandOutput::E2ee)
            .map_err(CommandError::E2ee),
        other => {
            return Err(DbError::Inconsistent(format!(
                "not a document-table command: {other:?}"
            )))
        }
    })
}

/// A statistics command, and what follows from it in the same apply: a
/// meeting that ended stops its room's recording (so a forgotten one does
/// not resume when someone comes back days later), and a node whose run
/// is over (declared dead, or restarted) leaves the files it was writing
/// interrupted.
fn stats(d: &mut (impl DocsMut + ?Sized), cmd: StatsCommand) -> Result<StatsOutput, DbError> {
    let webhooks = match &cmd {
        StatsCommand::Record { webhooks, .. } | StatsCommand::NodeLost { webhooks, .. } => {
            Some(*webhooks)
        }
        StatsCommand::WebhooksDelivered { .. } => None,
    };
    let mut fx = StatsEffects::default();
    let out = super::stats::apply_observed(d, cmd, &mut fx)?;
    if let Some(on) = webhooks {
        if !fx.ended.is_empty() || !fx.lost.is_empty() {
            super::recordings::set_webhooks(d, on)?;
        }
    }
    let ended = std::mem::take(&mut fx.ended);
    for &(room, at_ms, node) in &ended {
        super::policies::end_recording(d, room, at_ms, node)?;
    }
    for node in fx.lost {
        super::recordings::node_lost(d, node)?;
    }
    // In the same apply as the leaves themselves: a participant with no
    // open seat left anywhere is out of the room's key agreement, and a
    // room nobody is in any more (checked after the whole batch: a join
    // later in it keeps the meeting) starts its next group afresh.
    for (room, who) in fx.left {
        if super::e2ee::is_encrypted(d, room)? && !super::stats::seated_anywhere(d, room, &who)? {
            super::e2ee::left(d, room, &who)?;
        }
    }
    for (room, _, _) in &ended {
        if !super::stats::is_live(d, *room)? {
            super::e2ee::reset(d, *room)?;
        }
    }
    Ok(out)
}
