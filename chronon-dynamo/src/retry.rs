//! Retrying: the part of a batch DynamoDB did not process (`UnprocessedKeys` of `BatchGetItem`,
//! `UnprocessedItems` of `BatchWriteItem`), resent with exponential backoff and full jitter; and
//! [`RefusedIsFinal`], the SDK retry classifier that never retries a refused connection.
//!
//! DynamoDB returns unprocessed items when a partition is throttled or a response would exceed
//! 16 MB; its documentation asks callers to resend them after a backoff. The loop is generic over
//! the call so it can be unit-tested without a database.

use std::future::Future;
use std::time::Duration;

use aws_sdk_dynamodb::config::interceptors::InterceptorContext;
use aws_sdk_dynamodb::config::retry::{ClassifyRetry, RetryAction};
use chronon_core::{ErrorContext, KvError};
use rand::Rng;

use crate::config::RetrySettings;

/// What one batch call returned.
#[derive(Debug)]
pub(crate) struct Round<T, R> {
    /// The items answered in this round.
    pub output: R,
    /// What is left to send again, `None` when everything was processed.
    pub unprocessed: Option<T>,
    /// Whether this round processed anything (then the backoff starts over).
    pub progress: bool,
}

/// The backoff before retry number `attempt` (1-based): a uniformly random delay up to
/// `min(max_backoff, initial_backoff * 2^(attempt-1))` ("full jitter").
pub(crate) fn backoff(attempt: u32, retry: &RetrySettings) -> Duration {
    let ceiling = backoff_ceiling(attempt, retry);
    let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(rand::rng().random_range(0..=nanos))
}

/// The upper bound of [`backoff`] for `attempt`.
pub(crate) fn backoff_ceiling(attempt: u32, retry: &RetrySettings) -> Duration {
    let factor = 1u32 << attempt.saturating_sub(1).min(20);
    retry
        .initial_backoff
        .saturating_mul(factor)
        .min(retry.max_backoff)
}

/// Sends `first`, then whatever comes back unprocessed, until nothing is left. A round that made
/// progress resets the backoff; `retry.max_attempts` rounds in a row without progress give up
/// with a retryable error (throttling that did not clear). Returns every round's output.
pub(crate) async fn until_processed<T, R, F, Fut>(
    first: T,
    retry: &RetrySettings,
    ctx: ErrorContext<'_>,
    mut send: F,
) -> Result<Vec<R>, KvError>
where
    F: FnMut(T) -> Fut,
    Fut: Future<Output = Result<Round<T, R>, KvError>>,
{
    let mut outputs = Vec::new();
    let mut pending = Some(first);
    let mut stalled = 0u32;
    while let Some(batch) = pending.take() {
        let round = send(batch).await?;
        outputs.push(round.output);
        if let Some(rest) = round.unprocessed {
            stalled = if round.progress { 0 } else { stalled + 1 };
            if stalled >= retry.max_attempts {
                return Err(ctx
                    .backend_error(
                        format!(
                            "DynamoDB left items unprocessed {stalled} times in a row (throttled); giving up for now"
                        ),
                        None,
                    )
                    .retryable());
            }
            chronon_core::observe::note_retry();
            tokio::time::sleep(backoff(stalled.max(1), retry)).await;
            pending = Some(rest);
        }
    }
    Ok(outputs)
}

/// An SDK retry classifier that forbids retrying a request whose connection was refused, so the
/// call fails at once with `Unavailable` instead of retrying until the operation timeout and
/// surfacing as `Timeout`: with the SDK's standard retries, a stopped DynamoDB Local gave
/// `Timeout` for every call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RefusedIsFinal;

impl ClassifyRetry for RefusedIsFinal {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        let refused = ctx
            .output_or_error()
            .and_then(|r| r.err())
            .and_then(|e| e.as_connector_error())
            .is_some_and(|e| e.is_io() && is_refused(e));
        if refused {
            RetryAction::RetryForbidden
        } else {
            RetryAction::NoActionIndicated
        }
    }

    fn name(&self) -> &'static str {
        "chronon: connection refused is final"
    }
}

/// Whether an error's source chain holds an `io::Error` of kind `ConnectionRefused`.
fn is_refused(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return true;
            }
        }
        next = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn ctx() -> ErrorContext<'static> {
        ErrorContext::new(
            "dynamodb",
            "BatchGetItem",
            "127.0.0.1:8000",
            Duration::from_secs(1),
        )
        .dataset("ds")
    }

    fn fast() -> RetrySettings {
        RetrySettings::new(4, Duration::from_millis(1), Duration::from_millis(4))
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let r = RetrySettings::new(10, Duration::from_millis(10), Duration::from_millis(100));
        assert_eq!(backoff_ceiling(1, &r), Duration::from_millis(10));
        assert_eq!(backoff_ceiling(2, &r), Duration::from_millis(20));
        assert_eq!(backoff_ceiling(4, &r), Duration::from_millis(80));
        assert_eq!(backoff_ceiling(5, &r), Duration::from_millis(100));
        assert_eq!(backoff_ceiling(60, &r), Duration::from_millis(100));
        let samples: Vec<Duration> = (0..200).map(|_| backoff(3, &r)).collect();
        assert!(samples.iter().all(|d| *d <= Duration::from_millis(40)));
        // Jitter: not all the same.
        assert!(samples.iter().any(|d| *d != samples[0]));
    }

    /// A fake BatchGetItem that processes one key per round: every key is still answered.
    #[tokio::test]
    async fn unprocessed_keys_are_resent_until_done() {
        let calls = AtomicU32::new(0);
        let out = until_processed(vec![1, 2, 3, 4, 5], &fast(), ctx(), |mut keys: Vec<i32>| {
            calls.fetch_add(1, Ordering::SeqCst);
            async move {
                let first = keys.remove(0);
                Ok(Round {
                    output: first,
                    unprocessed: (!keys.is_empty()).then_some(keys),
                    progress: true,
                })
            }
        })
        .await
        .unwrap();
        assert_eq!(out, vec![1, 2, 3, 4, 5]);
        assert_eq!(calls.load(Ordering::SeqCst), 5);
    }

    /// Throttled rounds (no progress) back off and are retried; progress resets the count, so
    /// more stalled rounds than `max_attempts` in total still succeed.
    #[tokio::test]
    async fn stalls_back_off_then_succeed() {
        let calls = AtomicU32::new(0);
        let out = until_processed(vec![7, 8], &fast(), ctx(), |keys: Vec<i32>| {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                // Rounds 0,1,2 stall, round 3 processes one key, 4,5,6 stall, 7 finishes.
                let stalled = matches!(n, 0..=2 | 4..=6);
                if stalled {
                    return Ok(Round {
                        output: None,
                        unprocessed: Some(keys),
                        progress: false,
                    });
                }
                let (head, rest) = keys.split_at(1);
                Ok(Round {
                    output: Some(head[0]),
                    unprocessed: (!rest.is_empty()).then(|| rest.to_vec()),
                    progress: true,
                })
            }
        })
        .await
        .unwrap();
        assert_eq!(out.into_iter().flatten().collect::<Vec<_>>(), vec![7, 8]);
        assert_eq!(calls.load(Ordering::SeqCst), 8);
    }

    #[tokio::test]
    async fn endless_throttling_is_a_retryable_error() {
        let calls = AtomicU32::new(0);
        let err = until_processed(vec![1], &fast(), ctx(), |keys: Vec<i32>| {
            calls.fetch_add(1, Ordering::SeqCst);
            async move {
                Ok::<_, KvError>(Round {
                    output: (),
                    unprocessed: Some(keys),
                    progress: false,
                })
            }
        })
        .await
        .unwrap_err();
        assert!(err.is_retryable(), "{err}");
        assert!(
            err.to_string().contains("BatchGetItem on dataset \"ds\""),
            "{err}"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn call_errors_stop_the_loop() {
        let err = until_processed(1, &fast(), ctx(), |_| async {
            Err::<Round<i32, ()>, _>(KvError::not_found("ds"))
        })
        .await
        .unwrap_err();
        assert_eq!(err.kind(), "DatasetNotFound");
    }
}
