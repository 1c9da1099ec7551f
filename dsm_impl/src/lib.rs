//! PostgreSQL's dsm_impl: create, attach, detach, destroy and resize one dynamic shared memory segment (posix, sysv, mmap).
