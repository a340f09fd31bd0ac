//! The key layout (docs/format/object_store.md).
//!
//! ```text
//! "objstore\0" 'm' path                      -> object record (record.rs)
//! "objstore\0" 'c' data id (16) part (u32 BE) piece (u32 BE)   -> a chunk of object bytes
//! "objstore\0" 'u' upload id (16)            -> upload record: path and attributes
//! "objstore\0" 'p' upload id (16) part (u32 BE)                -> staged part's length
//! ```
//!
//! Object records sort by path, so a listing is one range scan and a directory is one
//! contiguous range (`path/` up to `path0`, since `'0'` follows `'/'`). The chunks of one data
//! id sort by part and then by piece, which is the object's byte order for a simple put.

/// The prefix of every key this adapter writes.
pub(crate) const NAMESPACE: &[u8] = b"objstore\0";

const OBJECT: u8 = b'm';
const CHUNK: u8 = b'c';
const UPLOAD: u8 = b'u';
const PART: u8 = b'p';

/// Identifies the chunks of one write (a put, a copy or a multipart upload): 16 random bytes.
pub(super) type DataId = [u8; 16];

fn with_tag(tag: u8, extra: usize) -> Vec<u8> {
    let mut key = Vec::with_capacity(NAMESPACE.len() + 1 + extra);
    key.extend_from_slice(NAMESPACE);
    key.push(tag);
    key
}

/// The key of the record of the object at `path` (the path's canonical string).
pub(super) fn object(path: &str) -> Vec<u8> {
    let mut key = with_tag(OBJECT, path.len());
    key.extend_from_slice(path.as_bytes());
    key
}

/// The first key after every object record.
pub(super) fn objects_end() -> Vec<u8> {
    with_tag(OBJECT + 1, 0)
}

/// The path inside an object record key, `None` for any other key.
pub(super) fn path_of(key: &[u8]) -> Option<&str> {
    let rest = key.strip_prefix(NAMESPACE)?.strip_prefix(&[OBJECT])?;
    std::str::from_utf8(rest).ok()
}

/// The key of piece `piece` of part `part` of data `id`.
pub(super) fn chunk(id: &DataId, part: u32, piece: u32) -> Vec<u8> {
    let mut key = chunks_of_part(id, part);
    key.extend_from_slice(&piece.to_be_bytes());
    key
}

/// The prefix of every chunk of data `id`.
pub(super) fn chunks_of(id: &DataId) -> Vec<u8> {
    let mut key = with_tag(CHUNK, 24);
    key.extend_from_slice(id);
    key
}

/// The prefix of every chunk of part `part` of data `id`.
pub(super) fn chunks_of_part(id: &DataId, part: u32) -> Vec<u8> {
    let mut key = chunks_of(id);
    key.extend_from_slice(&part.to_be_bytes());
    key
}

/// The key of the record of upload `id`.
pub(super) fn upload(id: &DataId) -> Vec<u8> {
    let mut key = with_tag(UPLOAD, 16);
    key.extend_from_slice(id);
    key
}

/// The prefix of the part records of upload `id`.
pub(super) fn parts_of(id: &DataId) -> Vec<u8> {
    let mut key = with_tag(PART, 20);
    key.extend_from_slice(id);
    key
}

/// The key of the record of part `part` of upload `id`.
pub(super) fn part(id: &DataId, part: u32) -> Vec<u8> {
    let mut key = parts_of(id);
    key.extend_from_slice(&part.to_be_bytes());
    key
}

/// The part number at the end of a part record key.
pub(super) fn part_number_of(key: &[u8]) -> Option<u32> {
    let tail = key.len().checked_sub(4).and_then(|at| key.get(at..))?;
    Some(u32::from_be_bytes(tail.try_into().ok()?))
}

/// The first key after every key that starts with `prefix`: `prefix` with its last byte
/// below 0xff incremented and what follows dropped. Every prefix used here starts with the
/// namespace, whose first byte is below 0xff, so one always exists.
pub(super) fn successor(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // Unreachable for namespaced keys; an empty bound would mean "nothing".
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_the_documented_shape() {
        assert_eq!(object("a/b.txt"), b"objstore\0ma/b.txt");
        assert_eq!(path_of(b"objstore\0ma/b.txt"), Some("a/b.txt"));
        assert_eq!(path_of(b"objstore\0ua/b.txt"), None);
        let id = [0xab; 16];
        let key = chunk(&id, 2, 7);
        assert_eq!(key.len(), 9 + 1 + 16 + 8);
        assert!(key.starts_with(&chunks_of_part(&id, 2)));
        assert!(key.ends_with(&[0, 0, 0, 2, 0, 0, 0, 7]));
        assert_eq!(part_number_of(&part(&id, 9)), Some(9));
        assert_eq!(successor(b"objstore\0ma/"), b"objstore\0ma0");
        assert_eq!(successor(b"ab\xff\xff"), b"ac");
        assert!(objects_end() > object("\u{10ffff}"));
    }
}
