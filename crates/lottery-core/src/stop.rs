//! A request to stop, shared by the whole process: a batch scheduler's SIGTERM (Slurm before a
//! preemption or a requeue) sets it, and training loops read it between steps. A training that
//! sees it ends with [`Error::Stopped`](crate::Error::Stopped) without writing a result, so the
//! run directory holds only finished trainings and a rerun resumes from them.
//!
//! Process-wide because a signal is: the handler cannot know which of several trainings it is
//! meant for, and every one of them must stop.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

fn flag_cell() -> &'static Arc<AtomicBool> {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    FLAG.get_or_init(|| Arc::new(AtomicBool::new(false)))
}

/// The flag itself, for a signal handler to set (`signal_hook::flag::register`).
pub fn flag() -> Arc<AtomicBool> {
    flag_cell().clone()
}

/// Asks every training in this process to stop at its next step.
pub fn request() {
    flag_cell().store(true, Ordering::SeqCst);
}

/// Whether a stop was asked for.
pub fn requested() -> bool {
    flag_cell().load(Ordering::Relaxed)
}

/// Fails with [`Error::Stopped`](crate::Error::Stopped) once a stop was asked for: the check a
/// loop makes at each safe point.
pub fn check() -> crate::Result<()> {
    if requested() {
        Err(crate::Error::Stopped)
    } else {
        Ok(())
    }
}
