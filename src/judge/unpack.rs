//! Compressed files and archives, read as they are stored: unpacked into a
//! private scratch directory (never next to the input), so that what is
//! inside is judged exactly as the same files on disk would be: a
//! snapshot in a `.gz` gets the findings of the plain snapshot, a member
//! dir in a `.tar.gz` the verdict of the member dir.
//!
//! Formats: gzip (every member), zstd (every frame; skippable frames
//! skipped), xz (dictionary at most 256 MiB), bzip2, zip, and tar with GNU
//! sparse members, PAX sparse members (0.0, 0.1, 1.0), long names and hard
//! links. Everything is streamed to disk; nothing is held in memory whole.
//!
//! Runs of zero bytes are written as holes, so a member dir's preallocated
//! WAL segments (64 MB of zeros each) take almost no disk. What one
//! container may unpack to is capped (`Limits::max_bytes`, by default
//! [`default_cap`]); past the cap the container is unreadable, never a
//! partial judgment.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Component, Path, PathBuf};

use super::kind::Container;
use crate::atomic::Scratch;

/// How much a container may unpack to.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Bytes in all, over every member.
    pub max_bytes: u64,
}

/// The largest unpacked size by default: 16 GiB.
pub const MAX_CAP: u64 = 16 << 30;

/// What one container may unpack to when the user does not say: 16 GiB, or
/// less when `workers` containers unpacking at once would not fit in the
/// free space of the scratch filesystem or in half the address-space limit
/// (an unpacked file is mapped to be judged). Never below 64 MiB.
pub fn default_cap(workers: usize) -> u64 {
    let w = workers.max(1) as u64;
    let mut cap = MAX_CAP;
    if let Some(free) = crate::source::free_space(&std::env::temp_dir()) {
        cap = cap.min(free / w);
    }
    if let Some(limit) = crate::source::address_space_limit() {
        cap = cap.min(limit / 2 / w);
    }
    cap.max(64 << 20)
}

/// A size in words: MiB below a GiB, else GiB.
fn size_words(n: u64) -> String {
    if n >= 1 << 30 {
        format!("{:.1} GiB", n as f64 / f64::from(1u32 << 30))
    } else {
        format!("{:.1} MiB", n as f64 / f64::from(1u32 << 20))
    }
}

/// A file being written from streams: runs of zeros become holes, and no
/// more than a budget of bytes (its logical size) is accepted.
struct SparseWriter<'a> {
    f: File,
    to: &'a Path,
    what: &'a str,
    /// Bytes the file may still grow by.
    budget: u64,
    /// Where the next write goes.
    pos: u64,
    buf: Vec<u8>,
    /// The budget ran out.
    over_cap: bool,
}

impl<'a> SparseWriter<'a> {
    fn create(to: &'a Path, budget: u64, what: &'a str) -> Result<SparseWriter<'a>, String> {
        if let Some(dir) = to.parent() {
            fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        // Unlinked first, as tar does: a name met twice, or a hard link's
        // other name, must not be written through.
        let _ = fs::remove_file(to);
        let f = File::create(to).map_err(|e| format!("{}: {e}", to.display()))?;
        Ok(SparseWriter {
            f,
            to,
            what,
            budget,
            pos: 0,
            buf: vec![0u8; 1 << 16],
            over_cap: false,
        })
    }

    fn too_big(&mut self) -> String {
        self.over_cap = true;
        format!(
            "{}: unpacks to more than {} (the cap on what one container may unpack to; raise --max-decompressed if this is real)",
            self.what,
            size_words(self.budget_total())
        )
    }

    fn budget_total(&self) -> u64 {
        self.budget + self.pos
    }

    /// Moves to `pos` (forward only), leaving a hole.
    fn seek_to(&mut self, pos: u64) -> Result<(), String> {
        if pos < self.pos {
            return Err(format!("{}: sparse map goes backwards", self.what));
        }
        let grow = pos - self.pos;
        if grow > self.budget {
            return Err(self.too_big());
        }
        self.budget -= grow;
        self.pos = pos;
        Ok(())
    }

    /// Copies `r` to the end (or `limit` bytes of it); the bytes copied.
    fn copy(&mut self, mut r: impl Read, limit: Option<u64>) -> Result<u64, String> {
        let mut total = 0u64;
        loop {
            let want =
                limit.map_or(self.buf.len() as u64, |l| (l - total).min(self.buf.len() as u64)) as usize;
            if want == 0 {
                break;
            }
            let n = match r.read(&mut self.buf[..want]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("{}: {e}", self.what)),
            };
            if n as u64 > self.budget {
                return Err(self.too_big());
            }
            self.budget -= n as u64;
            total += n as u64;
            if self.buf[..n].iter().any(|&b| b != 0) {
                self.f
                    .seek(SeekFrom::Start(self.pos))
                    .and_then(|_| self.f.write_all(&self.buf[..n]))
                    .map_err(|e| format!("{}: {e}", self.to.display()))?;
            }
            self.pos += n as u64;
        }
        if limit.is_some_and(|l| total < l) {
            return Err(format!("{}: ends early", self.what));
        }
        Ok(total)
    }

    /// Sets the final size (a trailing hole included).
    fn finish(mut self, size: u64) -> Result<u64, String> {
        self.seek_to(size)?;
        self.f
            .set_len(size)
            .map_err(|e| format!("{}: {e}", self.to.display()))?;
        Ok(size)
    }
}

/// Copies `r` into a new file at `to`, writing runs of zeros as holes and
/// refusing more than `budget` bytes. Returns the bytes written; an error
/// says whether it was the cap (`true`: the whole container is refused).
fn copy_capped(r: impl Read, to: &Path, budget: u64, what: &str) -> Result<u64, (String, bool)> {
    let mut w = SparseWriter::create(to, budget, what).map_err(|e| (e, false))?;
    let copied = w.copy(r, None);
    let over_cap = w.over_cap;
    copied.map_err(|e| (e, over_cap))?;
    let end = w.pos;
    w.finish(end).map_err(|e| (e, false))
}

/// [`copy_capped`], for callers to whom any error ends the container.
fn copy_sparse(r: impl Read, to: &Path, budget: u64, what: &str) -> Result<u64, String> {
    copy_capped(r, to, budget, what).map_err(|(e, _)| e)
}

/// Decodes every zstd frame of `data` (skippable frames skipped) into `to`.
fn unzstd(data: &[u8], to: &Path, budget: u64) -> Result<u64, String> {
    let mut w = SparseWriter::create(to, budget, "zstd")?;
    let mut cur = io::Cursor::new(data);
    while (cur.position() as usize) < data.len() {
        let at = cur.position() as usize;
        let magic = data
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")));
        if magic.is_some_and(|m| m & 0xffff_fff0 == 0x184d_2a50) {
            let len = data
                .get(at + 4..at + 8)
                .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
                .ok_or("zstd: a skippable frame cut short")?;
            cur.set_position((at + 8) as u64 + u64::from(len));
            continue;
        }
        let d = ruzstd::decoding::StreamingDecoder::new(&mut cur)
            .map_err(|e| format!("zstd: frame at byte {at}: {e}"))?;
        w.copy(d, None)?;
    }
    let end = w.pos;
    w.finish(end)
}

/// Largest dictionary an xz stream may ask for: 256 MiB (`xz -9` uses 64).
const XZ_MEM_LIMIT_KIB: u32 = 256 << 10;

/// A member name made safe to join under a directory: no absolute paths,
/// no `..`, no empty names.
fn safe_rel(name: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in Path::new(name).components() {
        match c {
            Component::Normal(s) => out.push(s),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// The name the single stream inside `outer` gets: its name without the
/// compression suffix.
fn inner_name(outer: &str) -> String {
    let base = outer.rsplit('/').next().unwrap_or(outer);
    for suf in [".gz", ".tgz", ".zst", ".zstd", ".xz", ".bz2", ".gzip", ".zlib"] {
        if let Some(s) = base.strip_suffix(suf)
            && !s.is_empty()
        {
            return if suf == ".tgz" {
                format!("{s}.tar")
            } else {
                s.to_string()
            };
        }
    }
    "unpacked".to_string()
}

/// What an unpacked container gives: its files under the scratch dir.
#[derive(Debug)]
pub struct Unpacked {
    /// Where the files are.
    pub scratch: Scratch,
    /// For a compressed stream, the one file (relative to the scratch dir).
    pub single: Option<PathBuf>,
    /// Members that could not be read: (name, why).
    pub unreadable: Vec<(String, String)>,
}

/// Unpacks the container `kind` whose bytes are `data` (named `name` in
/// messages).
pub fn unpack(kind: Container, data: &[u8], name: &str, limits: Limits) -> Result<Unpacked, String> {
    let scratch = Scratch::new().map_err(|e| format!("cannot create a scratch directory: {e}"))?;
    let open = || -> Result<io::Cursor<&[u8]>, String> { Ok(io::Cursor::new(data)) };
    match kind {
        Container::Gzip | Container::Zstd | Container::Xz | Container::Bzip2 | Container::Zlib => {
            let rel = PathBuf::from(inner_name(name));
            let to = scratch.path().join(&rel);
            let what = kind.word();
            match kind {
                Container::Gzip => {
                    copy_sparse(
                        flate2::read::MultiGzDecoder::new(open()?),
                        &to,
                        limits.max_bytes,
                        what,
                    )?;
                }
                Container::Zstd => {
                    unzstd(data, &to, limits.max_bytes)?;
                }
                Container::Zlib => {
                    copy_sparse(
                        flate2::read::ZlibDecoder::new(open()?),
                        &to,
                        limits.max_bytes,
                        what,
                    )?;
                }
                Container::Xz => {
                    let r = lzma_rust2::XzReader::new_mem_limit(open()?, true, XZ_MEM_LIMIT_KIB);
                    copy_sparse(r, &to, limits.max_bytes, what)?;
                }
                _ => {
                    copy_sparse(
                        bzip2::read::MultiBzDecoder::new(open()?),
                        &to,
                        limits.max_bytes,
                        what,
                    )?;
                }
            }
            Ok(Unpacked {
                scratch,
                single: Some(rel),
                unreadable: Vec::new(),
            })
        }
        Container::Tar => {
            let unreadable = untar(open()?, scratch.path(), limits.max_bytes)?;
            Ok(Unpacked {
                scratch,
                single: None,
                unreadable,
            })
        }
        Container::Zip => {
            let mut unreadable = Vec::new();
            let mut budget = limits.max_bytes;
            let mut z = zip::ZipArchive::new(open()?).map_err(|e| format!("zip: {e}"))?;
            for i in 0..z.len() {
                let mut f = match z.by_index(i) {
                    Ok(f) => f,
                    Err(e) => {
                        unreadable.push((format!("#{i}"), format!("zip entry {i}: {e}")));
                        continue;
                    }
                };
                if !f.is_file() {
                    continue;
                }
                let member = f.name().to_string();
                let Some(rel) = safe_rel(&member) else {
                    unreadable.push((member, "an unsafe member name (absolute or with ..)".into()));
                    continue;
                };
                let to = scratch.path().join(rel);
                match copy_capped(&mut f, &to, budget, &format!("zip entry {member}")) {
                    Ok(n) => budget -= n,
                    // Past the cap the whole archive is unreadable.
                    Err((e, true)) => return Err(e),
                    Err((e, false)) => {
                        let _ = fs::remove_file(&to);
                        unreadable.push((member, e));
                    }
                }
            }
            Ok(Unpacked {
                scratch,
                single: None,
                unreadable,
            })
        }
    }
}

/// Unpacks a tar stream under `root`: plain files, GNU sparse files, PAX
/// sparse files (formats 0.0, 0.1 and 1.0, as `tar --sparse
/// --format=posix` writes them), long names, and hard links (linked again
/// inside `root`). Symlinks and devices are not made. Returns the members
/// that could not be unpacked.
fn untar(r: impl Read, root: &Path, max_bytes: u64) -> Result<Vec<(String, String)>, String> {
    let mut unreadable = Vec::new();
    let mut budget = max_bytes;
    let mut t = tar::Archive::new(r);
    for e in t.entries().map_err(|e| format!("tar: {e}"))? {
        let mut e = e.map_err(|e| format!("tar: {e}"))?;
        let ty = e.header().entry_type();
        if !(ty.is_file() || ty.is_gnu_sparse() || ty.is_hard_link()) {
            continue;
        }
        let sparse = pax_sparse(&mut e).map_err(|e| format!("tar: {e}"))?;
        let member = match &sparse {
            Some(s) if !s.name.is_empty() => s.name.clone(),
            _ => e
                .path()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "?".into()),
        };
        let Some(rel) = safe_rel(&member) else {
            unreadable.push((member, "an unsafe member name (absolute or with ..)".into()));
            continue;
        };
        let to = root.join(&rel);
        let what = format!("tar member {member}");
        if ty.is_hard_link() {
            let target = e.link_name().ok().flatten().map(|p| p.display().to_string());
            match target.as_deref().and_then(safe_rel).map(|t| root.join(t)) {
                Some(t) if t.is_file() => {
                    if let Some(d) = to.parent() {
                        fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
                    }
                    // A later member of the same name replaces the earlier.
                    let _ = fs::remove_file(&to);
                    fs::hard_link(&t, &to).map_err(|e| format!("{what}: {e}"))?;
                }
                _ => unreadable.push((
                    member,
                    format!(
                        "a hard link to {}, which is not in the archive before it",
                        target.as_deref().unwrap_or("nothing")
                    ),
                )),
            }
            continue;
        }
        let data_size = e.header().entry_size().unwrap_or(0);
        let n = match sparse {
            Some(s) => write_pax_sparse(&mut e, s, data_size, &to, budget, &what)?,
            None => copy_sparse(&mut e, &to, budget, &what)?,
        };
        budget -= n.min(budget);
    }
    Ok(unreadable)
}

/// A PAX sparse member: its real name and size, and its map (for format
/// 1.0 the map is at the start of the data and read later).
#[derive(Debug, Default)]
struct PaxSparse {
    name: String,
    size: u64,
    map: Option<Vec<(u64, u64)>>,
}

/// The PAX sparse keys of an entry, if it has them.
fn pax_sparse<R: Read>(e: &mut tar::Entry<R>) -> io::Result<Option<PaxSparse>> {
    let Some(exts) = e.pax_extensions()? else {
        return Ok(None);
    };
    let mut s = PaxSparse::default();
    let (mut any, mut major, mut offsets, mut sizes) = (false, None, Vec::new(), Vec::new());
    let num = |v: &str| {
        v.trim()
            .parse::<u64>()
            .map_err(|_| io::Error::other(format!("bad number {v:?} in a PAX sparse header")))
    };
    for x in exts {
        let x = x?;
        let (Ok(k), Ok(v)) = (x.key(), x.value()) else {
            continue;
        };
        match k {
            "GNU.sparse.name" => s.name = v.to_string(),
            "GNU.sparse.size" | "GNU.sparse.realsize" => s.size = num(v)?,
            "GNU.sparse.major" => major = Some(num(v)?),
            "GNU.sparse.offset" => offsets.push(num(v)?),
            "GNU.sparse.numbytes" => sizes.push(num(v)?),
            "GNU.sparse.map" => {
                let n: Vec<u64> = v
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(num)
                    .collect::<io::Result<_>>()?;
                if n.len() % 2 != 0 {
                    return Err(io::Error::other("a PAX sparse map with an odd count"));
                }
                s.map = Some(n.chunks(2).map(|c| (c[0], c[1])).collect());
            }
            _ => continue,
        }
        any = true;
    }
    if !any {
        return Ok(None);
    }
    if major == Some(1) {
        s.map = None;
    } else if s.map.is_none() {
        if offsets.len() != sizes.len() {
            return Err(io::Error::other("a PAX sparse map (0.0) with unpaired offsets"));
        }
        s.map = Some(offsets.into_iter().zip(sizes).collect());
    }
    Ok(Some(s))
}

/// Reads the decimal map at the start of a PAX 1.0 sparse member's data
/// (a count, then offset and size pairs, one number per line, padded to
/// 512 bytes).
fn read_sparse_map(r: &mut impl Read, data_size: u64) -> Result<Vec<(u64, u64)>, String> {
    let mut consumed = 0u64;
    let mut number = || -> Result<u64, String> {
        let mut v: u64 = 0;
        let mut digits = 0;
        loop {
            let mut b = [0u8; 1];
            r.read_exact(&mut b).map_err(|e| format!("sparse map: {e}"))?;
            consumed += 1;
            match b[0] {
                b'\n' if digits > 0 => return Ok(v),
                c @ b'0'..=b'9' if digits < 20 => {
                    v = v
                        .checked_mul(10)
                        .and_then(|v| v.checked_add(u64::from(c - b'0')))
                        .ok_or("sparse map: a number too large")?;
                    digits += 1;
                }
                _ => return Err("sparse map: not a decimal number".into()),
            }
        }
    };
    let count = number()?;
    if count > data_size / 4 {
        return Err(format!(
            "sparse map: {count} entries cannot fit in {data_size} bytes"
        ));
    }
    let mut map = Vec::new();
    for _ in 0..count {
        let off = number()?;
        let len = number()?;
        map.push((off, len));
    }
    let pad = (512 - consumed % 512) % 512;
    io::copy(&mut r.take(pad), &mut io::sink()).map_err(|e| format!("sparse map: {e}"))?;
    Ok(map)
}

/// Writes a PAX sparse member: each chunk of its data at its offset, holes
/// between, the real size at the end.
fn write_pax_sparse(
    r: &mut impl Read,
    s: PaxSparse,
    data_size: u64,
    to: &Path,
    budget: u64,
    what: &str,
) -> Result<u64, String> {
    let map = match s.map {
        Some(m) => m,
        None => read_sparse_map(r, data_size).map_err(|e| format!("{what}: {e}"))?,
    };
    let mut w = SparseWriter::create(to, budget, what)?;
    for (off, len) in map {
        if off.checked_add(len).is_none_or(|end| end > s.size) {
            return Err(format!(
                "{what}: a sparse chunk at {off}+{len} lies past the file's size {}",
                s.size
            ));
        }
        w.seek_to(off)?;
        w.copy(&mut *r, Some(len))?;
    }
    w.finish(s.size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths() {
        assert_eq!(inner_name("a/b/snap.db.gz"), "snap.db");
        assert_eq!(inner_name("x.tgz"), "x.tar");
        assert_eq!(inner_name(".gz"), "unpacked");
        assert_eq!(safe_rel("./a/b"), Some(PathBuf::from("a/b")));
        assert_eq!(safe_rel("../x"), None);
        assert_eq!(safe_rel("/etc/passwd"), None);
    }

    #[test]
    fn damaged_pax_sparse_maps_are_refused_with_a_reason() {
        let map = |b: &[u8], size: u64| read_sparse_map(&mut &b[..], size);
        let mut good = b"2\n0\n4\n8192\n4\n".to_vec();
        good.resize(512, 0);
        assert_eq!(map(&good, 1024).unwrap(), vec![(0, 4), (8192, 4)]);
        assert!(map(b"2\nx\n", 1024).unwrap_err().contains("not a decimal"));
        assert!(map(b"99999999\n", 1024).unwrap_err().contains("cannot fit"));
        assert!(map(b"99999999999999999999999\n", u64::MAX).is_err());
        assert!(map(b"1\n0", 1024).is_err(), "cut short");
        // A chunk past the real size, and chunks going backwards.
        let s = Scratch::new().unwrap();
        let to = s.path().join("f");
        let past = PaxSparse {
            name: "f".into(),
            size: 10,
            map: Some(vec![(8, 4)]),
        };
        let e = write_pax_sparse(&mut &[1u8; 4][..], past, 4, &to, 1 << 20, "t").unwrap_err();
        assert!(e.contains("past the file's size"), "{e}");
        let back = PaxSparse {
            name: "f".into(),
            size: 100,
            map: Some(vec![(50, 2), (10, 2)]),
        };
        let e = write_pax_sparse(&mut &[1u8; 4][..], back, 4, &to, 1 << 20, "t").unwrap_err();
        assert!(e.contains("backwards"), "{e}");
        // A real size over the cap.
        let huge = PaxSparse {
            name: "f".into(),
            size: 1 << 40,
            map: Some(vec![]),
        };
        let e = write_pax_sparse(&mut &[][..], huge, 0, &to, 1 << 20, "t").unwrap_err();
        assert!(e.contains("unpacks to more than"), "{e}");
    }

    #[test]
    fn zeros_become_holes_and_the_cap_holds() {
        let s = Scratch::new().unwrap();
        let data = vec![0u8; 1 << 20];
        let to = s.path().join("z");
        assert_eq!(copy_sparse(&data[..], &to, 1 << 21, "t").unwrap(), 1 << 20);
        assert_eq!(fs::metadata(&to).unwrap().len(), 1 << 20);
        assert!(copy_sparse(&data[..], &s.path().join("y"), 1000, "t").is_err());
    }
}
