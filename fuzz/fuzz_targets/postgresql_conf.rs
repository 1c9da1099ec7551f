//! `postgresql.conf` and the files it includes, through the server's public parser
//! (`guc::parse_config_file_from`), then every item through `Settings::set` (units, booleans,
//! enums, ranges).
//!
//! The input is a small tree of files kept in memory, never the real file system: the first
//! file is `/pgdata/postgresql.conf`, and a line `=== <relative path>` starts another one, so
//! `include`, `include_if_exists` and `include_dir` have something to find (and cycles, absent
//! files and directories to trip over). At most 64 reads per input keep include fan-out bounded.
//!
//! Beyond "no panic" it checks that every item and every syntax error names a real line of a
//! real file, that the line alone gives the same item or the same error, that an item's value
//! written back quoted parses to the same value, and that a value accepted by `Settings::set`
//! is accepted again, unchanged, in the form `SHOW` prints it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgipc_postmaster::guc::{
    parse_config_file_from, ConfigFiles, ConfigItem, GucError, Settings, Source,
};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};

const ROOT: &str = "/pgdata";
const MAX_OPS: usize = 64;

/// The files of one input.
struct MemFiles {
    files: BTreeMap<PathBuf, Vec<u8>>,
    ops: usize,
}

impl MemFiles {
    fn from_input(data: &[u8]) -> Self {
        let mut files = BTreeMap::new();
        let mut name = PathBuf::from(ROOT).join("postgresql.conf");
        let mut text = Vec::new();
        for line in data.split_inclusive(|&b| b == b'\n') {
            if let Some(next) = line.strip_prefix(b"=== ") {
                let next = String::from_utf8_lossy(next);
                files.insert(std::mem::take(&mut name), std::mem::take(&mut text));
                name = PathBuf::from(ROOT).join(next.trim());
            } else {
                text.extend_from_slice(line);
            }
        }
        files.insert(name, text);
        MemFiles { files, ops: 0 }
    }

    fn spend(&mut self) -> io::Result<()> {
        self.ops += 1;
        if self.ops > MAX_OPS {
            return Err(io::Error::other("fuzz budget of file operations spent"));
        }
        Ok(())
    }
}

impl ConfigFiles for MemFiles {
    fn read(&mut self, path: &Path) -> io::Result<String> {
        self.spend()?;
        match self.files.get(path) {
            // As `read_to_string`: text that is not UTF-8 is an error.
            Some(b) => String::from_utf8(b.clone())
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8")),
            None => Err(io::ErrorKind::NotFound.into()),
        }
    }

    fn list_dir(&mut self, path: &Path) -> io::Result<Vec<PathBuf>> {
        self.spend()?;
        let entries: Vec<PathBuf> = self
            .files
            .keys()
            .filter(|p| p.parent() == Some(path))
            .cloned()
            .collect();
        let is_dir = self.files.keys().any(|p| p.starts_with(path) && p != path);
        if is_dir {
            Ok(entries)
        } else {
            Err(io::ErrorKind::NotFound.into())
        }
    }
}

/// One line as a file of its own.
fn parse_alone(line: &str) -> Result<Vec<ConfigItem>, GucError> {
    let mut one = MemFiles::from_input(b"");
    one.files.insert(
        PathBuf::from(ROOT).join("postgresql.conf"),
        line.as_bytes().to_vec(),
    );
    parse_config_file_from(&PathBuf::from(ROOT).join("postgresql.conf"), &mut one)
}

/// The lines of the input's files, as the parser splits them, split once per file.
struct Lines<'a> {
    files: &'a MemFiles,
    split: HashMap<&'a Path, Vec<&'a str>>,
}

impl<'a> Lines<'a> {
    /// The `line`th (1-based) line of `file`.
    fn get(&mut self, file: &Path, line: usize) -> &'a str {
        let files = self.files;
        let (path, bytes) = files
            .files
            .get_key_value(file)
            .expect("item or error names a file of the input");
        let lines = self.split.entry(path.as_path()).or_insert_with(|| {
            std::str::from_utf8(bytes)
                .expect("a file that parsed is UTF-8")
                .lines()
                .collect()
        });
        assert!(line >= 1, "line numbers are 1-based");
        lines
            .get(line - 1)
            .unwrap_or_else(|| panic!("{} has no line {line}", file.display()))
    }
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

fuzz_target!(|data: &[u8]| {
    let mut files = MemFiles::from_input(data);
    let root = PathBuf::from(ROOT).join("postgresql.conf");
    let result = parse_config_file_from(&root, &mut files);
    let mut lines = Lines {
        files: &files,
        split: HashMap::new(),
    };
    match result {
        Ok(items) => {
            // A file included many times gives the same items again: check each line once.
            let mut seen = HashSet::new();
            for item in &items {
                if !seen.insert((&item.file, item.line)) {
                    continue;
                }
                let raw = lines.get(&item.file, item.line);
                // The line alone gives the same item (an include line never makes an item).
                let alone = parse_alone(raw).expect("the item's line parses alone");
                assert_eq!(alone.len(), 1);
                assert_eq!((&alone[0].name, &alone[0].value), (&item.name, &item.value));
                // Written back quoted, the value is the same.
                let quoted = format!("{} = {}", item.name, quote(&item.value));
                let again = parse_alone(&quoted).expect("a quoted value parses");
                assert_eq!((&again[0].name, &again[0].value), (&item.name, &item.value));
                check_setting(item);
            }
        }
        Err(GucError::Syntax { file, line, token }) => {
            let raw = lines.get(&file, line);
            match parse_alone(raw) {
                Err(GucError::Syntax {
                    line: 1, token: t, ..
                }) => assert_eq!(t, token),
                other => panic!("line {line} failed in its file but alone gives {other:?}"),
            }
        }
        Err(_) => {}
    }
});

/// A value the settings accept is accepted again in the form `SHOW` prints it, unchanged.
fn check_setting(item: &ConfigItem) {
    SETTINGS.with(|s| {
        let mut s = s.borrow_mut();
        let source = Source::File {
            path: item.file.clone(),
            line: item.line,
        };
        if s.set(&item.name, &item.value, source.clone()).is_err() {
            return;
        }
        let value = s.get(&item.name).cloned();
        let shown = s.show(&item.name).expect("a set value shows");
        s.set(&item.name, &shown, source)
            .unwrap_or_else(|e| panic!("{} = {shown:?} (as shown) fails: {e}", item.name));
        assert_eq!(
            s.get(&item.name).cloned(),
            value,
            "{} = {shown:?}",
            item.name
        );
    });
}
