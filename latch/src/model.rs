//! Exhaustive interleaving check of the set/reset/wait protocol, and of postmaster death during
//! a latch-only wait (runs in normal `cargo test`).
//!
//! The owner and up to two setters are small state machines whose steps are the protocol's
//! atomic actions (each load, store, and the kernel's compare-and-enqueue of `FUTEX_WAIT`); a
//! depth-first search visits every interleaving and asserts that no run ends with the owner
//! asleep while work it has not seen is pending. Sequential consistency is assumed here (that
//! is what the two SeqCst fences buy); the loom model in `ci/loom.sh` checks the real code
//! under weaker orderings.

use std::collections::HashSet;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Mode {
    Futex,
    Signal,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct State {
    is_set: bool,
    sleeping: Option<Mode>, // maybe_sleeping
    work: u8,               // work items published
    seen: u8,               // work items the owner has consumed
    pending_signal: bool,   // SIGURG pending on the signalfd
    blocked: bool,          // owner inside FUTEX_WAIT / epoll_wait
    woken: bool,            // a FUTEX_WAKE reached the queued owner
    owner_pc: u8,
    setter_pc: [u8; 2],
}

/// Which protocol to check: the real one, or a deliberately broken one (to show the checker
/// finds lost wake-ups).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Variant {
    Real,
    /// The owner re-checks `is_set` *before* publishing its sleep mode.
    CheckBeforePublish,
    /// The setter skips the wake-up when it finds the latch already set, but the owner
    /// checks work before resetting (check-then-reset order done wrong).
    CheckWorkBeforeReset,
}

struct Checker {
    mode: Mode,
    variant: Variant,
    setters: usize,
    seen_states: HashSet<State>,
    lost: Option<State>,
}

impl Checker {
    /// Owner program: 0 reset, 1 check work, 2 check is_set, 3 publish mode, 4 re-check is_set,
    /// 5 block, 6 awake (clear mode) then back to 0; 7 = done (saw all work).
    fn owner_step(&self, s: &State) -> Option<State> {
        let mut n = *s;
        let total = self.setters as u8;
        match s.owner_pc {
            0 if self.variant == Variant::CheckWorkBeforeReset => {
                // broken order: look at work, then reset
                n.seen = s.work;
                n.owner_pc = 1;
            }
            0 => {
                n.is_set = false;
                n.owner_pc = 1;
            }
            1 if self.variant == Variant::CheckWorkBeforeReset => {
                n.is_set = false;
                n.owner_pc = if n.seen == total { 7 } else { 2 };
            }
            1 => {
                n.seen = s.work;
                n.owner_pc = if n.seen == total { 7 } else { 2 };
            }
            2 => n.owner_pc = if s.is_set { 0 } else { 3 },
            3 if self.variant == Variant::CheckBeforePublish => {
                // broken: check first (step 4's job), then publish
                n.owner_pc = if s.is_set { 0 } else { 8 };
            }
            8 => {
                n.sleeping = Some(self.mode);
                n.owner_pc = 5;
            }
            3 => {
                n.sleeping = Some(self.mode);
                n.owner_pc = 4;
            }
            4 => {
                if s.is_set {
                    n.sleeping = None;
                    n.owner_pc = 0;
                } else {
                    n.owner_pc = 5;
                }
            }
            5 => match self.mode {
                // FUTEX_WAIT: the kernel compares the word and enqueues atomically.
                Mode::Futex if !s.blocked => {
                    if s.is_set {
                        n.owner_pc = 6;
                    } else {
                        n.blocked = true;
                        n.woken = false;
                    }
                }
                Mode::Futex if s.woken => {
                    n.blocked = false;
                    n.owner_pc = 6;
                }
                // epoll_wait on the signalfd: returns when a signal is pending (and drains it).
                Mode::Signal if s.pending_signal => {
                    n.pending_signal = false;
                    n.blocked = false;
                    n.owner_pc = 6;
                }
                Mode::Signal if !s.blocked => n.blocked = true,
                _ => return None, // asleep, no way to move on its own
            },
            6 => {
                n.sleeping = None;
                n.owner_pc = 0;
            }
            _ => return None,
        }
        Some(n)
    }

    /// Setter program: 0 publish work, 1 look at is_set, 2 set it, 3 read mode and wake, 4 done.
    fn setter_step(&self, s: &State, i: usize) -> Option<State> {
        let mut n = *s;
        match s.setter_pc[i] {
            0 => {
                n.work += 1;
                n.setter_pc[i] = 1;
            }
            1 => n.setter_pc[i] = if s.is_set { 4 } else { 2 },
            2 => {
                n.is_set = true;
                n.setter_pc[i] = 3;
            }
            3 => {
                match s.sleeping {
                    Some(Mode::Futex) if s.blocked => n.woken = true,
                    Some(Mode::Signal) => n.pending_signal = true,
                    _ => {}
                }
                n.setter_pc[i] = 4;
            }
            _ => return None,
        }
        Some(n)
    }

    fn explore(&mut self, s: State) {
        if self.lost.is_some() || !self.seen_states.insert(s) {
            return;
        }
        let mut moved = false;
        if let Some(n) = self.owner_step(&s) {
            moved = true;
            self.explore(n);
        }
        for i in 0..self.setters {
            if let Some(n) = self.setter_step(&s, i) {
                moved = true;
                self.explore(n);
            }
        }
        if !moved && s.owner_pc != 7 {
            // Nobody can move and the owner has not seen all the work: a lost wake-up.
            self.lost = Some(s);
        }
    }
}

fn check(mode: Mode, variant: Variant, setters: usize, initially_set: bool) -> Option<State> {
    let mut c = Checker {
        mode,
        variant,
        setters,
        seen_states: HashSet::new(),
        lost: None,
    };
    let mut start = State {
        is_set: initially_set,
        sleeping: None,
        work: 0,
        seen: 0,
        pending_signal: false,
        blocked: false,
        woken: false,
        owner_pc: 0,
        setter_pc: [4; 2],
    };
    for pc in start.setter_pc.iter_mut().take(setters) {
        *pc = 0;
    }
    c.explore(start);
    assert!(c.seen_states.len() > 10, "the search explored something");
    c.lost
}

#[test]
fn real_protocol_never_loses_a_wakeup() {
    for mode in [Mode::Futex, Mode::Signal] {
        for setters in [1, 2] {
            for initially_set in [false, true] {
                let lost = check(mode, Variant::Real, setters, initially_set);
                assert_eq!(lost, None, "{mode:?} setters={setters} set={initially_set}");
            }
        }
    }
}

#[test]
fn checker_finds_lost_wakeups_in_broken_protocols() {
    // Publishing the sleep mode after the last look at `is_set` loses a signal-mode wake-up.
    // In futex mode it does not: the kernel's compare of the futex word (which *is* `is_set`)
    // catches a set that slipped in; the checker agrees.
    assert!(check(Mode::Signal, Variant::CheckBeforePublish, 1, false).is_some());
    assert_eq!(
        check(Mode::Futex, Variant::CheckBeforePublish, 1, false),
        None
    );
    for mode in [Mode::Futex, Mode::Signal] {
        assert!(check(mode, Variant::CheckWorkBeforeReset, 1, true).is_some());
    }
}

// ---------------------------------------------------------------------------------------------
// Postmaster death during a latch-only wait (issue 11).
//
// A waiter in a futex sleep on "my latch" must wake when the parent-death signal arrives. The
// handler raises the "possibly dead" flag and then sets the latch (`waiteventset`'s
// `on_death_signal`); the waiter runs PostgreSQL's loop `reset; wait; if the flag is up, look
// at the postmaster and exit`, where one wait is `LatchOwner::sleep_unless`: publish the futex
// sleep, look at the latch, look at the flag, sleep. The handler may run at any point of the
// waiter's program (a signal interrupts anywhere); the search visits every interleaving.

/// Which waiter/handler pair to check.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum DeathVariant {
    /// Today's code: publish, then check; the handler sets my latch.
    PublishThenCheck,
    /// The code before issue 11: the waiter looks at the flag, *then* publishes the latch the
    /// handler should set (a process-wide "sleeping latch" pointer); the handler sets the latch
    /// only when it finds one published.
    CheckThenPublish,
    /// Publish and sleep without looking at the flag: a death signal that arrived while the
    /// process was busy set a latch that the next `reset` consumed.
    NoFlagCheck,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct DeathState {
    is_set: bool,
    sleeping: bool,  // maybe_sleeping == Futex
    published: bool, // CheckThenPublish: the handler's latch pointer is non-null
    flag: bool,      // possibly_dead
    blocked: bool,   // waiter inside FUTEX_WAIT
    woken: bool,     // a FUTEX_WAKE reached the queued waiter
    waiter_pc: u8,
    handler_pc: u8,
}

const WAITER_DONE: u8 = 9;
const HANDLER_DONE: u8 = 4;

struct DeathChecker {
    variant: DeathVariant,
    seen: HashSet<DeathState>,
    lost: Option<DeathState>,
}

impl DeathChecker {
    /// Waiter: 0 reset, 1 publish futex sleep (+fence), 2 look at is_set, 3 look at the flag,
    /// 4 (CheckThenPublish) publish the latch pointer, 5 FUTEX_WAIT, 6 finish (unpublish),
    /// 7 after the wait: flag up → 9 (exit) else back to 0.
    fn waiter_step(&self, s: &DeathState) -> Option<DeathState> {
        let mut n = *s;
        match s.waiter_pc {
            0 => {
                n.is_set = false;
                n.waiter_pc = 1;
            }
            1 => {
                n.sleeping = true;
                n.waiter_pc = 2;
            }
            2 if s.is_set => {
                n.sleeping = false;
                n.waiter_pc = 7;
            }
            2 if self.variant == DeathVariant::NoFlagCheck => n.waiter_pc = 5,
            2 => n.waiter_pc = 3,
            3 if s.flag => {
                n.sleeping = false;
                n.waiter_pc = 7;
            }
            3 if self.variant == DeathVariant::CheckThenPublish => n.waiter_pc = 4,
            3 => n.waiter_pc = 5,
            4 => {
                n.published = true;
                n.waiter_pc = 5;
            }
            // The kernel compares the futex word and enqueues atomically.
            5 if !s.blocked => {
                if s.is_set {
                    n.waiter_pc = 6;
                } else {
                    n.blocked = true;
                    n.woken = false;
                }
            }
            5 if s.woken => {
                n.blocked = false;
                n.waiter_pc = 6;
            }
            5 => return None, // asleep: only a wake can move it
            6 => {
                n.sleeping = false;
                n.published = false;
                n.waiter_pc = 7;
            }
            7 => n.waiter_pc = if s.flag { WAITER_DONE } else { 0 },
            _ => return None,
        }
        Some(n)
    }

    /// Handler: 0 raise the flag, 1 find the latch (always "my latch", or the published
    /// pointer in CheckThenPublish), 2 `set`: is_set already? else raise it, 3 read the sleep
    /// mode and FUTEX_WAKE a queued waiter.
    fn handler_step(&self, s: &DeathState) -> Option<DeathState> {
        let mut n = *s;
        match s.handler_pc {
            0 => {
                n.flag = true;
                n.handler_pc = 1;
            }
            1 if self.variant == DeathVariant::CheckThenPublish && !s.published => {
                n.handler_pc = HANDLER_DONE;
            }
            1 => n.handler_pc = 2,
            2 if s.is_set => n.handler_pc = HANDLER_DONE,
            2 => {
                n.is_set = true;
                n.handler_pc = 3;
            }
            3 => {
                if s.sleeping && s.blocked {
                    n.woken = true;
                }
                n.handler_pc = HANDLER_DONE;
            }
            _ => return None,
        }
        Some(n)
    }

    fn explore(&mut self, s: DeathState) {
        if self.lost.is_some() || !self.seen.insert(s) {
            return;
        }
        let mut moved = false;
        if let Some(n) = self.waiter_step(&s) {
            moved = true;
            self.explore(n);
        }
        if let Some(n) = self.handler_step(&s) {
            moved = true;
            self.explore(n);
        }
        if !moved && s.waiter_pc != WAITER_DONE {
            // The signal has been handled, and the waiter sleeps with no one left to wake it:
            // it would sleep out its whole timeout with the postmaster dead.
            self.lost = Some(s);
        }
    }
}

fn check_death(variant: DeathVariant, initially_set: bool) -> Option<DeathState> {
    let mut c = DeathChecker {
        variant,
        seen: HashSet::new(),
        lost: None,
    };
    c.explore(DeathState {
        is_set: initially_set,
        sleeping: false,
        published: false,
        flag: false,
        blocked: false,
        woken: false,
        waiter_pc: 0,
        handler_pc: 0,
    });
    assert!(c.seen.len() > 10, "the search explored something");
    c.lost
}

#[test]
fn postmaster_death_never_slept_through() {
    for initially_set in [false, true] {
        assert_eq!(
            check_death(DeathVariant::PublishThenCheck, initially_set),
            None,
            "set={initially_set}"
        );
    }
}

#[test]
fn checker_finds_slept_through_postmaster_death_in_broken_orders() {
    for initially_set in [false, true] {
        // The window before issue 11: the signal lands between the look at the flag and the
        // publication of the latch to set.
        let lost = check_death(DeathVariant::CheckThenPublish, initially_set)
            .expect("check-then-publish loses the death signal");
        assert!(lost.flag && lost.blocked && !lost.is_set, "{lost:?}");
        let lost = check_death(DeathVariant::NoFlagCheck, initially_set)
            .expect("a wait that never looks at the flag loses it");
        assert!(lost.flag && lost.blocked, "{lost:?}");
    }
}
