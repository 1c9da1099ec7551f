//! The command line, in PostgreSQL's `postgres` style (getopt-like short options, `--name=value`
//! for any setting).

use std::path::PathBuf;

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Options {
    /// `-D DIR`.
    pub(crate) data_dir: Option<PathBuf>,
    /// `-p PORT`, `-c name=value` and `--name=value`, in order.
    pub(crate) settings: Vec<(String, String)>,
    /// `-C name`: print the setting and exit.
    pub(crate) show: Option<String>,
    /// `--describe-shmem[=table|json]`: print the shared-memory allocations and exit.
    pub(crate) describe_shmem: Option<ShmemFormat>,
    /// `-V` / `--version`.
    pub(crate) version: bool,
    /// `--help` / `-?`.
    pub(crate) help: bool,
    /// `--forkchild=<kind>:<slot>`: this process is an exec'd child of a postmaster.
    pub(crate) forkchild: Option<String>,
}

/// How `--describe-shmem` prints the allocations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ShmemFormat {
    /// `--describe-shmem` or `--describe-shmem=table`: aligned columns for people.
    Table,
    /// `--describe-shmem=json`: `{"total_size": …, "allocations": [{"name", "off", "size",
    /// "allocated_size"}, …]}`, for layout tests and tools that diff layouts.
    Json,
}

/// A command-line mistake; the message follows getopt's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CliError {
    /// An unknown option.
    #[error("invalid option -- '{0}'")]
    Invalid(String),
    /// An option without its argument.
    #[error("option requires an argument -- '{0}'")]
    MissingArgument(String),
    /// `-c name` or `--name` without `=value`.
    #[error("-c {0} requires a value")]
    NeedsValue(String),
    /// `--describe-shmem=` with a format other than `table` or `json`.
    #[error("invalid --describe-shmem format \"{0}\": use \"table\" or \"json\"")]
    ShmemFormat(String),
    /// A stray argument.
    #[error("invalid argument: \"{0}\"")]
    Stray(String),
}

/// The `--help` text.
pub(crate) const USAGE: &str = "postmaster is the pgipc server.

Usage:
  postmaster [OPTION]...

Options:
  -c NAME=VALUE      set run-time parameter
  -C NAME            print value of run-time parameter, then exit
  -D DATADIR         database directory (created on first run)
  -h HOSTNAME        host name or IP address to listen on
  -k DIRECTORY       Unix-domain socket location
  -p PORT            port number to listen on
  --NAME=VALUE       set run-time parameter
  --describe-shmem[=FORMAT]
                     print the shared memory allocations (FORMAT table, the default,
                     or json), then exit
  -V, --version      output version information, then exit
  -?, --help         show this help, then exit
";

fn split_setting(s: &str) -> Result<(String, String), CliError> {
    match s.split_once('=') {
        Some((n, v)) => Ok((n.replace('-', "_"), v.to_owned())),
        None => Err(CliError::NeedsValue(s.to_owned())),
    }
}

/// Parses the arguments after the program name.
pub(crate) fn parse(args: impl IntoIterator<Item = String>) -> Result<Options, CliError> {
    let mut o = Options::default();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--help" | "-?" => o.help = true,
            "--version" | "-V" => o.version = true,
            "--describe-shmem" | "--describe-shmem=table" => {
                o.describe_shmem = Some(ShmemFormat::Table)
            }
            "--describe-shmem=json" => o.describe_shmem = Some(ShmemFormat::Json),
            s if s.starts_with("--describe-shmem=") => {
                return Err(CliError::ShmemFormat(
                    s["--describe-shmem=".len()..].to_owned(),
                ))
            }
            s if s.starts_with("--forkchild=") => {
                o.forkchild = Some(s["--forkchild=".len()..].to_owned())
            }
            s if s.starts_with("--") => o.settings.push(split_setting(&s[2..])?),
            s if s.starts_with('-') && s.len() >= 2 => {
                let flag = &s[1..2];
                let inline = &s[2..];
                let mut value = || -> Result<String, CliError> {
                    if !inline.is_empty() {
                        Ok(inline.to_owned())
                    } else {
                        it.next()
                            .ok_or_else(|| CliError::MissingArgument(flag.to_owned()))
                    }
                };
                match flag {
                    "D" => o.data_dir = Some(PathBuf::from(value()?)),
                    "p" => o.settings.push(("port".into(), value()?)),
                    "h" => o.settings.push(("listen_addresses".into(), value()?)),
                    "k" => o
                        .settings
                        .push(("unix_socket_directories".into(), value()?)),
                    "c" => o.settings.push(split_setting(&value()?)?),
                    "C" => o.show = Some(value()?),
                    other => return Err(CliError::Invalid(other.to_owned())),
                }
            }
            other => return Err(CliError::Stray(other.to_owned())),
        }
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Options, CliError> {
        parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn options() {
        let o = p(&[
            "-D",
            "d",
            "-p5433",
            "-c",
            "max_connections=5",
            "--huge-pages=off",
            "-C",
            "port",
        ])
        .unwrap();
        assert_eq!(o.data_dir, Some(PathBuf::from("d")));
        assert_eq!(
            o.settings,
            vec![
                ("port".into(), "5433".into()),
                ("max_connections".into(), "5".into()),
                ("huge_pages".into(), "off".into())
            ]
        );
        assert_eq!(o.show.as_deref(), Some("port"));
        assert_eq!(p(&["-x"]), Err(CliError::Invalid("x".into())));
        assert_eq!(p(&["-D"]), Err(CliError::MissingArgument("D".into())));
        assert_eq!(p(&["-c", "port"]), Err(CliError::NeedsValue("port".into())));
        assert_eq!(p(&["junk"]), Err(CliError::Stray("junk".into())));
        assert_eq!(
            p(&["--describe-shmem"]).unwrap().describe_shmem,
            Some(ShmemFormat::Table)
        );
        assert_eq!(
            p(&["--describe-shmem=table"]).unwrap().describe_shmem,
            Some(ShmemFormat::Table)
        );
        assert_eq!(
            p(&["--describe-shmem=json"]).unwrap().describe_shmem,
            Some(ShmemFormat::Json)
        );
        assert_eq!(
            p(&["--describe-shmem=xml"]),
            Err(CliError::ShmemFormat("xml".into()))
        );
        assert_eq!(p(&["-D", "x"]).unwrap().describe_shmem, None);
        let o = p(&["--forkchild=backend:3", "-k", "/tmp/s", "-h", "*"]).unwrap();
        assert_eq!(o.forkchild.as_deref(), Some("backend:3"));
        assert_eq!(
            o.settings,
            vec![
                ("unix_socket_directories".into(), "/tmp/s".into()),
                ("listen_addresses".into(), "*".into())
            ]
        );
    }
}
