//! One error type for the library; every variant says what went wrong and where.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file exists but its contents are not what its format promises.
    #[error("{}: {message}", path.display())]
    Format { path: PathBuf, message: String },
    /// A setting is out of range or inconsistent; `field` is the name the user typed.
    #[error("invalid {field}: {message}")]
    Config { field: String, message: String },
    #[error("unknown model `{name}` (known: {known})")]
    UnknownModel { name: String, known: String },
    /// A checkpoint does not fit the model it is loaded into.
    #[error("{}: {message}", path.display())]
    Checkpoint { path: PathBuf, message: String },
    /// A state dict does not fit a model: a tensor missing, extra, misshapen or not finite.
    #[error("{0}")]
    StateDict(String),
    #[error("training diverged: the loss became {value} at iteration {iteration}")]
    Diverged { iteration: usize, value: f32 },
    /// A stop was asked for ([`crate::stop`], e.g. by SIGTERM) before the training finished.
    #[error("stopped on request before the training finished")]
    Stopped,
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub fn format(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Format {
            path: path.into(),
            message: message.into(),
        }
    }

    pub fn config(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Config {
            field: field.into(),
            message: message.into(),
        }
    }
}
