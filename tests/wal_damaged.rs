//! Damaged copies of real-etcd data dirs: each gives the right finding and
//! verdict, never a panic, and the damaged input stays byte-identical.
//! Where etcd is installed, the verdict is then checked against what real
//! etcd does when started on a writable copy of the same damage.

mod common;

use std::path::{Path, PathBuf};

use common::etcd::{Etcd, Member, free_port};
use common::walwrite::{RecordAt, record_map};
use common::*;
use etcd_rescue::wal::reader::{self, Event, SegmentBytes};
use etcd_rescue::wal::{Entry, RecordType, WalDir, payload};
use serde_json::Value;

/// A damaged copy of one member's data dir, read-only.
struct Copy {
    _tmp: tempfile::TempDir,
    /// `<tmp>/<name>` (the data dir).
    dir: PathBuf,
    name: String,
}

impl Copy {
    fn member(&self) -> PathBuf {
        self.dir.join("member")
    }

    fn seal(&self) {
        make_readonly(&self.dir);
    }
}

fn copy(vdir: &Path, scenario: &str, name: &str) -> Copy {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(name);
    copy_tree(&extracted_dir(vdir, scenario).join(name), &dir);
    Copy {
        _tmp: tmp,
        dir,
        name: name.to_string(),
    }
}

type At = RecordAt;

fn records(member: &Path) -> Vec<At> {
    record_map(&member.join("wal"))
}

fn edit(p: &Path, f: impl FnOnce(&mut Vec<u8>)) {
    let mut b = std::fs::read(p).unwrap();
    f(&mut b);
    std::fs::write(p, b).unwrap();
}

/// `inspect -o json` on the copy, proving it unchanged: (exit code, member report).
fn inspect(c: &Copy) -> (i32, Value) {
    let d = c.dir.to_str().unwrap();
    let r = unchanged(&[&c.dir], || run(&["inspect", "-o", "json", d]));
    assert!(r.code == 0 || r.code == 1, "{}", r.err);
    (r.code, r.json()["members"][0].clone())
}

fn codes(m: &Value) -> Vec<String> {
    m["findings"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect()
}

fn finding<'a>(m: &'a Value, code: &str) -> &'a Value {
    m["findings"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == code)
        .unwrap_or_else(|| panic!("no finding {code} in {:#}", m["findings"]))
}

fn verdict_text(m: &Value) -> String {
    let v = &m["verdict"];
    let mut s = v["headline"].as_str().unwrap().to_string();
    for x in v["statements"].as_array().unwrap() {
        s.push_str(" | ");
        s.push_str(x.as_str().unwrap());
    }
    s
}

/// Starts the version's real etcd on a writable copy of `c`; up means healthy.
fn real_etcd(vdir: &Path, c: &Copy) -> Option<(tempfile::TempDir, PathBuf, Result<Etcd, String>)> {
    real_etcd_probe(vdir, c, &["endpoint", "health"])
}

/// The same, where up means `probe` succeeds.
fn real_etcd_probe(
    vdir: &Path,
    c: &Copy,
    probe: &[&str],
) -> Option<(tempfile::TempDir, PathBuf, Result<Etcd, String>)> {
    let bin = require(Need::EtcdFor(vdir))?;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(&c.name);
    copy_tree(&c.dir, &dir);
    for f in walk_files(&dir) {
        let mut p = std::fs::metadata(&f).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        p.set_readonly(false);
        std::fs::set_permissions(&f, p).unwrap();
    }
    // Ports come from free_port(), which another process can take before
    // etcd binds them: retry on that, and only on that.
    let mut tries = 0;
    let e = loop {
        tries += 1;
        let e = Etcd::try_start_probe(
            Member {
                bin: &bin,
                data_dir: &dir,
                name: &c.name,
                peer_port: free_port(),
                initial_cluster: None,
                extra: vec![],
            },
            probe,
        );
        match e {
            Err(log) if log.contains("address already in use") && tries < 3 => continue,
            e => break e,
        }
    };
    Some((tmp, dir, e))
}

#[test]
fn torn_tail_is_cut_off_and_etcd_starts() {
    for vdir in version_dirs() {
        let c = copy(&vdir, "killed", "killed");
        let recs = records(&c.member());
        let last = recs
            .iter()
            .rfind(|r| r.kind == RecordType::Entry)
            .unwrap()
            .clone();
        let end = recs.last().map(|r| r.offset + r.frame_len).unwrap();
        // The length word of the last entry reached the disk, nothing after it.
        edit(&last.file, |b| b[last.offset + 8..end].fill(0));
        c.seal();
        let (code, m) = inspect(&c);
        let f = finding(&m, "wal-torn-tail");
        assert_eq!(f["severity"], "warning");
        assert_eq!(f["offset"], last.offset as u64);
        assert_eq!(m["verdict"]["outcome"], "starts", "{}", verdict_text(&m));
        let text = verdict_text(&m);
        assert!(
            text.contains(&format!(
                "the WAL ends in a torn record at offset {} of",
                last.offset
            )),
            "{text}"
        );
        assert!(
            text.contains("committed entries behind the WAL: etcd will replay them"),
            "{text}"
        );
        assert_eq!(code, 1, "a torn tail is a problem worth an exit 1");
        assert_eq!(m["wal"]["entries"]["lastIndex"], last.index.unwrap() - 1);
        // The wal command reports it too, and check calls it a warning.
        let r = run(&["wal", c.dir.to_str().unwrap()]);
        assert_eq!(r.code, 1);
        assert!(r.out.contains("wal-torn-tail"));
        if let Some((_t, dir, e)) = real_etcd(&vdir, &c) {
            let e = e
                .unwrap_or_else(|log| panic!("{}: etcd did not start on a torn tail: {log}", vdir.display()));
            e.stop();
            let broken = std::fs::read_dir(dir.join("member/wal"))
                .unwrap()
                .filter_map(|x| x.ok())
                .any(|x| x.file_name().to_string_lossy().ends_with(".wal.broken"));
            assert!(broken, "etcd keeps the torn segment as .broken");
        }
    }
}

#[test]
fn flipped_byte_in_a_middle_record_is_corruption() {
    for vdir in version_dirs() {
        let c = copy(&vdir, "single", "single");
        let recs = records(&c.member());
        let victim = recs.iter().find(|r| r.index == Some(100)).unwrap().clone();
        edit(&victim.file, |b| b[victim.offset + victim.frame_len - 12] ^= 0x20);
        c.seal();
        let (code, m) = inspect(&c);
        assert_eq!(code, 1);
        let f = finding(&m, "wal-crc-mismatch");
        assert_eq!(f["severity"], "error");
        assert_eq!(f["offset"], victim.offset as u64);
        assert!(
            f["file"]
                .as_str()
                .unwrap()
                .ends_with("0000000000000000-0000000000000000.wal")
        );
        assert!(
            f["message"]
                .as_str()
                .unwrap()
                .contains("the record holds entry 100"),
            "{f}"
        );
        assert_eq!(m["verdict"]["outcome"], "wont-start");
        let h = m["verdict"]["headline"].as_str().unwrap();
        assert!(
            h.starts_with("this member cannot start: the WAL is corrupt at index 100"),
            "{h}"
        );
        let advice = m["verdict"]["advice"].as_str().unwrap();
        let rev = m["db"]["revision"].as_i64().unwrap();
        assert!(
            advice.contains(&format!("restore from its db (revision {rev})")),
            "{advice}"
        );
        // What the restore loses: the db holds everything the WAL has, salvage included.
        let ci = m["db"]["consistentIndex"].as_u64().unwrap();
        assert!(
            verdict_text(&m).contains(&format!(
                "the db holds every entry the WAL has (up to index {ci}): restoring it loses nothing the WAL could give"
            )),
            "{}",
            verdict_text(&m)
        );
        assert!(
            !codes(&m).contains(&"db-ahead-of-wal".to_string()),
            "a corrupt WAL is not 'behind' the db"
        );
        // Salvage reads every entry past the damage; etcd stops before it.
        assert_eq!(
            m["wal"]["salvage"]["entries"],
            recs.iter().filter(|r| r.index > Some(100)).count()
        );
        let d = c.dir.to_str().unwrap();
        let plain = run(&["wal", "-o", "json", d]);
        let salv = run(&["wal", "-o", "json", "--salvage", d]);
        assert_eq!(plain.code, 1);
        let idx = |r: &Run| -> Vec<(u64, bool, bool)> {
            r.out
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .filter(|l| l["record"] == "entry")
                .map(|l| {
                    (
                        l["index"].as_u64().unwrap(),
                        l["salvaged"] == true,
                        l["crcMismatch"] == true,
                    )
                })
                .collect()
        };
        let (p, s) = (idx(&plain), idx(&salv));
        assert_eq!(p.last().unwrap().0, 99);
        assert!(
            s.contains(&(100, false, true)),
            "the damaged entry is shown, marked"
        );
        let last = recs.iter().filter_map(|r| r.index).max().unwrap();
        assert_eq!(s.last().unwrap(), &(last, true, false));
        // check on the dir: damaged.
        let r = run(&["check", "-o", "json", d]);
        assert_eq!(r.code, 1);
        assert_eq!(r.json()["files"][0]["verdict"], "damaged");
        if let Some((_t, _d, e)) = real_etcd(&vdir, &c) {
            match e {
                Ok(e) => {
                    e.stop();
                    panic!("{}: etcd started on a WAL with a CRC mismatch", vdir.display());
                }
                Err(log) => assert!(log.contains("crc mismatch"), "{log}"),
            }
        }
    }
}

#[test]
fn missing_middle_segment() {
    for vdir in version_dirs() {
        // The real snapcount WAL, cut into five segments the way etcd cuts.
        let c = copy(&vdir, "snapcount", "snapcount");
        let wal = c.member().join("wal");
        let recs = walwrite::records(&wal);
        for p in wal_segments(&c.member()) {
            std::fs::remove_file(p).unwrap();
        }
        let names = walwrite::write_segments(&wal, &recs, &[60, 120, 180, 240]);
        assert_eq!(names.len(), 5);
        let (code, m) = inspect(&c);
        assert_eq!(
            (code, m["verdict"]["outcome"].as_str()),
            (0, Some("starts")),
            "{}",
            verdict_text(&m)
        );
        assert_eq!(m["wal"]["segments"].as_array().unwrap().len(), 5);
        if let Some((_t, _d, e)) = real_etcd(&vdir, &c) {
            e.unwrap_or_else(|log| panic!("etcd refused the re-cut WAL: {log}"))
                .stop();
        }
        // Now lose the middle one.
        std::fs::remove_file(wal.join(&names[2])).unwrap();
        c.seal();
        let (code, m) = inspect(&c);
        assert_eq!(code, 1);
        let gap = finding(&m, "wal-seq-gap");
        assert!(
            gap["message"].as_str().unwrap().contains("1 segment(s) missing"),
            "{gap}"
        );
        assert!(
            codes(&m).contains(&"wal-chain-break".to_string()),
            "{:?}",
            codes(&m)
        );
        assert_eq!(m["verdict"]["outcome"], "wont-start");
        // etcd checks the sequence from segment 1 on: the gap is fatal, and
        // so is the CRC chain that breaks at segment 3.
        let said = verdict_text(&m);
        assert!(
            said.contains("sequence numbers are not consecutive") && said.contains("wal: file not found"),
            "{said}"
        );
        if let Some((_t, _d, Ok(e))) = real_etcd(&vdir, &c) {
            e.stop();
            panic!("{}: etcd started with a missing middle segment", vdir.display());
        }
    }
}

#[test]
fn missing_first_segment_and_broken_snap() {
    for vdir in version_dirs() {
        // Without the first segment, which also held every snapshot record,
        // no .snap file matches a record: etcd would start from index 0.
        let c = copy(&vdir, "snapcount", "snapcount");
        std::fs::remove_file(&wal_segments(&c.member())[0]).unwrap();
        c.seal();
        let (_, m) = inspect(&c);
        assert!(
            codes(&m).contains(&"wal-files-missing".to_string()),
            "{:?}",
            codes(&m)
        );
        // The first segment also held the snapshot records, so no .snap file
        // matches one any more: etcd would start from index 0, whose segment is gone.
        assert_eq!(m["verdict"]["outcome"], "wont-start");
        assert!(
            verdict_text(&m).contains("the WAL segments needed from the snapshot at index 0 are missing"),
            "{}",
            verdict_text(&m)
        );
        assert!(m["verdict"]["evidence"].as_array().unwrap().iter().any(|e| {
            e.as_str()
                .unwrap()
                .contains("match no snapshot record left in the WAL")
        }));
        if let Some((_t, _d, Ok(e))) = real_etcd(&vdir, &c) {
            e.stop();
            panic!("{}: etcd started without the WAL it needs", vdir.display());
        }

        // A .snap with a bad CRC: etcd sets it aside and falls back to the previous one.
        let c = copy(&vdir, "snapcount", "snapcount");
        let snaps = etcd_rescue::snap::scan(&c.member().join("snap"));
        let (newest, older) = (&snaps.snaps[0], snaps.snaps[1].snapshot.as_ref().unwrap());
        edit(&c.member().join("snap").join(&newest.file), |b| {
            let n = b.len();
            b[n / 2] ^= 0xff;
        });
        c.seal();
        let (code, m) = inspect(&c);
        assert_eq!(code, 1);
        let f = finding(&m, "snap-crc-mismatch");
        assert_eq!(f["file"], format!("member/snap/{}", newest.file));
        assert_eq!(m["verdict"]["outcome"], "starts");
        let text = verdict_text(&m);
        assert!(
            text.contains(&format!(
                "etcd will rename member/snap/{0} to {0}.broken",
                newest.file
            )),
            "{text}"
        );
        let fallback = format!("(index {}, term {})", older.index, older.term);
        assert!(
            m["verdict"]["evidence"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e.as_str().unwrap().contains(&fallback)),
            "falls back to the snapshot at {fallback}: {:#}",
            m["verdict"]["evidence"]
        );
        if let Some((_t, dir, e)) = real_etcd(&vdir, &c) {
            e.unwrap_or_else(|log| panic!("etcd refused a dir with an older good snapshot: {log}"))
                .stop();
            assert!(
                dir.join("member/snap")
                    .join(format!("{}.broken", newest.file))
                    .is_file()
            );
        }
    }
}

#[test]
fn empty_wal_dir() {
    for vdir in version_dirs() {
        let c = copy(&vdir, "single", "single");
        for p in wal_segments(&c.member()) {
            std::fs::remove_file(p).unwrap();
        }
        c.seal();
        let (code, m) = inspect(&c);
        assert_eq!(code, 1);
        assert!(codes(&m).contains(&"wal-empty".to_string()));
        assert_eq!(m["verdict"]["outcome"], "unsafe", "{}", verdict_text(&m));
        let rev = m["db"]["revision"].as_i64().unwrap();
        assert!(
            m["verdict"]["advice"]
                .as_str()
                .unwrap()
                .contains(&format!("restore from its db (revision {rev})"))
        );
        assert!(verdict_text(&m).contains("so writes time out and are never applied"));
        // Real etcd starts a new log on top of the db: reads work, writes time out.
        if let Some((_t, _d, e)) = real_etcd_probe(&vdir, &c, &["get", "/demo/counter"]) {
            let e = e.unwrap_or_else(|log| panic!("etcd did not serve reads: {log}"));
            let (ok, _, _) = e.ctl_raw(&["--command-timeout=3s", "put", "/after-restart", "x"]);
            let (_, got, _) = e.ctl_raw(&["get", "/demo/counter"]);
            e.stop();
            assert!(!ok, "a write went through");
            assert!(got.contains("11"), "{got}");
        }
        // The WAL dir itself missing gives the same verdict.
        let c2 = copy(&vdir, "single", "single");
        std::fs::remove_dir_all(c2.member().join("wal")).unwrap();
        c2.seal();
        let (_, m2) = inspect(&c2);
        assert!(codes(&m2).contains(&"wal-dir-missing".to_string()));
        assert_eq!(m2["verdict"]["outcome"], "unsafe");
        let r = run(&["wal", c2.dir.to_str().unwrap()]);
        assert_eq!(r.code, 2);
    }
}

#[test]
fn db_ahead_of_its_wal() {
    for vdir in version_dirs() {
        let c = copy(&vdir, "single", "single");
        let recs = records(&c.member());
        let cut = recs.iter().find(|r| r.index == Some(150)).unwrap().clone();
        // The WAL as if it ended before entry 150 (zeros: a clean end).
        edit(&cut.file, |b| {
            let n = b.len();
            b[cut.offset..n].fill(0)
        });
        c.seal();
        let (code, m) = inspect(&c);
        assert_eq!(code, 1);
        assert!(codes(&m).contains(&"db-ahead-of-wal".to_string()));
        assert_eq!(m["verdict"]["outcome"], "unsafe");
        let ci = m["db"]["consistentIndex"].as_u64().unwrap();
        let h = m["verdict"]["headline"].as_str().unwrap();
        assert!(
            h.contains(&format!(
                "the db has applied entries up to index {ci}, but the WAL ends at index 149"
            )),
            "{h}"
        );
        assert!(h.contains("writes would time out and never be applied"), "{h}");
        // Real etcd starts and serves reads, but a write times out and is never applied.
        if let Some((_t, _d, e)) = real_etcd_probe(&vdir, &c, &["get", "/demo/counter"]) {
            let e = e.unwrap_or_else(|log| panic!("etcd refused a db ahead of its WAL: {log}"));
            let (ok, _, _) = e.ctl_raw(&["--command-timeout=3s", "put", "/after-restart", "x"]);
            std::thread::sleep(std::time::Duration::from_secs(1));
            let (_, got, _) = e.ctl_raw(&["get", "/after-restart"]);
            e.stop();
            assert!(!ok, "the write was acknowledged");
            assert!(!got.contains("/after-restart"), "the write was applied: {got}");
        }
    }
}

#[test]
fn mutated_wals_never_panic() {
    let vdir = repo().join("testdata/fixtures/v3.5.1");
    let member = extracted_dir(&vdir, "single").join("single/member");
    let d = WalDir::open(&member.join("wal")).unwrap();
    let recs = records(&member);
    let end = recs.last().map(|r| r.offset + r.frame_len).unwrap();
    let orig = d.segments[0].file.bytes()[..end + 64].to_vec();
    let name = d.segments[0].name;
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut rnd = |n: usize| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % n as u64) as usize
    };
    for round in 0..400 {
        let mut b = orig.clone();
        match round % 4 {
            0 => {
                let i = rnd(b.len());
                b[i] ^= 1 << rnd(8);
            }
            1 => b.truncate(rnd(b.len())),
            2 => {
                let i = rnd(b.len() / 8) * 8;
                b[i..i + 8].copy_from_slice(&(rnd(usize::MAX) as u64).to_le_bytes());
            }
            _ => {
                let i = rnd(b.len());
                let n = rnd(600).min(b.len() - i);
                b[i..i + n].fill(0);
            }
        }
        let segs = [
            SegmentBytes { name, bytes: &b },
            SegmentBytes { name, bytes: &orig },
        ];
        reader::read(&segs, |ev| {
            if let Event::Record(r) = ev {
                if r.kind == RecordType::Entry {
                    if let Ok(e) = Entry::parse(r.record.data) {
                        let _ = payload::decode(&e).request.summary(10);
                    }
                }
            }
        });
    }
}
