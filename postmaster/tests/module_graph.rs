//! The postmaster's module graph has no cycle: no module imports, directly or through others,
//! a module that imports it (issue 12, "an acyclic postmaster"). The graph is read from the
//! sources: every `crate::<module>` path and every name in a `use crate::{...}` group is an
//! edge from the file it appears in (comments and doc links included, which only adds edges).
//! `super::` in these flat files names the file's own module (its `mod tests`), so it adds none.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The modules `text` refers to through `crate::`.
fn references(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("crate::") {
        // `pub(crate) ...` and `$crate::` are not paths into this crate's modules.
        let before = &rest[..i];
        let after = &rest[i + "crate::".len()..];
        rest = after;
        if before.ends_with('$') || before.ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = after.strip_prefix('{') {
            // Top-level names of the group: `{a, b::c, d::{e, f}}` gives a, b, d.
            let mut depth = 0usize;
            let mut name = String::new();
            let mut at_start = true;
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        if !name.is_empty() {
                            out.insert(std::mem::take(&mut name));
                        }
                        at_start = true;
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 && at_start {
                    if c.is_alphanumeric() || c == '_' {
                        name.push(c);
                        continue;
                    }
                    if !name.is_empty() {
                        out.insert(std::mem::take(&mut name));
                        at_start = false;
                    }
                }
            }
            if !name.is_empty() {
                out.insert(name);
            }
        } else {
            let name: String = after
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

/// Module name -> the modules it refers to, for every `src/*.rs` but the crate roots.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut g = BTreeMap::new();
    for entry in std::fs::read_dir(&src).expect("read postmaster/src") {
        let path = entry.expect("directory entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let module = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap()
            .to_owned();
        if module == "lib" || module == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read a module");
        let mut refs = references(&text);
        refs.remove(&module);
        g.insert(module, refs);
    }
    g
}

/// A cycle of `g` (as the list of modules along it, first repeated at the end), if any.
fn find_cycle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    // Depth-first search; 1 = on the current path, 2 = done.
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        mark: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        mark.insert(n.to_owned(), 1);
        path.push(n.to_owned());
        for m in g.get(n).into_iter().flatten() {
            match mark.get(m.as_str()) {
                Some(1) => {
                    let start = path.iter().position(|p| p == m).unwrap_or(0);
                    let mut cycle = path[start..].to_vec();
                    cycle.push(m.clone());
                    return Some(cycle);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(m, g, mark, path) {
                        return Some(c);
                    }
                }
            }
        }
        path.pop();
        mark.insert(n.to_owned(), 2);
        None
    }
    let mut mark = BTreeMap::new();
    for n in g.keys() {
        if !mark.contains_key(n.as_str()) {
            if let Some(c) = visit(n, g, &mut mark, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

#[test]
fn the_postmaster_module_graph_has_no_cycle() {
    let g = graph();
    assert!(g.len() > 10, "found only {} modules in src/", g.len());
    for (m, refs) in &g {
        for r in refs {
            assert!(
                g.contains_key(r),
                "{m} refers to crate::{r}, which is no module of src/"
            );
        }
    }
    if let Some(c) = find_cycle(&g) {
        panic!("module cycle: {}", c.join(" -> "));
    }
}

#[test]
fn the_reference_reader_sees_paths_groups_and_cycles() {
    let r = references(
        "use crate::a::X;\nuse crate::{b, c::{D, E}, d::F};\npub(crate) fn f() { crate::e::g(); }\n$crate::h",
    );
    let want: BTreeSet<String> = ["a", "b", "c", "d", "e"].map(String::from).into();
    assert_eq!(r, want);
    let mut g = BTreeMap::new();
    g.insert("x".to_owned(), BTreeSet::from(["y".to_owned()]));
    g.insert("y".to_owned(), BTreeSet::from(["z".to_owned()]));
    g.insert("z".to_owned(), BTreeSet::new());
    assert_eq!(find_cycle(&g), None);
    g.get_mut("z").unwrap().insert("x".to_owned());
    assert_eq!(
        find_cycle(&g),
        Some(["x", "y", "z", "x"].map(String::from).to_vec())
    );
}
