//! Process titles: what `ps`, `top` and monitoring scripts show for each server process.
//!
//! Mirrors PostgreSQL's `utils/misc/ps_status.c` with its Linux method (`PS_USE_CLOBBER_ARGV`):
//! the kernel shows a process's command line from the memory that held its argument strings,
//! so a process retitles itself by writing over them.
//!
//! ```text
//!  initial stack, after exec:                       after save_ps_display_args + init_ps_display:
//!  ┌──────────────────────────────────────────┐     ┌──────────────────────────────────────────┐
//!  │ argv[0]\0 argv[1]\0 … envp[0]\0 envp[1]\0 │ ──► │ postgres: checkpointer \0\0\0\0\0\0\0\0\0… │
//!  └──────────────────────────────────────────┘     └──────────────────────────────────────────┘
//!    argv[i], environ ─► heap copies (std::env::args() and std::env::var keep working)
//! ```
//!
//! A title is `postgres: [<cluster_name>: ]<fixed part> <activity>`: the fixed part says what
//! the process is (`checkpointer`, `io worker 0`, or for a backend `<user> <database>
//! <host>(<port>)`), the activity what it does now (`idle`, `SELECT`). A shorter title is
//! padded with NUL bytes over the previous one, as PostgreSQL does on Linux.
//!
//! # Contract
//! * [`save_ps_display_args`] runs once, first thing in `main` of the program whose children
//!   will be retitled, while the process has one thread (it moves `environ`, which every
//!   thread's `getenv` reads). A forked child inherits the result; an exec'd child runs `main`
//!   again and calls it again.
//! * [`init_ps_display`] sets the title once, even when `update_process_title` is off;
//!   [`set_ps_display`] changes the activity only when it is on.
//! * The process's state is behind a process-local lock: server processes are single-threaded,
//!   and nothing here lives in shared memory.
//!
//! # What it does not do
//! It does not retitle the postmaster (PostgreSQL leaves the postmaster's command line as it
//! was), has no `setproctitle`/`pstat` methods for other systems (without glibc's
//! `.init_array` arguments it keeps titles in memory only: [`title`] still answers), and does
//! not set the thread name (`ps -o comm`), which the postmaster's launcher does.
//!
//! The raw memory work is all in the `sys` module.

mod sys;

use std::sync::Mutex;

/// Every title starts with this, as PostgreSQL's do.
pub const PROGRAM_NAME_PREFIX: &str = "postgres: ";

/// Why titles cannot be shown to `ps` in this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PsStatusError {
    /// The C library did not hand the program's arguments to initialisers (not glibc).
    #[error("the program's argument area is unknown on this platform")]
    NotCaptured,
    /// The argument area is empty.
    #[error("the program's argument area is empty")]
    EmptyArea,
    /// The program's `argv[0]` is not where the kernel put the arguments.
    #[error("the program's arguments are not where the kernel put them")]
    Moved,
}

/// The settings a title depends on (PostgreSQL's GUCs of the same names).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TitleOptions {
    /// `cluster_name`: shown after the prefix when not empty.
    pub cluster_name: String,
    /// `update_process_title`: when off, only [`init_ps_display`]'s first title is shown.
    pub update_process_title: bool,
}

struct State {
    /// Where titles go (`None`: not saved yet, or not possible here).
    area: Option<sys::Area>,
    /// `Some` once [`save_ps_display_args`] has run (with its outcome).
    saved: Option<Result<usize, PsStatusError>>,
    /// The whole title now.
    title: String,
    /// The length of the fixed part (prefix, cluster name, fixed part and its space).
    fixed_len: usize,
    /// The length of the last title written to the area (what a shorter one pads over).
    last_len: usize,
    update: bool,
}

static STATE: Mutex<State> = Mutex::new(State {
    area: None,
    saved: None,
    title: String::new(),
    fixed_len: 0,
    last_len: 0,
    update: true,
});

fn state() -> std::sync::MutexGuard<'static, State> {
    // A panic while holding it aborts the process (the server's panic hook): poison is moot.
    STATE.lock().unwrap_or_else(|p| p.into_inner())
}

/// PostgreSQL's `save_ps_display_args`: finds the argument and environment strings, moves
/// `environ` and `argv` to copies and keeps the area for titles. Returns the room a title has
/// (bytes). Idempotent: a second call answers what the first did.
///
/// Call it first thing in `main`, before any thread exists (see the crate's contract).
pub fn save_ps_display_args() -> Result<usize, PsStatusError> {
    let mut st = state();
    if let Some(r) = st.saved {
        return r;
    }
    // SAFETY: once per process (guarded by `saved` under the lock) and, by this function's
    // documented contract, before any other thread exists.
    let r = match unsafe { sys::take_area() } {
        Ok(area) => {
            let room = area.len() - 1;
            st.last_len = area.len();
            st.area = Some(area);
            Ok(room)
        }
        Err(sys::NoArea::NotCaptured) => Err(PsStatusError::NotCaptured),
        Err(sys::NoArea::Empty) => Err(PsStatusError::EmptyArea),
        Err(sys::NoArea::Elsewhere) => Err(PsStatusError::Moved),
    };
    st.saved = Some(r);
    r
}

/// The fixed part of a title: `postgres: [<cluster_name>: ]<fixed_part> ` (with the space
/// that separates it from the activity).
pub fn fixed_title(cluster_name: &str, fixed_part: &str) -> String {
    if cluster_name.is_empty() {
        format!("{PROGRAM_NAME_PREFIX}{fixed_part} ")
    } else {
        format!("{PROGRAM_NAME_PREFIX}{cluster_name}: {fixed_part} ")
    }
}

/// PostgreSQL's `init_ps_display`: the process's title becomes the fixed part of
/// [`fixed_title`] with an empty activity, whatever `update_process_title` says.
pub fn init_ps_display(fixed_part: &str, opts: &TitleOptions) {
    let mut st = state();
    st.title = fixed_title(&opts.cluster_name, fixed_part);
    st.fixed_len = st.title.len();
    st.update = opts.update_process_title;
    flush(&mut st);
}

/// PostgreSQL's `set_ps_display`: the activity after the fixed part (`idle`, `SELECT`, …).
/// Nothing happens when `update_process_title` is off.
pub fn set_ps_display(activity: &str) {
    let mut st = state();
    if !st.update {
        return;
    }
    let fixed = st.fixed_len;
    st.title.truncate(fixed);
    st.title.push_str(activity);
    flush(&mut st);
}

/// Follows a change of `update_process_title` (SET or reload) in this process.
pub fn set_update_process_title(on: bool) {
    state().update = on;
}

/// The activity part of the title (PostgreSQL's `get_ps_display`).
pub fn get_ps_display() -> String {
    let st = state();
    st.title.get(st.fixed_len..).unwrap_or("").to_owned()
}

/// The whole title as this process last set it (what `ps` shows when the area is in use).
pub fn title() -> String {
    state().title.clone()
}

/// Writes the title to the area, padding over the previous one.
fn flush(st: &mut State) {
    let State {
        area,
        title,
        last_len,
        ..
    } = st;
    if let Some(a) = area {
        *last_len = a.write(title.as_bytes(), *last_len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_parts_are_postgresql_s() {
        assert_eq!(fixed_title("", "checkpointer"), "postgres: checkpointer ");
        assert_eq!(
            fixed_title("main", "io worker 0"),
            "postgres: main: io worker 0 "
        );
        assert_eq!(
            fixed_title("", "postgres postgres [local]"),
            "postgres: postgres postgres [local] "
        );
    }
}
