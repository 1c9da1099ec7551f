//! The multi-process harness: named cases as libtest-mimic trials on one test thread (each runs
//! on the main thread, so it may fork), children that are killed and reaped if a test gives up
//! on them, and bounded waits for them.

use std::process::{Child, ExitCode, ExitStatus};
use std::time::{Duration, Instant};

/// A named case: `Ok` passes; `Err` or a panic fails it, with the message.
pub type TestFn = fn() -> Result<(), String>;

/// Runs the cases as libtest-mimic trials (it takes libtest's arguments: filters, `--list`, …)
/// on one test thread, one after the other; the harness prints every result and libtest's
/// `test result:` line, counting what ran. Call it only after a re-executed helper has taken
/// its role ([`crate::helper::role`]), so that a helper never runs the harness.
pub fn run_tests(tests: &[(&str, TestFn)]) -> ExitCode {
    let mut args = libtest_mimic::Arguments::from_args();
    args.test_threads = Some(1);
    let trials = tests
        .iter()
        .map(|&(name, f)| libtest_mimic::Trial::test(name, move || f().map_err(Into::into)))
        .collect();
    libtest_mimic::run(&args, trials).exit_code()
}

/// [`run_tests`] for cases that fail by panicking (assertions) and return nothing.
pub fn run_cases(cases: &[(&str, fn())]) -> ExitCode {
    let mut args = libtest_mimic::Arguments::from_args();
    args.test_threads = Some(1);
    let trials = cases
        .iter()
        .map(|&(name, f)| {
            libtest_mimic::Trial::test(name, move || {
                f();
                Ok(())
            })
        })
        .collect();
    libtest_mimic::run(&args, trials).exit_code()
}

/// A child process that is killed and reaped if the test gives up on it (on drop).
#[derive(Debug)]
pub struct Proc(pub Child);

impl Proc {
    /// The child's pid.
    pub fn id(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// Waits for `child` for at most `limit`; on timeout kills it and reports a hang.
pub fn wait_child(child: &mut Proc, limit: Duration) -> Result<ExitStatus, String> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(st) = child.0.try_wait().map_err(|e| e.to_string())? {
            return Ok(st);
        }
        if Instant::now() >= deadline {
            let _ = child.0.kill();
            let _ = child.0.wait();
            return Err(format!("watchdog: child {} hung for {limit:?}", child.id()));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Waits (at most `limit`) for the child and requires exit code 0.
pub fn expect_success(child: &mut Proc, limit: Duration) -> Result<(), String> {
    let st = wait_child(child, limit)?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("child {} failed: {st}", child.id()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn wait_child_reports_status_and_hangs() {
        let mut ok = Proc(Command::new("true").spawn().expect("true"));
        assert!(expect_success(&mut ok, Duration::from_secs(10)).is_ok());
        let mut bad = Proc(Command::new("false").spawn().expect("false"));
        assert!(expect_success(&mut bad, Duration::from_secs(10)).is_err());
        let mut hang = Proc(Command::new("sleep").arg("30").spawn().expect("sleep"));
        let e = wait_child(&mut hang, Duration::from_millis(100)).unwrap_err();
        assert!(e.contains("hung"), "{e}");
    }
}
