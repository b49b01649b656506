//! A guard on the seam: the HTTP handlers reach the control plane's tables
//! only through [`crate::store::Store`]. A handler that read the Raft
//! store directly (`cp.store.local()`) or proposed a `Command` itself would
//! work today and silently miss the next table's rules (and any store that
//! replaces the Raft one), so it fails here instead.

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
            assert!(
                !source.contains(pattern),
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
