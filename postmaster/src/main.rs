//! `postmaster`: the pgipc server. See the library's docs for the start-up sequence.

fn main() -> std::process::ExitCode {
    pgipc_postmaster::entry::postmaster_main(std::env::args().skip(1))
}
