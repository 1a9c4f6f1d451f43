//! Replicates side by side. Each replicate draws everything from its own seeds and writes its
//! own directory, so running several at once changes the wall time and nothing else.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::Observer;
use crate::error::Result;
use crate::train::{EvalRecord, Progress};

/// Runs `job(replicate, observer)` for every replicate in `0..count`, at most `at_once` at a
/// time, and returns the results in replicate order. Worker 0 (the calling thread) drives the
/// progress display; every worker reports finished variants and levels. After a failure no new
/// replicate starts; the ones running finish, and the first error by replicate is returned.
pub(super) fn replicates<T: Send>(
    count: usize,
    at_once: usize,
    observer: &mut (dyn Observer + Send),
    job: impl Fn(usize, &mut dyn Observer) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    let at_once = at_once.clamp(1, count.max(1));
    if at_once == 1 {
        return (0..count).map(|r| job(r, &mut *observer)).collect();
    }
    let shared = Mutex::new(observer);
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Option<Result<T>>>> = Mutex::new((0..count).map(|_| None).collect());
    let worker = |display: bool| {
        let mut obs = Shared {
            inner: &shared,
            display,
        };
        while !failed.load(Ordering::SeqCst) {
            let r = next.fetch_add(1, Ordering::SeqCst);
            if r >= count {
                break;
            }
            let out = job(r, &mut obs);
            if out.is_err() {
                failed.store(true, Ordering::SeqCst);
            }
            lock(&results)[r] = Some(out);
        }
    };
    std::thread::scope(|s| {
        for _ in 1..at_once {
            s.spawn(|| worker(false));
        }
        worker(true);
    });
    let results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    // Replicates never started (after a failure) are `None`; the error comes first in order.
    results.into_iter().flatten().collect()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic in one worker is re-raised by the scope; the data behind the lock stays usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One worker's view of the shared observer: the display worker forwards everything, the others
/// only what completes (variants, levels), so one progress bar follows one training.
struct Shared<'a, 'o> {
    inner: &'a Mutex<&'o mut (dyn Observer + Send)>,
    display: bool,
}

impl Progress for Shared<'_, '_> {
    fn start(&mut self, iterations: usize) {
        if self.display {
            lock(self.inner).start(iterations);
        }
    }
    fn step(&mut self, iteration: usize, loss: f32) {
        if self.display {
            lock(self.inner).step(iteration, loss);
        }
    }
    fn eval(&mut self, record: &EvalRecord) {
        if self.display {
            lock(self.inner).eval(record);
        }
    }
    fn finish(&mut self) {
        if self.display {
            lock(self.inner).finish();
        }
    }
}

impl Observer for Shared<'_, '_> {
    fn begin(&mut self, replicate: usize, level: usize, variant: &str) {
        if self.display {
            lock(self.inner).begin(replicate, level, variant);
        }
    }
    fn finished(&mut self, replicate: usize, level: usize, variant: &str, resumed: bool) {
        lock(self.inner).finished(replicate, level, variant, resumed);
    }
    fn level(&mut self, replicate: usize, summary: &super::LevelSummary) {
        lock(self.inner).level(replicate, summary);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[derive(Default)]
    struct Count {
        finished: Vec<usize>,
    }
    impl Progress for Count {}
    impl Observer for Count {
        fn finished(&mut self, replicate: usize, _: usize, _: &str, _: bool) {
            self.finished.push(replicate);
        }
    }

    #[test]
    fn results_come_back_in_replicate_order_whatever_the_schedule() {
        for at_once in [1, 2, 3, 8] {
            let mut obs = Count::default();
            let out = replicates(5, at_once, &mut obs, |r, o| {
                // Later replicates finish first when run side by side.
                std::thread::sleep(std::time::Duration::from_millis(10 * (5 - r as u64)));
                o.finished(r, 0, "ticket", false);
                Ok(r * 10)
            })
            .unwrap();
            assert_eq!(out, vec![0, 10, 20, 30, 40], "at_once {at_once}");
            obs.finished.sort();
            assert_eq!(obs.finished, vec![0, 1, 2, 3, 4]);
        }
    }

    #[test]
    fn a_failure_stops_new_replicates_and_is_returned() {
        let started = AtomicUsize::new(0);
        let mut obs = Count::default();
        let out = replicates(10, 2, &mut obs, |r, _| {
            started.fetch_add(1, Ordering::SeqCst);
            if r == 1 {
                Err(Error::config("test", format!("replicate {r} failed")))
            } else {
                std::thread::sleep(std::time::Duration::from_millis(20));
                Ok(r)
            }
        });
        let err = out.unwrap_err().to_string();
        assert!(err.contains("replicate 1 failed"), "{err}");
        assert!(started.load(Ordering::SeqCst) < 10);
    }
}
