//! The backend's process title (PostgreSQL's `set_ps_display` calls in backend_startup.c and
//! postgres.c): `postgres: <user> <database> <host>(<port>) <activity>`, `[local]` for a Unix
//! socket, the activity `authentication`, `idle`, `idle in transaction`, `idle in transaction
//! (aborted)` or the command tag of the statement being run (`SELECT`).

use pgipc_guc::Settings;
use pgipc_libpq::TransactionStatus;

/// The title's fixed part, once the startup packet named the user and database (PostgreSQL's
/// `BackendInitialize`), with the activity `authentication`.
pub(crate) fn init_title(user: &str, database: &str, settings: &Settings) {
    let (host, port) = crate::connlog::remote();
    let mut fixed = format!("{user} ");
    if !database.is_empty() {
        fixed.push_str(database);
        fixed.push(' ');
    }
    fixed.push_str(&host);
    if !port.is_empty() {
        fixed.push_str(&format!("({port})"));
    }
    let opts = pgipc_ps_status::TitleOptions {
        cluster_name: settings.text("cluster_name").to_owned(),
        update_process_title: settings.bool("update_process_title"),
    };
    pgipc_ps_status::init_ps_display(&fixed, &opts);
    report_activity("authentication");
}

/// What the session does now: a command tag, or [`idle`]'s words (nothing happens when
/// `update_process_title` is off; an empty query has no tag and changes nothing).
pub(crate) fn report_activity(activity: &str) {
    if !activity.is_empty() {
        pgipc_ps_status::set_ps_display(activity);
    }
}

/// The activity of a session waiting for its client, by its transaction state.
pub(crate) fn idle(tx: TransactionStatus) -> &'static str {
    match tx {
        TransactionStatus::Idle => "idle",
        TransactionStatus::InBlock => "idle in transaction",
        TransactionStatus::Failed => "idle in transaction (aborted)",
    }
}

/// The session's settings may have changed (SET, RESET, end of transaction, reload): the
/// title and the log follow `update_process_title` and the `log_*` settings.
pub(crate) fn settings_changed(settings: &Settings) {
    pgipc_ps_status::set_update_process_title(settings.bool("update_process_title"));
    pgipc_elog::configure(settings);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_words_are_postgresql_s() {
        assert_eq!(idle(TransactionStatus::Idle), "idle");
        assert_eq!(idle(TransactionStatus::InBlock), "idle in transaction");
        assert_eq!(
            idle(TransactionStatus::Failed),
            "idle in transaction (aborted)"
        );
    }
}
