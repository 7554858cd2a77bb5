//! The request queue: one job runs at a time; up to `limit` more wait for their turn in
//! arrival order (tokio's mutex is fair, first come first served); beyond that the server
//! answers 503 at once. A waiting request whose client disconnects is dropped with its
//! handler, which frees its place.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex as TurnLock, OwnedMutexGuard};

pub struct JobQueue {
    turn: Arc<TurnLock<()>>,
    waiting: AtomicUsize,
    limit: usize,
}

/// The queue is full.
#[derive(Debug)]
pub struct QueueFull;

/// Counts a request as waiting until it gets its turn or is dropped.
struct Waiting<'q>(&'q JobQueue);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

impl JobQueue {
    pub fn new(limit: usize) -> Self {
        Self {
            turn: Arc::new(TurnLock::new(())),
            waiting: AtomicUsize::new(0),
            limit,
        }
    }

    /// Requests waiting now (the running one not counted).
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// Waits for this request's turn; `Err(QueueFull)` at once when `limit` requests are
    /// already waiting. The guard is the turn: the next request starts when it is dropped.
    pub async fn enter(&self) -> Result<(OwnedMutexGuard<()>, Duration), QueueFull> {
        // Fast path: nobody running or waiting.
        if let Ok(guard) = self.turn.clone().try_lock_owned() {
            return Ok((guard, Duration::ZERO));
        }
        let before = self.waiting.fetch_add(1, Ordering::SeqCst);
        let waiting = Waiting(self);
        if before >= self.limit {
            return Err(QueueFull);
        }
        let t0 = Instant::now();
        let guard = self.turn.clone().lock_owned().await;
        drop(waiting);
        Ok((guard, t0.elapsed()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[tokio::test]
    async fn serves_in_order_and_refuses_beyond_the_limit() {
        let q = Arc::new(JobQueue::new(2));
        let (first, _) = q.enter().await.unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..2 {
            let (queue, order) = (q.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let (_turn, _) = queue.enter().await.unwrap();
                order.lock().unwrap().push(i);
            }));
            // Let task i queue up before task i+1.
            while q.waiting() < i + 1 {
                tokio::task::yield_now().await;
            }
        }
        assert!(q.enter().await.is_err(), "a third waiter is over the limit");
        assert_eq!(q.waiting(), 2);
        drop(first);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec![0, 1]);
        assert_eq!(q.waiting(), 0);
    }

    #[tokio::test]
    async fn a_dropped_waiter_frees_its_place() {
        let q = Arc::new(JobQueue::new(1));
        let (first, _) = q.enter().await.unwrap();
        let q2 = q.clone();
        let waiter = tokio::spawn(async move { q2.enter().await.map(|_| ()) });
        while q.waiting() < 1 {
            tokio::task::yield_now().await;
        }
        waiter.abort();
        let _ = waiter.await;
        assert_eq!(q.waiting(), 0);
        drop(first);
        assert!(q.enter().await.is_ok());
    }
}
