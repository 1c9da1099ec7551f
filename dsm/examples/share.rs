//! Two processes share a dynamic segment: the parent plays the postmaster (creates the
//! control segment) and a backend (creates a segment and writes a greeting); a child started
//! by exec attaches the segment by its handle, prints the greeting and answers. When both
//! have detached, the segment is gone from /dev/shm.
//!
//! Run: `cargo run -p pgipc-dsm --example share`

use pgipc_dsm::{
    dsm_backend_startup, dsm_detach_all, dsm_postmaster_shutdown, dsm_postmaster_startup,
    CreateFlags, DsmHandle, DsmImpl, DsmImplType, DsmSegment,
};
use pgipc_shmem::Shmem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;

const GREETING: &[u8] = b"hello from the creator\0";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let imp = DsmImpl::new(DsmImplType::Posix, None);
    if let (Ok(fd), Ok(h)) = (std::env::var("SHARE_FD"), std::env::var("SHARE_HANDLE")) {
        // The child: map the main segment it inherited, then the dynamic one by handle.
        // SAFETY: the parent passed this descriptor for us to own.
        let shm = Shmem::attach_fd(unsafe { OwnedFd::from_raw_fd(fd.parse()?) })?;
        dsm_backend_startup(&shm, imp)?;
        let seg = DsmSegment::attach(h.parse::<DsmHandle>()?)?;
        let p = seg.address().as_ptr();
        // SAFETY: the creator wrote GREETING before starting us; we only read that part.
        let text = unsafe { std::slice::from_raw_parts(p, GREETING.len() - 1) };
        println!("child:  read {:?}", String::from_utf8_lossy(text));
        // SAFETY: byte 100 is the agreed answer slot, inside the 4 KiB segment.
        unsafe { p.add(100).write_volatile(42) };
        return Ok(()); // dropping `seg` detaches
    }

    // The "postmaster": main segment and DSM control segment.
    let shm = Shmem::create_for_tests(1 << 20)?;
    let control = dsm_postmaster_startup(&imp, 4)?;
    shm.set_dsm_control(control);

    // The "backend": a segment with a greeting in it.
    dsm_backend_startup(&shm, imp.clone())?;
    let seg = DsmSegment::create(4096, CreateFlags::default())?.ok_or("no free slot")?;
    let p = seg.address().as_ptr();
    // SAFETY: the segment is 4096 bytes and nobody else maps it yet.
    unsafe { std::ptr::copy_nonoverlapping(GREETING.as_ptr(), p, GREETING.len()) };
    let path = format!("/dev/shm/PostgreSQL.{}", seg.handle());
    println!("parent: created segment {} ({path})", seg.handle());

    let status = Command::new(std::env::current_exe()?)
        .env(
            "SHARE_FD",
            shm.memfd()
                .ok_or("not memfd-backed")?
                .as_raw_fd()
                .to_string(),
        )
        .env("SHARE_HANDLE", seg.handle().to_string())
        .status()?;
    // SAFETY: the child has exited; byte 100 holds its answer.
    println!("parent: child {status}, answered {}", unsafe {
        p.add(100).read_volatile()
    });
    drop(seg);
    println!(
        "parent: after both detached, {path} exists: {}",
        std::path::Path::new(&path).exists()
    );

    dsm_detach_all();
    dsm_postmaster_shutdown(&imp, control)?;
    Ok(())
}
