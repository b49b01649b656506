//! The commands of the capabilities kept in document tables (accounts,
//! passes, statistics, room policies, covers), applied the same way by both stores: the redb
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
    for (room, at_ms, node) in fx.ended {
        super::policies::end_recording(d, room, at_ms, node)?;
    }
    for node in fx.lost {
        super::recordings::node_lost(d, node)?;
    }
    Ok(out)
}
