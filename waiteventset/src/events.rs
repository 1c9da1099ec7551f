//! Event flags (PostgreSQL's `WL_*`) and the record of an event that fired.

use std::fmt;
use std::ops::{BitAnd, BitOr, BitOrAssign, Not};
use std::os::fd::RawFd;

/// A set of `WL_*` flags, with PostgreSQL's bit values (Linux build).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct WaitEvents(u32);

impl WaitEvents {
    /// Nothing.
    pub const NONE: WaitEvents = WaitEvents(0);
    /// The latch is set (`WL_LATCH_SET`).
    pub const LATCH_SET: WaitEvents = WaitEvents(1 << 0);
    /// The socket is readable, or at EOF, or in error (`WL_SOCKET_READABLE`).
    pub const SOCKET_READABLE: WaitEvents = WaitEvents(1 << 1);
    /// The socket is writeable, or in error (`WL_SOCKET_WRITEABLE`).
    pub const SOCKET_WRITEABLE: WaitEvents = WaitEvents(1 << 2);
    /// Returned by `wait_latch*` when the timeout elapsed (`WL_TIMEOUT`); never an event.
    pub const TIMEOUT: WaitEvents = WaitEvents(1 << 3);
    /// The postmaster died (`WL_POSTMASTER_DEATH`).
    pub const POSTMASTER_DEATH: WaitEvents = WaitEvents(1 << 4);
    /// Exit(1) if the postmaster dies (`WL_EXIT_ON_PM_DEATH`).
    pub const EXIT_ON_PM_DEATH: WaitEvents = WaitEvents(1 << 5);
    /// A non-blocking connect finished (`WL_SOCKET_CONNECTED`; = writeable on Unix).
    pub const SOCKET_CONNECTED: WaitEvents = WaitEvents::SOCKET_WRITEABLE;
    /// The peer closed, or the socket is in error (`WL_SOCKET_CLOSED`).
    pub const SOCKET_CLOSED: WaitEvents = WaitEvents(1 << 7);
    /// A listening socket has a connection to accept (`WL_SOCKET_ACCEPT`; = readable on Unix).
    pub const SOCKET_ACCEPT: WaitEvents = WaitEvents::SOCKET_READABLE;
    /// Every socket flag (`WL_SOCKET_MASK`).
    pub const SOCKET_MASK: WaitEvents = WaitEvents((1 << 1) | (1 << 2) | (1 << 7));

    const KNOWN: u32 = 0b1011_1111;

    /// From raw `WL_*` bits.
    pub const fn from_bits(bits: u32) -> WaitEvents {
        WaitEvents(bits)
    }

    /// The raw `WL_*` bits.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Whether every flag of `other` is in `self`.
    pub const fn contains(self, other: WaitEvents) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether any flag of `other` is in `self`.
    pub const fn intersects(self, other: WaitEvents) -> bool {
        self.0 & other.0 != 0
    }

    /// Whether no flag is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub(crate) fn has_unknown_bits(self) -> bool {
        self.0 & !Self::KNOWN != 0
    }
}

impl BitOr for WaitEvents {
    type Output = WaitEvents;
    fn bitor(self, o: WaitEvents) -> WaitEvents {
        WaitEvents(self.0 | o.0)
    }
}

impl BitOrAssign for WaitEvents {
    fn bitor_assign(&mut self, o: WaitEvents) {
        self.0 |= o.0;
    }
}

impl BitAnd for WaitEvents {
    type Output = WaitEvents;
    fn bitand(self, o: WaitEvents) -> WaitEvents {
        WaitEvents(self.0 & o.0)
    }
}

impl Not for WaitEvents {
    type Output = WaitEvents;
    fn not(self) -> WaitEvents {
        WaitEvents(!self.0)
    }
}

impl fmt::Debug for WaitEvents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [(u32, &str); 8] = [
            (1 << 0, "LATCH_SET"),
            (1 << 1, "SOCKET_READABLE"),
            (1 << 2, "SOCKET_WRITEABLE"),
            (1 << 3, "TIMEOUT"),
            (1 << 4, "POSTMASTER_DEATH"),
            (1 << 5, "EXIT_ON_PM_DEATH"),
            (1 << 6, "BIT6"),
            (1 << 7, "SOCKET_CLOSED"),
        ];
        if self.0 == 0 {
            return f.write_str("NONE");
        }
        let mut first = true;
        for (bit, name) in NAMES {
            if self.0 & bit != 0 {
                if !first {
                    f.write_str(" | ")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        let rest = self.0 & !0xff;
        if rest != 0 {
            write!(f, "{}{rest:#x}", if first { "" } else { " | " })?;
        }
        Ok(())
    }
}

/// An event that fired, from [`WaitEventSet::wait`](crate::WaitEventSet::wait).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitEvent {
    /// The event's position in the set (the value `add` returned).
    pub pos: usize,
    /// What happened.
    pub events: WaitEvents,
    /// The socket, for socket events.
    pub fd: Option<RawFd>,
    /// The caller's value given at `add`.
    pub user_data: u64,
}

impl WaitEvent {
    /// An empty record, to fill an output buffer with.
    pub const EMPTY: WaitEvent = WaitEvent {
        pos: 0,
        events: WaitEvents::NONE,
        fd: None,
        user_data: 0,
    };
}
