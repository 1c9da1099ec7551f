//! `pgipc_ctl`: start, stop, restart, reload and status of a server, PostgreSQL's pg_ctl for
//! this binary. It talks to the server only through the data directory's `postmaster.pid`
//! (pid and status line) and signals, exactly as pg_ctl does:
//!
//! ```text
//!  start    spawn `postmaster -D dir <opts>` in its own session, output to -l file;
//!           with -w (default) wait until postmaster.pid says "ready" for that pid
//!  stop     SIGTERM (smart) / SIGINT (fast, default) / SIGQUIT (immediate);
//!           with -w wait until postmaster.pid is gone
//!  restart  stop -m <mode>, then start with the options recorded in postmaster.opts
//!  reload   SIGHUP
//!  status   "server is running (PID: n)" + its command line, or exit 3
//! ```

use crate::datadir::{parse_pid_file, PID_FILE};
use pgipc_ipc::pid_alive;
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The file in which the postmaster records its command line.
pub(crate) const OPTS_FILE: &str = "postmaster.opts";

/// What `pgipc_ctl` was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CtlArgs {
    /// The subcommand.
    pub(crate) command: String,
    /// `-D`.
    pub(crate) data_dir: Option<PathBuf>,
    /// `-l`.
    pub(crate) log_file: Option<PathBuf>,
    /// `-o`: extra postmaster options, split on whitespace.
    pub(crate) options: Vec<String>,
    /// `-m`.
    pub(crate) mode: String,
    /// `-w` (true, the default) / `-W`.
    pub(crate) wait: bool,
    /// `-t` seconds.
    pub(crate) timeout: u64,
    /// `-s`: silent.
    pub(crate) silent: bool,
    /// `init`'s initdb options (`-A`, `--auth-local`, `--auth-host`, `--pwfile`, `-U`),
    /// given directly or inside `-o`.
    pub(crate) init: crate::initdb::InitOptions,
}

/// The usage text.
pub(crate) const USAGE: &str =
    "pgipc_ctl is a utility to initialize, start, stop, or control a pgipc server.

Usage:
  pgipc_ctl init[db] [-D DATADIR] [-s] [-o OPTIONS] [-A METHOD] [--auth-local=METHOD]
                     [--auth-host=METHOD] [--pwfile=FILE] [-U NAME]
  pgipc_ctl start    [-D DATADIR] [-l FILENAME] [-W] [-t SECS] [-s] [-o OPTIONS]
  pgipc_ctl stop     [-D DATADIR] [-m SHUTDOWN-MODE] [-W] [-t SECS] [-s]
  pgipc_ctl restart  [-D DATADIR] [-m SHUTDOWN-MODE] [-W] [-t SECS] [-s] [-o OPTIONS]
  pgipc_ctl reload   [-D DATADIR] [-s]
  pgipc_ctl status   [-D DATADIR]

Shutdown modes are:
  smart       quit after all clients have disconnected
  fast        quit directly, with proper shutdown (default)
  immediate   quit without complete shutdown; will lead to recovery on restart
";

/// A command line `pgipc_ctl` does not accept (pg_ctl's texts).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CtlArgsError {
    /// An option came last, without its value.
    #[error("option requires an argument -- '{0}'")]
    MissingArgument(&'static str),
    /// `-m` names no shutdown mode.
    #[error("unrecognized shutdown mode \"{0}\"")]
    UnknownMode(String),
    /// `-t` is not a number of seconds.
    #[error("invalid timeout")]
    InvalidTimeout,
    /// An option pg_ctl does not have.
    #[error("invalid option -- '{0}'")]
    InvalidOption(String),
    /// No `start`, `stop`, ...
    #[error("no operation specified")]
    NoOperation,
    /// An initdb option without its value.
    #[error("{0}")]
    Init(String),
}

/// Parses the arguments after the program name.
pub(crate) fn parse(args: impl IntoIterator<Item = String>) -> Result<CtlArgs, CtlArgsError> {
    let mut a = CtlArgs {
        command: String::new(),
        data_dir: None,
        log_file: None,
        options: Vec::new(),
        mode: "fast".into(),
        wait: true,
        timeout: 60,
        silent: false,
        init: Default::default(),
    };
    let mut it = args.into_iter();
    while let Some(s) = it.next() {
        if a.init
            .take(&s, &mut || it.next())
            .map_err(CtlArgsError::Init)?
        {
            continue;
        }
        let mut val = |flag: &'static str| it.next().ok_or(CtlArgsError::MissingArgument(flag));
        match s.as_str() {
            "-D" => a.data_dir = Some(PathBuf::from(val("D")?)),
            "-l" => a.log_file = Some(PathBuf::from(val("l")?)),
            "-o" => a
                .options
                .extend(val("o")?.split_whitespace().map(str::to_owned)),
            "-m" => {
                let m = val("m")?;
                a.mode = match m.as_str() {
                    "s" | "smart" => "smart".into(),
                    "f" | "fast" => "fast".into(),
                    "i" | "immediate" => "immediate".into(),
                    _ => return Err(CtlArgsError::UnknownMode(m)),
                }
            }
            "-t" => {
                a.timeout = val("t")?
                    .parse()
                    .map_err(|_| CtlArgsError::InvalidTimeout)?
            }
            "-w" => a.wait = true,
            "-W" => a.wait = false,
            "-s" => a.silent = true,
            c if !c.starts_with('-') && a.command.is_empty() => a.command = c.to_owned(),
            other => return Err(CtlArgsError::InvalidOption(other.to_owned())),
        }
    }
    if a.command.is_empty() {
        return Err(CtlArgsError::NoOperation);
    }
    if a.data_dir.is_none() {
        a.data_dir = std::env::var_os("PGDATA").map(PathBuf::from);
    }
    Ok(a)
}

fn pid_of(dir: &Path) -> Option<(i32, String)> {
    let text = fs::read_to_string(dir.join(PID_FILE)).ok()?;
    let pid = parse_pid_file(&text)?.pid;
    let status = text.lines().nth(7).unwrap_or("").to_owned();
    Some((pid, status))
}

/// Runs the subcommand; returns the exit code (messages on stdout/stderr as pg_ctl prints them).
pub(crate) fn run(a: &CtlArgs, postmaster: &Path) -> i32 {
    let Some(dir) = a.data_dir.clone() else {
        eprintln!(
            "pgipc_ctl: no database directory specified and environment variable PGDATA unset"
        );
        return 1;
    };
    // pg_ctl: owner-only until the data directory's mode is known, then the mask that mode
    // implies; the log file (and whatever the server it starts creates) follows it.
    crate::datadir::set_umask(crate::datadir::MODE_MASK_OWNER);
    if let Ok(md) = fs::metadata(&dir) {
        use std::os::unix::fs::MetadataExt;
        crate::datadir::set_umask(crate::datadir::create_mode_mask(md.mode()));
    }
    let say = |s: &str| {
        if !a.silent {
            println!("{s}");
        }
    };
    match a.command.as_str() {
        "init" | "initdb" => {
            // pg_ctl init passes -o to initdb.
            let mut o = a.init.clone();
            let mut words = a.options.iter().cloned();
            while let Some(w) = words.next() {
                match o.take(&w, &mut || words.next()) {
                    Ok(true) => {}
                    Ok(false) => {
                        eprintln!("initdb: error: unrecognized option \"{w}\"");
                        return 1;
                    }
                    Err(e) => {
                        eprintln!("initdb: error: {e}");
                        return 1;
                    }
                }
            }
            crate::initdb::init(&dir, &o)
        }
        "start" => start(a, &dir, postmaster, &say),
        "stop" => stop(a, &dir, &say, false),
        "restart" => {
            if pid_of(&dir).is_some_and(|(p, _)| pid_alive(p)) {
                let c = stop(a, &dir, &say, true);
                if c != 0 {
                    return c;
                }
            } else {
                eprintln!(
                    "pgipc_ctl: PID file \"{}\" does not exist",
                    dir.join(PID_FILE).display()
                );
                eprintln!("Is server running?");
                eprintln!("trying to start server anyway");
            }
            start(a, &dir, postmaster, &say)
        }
        "reload" => match pid_of(&dir) {
            Some((pid, _)) if pid_alive(pid) => {
                // SAFETY: plain kill.
                if unsafe { libc::kill(pid, libc::SIGHUP) } != 0 {
                    eprintln!(
                        "pgipc_ctl: could not send reload signal (PID: {pid}): {}",
                        std::io::Error::last_os_error()
                    );
                    return 1;
                }
                say("server signaled");
                0
            }
            _ => {
                eprintln!(
                    "pgipc_ctl: PID file \"{}\" does not exist",
                    dir.join(PID_FILE).display()
                );
                eprintln!("Is server running?");
                1
            }
        },
        "status" => match pid_of(&dir) {
            Some((pid, _)) if pid_alive(pid) => {
                println!("pgipc_ctl: server is running (PID: {pid})");
                if let Ok(o) = fs::read_to_string(dir.join(OPTS_FILE)) {
                    print!("{o}");
                }
                0
            }
            _ => {
                println!("pgipc_ctl: no server running");
                3
            }
        },
        other => {
            eprintln!("pgipc_ctl: unrecognized operation mode \"{other}\"");
            eprintln!("Try \"pgipc_ctl --help\" for more information.");
            1
        }
    }
}

fn start(a: &CtlArgs, dir: &Path, postmaster: &Path, say: &dyn Fn(&str)) -> i32 {
    if let Some((pid, _)) = pid_of(dir) {
        if pid_alive(pid) {
            eprintln!("pgipc_ctl: another server might be running; trying to start server anyway");
        }
    }
    let mut opts = a.options.clone();
    if opts.is_empty() && a.command == "restart" {
        // pg_ctl restart reuses the recorded command line.
        if let Ok(text) = fs::read_to_string(dir.join(OPTS_FILE)) {
            let words: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
            let mut it = words.into_iter().skip(1).peekable();
            while let Some(w) = it.next() {
                if w == "-D" {
                    it.next();
                } else {
                    opts.push(w);
                }
            }
        }
    }
    let mut cmd = Command::new(postmaster);
    cmd.arg("-D").arg(dir).args(&opts).stdin(Stdio::null());
    match &a.log_file {
        Some(f) => {
            let file = match OpenOptions::new().create(true).append(true).open(f) {
                Ok(f) => f,
                Err(e) => {
                    eprintln!(
                        "pgipc_ctl: could not open log file \"{}\": {e}",
                        f.display()
                    );
                    return 1;
                }
            };
            let Ok(err) = file.try_clone() else { return 1 };
            cmd.stdout(file).stderr(err);
        }
        None => {
            cmd.stdout(Stdio::inherit()).stderr(Stdio::inherit());
        }
    }
    // SAFETY: setsid is async-signal-safe; the server must not die with our terminal.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("pgipc_ctl: could not start server: {e}");
            return 1;
        }
    };
    if !a.wait {
        say("server starting");
        return 0;
    }
    if !a.silent {
        print!("waiting for server to start...");
    }
    let me = child.id() as i32;
    let deadline = Instant::now() + Duration::from_secs(a.timeout);
    loop {
        if let Some((pid, st)) = pid_of(dir) {
            if pid == me && st.trim() == "ready" {
                say(" done\nserver started");
                return 0;
            }
        }
        if let Ok(Some(_)) = child.try_wait() {
            say(" stopped waiting");
            eprintln!("pgipc_ctl: could not start server\nExamine the log output.");
            return 1;
        }
        if Instant::now() > deadline {
            say(" stopped waiting");
            eprintln!("pgipc_ctl: server did not start in time");
            return 1;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stop(a: &CtlArgs, dir: &Path, say: &dyn Fn(&str), restarting: bool) -> i32 {
    let pidfile = dir.join(PID_FILE);
    let Some((pid, _)) = pid_of(dir) else {
        eprintln!(
            "pgipc_ctl: PID file \"{}\" does not exist",
            pidfile.display()
        );
        eprintln!("Is server running?");
        return 1;
    };
    let sig = match a.mode.as_str() {
        "smart" => libc::SIGTERM,
        "immediate" => libc::SIGQUIT,
        _ => libc::SIGINT,
    };
    // SAFETY: plain kill.
    if unsafe { libc::kill(pid, sig) } != 0 {
        eprintln!(
            "pgipc_ctl: could not send stop signal (PID: {pid}): {}",
            std::io::Error::last_os_error()
        );
        return 1;
    }
    if !a.wait && !restarting {
        say("server shutting down");
        return 0;
    }
    if !a.silent {
        print!("waiting for server to shut down...");
    }
    let deadline = Instant::now() + Duration::from_secs(a.timeout);
    while pidfile.exists() && pid_alive(pid) {
        if Instant::now() > deadline {
            say(" failed");
            eprintln!("pgipc_ctl: server does not shut down");
            return 1;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Give a killed-but-not-yet-reaped postmaster a moment to disappear completely.
    while pid_alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    say(" done\nserver stopped");
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &[&str]) -> Result<CtlArgs, CtlArgsError> {
        parse(v.iter().map(|s| s.to_string()))
    }

    #[test]
    fn arguments() {
        let a = p(&["stop", "-D", "d", "-m", "i", "-W"]).unwrap();
        assert_eq!(a.command, "stop");
        assert_eq!(a.mode, "immediate");
        assert!(!a.wait);
        let a = p(&["start", "-o", "-p 5433 -c x=1", "-l", "log"]).unwrap();
        assert_eq!(a.options, vec!["-p", "5433", "-c", "x=1"]);
        assert_eq!(
            p(&["stop", "-m", "gentle"]).unwrap_err().to_string(),
            "unrecognized shutdown mode \"gentle\""
        );
        assert_eq!(p(&[]).unwrap_err(), CtlArgsError::NoOperation);
        assert_eq!(
            p(&["stop", "-D"]).unwrap_err().to_string(),
            "option requires an argument -- 'D'"
        );
    }
}
