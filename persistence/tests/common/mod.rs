//! Shared by the fault tests: an in-memory disk for redb whose writes and syncs start failing
//! with an errno once it is set (reads keep working).

#![allow(dead_code)] // each test file uses its own part

use std::io;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};

/// An in-memory disk whose writes and syncs fail with `errno` once it is set; reads work.
#[derive(Debug, Clone, Default)]
pub struct Disk {
    bytes: Arc<Mutex<Vec<u8>>>,
    errno: Arc<AtomicI32>,
}

impl Disk {
    /// Writes and syncs fail with `errno` from now on (0: they work again).
    pub fn fail_with(&self, errno: i32) {
        self.errno.store(errno, Ordering::SeqCst);
    }

    fn check(&self) -> io::Result<()> {
        match self.errno.load(Ordering::SeqCst) {
            0 => Ok(()),
            e => Err(io::Error::from_raw_os_error(e)),
        }
    }

    /// A working disk holding a copy of these bytes (a reopen after the fault).
    pub fn copy(&self) -> Disk {
        Disk {
            bytes: Arc::new(Mutex::new(self.bytes())),
            errno: Arc::default(),
        }
    }

    /// The bytes on the disk.
    pub fn bytes(&self) -> Vec<u8> {
        self.bytes.lock().unwrap().clone()
    }

    /// Replaces the bytes on the disk.
    pub fn set_bytes(&self, bytes: Vec<u8>) {
        *self.bytes.lock().unwrap() = bytes;
    }
}

impl redb::StorageBackend for Disk {
    fn len(&self) -> io::Result<u64> {
        Ok(self.bytes.lock().unwrap().len() as u64)
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let b = self.bytes.lock().unwrap();
        let (s, e) = (offset as usize, offset as usize + out.len());
        if e > b.len() {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "past the end"));
        }
        out.copy_from_slice(&b[s..e]);
        Ok(())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.check()?;
        self.bytes.lock().unwrap().resize(len as usize, 0);
        Ok(())
    }
    fn sync_data(&self) -> io::Result<()> {
        self.check()
    }
    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.check()?;
        let mut b = self.bytes.lock().unwrap();
        let e = offset as usize + data.len();
        if e > b.len() {
            b.resize(e, 0);
        }
        b[offset as usize..e].copy_from_slice(data);
        Ok(())
    }
}
