//! A directory of files in one fuzz input.
//!
//! ```text
//! input := options_byte file*
//! file  := MARKER name '\n' contents      contents run to the next MARKER or the end
//! ```
//!
//! A marker rather than length fields: libFuzzer's mutations insert and erase bytes, and with
//! lengths every such mutation would desynchronise the files after it. With a marker, bytes
//! inserted into a file simply make that file longer, so mutations stay inside the file they
//! hit. The marker never occurs in the seeds' real database files (checked when they are
//! written). Bytes before the first marker are ignored; a file whose name is not UTF-8, is empty
//! or is longer than [`MAX_NAME_LEN`] is skipped; a later file of the same name replaces an
//! earlier one.

/// Starts every file in a container.
pub const MARKER: &[u8] = b"\xf0STRATA-FILE:";
/// Longest file name accepted (database file names are at most about 20 bytes).
pub const MAX_NAME_LEN: usize = 64;
/// Most files taken from one input.
pub const MAX_FILES: usize = 64;

/// Files as (name, contents), borrowing from the input.
pub type Files<'a> = Vec<(&'a str, &'a [u8])>;

/// A container's options byte and files, in input order.
pub fn split(input: &[u8]) -> Option<(u8, Files<'_>)> {
    let (&options, mut rest) = input.split_first()?;
    let mut files: Files<'_> = Vec::new();
    let Some(first) = find(rest, MARKER) else { return Some((options, files)) };
    rest = &rest[first + MARKER.len()..];
    loop {
        let end = find(rest, MARKER).unwrap_or(rest.len());
        let (entry, after) = rest.split_at(end);
        if let Some(newline) = entry.iter().position(|&b| b == b'\n')
            && let Ok(name) = std::str::from_utf8(&entry[..newline])
            && !name.is_empty()
            && name.len() <= MAX_NAME_LEN
        {
            let contents = &entry[newline + 1..];
            files.retain(|(n, _)| *n != name);
            files.push((name, contents));
        }
        if after.is_empty() || files.len() >= MAX_FILES {
            return Some((options, files));
        }
        rest = &after[MARKER.len()..];
    }
}

/// The container holding `files` (name, contents) with `options`. Panics if a name or a file
/// would not come back out of [`split`] unchanged: seeds must be exact.
pub fn join<'a>(options: u8, files: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Vec<u8> {
    let mut out = vec![options];
    for (name, contents) in files {
        assert!(
            !name.is_empty() && name.len() <= MAX_NAME_LEN && !name.contains('\n'),
            "bad name {name:?}"
        );
        assert!(find(contents, MARKER).is_none(), "{name} contains the container marker");
        out.extend_from_slice(MARKER);
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
        out.extend_from_slice(contents);
    }
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_then_split_gives_the_files_back() {
        let files: Vec<(&str, &[u8])> =
            vec![("CURRENT", b"abc"), ("000001.wal", b""), ("x", b"\n\n")];
        let bytes = join(7, files.iter().copied());
        assert_eq!(split(&bytes), Some((7, files)));
    }

    #[test]
    fn damaged_containers_split_without_panicking() {
        let bytes = join(1, [("CURRENT", &b"abc"[..]), ("MANIFEST-000002", b"def")]);
        for cut in 0..bytes.len() {
            let _ = split(&bytes[..cut]);
        }
        assert_eq!(split(b""), None);
        assert_eq!(split(b"\x05junk"), Some((5, vec![])));
    }
}
