//! `pg_file_settings` (PostgreSQL's `show_all_file_settings` over `ProcessConfigFile` with
//! `applySettings = false`): what the configuration file holds now and whether each entry
//! would be applied by a reload, without applying anything.

use super::{key, Action, Outcome, Settings};
use crate::conffile_impl::parse_config_file;
use crate::{valid_custom_name, Context, GucError, Source};
use std::collections::BTreeMap;
use std::path::Path;

/// One row of `pg_file_settings`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSettingRow {
    /// `sourcefile`: the file the entry (or error) is in; `None` where PostgreSQL has NULL.
    pub sourcefile: Option<String>,
    /// `sourceline`.
    pub sourceline: Option<u32>,
    /// `seqno`: 1-based position in reading order.
    pub seqno: u32,
    /// `name`; `None` for a row that only reports an error.
    pub name: Option<String>,
    /// `setting`, as written (unquoted).
    pub setting: Option<String>,
    /// `applied`: whether a reload now would apply this entry.
    pub applied: bool,
    /// `error`: why the entry could not be applied.
    pub error: Option<String>,
}

impl Settings {
    /// The rows of `pg_file_settings` for the file at `path` (and what it includes), as a
    /// reload with [`Context::Sighup`] would see them; nothing is applied.
    ///
    /// As PostgreSQL: if the file does not parse, every entry is unapplied and the syntax
    /// errors are rows with a NULL name; an unknown name marks its entry "unrecognized
    /// configuration parameter" and nothing is applied; otherwise an entry overridden by a
    /// later one for the same name is unapplied without error, and the last one is applied
    /// unless its value is refused or a restart would be needed ("setting could not be
    /// applied"); a restart-only setting that came from the file and is no longer in it adds
    /// a row without name, file or line saying it "cannot be changed without restarting the
    /// server". Unlike PostgreSQL, the parse-error rows come after the entries rather than
    /// at their place in the file.
    pub fn file_settings(&self, path: &Path) -> Vec<FileSettingRow> {
        let (items, errors) = parse_config_file(path);
        let mut rows: Vec<FileSettingRow> = items
            .iter()
            .enumerate()
            .map(|(k, it)| FileSettingRow {
                sourcefile: Some(it.file.display().to_string()),
                sourceline: Some(it.line),
                seqno: k as u32 + 1,
                name: Some(it.name.clone()),
                setting: Some(it.value.clone()),
                applied: false,
                error: None,
            })
            .collect();
        if !errors.is_empty() {
            for e in errors {
                let (file, line, msg) = match &e {
                    GucError::Syntax { file, line, .. } | GucError::SyntaxEol { file, line } => (
                        Some(file.display().to_string()),
                        Some(*line),
                        "syntax error".to_owned(),
                    ),
                    other => (None, None, other.to_string()),
                };
                rows.push(FileSettingRow {
                    sourcefile: file,
                    sourceline: line,
                    seqno: rows.len() as u32 + 1,
                    name: None,
                    setting: None,
                    applied: false,
                    error: Some(msg),
                });
            }
            return rows;
        }
        let mut unknown = false;
        for (row, it) in rows.iter_mut().zip(&items) {
            if self.var(key(&it.name).as_str()).is_none() && !valid_custom_name(&it.name) {
                row.error = Some("unrecognized configuration parameter".to_owned());
                unknown = true;
            }
        }
        if unknown {
            return rows;
        }
        let mut last: BTreeMap<String, usize> = BTreeMap::new();
        for (k, it) in items.iter().enumerate() {
            last.insert(key(&it.name), k);
        }
        // A restart-only setting taken from the file that the file no longer has would need
        // a restart to go back to its default: a row of its own, without file or line.
        for (k, v) in self.vars() {
            if v.reset.source == Source::File
                && v.def.context < Context::Sighup
                && !last.contains_key(k.as_ref())
            {
                rows.push(FileSettingRow {
                    sourcefile: None,
                    sourceline: None,
                    seqno: rows.len() as u32 + 1,
                    name: None,
                    setting: None,
                    applied: false,
                    error: Some(format!(
                        "parameter \"{}\" cannot be changed without restarting the server",
                        v.name
                    )),
                });
            }
        }
        let mut trial = self.clone();
        for (k, it) in items.iter().enumerate() {
            if last.get(&key(&it.name)) != Some(&k) {
                continue;
            }
            let r = trial.set_option(
                &it.name,
                Some(&it.value),
                Context::Sighup,
                Source::File,
                Action::Set,
                Some((it.file.clone(), it.line)),
                true,
            );
            match r {
                Ok(Outcome::Applied | Outcome::NotApplied) => rows[k].applied = true,
                Ok(Outcome::PendingRestart) | Err(_) => {
                    rows[k].error = Some("setting could not be applied".to_owned());
                }
            }
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// Writes `text` as a configuration file of its own and returns its path.
    fn conf(tag: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "pgipc-guc-file-settings-{}-{tag}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let p = dir.join("postgresql.conf");
        std::fs::write(&p, text).expect("write conf");
        p
    }

    /// `(line, name, applied, error)` of a row.
    type Summary<'a> = (Option<u32>, Option<&'a str>, bool, Option<&'a str>);

    fn summary(rows: &[FileSettingRow]) -> Vec<Summary<'_>> {
        rows.iter()
            .map(|r| {
                (
                    r.sourceline,
                    r.name.as_deref(),
                    r.applied,
                    r.error.as_deref(),
                )
            })
            .collect()
    }

    fn started_with(path: &Path) -> Settings {
        let mut s = Settings::new();
        s.apply_file(path).expect("server start");
        s
    }

    #[test]
    fn duplicates_bad_values_and_restart_only_changes_as_postgresql_reports_them() {
        let p = conf("mixed", "max_connections = 100\nwork_mem = '4MB'\n");
        let s = started_with(&p);
        std::fs::write(
            &p,
            "max_connections = 100\nwork_mem = '8MB'\nwork_mem = 16MB\nmy.custom = 'x'\n\
             max_connections = 50\nstatement_timeout = 'abc'\n",
        )
        .expect("edit");
        let rows = s.file_settings(&p);
        assert_eq!(
            summary(&rows),
            vec![
                (Some(1), Some("max_connections"), false, None),
                (Some(2), Some("work_mem"), false, None),
                (Some(3), Some("work_mem"), true, None),
                (Some(4), Some("my.custom"), true, None),
                (
                    Some(5),
                    Some("max_connections"),
                    false,
                    Some("setting could not be applied")
                ),
                (
                    Some(6),
                    Some("statement_timeout"),
                    false,
                    Some("setting could not be applied")
                ),
            ]
        );
        assert_eq!(rows[2].setting.as_deref(), Some("16MB"));
        assert_eq!(
            rows.iter().map(|r| r.seqno).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5, 6]
        );
        assert!(rows[0]
            .sourcefile
            .as_deref()
            .unwrap_or("")
            .ends_with("postgresql.conf"));
        // Nothing was applied.
        assert_eq!(s.show("work_mem").expect("show"), "4MB");
    }

    #[test]
    fn an_unchanged_restart_only_value_is_applied() {
        let p = conf("same", "max_connections = 100\n");
        let s = started_with(&p);
        let rows = s.file_settings(&p);
        assert_eq!(
            summary(&rows),
            vec![(Some(1), Some("max_connections"), true, None)]
        );
    }

    #[test]
    fn a_restart_only_setting_removed_from_the_file_has_a_row_of_its_own() {
        let p = conf("removed", "max_connections = 50\nwork_mem = 8MB\n");
        let s = started_with(&p);
        std::fs::write(&p, "work_mem = 16MB\n").expect("edit");
        let rows = s.file_settings(&p);
        assert_eq!(
            summary(&rows),
            vec![
                (Some(1), Some("work_mem"), true, None),
                (
                    None,
                    None,
                    false,
                    Some("parameter \"max_connections\" cannot be changed without restarting the server")
                ),
            ]
        );
        assert_eq!((rows[1].seqno, rows[1].sourcefile.as_deref()), (2, None));
    }

    #[test]
    fn an_unknown_name_stops_everything() {
        let p = conf("unknown", "work_mem = 8MB\nbogus_param = 1\n");
        let rows = Settings::new().file_settings(&p);
        assert_eq!(
            summary(&rows),
            vec![
                (Some(1), Some("work_mem"), false, None),
                (
                    Some(2),
                    Some("bogus_param"),
                    false,
                    Some("unrecognized configuration parameter")
                ),
            ]
        );
    }

    #[test]
    fn a_syntax_error_is_a_row_without_a_name() {
        let p = conf("syntax", "work_mem = 8MB\nthis is = bad\n");
        let rows = Settings::new().file_settings(&p);
        assert_eq!(
            summary(&rows),
            vec![
                (Some(1), Some("work_mem"), false, None),
                (Some(2), None, false, Some("syntax error")),
            ]
        );
        assert_eq!(rows[1].setting, None);
        assert_eq!(rows[1].seqno, 2);
    }
}
