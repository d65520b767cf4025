//! The command line's error: a sentence for stderr and the exit code.

use backwork_control::{ControlError, ErrorKind, runtime_error_kind, store_error_kind};
use backwork_scheduler::{RuntimeError, StoreError};

/// A failed command: printed as `error: {message}`, exits with `code` (DESIGN §7: 1 nothing
/// matched, 2 invalid input, 3 store unavailable, 4 store corrupt or too new).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CliError {
    /// The exit code.
    pub code: u8,
    /// What went wrong and what to do.
    pub message: String,
}

impl CliError {
    /// An error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        CliError {
            code: kind.exit_code(),
            message: message.into(),
        }
    }

    /// Invalid input (exit 2).
    pub fn invalid(message: impl Into<String>) -> Self {
        CliError::new(ErrorKind::Invalid, message)
    }

    /// The store or the server is unavailable (exit 3).
    pub fn unavailable(message: impl Into<String>) -> Self {
        CliError::new(ErrorKind::Unavailable, message)
    }
}

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> Self {
        CliError::new(store_error_kind(&e), e.to_string())
    }
}

impl From<ControlError> for CliError {
    fn from(e: ControlError) -> Self {
        CliError::unavailable(e.to_string())
    }
}

impl From<RuntimeError> for CliError {
    fn from(e: RuntimeError) -> Self {
        CliError::new(runtime_error_kind(&e), e.to_string())
    }
}
