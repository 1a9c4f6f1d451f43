//! Allocator tuning for training loops.
//!
//! glibc serves blocks over 128 KiB with mmap and unmaps them on free, so every training step
//! faults its weight, gradient and activation buffers in afresh: the kernel zeroing pages was
//! ~10% of a LeNet step. Raising the mmap and trim thresholds keeps freed blocks in the heap
//! for the next step to reuse. Measured on 2 cores: LeNet Adam 3.0–3.7 ms/step → 2.4–3.0, Conv-2
//! 832 → 714 ms/step (BENCHMARKS.md).

#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn keep_freed_memory() {
    const M_TRIM_THRESHOLD: i32 = -1;
    const M_MMAP_THRESHOLD: i32 = -3;
    // glibc's ceiling for the mmap threshold on 64-bit targets.
    const MMAP_MAX: i32 = 32 << 20;
    unsafe extern "C" {
        fn mallopt(param: i32, value: i32) -> i32;
    }
    // SAFETY: mallopt only adjusts allocator parameters; called before any training starts.
    unsafe {
        mallopt(M_MMAP_THRESHOLD, MMAP_MAX);
        mallopt(M_TRIM_THRESHOLD, 1 << 30);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn keep_freed_memory() {}
