//! Killing a writer at any moment never corrupts the role file: a child process (this test
//! binary re-executed) runs ALTER ROLE after ALTER ROLE; the parent SIGKILLs it at a random
//! moment, then the file must load and hold either the password before the last command or
//! the one after it — never a mix, never nothing. Repeated many times.
//!
//! A `harness = false` test: the child is started by exec, never forked from a threaded harness.

use pgipc_authid::{parse_role_command, Authid, PasswordOptions};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

const CHILD: &str = "PGIPC_AUTHID_CRASH_CHILD";

/// The child: ALTER ROLE w CONNECTION LIMIT n for n = 1, 2, … until killed.
fn child(dir: PathBuf) -> ExitCode {
    let mut a = Authid::open(&dir).expect("role file");
    let opts = PasswordOptions {
        scram_iterations: 1,
        ..PasswordOptions::default()
    };
    for n in 1.. {
        let sql = format!("ALTER ROLE w CONNECTION LIMIT {n}");
        let cmd = parse_role_command(&sql).unwrap().unwrap();
        a.execute(&cmd, "postgres", &opts).expect("alter");
    }
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    if let Some(dir) = std::env::var_os(CHILD) {
        return child(PathBuf::from(dir));
    }
    let dir = std::env::temp_dir().join(format!("pgipc-authid-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut a = Authid::bootstrap(&dir, "postgres", None).unwrap();
    let cmd = parse_role_command("CREATE ROLE w").unwrap().unwrap();
    a.execute(&cmd, "postgres", &PasswordOptions::default())
        .unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut last = -1;
    let rounds = 40;
    let mut advanced = 0;
    for round in 0..rounds {
        let mut c = Command::new(&exe)
            .env(CHILD, &dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Somewhere between 5 and 45 ms into its run.
        std::thread::sleep(Duration::from_millis(5 + (round * 7919 % 41) as u64));
        c.kill().unwrap();
        c.wait().unwrap();
        let a = match Authid::open(&dir) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("round {round}: the role file does not load after a kill: {e}");
                return ExitCode::FAILURE;
            }
        };
        let limit = a.get("w").expect("role w").connection_limit;
        // Each child starts again from 1; any value it reached is a whole command's.
        if limit < 1 && last >= 1 {
            eprintln!("round {round}: connection limit went back to {limit}");
            return ExitCode::FAILURE;
        }
        if limit != last {
            advanced += 1;
        }
        last = limit;
        if a.roles().len() != 2 {
            eprintln!("round {round}: {} roles", a.roles().len());
            return ExitCode::FAILURE;
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
    println!("{rounds} kills, the file loaded after each; it changed in {advanced} of them");
    println!("1 passed, 0 failed");
    ExitCode::SUCCESS
}
