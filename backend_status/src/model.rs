//! Exhaustive interleaving check of the change-count protocol (runs in normal `cargo test`).
//!
//! A writer publishes versions 1..=N of a two-word entry (both words equal the version); a
//! reader copies the entry the way [`crate::BackendStatusArray::read_entry`] does. Each
//! program step is one of the protocol's atomic actions; a depth-first search visits every
//! interleaving and asserts that the reader never keeps a copy whose words differ (a torn
//! read). Sequential consistency is assumed here; the fences in the real code give the
//! orderings this model takes for granted. Two deliberately broken variants show the checker
//! finds torn reads.

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    enum Variant {
        Real,
        /// The writer does not make the count odd first (it adds 2 when done).
        WriterNeverOdd,
        /// The reader does not compare the count after its copy.
        ReaderSkipsRecheck,
    }

    #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
    struct State {
        count: u8,
        a: u8,
        b: u8,
        w_pc: u8,
        w_version: u8,
        r_pc: u8,
        r_c1: u8,
        r_a: u8,
        r_b: u8,
        /// The copies the reader kept: (a, b) of the last one, and how many.
        kept: Option<(u8, u8)>,
        reads_done: u8,
    }

    struct Checker {
        variant: Variant,
        versions: u8,
        reads: u8,
        seen: HashSet<State>,
        torn: Option<State>,
        kept_reads: usize,
    }

    impl Checker {
        /// Writer: 0 count+=1 (odd), 1 a=v, 2 b=v, 3 count+=1 (even), next version.
        fn writer_step(&self, s: &State) -> Option<State> {
            if s.w_version > self.versions {
                return None;
            }
            let mut n = *s;
            let v = s.w_version;
            match s.w_pc {
                0 => {
                    if self.variant != Variant::WriterNeverOdd {
                        n.count += 1;
                    }
                    n.w_pc = 1;
                }
                1 => {
                    n.a = v;
                    n.w_pc = 2;
                }
                2 => {
                    n.b = v;
                    n.w_pc = 3;
                }
                _ => {
                    n.count += if self.variant == Variant::WriterNeverOdd {
                        2
                    } else {
                        1
                    };
                    n.w_pc = 0;
                    n.w_version += 1;
                }
            }
            Some(n)
        }

        /// Reader: 0 c1=count (odd: stay), 1 copy a, 2 copy b, 3 c2=count: keep iff equal.
        fn reader_step(&self, s: &State) -> Option<State> {
            if s.reads_done >= self.reads {
                return None;
            }
            let mut n = *s;
            match s.r_pc {
                0 => {
                    n.r_c1 = s.count;
                    n.r_pc = if s.count % 2 == 1 { 0 } else { 1 };
                }
                1 => {
                    n.r_a = s.a;
                    n.r_pc = 2;
                }
                2 => {
                    n.r_b = s.b;
                    n.r_pc = 3;
                }
                _ => {
                    n.r_pc = 0;
                    if self.variant == Variant::ReaderSkipsRecheck || s.count == s.r_c1 {
                        n.kept = Some((s.r_a, s.r_b));
                        n.reads_done += 1;
                    }
                }
            }
            Some(n)
        }

        fn explore(&mut self, s: State) {
            if self.torn.is_some() || !self.seen.insert(s) {
                return;
            }
            if let Some((a, b)) = s.kept {
                if a != b {
                    self.torn = Some(s);
                    return;
                }
            }
            if s.reads_done > 0 && s.r_pc == 0 {
                self.kept_reads += 1;
            }
            if let Some(n) = self.writer_step(&s) {
                self.explore(n);
            }
            if let Some(n) = self.reader_step(&s) {
                self.explore(n);
            }
        }
    }

    fn check(variant: Variant, versions: u8, reads: u8) -> (Option<State>, usize, usize) {
        let mut c = Checker {
            variant,
            versions,
            reads,
            seen: HashSet::new(),
            torn: None,
            kept_reads: 0,
        };
        let start = State {
            count: 0,
            a: 0,
            b: 0,
            w_pc: 0,
            w_version: 1,
            r_pc: 0,
            r_c1: 0,
            r_a: 0,
            r_b: 0,
            kept: None,
            reads_done: 0,
        };
        c.explore(start);
        (c.torn, c.seen.len(), c.kept_reads)
    }

    #[test]
    fn the_real_protocol_never_keeps_a_torn_copy() {
        for versions in 1..=3 {
            for reads in 1..=3 {
                let (torn, states, kept) = check(Variant::Real, versions, reads);
                assert_eq!(torn, None, "{versions} versions, {reads} reads");
                assert!(states > 10 && kept > 0, "the search ran ({states} states)");
            }
        }
    }

    #[test]
    fn a_writer_that_never_goes_odd_is_caught() {
        let (torn, _, _) = check(Variant::WriterNeverOdd, 1, 1);
        let s = torn.expect("the checker must find a torn read");
        let (a, b) = s.kept.expect("a kept copy");
        assert_ne!(a, b);
    }

    #[test]
    fn a_reader_that_skips_the_second_count_is_caught() {
        let (torn, _, _) = check(Variant::ReaderSkipsRecheck, 1, 1);
        assert!(torn.is_some(), "the checker must find a torn read");
    }
}
