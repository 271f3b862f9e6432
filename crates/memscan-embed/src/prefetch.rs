//! Preparing the next training step's views on otherwise idle CPU time.
//!
//! A training step alternates between preparing `2B` augmented views (CPU work in plain
//! Rust, in parallel with rayon) and the candle forward/backward pass, which leaves one of
//! the two cores idle for a good part of the step (single-threaded candle ops, thread
//! hand-offs). [`Prefetcher`] fills those gaps: a helper thread running at the lowest
//! scheduling class (`SCHED_IDLE` on Linux: it only gets a core that nothing else wants)
//! computes the views of step `s + 1` while the step `s` trains. When step `s + 1` starts,
//! the training thread computes whatever views the helper has not finished, in parallel,
//! and takes the helper's results; it never waits for the helper.
//!
//! Each view is a pure function of its index (its seed is derived from the epoch, step and
//! view), so the batch is identical whoever computed each view: training stays deterministic.
//! Where the idle scheduling class is not available (other systems), no helper is started:
//! a helper at normal priority competes with candle's matrix products for the cores, which
//! measured slower than no helper at all.

use rayon::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, OnceLock};

/// The views of one step, claimed one at a time by whoever gets there first.
struct Batch {
    step: usize,
    next: AtomicUsize,
    views: Vec<OnceLock<Vec<f32>>>,
}

impl Batch {
    fn new(step: usize, n: usize) -> Self {
        Batch {
            step,
            next: AtomicUsize::new(0),
            views: (0..n).map(|_| OnceLock::new()).collect(),
        }
    }

    /// Claims and computes views until none is left unclaimed.
    fn work(&self, view: &(dyn Fn(usize, usize) -> Vec<f32> + Sync)) {
        loop {
            let v = self.next.fetch_add(1, Ordering::Relaxed);
            if v >= self.views.len() {
                return;
            }
            let _ = self.views[v].set(view(self.step, v));
        }
    }
}

/// Computes the views of a sequence of steps, the next one ahead on an idle-priority helper
/// thread where possible (module docs). Use inside [`std::thread::scope`].
pub struct Prefetcher<'scope> {
    n: usize,
    view: &'scope (dyn Fn(usize, usize) -> Vec<f32> + Sync),
    ahead: Option<Arc<Batch>>,
    tx: Option<SyncSender<Arc<Batch>>>,
}

impl<'scope> Prefetcher<'scope> {
    /// `view(step, v)` computes view `v` (of `n`) of `step`.
    pub fn new<'env>(
        scope: &'scope std::thread::Scope<'scope, 'env>,
        n: usize,
        view: &'scope (dyn Fn(usize, usize) -> Vec<f32> + Sync),
    ) -> Self {
        let tx = if idle_priority_available() {
            let (tx, rx) = sync_channel::<Arc<Batch>>(1);
            scope.spawn(move || helper(rx, view));
            Some(tx)
        } else {
            None
        };
        Prefetcher {
            n,
            view,
            ahead: None,
            tx,
        }
    }

    /// The views of `step`, in order; then starts preparing `next` (if any) in the
    /// background.
    pub fn take(&mut self, step: usize, next: Option<usize>) -> Vec<Vec<f32>> {
        let batch = match self.ahead.take() {
            Some(b) if b.step == step => b,
            _ => Arc::new(Batch::new(step, self.n)),
        };
        // Whatever the helper has not claimed, computed here on all cores.
        let view = self.view;
        (0..rayon::current_num_threads())
            .into_par_iter()
            .for_each(|_| batch.work(view));
        // A view the helper has claimed but not finished is computed here as well (the same
        // result), not waited for: on a busy machine the idle-priority helper may not run
        // for a long while.
        let views = (batch.views.iter().enumerate())
            .map(|(v, cell)| cell.get_or_init(|| view(step, v)).clone())
            .collect();
        if let (Some(tx), Some(next)) = (&self.tx, next) {
            let b = Arc::new(Batch::new(next, self.n));
            // A send fails only if the helper has gone (it never exits first).
            if tx.send(Arc::clone(&b)).is_ok() {
                self.ahead = Some(b);
            }
        }
        views
    }
}

fn helper(rx: Receiver<Arc<Batch>>, view: &(dyn Fn(usize, usize) -> Vec<f32> + Sync)) {
    if !set_idle_priority() {
        // Cannot run at idle priority after all: leave every view to the training thread.
        while rx.recv().is_ok() {}
        return;
    }
    while let Ok(batch) = rx.recv() {
        batch.work(view);
    }
}

#[cfg(target_os = "linux")]
fn idle_priority_available() -> bool {
    true
}

#[cfg(not(target_os = "linux"))]
fn idle_priority_available() -> bool {
    false
}

/// Moves the calling thread to the `SCHED_IDLE` scheduling class. Returns whether it worked.
#[cfg(target_os = "linux")]
fn set_idle_priority() -> bool {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `sched_setscheduler` with pid 0 changes only the calling thread's policy; it
    // reads `param`, a valid initialized struct that outlives the call.
    unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) == 0 }
}

#[cfg(not(target_os = "linux"))]
fn set_idle_priority() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_come_back_in_order_whoever_computed_them() {
        // A view is a pure function of (step, v); the helper's share varies from run to run,
        // the result must not.
        let view = |step: usize, v: usize| vec![step as f32, v as f32, (step * 31 + v) as f32];
        let expect = |step: usize| (0..7).map(|v| view(step, v)).collect::<Vec<_>>();
        std::thread::scope(|scope| {
            let mut p = Prefetcher::new(scope, 7, &view);
            for step in 0..5 {
                assert_eq!(p.take(step, (step < 4).then_some(step + 1)), expect(step));
            }
            // Out of sequence (the prefetched step is not the one asked for): computed here.
            assert_eq!(p.take(9, Some(3)), expect(9));
            assert_eq!(p.take(3, None), expect(3));
            assert_eq!(p.take(2, None), expect(2));
        });
    }
}
