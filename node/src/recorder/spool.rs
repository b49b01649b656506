//! The spool file the muxer writes, and what the recorder learns from how
//! it is written.
//!
//! libwebm writes a cluster with its size unknown, and when the next
//! cluster starts it seeks back, writes the size (8 bytes) and seeks to the
//! end again. The end it returns to is a *settled* point: nothing before it
//! changes again until finalize, so the bytes up to it can be uploaded as a
//! segment. Finalize itself rewrites parts of the header (segment size,
//! seek head, duration) below bytes already uploaded; those writes are
//! recorded as *dirty* ranges so the segments they touch are uploaded
//! again.

use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::sync::{Arc, Mutex};

/// What the writer observed; shared between the muxer's writer and the
/// recorder, which reads it after each frame.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SpoolState {
    /// The file's length.
    pub len: u64,
    /// The write position.
    pos: u64,
    /// The latest settled point: every byte before it is final (until
    /// finalize).
    pub settled: u64,
    /// A write happened below the end since the last return to it.
    patched: bool,
    /// Bytes below this are uploaded; writes there are recorded in `dirty`.
    pub frozen: u64,
    /// Byte ranges `[start, end)` written below `frozen`.
    pub dirty: Vec<(u64, u64)>,
    /// Bytes written in all (patches included).
    pub written: u64,
}

/// A shared view of a [`SpoolWriter`]'s state.
#[derive(Clone, Debug, Default)]
pub struct SpoolHandle(Arc<Mutex<SpoolState>>);

impl SpoolHandle {
    /// A copy of the state now.
    pub fn snapshot(&self) -> SpoolState {
        self.0.lock().expect("lock poisoned").clone()
    }

    /// Marks the bytes below `upto` uploaded: later writes there are dirty.
    pub fn freeze(&self, upto: u64) {
        let mut s = self.0.lock().expect("lock poisoned");
        s.frozen = s.frozen.max(upto);
    }

    /// Takes the dirty ranges recorded so far.
    pub fn take_dirty(&self) -> Vec<(u64, u64)> {
        std::mem::take(&mut self.0.lock().expect("lock poisoned").dirty)
    }
}

/// `Write + Seek` over a file (or any `Write + Seek`), observing settled
/// points and writes below uploaded bytes.
pub struct SpoolWriter<W> {
    inner: W,
    state: SpoolHandle,
}

impl SpoolWriter<BufWriter<File>> {
    /// Creates (truncates) the spool file at `path`, buffered: libwebm
    /// writes a frame in several small pieces. Every seek flushes the
    /// buffer, so the bytes before a settled point (reached by a seek) are
    /// in the file when the recorder reads them to upload.
    pub fn create(path: &std::path::Path) -> io::Result<(Self, SpoolHandle)> {
        Ok(Self::new(BufWriter::new(File::create(path)?)))
    }
}

impl<W: Write + Seek> SpoolWriter<W> {
    /// Wraps `inner`, which must be empty.
    pub fn new(inner: W) -> (Self, SpoolHandle) {
        let state = SpoolHandle::default();
        (
            SpoolWriter {
                inner,
                state: state.clone(),
            },
            state,
        )
    }
}

impl<W: Write> Write for SpoolWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        let mut s = self.state.0.lock().expect("lock poisoned");
        let (start, end) = (s.pos, s.pos + n as u64);
        if start < s.len {
            s.patched = true;
        }
        if start < s.frozen {
            let e = end.min(s.frozen);
            s.dirty.push((start, e));
        }
        s.pos = end;
        s.len = s.len.max(end);
        s.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W: Seek> Seek for SpoolWriter<W> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let pos = self.inner.seek(to)?;
        let mut s = self.state.0.lock().expect("lock poisoned");
        s.pos = pos;
        if pos == s.len && s.patched {
            // Back at the end after patching below it: a settled point.
            s.settled = pos;
            s.patched = false;
        }
        Ok(pos)
    }

    /// The tracked position, without a seek: libwebm asks for it often,
    /// and a real seek would flush the buffer every time.
    fn stream_position(&mut self) -> io::Result<u64> {
        Ok(self.state.0.lock().expect("lock poisoned").pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn returning_to_the_end_after_a_patch_settles_the_bytes_before_it() {
        let (mut w, h) = SpoolWriter::new(Cursor::new(Vec::new()));
        w.write_all(&[0; 100]).unwrap();
        // A seek to the end without a patch settles nothing.
        w.seek(SeekFrom::Start(100)).unwrap();
        assert_eq!(h.snapshot().settled, 0);
        w.seek(SeekFrom::Start(40)).unwrap();
        w.write_all(&[1; 8]).unwrap();
        w.seek(SeekFrom::Start(100)).unwrap();
        assert_eq!(h.snapshot().settled, 100);
        w.write_all(&[2; 10]).unwrap();
        assert_eq!(h.snapshot().settled, 100);
        assert_eq!(h.snapshot().len, 110);
    }

    #[test]
    fn writes_below_uploaded_bytes_are_recorded_as_dirty() {
        let (mut w, h) = SpoolWriter::new(Cursor::new(Vec::new()));
        w.write_all(&[0; 100]).unwrap();
        h.freeze(60);
        w.seek(SeekFrom::Start(70)).unwrap();
        w.write_all(&[1; 8]).unwrap();
        assert!(h.take_dirty().is_empty());
        w.seek(SeekFrom::Start(10)).unwrap();
        w.write_all(&[1; 8]).unwrap();
        w.seek(SeekFrom::Start(56)).unwrap();
        w.write_all(&[1; 8]).unwrap();
        assert_eq!(h.take_dirty(), vec![(10, 18), (56, 60)]);
        assert_eq!(h.snapshot().written, 124);
    }
}
