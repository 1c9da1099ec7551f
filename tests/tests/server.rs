//! The real server (this binary re-executed as the postmaster): start, `-C`, a refused second
//! start, each stop signal, no segment left behind, the crash interlock, reload, and bad input.
//! libtest-mimic on one test thread runs each scenario as a trial, in order; a re-executed copy
//! of this binary plays the "child that still has the segment attached" (it takes that role
//! before the harness starts).
//! A failed scenario kills the servers and children it started.

mod common;

use common::server::{postmaster, sysv_segment_exists, Builder, Stdout, TestServer};
use common::Owned;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Output, Stdio};
use std::time::{Duration, Instant};

fn scratch(name: &str) -> PathBuf {
    common::server::scratch("pgipc-pm", name)
}

/// The value of a step that must work; a failed one fails the scenario with its message.
fn ok<T>(r: Result<T, String>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

fn run(args: &[&str]) -> Output {
    let mut c = postmaster().args(args).stdin(Stdio::null()).spawn_output();
    c.take().expect("output")
}

trait SpawnOutput {
    fn spawn_output(&mut self) -> Option<Output>;
}
impl SpawnOutput for Command {
    /// Runs with a watchdog: a hung postmaster fails the test instead of hanging it.
    fn spawn_output(&mut self) -> Option<Output> {
        let mut child = self
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .ok()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if child.try_wait().ok()?.is_some() {
                return child.wait_with_output().ok();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("watchdog: postmaster did not exit");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn stderr_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A ready server on `dir` (socket directory and log beside it, Unix socket only), on `port`
/// or a free one.
fn start(dir: &Path, port: Option<u16>) -> TestServer {
    let mut b = Builder::beside(dir.to_path_buf()).stdout(Stdout::Inherit);
    if let Some(p) = port {
        b = b.port(p);
    }
    ok(b.start())
}

/// The id of the server's System V interlock (postmaster.pid line 7).
fn interlock_id(s: &TestServer) -> i32 {
    let l = s.pid_lines();
    l[6].split_whitespace()
        .nth(1)
        .expect("line 7")
        .parse()
        .expect("shmid")
}

/// The ids of the System V segments whose key is `key` (from /proc/sysvipc/shm).
fn segments_with_key(key: u64) -> Vec<i32> {
    let text = std::fs::read_to_string("/proc/sysvipc/shm").expect("/proc/sysvipc/shm");
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let k: i64 = f.next()?.parse().ok()?;
            let id: i32 = f.next()?.parse().ok()?;
            (k as u64 & 0xffff_ffff == key).then_some(id)
        })
        .collect()
}

fn show_answers_without_starting() {
    let dir = scratch("show");
    let o = run(&["-D", dir.to_str().unwrap(), "-C", "shared_memory_size"]);
    assert!(o.status.success(), "{}", stderr_of(&o));
    let mb: u64 = String::from_utf8_lossy(&o.stdout)
        .trim()
        .parse()
        .expect("a number of MB");
    assert!(mb >= 1);
    let o = run(&[
        "-D",
        dir.to_str().unwrap(),
        "-C",
        "num_os_semaphores",
        "-c",
        "max_connections=10",
    ]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "84"); // 10+16+8+10+2 + 38
    let o = run(&[
        "-D",
        dir.to_str().unwrap(),
        "-C",
        "shared_memory_size_in_huge_pages",
    ]);
    assert!(o.status.success());
    assert!(
        !dir.join("postmaster.pid").exists(),
        "-C must not start the server"
    );
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&dir).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o700);
    assert!(dir.join("postgresql.conf").exists());
    let o = run(&["-D", dir.to_str().unwrap(), "--describe-shmem"]);
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains("<anonymous>") && table.contains("<unused>"),
        "{table}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn start_refuse_second_stop_clean(sig: i32, word: &str) {
    let dir = scratch(&format!("stop{sig}"));
    let mut s = start(&dir, Some(5999));
    // This server's own segments (found through its pid file and interlock, not by what
    // appeared in /dev/shm: other processes create and remove segments meanwhile).
    let mut ours = Owned::of_running(&dir, s.pid() as u32).expect("this server's segments");
    let shmid = interlock_id(&s);
    assert!(sysv_segment_exists(shmid));
    let lines = s.pid_lines();
    assert_eq!(lines[0], s.pid().to_string());
    assert_eq!(lines[3], "5999");
    let second = run(&["-D", dir.to_str().unwrap()]);
    assert!(!second.status.success());
    let err = stderr_of(&second);
    assert!(
        err.contains("FATAL:  lock file \"postmaster.pid\" already exists"),
        "{err}"
    );
    assert!(
        err.contains(&format!("Is another postmaster (PID {})", s.pid())),
        "{err}"
    );
    ours.add(Owned::of_running(&dir, s.pid() as u32).expect("this server's segments"));
    ok(s.signal(sig));
    let st = ok(s.wait_exit());
    assert!(st.success(), "{st}: {}", s.log_text());
    let log = s.log_text();
    assert!(
        log.contains(&format!("received {word} shutdown request")),
        "{log}"
    );
    assert!(log.contains("database system is shut down"), "{log}");
    assert!(!dir.join("postmaster.pid").exists(), "pid file left behind");
    assert!(
        !sysv_segment_exists(shmid),
        "SysV segment {shmid} left behind"
    );
    let ipcs = Command::new("ipcs")
        .arg("-m")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    if let Ok(text) = ipcs {
        assert!(
            !text.split_whitespace().any(|w| w == shmid.to_string()),
            "ipcs still lists {shmid}"
        );
    }
    let left = ours.left();
    assert!(left.is_empty(), "left behind: {left:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn hold_child(shmid: i32) {
    // SAFETY: attaching a segment at an address of the kernel's choosing.
    let p = unsafe { libc::shmat(shmid, std::ptr::null(), 0) };
    assert_ne!(p as isize, -1, "shmat failed");
    println!("attached");
    let _ = std::io::stdout().flush();
    let mut buf = [0u8; 1];
    // Hold the attachment until the parent closes our stdin or kills us.
    let _ = std::io::stdin().read(&mut buf);
}

/// The child holding the segment, killed and reaped if the scenario fails half-way.
struct Holder(Child);

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn crashed_postmaster_with_attached_child_blocks_restart() {
    let dir = scratch("crash");
    let mut s = start(&dir, None);
    let shmid = interlock_id(&s);
    let mut holder = Holder(
        Command::new(std::env::current_exe().unwrap())
            .env("PGIPC_PM_HOLD", shmid.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("holder"),
    );
    let mut line = [0u8; 9];
    holder
        .0
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut line)
        .expect("holder said nothing");
    assert_eq!(&line, b"attached\n");
    ok(s.signal(libc::SIGKILL));
    ok(s.wait_exit());
    assert!(
        dir.join("postmaster.pid").exists(),
        "a killed postmaster leaves its pid file"
    );

    let refused = run(&["-D", dir.to_str().unwrap()]);
    assert!(!refused.status.success());
    let err = stderr_of(&refused);
    assert!(
        err.contains("pre-existing shared memory block (key"),
        "{err}"
    );
    assert!(
        err.contains(&format!("ID {shmid}) is still in use")),
        "{err}"
    );
    assert!(
        err.contains("HINT:  Terminate any old server processes"),
        "{err}"
    );

    drop(holder.0.stdin.take());
    holder.0.wait().expect("holder exit");
    let key = s.pid_lines()[6]
        .split_whitespace()
        .next()
        .expect("key")
        .parse::<u64>()
        .expect("key");
    let mut again = start(&dir, None);
    // The dead server's segment was removed: the only segment under the key is the new one.
    let under_key = segments_with_key(key);
    assert_eq!(
        under_key,
        vec![interlock_id(&again)],
        "segments under key {key}: {under_key:?}"
    );
    ok(again.signal(libc::SIGTERM));
    assert!(ok(again.wait_exit()).success());
    std::fs::remove_dir_all(&dir).unwrap();
}

fn sighup_reloads() {
    let dir = scratch("hup");
    let mut s = start(&dir, None);
    let conf = dir.join("postgresql.conf");
    let mut text = std::fs::read_to_string(&conf).unwrap();
    text.push_str("restart_after_crash = off\nmax_connections = 7\n");
    std::fs::write(&conf, text).unwrap();
    ok(s.signal(libc::SIGHUP));
    ok(s.wait_log(
        "cannot be changed without restarting",
        Duration::from_secs(10),
    ));
    let log = s.log_text();
    assert!(
        log.contains("received SIGHUP, reloading configuration files"),
        "{log}"
    );
    assert!(
        log.contains("parameter \"restart_after_crash\" changed to \"off\""),
        "{log}"
    );
    assert!(log
        .contains("parameter \"max_connections\" cannot be changed without restarting the server"));
    ok(s.signal(libc::SIGINT));
    assert!(ok(s.wait_exit()).success());
    std::fs::remove_dir_all(&dir).unwrap();
}

fn bad_input_is_one_clear_error() {
    let dir = scratch("bad");
    let d = dir.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["-c", "no_such_setting=1"], "FATAL:  unrecognized configuration parameter \"no_such_setting\""),
        (&["-c", "max_connections=lots"], "FATAL:  invalid value for parameter \"max_connections\": \"lots\""),
        (&["-c", "max_connections=100000000"], "FATAL:  100000000 is outside the valid range for parameter \"max_connections\" (1 .. 262143)"),
        (
            &["-c", "max_connections=200000", "-c", "max_worker_processes=100000"],
            "FATAL:  too many server processes configured",
        ),
        (&["-c", "huge_pages=sometimes"], "FATAL:  invalid value for parameter \"huge_pages\": \"sometimes\""),
        (&["-c", "port"], "-c port requires a value"),
        (&["-Z"], "invalid option -- 'Z'"),
    ];
    for (extra, want) in cases {
        let mut args = vec!["-D", d];
        args.extend_from_slice(extra);
        let o = run(&args);
        let err = stderr_of(&o);
        assert!(!o.status.success(), "{extra:?} should fail");
        assert!(err.contains(want), "{extra:?}: {err}");
        assert!(!err.contains("panicked"), "{extra:?}: {err}");
        assert!(err.matches("FATAL:").count() <= 1, "{extra:?}: {err}");
        assert!(
            !dir.join("postmaster.pid").exists(),
            "{extra:?} left a pid file"
        );
    }
    // A bad line in postgresql.conf names the file and line.
    std::fs::write(dir.join("postgresql.conf"), "port = 5432\nport = = 3\n").unwrap();
    let o = run(&["-D", d]);
    assert!(
        stderr_of(&o).contains("syntax error in file"),
        "{}",
        stderr_of(&o)
    );
    // Loose permissions are refused with PostgreSQL's detail.
    std::fs::write(dir.join("postgresql.conf"), "").unwrap();
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let o = run(&["-D", d]);
    let err = stderr_of(&o);
    assert!(
        err.contains("has invalid permissions")
            && err.contains("DETAIL:  Permissions should be u=rwx (0700)"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn main() -> ExitCode {
    if let Some(code) = common::server::serve_if_asked() {
        return code;
    }
    if let Ok(id) = std::env::var("PGIPC_PM_HOLD") {
        hold_child(id.parse().expect("shmid"));
        return ExitCode::SUCCESS;
    }
    let scenarios: [(&str, fn()); 7] = [
        (
            "show_answers_without_starting",
            show_answers_without_starting,
        ),
        (
            "sigint_fast_stop_refuses_second_start_leaves_nothing",
            || start_refuse_second_stop_clean(libc::SIGINT, "fast"),
        ),
        (
            "sigterm_smart_stop_refuses_second_start_leaves_nothing",
            || start_refuse_second_stop_clean(libc::SIGTERM, "smart"),
        ),
        (
            "sigquit_immediate_stop_refuses_second_start_leaves_nothing",
            || start_refuse_second_stop_clean(libc::SIGQUIT, "immediate"),
        ),
        (
            "crashed_postmaster_with_attached_child_blocks_restart",
            crashed_postmaster_with_attached_child_blocks_restart,
        ),
        ("sighup_reloads", sighup_reloads),
        ("bad_input_is_one_clear_error", bad_input_is_one_clear_error),
    ];
    // One test thread: the cases run one after the other on the main thread.
    pgipc_tests::harness::run_cases(&scenarios)
}
