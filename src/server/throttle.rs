//! Login throttling, in memory (per process; a restart forgets it): at most
//! [`MAX_PER_USER`] failed logins per username and [`MAX_PER_CLIENT`] per
//! client address within [`WINDOW`]. While a key is over its limit, logins
//! for it are refused with 429 and `Retry-After` (until the oldest failure in
//! the window ages out) without checking the password. A successful login
//! clears its username's failures (not its address's).

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const WINDOW: Duration = Duration::from_secs(15 * 60);
pub const MAX_PER_USER: usize = 5;
pub const MAX_PER_CLIENT: usize = 20;
/// Above this many tracked keys, idle keys are swept (bounds memory under a
/// spray of random usernames).
const SWEEP_ABOVE: usize = 10_000;

struct Window<K> {
    max: usize,
    map: HashMap<K, VecDeque<Instant>>,
}

impl<K: Hash + Eq + Clone> Window<K> {
    fn new(max: usize) -> Self {
        Window {
            max,
            map: HashMap::new(),
        }
    }

    fn prune(q: &mut VecDeque<Instant>, now: Instant, window: Duration) {
        while q.front().is_some_and(|t| now.duration_since(*t) >= window) {
            q.pop_front();
        }
    }

    /// Seconds until `k` may try again, if it is over the limit.
    fn blocked(&mut self, k: &K, now: Instant, window: Duration) -> Option<Duration> {
        let q = self.map.get_mut(k)?;
        Self::prune(q, now, window);
        if q.len() >= self.max {
            let oldest = *q.front()?;
            Some(window.saturating_sub(now.duration_since(oldest)))
        } else {
            None
        }
    }

    fn add(&mut self, k: K, now: Instant, window: Duration) {
        if self.map.len() > SWEEP_ABOVE {
            self.map.retain(|_, q| {
                Self::prune(q, now, window);
                !q.is_empty()
            });
        }
        let q = self.map.entry(k).or_default();
        Self::prune(q, now, window);
        q.push_back(now);
        while q.len() > self.max {
            q.pop_front();
        }
    }
}

pub struct Throttle {
    window: Duration,
    inner: Mutex<(Window<String>, Window<IpAddr>)>,
}

impl Default for Throttle {
    fn default() -> Self {
        Self::new(WINDOW, MAX_PER_USER, MAX_PER_CLIENT)
    }
}

impl Throttle {
    pub fn new(window: Duration, per_user: usize, per_client: usize) -> Self {
        Throttle {
            window,
            inner: Mutex::new((Window::new(per_user), Window::new(per_client))),
        }
    }

    fn key(username: &str) -> String {
        // users.db compares usernames case-insensitively.
        username.to_ascii_lowercase()
    }

    /// `Err(retry_after)` when this username or address may not try now.
    pub fn check(&self, username: &str, client: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let a = g.0.blocked(&Self::key(username), now, self.window);
        let b = g.1.blocked(&client, now, self.window);
        match (a, b) {
            (None, None) => Ok(()),
            (x, y) => Err(x.unwrap_or_default().max(y.unwrap_or_default())),
        }
    }

    pub fn failure(&self, username: &str, client: IpAddr) {
        let now = Instant::now();
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.0.add(Self::key(username), now, self.window);
        g.1.add(client, now, self.window);
    }

    pub fn success(&self, username: &str) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.0.map.remove(&Self::key(username));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_user_and_per_client_limits() {
        let t = Throttle::new(Duration::from_secs(60), 2, 3);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(t.check("Alice", a).is_ok());
        t.failure("alice", a);
        t.failure("ALICE", b);
        let wait = t.check("alice", "10.0.0.9".parse().unwrap()).unwrap_err();
        assert!(wait > Duration::from_secs(55) && wait <= Duration::from_secs(60));
        assert!(t.check("bob", a).is_ok());
        t.failure("bob", a);
        t.failure("carol", a);
        assert!(t.check("dave", a).is_err(), "client limit");
        assert!(t.check("dave", b).is_ok());
        t.success("alice");
        assert!(t.check("alice", b).is_ok());
    }
}
