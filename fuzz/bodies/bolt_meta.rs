//! Meta page decoding and the choice between the two meta pages.

use etcd_rescue::bolt::meta;

/// The target's body.
pub fn run(data: &[u8]) {
    let _ = meta::Meta::read(data, 0);
    let _ = meta::choose(data);
}
