//! Decode-write-decode for the bbolt writer: arbitrary key/value pairs in
//! arbitrary buckets are written, read back with our reader, and must come
//! back exactly, with a clean structural check.

use std::collections::BTreeMap;

use etcd_rescue::bolt::walk::Visitor;
use etcd_rescue::bolt::writer::Writer;
use etcd_rescue::bolt::{Db, check};

struct Nop;
impl Visitor<'_> for Nop {}

/// The target's body.
pub fn run(data: &[u8]) {
    // Split the input into records: [bucket byte][klen][vlen u16][key][value].
    let mut buckets: BTreeMap<Vec<u8>, BTreeMap<Vec<u8>, Vec<u8>>> = BTreeMap::new();
    let mut i = 0;
    while i + 4 <= data.len() {
        let b = vec![b'a' + data[i] % 4];
        let kl = 1 + usize::from(data[i + 1] % 40);
        let vl = usize::from(u16::from_le_bytes([data[i + 2], data[i + 3]]) % 9000);
        i += 4;
        let Some(k) = data.get(i..i + kl) else { break };
        i += kl;
        let v = data.get(i..(i + vl).min(data.len())).unwrap_or(&[]).to_vec();
        i += v.len();
        buckets.entry(b).or_default().insert(k.to_vec(), v);
    }
    let mut out = std::io::Cursor::new(Vec::new());
    let mut w = Writer::new(&mut out, 4096, 0.9, 5).unwrap();
    for (name, items) in &buckets {
        w.bucket(name, 0, items.iter()).unwrap();
    }
    w.finish().unwrap();
    let bytes = out.into_inner();
    let report = check::check(&bytes, &mut Nop);
    assert!(
        report.findings.items().is_empty(),
        "{:?}",
        report.findings.items()
    );
    let (db, _) = Db::open(&bytes).unwrap();
    for (name, items) in &buckets {
        let b = db.bucket(name).unwrap().unwrap();
        let got: BTreeMap<Vec<u8>, Vec<u8>> = b
            .iter()
            .map(|e| {
                let e = e.unwrap();
                (e.key.to_vec(), e.value.to_vec())
            })
            .collect();
        assert_eq!(&got, items);
    }
}
