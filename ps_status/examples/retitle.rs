//! Retitles itself the way a server process does, then waits so that you can look:
//!
//! ```text
//! cargo run -p pgipc-ps-status --example retitle -- some long arguments &
//! ps -o pid,args -p <the pid it prints>
//! ```

use std::time::Duration;

fn main() {
    // First thing, with no other thread: the argument area becomes ours.
    match pgipc_ps_status::save_ps_display_args() {
        Ok(room) => println!("pid {}: {room} bytes for titles", std::process::id()),
        Err(e) => println!(
            "pid {}: titles stay in memory only ({e})",
            std::process::id()
        ),
    }
    let opts = pgipc_ps_status::TitleOptions {
        cluster_name: "demo".to_owned(),
        update_process_title: true,
    };
    pgipc_ps_status::init_ps_display("example worker", &opts);
    for activity in ["starting", "working", "idle"] {
        pgipc_ps_status::set_ps_display(activity);
        println!("title: {:?}", pgipc_ps_status::title());
        std::thread::sleep(Duration::from_secs(5));
    }
    // std::env still sees the original command line and environment.
    println!("args: {:?}", std::env::args().collect::<Vec<_>>());
}
