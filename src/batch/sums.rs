//! Chunk sums: the CRC-32C of every fixed-size chunk of a backup's files,
//! recorded when it is verified in full, so that a later run can tell,
//! by re-reading a sample of chunks, whether the bytes changed in place
//! (bit rot, or a write that kept the size, time and inode).
//!
//! A file is cut into at most [`MAX_CHUNKS`] chunks of at least
//! [`MIN_CHUNK`] bytes. Holes (found with `SEEK_DATA`) are summed without
//! being read, so a 50 GB sparse file costs nothing. A cached run compares
//! every chunk of a small file (up to [`SMALL_CHUNKS`] chunks) and, of a
//! larger one, its first and last chunk and one chunk in [`STRIPES`]: the
//! stripe moves on each day, so nightly runs compare every chunk within
//! [`STRIPES`] days.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The smallest chunk.
pub const MIN_CHUNK: u64 = 64 << 10;
/// The most chunks a file is cut into (larger files get larger chunks).
pub const MAX_CHUNKS: u64 = 16 << 10;
/// Files of up to this many chunks are compared whole on a cached run.
pub const SMALL_CHUNKS: usize = 128;
/// A larger file has one chunk in this many compared per run.
pub const STRIPES: u64 = 8;

/// The sums of one file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSums {
    /// Its path relative to the unit (empty for a file unit).
    pub rel: String,
    /// Its size.
    pub size: u64,
    /// Chunk size.
    pub chunk: u64,
    /// CRC-32C of each chunk.
    pub crcs: Vec<u32>,
}

/// The sums of a unit: one file, or every regular file of a data dir.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sums {
    /// Per file, in path order.
    pub files: Vec<FileSums>,
}

/// Where a cached run found bytes that changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangedChunk {
    /// The file (relative to the unit; empty for a file unit).
    pub rel: String,
    /// Byte offset of the chunk that differs.
    pub offset: u64,
}

fn chunk_size(size: u64) -> u64 {
    size.div_ceil(MAX_CHUNKS).next_power_of_two().max(MIN_CHUNK)
}

/// A read buffer, and the CRC-32C of the last length of zeros asked for
/// (every chunk of a file but the last has the same length).
#[derive(Default)]
struct Reader {
    buf: Vec<u8>,
    zeros: Option<(u64, u32)>,
}

impl Reader {
    /// The CRC-32C of `len` zero bytes.
    fn zeros_crc(&mut self, len: u64) -> u32 {
        if let Some((l, c)) = self.zeros
            && l == len
        {
            return c;
        }
        self.buf.clear();
        self.buf.resize(len as usize, 0);
        let c = crc32c::crc32c(&self.buf);
        self.zeros = Some((len, c));
        c
    }

    /// The CRC-32C of chunk `i` of `f` (size `size`, chunk size `chunk`).
    fn chunk_crc(&mut self, f: &File, size: u64, chunk: u64, i: u64) -> io::Result<u32> {
        let start = i * chunk;
        let len = chunk.min(size - start);
        if crate::source::next_data(f, start).is_none_or(|d| d >= start + len) {
            return Ok(self.zeros_crc(len));
        }
        self.buf.resize(len as usize, 0);
        f.read_exact_at(&mut self.buf[..len as usize], start)?;
        Ok(crc32c::crc32c(&self.buf[..len as usize]))
    }
}

/// The sums of one file.
pub fn of_file(path: &Path, rel: &str) -> io::Result<FileSums> {
    let f = File::open(path)?;
    let size = f.metadata()?.len();
    let chunk = chunk_size(size);
    let n = size.div_ceil(chunk);
    let mut r = Reader::default();
    let mut crcs = Vec::with_capacity(n as usize);
    for i in 0..n {
        crcs.push(r.chunk_crc(&f, size, chunk, i)?);
    }
    Ok(FileSums {
        rel: rel.to_string(),
        size,
        chunk,
        crcs,
    })
}

/// The sums of a unit: `files` are (relative path, path) pairs, in order.
pub fn compute(files: &[(String, std::path::PathBuf)]) -> io::Result<Sums> {
    let mut out = Sums::default();
    for (rel, p) in files {
        out.files.push(of_file(p, rel)?);
    }
    Ok(out)
}

/// Whether chunk `i` of `n` is compared on `day` (days since the epoch).
pub fn sampled(i: usize, n: usize, day: u64) -> bool {
    n <= SMALL_CHUNKS || i == 0 || i + 1 == n || i as u64 % STRIPES == day % STRIPES
}

/// Compares today's sample of chunks with `sums`; the first chunk that
/// differs, if any. `files` are the unit's files as [`compute`] takes them.
pub fn compare(
    files: &[(String, std::path::PathBuf)],
    sums: &Sums,
    day: u64,
) -> io::Result<Option<ChangedChunk>> {
    if files.len() != sums.files.len() {
        return Ok(Some(ChangedChunk {
            rel: String::new(),
            offset: 0,
        }));
    }
    let mut r = Reader::default();
    for ((rel, p), s) in files.iter().zip(&sums.files) {
        let f = File::open(p)?;
        let size = f.metadata()?.len();
        if *rel != s.rel || size != s.size || s.chunk != chunk_size(size) {
            return Ok(Some(ChangedChunk {
                rel: rel.clone(),
                offset: 0,
            }));
        }
        let n = s.crcs.len();
        for (i, want) in s.crcs.iter().enumerate() {
            if sampled(i, n, day) && r.chunk_crc(&f, size, s.chunk, i as u64)? != *want {
                return Ok(Some(ChangedChunk {
                    rel: rel.clone(),
                    offset: i as u64 * s.chunk,
                }));
            }
        }
    }
    Ok(None)
}

/// A digest of the sums: a content fingerprint that needs no second hash
/// of the data.
pub fn digest(sums: &Sums) -> String {
    let mut b = Vec::new();
    for f in &sums.files {
        b.extend_from_slice(f.rel.as_bytes());
        b.push(0);
        b.extend_from_slice(&f.size.to_le_bytes());
        for c in &f.crcs {
            b.extend_from_slice(&c.to_le_bytes());
        }
    }
    crate::mvcc::trailer::hex(&crate::mvcc::trailer::sha256(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_in_place_is_found_in_a_small_file_and_in_its_stripe() {
        let dir = std::env::temp_dir().join(format!("etcd-rescue-sums-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("f");
        let data: Vec<u8> = (0..(MIN_CHUNK * 200)).map(|i| (i % 251) as u8).collect();
        std::fs::write(&p, &data).unwrap();
        let files = vec![(String::new(), p.clone())];
        let s = compute(&files).unwrap();
        assert_eq!(s.files[0].crcs.len(), 200);
        assert_eq!(compare(&files, &s, 3).unwrap(), None);
        // Chunk 11 changes: found on the day its stripe is compared.
        let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
        f.write_all_at(b"X", 11 * MIN_CHUNK + 5).unwrap();
        assert_eq!(
            compare(&files, &s, 3).unwrap(),
            Some(ChangedChunk {
                rel: String::new(),
                offset: 11 * MIN_CHUNK
            })
        );
        assert_eq!(compare(&files, &s, 4).unwrap(), None);
        // A sparse file is summed without reading its holes.
        let h = dir.join("h");
        let f = File::create(&h).unwrap();
        f.set_len(1 << 30).unwrap();
        let s = of_file(&h, "").unwrap();
        assert_eq!(s.crcs.len() as u64, (1u64 << 30) / s.chunk);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
