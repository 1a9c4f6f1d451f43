//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};

/// Every file under `dir` with its bytes, sorted; folders named `skip` are left out.
pub fn snapshot(dir: &Path, skip: Option<&str>) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if skip.is_some_and(|s| p.file_name().is_some_and(|n| n == s)) {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}
