//! Cursors, lookups and the keyspace index over arbitrary bytes: seek to
//! keys taken from the input, iterate every bucket, build the index.

use etcd_rescue::bolt::Db;
use etcd_rescue::mvcc::index::{KeyIndex, KeyRange};

/// The target's body.
pub fn run(data: &[u8]) {
    let Ok((db, _)) = Db::open(data) else { return };
    for e in db.root().iter().take(64) {
        let Ok(e) = e else { break };
        if let Ok(Some(b)) = db.bucket(e.key) {
            for x in b.iter().take(10_000) {
                if x.is_err() {
                    break;
                }
            }
            let probe = data.get(..data.len().min(17)).unwrap_or(&[]);
            let _ = b.get(probe);
            let mut c = b.cursor();
            let _ = c.seek(probe);
            let _ = c.last();
        }
    }
    if let Ok(i) = KeyIndex::build(&etcd_rescue::mvcc::keyspace::Keyspace::db(db), &KeyRange::All) {
        let at = i.head;
        let _ = i.live_at(at).count();
        let _ = i.keep(at);
    }
}
