//! Checks that every crate's modules import each other only downward: no
//! cycle between the top-level modules of a crate, and none between the
//! files of one module folder. A cycle means two modules can only be
//! understood (and tested) together, which is what the layering exists to
//! prevent.
//!
//! The check reads the sources as text: every `crate::<module>` path (in
//! `use` lines or inline) is an edge, and so is `super::<sibling>` inside a
//! folder. Comments are skipped. It is crude on purpose: it needs no
//! parser, and a false edge can only make it stricter.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without `//` comments (doc comments name modules
/// freely, e.g. to say who calls whom).
fn code(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The identifiers that follow `prefix` in `text`, e.g. `peer` in
/// `crate::peer::PeerCmd`. Grouped imports (`crate::{a, b::c}`) yield each
/// first segment.
fn paths_after(text: &str, prefix: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    for (i, _) in text.match_indices(prefix) {
        let before = text[..i].chars().last();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = text[i + prefix.len()..].trim_start();
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut item_start = true;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => item_start = true,
                    c if item_start && depth == 1 && !c.is_whitespace() => {
                        item_start = false;
                        found.insert(ident(&group[j..]));
                    }
                    _ => {}
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    found
}

/// A cycle in `graph`, as the list of nodes on it, if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match state.get(n) {
            Some(2) => return None,
            Some(1) => {
                let at = stack.iter().position(|s| s == n).unwrap();
                let mut cycle = stack[at..].to_vec();
                cycle.push(n.to_owned());
                return Some(cycle);
            }
            _ => {}
        }
        state.insert(n.to_owned(), 1);
        stack.push(n.to_owned());
        for m in graph.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, graph, state, stack) {
                return Some(c);
            }
        }
        stack.pop();
        state.insert(n.to_owned(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in graph.keys() {
        if let Some(c) = visit(n, graph, &mut state, &mut Vec::new()) {
            return Some(c);
        }
    }
    None
}

/// Module graphs of the crate: the top-level one (key ""), and one per
/// module folder, keyed by the folder's name, between its files other than
/// `mod.rs` (which declares and re-exports them, so it is above them all).
fn graphs(src: &Path) -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut graphs: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for path in files {
        let rel = path.strip_prefix(src).unwrap();
        let parts: Vec<String> = rel
            .with_extension("")
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        if parts == ["lib"] || parts == ["main"] {
            continue;
        }
        let text = code(&std::fs::read_to_string(&path).unwrap());
        let top = parts[0].clone();
        let deps = paths_after(&text, "crate::");
        let entry = graphs.entry(String::new()).or_default();
        let mine = entry.entry(top.clone()).or_default();
        mine.extend(deps.iter().filter(|d| **d != top).cloned());
        if parts.len() == 2 && parts[1] != "mod" {
            let file = parts[1].clone();
            let mut siblings = paths_after(&text, "super::");
            siblings.extend(
                paths_after(&text, &format!("crate::{top}::"))
                    .into_iter()
                    .filter(|s| s != &file),
            );
            let folder = graphs.entry(top.clone()).or_default();
            folder.entry(file).or_default().extend(siblings);
        }
    }
    // Within a folder, `super::X` may name an item of mod.rs rather than a
    // sibling file: keep only edges to sibling files.
    for (name, g) in graphs.iter_mut() {
        if name.is_empty() {
            continue;
        }
        let files: BTreeSet<String> = g.keys().cloned().collect();
        for deps in g.values_mut() {
            deps.retain(|d| files.contains(d));
        }
    }
    graphs
}

/// Every crate of the workspace, with the least number of top-level
/// modules the check must find there: a broken reader would pass
/// vacuously.
const CRATES: &[(&str, usize)] = &[
    ("protocol/src", 10),
    ("control-plane/src", 8),
    ("node/src", 10),
    ("loadtest/src", 8),
    ("harness/src", 4),
    ("src", 6),
];

#[test]
fn no_module_imports_another_in_a_cycle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (krate, at_least) in CRATES {
        let graphs = graphs(&root.join(krate));
        let top = &graphs[""];
        assert!(
            top.len() >= *at_least,
            "{krate}: only {} modules found",
            top.len()
        );
        for (folder, graph) in &graphs {
            if let Some(cycle) = find_cycle(graph) {
                let scope = if folder.is_empty() {
                    "between top-level modules".to_owned()
                } else {
                    format!("between the files of {folder}/")
                };
                panic!("{krate}: import cycle {scope}: {}", cycle.join(" -> "));
            }
        }
    }
    // The reader sees real edges: the node's peer actor uses its room.
    let node = graphs(&root.join("node/src"));
    assert!(node[""]["peer"].contains("room"), "peer uses the room");
}

#[test]
fn the_cycle_check_finds_cycles_in_grouped_imports() {
    let text = code(
        "use crate::{room::Room, peer::{self, PeerCmd}};\n// crate::node\nx = crate::relay::X;",
    );
    assert_eq!(
        paths_after(&text, "crate::"),
        ["peer", "relay", "room"].map(String::from).into()
    );
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    g.entry("a".into()).or_default().insert("b".into());
    g.entry("b".into()).or_default().insert("c".into());
    assert_eq!(find_cycle(&g), None);
    g.entry("c".into()).or_default().insert("a".into());
    assert_eq!(
        find_cycle(&g),
        Some(["a", "b", "c", "a"].map(String::from).to_vec())
    );
}
