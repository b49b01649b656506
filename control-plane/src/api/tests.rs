//! A guard on the seam: the HTTP handlers reach the control plane's tables
//! only through [`crate::store::Store`]. A handler that read the Raft
//! store directly (`cp.store.local()`) or proposed a `Command` itself would
//! work today and silently miss the next table's rules (and any store that
//! replaces the Raft one), so it fails here instead. A capability's own
//! command type (`AccountCommand::..`) passed to its store trait is the
//! trait's input, not a way around it, so only a bare `Command::` counts.

use std::path::Path;

/// What reaching around the trait looks like in source.
const AROUND_THE_SEAM: [&str; 4] = [".store.", "Command::", "read_barrier", "cp.write("];

#[test]
fn the_api_reaches_the_tables_only_through_the_store_trait() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
    let mut scanned = 0;
    for entry in std::fs::read_dir(&dir).expect("the api source directory") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_none_or(|e| e != "rs") || path.ends_with("tests.rs") {
            continue;
        }
        let source = std::fs::read_to_string(&path).expect("a readable source file");
        for pattern in AROUND_THE_SEAM {
            let bare = source.match_indices(pattern).any(|(at, _)| {
                !source[..at]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_')
            });
            assert!(
                !bare,
                "{} contains {pattern:?}: go through crate::store::Store (cp.replicated()) instead",
                path.display()
            );
        }
        scanned += 1;
    }
    assert!(
        scanned >= 6,
        "only {scanned} api source files found in {dir:?}"
    );
}
