//! A value fetched from AWS and kept for a while: the one refresh policy behind
//! refreshing configuration and cached secrets.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, RwLock};

/// A cached value and when it is next refreshed.
struct Entry<T> {
    value: Arc<T>,
    /// `None`: never (no `max_age`).
    refresh_at: Option<Instant>,
}

/// After a failed refresh the stale value is served this long (or for
/// `max_age`, if shorter) before the next try, so an outage costs one
/// failed fetch per this interval rather than one per caller.
const RETRY_STALE_AFTER: Duration = Duration::from_secs(30);

/// Holds the last good value; refreshes it after `max_age` with at most one
/// fetch in flight, and keeps serving it when a refresh fails in a way the
/// caller calls transient.
pub(crate) struct Cached<T> {
    entry: RwLock<Option<Entry<T>>>,
    refreshing: Mutex<()>,
    max_age: Option<Duration>,
}

impl<T> Cached<T> {
    /// An empty cache; `max_age: None` keeps the first value forever.
    pub(crate) fn new(max_age: Option<Duration>) -> Self {
        Self {
            entry: RwLock::new(None),
            refreshing: Mutex::new(()),
            max_age,
        }
    }

    /// A cache that starts with a value fetched at init.
    pub(crate) fn with_value(value: T, max_age: Option<Duration>) -> Self {
        let entry = Entry {
            value: Arc::new(value),
            refresh_at: max_age.map(|max| Instant::now() + max),
        };
        Self {
            entry: RwLock::new(Some(entry)),
            refreshing: Mutex::new(()),
            max_age,
        }
    }

    fn fresh(&self, entry: &Option<Entry<T>>) -> Option<Arc<T>> {
        let entry = entry.as_ref()?;
        let young = entry.refresh_at.is_none_or(|at| Instant::now() < at);
        young.then(|| entry.value.clone())
    }

    /// Returns the cached value while it is young enough, else fetches a new
    /// one. When the fetch fails and `serve_stale(&error)` says so, the old
    /// value is returned (and `on_stale` is told why); otherwise the error is.
    pub(crate) async fn get<E, F, Fut>(
        &self,
        fetch: F,
        serve_stale: impl Fn(&E) -> bool,
        on_stale: impl Fn(&E),
    ) -> Result<Arc<T>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        if let Some(value) = self.fresh(&*self.entry.read().await) {
            return Ok(value);
        }
        let _one_fetch = self.refreshing.lock().await;
        // Another caller may have refreshed while this one waited for the lock.
        if let Some(value) = self.fresh(&*self.entry.read().await) {
            return Ok(value);
        }
        match fetch().await {
            Ok(value) => {
                let value = Arc::new(value);
                *self.entry.write().await = Some(Entry {
                    value: value.clone(),
                    refresh_at: self.max_age.map(|max| Instant::now() + max),
                });
                Ok(value)
            }
            Err(err) => match &mut *self.entry.write().await {
                Some(stale) if serve_stale(&err) => {
                    on_stale(&err);
                    stale.refresh_at = self.max_age.map(|max| Instant::now() + max.min(RETRY_STALE_AFTER));
                    Ok(stale.value.clone())
                }
                _ => Err(err),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Cached;
    use std::time::Duration;

    #[tokio::test]
    async fn serves_fresh_value_without_fetching() {
        let cache = Cached::with_value(1, Some(Duration::from_secs(60)));
        let got = cache
            .get(|| async { Err::<i32, &str>("not called") }, |_| false, |_| {})
            .await;
        assert_eq!(*got.unwrap(), 1);
    }

    #[tokio::test]
    async fn refetches_after_max_age_and_serves_stale_only_when_allowed() {
        let cache = Cached::with_value(1, Some(Duration::ZERO));
        let got = cache.get(|| async { Ok::<i32, &str>(2) }, |_| false, |_| {}).await;
        assert_eq!(*got.unwrap(), 2);
        let stale = cache.get(|| async { Err::<i32, &str>("down") }, |_| true, |_| {}).await;
        assert_eq!(*stale.unwrap(), 2);
        let refused = cache
            .get(|| async { Err::<i32, &str>("gone") }, |_| false, |_| {})
            .await;
        assert_eq!(refused.unwrap_err(), "gone");
    }

    /// Found in review of issue 18: during an outage each caller fetched
    /// again; a failed refresh now waits before the next try.
    #[tokio::test]
    async fn a_failed_refresh_is_tried_again_only_after_a_while() {
        let max_age = Duration::from_millis(50);
        let cache = Cached::with_value(1, Some(max_age));
        tokio::time::sleep(Duration::from_millis(60)).await;
        let stale = cache.get(|| async { Err::<i32, &str>("down") }, |_| true, |_| {}).await;
        assert_eq!(*stale.unwrap(), 1);
        let again = cache.get(|| async { Ok::<i32, &str>(2) }, |_| true, |_| {}).await;
        assert_eq!(*again.unwrap(), 1, "not fetched again at once");
        tokio::time::sleep(Duration::from_millis(60)).await;
        let later = cache.get(|| async { Ok::<i32, &str>(2) }, |_| true, |_| {}).await;
        assert_eq!(*later.unwrap(), 2);
    }

    #[tokio::test]
    async fn empty_cache_returns_the_error() {
        let cache = Cached::<i32>::new(None);
        let got = cache.get(|| async { Err::<i32, &str>("down") }, |_| true, |_| {}).await;
        assert_eq!(got.unwrap_err(), "down");
    }
}
