//! `postmaster --describe-shmem=json`: the layout as JSON that tools can diff, the same rows as
//! the table, and pinned by a snapshot for the reference configuration (PostgreSQL 18's
//! defaults, huge pages off so that the sizes do not depend on the machine).

mod common;

use libtest_mimic::{Arguments, Trial};
use pgipc_ipci::ShmemDescription;
use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch(name: &str) -> Scratch {
    let d = std::env::temp_dir().join(format!(
        "pgipc-describe-shmem-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    Scratch(d)
}

/// Runs the postmaster to completion, killed after 60 s (a hang fails instead of hanging).
fn run(args: &[&str]) -> Output {
    let mut child = common::server::postmaster()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn postmaster");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("postmaster {args:?} did not exit within 60 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().expect("output")
}

fn describe(dir: &Scratch, format: &str) -> String {
    let arg = format!("--describe-shmem{format}");
    let o = run(&["-D", dir.0.to_str().unwrap(), "-c", "huge_pages=off", &arg]);
    assert!(
        o.status.success(),
        "{arg}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).expect("utf-8")
}

fn describe_shmem_json_is_the_table_as_data() {
    let dir = scratch("json");
    let json = describe(&dir, "=json");
    let d: ShmemDescription = serde_json::from_str(&json).expect("valid JSON");
    assert!(
        !dir.0.join("postmaster.pid").exists(),
        "--describe-shmem must not start the server"
    );
    // Every named structure once; the anonymous and the free rows as PostgreSQL's view has them.
    let names: Vec<Option<&str>> = d.allocations.iter().map(|r| r.name.as_deref()).collect();
    for n in [
        "Proc Array",
        "shmInvalBuffer",
        "PMSignalState",
        "ProcSignal",
    ] {
        assert_eq!(
            names.iter().filter(|m| **m == Some(n)).count(),
            1,
            "{n}: {names:?}"
        );
    }
    let anon = d
        .allocations
        .iter()
        .find(|r| r.name.as_deref() == Some("<anonymous>"));
    assert_eq!(anon.map(|r| r.off), Some(None), "{json}");
    assert_eq!(names.last(), Some(&None), "the free row comes last: {json}");
    let sum: u64 = d.allocations.iter().map(|r| r.allocated_size).sum();
    assert_eq!(sum, d.total_size, "the rows cover the segment");
    // The default format is the same rows as a table.
    let table = describe(&dir, "");
    assert_eq!(table, describe(&dir, "=table"));
    assert_eq!(table, d.to_table());
    insta::assert_snapshot!(json);
}

fn describe_shmem_refuses_an_unknown_format() {
    let dir = scratch("xml");
    let o = run(&["-D", dir.0.to_str().unwrap(), "--describe-shmem=xml"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("invalid --describe-shmem format \"xml\""),
        "{err}"
    );
}

fn main() -> std::process::ExitCode {
    if let Some(code) = common::server::serve_if_asked() {
        return code;
    }
    let mut args = Arguments::from_args();
    args.test_threads = Some(1);
    let trials = vec![
        Trial::test("describe_shmem_json_is_the_table_as_data", || {
            describe_shmem_json_is_the_table_as_data();
            Ok(())
        }),
        Trial::test("describe_shmem_refuses_an_unknown_format", || {
            describe_shmem_refuses_an_unknown_format();
            Ok(())
        }),
    ];
    libtest_mimic::run(&args, trials).exit_code()
}
