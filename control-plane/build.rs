//! Embeds the browser client (`../web/public`) in the binary: writes
//! `$OUT_DIR/web_files.rs`, a sorted table of `(path, bytes)` for every file
//! a browser may fetch. The one list of what is served is here: files with
//! the extensions in `SERVED`, in any folder except `node_modules`, `test`
//! and hidden ones, so that the client's dev tooling (npm packages, tests,
//! type-check config) never ends up in the binary or on the wire.

use std::path::{Path, PathBuf};

/// File extensions served to browsers.
const SERVED: &[&str] = &[
    "html",
    "js",
    "mjs",
    "css",
    "svg",
    "png",
    "ico",
    "woff2",
    "webmanifest",
];
/// Folders never served.
const SKIPPED_DIRS: &[&str] = &["node_modules", "test"];

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            if !SKIPPED_DIRS.contains(&name) {
                collect(root, &path, out);
            }
            continue;
        }
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if !SERVED.contains(&ext) {
            continue;
        }
        let rel = path
            .strip_prefix(root)
            .expect("under the web root")
            .components()
            .map(|c| c.as_os_str().to_str().expect("UTF-8 file name"))
            .collect::<Vec<_>>()
            .join("/");
        out.push((rel, path));
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest.join("..").join("web").join("public");
    let root = root.canonicalize().unwrap_or(root);
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    collect(&root, &root, &mut files);
    files.sort();
    let mut src = String::from("/// The web client's files, sorted by path.\npub(crate) static WEB_FILES: &[(&str, &[u8])] = &[\n");
    for (rel, path) in &files {
        src.push_str(&format!(
            "    ({rel:?}, include_bytes!({:?})),\n",
            path.display().to_string()
        ));
    }
    src.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo")).join("web_files.rs");
    std::fs::write(&out, src).unwrap_or_else(|e| panic!("writing {}: {e}", out.display()));
}
