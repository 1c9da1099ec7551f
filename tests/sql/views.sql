-- The server's own state through SQL: settings, shared memory, auxiliary counters.
SELECT name, setting, unit, category, context, vartype, source, min_val, max_val, boot_val
  FROM pg_settings WHERE name IN ('work_mem', 'max_connections', 'log_min_messages')
  ORDER BY name;
SELECT enumvals FROM pg_settings WHERE name = 'wal_level';
SELECT count(*) > 300 AS many FROM pg_settings;
SET work_mem = '8MB';
SELECT setting, source FROM pg_settings WHERE name = 'work_mem';
RESET work_mem;
SELECT current_setting('work_mem'), current_setting('no_such', true);
SELECT name, size > 0 AS sized FROM pg_shmem_allocations
  WHERE name IN ('ProcArray', 'Proc Array', 'shmInvalBuffer', 'PMSignalState',
                 'Background Worker Data', 'DSM Registry Data', 'Shared Memory Stats')
  ORDER BY name;
SELECT count(*) AS free_rows FROM pg_shmem_allocations WHERE name IS NULL;
SELECT num_timed >= 0 AS counted, stats_reset IS NOT NULL AS reset_known FROM pg_stat_checkpointer;
SELECT buffers_clean, maxwritten_clean, buffers_alloc FROM pg_stat_bgwriter;
SELECT pg_postmaster_start_time() <= now() AS started_before,
       pg_conf_load_time() <= now() AS loaded_before;
SELECT version() LIKE 'PostgreSQL 18.%(pgipc %' AS shape;
SELECT pg_cancel_backend(1);
SELECT pg_terminate_backend(pg_backend_pid(), -1);
SELECT pg_size_pretty(1536::int8), pg_size_bytes('2 MB');
SELECT count(*) FROM pg_dsm_registry_allocations;
