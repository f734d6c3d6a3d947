//! How many chunk writes a bulk load keeps in flight, adapted to what the server keeps up with.
//!
//! A server that writes chunks one after another (an emulator, a busy node) makes every write
//! wait behind the ones in flight: with 8 chunks of 5,000 rows at 3,400 rows/s each write takes
//! about 12 s and times out at the default 10 s, and the abandoned writes still run on the server
//! while their retries queue behind them. So a retryable failure halves the writes in flight, and
//! the limit grows back by one after as many writes in a row succeed as the limit allows (additive
//! increase, multiplicative decrease, as TCP does for the same reason).

use std::sync::Mutex;

use tokio::sync::{Semaphore, SemaphorePermit};

/// The adaptive bound on a bulk load's concurrent chunk writes; each write holds a [`Slot`].
pub(super) struct InFlightLimit {
    max: usize,
    semaphore: Semaphore,
    state: Mutex<State>,
}

struct State {
    /// Writes allowed at once now, `1..=max`.
    limit: usize,
    /// Permits to retire as writes finish (the limit dropped below the writes in flight).
    owed: usize,
    /// Writes that succeeded since the limit last changed.
    successes: usize,
}

/// A permission to write one chunk, handed back through [`InFlightLimit::finish`].
/// (`None` only if the semaphore were closed, which nothing does: the write then goes ahead
/// unbounded rather than failing a load over bookkeeping.)
pub(super) struct Slot<'a>(Option<SemaphorePermit<'a>>);

impl InFlightLimit {
    pub(super) fn new(max: usize) -> Self {
        let max = max.max(1);
        Self {
            max,
            semaphore: Semaphore::new(max),
            state: Mutex::new(State {
                limit: max,
                owed: 0,
                successes: 0,
            }),
        }
    }

    /// Waits until one more write may start.
    pub(super) async fn start(&self) -> Slot<'_> {
        Slot(self.semaphore.acquire().await.ok())
    }

    /// Ends a write: `overloaded` when it failed with a retryable error (halves the limit),
    /// otherwise it counts towards growing the limit by one.
    pub(super) fn finish(&self, slot: Slot<'_>, overloaded: bool) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if overloaded {
            let lower = (s.limit / 2).max(1);
            s.owed += s.limit - lower;
            s.limit = lower;
            s.successes = 0;
        } else {
            s.successes += 1;
            if s.successes >= s.limit && s.limit < self.max {
                s.limit += 1;
                s.successes = 0;
                if s.owed > 0 {
                    s.owed -= 1;
                } else {
                    self.semaphore.add_permits(1);
                }
            }
        }
        if let Some(permit) = slot.0 {
            if s.owed > 0 {
                s.owed -= 1;
                permit.forget();
            }
        }
    }

    /// Writes allowed at once now.
    #[cfg(test)]
    pub(super) fn limit(&self) -> usize {
        self.state.lock().map(|s| s.limit).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn halves_on_overload_and_grows_back_one_at_a_time() {
        let limit = InFlightLimit::new(8);
        let slots: Vec<_> = futures::future::join_all((0..8).map(|_| limit.start())).await;
        assert_eq!(limit.semaphore.available_permits(), 0);
        // A wave of timeouts: 8 -> 4 -> 2 -> 1, and the permits of the failed writes retire.
        let mut slots = slots.into_iter();
        for want in [4, 2, 1] {
            limit.finish(slots.next().unwrap(), true);
            assert_eq!(limit.limit(), want);
        }
        for slot in slots {
            limit.finish(slot, false);
        }
        // The other five writes succeed: the limit grows by one whenever it has seen as many
        // successes in a row as it allows, and retiring permits keeps what is free within it.
        assert!(limit.semaphore.available_permits() <= limit.limit());
        let before = limit.limit();
        for _ in 0..before {
            let slot = limit.start().await;
            limit.finish(slot, false);
        }
        assert_eq!(limit.limit(), before + 1);
        assert_eq!(limit.semaphore.available_permits(), limit.limit());
    }

    #[tokio::test]
    async fn never_exceeds_the_configured_maximum_or_drops_below_one() {
        let limit = InFlightLimit::new(3);
        for _ in 0..20 {
            let slot = limit.start().await;
            limit.finish(slot, false);
        }
        assert_eq!(limit.limit(), 3);
        assert_eq!(limit.semaphore.available_permits(), 3);
        for _ in 0..5 {
            let slot = limit.start().await;
            limit.finish(slot, true);
        }
        assert_eq!(limit.limit(), 1);
        assert_eq!(limit.semaphore.available_permits(), 1);
    }
}
