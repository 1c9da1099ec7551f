//! The role catalog as a specification: each command, its errors, and the file.

use super::*;
use pgipc_libpq::PasswordType;
use std::path::{Path, PathBuf};

struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let p = std::env::temp_dir().join(format!("pgipc-authid-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const FAST: PasswordOptions = PasswordOptions {
    encryption: PasswordType::ScramSha256,
    scram_iterations: 16,
    md5_warnings: true,
};

/// Runs `sql` as `actor`; returns the tag and notices, or `SQLSTATE: message[ / detail]`.
fn run(a: &mut Authid, actor: &str, sql: &str) -> String {
    let cmd = match parse_role_command(sql).expect("a role command") {
        Ok(c) => c,
        Err(e) => return format!("{}: {e}", e.sqlstate()),
    };
    match a.execute(&cmd, actor, &FAST) {
        Ok(x) => {
            let mut s = x.tag.to_owned();
            for n in x.notices {
                s.push_str(&format!(" | {:?} {}", n.level, n.message));
            }
            s
        }
        Err(e) => match e.detail() {
            Some(d) => format!("{}: {e} / {d}", e.sqlstate()),
            None => format!("{}: {e}", e.sqlstate()),
        },
    }
}

#[test]
fn commands_follow_postgresql() {
    let d = Dir::new("cmds");
    let mut a = Authid::bootstrap(&d.0, "postgres", None).unwrap();
    let cases: &[(&str, &str, &str)] = &[
        ("postgres", "CREATE ROLE alice LOGIN PASSWORD 'pw'", "CREATE ROLE"),
        ("postgres", "CREATE ROLE alice", "42710: role \"alice\" already exists"),
        ("postgres", "CREATE USER bob", "CREATE ROLE"),
        ("postgres", "CREATE ROLE 'oops'", "42601: syntax error at or near \"'oops'\""),
        ("postgres", "CREATE ROLE \"Quoted\"", "CREATE ROLE"),
        ("postgres", "CREATE ROLE pg_x", "42939: role name \"pg_x\" is reserved / Role names starting with \"pg_\" are reserved."),
        ("postgres", "CREATE ROLE c CONNECTION LIMIT -2", "22023: invalid connection limit: -2"),
        ("postgres", "CREATE ROLE c VALID UNTIL 'soon'", "22007: invalid input syntax for type timestamp with time zone: \"soon\""),
        ("postgres", "CREATE ROLE c PASSWORD ''", "CREATE ROLE | Notice empty string is not a valid password, clearing password"),
        ("alice", "CREATE ROLE d", "42501: permission denied to create role / Only roles with the CREATEROLE attribute may create roles."),
        ("alice", "ALTER ROLE alice PASSWORD 'new'", "ALTER ROLE"),
        ("alice", "ALTER ROLE alice CREATEDB", "42501: permission denied to alter role / Only roles with the CREATEROLE attribute and the ADMIN option on role \"alice\" may alter this role."),
        ("alice", "ALTER ROLE postgres PASSWORD 'x'", "42501: permission denied to alter role / Only roles with the SUPERUSER attribute may alter roles with the SUPERUSER attribute."),
        ("postgres", "ALTER ROLE nobody LOGIN", "42704: role \"nobody\" does not exist"),
        ("postgres", "ALTER ROLE postgres NOSUPERUSER", "42501: permission denied to alter role / The bootstrap user must have the SUPERUSER attribute."),
        ("postgres", "ALTER ROLE bob CREATEROLE", "ALTER ROLE"),
        ("bob", "CREATE ROLE e SUPERUSER", "42501: permission denied to create role / Only roles with the SUPERUSER attribute may create roles with the SUPERUSER attribute."),
        ("bob", "CREATE ROLE e", "CREATE ROLE"),
        ("bob", "DROP ROLE postgres", "2BP01: cannot drop role postgres because it is required by the database system"),
        ("bob", "DROP ROLE bob", "55006: current user cannot be dropped"),
        ("postgres", "DROP ROLE IF EXISTS e, zz", "DROP ROLE | Notice role \"zz\" does not exist, skipping"),
        ("postgres", "DROP ROLE e", "42704: role \"e\" does not exist"),
        ("postgres", "ALTER ROLE c RENAME TO alice", "42710: role \"alice\" already exists"),
        ("postgres", "ALTER ROLE postgres RENAME TO boss", "0A000: session user cannot be renamed"),
    ];
    for (actor, sql, want) in cases {
        assert_eq!(run(&mut a, actor, sql), *want, "{actor}: {sql}");
    }
    let alice = a.get("alice").unwrap();
    assert!(alice.login && !alice.superuser && alice.oid >= 16384);
    let secret = alice.password.as_deref().unwrap();
    assert!(pgipc_libpq::plain_crypt_verify("alice", secret, "new"));
    assert!(
        a.get("bob").unwrap().login,
        "CREATE USER logs in by default"
    );
    assert!(!a.get("c").unwrap().login);
}

#[test]
fn md5_passwords_warn_and_are_cleared_by_rename() {
    let d = Dir::new("md5");
    let mut a = Authid::bootstrap(&d.0, "postgres", None).unwrap();
    let md5 = PasswordOptions {
        encryption: PasswordType::Md5,
        ..FAST
    };
    let cmd = parse_role_command("CREATE ROLE m LOGIN PASSWORD 'pw'")
        .unwrap()
        .unwrap();
    let x = a.execute(&cmd, "postgres", &md5).unwrap();
    assert_eq!(x.notices[0].message, "setting an MD5-encrypted password");
    assert_eq!(x.notices[0].level, NoticeLevel::Warning);
    assert_eq!(
        a.get("m").unwrap().password.as_deref(),
        Some(pgipc_libpq::md5_encrypt(b"pw", b"m").as_str())
    );
    assert_eq!(
        run(&mut a, "postgres", "ALTER ROLE m RENAME TO n"),
        "ALTER ROLE | Notice MD5 password cleared because of role rename"
    );
    assert_eq!(a.get("n").unwrap().password, None);
    // An already-hashed SCRAM secret (psql's \password) is stored as is.
    let secret = pgipc_libpq::scram::scram_build_secret("pw2", 16).unwrap();
    assert_eq!(
        run(
            &mut a,
            "postgres",
            &format!("ALTER ROLE n PASSWORD '{secret}'")
        ),
        "ALTER ROLE"
    );
    assert_eq!(
        a.get("n").unwrap().password.as_deref(),
        Some(secret.as_str())
    );
}

#[test]
fn other_handles_see_saves_through_refresh() {
    let d = Dir::new("refresh");
    let mut a = Authid::bootstrap(&d.0, "postgres", None).unwrap();
    let mut b = Authid::open(&d.0).unwrap();
    assert!(!b.refresh().unwrap());
    run(&mut a, "postgres", "CREATE ROLE x");
    assert!(b.get("x").is_none());
    assert!(b.refresh().unwrap());
    assert!(b.get("x").is_some());
    assert_eq!(b.generation(), 2);
    // A writer works from the latest file, not its stale copy.
    run(&mut b, "postgres", "CREATE ROLE y");
    assert_eq!(run(&mut a, "postgres", "CREATE ROLE z"), "CREATE ROLE");
    let names: Vec<_> = Authid::open(&d.0)
        .unwrap()
        .roles()
        .iter()
        .map(|r| r.name.clone())
        .collect();
    assert_eq!(names, ["postgres", "x", "y", "z"]);
}

#[test]
fn damaged_files_are_refused() {
    let d = Dir::new("corrupt");
    Authid::bootstrap(&d.0, "postgres", Some("pw")).unwrap();
    let path = Authid::file_path(&d.0);
    let good = std::fs::read(&path).unwrap();
    assert!(matches!(
        Authid::bootstrap(&d.0, "postgres", None),
        Err(AuthidError::Exists(_))
    ));
    for cut in [0, 1, good.len() / 2, good.len() - 5] {
        std::fs::write(&path, &good[..cut]).unwrap();
        let e = Authid::open(&d.0).unwrap_err();
        assert!(matches!(e, AuthidError::Corrupt { .. }), "cut {cut}: {e}");
        assert!(e.to_string().starts_with("role file \""), "{e}");
    }
    let mut flipped = good.clone();
    let i = flipped.iter().position(|&b| b == b'p').unwrap();
    flipped[i] = b'q';
    std::fs::write(&path, &flipped).unwrap();
    assert!(matches!(
        Authid::open(&d.0),
        Err(AuthidError::Corrupt { .. })
    ));
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(Authid::open(&d.0), Err(AuthidError::Missing(_))));
    let (a, created) = Authid::open_or_bootstrap(&d.0, "admin").unwrap();
    assert!(created);
    assert_eq!(a.get("admin").unwrap().oid, BOOTSTRAP_SUPERUSERID);
    assert_eq!(a.mock_nonce().len(), 32);
}

#[test]
fn pg_roles_hides_secrets_and_shows_validity() {
    let d = Dir::new("view");
    let mut a = Authid::bootstrap(&d.0, "postgres", None).unwrap();
    run(
        &mut a,
        "postgres",
        "CREATE ROLE v LOGIN PASSWORD 'x' VALID UNTIL '2030-01-02 03:04:05+00'",
    );
    let rows = a.pg_roles();
    let v = rows.iter().find(|r| r.rolname == "v").unwrap();
    assert_eq!(v.rolpassword.as_deref(), Some("********"));
    assert_eq!(v.rolvaliduntil.as_deref(), Some("2030-01-02 03:04:05+00"));
    assert_eq!(rows[0].rolpassword, None);
    let role = a.get("v").unwrap();
    assert!(role.password_for_auth(0).is_ok());
    assert_eq!(
        role.password_for_auth(i64::MAX - 1).unwrap_err(),
        "User \"v\" has an expired password."
    );
    assert_eq!(
        a.get("postgres").unwrap().password_for_auth(0).unwrap_err(),
        "User \"postgres\" has no password assigned."
    );
    assert_eq!(parse_valid_until("infinity"), Ok(i64::MAX));
    let _ = Path::new("unused");
}
