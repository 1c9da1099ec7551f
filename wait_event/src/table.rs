//! The event lists, in `wait_event_names.txt`'s form (upper-case symbol, documentation
//! sentence with its SGML markup). Each class's list is sorted by symbol, as PostgreSQL's
//! generator sorts it, so an event's id is its index here. PostgreSQL 17's lists for the
//! classes pgipc uses, plus PostgreSQL 18's `IO_WORKER_MAIN`.

/// Activity: a process with no work to do.
#[rustfmt::skip]
pub(crate) const ACTIVITY: &[(&str, &str)] = &[
    ("ARCHIVER_MAIN", "Waiting in main loop of archiver process."),
    ("AUTOVACUUM_MAIN", "Waiting in main loop of autovacuum launcher process."),
    ("BGWRITER_HIBERNATE", "Waiting in background writer process, hibernating."),
    ("BGWRITER_MAIN", "Waiting in main loop of background writer process."),
    ("CHECKPOINTER_MAIN", "Waiting in main loop of checkpointer process."),
    ("CHECKPOINTER_SHUTDOWN", "Waiting for checkpointer process to be terminated."),
    ("IO_WORKER_MAIN", "Waiting in main loop of IO Worker process."),
    ("LOGICAL_APPLY_MAIN", "Waiting in main loop of logical replication apply process."),
    ("LOGICAL_LAUNCHER_MAIN", "Waiting in main loop of logical replication launcher process."),
    ("LOGICAL_PARALLEL_APPLY_MAIN", "Waiting in main loop of logical replication parallel apply process."),
    ("RECOVERY_WAL_STREAM", "Waiting in main loop of startup process for WAL to arrive, during streaming recovery."),
    ("REPLICATION_SLOTSYNC_MAIN", "Waiting in main loop of slot sync worker."),
    ("REPLICATION_SLOTSYNC_SHUTDOWN", "Waiting for slot sync worker to shut down."),
    ("SYSLOGGER_MAIN", "Waiting in main loop of syslogger process."),
    ("WAL_RECEIVER_MAIN", "Waiting in main loop of WAL receiver process."),
    ("WAL_SENDER_MAIN", "Waiting in main loop of WAL sender process."),
    ("WAL_SUMMARIZER_WAL", "Waiting in WAL summarizer for more WAL to be generated."),
    ("WAL_WRITER_MAIN", "Waiting in main loop of WAL writer process."),
];

/// Client: waiting for the connected client.
#[rustfmt::skip]
pub(crate) const CLIENT: &[(&str, &str)] = &[
    ("CLIENT_READ", "Waiting to read data from the client."),
    ("CLIENT_WRITE", "Waiting to write data to the client."),
    ("GSS_OPEN_SERVER", "Waiting to read data from the client while establishing a GSSAPI session."),
    ("LIBPQWALRECEIVER_CONNECT", "Waiting in WAL receiver to establish connection to remote server."),
    ("LIBPQWALRECEIVER_RECEIVE", "Waiting in WAL receiver to receive data from remote server."),
    ("SSL_OPEN_SERVER", "Waiting for SSL while attempting connection."),
    ("WAIT_FOR_STANDBY_CONFIRMATION", "Waiting for WAL to be received and flushed by the physical standby."),
    ("WAL_SENDER_WAIT_FOR_WAL", "Waiting for WAL to be flushed in WAL sender process."),
    ("WAL_SENDER_WRITE_DATA", "Waiting for any activity when processing replies from WAL receiver in WAL sender process."),
];

/// IPC: waiting for another process.
#[rustfmt::skip]
pub(crate) const IPC: &[(&str, &str)] = &[
    ("APPEND_READY", "Waiting for subplan nodes of an <literal>Append</literal> plan node to be ready."),
    ("ARCHIVE_CLEANUP_COMMAND", "Waiting for <xref linkend=\"guc-archive-cleanup-command\"/> to complete."),
    ("ARCHIVE_COMMAND", "Waiting for <xref linkend=\"guc-archive-command\"/> to complete."),
    ("BACKEND_TERMINATION", "Waiting for the termination of another backend."),
    ("BACKUP_WAIT_WAL_ARCHIVE", "Waiting for WAL files required for a backup to be successfully archived."),
    ("BGWORKER_SHUTDOWN", "Waiting for background worker to shut down."),
    ("BGWORKER_STARTUP", "Waiting for background worker to start up."),
    ("BTREE_PAGE", "Waiting for the page number needed to continue a parallel B-tree scan to become available."),
    ("BUFFER_IO", "Waiting for buffer I/O to complete."),
    ("CHECKPOINT_DELAY_COMPLETE", "Waiting for a backend that blocks a checkpoint from completing."),
    ("CHECKPOINT_DELAY_START", "Waiting for a backend that blocks a checkpoint from starting."),
    ("CHECKPOINT_DONE", "Waiting for a checkpoint to complete."),
    ("CHECKPOINT_START", "Waiting for a checkpoint to start."),
    ("EXECUTE_GATHER", "Waiting for activity from a child process while executing a <literal>Gather</literal> plan node."),
    ("HASH_BATCH_ALLOCATE", "Waiting for an elected Parallel Hash participant to allocate a hash table."),
    ("HASH_BATCH_ELECT", "Waiting to elect a Parallel Hash participant to allocate a hash table."),
    ("HASH_BATCH_LOAD", "Waiting for other Parallel Hash participants to finish loading a hash table."),
    ("HASH_BUILD_ALLOCATE", "Waiting for an elected Parallel Hash participant to allocate the initial hash table."),
    ("HASH_BUILD_ELECT", "Waiting to elect a Parallel Hash participant to allocate the initial hash table."),
    ("HASH_BUILD_HASH_INNER", "Waiting for other Parallel Hash participants to finish hashing the inner relation."),
    ("HASH_BUILD_HASH_OUTER", "Waiting for other Parallel Hash participants to finish partitioning the outer relation."),
    ("HASH_GROW_BATCHES_DECIDE", "Waiting to elect a Parallel Hash participant to decide on future batch growth."),
    ("HASH_GROW_BATCHES_ELECT", "Waiting to elect a Parallel Hash participant to allocate more batches."),
    ("HASH_GROW_BATCHES_FINISH", "Waiting for an elected Parallel Hash participant to decide on future batch growth."),
    ("HASH_GROW_BATCHES_REALLOCATE", "Waiting for an elected Parallel Hash participant to allocate more batches."),
    ("HASH_GROW_BATCHES_REPARTITION", "Waiting for other Parallel Hash participants to finish repartitioning."),
    ("HASH_GROW_BUCKETS_ELECT", "Waiting to elect a Parallel Hash participant to allocate more buckets."),
    ("HASH_GROW_BUCKETS_REALLOCATE", "Waiting for an elected Parallel Hash participant to finish allocating more buckets."),
    ("HASH_GROW_BUCKETS_REINSERT", "Waiting for other Parallel Hash participants to finish inserting tuples into new buckets."),
    ("LOGICAL_APPLY_SEND_DATA", "Waiting for a logical replication leader apply process to send data to a parallel apply process."),
    ("LOGICAL_PARALLEL_APPLY_STATE_CHANGE", "Waiting for a logical replication parallel apply process to change state."),
    ("LOGICAL_SYNC_DATA", "Waiting for a logical replication remote server to send data for initial table synchronization."),
    ("LOGICAL_SYNC_STATE_CHANGE", "Waiting for a logical replication remote server to change state."),
    ("MESSAGE_QUEUE_INTERNAL", "Waiting for another process to be attached to a shared message queue."),
    ("MESSAGE_QUEUE_PUT_MESSAGE", "Waiting to write a protocol message to a shared message queue."),
    ("MESSAGE_QUEUE_RECEIVE", "Waiting to receive bytes from a shared message queue."),
    ("MESSAGE_QUEUE_SEND", "Waiting to send bytes to a shared message queue."),
    ("MULTIXACT_CREATION", "Waiting for a multixact creation to complete."),
    ("PARALLEL_BITMAP_SCAN", "Waiting for parallel bitmap scan to become initialized."),
    ("PARALLEL_CREATE_INDEX_SCAN", "Waiting for parallel <command>CREATE INDEX</command> workers to finish heap scan."),
    ("PARALLEL_FINISH", "Waiting for parallel workers to finish computing."),
    ("PROCARRAY_GROUP_UPDATE", "Waiting for the group leader to clear the transaction ID at transaction end."),
    ("PROC_SIGNAL_BARRIER", "Waiting for a barrier event to be processed by all backends."),
    ("PROMOTE", "Waiting for standby promotion."),
    ("RECOVERY_CONFLICT_SNAPSHOT", "Waiting for recovery conflict resolution for a vacuum cleanup."),
    ("RECOVERY_CONFLICT_TABLESPACE", "Waiting for recovery conflict resolution for dropping a tablespace."),
    ("RECOVERY_END_COMMAND", "Waiting for <xref linkend=\"guc-recovery-end-command\"/> to complete."),
    ("RECOVERY_PAUSE", "Waiting for recovery to be resumed."),
    ("REPLICATION_ORIGIN_DROP", "Waiting for a replication origin to become inactive so it can be dropped."),
    ("REPLICATION_SLOT_DROP", "Waiting for a replication slot to become inactive so it can be dropped."),
    ("RESTORE_COMMAND", "Waiting for <xref linkend=\"guc-restore-command\"/> to complete."),
    ("SAFE_SNAPSHOT", "Waiting to obtain a valid snapshot for a <literal>READ ONLY DEFERRABLE</literal> transaction."),
    ("SYNC_REP", "Waiting for confirmation from a remote server during synchronous replication."),
    ("WAL_RECEIVER_EXIT", "Waiting for the WAL receiver to exit."),
    ("WAL_RECEIVER_WAIT_START", "Waiting for startup process to send initial data for streaming replication."),
    ("WAL_SUMMARY_READY", "Waiting for a new WAL summary to be generated."),
    ("XACT_GROUP_UPDATE", "Waiting for the group leader to update transaction status at transaction end."),
];

/// Timeout: waiting for a timeout to expire.
#[rustfmt::skip]
pub(crate) const TIMEOUT: &[(&str, &str)] = &[
    ("BASE_BACKUP_THROTTLE", "Waiting during base backup when throttling activity."),
    ("CHECKPOINT_WRITE_DELAY", "Waiting between writes while performing a checkpoint."),
    ("PG_SLEEP", "Waiting due to a call to <function>pg_sleep</function> or a sibling function."),
    ("RECOVERY_APPLY_DELAY", "Waiting to apply WAL during recovery because of a delay setting."),
    ("RECOVERY_RETRIEVE_RETRY_INTERVAL", "Waiting during recovery when WAL data is not available from any source (<filename>pg_wal</filename>, archive or stream)."),
    ("REGISTER_SYNC_REQUEST", "Waiting while sending synchronization requests to the checkpointer, because the request queue is full."),
    ("SPIN_DELAY", "Waiting while acquiring a contended spinlock."),
    ("VACUUM_DELAY", "Waiting in a cost-based vacuum delay point."),
    ("VACUUM_TRUNCATE", "Waiting to acquire an exclusive lock to truncate off any empty pages at the end of a table vacuumed."),
    ("WAL_SUMMARIZER_ERROR", "Waiting after a WAL summarizer error."),
];
