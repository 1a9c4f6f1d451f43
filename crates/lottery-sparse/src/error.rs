//! The crate's one error type. A problem found in a file names the file; the same problem in
//! bytes or a model built in memory stands alone.

use std::path::{Path, PathBuf};

use crate::format::VERSION;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing `path` failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file at `path` is not a valid model.
    #[error("{}: {problem}", path.display())]
    File { path: PathBuf, problem: Problem },
    /// A model, matrix or byte buffer not (yet) tied to a file is not valid.
    #[error("{0}")]
    Model(Problem),
}

/// What is wrong with a model, its bytes or one of its matrices.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Problem {
    #[error("not a compact lottery model (no .lsm magic bytes)")]
    NotLsm,
    #[error("format version {0} is not supported (this build reads version {VERSION})")]
    Version(u32),
    #[error("truncated: {what} needs {need} bytes at offset {at}, only {have} remain")]
    Truncated {
        what: &'static str,
        at: usize,
        need: usize,
        have: usize,
    },
    #[error(
        "checksum mismatch (stored {stored:08x}, computed {computed:08x}): the file is corrupt"
    )]
    Checksum { stored: u32, computed: u32 },
    #[error("a {rows}×{cols} matrix needs {} values, got {len}", rows * cols)]
    Shape {
        rows: usize,
        cols: usize,
        len: usize,
    },
    #[error("{cols} columns do not fit 32-bit indices")]
    TooWide { cols: usize },
    /// Inconsistent layers, shapes or indices, said in words.
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An inconsistency said in words.
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::Model(Problem::Invalid(message.into()))
    }

    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// The same problem, found in the file at `path`.
    pub fn in_file(self, path: &Path) -> Self {
        match self {
            Error::Model(problem) => Error::File {
                path: path.to_path_buf(),
                problem,
            },
            other => other,
        }
    }

    /// What is wrong, unless it was input/output.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            Error::File { problem, .. } | Error::Model(problem) => Some(problem),
            Error::Io { .. } => None,
        }
    }
}

impl From<Problem> for Error {
    fn from(p: Problem) -> Self {
        Error::Model(p)
    }
}
