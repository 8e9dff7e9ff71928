//! Per-key exponential backoff with upstream's rules (flowcontrol.Backoff): the first
//! retry is immediate, then 10s doubling up to 5 min; an entry untouched for twice the
//! maximum is forgotten, so a container that ran cleanly for 10 minutes starts over.

use std::collections::HashMap;
use std::time::Duration;

#[derive(Debug, Clone)]
struct Entry {
    backoff: Duration,
    last_update_ns: i64,
}

#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    entries: HashMap<String, Entry>,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            entries: HashMap::new(),
        }
    }

    /// Container restarts: 10s doubling to 300s.
    pub fn containers() -> Self {
        Self::new(Duration::from_secs(10), Duration::from_secs(300))
    }

    fn expired(&self, entry: &Entry, now_ns: i64) -> bool {
        now_ns - entry.last_update_ns > 2 * self.max.as_nanos() as i64
    }

    /// If `key` is backing off from an event at `event_ns`, the time (ns) it may retry.
    pub fn in_backoff_since(&self, key: &str, event_ns: i64, now_ns: i64) -> Option<i64> {
        let entry = self.entries.get(key)?;
        if self.expired(entry, now_ns) {
            return None;
        }
        let until = event_ns + entry.backoff.as_nanos() as i64;
        (now_ns < until).then_some(until)
    }

    /// Record a retry at `now_ns`: doubles the backoff (or starts it at the initial value).
    pub fn next(&mut self, key: &str, now_ns: i64) -> Duration {
        let initial = self.initial;
        let max = self.max;
        let fresh = match self.entries.get(key) {
            Some(e) => self.expired(e, now_ns),
            None => true,
        };
        let entry = self.entries.entry(key.to_string()).or_insert(Entry {
            backoff: initial,
            last_update_ns: now_ns,
        });
        entry.backoff = if fresh {
            initial
        } else {
            (entry.backoff * 2).min(max)
        };
        entry.last_update_ns = now_ns;
        entry.backoff
    }

    /// The current backoff of `key`, for messages like "back-off 20s restarting ...".
    pub fn current(&self, key: &str) -> Option<Duration> {
        self.entries.get(key).map(|e| e.backoff)
    }

    /// When `key` last backed off (ns), if it has an entry.
    pub fn last_update(&self, key: &str) -> Option<i64> {
        self.entries.get(key).map(|e| e.last_update_ns)
    }

    /// Forget entries that expired (bounded memory).
    pub fn gc(&mut self, now_ns: i64) {
        let limit = 2 * self.max.as_nanos() as i64;
        self.entries
            .retain(|_, e| now_ns - e.last_update_ns <= limit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn first_retry_is_immediate_then_doubles_to_max() {
        let mut b = Backoff::containers();
        assert_eq!(b.in_backoff_since("c", 0, 0), None);
        assert_eq!(b.next("c", 0), Duration::from_secs(10));
        // Failed again at t=1s: must wait until 11s.
        assert_eq!(b.in_backoff_since("c", S, 2 * S), Some(11 * S));
        assert_eq!(b.in_backoff_since("c", S, 11 * S), None);
        let mut t = 11 * S;
        let mut seen = vec![];
        for _ in 0..7 {
            seen.push(b.next("c", t).as_secs());
            t += S;
        }
        assert_eq!(seen, vec![20, 40, 80, 160, 300, 300, 300]);
    }

    #[test]
    fn resets_after_twice_max_without_updates() {
        let mut b = Backoff::containers();
        b.next("c", 0);
        b.next("c", S);
        assert_eq!(b.current("c"), Some(Duration::from_secs(20)));
        let later = S + 601 * S;
        assert_eq!(b.in_backoff_since("c", later - S, later), None);
        assert_eq!(b.next("c", later), Duration::from_secs(10));
        b.gc(later + 601 * S);
        assert_eq!(b.current("c"), None);
    }
}
