//! The data directory interlock and the accept loop under stress, with the real binaries:
//! ten postmasters released at the same instant on one data directory (exactly one runs, and
//! nothing is left after it stops), an empty `postmaster.pid` (the start stops, the file
//! stays), a postmaster out of file descriptors (it backs off instead of spinning and serves
//! again once descriptors return), and the modes of the files the server and `pgipc_ctl`
//! create.
//!
//! A `libtest-mimic` harness on one thread; every child is killed by `Drop` if a case fails,
//! every wait has a deadline, and a watchdog ends the binary if something still hangs.

mod common;

use common::server::{
    free_port, pgipc_ctl, pid_lines, postmaster, quit_and_reap, server_exe, startup_packet,
    sysv_segment_exists, wait_exit_of, wait_for, wait_ready_of, watchdog, Builder, Stdout,
    TestServer, RUN_AS,
};
use libtest_mimic::{Arguments, Failed, Trial};
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// Rounds of the ten-postmaster race (the first on a data directory that does not exist yet).
const RACE_ROUNDS: usize = 20;
const RACERS: usize = 10;

type Res = Result<(), Failed>;

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+).into());
        }
    };
}

fn scratch(name: &str) -> PathBuf {
    let d = common::server::scratch("pgipc-lf", name);
    std::fs::create_dir_all(&d).expect("scratch dir");
    d
}

/// Runs a command to its end, killing it after 60 s.
fn run(cmd: &mut Command) -> Result<Output, Failed> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait()?.is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("watchdog: {cmd:?} did not finish").into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(child.wait_with_output()?)
}

/// A child process killed on drop (a failing case must not leave a server behind).
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Drop for Proc {
    fn drop(&mut self) {
        // SIGQUIT first: an immediate shutdown still removes the segments and files.
        quit_and_reap(&mut self.child);
    }
}

impl Proc {
    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    fn stop(&mut self) -> Result<ExitStatus, Failed> {
        // SAFETY: kill on our own child's pid.
        unsafe { libc::kill(self.pid(), libc::SIGINT) };
        wait_exit_of(&mut self.child, Duration::from_secs(30))
            .map_err(|e| format!("{e}: {}", self.log_text()).into())
    }
}

/// The command line of a postmaster on `dir`, Unix socket only (no TCP).
fn postmaster_args(dir: &Path, sock: &Path, port: u16) -> Vec<String> {
    common::server::postmaster_args(dir, sock, port, "")
}

fn wait_ready(dir: &Path, p: &mut Proc) -> Res {
    wait_ready_of(&mut p.child, dir, Duration::from_secs(60))
        .map_err(|e| format!("postmaster: {e}: {}", p.log_text()).into())
}

/// A ready postmaster on `dir` (Unix socket only), its stderr in `log`.
fn start(dir: &Path, sock: &Path, port: u16, log: PathBuf) -> Result<TestServer, Failed> {
    Ok(
        Builder::with_paths(dir.to_path_buf(), sock.to_path_buf(), log)
            .port(port)
            .stdout(Stdout::Null)
            .ready_within(Duration::from_secs(60))
            .start()?,
    )
}

/// The System V interlock segment named on line 7 of the pid file, if any.
fn sysv_shmid(lines: &[String]) -> Option<i32> {
    lines.get(6)?.split_whitespace().nth(1)?.parse().ok()
}

/// The DSM control segment of the server whose interlock is `shmid`: its handle is recorded
/// in the interlock's header, and POSIX DSM segments are `/dev/shm/PostgreSQL.<handle>`.
fn dsm_control_file(shmid: i32) -> Result<Option<PathBuf>, Failed> {
    let il = pgipc_shmem::Interlock::attach_existing(shmid).map_err(|e| e.to_string())?;
    let h = il.header().dsm_control();
    drop(il);
    let p = PathBuf::from(format!("/dev/shm/PostgreSQL.{h}"));
    Ok((h != 0 && p.exists()).then_some(p))
}

/// Parks `n` shells that each `exec` a postmaster once a line arrives on their stdin, then
/// releases them all at once.
fn race_round(round: usize, base: &Path, dir: &Path, sock: &Path, port: u16) -> Res {
    let mut procs = Vec::new();
    for i in 0..RACERS {
        let log = base.join(format!("round{round}-{i}.log"));
        let child = Command::new("sh")
            .arg("-c")
            .arg("read go && exec \"$0\" \"$@\"")
            .arg(server_exe())
            .args(postmaster_args(dir, sock, port))
            .env(RUN_AS, "postmaster")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(File::create(&log)?)
            .spawn()?;
        procs.push(Proc { child, log });
    }
    // Every shell sleeping in its read.
    wait_for("the racers to park", Duration::from_secs(30), || {
        procs.iter().all(|p| {
            std::fs::read_to_string(format!("/proc/{}/wchan", p.pid()))
                .is_ok_and(|w| w.contains("pipe_read") || w.contains("pipe_wait"))
        })
    })?;
    let mut gates: Vec<_> = procs
        .iter_mut()
        .map(|p| p.child.stdin.take().expect("stdin"))
        .collect();
    for g in &mut gates {
        g.write_all(b"\n")?;
    }
    drop(gates);

    // All but one give up; the one left becomes ready.
    // (A timeout here is judged just below: more than one still running.)
    let _ = wait_for(
        "nine of ten postmasters to exit",
        Duration::from_secs(30),
        || procs.iter_mut().filter_map(|p| p.exited()).count() >= RACERS - 1,
    );
    let running: Vec<usize> = (0..RACERS)
        .filter(|&i| procs[i].exited().is_none())
        .collect();
    ensure!(
        running.len() == 1,
        "round {round}: {} postmasters still running, their logs: {:?}",
        running.len(),
        running
            .iter()
            .map(|&i| procs[i].log_text())
            .collect::<Vec<_>>()
    );
    let w = running[0];
    wait_ready(dir, &mut procs[w])?;
    let winner = procs[w].pid();
    for (i, p) in procs.iter_mut().enumerate().filter(|(i, _)| *i != w) {
        let st = p.exited().expect("exited");
        let log = p.log_text();
        ensure!(!st.success(), "round {round}: racer {i} exited {st}: {log}");
        ensure!(
            log.contains("FATAL:  lock file \"postmaster.pid\" already exists"),
            "round {round}: racer {i}: {log}"
        );
        ensure!(
            log.contains(&format!(
                "HINT:  Is another postmaster (PID {winner}) running in data directory"
            )),
            "round {round}: racer {i}: {log}"
        );
    }
    // The winner serves, and the files and segments it holds go away when it stops.
    let lines = pid_lines(dir);
    let shmid = sysv_shmid(&lines);
    let Some(id) = shmid else {
        return Err(format!("round {round}: no interlock on line 7: {lines:?}").into());
    };
    let Some(dsm) = dsm_control_file(id)? else {
        return Err(format!("round {round}: no DSM control segment in /dev/shm").into());
    };
    let mut c = UnixStream::connect(sock.join(format!(".s.PGSQL.{port}")))?;
    startup_answer(&mut c)?;
    drop(c);
    let st = procs[w].stop()?;
    ensure!(st.success(), "winner exited {st}: {}", procs[w].log_text());
    let leftover: Vec<PathBuf> = [
        dir.join("postmaster.pid"),
        sock.join(format!(".s.PGSQL.{port}")),
        sock.join(format!(".s.PGSQL.{port}.lock")),
    ]
    .into_iter()
    .chain([dsm.clone()])
    .filter(|p| p.exists())
    .collect();
    ensure!(
        leftover.is_empty(),
        "round {round}: left behind {leftover:?}"
    );
    ensure!(
        !sysv_segment_exists(id),
        "round {round}: SysV segment {id} left behind"
    );
    println!(
        "    round {round}: pid {winner} won, {} refused; {} and SysV segment {id} removed",
        RACERS - 1,
        dsm.display()
    );
    Ok(())
}

/// Sends a startup packet and reads the first answer byte ('R': the server took the client).
fn startup_answer(c: &mut UnixStream) -> Res {
    c.set_read_timeout(Some(Duration::from_secs(20)))?;
    c.write_all(&startup_packet())?;
    let mut b = [0u8; 1];
    c.read_exact(&mut b)?;
    ensure!(
        b[0] == b'R',
        "answer {:?} instead of Authentication",
        b[0] as char
    );
    Ok(())
}

fn ten_postmasters_at_once_exactly_one_runs() -> Res {
    let base = scratch("race");
    let dir = base.join("data");
    let sock = base.join("sock");
    std::fs::create_dir_all(&sock)?;
    let port = free_port();
    for round in 0..RACE_ROUNDS {
        race_round(round, &base, &dir, &sock, port)?;
    }
    std::fs::remove_dir_all(&base)?;
    Ok(())
}

fn empty_pid_file_stops_the_start_and_stays() -> Res {
    let base = scratch("empty");
    let dir = base.join("data");
    let sock = base.join("sock");
    std::fs::create_dir_all(&sock)?;
    let port = free_port();
    // A data directory that has run once.
    let mut p = start(&dir, &sock, port, base.join("first.log"))?;
    ensure!(p.stop()?.success(), "{}", p.log_text());
    let pid_file = dir.join("postmaster.pid");
    File::create(&pid_file)?;
    let o = run(postmaster().args(postmaster_args(&dir, &sock, port)))?;
    let err = String::from_utf8_lossy(&o.stderr);
    ensure!(!o.status.success(), "started anyway: {err}");
    ensure!(
        err.contains("FATAL:  lock file \"postmaster.pid\" is empty"),
        "{err}"
    );
    ensure!(
        err.contains(
            "HINT:  Either another server is starting, or the lock file is the remnant of a \
             previous server startup crash."
        ),
        "{err}"
    );
    ensure!(
        std::fs::read(&pid_file)?.is_empty(),
        "the empty lock file was touched"
    );
    ensure!(
        !sock.join(format!(".s.PGSQL.{port}")).exists(),
        "a socket was opened"
    );
    // Garbage is refused the same way (PostgreSQL: "bogus data in lock file").
    std::fs::write(&pid_file, "not a pid\n")?;
    let o = run(postmaster().args(postmaster_args(&dir, &sock, port)))?;
    let err = String::from_utf8_lossy(&o.stderr);
    ensure!(!o.status.success(), "started anyway: {err}");
    ensure!(
        err.contains("FATAL:  bogus data in lock file \"postmaster.pid\": \"not a pid\""),
        "{err}"
    );
    ensure!(
        std::fs::read_to_string(&pid_file)? == "not a pid\n",
        "touched"
    );
    // Removed by hand (as the hint suggests), the server starts again.
    std::fs::remove_file(&pid_file)?;
    let mut p = start(&dir, &sock, port, base.join("again.log"))?;
    ensure!(p.stop()?.success(), "{}", p.log_text());
    std::fs::remove_dir_all(&base)?;
    Ok(())
}

fn cpu_ticks(pid: i32) -> Result<u64, Failed> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest = stat.rsplit_once(')').ok_or("bad stat")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Ok(f[11].parse::<u64>()? + f[12].parse::<u64>()?)
}

fn lowest_free_fd(pid: i32) -> Result<u64, Failed> {
    let mut used: Vec<u64> = std::fs::read_dir(format!("/proc/{pid}/fd"))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    used.sort_unstable();
    Ok((0..)
        .find(|n| used.binary_search(n).is_err())
        .expect("a free number"))
}

fn get_nofile(pid: i32) -> Result<libc::rlimit, Failed> {
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: no new limit (null), a valid pointer for the current one; our own child.
    let r = unsafe { libc::prlimit(pid, libc::RLIMIT_NOFILE, std::ptr::null(), &mut old) };
    ensure!(r == 0, "prlimit: {}", std::io::Error::last_os_error());
    Ok(old)
}

fn set_nofile(pid: i32, new: libc::rlimit) -> Res {
    // SAFETY: a valid pointer to the new limit, none for the old one; our own child.
    let r = unsafe { libc::prlimit(pid, libc::RLIMIT_NOFILE, &new, std::ptr::null_mut()) };
    ensure!(r == 0, "prlimit: {}", std::io::Error::last_os_error());
    Ok(())
}

fn out_of_descriptors_backs_off_and_recovers() -> Res {
    let base = scratch("emfile");
    let dir = base.join("data");
    let sock = base.join("sock");
    std::fs::create_dir_all(&sock)?;
    let port = free_port();
    let mut p = start(&dir, &sock, port, base.join("server.log"))?;
    let pid = p.pid();
    let path = sock.join(format!(".s.PGSQL.{port}"));
    // Warm: a client is served.
    startup_answer(&mut UnixStream::connect(&path)?)?;
    std::thread::sleep(Duration::from_millis(200));

    // No descriptor number left below the soft limit: the next accept() fails with EMFILE.
    let free = lowest_free_fd(pid)?;
    let old = get_nofile(pid)?;
    set_nofile(
        pid,
        libc::rlimit {
            rlim_cur: free,
            rlim_max: old.rlim_max,
        },
    )?;
    let mut waiting = UnixStream::connect(&path)?;
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let t0 = cpu_ticks(pid)?;
    let wall = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    let used = (cpu_ticks(pid)? - t0) as f64 / hz;
    let share = used / wall.elapsed().as_secs_f64();
    let log = p.log_text();
    let fails = log
        .matches("LOG:  could not accept new connection: Too many open files")
        .count();
    println!(
        "    out of descriptors: postmaster used {:.1}% CPU over {:.2} s, {fails} accept failures logged",
        share * 100.0,
        wall.elapsed().as_secs_f64()
    );
    // Restore before judging, so the server is usable whatever the outcome.
    set_nofile(pid, old)?;
    let cheap = share < 0.05;
    ensure!(cheap, "postmaster used {:.1}% CPU", share * 100.0);
    ensure!(fails >= 1, "no accept failure logged: {log}");
    // Roughly one attempt per 100 ms, not a spin.
    ensure!(fails <= 60, "{fails} accept failures logged in ~2.3 s");

    // Descriptors are back: the client that waited in the backlog is served, so is a new one.
    startup_answer(&mut waiting)?;
    startup_answer(&mut UnixStream::connect(&path)?)?;
    drop(waiting);
    ensure!(p.stop()?.success(), "{}", p.log_text());
    std::fs::remove_dir_all(&base)?;
    Ok(())
}

fn mode_of(p: &Path) -> Result<u32, Failed> {
    Ok(std::fs::metadata(p)
        .map_err(|e| format!("{}: {e}", p.display()))?
        .permissions()
        .mode()
        & 0o777)
}

/// Every file and directory under `dir` whose mode is not `file` / `dir`.
fn wrong_modes(dir: &Path, file: u32, dmode: u32, out: &mut Vec<String>) -> Res {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let p = e.path();
        let ft = e.file_type()?;
        let m = mode_of(&p)?;
        if ft.is_dir() {
            if m != dmode {
                out.push(format!("{} {m:o}", p.display()));
            }
            wrong_modes(&p, file, dmode, out)?;
        } else if ft.is_file() && m != file {
            out.push(format!("{} {m:o}", p.display()));
        }
    }
    Ok(())
}

/// Stops the server of `dir` if a case fails while it runs.
struct CtlGuard(PathBuf);

impl Drop for CtlGuard {
    fn drop(&mut self) {
        if let Some(pid) = pid_lines(&self.0)
            .first()
            .and_then(|l| l.parse::<i32>().ok())
        {
            // SAFETY: plain kill of the server this case started.
            unsafe { libc::kill(pid, libc::SIGQUIT) };
            let deadline = Instant::now() + Duration::from_secs(10);
            // SAFETY: signal 0 only checks existence.
            while unsafe { libc::kill(pid, 0) } == 0 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

fn ctl(args: &[&str]) -> Res {
    let o = run(pgipc_ctl().args(args))?;
    ensure!(
        o.status.success(),
        "pgipc_ctl {args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    Ok(())
}

fn created_files_are_owner_only() -> Res {
    let base = scratch("umask");
    let dir = base.join("data");
    let sock = base.join("sock");
    std::fs::create_dir_all(&sock)?;
    let port = free_port();
    let opts = format!("-k {} -p {port} -c listen_addresses=", sock.display());
    let d = dir.to_str().expect("utf8");
    let log = base.join("server.log");
    let _guard = CtlGuard(dir.clone());
    // This process runs with umask 0 (see main): whatever is not 0600/0700 below was left
    // to the caller's umask.
    ctl(&[
        "start",
        "-D",
        d,
        "-l",
        log.to_str().expect("utf8"),
        "-o",
        &opts,
    ])?;
    startup_answer(&mut UnixStream::connect(
        sock.join(format!(".s.PGSQL.{port}")),
    )?)?;
    ensure!(mode_of(&log)? == 0o600, "log file {:o}", mode_of(&log)?);
    for f in ["postmaster.pid", "postmaster.opts", "postgresql.conf"] {
        let m = mode_of(&dir.join(f))?;
        ensure!(m == 0o600, "{f} {m:o}");
    }
    ensure!(
        mode_of(&dir)? == 0o700,
        "data directory {:o}",
        mode_of(&dir)?
    );
    let lock = sock.join(format!(".s.PGSQL.{port}.lock"));
    ensure!(
        mode_of(&lock)? == 0o600,
        "socket lock {:o}",
        mode_of(&lock)?
    );
    let mut wrong = Vec::new();
    wrong_modes(&dir, 0o600, 0o700, &mut wrong)?;
    ensure!(wrong.is_empty(), "not 0600/0700: {wrong:?}");
    ctl(&["stop", "-D", d])?;
    let mut wrong = Vec::new();
    wrong_modes(&dir, 0o600, 0o700, &mut wrong)?;
    ensure!(wrong.is_empty(), "after stop, not 0600/0700: {wrong:?}");

    // A data directory with group access (0750) gives group-readable files, as PostgreSQL.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o750))?;
    let log2 = base.join("server2.log");
    ctl(&[
        "start",
        "-D",
        d,
        "-l",
        log2.to_str().expect("utf8"),
        "-o",
        &opts,
    ])?;
    let pm = mode_of(&dir.join("postmaster.pid"))?;
    let lm = mode_of(&log2)?;
    ctl(&["stop", "-D", d])?;
    ensure!(pm == 0o640, "postmaster.pid {pm:o} in a 0750 directory");
    ensure!(lm == 0o640, "log file {lm:o} for a 0750 directory");
    std::fs::remove_dir_all(&base)?;
    Ok(())
}

fn main() -> std::process::ExitCode {
    if let Some(code) = common::server::serve_if_asked() {
        return code;
    }
    watchdog("lockfile test", Duration::from_secs(900));
    // SAFETY: umask has no preconditions. With 0, a mode that comes out right was chosen by
    // the server, not inherited from us.
    unsafe { libc::umask(0) };
    let mut args = Arguments::from_args();
    // Tests run on the main thread, one after the other.
    args.test_threads = Some(1);
    let trials = vec![
        Trial::test(
            "ten_postmasters_at_once_exactly_one_runs",
            ten_postmasters_at_once_exactly_one_runs,
        ),
        Trial::test(
            "empty_pid_file_stops_the_start_and_stays",
            empty_pid_file_stops_the_start_and_stays,
        ),
        Trial::test(
            "out_of_descriptors_backs_off_and_recovers",
            out_of_descriptors_backs_off_and_recovers,
        ),
        Trial::test("created_files_are_owner_only", created_files_are_owner_only),
    ];
    libtest_mimic::run(&args, trials).exit();
}
