//! `embedded-io` byte streams over the filesystem: a [`FlashWriter`] is an
//! [`embedded_io::Write`], and [`StreamReader`] reads any [`RandomRead`] file from start to end
//! as an [`embedded_io::Read`] + [`embedded_io::Seek`].

use embedded_io::{ErrorType, Read, Seek, SeekFrom, Write};
use embedded_storage::nor_flash::NorFlash;

use super::FlashWriter;
use crate::{AppendWrite, Error, ErrorKind, RandomRead};

impl embedded_io::Error for Error {
    fn kind(&self) -> embedded_io::ErrorKind {
        match self.kind() {
            ErrorKind::NotFound => embedded_io::ErrorKind::NotFound,
            ErrorKind::AlreadyExists => embedded_io::ErrorKind::AlreadyExists,
            ErrorKind::UnexpectedEof => embedded_io::ErrorKind::InvalidData,
            ErrorKind::NoSpace => embedded_io::ErrorKind::OutOfMemory,
            ErrorKind::Interrupted => embedded_io::ErrorKind::Interrupted,
            ErrorKind::Unsupported => embedded_io::ErrorKind::Unsupported,
            ErrorKind::WrongKey => embedded_io::ErrorKind::PermissionDenied,
            ErrorKind::Locked | ErrorKind::Other => embedded_io::ErrorKind::Other,
        }
    }
}

impl<F: NorFlash> ErrorType for FlashWriter<F> {
    type Error = Error;
}

impl<F: NorFlash> Write for FlashWriter<F> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Error> {
        self.append(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Error> {
        AppendWrite::flush(self)
    }
}

/// Reads a file sequentially from a cursor.
#[derive(Debug)]
pub struct StreamReader<R> {
    file: R,
    pos: u64,
}

impl<R: RandomRead> StreamReader<R> {
    /// A reader at the start of `file`.
    pub fn new(file: R) -> Self {
        StreamReader { file, pos: 0 }
    }

    /// The file back.
    pub fn into_inner(self) -> R {
        self.file
    }
}

impl<R: RandomRead> ErrorType for StreamReader<R> {
    type Error = Error;
}

impl<R: RandomRead> Read for StreamReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        let left = self.file.len()?.saturating_sub(self.pos);
        let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        self.file.read_exact_at(self.pos, &mut buf[..n])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: RandomRead> Seek for StreamReader<R> {
    fn seek(&mut self, pos: SeekFrom) -> Result<u64, Error> {
        let target = match pos {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.file.len()?.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos =
            target.ok_or(Error::new(ErrorKind::Unsupported, "stream: seek before the start"))?;
        Ok(self.pos)
    }
}
