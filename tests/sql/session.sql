--
-- The session functions tcop provides
--
SELECT current_user, session_user, current_database(), current_catalog;
SELECT pg_backend_pid() > 0 AS has_pid;
SELECT version() LIKE 'PostgreSQL %' AS version_shape;
SELECT pg_is_in_recovery();
SELECT inet_server_port() IS NULL AS unix_socket, inet_client_addr() IS NULL AS no_client_addr;
SELECT pg_sleep(0.01);
SELECT pg_sleep_for('10 milliseconds');
SELECT pg_sleep_until(now());
SELECT now() = transaction_timestamp() AS now_is_xact,
       statement_timestamp() >= now() AS stmt_after_xact,
       clock_timestamp() >= statement_timestamp() AS clock_after_stmt,
       now() = current_timestamp AS current_timestamp_is_now;
BEGIN;
SELECT now() AS t1 \gset
SELECT pg_sleep(0.01);
SELECT now() = :'t1'::timestamptz AS same_xact_time, clock_timestamp() > :'t1'::timestamptz AS clock_moves;
COMMIT;
SELECT pg_size_pretty(123456789::bigint), pg_size_bytes('1 GB');
