//! A NOR flash in RAM that can lose power between any two operations.
//!
//! It keeps NOR rules strictly: erase sets a whole erase unit to `0xFF`, a write must be
//! aligned to the write size and may only land on erased bytes (a second program of the same
//! byte is refused, as ECC flash refuses it). [`RamFlash::cut_power_after`] arms a power cut:
//! after that many more erases and writes, the next one is interrupted half-way (a torn write
//! programs a random prefix and leaves the next byte half-programmed; a torn erase erases a
//! random prefix) and every later operation fails. [`RamFlash::image`] is what a reboot sees.

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

use crate::sync::Mutex;

/// Why a [`RamFlash`] operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RamFlashError {
    /// Offset or length not a multiple of the write or erase size.
    NotAligned,
    /// Past the end of the flash.
    OutOfBounds,
    /// A write to bytes that were not erased.
    NotErased,
    /// The power is off (the armed cut happened).
    PowerOff,
}

impl NorFlashError for RamFlashError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            RamFlashError::NotAligned => NorFlashErrorKind::NotAligned,
            RamFlashError::OutOfBounds => NorFlashErrorKind::OutOfBounds,
            RamFlashError::NotErased | RamFlashError::PowerOff => NorFlashErrorKind::Other,
        }
    }
}

#[derive(Debug)]
struct State {
    bytes: Vec<u8>,
    /// Erases and writes that completed.
    ops: u64,
    /// The operation with this index (counting from 0) is torn and the power goes off.
    cut_at: Option<u64>,
    powered: bool,
    rng: u64,
    erases: Vec<u32>,
}

impl State {
    fn next_rand(&mut self) -> u64 {
        // xorshift64*: deterministic tears for a given seed.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Counts a mutating operation; `Some(cut)` if this one is interrupted.
    fn start_op(&mut self) -> Result<bool, RamFlashError> {
        if !self.powered {
            return Err(RamFlashError::PowerOff);
        }
        if self.cut_at == Some(self.ops) {
            self.powered = false;
            return Ok(true);
        }
        self.ops += 1;
        Ok(false)
    }
}

/// A RAM-backed NOR flash with `WRITE`-byte writes and `ERASE`-byte erase units. Clones share
/// the same memory (the filesystem owns one, the test keeps another to cut power and take the
/// image).
#[derive(Debug, Clone)]
pub struct RamFlash<const WRITE: usize = 4, const ERASE: usize = 4096> {
    state: Arc<Mutex<State>>,
}

impl<const WRITE: usize, const ERASE: usize> RamFlash<WRITE, ERASE> {
    /// A flash of `units` erase units, all erased.
    pub fn new(units: usize) -> Self {
        Self::from_bytes(vec![0xFF; units * ERASE], 0x9e37_79b9_7f4a_7c15)
    }

    fn from_bytes(bytes: Vec<u8>, seed: u64) -> Self {
        let erases = vec![0; bytes.len() / ERASE];
        let state = State { bytes, ops: 0, cut_at: None, powered: true, rng: seed | 1, erases };
        RamFlash { state: Arc::new(Mutex::new(state)) }
    }

    /// Arms a power cut: `n` more erases or writes complete, the one after is torn (its tear
    /// drawn from `seed`), and nothing works afterwards.
    pub fn cut_power_after(&self, n: u64, seed: u64) {
        let mut st = self.state.lock();
        st.cut_at = Some(st.ops + n);
        st.rng = seed | 1;
    }

    /// Erases and writes completed so far.
    pub fn ops(&self) -> u64 {
        self.state.lock().ops
    }

    /// `false` once an armed cut has happened.
    pub fn is_powered(&self) -> bool {
        self.state.lock().powered
    }

    /// What the flash holds now, as a new powered-up flash with its own memory: the device
    /// after a reboot.
    pub fn image(&self) -> Self {
        let st = self.state.lock();
        let copy = Self::from_bytes(st.bytes.clone(), st.rng);
        copy.state.lock().erases.clone_from(&st.erases);
        copy
    }

    /// How many times each erase unit was erased.
    pub fn erase_counts(&self) -> Vec<u32> {
        self.state.lock().erases.clone()
    }
}

impl<const WRITE: usize, const ERASE: usize> ErrorType for RamFlash<WRITE, ERASE> {
    type Error = RamFlashError;
}

impl<const WRITE: usize, const ERASE: usize> ReadNorFlash for RamFlash<WRITE, ERASE> {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), RamFlashError> {
        let st = self.state.lock();
        if !st.powered {
            return Err(RamFlashError::PowerOff);
        }
        let start = offset as usize;
        let src = st.bytes.get(start..start + bytes.len()).ok_or(RamFlashError::OutOfBounds)?;
        bytes.copy_from_slice(src);
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.state.lock().bytes.len()
    }
}

impl<const WRITE: usize, const ERASE: usize> NorFlash for RamFlash<WRITE, ERASE> {
    const WRITE_SIZE: usize = WRITE;
    const ERASE_SIZE: usize = ERASE;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), RamFlashError> {
        let mut st = self.state.lock();
        let (from, to) = (from as usize, to as usize);
        if !from.is_multiple_of(ERASE) || !to.is_multiple_of(ERASE) || from > to {
            return Err(RamFlashError::NotAligned);
        }
        if to > st.bytes.len() {
            return Err(RamFlashError::OutOfBounds);
        }
        let torn = st.start_op()?;
        let end = if torn { from + (st.next_rand() as usize) % (to - from + 1) } else { to };
        st.bytes[from..end].fill(0xFF);
        for unit in from / ERASE..end.div_ceil(ERASE) {
            st.erases[unit] += 1;
        }
        if torn {
            if end < to {
                let garbage = st.next_rand() as u8;
                st.bytes[end] = garbage;
            }
            return Err(RamFlashError::PowerOff);
        }
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), RamFlashError> {
        let mut st = self.state.lock();
        let start = offset as usize;
        if !start.is_multiple_of(WRITE) || !bytes.len().is_multiple_of(WRITE) {
            return Err(RamFlashError::NotAligned);
        }
        if start + bytes.len() > st.bytes.len() {
            return Err(RamFlashError::OutOfBounds);
        }
        if st.bytes[start..start + bytes.len()].iter().any(|&b| b != 0xFF) {
            return Err(RamFlashError::NotErased);
        }
        let torn = st.start_op()?;
        let n = if torn { (st.next_rand() as usize) % (bytes.len() + 1) } else { bytes.len() };
        st.bytes[start..start + n].copy_from_slice(&bytes[..n]);
        if torn {
            if n < bytes.len() {
                // A half-programmed byte: some of its zero bits made it.
                let partial = bytes[n] | st.next_rand() as u8;
                st.bytes[start + n] = partial;
            }
            return Err(RamFlashError::PowerOff);
        }
        Ok(())
    }
}
