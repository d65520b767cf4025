//! Where the default store lives, and creating its directory safely.

use std::path::PathBuf;

use backwork_scheduler::StoreError;

/// The default store: `$XDG_DATA_HOME/backwork/store.redb`, or
/// `~/.local/share/backwork/store.redb` when `XDG_DATA_HOME` is unset or not absolute.
pub fn default_store_path() -> Result<PathBuf, StoreError> {
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .map(|home| home.join(".local").join("share"))
        })
        .ok_or_else(|| StoreError::Missing {
            path: "$XDG_DATA_HOME/backwork/store.redb (neither XDG_DATA_HOME nor HOME is set; pass --store PATH)".into(),
        })?;
    Ok(data.join("backwork").join("store.redb"))
}
