//! An exec'd child attaches the postmaster's shared memory through ipci; when the "postmaster"
//! vanishes without cleaning up (here: drops its state, as a SIGKILL would leave it), the child's
//! attachment keeps the interlock in use, so a new creator is refused until the child exits.
//! libtest-mimic on one test thread: the trial is the parent, on the main thread; a re-executed
//! copy of this binary is the child.

use libtest_mimic::{Arguments, Trial};
use pgipc_ipci::{attach, create_shared_memory_and_semaphores, Addins, IpcConfig, IpciError};
use pgipc_shmem::{HugePages, SharedMemoryType, ShmemError};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

fn config(dir: &std::path::Path) -> IpcConfig {
    IpcConfig {
        data_dir: Some(dir.to_path_buf()),
        shared_memory_type: SharedMemoryType::Memfd,
        huge_pages: HugePages::Off,
        ..IpcConfig::default()
    }
}

/// The child, killed and reaped however the trial ends.
struct Kid(Child);

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// On a failed trial, removes what the simulated crash left (the way the next postmaster
/// would: a create removes the unattached leftover) and the data directory.
struct CleanUpOnFailure(IpcConfig);

impl Drop for CleanUpOnFailure {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Ok(state) = create_shared_memory_and_semaphores(&self.0, &Addins::new()) {
                let _ = state.shutdown();
            }
            if let Some(dir) = &self.0.data_dir {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
}

fn child_attachment_blocks_a_new_creator() {
    let dir = std::env::temp_dir().join(format!("pgipc-ipci-crash-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let cfg = config(&dir);
    // Declared before the child: dropped after it, once the child is dead.
    let _cleanup = CleanUpOnFailure(cfg.clone());
    let state = create_shared_memory_and_semaphores(&cfg, &Addins::new()).expect("create");
    let shmid = state.interlock.as_ref().expect("interlock").shmid();
    let fd = state.shmem.memfd().expect("memfd").as_raw_fd();
    let mut child = Kid(Command::new(std::env::current_exe().expect("exe"))
        .env("PGIPC_IPCI_FD", fd.to_string())
        .env("PGIPC_IPCI_SHMID", shmid.to_string())
        .env("PGIPC_IPCI_DIR", &dir)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn"));
    let mut out = child.0.stdout.take().expect("stdout");
    let mut buf = [0u8; 9];
    let deadline = Instant::now() + Duration::from_secs(30);
    std::io::Read::read_exact(&mut out, &mut buf).expect("child said nothing");
    assert_eq!(&buf, b"attached\n");
    assert!(Instant::now() < deadline);

    // The "postmaster" dies without removing anything.
    drop(state);
    match create_shared_memory_and_semaphores(&cfg, &Addins::new()) {
        Err(IpciError::Shmem(ShmemError::InUse { shmid: s, .. })) => assert_eq!(s, shmid),
        other => panic!("a new creator must be refused while the child is attached: {other:?}"),
    }
    child.0.kill().expect("kill");
    child.0.wait().expect("wait");
    let again = create_shared_memory_and_semaphores(&cfg, &Addins::new())
        .expect("after the child exits, the leftover is removed and creation succeeds");
    again.shutdown().expect("shutdown");
    std::fs::remove_dir_all(&dir).expect("rmdir");
}

fn attached_child(fd: String) {
    let shmid: i32 = std::env::var("PGIPC_IPCI_SHMID")
        .expect("shmid")
        .parse()
        .expect("shmid");
    let dir = std::env::var("PGIPC_IPCI_DIR").expect("dir");
    // SAFETY: the parent passed this inherited descriptor; nothing else here owns it.
    let memfd = unsafe { OwnedFd::from_raw_fd(fd.parse().expect("fd")) };
    let state = attach(&config(dir.as_ref()), &Addins::new(), memfd, Some(shmid)).expect("attach");
    println!("attached");
    // Stay attached until killed.
    std::thread::sleep(Duration::from_secs(120));
    drop(state);
}

fn main() -> ExitCode {
    if let Ok(fd) = std::env::var("PGIPC_IPCI_FD") {
        attached_child(fd);
        return ExitCode::SUCCESS;
    }
    let mut args = Arguments::from_args();
    // One test thread: the trial runs on the main thread, the only one.
    args.test_threads = Some(1);
    let trials = vec![Trial::test(
        "attached_child_refuses_a_new_creator_until_it_exits",
        || {
            child_attachment_blocks_a_new_creator();
            Ok(())
        },
    )];
    libtest_mimic::run(&args, trials).exit_code()
}
