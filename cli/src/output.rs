//! Where results go: text lines, or one JSON document with `--json`.
//!
//! Text is written as it is produced; long listings (`scan`, the dumps) stream in JSON too,
//! as an array written element by element, so memory stays flat however much is printed.

use std::io::{self, BufWriter, Stdout, Write};

use serde_json::Value;

/// The tool's standard output.
pub struct Out {
    json: bool,
    w: BufWriter<Stdout>,
    /// Elements written to the open JSON array, if one is open.
    in_array: Option<usize>,
}

impl Out {
    pub fn new(json: bool) -> Out {
        Out { json, w: BufWriter::new(io::stdout()), in_array: None }
    }

    /// Writes a line of text (ignored in JSON mode).
    pub fn line(&mut self, text: impl std::fmt::Display) -> io::Result<()> {
        if self.json {
            return Ok(());
        }
        writeln!(self.w, "{text}")
    }

    /// Writes one whole JSON document (ignored in text mode).
    pub fn doc(&mut self, value: &Value) -> io::Result<()> {
        if !self.json {
            return Ok(());
        }
        writeln!(self.w, "{value}")
    }

    /// Starts a streamed JSON array (JSON mode only).
    pub fn begin_array(&mut self) -> io::Result<()> {
        if self.json {
            self.in_array = Some(0);
            write!(self.w, "[")?;
        }
        Ok(())
    }

    /// Writes one element of the open array (JSON mode only).
    pub fn element(&mut self, value: &Value) -> io::Result<()> {
        if let Some(n) = self.in_array.as_mut() {
            if *n > 0 {
                write!(self.w, ",")?;
            }
            *n += 1;
            write!(self.w, "\n{value}")?;
        }
        Ok(())
    }

    /// Closes the open array.
    pub fn end_array(&mut self) -> io::Result<()> {
        if self.in_array.take().is_some() {
            writeln!(self.w, "\n]")?;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}
