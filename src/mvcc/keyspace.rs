//! The keyspace etcd serves: a db's `key` bucket, plus the revisions etcd
//! applies from the WAL after starting on a member dir (an [`Overlay`], all
//! newer than the db's own). This is the one loop over the key bucket that
//! the index, HashKV and the Kubernetes reader share.

use std::collections::BTreeMap;

use crate::bolt::{self, Cursor, Db};

use super::kv::{KvError, read_meta};
use super::revision::{RevKey, Revision};
use super::schema::{MetaInfo, meta_keys};

/// What etcd applies on top of a db when it starts on a member dir: the
/// committed WAL entries the db does not hold yet.
#[derive(Clone, Debug, Default)]
pub struct Overlay {
    /// New key-bucket records (revision key -> KeyValue), newer than every
    /// revision of the db.
    pub revisions: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Meta records changed (a compaction scheduled).
    pub meta: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Leases granted or changed (lease key -> Lease).
    pub lease_puts: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Leases revoked.
    pub lease_deletes: Vec<Vec<u8>>,
}

impl Overlay {
    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.revisions.is_empty()
            && self.meta.is_empty()
            && self.lease_puts.is_empty()
            && self.lease_deletes.is_empty()
    }
}

/// One stored revision.
#[derive(Clone, Copy, Debug)]
pub struct Stored<'a> {
    /// Its revision and whether it is a delete.
    pub rev: RevKey,
    /// The raw key of the key bucket (the revision bytes).
    pub raw_key: &'a [u8],
    /// The stored `mvccpb.KeyValue` bytes.
    pub value: &'a [u8],
    /// The db page holding it (none for an overlay revision).
    pub page: Option<bolt::Pgid>,
}

/// A db, and what etcd applies on top of it.
#[derive(Clone, Copy, Debug)]
pub struct Keyspace<'a> {
    /// The db.
    pub db: Db<'a>,
    /// Revisions applied after it, if any.
    pub overlay: Option<&'a Overlay>,
}

impl<'a> Keyspace<'a> {
    /// The db alone.
    pub fn db(db: Db<'a>) -> Keyspace<'a> {
        Keyspace { db, overlay: None }
    }

    /// The `meta` bucket, with the overlay's changes.
    pub fn meta(&self) -> Result<MetaInfo, bolt::Error> {
        let mut m = read_meta(&self.db)?;
        if let Some(o) = self.overlay {
            for (k, v) in &o.meta {
                let _ = m.apply(k, v);
            }
        }
        Ok(m)
    }

    /// Every stored revision in revision order: the db's, then the
    /// overlay's.
    pub fn revisions(&self) -> Result<Revisions<'a>, KvError> {
        let bucket = self.db.bucket(b"key")?.ok_or(KvError::NoKeyBucket)?;
        let page_size = self.db.page_size() as u64;
        // The key bucket is most of an etcd db: its pages, read in key
        // order, measure the progress against the pages in use.
        crate::progress::begin(
            "reading revisions",
            self.db.high_water().saturating_mul(page_size),
        );
        Ok(Revisions {
            cursor: Some(bucket.cursor()),
            started: false,
            overlay: self.overlay.map(|o| o.revisions.iter()),
            last_page: None,
            page_size,
        })
    }

    /// The stored KeyValue bytes of revision `rev` (a put).
    pub fn get(&self, rev: Revision) -> Result<Option<&'a [u8]>, KvError> {
        let key = rev.to_key();
        if let Some(o) = self.overlay
            && let Some(v) = o.revisions.get(key.as_slice())
        {
            return Ok(Some(v.as_slice()));
        }
        let bucket = self.db.bucket(b"key")?.ok_or(KvError::NoKeyBucket)?;
        Ok(bucket.get(&key)?.map(|e| e.value))
    }
}

/// The iterator of [`Keyspace::revisions`].
pub struct Revisions<'a> {
    cursor: Option<Cursor<'a>>,
    started: bool,
    overlay: Option<std::collections::btree_map::Iter<'a, Vec<u8>, Vec<u8>>>,
    /// The leaf page last read from, and the page size (for progress).
    last_page: Option<bolt::Pgid>,
    page_size: u64,
}

impl<'a> Iterator for Revisions<'a> {
    type Item = Result<Stored<'a>, KvError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(c) = self.cursor.as_mut() {
            let e = if self.started {
                c.next_elem()
            } else {
                self.started = true;
                c.first()
            };
            match e {
                Err(e) => {
                    self.cursor = None;
                    self.overlay = None;
                    return Some(Err(e.into()));
                }
                Ok(Some(e)) => {
                    let page = c.position().map(|(n, _)| n.loc.pgid());
                    if page.is_some() && page != self.last_page {
                        self.last_page = page;
                        crate::progress::advance(self.page_size);
                    }
                    return Some(match RevKey::parse(e.key) {
                        Ok(rev) => Ok(Stored {
                            rev,
                            raw_key: e.key,
                            value: e.value,
                            page,
                        }),
                        Err(source) => {
                            self.cursor = None;
                            self.overlay = None;
                            Err(KvError::RevKey { page, source })
                        }
                    });
                }
                Ok(None) => self.cursor = None,
            }
        }
        let (k, v) = self.overlay.as_mut()?.next()?;
        Some(
            RevKey::parse(k)
                .map(|rev| Stored {
                    rev,
                    raw_key: k,
                    value: v,
                    page: None,
                })
                .map_err(|source| KvError::RevKey { page: None, source }),
        )
    }
}

/// The scheduled compaction an overlay's meta records set, if any.
pub fn scheduled_compact(meta: &BTreeMap<Vec<u8>, Vec<u8>>) -> Option<i64> {
    let v = meta.get(meta_keys::SCHEDULED_COMPACT_REV)?;
    RevKey::parse(v).ok().map(|r| r.rev.main)
}
