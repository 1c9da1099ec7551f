//! PostgreSQL's pmsignal: signals from child processes to the postmaster, child slot states.
