//! A process killed inside `DsmSegment::create`, at the `dsm-create` injection point (its OS
//! segment exists, its control slot is not live yet), leaves nothing behind: the postmaster's
//! crash-restart clean-up and the next start on the same data directory both remove that
//! segment. An `error` at the same point gives the slot back and destroys the segment.
//!
//! Needs the `injection_points` feature (`required-features`): `cargo test -p pgipc-dsm
//! --features injection_points --test create_crash`. `harness = false` with libtest-mimic on
//! one thread; the "creator" child is this binary re-executed with `PGIPC_DSM_CRASH_ROLE` set.
//! Only segments this server's control table lists are checked (other processes may create
//! their own in /dev/shm meanwhile). Every wait has a deadline; a watchdog ends the run at 60 s.

use libtest_mimic::{Arguments, Failed, Trial};
use pgipc_dsm::{
    dsm_backend_startup, dsm_control_slots, dsm_detach_all, CreateFlags, DsmError, DsmHandle,
    DsmImpl, DsmImplType, DsmSegment,
};
use pgipc_injection_point::{Action, InjectionError};
use pgipc_ipci::{create_shared_memory_and_semaphores, Addins, IpcConfig, IpcState};
use pgipc_shmem::Shmem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const ROLE: &str = "PGIPC_DSM_CRASH_ROLE";
const POINT: &str = "dsm-create";
static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

fn exists(h: DsmHandle) -> bool {
    Path::new(&format!("/dev/shm/PostgreSQL.{h}")).exists()
}

fn config(dir: &Path) -> IpcConfig {
    IpcConfig {
        data_dir: Some(dir.to_path_buf()),
        shared_memory_type: pgipc_shmem::SharedMemoryType::Memfd,
        huge_pages: pgipc_shmem::HugePages::Off,
        ..IpcConfig::default()
    }
}

/// A "postmaster": shared memory for `dir` with the injection-point table, seen by this
/// process too (so it can attach points and count waiters).
fn start(dir: &Path) -> Result<IpcState, Failed> {
    let state = create_shared_memory_and_semaphores(&config(dir), &Addins::new())
        .map_err(|e| e.to_string())?;
    pgipc_injection_point::shmem_init(&state.shmem).map_err(|e| e.to_string())?;
    pgipc_injection_point::attach_shared(&state.shmem);
    Ok(state)
}

fn imp(dir: &Path) -> DsmImpl {
    DsmImpl::new(DsmImplType::Posix, Some(dir))
}

/// The child: a backend that creates one segment (and blocks at the injection point).
fn child() -> i32 {
    let fd: i32 = std::env::var("PGIPC_DSM_FD")
        .expect("fd")
        .parse()
        .expect("fd");
    let dir = PathBuf::from(std::env::var_os("PGIPC_DSM_DIR").expect("dir"));
    // SAFETY: the parent passed this inherited descriptor for us to own.
    let shm = Shmem::attach_fd(unsafe { OwnedFd::from_raw_fd(fd) }).expect("attach main");
    pgipc_injection_point::attach_shared(&shm);
    dsm_backend_startup(&shm, imp(&dir)).expect("backend startup");
    match DsmSegment::create(65_536, CreateFlags::default()) {
        Ok(Some(seg)) => {
            println!("created {} without waiting", seg.handle());
            0
        }
        other => {
            println!("create failed: {other:?}");
            3
        }
    }
}

fn spawn_creator(shm: &Shmem, dir: &Path) -> Result<Child, Failed> {
    let fd = shm.memfd().ok_or("no memfd")?.as_raw_fd();
    let c = Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
        .env(ROLE, "creator")
        .env("PGIPC_DSM_FD", fd.to_string())
        .env("PGIPC_DSM_DIR", dir)
        .spawn()
        .map_err(|e| e.to_string())?;
    CHILDREN.lock().expect("children").push(c.id());
    Ok(c)
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) -> Result<(), Failed> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        if Instant::now() > deadline {
            return Err(format!("timed out waiting for {what}").into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// A child that is killed when dropped (a failing check must not leave it waiting).
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Starts a server on `dir`, lets a child block at the point and kills it there; returns the
/// server and the handle of the half-created segment (which exists at that moment). On a
/// failure the server is shut down (nothing left in /dev/shm).
fn kill_at_point(dir: &Path) -> Result<(IpcState, DsmHandle), Failed> {
    let state = start(dir)?;
    match kill_creator(&state, dir) {
        Ok(h) => Ok((state, h)),
        Err(e) => {
            let _ = state.shutdown();
            Err(e)
        }
    }
}

fn kill_creator(state: &IpcState, dir: &Path) -> Result<DsmHandle, Failed> {
    let control = state.shmem.dsm_control();
    pgipc_injection_point::attach(POINT, Action::Wait).map_err(|e| e.to_string())?;
    let mut c = Reaped(spawn_creator(&state.shmem, dir)?);
    wait_for("the creator to reach the injection point", || {
        pgipc_injection_point::waiting(POINT) == 1
    })?;
    let slots = dsm_control_slots(&imp(dir), control).map_err(|e| e.to_string())?;
    let [(handle, 1)] = slots[..] else {
        return Err(format!("expected one reserved slot (count 1), found {slots:?}").into());
    };
    if !exists(handle) {
        return Err(format!("segment {handle} should exist while the creator waits").into());
    }
    c.0.kill().map_err(|e| e.to_string())?;
    c.0.wait().map_err(|e| e.to_string())?;
    if !exists(handle) {
        return Err("the kill itself removed the segment?".into());
    }
    Ok(handle)
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pgipc-dsm-crash-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("mkdir");
    d
}

/// The postmaster survives and resets shared memory (crash restart): its shutdown step
/// destroys what the control table lists, the reserved slot included.
fn crash_restart() -> Result<(), Failed> {
    let dir = scratch("reset");
    let (state, handle) = kill_at_point(&dir)?;
    state.shutdown().map_err(|e| e.to_string())?;
    if exists(handle) {
        return Err(format!("segment {handle} survived the crash-restart clean-up").into());
    }
    let again = start(&dir)?;
    again.shutdown().map_err(|e| e.to_string())?;
    std::fs::remove_dir_all(&dir).map_err(|e| e.to_string())?;
    Ok(())
}

/// The postmaster is gone too (no clean-up ran): the next start on the same data directory
/// finds the dead server's control segment and removes the segment.
fn next_start() -> Result<(), Failed> {
    let dir = scratch("next");
    let (state, handle) = kill_at_point(&dir)?;
    let old_control = state.shmem.dsm_control();
    drop(state);
    if !exists(handle) {
        return Err("nothing should have cleaned up yet".into());
    }
    let again = start(&dir)?;
    let gone = !exists(handle) && !exists(old_control);
    again.shutdown().map_err(|e| e.to_string())?;
    std::fs::remove_dir_all(&dir).map_err(|e| e.to_string())?;
    if !gone {
        return Err(
            format!("segment {handle} (or control {old_control}) survived the next start").into(),
        );
    }
    Ok(())
}

/// `error` at the point: the caller gets the error, the segment is destroyed and the slot
/// freed; after a detach the same process creates normally.
fn error_action() -> Result<(), Failed> {
    let dir = scratch("error");
    let state = start(&dir)?;
    let control = state.shmem.dsm_control();
    let before: Vec<String> = list_shm();
    pgipc_injection_point::attach(POINT, Action::Error).map_err(|e| e.to_string())?;
    dsm_backend_startup(&state.shmem, imp(&dir)).map_err(|e| e.to_string())?;
    let r = DsmSegment::create(4096, CreateFlags::default());
    let ok = matches!(
        &r,
        Err(DsmError::Injected(InjectionError::Triggered { name })) if name == POINT
    );
    let slots = dsm_control_slots(&imp(&dir), control).map_err(|e| e.to_string())?;
    let leaked: Vec<String> = list_shm()
        .into_iter()
        .filter(|n| !before.contains(n))
        .filter(|n| slots.iter().any(|(h, _)| n.ends_with(&format!(".{h}"))))
        .collect();
    pgipc_injection_point::detach(POINT).map_err(|e| e.to_string())?;
    let seg = DsmSegment::create(4096, CreateFlags::default()).map_err(|e| e.to_string())?;
    let created = seg.is_some();
    drop(seg);
    dsm_detach_all();
    state.shutdown().map_err(|e| e.to_string())?;
    std::fs::remove_dir_all(&dir).map_err(|e| e.to_string())?;
    if !ok {
        return Err(format!("expected the injected error, got {r:?}").into());
    }
    if !slots.is_empty() || !leaked.is_empty() {
        return Err(format!("slots {slots:?} / segments {leaked:?} left after the error").into());
    }
    if !created {
        return Err("no segment after the detach".into());
    }
    Ok(())
}

fn list_shm() -> Vec<String> {
    std::fs::read_dir("/dev/shm")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.starts_with("PostgreSQL."))
                .collect()
        })
        .unwrap_or_default()
}

fn main() {
    if std::env::var_os(ROLE).is_some() {
        std::process::exit(child());
    }
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_secs(60));
        for pid in CHILDREN.lock().map(|c| c.clone()).unwrap_or_default() {
            // SAFETY: sending SIGKILL to our own children has no memory-safety effect.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
        eprintln!("watchdog: the dsm create-crash test took more than 60 s");
        std::process::exit(1);
    });
    let mut args = Arguments::from_args();
    args.test_threads = Some(1);
    let trials = vec![
        Trial::test(
            "killed at dsm-create: the crash-restart clean-up removes the segment",
            crash_restart,
        ),
        Trial::test(
            "killed at dsm-create: the next start removes the segment",
            next_start,
        ),
        Trial::test(
            "error at dsm-create: segment destroyed, slot freed",
            error_action,
        ),
    ];
    libtest_mimic::run(&args, trials).exit();
}
