//! dsm between real processes, for posix, sysv and mmap: a segment created here, attached by
//! an exec'd child and detached by both is gone afterwards; after SIGKILL of every process
//! using segments, the postmaster-side clean-up (and the ipci create path on the same data
//! directory) removes the leftovers.
//!
//! libtest-mimic on one test thread: each scenario is a trial run on the main thread; the same
//! binary re-executed with `PGIPC_DSM_ROLE` set is the child (it inherits the main segment's
//! memfd, and takes its role before the harness starts). A failed trial kills its children and
//! removes its segments; a watchdog thread kills every child and fails the run after 60 s.

use libtest_mimic::{Arguments, Trial};
use pgipc_dsm::{
    dsm_backend_startup, dsm_detach_all, dsm_postmaster_shutdown, dsm_postmaster_startup,
    CreateFlags, DsmError, DsmHandle, DsmImpl, DsmImplType, DsmSegment,
};
use pgipc_shmem::Shmem;
use std::io::{BufRead, BufReader};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitCode, Stdio};
use std::sync::Mutex;
use std::time::Duration;

const SIZE: usize = 65_536;
static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

fn kind_of(s: &str) -> DsmImplType {
    match s {
        "sysv" => DsmImplType::Sysv,
        "mmap" => DsmImplType::Mmap,
        _ => DsmImplType::Posix,
    }
}

/// Does segment `h` exist at the operating-system level?
fn exists(imp: &DsmImpl, h: DsmHandle) -> bool {
    match imp.kind() {
        DsmImplType::Posix => Path::new(&format!("/dev/shm/PostgreSQL.{h}")).exists(),
        DsmImplType::Mmap => imp
            .data_dir()
            .expect("dir")
            .join(imp.segment_name(h))
            .exists(),
        DsmImplType::Sysv => {
            // The key is the handle, negated when not positive (as dsm_impl makes it).
            let k = h as libc::key_t;
            let key = if k < 1 { k.wrapping_neg() } else { k };
            // SAFETY: shmget with size 0 and no flags only looks the key up.
            (unsafe { libc::shmget(key, 0, 0) }) >= 0
        }
    }
}

fn child_env() -> (Shmem, DsmImpl) {
    let fd: i32 = std::env::var("PGIPC_DSM_FD")
        .expect("fd")
        .parse()
        .expect("fd");
    let kind = kind_of(&std::env::var("PGIPC_DSM_KIND").expect("kind"));
    let dir = std::env::var_os("PGIPC_DSM_DIR").map(PathBuf::from);
    // SAFETY: the parent passed this inherited descriptor for us to own.
    let shm = Shmem::attach_fd(unsafe { OwnedFd::from_raw_fd(fd) }).expect("attach main");
    (shm, DsmImpl::new(kind, dir.as_deref()))
}

fn child(role: &str) -> i32 {
    let (shm, imp) = child_env();
    dsm_backend_startup(&shm, imp).expect("backend startup");
    match role {
        // Attach, check the creator's pattern, answer, detach, exit through proc_exit.
        "check" => {
            let h: DsmHandle = std::env::var("PGIPC_DSM_HANDLE")
                .expect("h")
                .parse()
                .expect("h");
            let seg = DsmSegment::attach(h).expect("attach");
            let p = seg.address().as_ptr();
            for i in 0..SIZE {
                // SAFETY: the segment is SIZE bytes; the parent wrote it before spawning us.
                if unsafe { p.add(i).read_volatile() } != (i % 251) as u8 {
                    return 3;
                }
            }
            // SAFETY: byte 0 is ours to answer in; the parent reads it after we exit.
            unsafe { p.write_volatile(0xEE) };
            // Attaching twice, and a missing handle, are errors.
            if !matches!(DsmSegment::attach(h), Err(DsmError::AlreadyAttached { .. })) {
                return 4;
            }
            if !matches!(DsmSegment::attach(h ^ 2), Err(DsmError::NotFound { .. })) {
                return 5;
            }
            // Detached by the pgipc_ipc exit hook, with callbacks run.
            seg.pin_mapping();
            seg.on_detach(|| println!("callback ran"));
            drop(seg);
            pgipc_ipc::proc_exit(0)
        }
        // Create three segments (one pinned), report them, then wait to be killed.
        "creator" => {
            for i in 0..3 {
                let seg = DsmSegment::create(SIZE, CreateFlags::default())
                    .expect("create")
                    .expect("slot");
                if i == 0 {
                    seg.pin_segment().expect("pin");
                }
                seg.pin_mapping();
                println!("{}", seg.handle());
            }
            println!("ready");
            std::thread::sleep(Duration::from_secs(120));
            0
        }
        // Attach the given segment, report, wait to be killed.
        "attacher" => {
            let h: DsmHandle = std::env::var("PGIPC_DSM_HANDLE")
                .expect("h")
                .parse()
                .expect("h");
            let seg = DsmSegment::attach(h).expect("attach");
            seg.pin_mapping();
            println!("ready");
            std::thread::sleep(Duration::from_secs(120));
            0
        }
        _ => 2,
    }
}

/// A child, killed and reaped when dropped, so that a failed trial leaves none behind.
struct Kid(Child);

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl std::ops::Deref for Kid {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Kid {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

fn spawn(shm: &Shmem, imp: &DsmImpl, role: &str, h: Option<DsmHandle>) -> (Kid, ChildStdout) {
    let fd = shm.memfd().expect("memfd").as_raw_fd();
    let mut cmd = Command::new(std::env::current_exe().expect("exe"));
    cmd.env("PGIPC_DSM_ROLE", role)
        .env("PGIPC_DSM_FD", fd.to_string())
        .env("PGIPC_DSM_KIND", imp.kind().name())
        .stdout(Stdio::piped());
    if let Some(d) = imp.data_dir() {
        cmd.env("PGIPC_DSM_DIR", d);
    }
    if let Some(h) = h {
        cmd.env("PGIPC_DSM_HANDLE", h.to_string());
    }
    let mut c = cmd.spawn().expect("spawn");
    CHILDREN.lock().expect("children").push(c.id());
    let out = c.stdout.take().expect("stdout");
    (Kid(c), out)
}

/// Lines the child prints up to "ready".
fn until_ready(out: ChildStdout) -> Vec<String> {
    let mut lines = Vec::new();
    for l in BufReader::new(out).lines() {
        let l = l.expect("read");
        if l == "ready" {
            return lines;
        }
        lines.push(l);
    }
    panic!("child ended before it was ready: {lines:?}");
}

fn sigkill(c: &mut Child) {
    c.kill().expect("kill");
    c.wait().expect("wait");
}

struct Server {
    shm: Shmem,
    imp: DsmImpl,
}

impl Drop for Server {
    fn drop(&mut self) {
        // A failed trial: remove what its segments left, as the postmaster's shutdown would.
        if std::thread::panicking() {
            let _ = dsm_postmaster_shutdown(&self.imp, self.shm.dsm_control());
        }
    }
}

fn server(kind: DsmImplType, dir: &Path) -> Server {
    let shm = Shmem::create_for_tests(1 << 20).expect("shmem");
    let imp = DsmImpl::new(kind, Some(dir));
    let control = dsm_postmaster_startup(&imp, 4).expect("postmaster startup");
    shm.set_dsm_control(control);
    Server { shm, imp }
}

/// Writes a pattern into `seg`, lets a "check" child attach, verify and answer in byte 0, and
/// checks the answer after the child exited.
fn check_in_child(srv: &Server, seg: &DsmSegment) {
    let p = seg.address().as_ptr();
    for i in 0..SIZE {
        // SAFETY: `seg` maps at least SIZE bytes; no other process maps it yet.
        unsafe { p.add(i).write_volatile((i % 251) as u8) };
    }
    let (mut c, out) = spawn(&srv.shm, &srv.imp, "check", Some(seg.handle()));
    let said: Vec<String> = BufReader::new(out).lines().map_while(Result::ok).collect();
    let st = c.wait().expect("wait");
    assert!(st.success(), "{:?} child: {st:?}", srv.imp.kind());
    assert_eq!(said, vec!["callback ran".to_string()]);
    // SAFETY: the child has exited; byte 0 holds its answer.
    assert_eq!(unsafe { p.read_volatile() }, 0xEE);
}

/// Created here, attached by a child, detached by both: gone. With `pool`, the segment comes
/// from the main-region pool (odd handle, no OS object; the child finds the pool by name).
fn round_trip(kind: DsmImplType, dir: &Path, pool: bool) {
    let srv = server(kind, dir);
    if pool {
        pgipc_dsm::dsm_shmem_init(&srv.shm, 256 << 10).expect("pool");
    }
    std::thread::scope(|s| {
        // This thread is a backend of its own (process-local dsm state is per thread).
        s.spawn(|| {
            dsm_backend_startup(&srv.shm, srv.imp.clone()).expect("backend");
            let seg = DsmSegment::create(SIZE, CreateFlags::default())
                .expect("create")
                .expect("slot");
            let h = seg.handle();
            assert_eq!(pgipc_dsm::is_main_region_dsm_handle(h), pool, "{h:#x}");
            check_in_child(&srv, &seg);
            assert_eq!(exists(&srv.imp, h), !pool, "the creator still holds it");
            drop(seg);
            assert!(!exists(&srv.imp, h), "gone after both detached");
            dsm_detach_all();
        });
    });
    let control = srv.shm.dsm_control();
    let r = dsm_postmaster_shutdown(&srv.imp, control).expect("shutdown");
    assert!(r.destroyed.is_empty() && r.control_removed, "{r:?}");
    assert!(!exists(&srv.imp, control));
}

fn killed(kind: DsmImplType, dir: &Path) {
    let srv = server(kind, dir);
    let (mut creator, out) = spawn(&srv.shm, &srv.imp, "creator", None);
    let handles: Vec<DsmHandle> = until_ready(out)
        .iter()
        .map(|l| l.parse().expect("handle"))
        .collect();
    let (mut attacher, out) = spawn(&srv.shm, &srv.imp, "attacher", Some(handles[1]));
    until_ready(out);
    sigkill(&mut creator);
    sigkill(&mut attacher);
    for h in &handles {
        assert!(exists(&srv.imp, *h), "{h} should survive its killed users");
    }
    let control = srv.shm.dsm_control();
    let r = dsm_postmaster_shutdown(&srv.imp, control).expect("shutdown");
    assert_eq!(r.destroyed.len(), 3, "{r:?}");
    for h in handles.iter().chain([&control]) {
        assert!(!exists(&srv.imp, *h), "{}: {h} left behind", kind.name());
    }
}

/// The whole path: ipci creates shared memory for a data directory (and the DSM control
/// segment); a backend creates segments; the "postmaster" vanishes and the backend is killed;
/// the next ipci create on the same directory removes the leftovers.
fn ipci_crash_restart(dir: &Path) {
    use pgipc_ipci::{create_shared_memory_and_semaphores, Addins, IpcConfig};
    let cfg = IpcConfig {
        data_dir: Some(dir.to_path_buf()),
        shared_memory_type: pgipc_shmem::SharedMemoryType::Memfd,
        huge_pages: pgipc_shmem::HugePages::Off,
        ..IpcConfig::default()
    };
    /// A failed trial: a create on the directory removes the leftovers, then shut down.
    struct CleanUpOnFailure(IpcConfig);
    impl Drop for CleanUpOnFailure {
        fn drop(&mut self) {
            if std::thread::panicking() {
                if let Ok(s) = create_shared_memory_and_semaphores(&self.0, &Addins::new()) {
                    let _ = s.shutdown();
                }
            }
        }
    }
    // Declared before the state and the child: dropped after them.
    let _cleanup = CleanUpOnFailure(cfg.clone());
    let state = create_shared_memory_and_semaphores(&cfg, &Addins::new()).expect("create");
    let imp = DsmImpl::new(DsmImplType::Posix, Some(dir));
    let control = state.shmem.dsm_control();
    assert_ne!(control, 0, "ipci created the control segment");
    let (mut creator, out) = spawn(&state.shmem, &imp, "creator", None);
    let handles: Vec<DsmHandle> = until_ready(out)
        .iter()
        .map(|l| l.parse().expect("handle"))
        .collect();
    // The postmaster dies without cleaning up; then its child is killed.
    drop(state);
    sigkill(&mut creator);
    for h in handles.iter().chain([&control]) {
        assert!(exists(&imp, *h));
    }
    let again = create_shared_memory_and_semaphores(&cfg, &Addins::new()).expect("restart");
    for h in handles.iter().chain([&control]) {
        assert!(!exists(&imp, *h), "{h} survived the restart");
    }
    let new_control = again.shmem.dsm_control();
    again.shutdown().expect("shutdown");
    assert!(
        !exists(&imp, new_control),
        "shutdown removes the control segment"
    );
}

fn main() -> ExitCode {
    if let Ok(role) = std::env::var("PGIPC_DSM_ROLE") {
        std::process::exit(child(&role));
    }
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_secs(60));
        for pid in CHILDREN.lock().map(|c| c.clone()).unwrap_or_default() {
            // SAFETY: sending SIGKILL to our own children has no memory-safety effect.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
        eprintln!("watchdog: the dsm multi-process test took more than 60 s");
        std::process::exit(1);
    });
    let dir = std::env::temp_dir().join(format!("pgipc-dsm-mp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let mut trials = Vec::new();
    for kind in [DsmImplType::Posix, DsmImplType::Sysv, DsmImplType::Mmap] {
        let d = dir.clone();
        trials.push(Trial::test(
            format!(
                "{}_created_attached_by_a_child_detached_by_both_is_gone",
                kind.name()
            ),
            move || {
                round_trip(kind, &d, false);
                Ok(())
            },
        ));
        let d = dir.clone();
        trials.push(Trial::test(
            format!(
                "{}_every_user_killed_postmaster_clean_up_removes_all",
                kind.name()
            ),
            move || {
                killed(kind, &d);
                Ok(())
            },
        ));
    }
    let d = dir.clone();
    trials.push(Trial::test(
        "main_region_pool_created_attached_by_a_child_detached_by_both_is_gone",
        move || {
            round_trip(DsmImplType::Posix, &d, true);
            Ok(())
        },
    ));
    let d = dir.clone();
    trials.push(Trial::test(
        "ipci_restart_on_the_same_directory_removes_a_killed_servers_segments",
        move || {
            ipci_crash_restart(&d);
            Ok(())
        },
    ));
    let mut args = Arguments::from_args();
    // One test thread: the trials run one after the other on the main thread.
    args.test_threads = Some(1);
    let conclusion = libtest_mimic::run(&args, trials);
    std::fs::remove_dir_all(&dir).expect("rmdir");
    conclusion.exit_code()
}
