//! The error queues (PostgreSQL's parallel machinery: `pq_redirect_to_shm_mq` in the worker,
//! `HandleParallelMessages` / `ProcessParallelMessage` in the leader): one `shm_mq` per worker,
//! worker → leader, carrying the worker's ERROR as a protocol ErrorResponse, which the leader
//! raises as its own with `CONTEXT:  parallel worker`.
//!
//! ```text
//!  worker k: ERROR ─► 'E' S V C M [D] [H] [W] \0 ─► error queue k ─(latch)─► leader
//!            (sent before the worker lets go of its ring queues, so the leader, which looks
//!             at the error queues before it reports a detached ring queue, finds it)
//!  leader:   'E' ─► TestShmMqError::Worker { sqlstate, message, detail, hint,
//!                                            context: "<worker's>\nparallel worker" }
//! ```

use crate::TestShmMqError;
use pgipc_query::SqlState;
use pgipc_shm_mq::{MqHandle, RecvResult, SendOptions};

/// Bytes of each worker's error queue (PostgreSQL's `PARALLEL_ERROR_QUEUE_SIZE`).
pub const ERROR_QUEUE_SIZE: usize = 16384;

/// Longest text a field may carry in the queue: a whole report always fits the ring, so the
/// worker's non-blocking send never has to wait for the leader.
const MAX_FIELD: usize = 3000;

/// The ErrorResponse ('E') / NoticeResponse ('N') type bytes.
const ERROR_RESPONSE: u8 = b'E';

/// What PostgreSQL appends to the CONTEXT of a message propagated from a parallel worker.
pub const PARALLEL_WORKER_CONTEXT: &str = "parallel worker";

/// A worker's error as the leader raises it (PostgreSQL's `ErrorData` of a parsed
/// ErrorResponse, severity capped at ERROR).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerReport {
    /// `C`.
    pub sqlstate: SqlState,
    /// `M`.
    pub message: String,
    /// `D`.
    pub detail: Option<String>,
    /// `H`.
    pub hint: Option<String>,
    /// `W`, with `parallel worker` appended by the leader.
    pub context: Option<String>,
}

fn clip(s: &str) -> &str {
    if s.len() <= MAX_FIELD {
        return s;
    }
    let mut end = MAX_FIELD;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The ErrorResponse a worker sends for `e` (`pq_endmessage` into the queue): type byte, then
/// each field as its code and a NUL-terminated text, then a NUL. Severity `FATAL` for a
/// termination request (as PostgreSQL's worker reports it), else `ERROR`.
pub(crate) fn encode(e: &TestShmMqError) -> Vec<u8> {
    let severity = if matches!(e, TestShmMqError::Terminated) {
        "FATAL"
    } else {
        "ERROR"
    };
    let message = e.to_string();
    let mut out = vec![ERROR_RESPONSE];
    let mut field = |code: u8, text: &str| {
        out.push(code);
        out.extend(clip(text).bytes().filter(|&b| b != 0));
        out.push(0);
    };
    field(b'S', severity);
    field(b'V', severity);
    field(b'C', e.sqlstate());
    field(b'M', &message);
    if let Some(d) = e.detail() {
        field(b'D', d);
    }
    if let Some(h) = e.hint() {
        field(b'H', h);
    }
    if let Some(w) = e.context() {
        field(b'W', &w);
    }
    out.push(0);
    out
}

/// Parses a message from an error queue (`pq_parse_errornotice`) and adds the leader's
/// CONTEXT line. Anything but a well-formed ErrorResponse is PostgreSQL's "unrecognized
/// message type received from parallel worker" (XX000).
pub(crate) fn decode(msg: &[u8]) -> Result<WorkerReport, TestShmMqError> {
    let bad = || TestShmMqError::UnrecognizedMessage {
        kind: msg.first().map_or('?', |&b| char::from(b)),
        len: msg.len(),
    };
    let (&kind, mut rest) = msg.split_first().ok_or_else(bad)?;
    if kind != ERROR_RESPONSE {
        return Err(bad());
    }
    let mut r = WorkerReport {
        sqlstate: SqlState::new("XX000"),
        message: String::new(),
        detail: None,
        hint: None,
        context: None,
    };
    loop {
        let (&code, tail) = rest.split_first().ok_or_else(bad)?;
        if code == 0 {
            break;
        }
        let end = tail.iter().position(|&b| b == 0).ok_or_else(bad)?;
        let text = String::from_utf8_lossy(&tail[..end]).into_owned();
        rest = &tail[end + 1..];
        match code {
            b'C' => r.sqlstate = SqlState::new(&text),
            b'M' => r.message = text,
            b'D' => r.detail = Some(text),
            b'H' => r.hint = Some(text),
            b'W' => r.context = Some(text),
            // Severity: a worker's FATAL is the leader's ERROR ("death of a worker isn't
            // enough justification for suicide"); other fields are not kept.
            _ => {}
        }
    }
    r.context = Some(match r.context.take() {
        Some(c) => format!("{c}\n{PARALLEL_WORKER_CONTEXT}"),
        None => PARALLEL_WORKER_CONTEXT.to_owned(),
    });
    Ok(r)
}

/// The worker's side: sends `e` into its error queue without waiting (the report is smaller
/// than the ring, and the queue carries nothing else). Returns whether it went; a leader that
/// already detached simply does not get it (the worker logs the error anyway).
pub(crate) fn send(errq: &mut MqHandle<'_>, e: &TestShmMqError) -> bool {
    let opts = SendOptions {
        nowait: true,
        force_flush: true,
    };
    matches!(
        errq.send(&encode(e), opts),
        Ok(pgipc_shm_mq::SendResult::Sent)
    )
}

/// The leader's side: the workers' error queues (`pcxt->worker[i].error_mqh`).
pub(crate) struct ErrorQueues<'a> {
    pub(crate) handles: Vec<MqHandle<'a>>,
}

impl ErrorQueues<'_> {
    /// `HandleParallelMessages`: reads every queue without waiting; the first worker's error
    /// found is returned as the leader's. A queue whose worker exited without error reads as
    /// detached and is skipped from then on.
    pub(crate) fn check(&mut self) -> Result<(), TestShmMqError> {
        for h in &mut self.handles {
            match h.receive(true)? {
                RecvResult::Received(m) => {
                    return Err(TestShmMqError::Worker(Box::new(decode(m)?)));
                }
                RecvResult::WouldBlock | RecvResult::Detached => {}
            }
        }
        Ok(())
    }
}
