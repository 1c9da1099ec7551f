//! Role commands as a backend runs them (PostgreSQL's `commands/user.c` as reached from
//! `ProcessUtility`): the SQL recognised by `pgipc_authid::parse_role_command`, run on the
//! data directory's role catalog as the session user, with `password_encryption`,
//! `scram_iterations` and `md5_password_warnings` from the session's settings; the result as
//! the wire messages need it.

use pgipc_authid::{parse_role_command, Authid, NoticeLevel, PasswordOptions};
use pgipc_guc::Settings;
use pgipc_libpq::{ErrorFields, PasswordType, Severity};

/// A role command that ran: its command tag and the notices to send before CommandComplete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleCommandDone {
    /// `CREATE ROLE`, `ALTER ROLE` or `DROP ROLE`.
    pub tag: &'static str,
    /// NoticeResponse bodies (NOTICE or WARNING).
    pub notices: Vec<ErrorFields>,
}

/// Runs `sql` when it is a role command (CREATE/ALTER/DROP ROLE, USER or GROUP) as
/// `session_user`; `None` when it is not one. An error is an ERROR report for the client. The
/// change is saved (durably) before this returns: role commands are not transactional here.
pub fn role_command(
    settings: &Settings,
    session_user: &str,
    sql: &str,
) -> Option<Result<RoleCommandDone, Box<ErrorFields>>> {
    let cmd = parse_role_command(sql)?;
    Some(run(settings, session_user, cmd))
}

/// Whether `sql` is a role command, and if so whether it parses (the check the extended
/// protocol's Parse makes; Execute then runs it with [`role_command`]).
pub(crate) fn check_role_command(sql: &str) -> Option<Result<(), Box<ErrorFields>>> {
    Some(parse_role_command(sql)?.map(|_| ()).map_err(report))
}

fn report(e: pgipc_authid::RoleError) -> Box<ErrorFields> {
    let mut f = ErrorFields::new(Severity::Error, e.sqlstate(), e.to_string());
    if let Some(d) = e.detail() {
        f = f.with_detail(d);
    }
    Box::new(f)
}

fn run(
    settings: &Settings,
    session_user: &str,
    cmd: Result<pgipc_authid::RoleCommand, pgipc_authid::RoleError>,
) -> Result<RoleCommandDone, Box<ErrorFields>> {
    let cmd = cmd.map_err(report)?;
    let dir = settings.show("data_directory").unwrap_or_default();
    if dir.is_empty() {
        return Err(Box::new(ErrorFields::new(
            Severity::Error,
            "0A000",
            "role commands need a data directory",
        )));
    }
    let mut authid = Authid::open(std::path::Path::new(&dir))
        .map_err(|e| Box::new(ErrorFields::new(Severity::Error, "58030", e.to_string())))?;
    let opts = PasswordOptions {
        encryption: if settings.show("password_encryption").as_deref() == Ok("md5") {
            PasswordType::Md5
        } else {
            PasswordType::ScramSha256
        },
        scram_iterations: settings
            .int("scram_iterations")
            .clamp(1, i64::from(u32::MAX)) as u32,
        md5_warnings: settings.bool("md5_password_warnings"),
    };
    let done = authid.execute(&cmd, session_user, &opts).map_err(report)?;
    let notices = done
        .notices
        .into_iter()
        .map(|n| {
            let sev = match n.level {
                NoticeLevel::Notice => Severity::Notice,
                NoticeLevel::Warning => Severity::Warning,
            };
            let mut f = ErrorFields::new(sev, n.code, n.message);
            if let Some(d) = n.detail {
                f = f.with_detail(d);
            }
            if let Some(h) = n.hint {
                f = f.with_hint(h);
            }
            f
        })
        .collect();
    Ok(RoleCommandDone {
        tag: done.tag,
        notices,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_commands_run_on_the_data_directory() {
        let dir = std::env::temp_dir().join(format!("pgipc-tcop-user-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Authid::bootstrap(&dir, "postgres", None).unwrap();
        let mut st = Settings::new();
        st.set_override("data_directory", &dir.display().to_string())
            .unwrap();
        assert!(role_command(&st, "postgres", "SELECT 1").is_none());
        let done = role_command(&st, "postgres", "CREATE USER a PASSWORD ''")
            .unwrap()
            .unwrap();
        assert_eq!(done.tag, "CREATE ROLE");
        assert_eq!(
            done.notices[0].message,
            "empty string is not a valid password, clearing password"
        );
        let e = role_command(&st, "a", "CREATE ROLE b")
            .unwrap()
            .unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.message.as_str()),
            ("42501", "permission denied to create role")
        );
        let e = role_command(&st, "postgres", "DROP ROLE nobody")
            .unwrap()
            .unwrap_err();
        assert_eq!(e.code, "42704");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
