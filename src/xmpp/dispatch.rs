//! Running inbound stanzas concurrently while keeping each conversation's order: every stanza
//! gets a key (its conversation); stanzas with one key run one after another in arrival order,
//! stanzas with different keys run at the same time. A slow one (a vCard fetched from a distant
//! homeserver) holds up only its own conversation.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{Semaphore, watch};

/// The last job queued under a key, and how many of the key's jobs are unfinished.
struct Tail {
    seq: u64,
    done: watch::Receiver<bool>,
    depth: Arc<AtomicUsize>,
}

/// Jobs ordered per key, concurrent across keys.
pub struct Ordered {
    tails: Arc<Mutex<HashMap<String, Tail>>>,
    /// Jobs running or waiting, over all keys: beyond it the reader waits (back-pressure).
    in_flight: Arc<Semaphore>,
    /// Unfinished jobs one key may have; beyond it new ones are refused (a flood from one
    /// sender must not take every slot).
    per_key: usize,
    seq: u64,
}

/// Why a job was not queued.
#[derive(Debug, PartialEq, Eq)]
pub struct Busy;

impl Ordered {
    pub fn new(in_flight: usize, per_key: usize) -> Self {
        Self { tails: Arc::default(), in_flight: Arc::new(Semaphore::new(in_flight)), per_key, seq: 0 }
    }

    /// Queue `job` behind the unfinished jobs of `key`. Waits only while the overall limit is
    /// reached; refuses when `key` alone has too many unfinished jobs.
    pub async fn run<F>(&mut self, key: String, job: F) -> Result<(), Busy>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let Ok(permit) = self.in_flight.clone().acquire_owned().await else { return Err(Busy) };
        self.seq += 1;
        let seq = self.seq;
        let (finished, done) = watch::channel(false);
        let (previous, depth) = {
            let Ok(mut tails) = self.tails.lock() else { return Err(Busy) };
            let depth = tails.get(&key).map(|t| t.depth.clone()).unwrap_or_default();
            if depth.load(Ordering::Acquire) >= self.per_key {
                return Err(Busy);
            }
            depth.fetch_add(1, Ordering::AcqRel);
            let previous = tails.insert(key.clone(), Tail { seq, done, depth: depth.clone() }).map(|t| t.done);
            (previous, depth)
        };
        let tails = self.tails.clone();
        tokio::spawn(async move {
            if let Some(mut previous) = previous {
                // Err: the previous job's task ended without saying so (it panicked); go on.
                let _ = previous.wait_for(|done| *done).await;
            }
            job.await;
            let _ = finished.send(true);
            depth.fetch_sub(1, Ordering::AcqRel);
            if let Ok(mut tails) = tails.lock()
                && tails.get(&key).is_some_and(|t| t.seq == seq)
            {
                tails.remove(&key);
            }
            drop(permit);
        });
        Ok(())
    }

    /// Keys with unfinished jobs (for tests and status).
    pub fn keys(&self) -> usize {
        self.tails.lock().map(|t| t.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::sync::mpsc;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_key_keeps_its_order_and_a_slow_key_holds_up_no_other() {
        let mut ordered = Ordered::new(64, 16);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (release, gate) = watch::channel(false);
        // A slow job on key "slow", then more on it: they wait for it.
        {
            let (tx, mut gate) = (tx.clone(), gate.clone());
            ordered
                .run("slow".into(), async move {
                    let _ = gate.wait_for(|open| *open).await;
                    let _ = tx.send("slow-1");
                })
                .await
                .unwrap();
        }
        let tx2 = tx.clone();
        ordered
            .run("slow".into(), async move {
                let _ = tx2.send("slow-2");
            })
            .await
            .unwrap();
        // Another conversation runs meanwhile, in its own order.
        for i in 0..5 {
            let tx = tx.clone();
            ordered
                .run("fast".into(), async move {
                    // Later jobs finish faster: only the chaining keeps them in order.
                    tokio::time::sleep(Duration::from_millis(5 * (5 - i))).await;
                    let _ = tx.send(["fast-0", "fast-1", "fast-2", "fast-3", "fast-4"][i as usize]);
                })
                .await
                .unwrap();
        }
        let mut seen = vec![];
        for _ in 0..5 {
            seen.push(rx.recv().await.unwrap());
        }
        assert_eq!(seen, ["fast-0", "fast-1", "fast-2", "fast-3", "fast-4"], "the slow key held up the fast one");
        release.send(true).unwrap();
        assert_eq!(rx.recv().await.unwrap(), "slow-1");
        assert_eq!(rx.recv().await.unwrap(), "slow-2");
        // Finished keys are forgotten.
        for _ in 0..100 {
            if ordered.keys() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(ordered.keys(), 0);
    }

    #[tokio::test]
    async fn a_flooding_key_is_refused_beyond_its_share() {
        let mut ordered = Ordered::new(64, 3);
        let (_release, gate) = watch::channel(false);
        for _ in 0..3 {
            let mut gate = gate.clone();
            ordered
                .run("flood".into(), async move {
                    let _ = gate.wait_for(|o| *o).await;
                })
                .await
                .unwrap();
        }
        assert_eq!(ordered.run("flood".into(), async {}).await, Err(Busy));
        assert_eq!(ordered.run("other".into(), async {}).await, Ok(()));
    }
}
