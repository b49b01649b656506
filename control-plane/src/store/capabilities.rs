//! The commands of the capabilities kept in document tables (accounts,
//! passes, statistics, room policies, covers), applied the same way by both stores: the redb
//! state machine and `MemStore` each hand such a command here with their
//! own `DocsMut`, so neither carries a copy of the dispatch.

use super::db::DbError;
use super::docs::DocsMut;
use super::model::{Command, CommandError, CommandOutput, CommandResult};

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
        Command::Stats(c) => Ok(CommandOutput::Stats(super::stats::apply(d, c)?)),
        Command::Policies(c) => super::policies::apply(d, c)?
            .map(|p| CommandOutput::Policy(Box::new(p)))
            .map_err(CommandError::Policy),
        Command::Covers(c) => Ok(CommandOutput::Covers(Box::new(super::covers::apply(d, c)?))),
        other => {
            return Err(DbError::Inconsistent(format!(
                "not a document-table command: {other:?}"
            )))
        }
    })
}
