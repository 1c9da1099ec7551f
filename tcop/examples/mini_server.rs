//! A minimal server around `backend_main`: shared memory from `ipci`, listen sockets from
//! `libpq`, one forked backend per connection, and cancel requests wired to ProcSignal. It is
//! not the postmaster (no child slots, no shutdown modes, no crash restart); it shows what the
//! postmaster has to do to run a client backend, and the integration tests drive it with psql,
//! pgbench and the `postgres` crate.
//!
//! ```text
//! cargo run -p pgipc-tcop --example mini_server -- --port 5499 --socket-dir /tmp
//! psql -h /tmp -p 5499 -c 'SELECT pg_backend_pid()'
//! ```
//!
//! Options: `--port N` (required), `--socket-dir DIR` (required), `--max-connections N`
//! (default 20; more live sessions get "sorry, too many clients already"), `--cac
//! ok|startup|shutdown|recovery|toomany` (refuse every connection this way),
//! `--auth-timeout-ms N`. It prints `READY <pid>` on stdout once it listens, and stops on
//! SIGTERM or SIGINT (terminating its backends and removing its socket files).
//!
//! The main loop is single-threaded, so forking from it is safe.

use nix::sys::signal::{kill, sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};
use pgipc_ipci::{create_shared_memory_and_semaphores, Addins, IpcConfig};
use pgipc_libpq::{accept_nonblocking, ListenConfig, ListenSockets};
use pgipc_proc::ProcNumber;
use pgipc_procsignal::ProcSignal;
use pgipc_query::{Catalog, Datum, QueryError, ServerFunction, Type, Volatility};
use pgipc_tcop::{backend_main, BackendContext, BackendHooks, CanAcceptConnections};
use pgipc_waiteventset::PostmasterDeathPipe;
use rustix::event::{poll, PollFd, PollFlags};
use rustix::time::Timespec;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop(_sig: i32) {
    STOP.store(true, Ordering::SeqCst);
}

/// Command-line options.
#[derive(Debug)]
struct Options {
    port: u16,
    socket_dir: String,
    max_connections: u32,
    cac: Option<CanAcceptConnections>,
    auth_timeout: Duration,
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        port: 0,
        socket_dir: String::new(),
        max_connections: 20,
        cac: None,
        auth_timeout: Duration::from_secs(60),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--port" => o.port = val()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--socket-dir" => o.socket_dir = val()?,
            "--max-connections" => {
                o.max_connections = val()?.parse().map_err(|e| format!("{e}"))?
            }
            "--auth-timeout-ms" => {
                o.auth_timeout = Duration::from_millis(val()?.parse().map_err(|e| format!("{e}"))?)
            }
            "--cac" => {
                o.cac = Some(match val()?.as_str() {
                    "ok" => CanAcceptConnections::Ok,
                    "startup" => CanAcceptConnections::Startup,
                    "shutdown" => CanAcceptConnections::Shutdown,
                    "recovery" => CanAcceptConnections::Recovery,
                    "toomany" => CanAcceptConnections::TooMany,
                    other => return Err(format!("unknown --cac {other}")),
                })
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    if o.port == 0 || o.socket_dir.is_empty() {
        return Err("--port and --socket-dir are required".into());
    }
    Ok(o)
}

/// The backend's hooks: cancel requests and cancel keys go through ProcSignal, as in
/// PostgreSQL 18.
#[derive(Debug)]
struct Hooks {
    procsignal: ProcSignal,
}

impl BackendHooks for Hooks {
    fn cancel_request(&self, pid: i32, key: &[u8]) {
        self.procsignal.send_cancel_request(pid, key);
    }

    fn register_cancel_key(&self, procno: ProcNumber, pid: i32, key: &[u8]) -> Result<(), String> {
        self.procsignal
            .init_slot(procno, pid, Some(key))
            .map_err(|e| e.to_string())
    }

    fn install_signal_handlers(&self) -> Result<(), String> {
        pgipc_procsignal::install_handler().map_err(|e| e.to_string())
    }

    /// One extra function, to show how a server adds its own: `mini_add(a, b, …)` (one to
    /// four `bigint`s) returns their sum.
    fn register_functions(&self, catalog: &mut Catalog) {
        for n in 1..=4 {
            catalog.add_function(ServerFunction {
                name: "mini_add".into(),
                args: vec![Type::Int8; n],
                result: Type::Int8,
                volatility: Volatility::Immutable,
                strict: true,
                call: Rc::new(|_, args| {
                    let mut sum: i64 = 0;
                    for a in args {
                        let Datum::Int8(v) = a else {
                            return Ok(Datum::Null);
                        };
                        sum = sum
                            .checked_add(*v)
                            .ok_or_else(|| QueryError::new("22003", "bigint out of range"))?;
                    }
                    Ok(Datum::Int8(sum))
                }),
            });
        }
    }
}

/// Runs the server; returns the process exit code.
pub(crate) fn run(args: &[String]) -> i32 {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .try_init();
    let opts = match parse_args(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("mini_server: {e}");
            return 2;
        }
    };
    match serve(&opts) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("mini_server: {e}");
            1
        }
    }
}

fn serve(opts: &Options) -> Result<(), String> {
    pgipc_waiteventset::initialize_wait_event_support().map_err(|e| e.to_string())?;
    let cfg = IpcConfig {
        max_connections: opts.max_connections,
        ..IpcConfig::default()
    };
    let state = create_shared_memory_and_semaphores(&cfg, &Addins::new())
        .map_err(|e| format!("could not create shared memory: {e}"))?;
    // Where the DSM control segment is, for whoever must clean up after a SIGKILL (a real
    // postmaster finds it through the data directory's interlock).
    let _ = std::fs::write(
        std::path::Path::new(&opts.socket_dir).join("dsm_control"),
        state.shmem.dsm_control().to_string(),
    );
    let procsignal = pgipc_procsignal::shmem_init(
        &state.shmem,
        cfg.num_proc_signal_slots().map_err(|e| e.to_string())? as usize,
    )
    .map_err(|e| e.to_string())?;
    let mut pm_pipe = Some(PostmasterDeathPipe::create().map_err(|e| e.to_string())?);
    let mut socks = Some(
        ListenSockets::open(&ListenConfig {
            listen_addresses: "127.0.0.1".into(),
            port: opts.port,
            unix_socket_directories: opts.socket_dir.clone(),
            unix_socket_permissions: 0o777,
            data_dir: opts.socket_dir.clone().into(),
            backlog: 64,
        })
        .map_err(|e| e.to_string())?,
    );
    for sig in [Signal::SIGTERM, Signal::SIGINT] {
        let act = SigAction::new(
            SigHandler::Handler(on_stop),
            SaFlags::empty(),
            SigSet::empty(),
        );
        // SAFETY: the handler only stores an atomic.
        unsafe { sigaction(sig, &act) }.map_err(|e| e.to_string())?;
    }
    // pg_postmaster_start_time(): now, in PostgreSQL's microseconds.
    let started = pgipc_query::system_now();
    // The server's settings, as a postmaster's command line would give them.
    let mut settings = pgipc_guc::Settings::new();
    for (name, value) in [
        ("max_connections", opts.max_connections.to_string()),
        ("port", opts.port.to_string()),
        ("unix_socket_directories", opts.socket_dir.clone()),
        ("listen_addresses", "127.0.0.1".into()),
    ] {
        settings
            .set(name, &value, pgipc_guc::Source::CommandLine)
            .map_err(|e| e.to_string())?;
    }
    println!("READY {}", std::process::id());
    let _ = std::io::stdout().flush();

    let mut children: Vec<Pid> = Vec::new();
    while !STOP.load(Ordering::SeqCst) {
        reap(&mut children, WaitPidFlag::WNOHANG);
        let Some(listen) = socks.as_ref() else { break };
        let mut fds: Vec<PollFd<'_>> = listen
            .fds()
            .iter()
            .map(|f| PollFd::new(f, PollFlags::IN))
            .collect();
        let timeout = Timespec {
            tv_sec: 0,
            tv_nsec: 100_000_000,
        };
        if poll(&mut fds, Some(&timeout)).unwrap_or(0) == 0 {
            continue;
        }
        let ready: Vec<usize> = fds
            .iter()
            .enumerate()
            .filter(|(_, f)| !f.revents().is_empty())
            .map(|(i, _)| i)
            .collect();
        for i in ready {
            let client = match accept_nonblocking(listen.fds()[i].as_fd()) {
                Ok(Some(c)) => c,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!("could not accept new connection: {e}");
                    continue;
                }
            };
            let cac = opts
                .cac
                .unwrap_or(if children.len() as u32 >= opts.max_connections {
                    CanAcceptConnections::TooMany
                } else {
                    CanAcceptConnections::Ok
                });
            // SAFETY: this process is single-threaded, so the child may run arbitrary code.
            match unsafe { fork() } {
                Ok(ForkResult::Child) => {
                    let ctx = BackendContext {
                        shmem: state.shmem.clone(),
                        proc_config: cfg.proc_config(),
                        cac,
                        authentication_timeout: opts.auth_timeout,
                        settings: settings.clone(),
                        // No postmaster's list here to start background workers.
                        pmsignal: None,
                        hooks: Box::new(Hooks {
                            procsignal: procsignal.clone(),
                        }),
                        // No crash restarts here, so no recorded reason.
                        quit_reason: None,
                        postmaster_start_time: started,
                    };
                    child(client, socks.take(), pm_pipe.take(), ctx);
                }
                Ok(ForkResult::Parent { child }) => children.push(child),
                Err(e) => tracing::warn!("could not fork new process for connection: {e}"),
            }
        }
    }

    // Stop: terminate the backends, wait (SIGKILL after 5 s), remove the socket files.
    for c in &children {
        let _ = kill(*c, Signal::SIGTERM);
    }
    let until = Instant::now() + Duration::from_secs(5);
    while !children.is_empty() && Instant::now() < until {
        reap(&mut children, WaitPidFlag::WNOHANG);
        std::thread::sleep(Duration::from_millis(10));
    }
    for c in &children {
        let _ = kill(*c, Signal::SIGKILL);
    }
    reap(&mut children, WaitPidFlag::empty());
    if let Some(mut s) = socks {
        s.remove_files();
    }
    state.shutdown().map_err(|e| e.to_string())
}

fn reap(children: &mut Vec<Pid>, flags: WaitPidFlag) {
    while !children.is_empty() {
        match waitpid(Pid::from_raw(-1), Some(flags)) {
            Ok(WaitStatus::Exited(pid, _)) | Ok(WaitStatus::Signaled(pid, _, _)) => {
                children.retain(|c| *c != pid)
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// The forked child: drop what belongs to the server, become a backend, exit.
fn child(
    client: OwnedFd,
    socks: Option<ListenSockets>,
    pm_pipe: Option<PostmasterDeathPipe>,
    ctx: BackendContext,
) -> ! {
    pgipc_ipc::on_exit_reset();
    pgipc_waiteventset::forget_wait_sets_after_fork();
    if let Some(s) = socks {
        s.close_in_child();
    }
    if let Some(p) = pm_pipe {
        let _ = p.into_child_watch().install();
    }
    for sig in [Signal::SIGTERM, Signal::SIGINT] {
        let act = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
        // SAFETY: restoring the default disposition.
        let _ = unsafe { sigaction(sig, &act) };
    }
    let code = backend_main(client, ctx);
    pgipc_ipc::proc_exit(code)
}

#[allow(dead_code)]
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(run(&args));
}
