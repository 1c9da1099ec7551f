//! Killing a writer at any moment never corrupts the role file: a child process (this test
//! binary re-executed) runs ALTER ROLE after ALTER ROLE; the parent SIGKILLs it at a random
//! moment, then the file must load and hold either the password before the last command or
//! the one after it — never a mix, never nothing. Repeated many times.
//!
//! A `harness = false` test: the child is started by exec, never forked from a threaded harness.

use libtest_mimic::{Arguments, Failed, Trial};
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

/// SIGKILLs a writer 40 times at varying moments; after each kill the file must load with a
/// whole command's result.
fn kills() -> Result<(), Failed> {
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
                return Err(format!(
                    "round {round}: the role file does not load after a kill: {e}"
                )
                .into());
            }
        };
        let limit = a.get("w").expect("role w").connection_limit;
        // Each child starts again from 1; any value it reached is a whole command's.
        if limit < 1 && last >= 1 {
            return Err(format!("round {round}: connection limit went back to {limit}").into());
        }
        if limit != last {
            advanced += 1;
        }
        last = limit;
        if a.roles().len() != 2 {
            return Err(format!("round {round}: {} roles", a.roles().len()).into());
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
    println!("{rounds} kills, the file loaded after each; it changed in {advanced} of them");
    Ok(())
}

fn main() -> ExitCode {
    if let Some(dir) = std::env::var_os(CHILD) {
        return child(PathBuf::from(dir));
    }
    let mut args = Arguments::from_args();
    // The trial spawns processes; one test thread keeps it the only one running.
    args.test_threads = Some(1);
    let trials = vec![Trial::test(
        "a writer killed at any moment leaves a role file that loads with a whole command",
        kills,
    )];
    libtest_mimic::run(&args, trials).exit_code()
}
