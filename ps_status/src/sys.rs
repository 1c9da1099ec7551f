//! The unsafe half of the crate: where the kernel put the argument and environment strings,
//! moving what points into them elsewhere, and writing a title over them.
//!
//! On Linux the kernel copies the argument strings and then the environment strings, each
//! NUL-terminated, one after the other at the top of the new process's stack; `/proc/<pid>/cmdline`
//! (what `ps -o args` and `top -c` print) is read from that area. glibc calls every function in
//! `.init_array` with `(argc, argv, envp)` before `main`, which is how this module learns where
//! `argv` is without the program's help (Rust's standard library finds its own `argv` the same
//! way). The address is checked against the kernel's own record of it (`arg_start` in
//! `/proc/self/stat`) before anything is moved.

use std::ffi::{c_char, c_int, CStr, CString};
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

/// `argc`, as glibc passed it to [`capture`].
static ARGC: AtomicUsize = AtomicUsize::new(0);
/// `argv`, as glibc passed it to [`capture`] (the array itself lives on the initial stack).
static ARGV: AtomicPtr<*mut c_char> = AtomicPtr::new(ptr::null_mut());

/// glibc runs this before `main` with the program's arguments.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[used]
#[link_section = ".init_array"]
static CAPTURE: extern "C" fn(c_int, *mut *mut c_char, *mut *mut c_char) = capture;

extern "C" fn capture(argc: c_int, argv: *mut *mut c_char, _envp: *mut *mut c_char) {
    ARGC.store(usize::try_from(argc).unwrap_or(0), Ordering::Relaxed);
    ARGV.store(argv, Ordering::Relaxed);
}

extern "C" {
    /// glibc's environment array, which `getenv`/`setenv` (and so `std::env`) read.
    static mut environ: *mut *mut c_char;
}

/// The contiguous argument (and environment) strings, which this process may now overwrite:
/// nothing points into them any more.
#[derive(Debug)]
pub(crate) struct Area {
    base: usize,
    len: usize,
}

/// Why there is no area to write titles into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoArea {
    /// The C library did not hand the arguments to `.init_array` functions (not glibc).
    NotCaptured,
    /// `argv[0]` is not where an area can start (null or empty).
    Empty,
    /// `argv[0]` is not where the kernel says the arguments are (`arg_start` in
    /// `/proc/self/stat`): someone moved them, and writing there would not show.
    Elsewhere,
}

/// `arg_start` of `/proc/self/stat` (its 48th field): where the kernel put the argument
/// strings, and where `/proc/<pid>/cmdline` reads from. `None` if it cannot be read.
fn kernel_arg_start() -> Option<usize> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name start with the 3rd (state).
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(48 - 3)?.parse().ok()
}

/// Finds the area, moves the environment strings to the heap (repointing `environ`) and points
/// every `argv[i]` at a heap copy of its string, so that `std::env::args()` and `std::env::var`
/// go on answering what they answered before; returns the area now free for titles.
///
/// # Safety
/// Call at most once per process (a second call would find `environ` already moved and return
/// a smaller area, which is harmless, but the first area would then have two owners), while the
/// process has one thread: no other thread may read or write `environ` or `argv` meanwhile.
pub(crate) unsafe fn take_area() -> Result<Area, NoArea> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: reading a static; the volatile read keeps the `.init_array` entry (and the
    // object holding it) in every program that calls this function.
    let _ = unsafe { ptr::read_volatile(&raw const CAPTURE) };
    let argc = ARGC.load(Ordering::Relaxed);
    let argv = ARGV.load(Ordering::Relaxed);
    if argv.is_null() || argc == 0 {
        return Err(NoArea::NotCaptured);
    }
    // SAFETY: glibc gave us `argv` with `argc` valid pointers to NUL-terminated strings (and a
    // null after them); nothing has changed them, as only this function writes them.
    let first = unsafe { *argv };
    if first.is_null() {
        return Err(NoArea::Empty);
    }
    if kernel_arg_start().is_some_and(|k| k != first as usize) {
        return Err(NoArea::Elsewhere);
    }
    // Where the strings run on from each other, as PostgreSQL's save_ps_display_args checks.
    let mut end: *mut c_char = ptr::null_mut();
    for i in 0..argc {
        // SAFETY: i < argc, see above.
        let a = unsafe { *argv.add(i) };
        if a.is_null() {
            break;
        }
        if i == 0 || end.wrapping_add(1) == a {
            // SAFETY: `a` is a NUL-terminated string of the argument area.
            end = unsafe { a.add(libc::strlen(a)) };
        }
    }
    // SAFETY: single-threaded (the caller's contract); `environ` is glibc's valid,
    // null-terminated array of NUL-terminated strings.
    let env = unsafe { environ };
    let mut copies: Vec<*mut c_char> = Vec::new();
    if !env.is_null() {
        let mut i = 0;
        loop {
            // SAFETY: the array is null-terminated and we stop at the null.
            let e = unsafe { *env.add(i) };
            if e.is_null() {
                break;
            }
            if end.wrapping_add(1) == e {
                // SAFETY: `e` is a NUL-terminated string.
                end = unsafe { e.add(libc::strlen(e)) };
            }
            // SAFETY: as above; the copy is leaked on purpose (it lives as long as the process).
            copies.push(CString::from(unsafe { CStr::from_ptr(e) }).into_raw());
            i += 1;
        }
        copies.push(ptr::null_mut());
        let moved: &'static mut [*mut c_char] = Box::leak(copies.into_boxed_slice());
        // SAFETY: single-threaded; the new array is null-terminated and lives forever. glibc's
        // setenv copes with an `environ` it did not allocate (it allocates anew on change).
        unsafe { environ = moved.as_mut_ptr() };
    }
    for i in 0..argc {
        // SAFETY: i < argc; the array is writable (it is on the initial stack) and only this
        // process's own code reads it, on this single thread.
        unsafe {
            let a = *argv.add(i);
            if !a.is_null() {
                *argv.add(i) = CString::from(CStr::from_ptr(a)).into_raw();
            }
        }
    }
    let len = end as usize - first as usize;
    if len == 0 {
        return Err(NoArea::Empty);
    }
    Ok(Area {
        base: first as usize,
        len,
    })
}

impl Area {
    /// The area's size in bytes (a title can be one byte shorter: it ends with a NUL).
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Writes `title` (cut to fit) and a NUL at the start of the area, then NULs over what is
    /// left of a previous title that was `last` bytes long, as PostgreSQL pads on Linux.
    /// Returns the length written (without the NUL).
    pub(crate) fn write(&mut self, title: &[u8], last: usize) -> usize {
        let n = title.len().min(self.len - 1);
        let pad_end = last.clamp(n + 1, self.len);
        // SAFETY: `base..base+len` is the argument/environment area found by `take_area`,
        // which moved everything that pointed into it; the only `Area` is owned by the
        // crate's state (taken under its lock), so this is the only writer. `n < len` and
        // `pad_end <= len` keep both writes inside the area.
        unsafe {
            let base = self.base as *mut u8;
            ptr::copy_nonoverlapping(title.as_ptr(), base, n);
            ptr::write_bytes(base.add(n), 0, pad_end - n);
        }
        n
    }
}
