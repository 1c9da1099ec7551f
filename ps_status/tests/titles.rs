//! Titles as `ps` reads them: this binary re-executes itself as a child that saves its
//! argument area and retitles itself on command (one command per stdin line, each answered
//! on stdout), while the test reads the child's `/proc/<pid>/cmdline` and `ps -o args`.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitCode, Stdio};

const ROLE: &str = "PGIPC_PS_STATUS_TEST_CHILD";

/// The child: `init <cluster>|<fixed part>|<on|off>`, `set <activity>`, `env <NAME>` (its
/// value through std::env), `args` (std::env::args(), joined by `|`).
fn child() -> ExitCode {
    let room = match pgipc_ps_status::save_ps_display_args() {
        Ok(r) => r,
        Err(e) => {
            println!("error {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("room {room}");
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let (cmd, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        let answer = match cmd {
            "init" => {
                let f: Vec<&str> = rest.split('|').collect();
                let opts = pgipc_ps_status::TitleOptions {
                    cluster_name: f[0].to_owned(),
                    update_process_title: f[2] == "on",
                };
                pgipc_ps_status::init_ps_display(f[1], &opts);
                pgipc_ps_status::title()
            }
            "set" => {
                pgipc_ps_status::set_ps_display(rest);
                pgipc_ps_status::title()
            }
            "env" => std::env::var(rest).unwrap_or_else(|_| "<unset>".into()),
            "args" => std::env::args().collect::<Vec<_>>().join("|"),
            _ => "?".into(),
        };
        println!("{answer}");
        let _ = std::io::stdout().flush();
    }
    ExitCode::SUCCESS
}

struct Kid {
    child: Child,
    stdin: ChildStdin,
    out: BufReader<ChildStdout>,
}

impl Kid {
    fn start(args: &[&str]) -> Kid {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(args)
            .env(ROLE, "1")
            .env("PS_TEST_VAR", "still here")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn");
        let stdin = child.stdin.take().unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        out.read_line(&mut first).unwrap();
        assert!(first.starts_with("room "), "{first}");
        Kid { child, stdin, out }
    }

    fn ask(&mut self, cmd: &str) -> String {
        writeln!(self.stdin, "{cmd}").unwrap();
        let mut l = String::new();
        self.out.read_line(&mut l).unwrap();
        l.trim_end_matches('\n').to_owned()
    }

    fn cmdline(&self) -> Vec<u8> {
        std::fs::read(format!("/proc/{}/cmdline", self.child.id())).unwrap()
    }

    fn ps_args(&self) -> String {
        let o = Command::new("ps")
            .args(["-o", "args=", "-p", &self.child.id().to_string()])
            .output()
            .expect("ps");
        String::from_utf8_lossy(&o.stdout).trim_end().to_owned()
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The cmdline is the title, then only NUL bytes.
fn assert_title(k: &Kid, title: &str) {
    let raw = k.cmdline();
    assert!(raw.starts_with(title.as_bytes()), "{raw:?} vs {title:?}");
    assert!(
        raw[title.len()..].iter().all(|b| *b == 0),
        "not NUL-padded after the title: {:?}",
        String::from_utf8_lossy(&raw)
    );
    assert_eq!(k.ps_args(), title.trim_end());
}

fn titles_replace_the_command_line() {
    let mut k = Kid::start(&["-D", "/some/long/data/directory/path", "-c", "port=5432"]);
    assert_eq!(k.ask("init |checkpointer|on"), "postgres: checkpointer ");
    assert_title(&k, "postgres: checkpointer ");
    assert_eq!(
        k.ask("set a much longer activity than the fixed part alone"),
        "postgres: checkpointer a much longer activity than the fixed part alone"
    );
    assert_title(
        &k,
        "postgres: checkpointer a much longer activity than the fixed part alone",
    );
    // Shorter again: the rest of the old title is gone.
    k.ask("set idle");
    assert_title(&k, "postgres: checkpointer idle");
    // The program's own view of its arguments and environment is intact.
    let args = k.ask("args");
    assert!(
        args.ends_with("|-D|/some/long/data/directory/path|-c|port=5432"),
        "{args}"
    );
    assert_eq!(k.ask("env PS_TEST_VAR"), "still here");
    // The environment strings were padded over as well (they follow argv in the area).
    let environ = std::fs::read(format!("/proc/{}/environ", k.child.id())).unwrap();
    assert!(
        !String::from_utf8_lossy(&environ).contains("PS_TEST_VAR"),
        "old environment still visible"
    );
}

fn cluster_name_and_update_off() {
    let mut k = Kid::start(&[]);
    assert_eq!(
        k.ask("init main|postgres postgres [local]|off"),
        "postgres: main: postgres postgres [local] "
    );
    // update_process_title = off: the first title stays.
    k.ask("set idle");
    assert_title(&k, "postgres: main: postgres postgres [local] ");
}

fn main() -> ExitCode {
    if std::env::var_os(ROLE).is_some() {
        return child();
    }
    pgipc_tests::harness::run_cases(&[
        (
            "titles_replace_the_command_line",
            titles_replace_the_command_line,
        ),
        ("cluster_name_and_update_off", cluster_name_and_update_off),
    ])
}
