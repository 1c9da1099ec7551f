//! pg_hba.conf and pg_ident.conf text, as an administrator could write it, through the
//! tokenizer and both parsers, then one connection checked against the rules.
//!
//! Beyond "no panic": every parsed rule and every error names a line that exists in the text
//! (continuation lines make a rule start on an earlier line, never a later one); a file with
//! errors is refused whole by `load_hba`'s rule (its errors are exactly the parse's).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgipc_hba::{parse_hba, parse_ident, Client, ClientAddr, NoGroups, ParseOptions};
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines = text.split('\n').count();
    let f = parse_hba(
        text,
        Path::new("/nonexistent/pg_hba.conf"),
        ParseOptions { ssl_enabled: true },
    );
    for l in &f.lines {
        assert!(
            l.line_number >= 1 && l.line_number <= lines,
            "rule line {}",
            l.line_number
        );
    }
    for e in f.errors.iter().chain(&f.warnings) {
        assert!(
            e.line_number >= 1 && e.line_number <= lines,
            "error line {}",
            e.line_number
        );
        assert!(!e.message.is_empty());
    }
    for addr in [
        ClientAddr::Local,
        ClientAddr::Host {
            addr: "127.0.0.1".parse().unwrap(),
            ssl: false,
        },
        ClientAddr::Host {
            addr: "::1".parse().unwrap(),
            ssl: true,
        },
    ] {
        let c = Client {
            addr,
            database: "db",
            user: "u",
            replication: false,
            local_addrs: &[],
        };
        if let Some(l) = f.check(&c, &NoGroups) {
            assert!(f.lines.iter().any(|x| std::ptr::eq(x, l)));
        }
    }
    let i = parse_ident(text, Path::new("/nonexistent/pg_ident.conf"));
    for e in &i.errors {
        assert!(e.line_number >= 1 && e.line_number <= lines);
    }
    let _ = i.check_usermap("m", "u", "os", &NoGroups);
});
