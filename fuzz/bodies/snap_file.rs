//! The `.snap` file decoder on arbitrary bytes: the `snappb.snapshot`
//! envelope and its CRC, the `raftpb.Snapshot` in it, and the v2 store JSON
//! with the membership; also the `.snap` and `.snap.db` name parsers.
//!
//! Mutations of a real file almost always break its CRC, which would hide
//! everything behind it; so when the envelope decodes but the CRC does not
//! match, its data is also read with the CRC made right. The input is also
//! decoded as v2 store JSON by itself.

use etcd_rescue::pb::snappb;
use etcd_rescue::snap::name::parse_snap_db;
use etcd_rescue::snap::{SnapError, SnapName, read, v2store};
use prost::Message;

fn v2(json: &[u8]) {
    if let Ok(s) = v2store::decode(json) {
        assert!(s.members.windows(2).all(|w| w[0].id <= w[1].id));
        let _ = serde_json::to_vec(&s).expect("a v2 store summary renders as JSON");
    }
}

/// The target's body.
pub fn run(data: &[u8]) {
    match read(data) {
        Ok(s) => v2(&s.data),
        Err(SnapError::Crc { .. }) => {
            let env = snappb::Snapshot::decode(data).expect("the envelope decoded before");
            let inner = env.data.unwrap_or_default();
            let fixed = snappb::Snapshot {
                crc: Some(crc32c::crc32c(&inner)),
                data: Some(inner),
            }
            .encode_to_vec();
            match read(&fixed) {
                Ok(s) => v2(&s.data),
                Err(e) => assert!(matches!(e, SnapError::Snapshot(_) | SnapError::EmptyData), "{e}"),
            }
        }
        Err(e) => {
            let _ = e.code();
        }
    }
    v2(data);
    let name = String::from_utf8_lossy(data);
    if let Some(n) = SnapName::parse(&name) {
        assert_eq!(SnapName::parse(&n.file_name()), Some(n));
    }
    let _ = parse_snap_db(&name);
}
