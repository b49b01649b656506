//! The deadline of one store request. openraft itself waits indefinitely
//! for a commit, which without a quorum is forever; an HTTP handler must
//! not.

use super::error::StoreError;
use std::time::Duration;

/// Deadline for one write or linearizable read. openraft itself waits
/// indefinitely for a commit, which without a quorum is forever; an HTTP
/// handler must not. Long enough to cover a leader election (up to
/// `election_timeout_max`) plus replication.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Bounds `fut` by [`REQUEST_TIMEOUT`].
pub(super) async fn with_deadline<T>(
    fut: impl std::future::Future<Output = T>,
) -> Result<T, StoreError> {
    tokio::time::timeout(REQUEST_TIMEOUT, fut)
        .await
        .map_err(|_| StoreError::Timeout {
            timeout: REQUEST_TIMEOUT,
        })
}
