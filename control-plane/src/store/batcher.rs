//! The write batcher: packs concurrent writes into one Raft log entry.
//!
//! openraft 0.9 appends and flushes client writes one entry at a time, so
//! without this every chat message would cost its own fsync on the leader.

use super::deadline::with_deadline;
use super::error::StoreError;
use super::model::{Command, CommandOutput, CommandResult};
use super::types::Raft;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// A write waiting for the batcher, with where to send its result.
pub(super) type PendingWrite = (Command, oneshot::Sender<Result<CommandResult, StoreError>>);

/// Most commands packed into one log entry. Bounds the entry's size (each
/// chat message is at most a few KiB) and the work one apply does.
pub(super) const MAX_BATCH: usize = 256;

/// Batched entries in flight at once. With one, the next batch cannot fill
/// while the previous one replicates; with more, batches get small and
/// openraft 0.9 (which appends one entry at a time) pays per entry again.
/// Measured with 64 writers on a 3-node loopback cluster: 1 slot 5.5k
/// commits/s, 2 slots 7.8k/s, 4 slots 5.2k/s (docs/benchmarks.md).
pub(super) const BATCHES_IN_FLIGHT: usize = 2;

/// Packs concurrent writes into [`Command::Batch`] entries.
///
/// openraft 0.9 appends and flushes client writes one entry at a time, so
/// without this every chat message costs its own fsync on the leader. The
/// batcher never waits to fill a batch: it takes whatever is queued when a
/// slot is free, so a lone write goes out at once, unwrapped, and under
/// load batches grow by themselves.
pub(super) async fn run_batcher(raft: Raft, mut queue: mpsc::Receiver<PendingWrite>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(BATCHES_IN_FLIGHT));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = queue.recv().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(w) => batch.push(w),
                Err(_) => break,
            }
        }
        let raft = raft.clone();
        tokio::spawn(async move {
            write_batch(&raft, batch).await;
            drop(slot);
        });
    }
}

/// Proposes one batch and hands each waiter its own result.
async fn write_batch(raft: &Raft, mut batch: Vec<PendingWrite>) {
    if batch.len() == 1 {
        let (cmd, reply) = batch.pop().expect("one write");
        let _ = reply.send(write_one(raft, cmd).await);
        return;
    }
    let (cmds, replies): (Vec<Command>, Vec<_>) = batch.into_iter().unzip();
    let n = cmds.len();
    match write_one(raft, Command::Batch(cmds)).await {
        Ok(Ok(CommandOutput::Batch(results))) if results.len() == n => {
            for (reply, result) in replies.into_iter().zip(results) {
                let _ = reply.send(Ok(result));
            }
        }
        Ok(other) => {
            for reply in replies {
                let _ = reply.send(Err(StoreError::Inconsistent(format!(
                    "a batch of {n} was answered with {other:?}"
                ))));
            }
        }
        Err(e) => {
            for reply in replies {
                let _ = reply.send(Err(e.for_another_waiter()));
            }
        }
    }
}

async fn write_one(raft: &Raft, cmd: Command) -> Result<CommandResult, StoreError> {
    let resp = with_deadline(raft.client_write(cmd)).await??;
    resp.data.ok_or_else(|| {
        StoreError::Inconsistent(format!(
            "command entry {} produced no state-machine result",
            resp.log_id
        ))
    })
}
