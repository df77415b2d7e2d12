//! Client-side limits: retries' seeded backoff bounds and the sliding-minute rate
//! limiter (requests started, tokens charged).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub(super) const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A `Retry-After` longer than this is cut short: the run should not stall for hours.
pub(super) const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

pub(super) fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Client-side limits over a sliding minute: requests started, and tokens
/// charged (an estimate at the start, replaced by the real count at the end).
#[derive(Debug)]
pub(super) struct RateLimiter {
    requests_per_minute: Option<u32>,
    tokens_per_minute: Option<u64>,
    window: Mutex<RateWindow>,
}

#[derive(Debug, Default)]
pub(super) struct RateWindow {
    next_id: u64,
    /// (id, start, tokens), oldest first.
    entries: VecDeque<(u64, Instant, u64)>,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct RateTicket(Option<u64>);

pub(super) const RATE_WINDOW: Duration = Duration::from_secs(60);

impl RateLimiter {
    pub(super) fn new(
        requests_per_minute: Option<u32>,
        tokens_per_minute: Option<u64>,
    ) -> RateLimiter {
        RateLimiter {
            requests_per_minute,
            tokens_per_minute,
            window: Mutex::new(RateWindow::default()),
        }
    }

    /// Wait until a request charged `tokens` fits in the last minute's budget.
    pub(super) async fn admit(&self, tokens: u64) -> RateTicket {
        if self.requests_per_minute.is_none() && self.tokens_per_minute.is_none() {
            return RateTicket(None);
        }
        loop {
            let wait = {
                let mut window = self.window.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                while window
                    .entries
                    .front()
                    .is_some_and(|(_, start, _)| now.duration_since(*start) >= RATE_WINDOW)
                {
                    window.entries.pop_front();
                }
                // Saturating: token counts come from servers.
                let used: u64 = window
                    .entries
                    .iter()
                    .fold(0u64, |sum, (_, _, t)| sum.saturating_add(*t));
                let requests_ok = self
                    .requests_per_minute
                    .is_none_or(|rpm| window.entries.len() < rpm as usize);
                // A request bigger than the whole budget still goes, alone.
                let tokens_ok = self.tokens_per_minute.is_none_or(|tpm| {
                    window.entries.is_empty() || used.saturating_add(tokens) <= tpm
                });
                if requests_ok && tokens_ok {
                    let id = window.next_id;
                    window.next_id += 1;
                    window.entries.push_back((id, now, tokens));
                    return RateTicket(Some(id));
                }
                let oldest = window.entries.front().map(|(_, start, _)| *start);
                oldest.map_or(Duration::from_millis(10), |start| {
                    (start + RATE_WINDOW).saturating_duration_since(now) + Duration::from_millis(1)
                })
            };
            tokio::time::sleep(wait).await;
        }
    }

    pub(super) fn settle(&self, ticket: RateTicket, used_tokens: u64) {
        let Some(id) = ticket.0 else { return };
        let mut window = self.window.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = window.entries.iter_mut().find(|(i, _, _)| *i == id) {
            entry.2 = used_tokens;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rate_limiter_counts_requests() {
        let limiter = RateLimiter::new(Some(2), None);
        limiter.admit(1).await;
        limiter.admit(1).await;
        let third = tokio::time::timeout(Duration::from_millis(50), limiter.admit(1)).await;
        assert!(third.is_err(), "a third request within a minute must wait");
    }

    #[tokio::test]
    async fn token_limit_admits_a_lone_large_request_and_settles() {
        let limiter = RateLimiter::new(None, Some(100));
        let ticket = limiter.admit(500).await;
        let blocked = tokio::time::timeout(Duration::from_millis(30), limiter.admit(10)).await;
        assert!(blocked.is_err());
        limiter.settle(ticket, 50);
        let admitted = tokio::time::timeout(Duration::from_millis(30), limiter.admit(10)).await;
        assert!(admitted.is_ok());
    }
}
