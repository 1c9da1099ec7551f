//! The compiled-in half (feature `injection_points`): the environment table, the shared
//! table and the actions.

use crate::{Action, InjectionError, ENV_VAR, MAX_INJECTION_POINTS, MAX_NAME_LEN, TABLE_NAME};
use pgipc_lwlock::SpinLock;
use pgipc_shmem::{InitKind, Shared, Shmem, ShmemError, ShmemSafe};
use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// How often a `wait` looks at its entry again.
const WAIT_POLL: Duration = Duration::from_millis(5);

/// One attached point.
///
/// Layout: `#[repr(C)]`, 88 bytes of atomics; all-zero is a free entry. Every field is written
/// under [`InjectionPointTable`]'s spinlock, by whichever process attaches, detaches or wakes up
/// (`waiting` also by the processes waiting at the point).
#[repr(C)]
#[derive(Debug)]
pub struct InjectionPointEntry {
    /// 0 free, 1 attached.
    state: AtomicU32,
    /// The action's code and argument (`Action::code`).
    action: AtomicU32,
    arg: AtomicU32,
    /// Raised by every wakeup; a waiter returns when it changes.
    wakeups: AtomicU32,
    /// Processes blocked at the point right now.
    waiting: AtomicU32,
    /// Raised by every attach of this entry, so a waiter never touches a reused entry.
    generation: AtomicU32,
    name_len: AtomicU32,
    _pad: u32,
    name: [AtomicU8; MAX_NAME_LEN],
}

/// The shared table ("Injection Points" in the Shmem Index).
///
/// Layout: `#[repr(C)]`: a spinlock, a magic word, then [`MAX_INJECTION_POINTS`] entries.
#[repr(C)]
#[derive(Debug)]
pub struct InjectionPointTable {
    lock: SpinLock,
    magic: AtomicU32,
    entries: [InjectionPointEntry; MAX_INJECTION_POINTS],
}

// SAFETY: only atomics and the project's spinlock, `#[repr(C)]`, valid when all-zero (a free
// lock, magic 0 until initialised, free entries); no pointers.
unsafe impl ShmemSafe for InjectionPointTable {}

const MAGIC: u32 = 0x1a1e_c701;

impl InjectionPointEntry {
    fn is(&self, name: &str) -> bool {
        self.state.load(Ordering::Relaxed) == 1
            && self.name_len.load(Ordering::Relaxed) as usize == name.len()
            && name
                .bytes()
                .zip(&self.name)
                .all(|(b, a)| a.load(Ordering::Relaxed) == b)
    }

    fn action(&self) -> Option<Action> {
        Action::from_code(
            self.action.load(Ordering::Relaxed),
            self.arg.load(Ordering::Relaxed),
        )
    }
}

impl InjectionPointTable {
    fn find(&self, name: &str) -> Option<usize> {
        self.entries.iter().position(|e| e.is(name))
    }

    fn attach(&self, name: &str, action: Action) -> Result<(), InjectionError> {
        let _g = self.lock.lock();
        let i = match self.find(name) {
            Some(i) => i,
            None => self
                .entries
                .iter()
                .position(|e| e.state.load(Ordering::Relaxed) == 0)
                .ok_or(InjectionError::TableFull)?,
        };
        let e = &self.entries[i];
        let (code, arg) = action.code();
        for (slot, b) in e.name.iter().zip(name.bytes()) {
            slot.store(b, Ordering::Relaxed);
        }
        e.name_len.store(name.len() as u32, Ordering::Relaxed);
        e.action.store(code, Ordering::Relaxed);
        e.arg.store(arg, Ordering::Relaxed);
        if e.state.load(Ordering::Relaxed) == 0 {
            e.waiting.store(0, Ordering::Relaxed);
            e.generation
                .store(e.generation.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        }
        e.state.store(1, Ordering::Relaxed);
        Ok(())
    }

    fn detach(&self, name: &str) -> Result<(), InjectionError> {
        let _g = self.lock.lock();
        let i = self.find(name).ok_or_else(|| not_attached(name))?;
        let e = &self.entries[i];
        e.state.store(0, Ordering::Relaxed);
        e.name_len.store(0, Ordering::Relaxed);
        Ok(())
    }

    fn wakeup(&self, name: &str) -> Result<(), InjectionError> {
        let _g = self.lock.lock();
        let i = self.find(name).ok_or_else(|| not_attached(name))?;
        let w = &self.entries[i].wakeups;
        w.store(w.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
        Ok(())
    }

    fn waiting(&self, name: &str) -> u32 {
        let _g = self.lock.lock();
        self.find(name)
            .map_or(0, |i| self.entries[i].waiting.load(Ordering::Relaxed))
    }

    /// The action for `name`; for a wait also registers the caller as waiting and returns
    /// what it must watch: (entry, generation, wakeups seen).
    fn lookup(&self, name: &str) -> Option<(Action, usize, u32, u32)> {
        let _g = self.lock.lock();
        let i = self.find(name)?;
        let e = &self.entries[i];
        let a = e.action()?;
        if a == Action::Wait {
            e.waiting
                .store(e.waiting.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        }
        Some((
            a,
            i,
            e.generation.load(Ordering::Relaxed),
            e.wakeups.load(Ordering::Relaxed),
        ))
    }

    /// Blocks until entry `i` (attached as `generation`) is woken up or detached.
    fn wait(&self, name: &str, i: usize, generation: u32, seen: u32) {
        let e = &self.entries[i];
        loop {
            {
                let _g = self.lock.lock();
                let same = e.generation.load(Ordering::Relaxed) == generation;
                if !same || !e.is(name) || e.wakeups.load(Ordering::Relaxed) != seen {
                    if same {
                        let n = e.waiting.load(Ordering::Relaxed).saturating_sub(1);
                        e.waiting.store(n, Ordering::Relaxed);
                    }
                    return;
                }
            }
            std::thread::sleep(WAIT_POLL);
        }
    }
}

fn not_attached(name: &str) -> InjectionError {
    InjectionError::NotAttached {
        name: name.to_owned(),
    }
}

fn check_name(name: &str) -> Result<(), InjectionError> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(InjectionError::InvalidName {
            name: name.to_owned(),
        });
    }
    Ok(())
}

/// Creates (postmaster) or finds (exec'd child) the shared table in `shmem`
/// (PostgreSQL's `InjectionPointShmemInit`).
pub fn shmem_init(shmem: &Shmem) -> Result<(), ShmemError> {
    let (t, kind) = shmem.init_struct::<InjectionPointTable>(TABLE_NAME)?;
    if kind == InitKind::Created {
        t.lock.init();
        t.magic.store(MAGIC, Ordering::Release);
    } else if t.magic.load(Ordering::Acquire) != MAGIC {
        return Err(ShmemError::NotInitialized);
    }
    Ok(())
}

// ---- this process's view ----

static SHARED: Mutex<Option<Shared<InjectionPointTable>>> = Mutex::new(None);
static ENV: OnceLock<Vec<(String, Action)>> = OnceLock::new();

fn shared() -> Option<Shared<InjectionPointTable>> {
    SHARED.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

pub(crate) fn attach_shared(shmem: &Shmem) {
    let t = shmem
        .init_struct::<InjectionPointTable>(TABLE_NAME)
        .ok()
        .filter(|(t, kind)| *kind == InitKind::Attached && t.magic.load(Ordering::Acquire) == MAGIC)
        .map(|(t, _)| t);
    *SHARED.lock().unwrap_or_else(|e| e.into_inner()) = t;
}

fn env_table() -> &'static [(String, Action)] {
    ENV.get_or_init(|| {
        let Ok(spec) = std::env::var(ENV_VAR) else {
            return Vec::new();
        };
        spec.split(';')
            .filter_map(|pair| {
                let (name, action) = pair.split_once('=')?;
                match Action::parse(action) {
                    Some(a) => Some((name.trim().to_owned(), a)),
                    None => {
                        tracing::warn!("{ENV_VAR}: invalid action \"{action}\" for \"{name}\"");
                        None
                    }
                }
            })
            .collect()
    })
}

/// Attaches `action` to `name` in this process's shared table, replacing what was attached
/// (PostgreSQL's `InjectionPointAttach`). Every process that called [`attach_shared`](crate::attach_shared) on the
/// same segment sees it from its next pass over the point.
pub fn attach(name: &str, action: Action) -> Result<(), InjectionError> {
    check_name(name)?;
    shared()
        .ok_or(InjectionError::Unavailable)?
        .attach(name, action)
}

/// Detaches `name` from the shared table; processes waiting at it return
/// (PostgreSQL's `InjectionPointDetach`).
pub fn detach(name: &str) -> Result<(), InjectionError> {
    shared().ok_or(InjectionError::Unavailable)?.detach(name)
}

/// Wakes every process waiting at `name` (the module's `injection_points_wakeup`).
pub fn wakeup(name: &str) -> Result<(), InjectionError> {
    shared().ok_or(InjectionError::Unavailable)?.wakeup(name)
}

/// How many processes are blocked at `name` (attached through the shared table) right now.
pub fn waiting(name: &str) -> u32 {
    shared().map_or(0, |t| t.waiting(name))
}

pub(crate) fn sql_function(name: &str, args: &[String]) -> Option<Result<(), InjectionError>> {
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    Some(match name {
        "injection_points_attach" => match Action::parse(arg(1)) {
            Some(a) => attach(arg(0), a),
            None => Err(InjectionError::InvalidAction {
                name: arg(0).to_owned(),
                action: arg(1).to_owned(),
            }),
        },
        "injection_points_detach" => detach(arg(0)),
        "injection_points_wakeup" => wakeup(arg(0)),
        _ => return None,
    })
}

/// The point `name` is being passed (PostgreSQL's `InjectionPointRun`). A `panic` reports the
/// point's own location.
#[track_caller]
pub(crate) fn run(name: &'static str) -> Result<(), InjectionError> {
    let table = shared();
    let found = table.as_ref().and_then(|t| t.lookup(name));
    let action = match found {
        Some((a, ..)) => a,
        None => match env_table().iter().find(|(n, _)| n == name) {
            Some((_, a)) => *a,
            None => return Ok(()),
        },
    };
    match action {
        Action::Error => {
            return Err(InjectionError::Triggered {
                name: name.to_owned(),
            })
        }
        Action::Notice => tracing::info!("notice triggered for injection point {name}"),
        Action::Sleep(ms) => std::thread::sleep(Duration::from_millis(u64::from(ms))),
        Action::Panic => panic!("panic triggered for injection point {name}"),
        Action::Abort => {
            eprintln!("PANIC:  abort triggered for injection point {name}");
            std::process::abort()
        }
        Action::Wait => match (table, found) {
            (Some(t), Some((_, i, generation, seen))) => t.wait(name, i, generation, seen),
            // Attached through the environment: nobody can wake it; it ends with the process.
            _ => loop {
                std::thread::sleep(Duration::from_millis(100));
            },
        },
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> (Shmem, Shared<InjectionPointTable>) {
        let shm = Shmem::create_for_tests(1 << 20).expect("shmem");
        shmem_init(&shm).expect("init");
        let (t, _) = shm
            .init_struct::<InjectionPointTable>(TABLE_NAME)
            .expect("table");
        (shm, t)
    }

    #[test]
    fn attach_detach_wakeup_on_a_table() {
        let (_shm, t) = table();
        assert_eq!(t.lookup("p"), None);
        t.attach("p", Action::Notice).unwrap();
        assert_eq!(t.lookup("p").map(|l| l.0), Some(Action::Notice));
        // Attaching again replaces the action in place.
        t.attach("p", Action::Sleep(3)).unwrap();
        assert_eq!(t.lookup("p").map(|l| l.0), Some(Action::Sleep(3)));
        assert_eq!(t.lookup("q"), None);
        t.detach("p").unwrap();
        assert_eq!(t.lookup("p"), None);
        assert_eq!(t.detach("p"), Err(not_attached("p")));
        assert_eq!(t.wakeup("p"), Err(not_attached("p")));
    }

    #[test]
    fn the_table_fills_up() {
        let (_shm, t) = table();
        for i in 0..MAX_INJECTION_POINTS {
            t.attach(&format!("p{i}"), Action::Error).unwrap();
        }
        assert_eq!(
            t.attach("one-more", Action::Error),
            Err(InjectionError::TableFull)
        );
        t.detach("p3").unwrap();
        t.attach("one-more", Action::Error).unwrap();
    }

    #[test]
    fn a_waiter_returns_on_wakeup_and_on_detach() {
        let (_shm, t) = table();
        t.attach("w", Action::Wait).unwrap();
        for end in ["wakeup", "detach"] {
            let (a, i, g, seen) = t.lookup("w").unwrap();
            assert_eq!(a, Action::Wait);
            assert_eq!(t.waiting("w"), 1);
            std::thread::scope(|s| {
                let waiter = s.spawn(|| t.wait("w", i, g, seen));
                std::thread::sleep(Duration::from_millis(20));
                assert!(!waiter.is_finished(), "returned before the {end}");
                match end {
                    "wakeup" => t.wakeup("w").unwrap(),
                    _ => t.detach("w").unwrap(),
                }
                waiter.join().unwrap();
            });
        }
        // The waiting count came back down after the wakeup (the detach freed the entry).
        t.attach("w", Action::Wait).unwrap();
        assert_eq!(t.waiting("w"), 0);
    }

    #[test]
    fn names_are_checked() {
        assert!(matches!(
            check_name(""),
            Err(InjectionError::InvalidName { .. })
        ));
        assert!(check_name(&"x".repeat(MAX_NAME_LEN)).is_ok());
        assert!(matches!(
            check_name(&"x".repeat(MAX_NAME_LEN + 1)),
            Err(InjectionError::InvalidName { .. })
        ));
    }
}
