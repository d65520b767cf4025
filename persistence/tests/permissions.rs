//! A new store is created 0600 in a 0700 directory, whatever the umask. (Its own test binary:
//! the umask is per process.)

use std::os::unix::fs::PermissionsExt;

use backwork_persistence::{OpenMode, RedbStore};

#[test]
fn a_new_store_is_private_whatever_the_umask() {
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data").join("backwork").join("store.redb");
    let store = RedbStore::open(&path, OpenMode::CreateIfMissing);
    nix::sys::stat::umask(old);
    drop(store.unwrap());
    let file = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    let parent = std::fs::metadata(path.parent().unwrap())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(file, 0o600);
    assert_eq!(parent, 0o700);
}
