//! Where the control socket lives, and the checks that keep other users away from it.

use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::ControlError;

/// The default socket: `$XDG_RUNTIME_DIR/backwork/control.sock`, or
/// `$TMPDIR/backwork-UID/control.sock` when `XDG_RUNTIME_DIR` is unset or not absolute.
pub fn default_socket_path() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
    {
        Some(run) => run.join("backwork").join("control.sock"),
        None => std::env::temp_dir()
            .join(format!("backwork-{}", nix::unistd::geteuid()))
            .join("control.sock"),
    }
}

fn io_error(path: &Path, action: &'static str, e: &io::Error) -> ControlError {
    ControlError::Io {
        path: path.to_path_buf(),
        action,
        detail: e.to_string(),
    }
}

/// Creates the socket's directory 0700 if it is missing; checks that it is a real directory (not
/// a symlink) owned by this user that no one else may enter (no group or other permissions).
pub fn prepare_dir(dir: &Path) -> Result<(), ControlError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| io_error(dir, "create the socket directory", &e))?;
    let meta =
        std::fs::symlink_metadata(dir).map_err(|e| io_error(dir, "inspect the directory", &e))?;
    if meta.file_type().is_symlink() {
        return Err(ControlError::Symlink {
            path: dir.to_path_buf(),
        });
    }
    if !meta.is_dir() {
        return Err(ControlError::Io {
            path: dir.to_path_buf(),
            action: "use the socket directory",
            detail: "it is not a directory".into(),
        });
    }
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        return Err(ControlError::NotOwned {
            path: dir.to_path_buf(),
            owner: meta.uid(),
        });
    }
    if meta.mode() & 0o077 != 0 {
        // never loosen or tighten a directory we did not create: it may be shared (/tmp)
        return Err(ControlError::OpenDirectory {
            path: dir.to_path_buf(),
            mode: meta.mode() & 0o7777,
        });
    }
    Ok(())
}

/// What is at a socket path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketFile {
    /// Nothing.
    Absent,
    /// A socket owned by this user (live or stale).
    Present,
}

/// Looks at `path` without following a symlink: nothing, or a socket owned by this user; anything
/// else (a symlink, another kind of file, another user's socket) is refused.
pub fn check_socket(path: &Path) -> Result<SocketFile, ControlError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(SocketFile::Absent),
        Err(e) => return Err(io_error(path, "inspect the socket", &e)),
    };
    let ft = meta.file_type();
    if ft.is_symlink() {
        return Err(ControlError::Symlink {
            path: path.to_path_buf(),
        });
    }
    if !ft.is_socket() {
        return Err(ControlError::NotASocket {
            path: path.to_path_buf(),
        });
    }
    if meta.uid() != nix::unistd::geteuid().as_raw() {
        return Err(ControlError::NotOwned {
            path: path.to_path_buf(),
            owner: meta.uid(),
        });
    }
    Ok(SocketFile::Present)
}
