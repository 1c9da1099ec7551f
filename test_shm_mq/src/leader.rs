//! The two SQL-callable functions (PostgreSQL's `test.c`).

use crate::error_queue::ErrorQueues;
use crate::setup::prepare;
use crate::{LeaderEnv, TestShmMqError};
use pgipc_shm_mq::{MqHandle, RecvResult, SendOptions, SendResult, Spin};
use std::time::Duration;

/// What a call on a queue handle that came back `Detached` means: a pending interrupt (the
/// watch made the handle give up), else a worker's error from its error queue (a worker that
/// fails sends it there before its ring queues detach), else the error `e`.
fn detached(env: &dyn LeaderEnv, errs: &mut ErrorQueues<'_>, e: TestShmMqError) -> TestShmMqError {
    if let Err(i) = env.check_for_interrupts() {
        return i;
    }
    match errs.check() {
        Err(w) => w,
        Ok(()) => e,
    }
}

/// `test_shm_mq(queue_size, message, repeat_count, num_workers)`: sends `message` around a
/// ring of `num_workers` workers, receiving it back and sending it again `repeat_count`
/// times in all, one message at a time, then checks the last one came back unchanged.
pub fn test_shm_mq(
    env: &dyn LeaderEnv,
    queue_size: i64,
    message: &[u8],
    repeat_count: i32,
    num_workers: i32,
) -> Result<(), TestShmMqError> {
    if repeat_count < 0 {
        return Err(TestShmMqError::NegativeRepeatCount);
    }
    if num_workers <= 0 {
        return Err(TestShmMqError::NoWorkers);
    }
    let ring = prepare(env, queue_size, num_workers)?;
    let (mut out, mut inq) = ring.attach()?;
    let mut errs = ring.attach_error_queues()?;
    ring.wait_for_workers_to_become_ready(&mut errs)?;

    let send = |out: &mut MqHandle<'_>, errs: &mut ErrorQueues<'_>, m: &[u8]| match out
        .send(m, SendOptions::FLUSH)?
    {
        SendResult::Sent => Ok(()),
        _ => Err(detached(env, errs, TestShmMqError::CouldNotSend)),
    };
    send(&mut out, &mut errs, message)?;
    let mut loop_count = repeat_count;
    loop {
        let m = match inq.receive(false)? {
            RecvResult::Received(m) => m,
            _ => return Err(detached(env, &mut errs, TestShmMqError::CouldNotReceive)),
        };
        loop_count -= 1;
        if loop_count <= 0 {
            verify_message(message, m)?;
            break;
        }
        send(&mut out, &mut errs, m)?;
        // The blocking calls serve no interrupt themselves (their watch only stops them).
        env.check_for_interrupts()?;
    }
    Ok(())
}

/// `test_shm_mq_pipelined(queue_size, message, repeat_count, num_workers, verify)`: sends
/// `repeat_count` copies of `message` into the ring and receives them back, with
/// non-blocking calls, waiting on the latch whenever neither side can progress; `verify`
/// checks every message received. With 0 workers the leader talks to itself.
pub fn test_shm_mq_pipelined(
    env: &dyn LeaderEnv,
    queue_size: i64,
    message: &[u8],
    repeat_count: i32,
    num_workers: i32,
    verify: bool,
) -> Result<(), TestShmMqError> {
    if repeat_count < 0 {
        return Err(TestShmMqError::NegativeRepeatCount);
    }
    if num_workers < 0 {
        return Err(TestShmMqError::NegativeWorkers);
    }
    let ring = prepare(env, queue_size, num_workers)?;
    let (mut out, mut inq) = ring.attach()?;
    let mut errs = ring.attach_error_queues()?;
    ring.wait_for_workers_to_become_ready(&mut errs)?;
    let me = env
        .my_proc()
        .ok_or(TestShmMqError::NoBackend("no PGPROC to wait on"))?;
    let nowait_flush = SendOptions {
        nowait: true,
        force_flush: true,
    };
    // The adaptive watch of shm_mq's blocking calls, here over the latch that both queues'
    // peers set once our nowait calls returned WouldBlock.
    let mut spin =
        Spin::new(crate::setup::ring_spin(ring.processes()).unwrap_or_else(Spin::default_budget));
    let (mut send_count, mut receive_count) = (0i32, 0i32);
    loop {
        let mut wait = true;
        if send_count < repeat_count {
            match out.send(message, nowait_flush)? {
                SendResult::Sent => {
                    send_count += 1;
                    wait = false;
                }
                SendResult::WouldBlock => {}
                SendResult::Detached => {
                    return Err(detached(env, &mut errs, TestShmMqError::CouldNotSend));
                }
            }
        }
        if receive_count < repeat_count {
            match inq.receive(true)? {
                RecvResult::Received(m) => {
                    receive_count += 1;
                    if verify {
                        verify_message(message, m)?;
                    }
                    wait = false;
                }
                RecvResult::WouldBlock => {}
                RecvResult::Detached => {
                    return Err(detached(env, &mut errs, TestShmMqError::CouldNotReceive));
                }
            }
        } else {
            if send_count != receive_count {
                return Err(TestShmMqError::CountMismatch {
                    sent: send_count,
                    received: receive_count,
                });
            }
            break;
        }
        if wait {
            // Watch the latch briefly first (a peer on another CPU usually answers within
            // that time; skipped when it does not pay), then sleep; wake at least once a
            // second to look at the workers.
            let latch = me.latch().latch();
            spin.watch(latch, || latch.is_set());
            if !latch.is_set() {
                me.latch()
                    .wait(Some(Duration::from_secs(1)))
                    .map_err(pgipc_shm_mq::ShmMqError::from)?;
                if !ring.watch.workers_alive() {
                    return Err(detached(env, &mut errs, TestShmMqError::CouldNotReceive));
                }
            }
            me.latch().reset();
            env.check_for_interrupts()?;
        }
    }
    Ok(())
}

/// `verify_message`: the received message must equal the original.
fn verify_message(orig: &[u8], new: &[u8]) -> Result<(), TestShmMqError> {
    if orig.len() != new.len() {
        return Err(TestShmMqError::Corrupted {
            detail: format!(
                "The original message was {} bytes but the final message is {} bytes.",
                orig.len(),
                new.len()
            ),
        });
    }
    if let Some(i) = orig.iter().zip(new).position(|(a, b)| a != b) {
        return Err(TestShmMqError::Corrupted {
            detail: format!(
                "The new and original messages differ at byte {i} of {}.",
                orig.len()
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
pub(crate) fn verify_for_tests(orig: &[u8], new: &[u8]) -> Result<(), TestShmMqError> {
    verify_message(orig, new)
}
