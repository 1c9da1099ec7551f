//! `postgresql.conf` and the files it includes, through the settings crate's reader
//! (`pgipc_guc::conffile::parse_config_file`), then every item through `Settings::set`
//! (units, booleans, enums, ranges).
//!
//! The input is a small tree of files: the first file is `postgresql.conf`, and a line
//! `=== <relative path>` starts another one, so `include`, `include_if_exists` and
//! `include_dir` have something to find (and cycles, absent files and directories to trip
//! over). The tree is written to a scratch directory of this process for each input (the
//! reader reads the real file system, as PostgreSQL's does); inputs whose file names or
//! include targets leave that directory (absolute paths, `..`) are skipped, so that nothing
//! outside it is read (`include '/dev/zero'` would never end).
//!
//! Beyond "no panic" it checks that every item and every syntax error names a real line of a
//! real file, that the line alone gives the same item or the same error, that an item's value
//! written back quoted parses to the same value, and that a value accepted by `Settings::set`
//! is accepted again, unchanged, in the form `SHOW` prints it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgipc_guc::conffile::{parse_config_file, parse_line, ConfigItem};
use pgipc_guc::{GucError, Settings, Source};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::path::{Component, Path, PathBuf};

/// The scratch directory of this process.
fn root() -> PathBuf {
    std::env::temp_dir().join(format!("pgipc-fuzz-conf-{}", std::process::id()))
}

/// Whether `p` stays inside the scratch directory (relative, no `..`).
fn stays_inside(p: &str) -> bool {
    let p = Path::new(p);
    !p.as_os_str().is_empty()
        && p.components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

/// The input's files (relative path → text), or `None` when it names a path outside.
fn files_of(data: &[u8]) -> Option<BTreeMap<PathBuf, Vec<u8>>> {
    let mut files = BTreeMap::new();
    let mut name = PathBuf::from("postgresql.conf");
    let mut text = Vec::new();
    for line in data.split_inclusive(|&b| b == b'\n') {
        if let Some(next) = line.strip_prefix(b"=== ") {
            let next = String::from_utf8_lossy(next).trim().to_owned();
            if !stays_inside(&next) {
                return None;
            }
            files.insert(std::mem::take(&mut name), std::mem::take(&mut text));
            name = PathBuf::from(next);
        } else {
            text.extend_from_slice(line);
        }
    }
    files.insert(name, text);
    // Include targets must stay inside too.
    for text in files.values() {
        for raw in String::from_utf8_lossy(text).split('\n') {
            if let Ok(Some((n, v))) = parse_line(raw) {
                let n = n.to_ascii_lowercase();
                if n.starts_with("include") && !stays_inside(&v) {
                    return None;
                }
            }
        }
    }
    Some(files)
}

/// Writes the tree under a fresh scratch directory; `false` if it cannot be laid out (a path
/// that is both a file and a directory).
fn write_tree(root: &Path, files: &BTreeMap<PathBuf, Vec<u8>>) -> bool {
    let _ = std::fs::remove_dir_all(root);
    if std::fs::create_dir_all(root).is_err() {
        return false;
    }
    for (rel, text) in files {
        let p = root.join(rel);
        if let Some(d) = p.parent() {
            if std::fs::create_dir_all(d).is_err() {
                return false;
            }
        }
        if std::fs::write(&p, text).is_err() {
            return false;
        }
    }
    true
}

/// `value` as a quoted configuration value.
fn quote(value: &str) -> String {
    let mut q = String::from("'");
    for c in value.chars() {
        match c {
            '\'' => q.push_str("''"),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            '\r' => q.push_str("\\r"),
            c => q.push(c),
        }
    }
    q.push('\'');
    q
}

thread_local! {
    static SETTINGS: RefCell<Settings> = RefCell::new(Settings::new());
}

/// The `line`th (1-based) line of `file`, as the reader splits it.
fn line_of(file: &Path, line: u32) -> String {
    let bytes = std::fs::read(file).expect("item or error names a file of the input");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    assert!(line >= 1, "line numbers are 1-based");
    text.split('\n')
        .nth(line as usize - 1)
        .unwrap_or_else(|| panic!("{} has no line {line}", file.display()))
        .to_owned()
}

fuzz_target!(|data: &[u8]| {
    let Some(files) = files_of(data) else {
        return;
    };
    let root = root();
    if !write_tree(&root, &files) {
        return;
    }
    let (items, errors) = parse_config_file(&root.join("postgresql.conf"));
    // A file included many times gives the same items again: check each line once.
    let mut seen = HashSet::new();
    for item in &items {
        assert!(item.file.starts_with(&root), "{}", item.file.display());
        if !seen.insert((item.file.clone(), item.line)) {
            continue;
        }
        let raw = line_of(&item.file, item.line);
        // The line alone gives the same item (an include line never makes an item).
        let alone = parse_line(&raw).expect("the item's line parses alone");
        assert_eq!(alone, Some((item.name.clone(), item.value.clone())));
        // Written back quoted, the value is the same.
        let quoted = format!("{} = {}", item.name, quote(&item.value));
        let again = parse_line(&quoted).expect("a quoted value parses");
        assert_eq!(again, Some((item.name.clone(), item.value.clone())));
        check_setting(item);
    }
    for e in &errors {
        match e {
            GucError::Syntax { file, line, token } => {
                let raw = line_of(file, *line);
                assert_eq!(parse_line(&raw), Err(Some(token.clone())), "{e}");
            }
            GucError::SyntaxEol { file, line } => {
                let raw = line_of(file, *line);
                assert_eq!(parse_line(&raw), Err(None), "{e}");
            }
            _ => {}
        }
    }
});

/// A value the settings accept is accepted again in the form `SHOW` prints it, unchanged.
fn check_setting(item: &ConfigItem) {
    SETTINGS.with(|s| {
        let mut s = s.borrow_mut();
        if s.set(&item.name, &item.value, Source::File).is_err() {
            return;
        }
        let value = s.get(&item.name).cloned();
        let shown = s.show(&item.name).expect("a set value shows");
        s.set(&item.name, &shown, Source::File)
            .unwrap_or_else(|e| panic!("{} = {shown:?} (as shown) fails: {e}", item.name));
        assert_eq!(
            s.get(&item.name).cloned(),
            value,
            "{} = {shown:?}",
            item.name
        );
    });
}
