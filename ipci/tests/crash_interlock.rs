//! An exec'd child attaches the postmaster's shared memory through ipci; when the "postmaster"
//! vanishes without cleaning up (here: drops its state, as a SIGKILL would leave it), the child's
//! attachment keeps the interlock in use, so a new creator is refused until the child exits.
//! A harness without threads: `main` is the parent, a re-executed copy is the child.

use pgipc_ipci::{attach, create_shared_memory_and_semaphores, Addins, IpcConfig, IpciError};
use pgipc_shmem::{HugePages, SharedMemoryType, ShmemError};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn config(dir: &std::path::Path) -> IpcConfig {
    IpcConfig {
        data_dir: Some(dir.to_path_buf()),
        shared_memory_type: SharedMemoryType::Memfd,
        huge_pages: HugePages::Off,
        ..IpcConfig::default()
    }
}

fn main() {
    if let Ok(fd) = std::env::var("PGIPC_IPCI_FD") {
        let shmid: i32 = std::env::var("PGIPC_IPCI_SHMID")
            .expect("shmid")
            .parse()
            .expect("shmid");
        let dir = std::env::var("PGIPC_IPCI_DIR").expect("dir");
        // SAFETY: the parent passed this inherited descriptor; nothing else here owns it.
        let memfd = unsafe { OwnedFd::from_raw_fd(fd.parse().expect("fd")) };
        let state =
            attach(&config(dir.as_ref()), &Addins::new(), memfd, Some(shmid)).expect("attach");
        println!("attached");
        // Stay attached until killed.
        std::thread::sleep(Duration::from_secs(120));
        drop(state);
        return;
    }
    let dir = std::env::temp_dir().join(format!("pgipc-ipci-crash-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let cfg = config(&dir);
    let state = create_shared_memory_and_semaphores(&cfg, &Addins::new()).expect("create");
    let shmid = state.interlock.as_ref().expect("interlock").shmid();
    let fd = state.shmem.memfd().expect("memfd").as_raw_fd();
    let mut child = Command::new(std::env::current_exe().expect("exe"))
        .env("PGIPC_IPCI_FD", fd.to_string())
        .env("PGIPC_IPCI_SHMID", shmid.to_string())
        .env("PGIPC_IPCI_DIR", &dir)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut out = child.stdout.take().expect("stdout");
    let mut buf = [0u8; 9];
    let deadline = Instant::now() + Duration::from_secs(30);
    std::io::Read::read_exact(&mut out, &mut buf).expect("child said nothing");
    assert_eq!(&buf, b"attached\n");
    assert!(Instant::now() < deadline);

    // The "postmaster" dies without removing anything.
    drop(state);
    match create_shared_memory_and_semaphores(&cfg, &Addins::new()) {
        Err(IpciError::Shmem(ShmemError::InUse { shmid: s, .. })) => assert_eq!(s, shmid),
        other => {
            let _ = child.kill();
            panic!("a new creator must be refused while the child is attached: {other:?}");
        }
    }
    child.kill().expect("kill");
    child.wait().expect("wait");
    let again = create_shared_memory_and_semaphores(&cfg, &Addins::new())
        .expect("after the child exits, the leftover is removed and creation succeeds");
    again.shutdown().expect("shutdown");
    std::fs::remove_dir_all(&dir).expect("rmdir");
    println!("crash interlock: refused while a child holds the segment, then accepted ... ok");
    println!("1 passed, 0 failed");
}
