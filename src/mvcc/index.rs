//! A key-to-revisions index of the `key` bucket, like etcd's in-memory tree
//! index: for each user key, every stored revision in order, each pointing at
//! its stored `KeyValue` bytes in the mapped file.
//!
//! Building it reads each revision's key and only the key field of its value
//! (no value is copied or fully decoded); queries decode just the values they
//! return. An index can be limited to a key range, so a single-key lookup
//! keeps only that key's revisions.
//!
//! Semantics follow etcd's `keyIndex`: a key's revisions form generations,
//! each ended by a tombstone; reading at revision R finds the newest revision
//! at or below R, and a tombstone there means the key does not exist at R.

use std::collections::HashSet;
use std::ops::Range;

use crate::bolt::Db;
use crate::keyhash::KeyMap;
use crate::pb::mvccpb::KeyValue;

use super::keyspace::Keyspace;
use super::kv::{KeyValueRef, KvError};
use super::revision::Revision;

/// Which user keys a query covers, as etcdctl's key, `--prefix`, `--from-key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyRange {
    /// Every key.
    All,
    /// One key.
    Exact(Vec<u8>),
    /// Keys starting with the bytes.
    Prefix(Vec<u8>),
    /// Keys greater than or equal to the bytes.
    FromKey(Vec<u8>),
}

impl KeyRange {
    /// Whether `k` is in the range.
    pub fn contains(&self, k: &[u8]) -> bool {
        match self {
            KeyRange::All => true,
            KeyRange::Exact(x) => k == x.as_slice(),
            KeyRange::Prefix(p) => k.starts_with(p),
            KeyRange::FromKey(f) => k >= f.as_slice(),
        }
    }
}

/// One stored revision of a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RevEntry<'a> {
    /// Its revision.
    pub rev: Revision,
    /// Whether it is a delete.
    pub tombstone: bool,
    /// The stored `mvccpb.KeyValue` bytes.
    pub raw: &'a [u8],
}

impl<'a> RevEntry<'a> {
    /// Decodes the stored KeyValue (zero-copy).
    pub fn kv(&self) -> Result<KeyValueRef<'a>, KvError> {
        KeyValueRef::decode(self.raw).map_err(|source| KvError::Decode {
            page: None,
            rev: self.rev,
            source,
        })
    }
}

/// A user key (in the index's key arena) and its revisions.
#[derive(Clone, Copy, Debug)]
struct KeyEntry {
    /// Start and length in the arena: the start is a `usize`, since the
    /// distinct keys of a large db may pass 4 GiB.
    key: (usize, u32),
    /// The key's revisions in `revs` (counts of entries, each many bytes
    /// of the file: [`entry_count`] refuses a count past `u32`).
    revs: (u32, u32),
}

/// Pass 1 of the build: the distinct keys in `range`, numbered in
/// first-seen order and copied to an arena, and each revision with its
/// key's number.
struct KeysRead<'a> {
    arena: Vec<u8>,
    spans: Vec<(usize, u32)>,
    flat: Vec<(u32, RevEntry<'a>)>,
    last_main: i64,
    scanned: u64,
}

fn read_keys<'a>(ks: &Keyspace<'a>, range: &KeyRange) -> Result<KeysRead<'a>, KvError> {
    let db = &ks.db;
    let mut ids: KeyMap<&'a [u8], u32> = KeyMap::default();
    if !matches!(range, KeyRange::Exact(_)) {
        // Size the map for a typical few revisions per leaf page, so it
        // does not rehash a million keys on the way (bounded by the file).
        ids.reserve(
            (db.file_pages().min(db.high_water()) as usize)
                .saturating_mul(4)
                .min(1 << 24),
        );
    }
    let mut out = KeysRead {
        arena: Vec::new(),
        spans: Vec::new(),
        flat: Vec::new(),
        last_main: 0,
        scanned: 0,
    };
    for e in ks.revisions()? {
        let e = e?;
        let rk = e.rev;
        // Only the key field is read; values are decoded when a query needs them.
        let key = KeyValueRef::key_of(e.value).map_err(|source| KvError::Decode {
            page: e.page,
            rev: rk.rev,
            source,
        })?;
        out.scanned += 1;
        out.last_main = rk.rev.main;
        if !range.contains(key) {
            continue;
        }
        let id = match ids.entry(key) {
            std::collections::hash_map::Entry::Occupied(o) => *o.get(),
            std::collections::hash_map::Entry::Vacant(v) => {
                let id = entry_count(out.spans.len())?;
                out.spans.push((out.arena.len(), entry_count(key.len())?));
                out.arena.extend_from_slice(key);
                *v.insert(id)
            }
        };
        let entry = RevEntry {
            rev: rk.rev,
            tombstone: rk.tombstone,
            raw: e.value,
        };
        out.flat.push((id, entry));
    }
    Ok(out)
}

/// Pass 2: the revisions grouped by key (a counting sort keeps each key's
/// revisions in bucket order, which is revision order), and where each
/// key's group starts.
fn group_by_key(
    flat: Vec<(u32, RevEntry<'_>)>,
    keys: usize,
) -> Result<(Vec<u32>, Vec<RevEntry<'_>>), KvError> {
    // Every position below fits a u32 when the total does.
    entry_count(flat.len())?;
    let mut start = vec![0u32; keys + 1];
    for (id, _) in &flat {
        start[*id as usize + 1] += 1;
    }
    for i in 1..start.len() {
        start[i] += start[i - 1];
    }
    let mut fill = start.clone();
    let mut slots: Vec<Option<RevEntry<'_>>> = vec![None; flat.len()];
    for (id, r) in flat {
        let at = &mut fill[id as usize];
        slots[*at as usize] = Some(r);
        *at += 1;
    }
    let revs = slots.into_iter().map(|r| r.expect("every slot filled")).collect();
    Ok((start, revs))
}

/// Pass 3: the key numbers in key order. Keys share long prefixes
/// (`/registry/...`); compare first the 16 bytes after the prefix common
/// to all keys, as one integer, and only ties byte by byte.
fn order_keys(arena: &[u8], spans: &[(usize, u32)]) -> Vec<u32> {
    let key_of = |span: (usize, u32)| &arena[span.0..span.0 + span.1 as usize];
    let common = spans.first().map_or(0, |&f| {
        let first = key_of(f);
        spans.iter().fold(first.len(), |n, &sp| {
            let k = key_of(sp);
            n.min(first.iter().zip(k).take_while(|(a, b)| a == b).count())
        })
    });
    let word = |span: (usize, u32)| {
        let k = key_of(span);
        let mut w = [0u8; 16];
        let tail = &k[common.min(k.len())..];
        let n = tail.len().min(16);
        w[..n].copy_from_slice(&tail[..n]);
        u128::from_be_bytes(w)
    };
    let mut order: Vec<(u128, u32)> = (0..spans.len() as u32)
        .map(|i| (word(spans[i as usize]), i))
        .collect();
    order.sort_unstable_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| key_of(spans[a.1 as usize]).cmp(key_of(spans[b.1 as usize])))
    });
    order.into_iter().map(|(_, id)| id).collect()
}

/// A count of index entries as stored: an error, not a wrap, past `u32`.
fn entry_count(n: usize) -> Result<u32, KvError> {
    u32::try_from(n).map_err(|_| KvError::IndexTooLarge { entries: n as u64 })
}

/// The index.
#[derive(Clone, Debug)]
pub struct KeyIndex<'a> {
    /// Every distinct user key, back to back. Keys are copied here (a few
    /// percent of the file) so that sorting them touches one compact buffer
    /// instead of pages all over the mapped file.
    arena: Vec<u8>,
    keys: Vec<KeyEntry>,
    revs: Vec<RevEntry<'a>>,
    /// etcd's compactMainRev: the last finished compaction, raised to a
    /// scheduled one (which etcd resumes at start); -1 when none.
    pub compact: i64,
    /// etcd's currentRev: the newest main revision (at least the compact revision, at least 1).
    pub head: i64,
    /// Raft term from the meta bucket (3.5+), for response headers.
    pub term: Option<u64>,
    /// Revisions read from the `key` bucket (all keys, not only the range).
    pub scanned: u64,
}

impl<'a> KeyIndex<'a> {
    /// Builds the index of the keys in `range` from the keyspace `ks` (a
    /// db's `key` bucket, and what the WAL adds on top).
    pub fn build(ks: &Keyspace<'a>, range: &KeyRange) -> Result<KeyIndex<'a>, KvError> {
        let meta = ks.meta()?;
        let compact = meta
            .finished_compact_rev
            .max(meta.scheduled_compact_rev)
            .unwrap_or(-1);
        let read = read_keys(ks, range)?;
        let (start, revs) = group_by_key(read.flat, read.spans.len())?;
        let keys = order_keys(&read.arena, &read.spans)
            .into_iter()
            .map(|id| KeyEntry {
                key: read.spans[id as usize],
                revs: (start[id as usize], start[id as usize + 1]),
            })
            .collect();
        Ok(KeyIndex {
            arena: read.arena,
            keys,
            revs,
            compact,
            head: read.last_main.max(compact).max(1),
            term: meta.term,
            scanned: read.scanned,
        })
    }

    /// Number of distinct user keys in the index (live or not).
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// Number of stored revisions in the index.
    pub fn revision_count(&self) -> usize {
        self.revs.len()
    }

    fn slice(&self, e: &KeyEntry) -> &[RevEntry<'a>] {
        &self.revs[e.revs.0 as usize..e.revs.1 as usize]
    }

    fn key(&self, e: &KeyEntry) -> &[u8] {
        &self.arena[e.key.0..e.key.0 + e.key.1 as usize]
    }

    /// Every key with its stored revisions, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[RevEntry<'a>])> + '_ {
        self.keys.iter().map(|e| (self.key(e), self.slice(e)))
    }

    /// Every key from `start` on (inclusive), in key order.
    pub fn iter_from<'s>(
        &'s self,
        start: &[u8],
    ) -> impl Iterator<Item = (&'s [u8], &'s [RevEntry<'a>])> + 's {
        let at = self.keys.partition_point(|e| self.key(e) < start);
        self.keys[at..].iter().map(|e| (self.key(e), self.slice(e)))
    }

    /// The stored revisions of one key, oldest first (empty if unknown).
    pub fn history(&self, key: &[u8]) -> &[RevEntry<'a>] {
        match self.keys.binary_search_by(|e| self.key(e).cmp(key)) {
            Ok(i) => self.slice(&self.keys[i]),
            Err(_) => &[],
        }
    }

    /// Checks that `rev` (0 = head) can be read: not compacted, not in the future.
    pub fn check_rev(&self, rev: i64) -> Result<i64, KvError> {
        let at = if rev <= 0 { self.head } else { rev };
        if at > self.head {
            return Err(KvError::Future {
                rev: at,
                head: self.head,
            });
        }
        if at < self.compact {
            return Err(KvError::Compacted {
                rev: at,
                compact: self.compact,
            });
        }
        Ok(at)
    }

    /// The keys alive at revision `at` with the revision that holds their
    /// value, in key order. `at` must have passed [`KeyIndex::check_rev`].
    /// The empty key (the marker a restore with `--bump-revision` leaves)
    /// is never served: no request can name it.
    pub fn live_at(&self, at: i64) -> impl Iterator<Item = (&[u8], RevEntry<'a>)> + '_ {
        self.iter()
            .filter(|(k, _)| !k.is_empty())
            .filter_map(move |(k, revs)| live(revs, at).map(|r| (k, r)))
    }

    /// The revisions etcd keeps if the store were compacted at `at`
    /// (`treeIndex.Keep`): per key, the newest revision at or below `at` in
    /// the first generation that reaches `at` (or the last generation),
    /// except a tombstone that closes its generation.
    pub fn keep(&self, at: i64) -> HashSet<Revision> {
        self.iter().filter_map(|(_, revs)| kept(revs, at)).collect()
    }

    /// The stored revisions of `key` that etcd still has, oldest first:
    /// every revision above the compact revision, and at or below it only
    /// the one its compaction keeps. (A compaction etcd has not finished
    /// leaves the others in the file until it finishes it at start.)
    pub fn served_history(&self, key: &[u8]) -> Vec<RevEntry<'a>> {
        let revs = self.history(key);
        let keep = kept(revs, self.compact);
        revs.iter()
            .filter(|r| r.rev.main > self.compact || Some(r.rev) == keep)
            .copied()
            .collect()
    }
}

/// The revision of one key etcd keeps when compacting at `at`
/// (`keyIndex.keep`): the newest revision at or below `at` in the first
/// generation that reaches `at` (or the last generation), unless it is a
/// tombstone that closes its generation.
fn kept(revs: &[RevEntry<'_>], at: i64) -> Option<Revision> {
    let gens = generations(revs);
    let last_gen = gens.len().checked_sub(1)?;
    // The first generation whose last revision is >= at, else the last.
    let mut gi = 0;
    while gi < last_gen {
        let g = &revs[gens[gi].clone()];
        if g.last().is_some_and(|r| r.rev.main >= at) {
            break;
        }
        gi += 1;
    }
    let g = &revs[gens[gi].clone()];
    let n = g.partition_point(|r| r.rev.main <= at);
    if n == 0 {
        return None;
    }
    let r = &g[n - 1];
    let closes_generation = n == g.len() && r.tombstone && gi != last_gen;
    (!closes_generation).then_some(r.rev)
}

/// What a compaction at `at` keeps at or below `at`, ascending: the same
/// set as [`KeyIndex::keep`] (per key, the newest revision at or below `at`
/// unless it is a tombstone: a tombstone always closes its generation, and
/// an earlier generation always ends before a later one starts), found in
/// one pass over the revisions up to `at` without building an index.
pub fn compaction_keep(ks: &Keyspace<'_>, at: i64) -> Result<Vec<Revision>, KvError> {
    let mut newest: KeyMap<&[u8], (Revision, bool)> = KeyMap::default();
    newest.reserve(super::scan::key_capacity(ks.db.data().len()));
    for e in ks.revisions()? {
        let e = e?;
        if e.rev.rev.main > at {
            break;
        }
        let key = KeyValueRef::key_of(e.value).map_err(|source| KvError::Decode {
            page: e.page,
            rev: e.rev.rev,
            source,
        })?;
        newest.insert(key, (e.rev.rev, e.rev.tombstone));
    }
    let mut keep: Vec<Revision> = newest.into_values().filter(|(_, t)| !t).map(|(r, _)| r).collect();
    keep.sort_unstable();
    Ok(keep)
}

/// The newest revision of `revs` at or below `at`, unless it is a delete.
pub fn live<'a>(revs: &[RevEntry<'a>], at: i64) -> Option<RevEntry<'a>> {
    let n = revs.partition_point(|r| r.rev.main <= at);
    let r = revs.get(n.checked_sub(1)?)?;
    (!r.tombstone).then_some(*r)
}

/// Splits a key's revisions into etcd's generations: each generation ends
/// with a tombstone, and a tombstone on an already-ended generation is ignored
/// (etcd's index refuses it). The last generation may be empty, which is
/// represented by its absence (a key whose last revision is a delete has as
/// many generations as tombstones; etcd's trailing empty generation is never
/// selected by `keep` because it has no revision at or below any `at`).
fn generations(revs: &[RevEntry<'_>]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, r) in revs.iter().enumerate() {
        if r.tombstone {
            if i > start || out.is_empty() {
                out.push(start..i + 1);
            }
            start = i + 1;
        }
    }
    if start < revs.len() {
        out.push(start..revs.len());
    } else {
        // etcd's trailing empty generation: it counts when choosing the
        // generation (a closed generation is then never the last one).
        out.push(revs.len()..revs.len());
    }
    out
}

/// How a key differs between two keyspaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyChange {
    /// Live in B only.
    Added,
    /// Live in A only.
    Removed,
    /// Live in both, with another value or lease (or, unless comparing
    /// values only, other revisions).
    Changed,
}

impl KeyChange {
    /// The word for it.
    pub fn word(self) -> &'static str {
        match self {
            KeyChange::Added => "added",
            KeyChange::Removed => "removed",
            KeyChange::Changed => "changed",
        }
    }
}

/// One differing key: how, the key, its revision in A and in B.
pub type Difference<'k, 'a> = (KeyChange, &'k [u8], Option<RevEntry<'a>>, Option<RevEntry<'a>>);

/// The keys live in `a` at its revision and in `b` at its revision,
/// merged in key order: the differences, and how many keys are the same.
/// With `values_only`, keys with the same value and lease are the same
/// whatever their revisions (sources from different clusters).
pub fn diff_live<'k, 'a>(
    (a, at_a): (&'k KeyIndex<'a>, i64),
    (b, at_b): (&'k KeyIndex<'a>, i64),
    values_only: bool,
) -> Result<(Vec<Difference<'k, 'a>>, u64), KvError> {
    use std::cmp::Ordering;
    let mut left = a.live_at(at_a).peekable();
    let mut right = b.live_at(at_b).peekable();
    let mut changes = Vec::new();
    let mut unchanged = 0u64;
    loop {
        let order = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(l), Some(r)) => l.0.cmp(r.0),
        };
        match order {
            Ordering::Less => {
                let (k, r) = left.next().expect("peeked");
                changes.push((KeyChange::Removed, k, Some(r), None));
            }
            Ordering::Greater => {
                let (k, r) = right.next().expect("peeked");
                changes.push((KeyChange::Added, k, None, Some(r)));
            }
            Ordering::Equal => {
                let (k, ra) = left.next().expect("peeked");
                let (_, rb) = right.next().expect("peeked");
                let (ka, kb) = (ra.kv()?, rb.kv()?);
                let same = ka.value == kb.value
                    && ka.lease == kb.lease
                    && (values_only
                        || (ka.mod_revision == kb.mod_revision && ka.create_revision == kb.create_revision));
                if same {
                    unchanged += 1;
                } else {
                    changes.push((KeyChange::Changed, k, Some(ra), Some(rb)));
                }
            }
        }
    }
    Ok((changes, unchanged))
}

/// The keyspace at one revision.
#[derive(Clone, Debug, Default)]
pub struct LiveKeys {
    /// The revision the keyspace is read at (the head when none was asked).
    pub revision: i64,
    /// The compact revision.
    pub compact_revision: i64,
    /// Live keys in key order.
    pub kvs: Vec<KeyValue>,
}

/// The live key-values at `rev` (the head when `None`), like
/// `etcdctl get "" --prefix --rev N`, copied out of the file. For large
/// keyspaces prefer [`KeyIndex`], which copies nothing.
pub fn read_at(db: &Db<'_>, rev: Option<i64>) -> Result<LiveKeys, KvError> {
    let index = KeyIndex::build(&Keyspace::db(*db), &KeyRange::All)?;
    let at = index.check_rev(rev.unwrap_or(0))?;
    let kvs = index
        .live_at(at)
        .map(|(_, r)| r.kv().map(|kv| kv.to_owned()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(LiveKeys {
        revision: at,
        compact_revision: index.compact,
        kvs,
    })
}
#[cfg(test)]
mod tests {
    use super::*;

    fn rev(main: i64, tomb: bool) -> RevEntry<'static> {
        RevEntry {
            rev: Revision { main, sub: 0 },
            tombstone: tomb,
            raw: &[],
        }
    }

    /// Keys past 4 GiB of distinct key bytes are found where they are: the
    /// arena offset is a `usize` (a `u32` wrapped to the start). The arena
    /// is allocated zeroed, so only the pages written here are touched.
    #[test]
    fn key_offsets_past_4_gib_do_not_wrap() {
        let base = (4usize << 30) + 5;
        let mut arena = vec![0u8; base + 8];
        arena[base..base + 3].copy_from_slice(b"abc");
        arena[5..8].copy_from_slice(b"xyz");
        let ix = KeyIndex {
            arena,
            keys: vec![KeyEntry {
                key: (base, 3),
                revs: (0, 1),
            }],
            revs: vec![rev(1, false)],
            compact: -1,
            head: 1,
            term: None,
            scanned: 1,
        };
        assert_eq!(ix.iter().next().unwrap().0, b"abc");
        assert_eq!(ix.history(b"abc").len(), 1);
        assert!(entry_count(u32::MAX as usize + 1).is_err());
        assert_eq!(entry_count(u32::MAX as usize).unwrap(), u32::MAX);
    }

    #[test]
    fn generations_and_keep_follow_etcd() {
        // put(1) put(2) tomb(3) put(4) tomb(5): etcd's keyIndex example.
        let revs = [
            rev(1, false),
            rev(2, false),
            rev(3, true),
            rev(4, false),
            rev(5, true),
        ];
        let g = generations(&revs);
        assert_eq!(g, vec![0..3, 3..5, 5..5]);
        let index = KeyIndex {
            arena: b"foo".to_vec(),
            keys: vec![KeyEntry {
                key: (0, 3),
                revs: (0, 5),
            }],
            revs: revs.to_vec(),
            compact: -1,
            head: 5,
            term: None,
            scanned: 5,
        };
        let keep_at = |at: i64| -> Vec<i64> { index.keep(at).into_iter().map(|r| r.main).collect() };
        // compact(2) keeps 2; compact(3) would keep the tombstone 3 but keep() skips it.
        assert_eq!(keep_at(2), vec![2]);
        assert_eq!(keep_at(3), Vec::<i64>::new());
        assert_eq!(keep_at(4), vec![4]);
        assert_eq!(keep_at(5), Vec::<i64>::new());
        assert_eq!(keep_at(6), Vec::<i64>::new());
        // live: deleted at 3, alive again at 4, deleted at 5.
        assert!(live(&revs, 2).is_some());
        assert!(live(&revs, 3).is_none());
        assert_eq!(live(&revs, 4).unwrap().rev.main, 4);
        assert!(live(&revs, 9).is_none());
        assert!(live(&revs, 0).is_none());
    }

    #[test]
    fn served_history_drops_what_a_pending_compaction_removes() {
        // put(1) put(2) put(3) put(5): compacted at 3, etcd keeps 3 and 5.
        let revs = [rev(1, false), rev(2, false), rev(3, false), rev(5, false)];
        let index = KeyIndex {
            arena: b"k".to_vec(),
            keys: vec![KeyEntry {
                key: (0, 1),
                revs: (0, 4),
            }],
            revs: revs.to_vec(),
            compact: 3,
            head: 5,
            term: None,
            scanned: 4,
        };
        let mains: Vec<i64> = index.served_history(b"k").iter().map(|r| r.rev.main).collect();
        assert_eq!(mains, [3, 5]);
        // The empty key is never served.
        let blank = KeyIndex {
            arena: Vec::new(),
            keys: vec![KeyEntry {
                key: (0, 0),
                revs: (0, 1),
            }],
            revs: vec![rev(7, false)],
            compact: 7,
            head: 7,
            term: None,
            scanned: 1,
        };
        assert_eq!(blank.live_at(7).count(), 0);
        assert_eq!(blank.keep(7).len(), 1, "but HashKV counts it, as etcd does");
    }

    #[test]
    fn double_tombstone_is_ignored_like_etcd() {
        let revs = [rev(1, false), rev(2, true), rev(3, true), rev(4, false)];
        assert_eq!(generations(&revs), vec![0..2, 3..4]);
    }
}
