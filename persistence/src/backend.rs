//! The storage backend every store database runs on: either straight through to the file (or
//! test backend), or — while a file is being *checked* — through an in-memory overlay that keeps
//! every write redb makes (the repair of an unclean file, the integrity check's commit, a
//! migration) in memory, so a file that fails the check is never written to.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};

use redb::{BackendError, StorageBackend};

/// The overlay's page granularity. Any size works; redb's pages are 4 KiB.
const PAGE: u64 = 4096;

/// How much of the storage's start [`OverlayView::base_header`] keeps.
pub(crate) const HEADER_BYTES: usize = 512;

/// A redb backend over another one: [`Backend::direct`] passes everything through,
/// [`Backend::overlay`] reads from the inner backend but keeps writes in memory. Locks always
/// go to the inner backend, so a checking open holds the file's lock like a writing one.
pub(crate) struct Backend {
    inner: Arc<dyn StorageBackend>,
    overlay: Option<Arc<Mutex<Overlay>>>,
}

/// A look at what a checking open left in its overlay, after the database is gone.
pub(crate) struct OverlayView {
    inner: Arc<dyn StorageBackend>,
    overlay: Arc<Mutex<Overlay>>,
}

impl OverlayView {
    /// The first `out.len()` bytes as the checking open left them.
    pub(crate) fn read_start(&self, out: &mut [u8]) -> io::Result<()> {
        let mut o = lock(&self.overlay);
        o.start(&*self.inner)?;
        o.read(&*self.inner, 0, out)
    }

    /// The first bytes of the storage as they were when the checking open started reading
    /// (at most [`HEADER_BYTES`]; fewer if the storage is shorter).
    pub(crate) fn base_header(&self) -> Vec<u8> {
        lock(&self.overlay).base_header.clone()
    }

    /// True when the checking open wrote to the first page (redb's header: it committed).
    pub(crate) fn wrote_header(&self) -> bool {
        lock(&self.overlay).pages.contains_key(&0)
    }
}

/// What the check wrote, page by page, over the inner backend's bytes. Its starting length (and
/// the header the file had) are taken at first use, after redb took the file's lock, so another
/// process writing the file just before is not seen half-way.
struct Overlay {
    /// Set by the first call past the locks.
    started: bool,
    /// The first bytes of the inner backend when the overlay started (redb's header).
    base_header: Vec<u8>,
    /// The storage's length as redb sees it.
    len: u64,
    /// How many leading bytes of the inner backend still show through (shrinking hides the rest).
    base_len: u64,
    /// Pages written, indexed by page number; each is exactly [`PAGE`] bytes.
    pages: HashMap<u64, Box<[u8]>>,
}

impl fmt::Debug for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backend")
            .field("inner", &self.inner)
            .field("overlay", &self.overlay.is_some())
            .finish()
    }
}

impl Backend {
    /// Everything goes to `inner`.
    /// Also returns a handle on `inner`, to read what redb wrote.
    pub(crate) fn direct(inner: Box<dyn StorageBackend>) -> (Backend, Arc<dyn StorageBackend>) {
        let inner: Arc<dyn StorageBackend> = Arc::from(inner);
        (
            Backend {
                inner: Arc::clone(&inner),
                overlay: None,
            },
            inner,
        )
    }

    /// Reads come from `inner` (or from what was written since); writes stay in memory.
    /// The view outlives the backend, to look at what the open wrote.
    pub(crate) fn overlay(inner: Box<dyn StorageBackend>) -> (Backend, OverlayView) {
        let inner: Arc<dyn StorageBackend> = Arc::from(inner);
        let overlay = Arc::new(Mutex::new(Overlay {
            started: false,
            base_header: Vec::new(),
            len: 0,
            base_len: 0,
            pages: HashMap::new(),
        }));
        let view = OverlayView {
            inner: Arc::clone(&inner),
            overlay: Arc::clone(&overlay),
        };
        (
            Backend {
                inner,
                overlay: Some(overlay),
            },
            view,
        )
    }
}

fn lock(m: &Mutex<Overlay>) -> MutexGuard<'_, Overlay> {
    // plain data: a panic elsewhere leaves it usable
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Overlay {
    /// Takes the inner backend's length and header, once.
    fn start(&mut self, inner: &dyn StorageBackend) -> io::Result<()> {
        if !self.started {
            let len = inner.len()?;
            let mut header = vec![0u8; (len.min(HEADER_BYTES as u64)) as usize];
            inner.read(0, &mut header)?;
            self.len = len;
            self.base_len = len;
            self.base_header = header;
            self.started = true;
        }
        Ok(())
    }

    /// Copies the bytes of page `index` that the inner backend still shows into `out` (zeros
    /// past them).
    fn base_page(&self, inner: &dyn StorageBackend, index: u64, out: &mut [u8]) -> io::Result<()> {
        out.fill(0);
        let start = index * PAGE;
        if start < self.base_len {
            let n = (self.base_len - start).min(PAGE) as usize;
            inner.read(start, &mut out[..n])?;
        }
        Ok(())
    }

    /// The overlay's own copy of page `index`, made from the inner bytes on first use.
    fn page_mut(&mut self, inner: &dyn StorageBackend, index: u64) -> io::Result<&mut [u8]> {
        if !self.pages.contains_key(&index) {
            let mut page = vec![0u8; PAGE as usize].into_boxed_slice();
            self.base_page(inner, index, &mut page)?;
            self.pages.insert(index, page);
        }
        Ok(self.pages.get_mut(&index).expect("inserted above"))
    }

    fn read(&self, inner: &dyn StorageBackend, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let end = offset
            .checked_add(out.len() as u64)
            .filter(|&e| e <= self.len)
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end"))?;
        let mut pos = offset;
        let mut scratch = vec![0u8; PAGE as usize];
        while pos < end {
            let index = pos / PAGE;
            let within = (pos % PAGE) as usize;
            let n = ((PAGE as usize) - within).min((end - pos) as usize);
            let dst = &mut out[(pos - offset) as usize..][..n];
            match self.pages.get(&index) {
                Some(page) => dst.copy_from_slice(&page[within..within + n]),
                None => {
                    self.base_page(inner, index, &mut scratch)?;
                    dst.copy_from_slice(&scratch[within..within + n]);
                }
            }
            pos += n as u64;
        }
        Ok(())
    }

    fn write(&mut self, inner: &dyn StorageBackend, offset: u64, data: &[u8]) -> io::Result<()> {
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "write past 2^64"))?;
        let mut pos = offset;
        while pos < end {
            let index = pos / PAGE;
            let within = (pos % PAGE) as usize;
            let n = ((PAGE as usize) - within).min((end - pos) as usize);
            let src = &data[(pos - offset) as usize..][..n];
            self.page_mut(inner, index)?[within..within + n].copy_from_slice(src);
            pos += n as u64;
        }
        self.len = self.len.max(end);
        Ok(())
    }

    fn set_len(&mut self, inner: &dyn StorageBackend, len: u64) -> io::Result<()> {
        if len < self.len {
            // bytes past the new end must read as zeros if the storage grows again
            if !len.is_multiple_of(PAGE) {
                let within = (len % PAGE) as usize;
                self.page_mut(inner, len / PAGE)?[within..].fill(0);
            }
            let first_gone = len.div_ceil(PAGE);
            self.pages.retain(|&i, _| i < first_gone);
            self.base_len = self.base_len.min(len);
        }
        self.len = len;
        Ok(())
    }
}

impl StorageBackend for Backend {
    fn len(&self) -> io::Result<u64> {
        match &self.overlay {
            Some(o) => {
                let mut o = lock(o);
                o.start(&*self.inner)?;
                Ok(o.len)
            }
            None => self.inner.len(),
        }
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        match &self.overlay {
            Some(o) => {
                let mut o = lock(o);
                o.start(&*self.inner)?;
                o.read(&*self.inner, offset, out)
            }
            None => self.inner.read(offset, out),
        }
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        match &self.overlay {
            Some(o) => {
                let mut o = lock(o);
                o.start(&*self.inner)?;
                o.set_len(&*self.inner, len)
            }
            None => self.inner.set_len(len),
        }
    }

    fn sync_data(&self) -> io::Result<()> {
        match &self.overlay {
            Some(_) => Ok(()),
            None => self.inner.sync_data(),
        }
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        match &self.overlay {
            Some(o) => {
                let mut o = lock(o);
                o.start(&*self.inner)?;
                o.write(&*self.inner, offset, data)
            }
            None => self.inner.write(offset, data),
        }
    }

    fn close(&self) -> io::Result<()> {
        self.inner.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.inner.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.query_lock_range(start, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plain in-memory backend that counts the writes that reach it.
    #[derive(Debug, Default, Clone)]
    struct Mem {
        bytes: Arc<Mutex<Vec<u8>>>,
        writes: Arc<Mutex<u32>>,
    }

    impl StorageBackend for Mem {
        fn len(&self) -> io::Result<u64> {
            Ok(self.bytes.lock().unwrap().len() as u64)
        }
        fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
            let b = self.bytes.lock().unwrap();
            out.copy_from_slice(&b[offset as usize..offset as usize + out.len()]);
            Ok(())
        }
        fn set_len(&self, len: u64) -> io::Result<()> {
            *self.writes.lock().unwrap() += 1;
            self.bytes.lock().unwrap().resize(len as usize, 0);
            Ok(())
        }
        fn sync_data(&self) -> io::Result<()> {
            Ok(())
        }
        fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
            *self.writes.lock().unwrap() += 1;
            let mut b = self.bytes.lock().unwrap();
            b[offset as usize..offset as usize + data.len()].copy_from_slice(data);
            Ok(())
        }
    }

    #[test]
    fn the_overlay_reads_its_writes_and_never_writes_below() {
        let base: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let mem = Mem::default();
        *mem.bytes.lock().unwrap() = base.clone();
        let (o, view) = Backend::overlay(Box::new(mem.clone()));
        assert!(!view.wrote_header());
        let mut model = base.clone();
        // a write across a page boundary, a grow, a shrink into a page and a grow again
        o.write(4000, &[7u8; 300]).unwrap();
        model[4000..4300].fill(7);
        o.set_len(20_000).unwrap();
        model.resize(20_000, 0);
        o.write(15_000, &[9u8; 10]).unwrap();
        model[15_000..15_010].fill(9);
        o.set_len(5_000).unwrap();
        model.truncate(5_000);
        o.set_len(12_000).unwrap();
        model.resize(12_000, 0);
        assert_eq!(o.len().unwrap(), 12_000);
        let mut all = vec![0u8; 12_000];
        o.read(0, &mut all).unwrap();
        assert_eq!(all, model);
        let mut past = [0u8; 1];
        assert!(o.read(12_000, &mut past).is_err());
        assert!(view.wrote_header());
        assert_eq!(view.base_header(), base[..HEADER_BYTES]);
        assert_eq!(*mem.writes.lock().unwrap(), 0);
        assert_eq!(*mem.bytes.lock().unwrap(), base);
    }
}
