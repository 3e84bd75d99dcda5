//! The command line: clap definitions, dispatch and exit codes. Commands
//! take their options and output streams and return an exit code; all format
//! logic lives in the library modules, all rendering in [`render`].
//!
//! Exit codes (all commands): 0 clean, 1 problems found in the input, 2 the
//! command could not run (bad usage, unreadable file).

use std::ffi::OsString;
use std::io::{self, IsTerminal, Write};

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use crate::judge::source::ReadSource;
use crate::mvcc::keyspace::Keyspace;
use crate::mvcc::kv::KvError;

mod about;
mod check;
mod compact;
mod diff;
mod get;
mod hashkv;
mod history;
mod inspect;
mod k8s;
mod progress;
pub mod render;
mod restore;
mod salvage;
mod stats;
mod status;
mod verify;
mod wal;

/// Exit code: no problems.
pub const EXIT_OK: i32 = 0;
/// Exit code: the input has problems (findings, damage).
pub const EXIT_PROBLEMS: i32 = 1;
/// Exit code: the command could not run.
pub const EXIT_ERROR: i32 = 2;

/// Output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable tables.
    #[default]
    Table,
    /// JSON for scripts (stable field names; etcdutl's where the concept is the same).
    Json,
    /// JSON Lines: one object per line (for streams of keys or entries).
    Lines,
    /// YAML, as kubectl prints it (only `k8s get`).
    Yaml,
}

/// What `-o`/`-w` takes: the formats, and etcdctl's and etcdutl's plain
/// layouts, which only the commands with such a twin have.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Human-readable tables.
    #[default]
    Table,
    /// JSON for scripts (stable field names; etcdutl's where the concept is the same).
    Json,
    /// JSON Lines: one object per line (for streams of keys or entries).
    Lines,
    /// YAML, as kubectl prints it (only `k8s get`).
    Yaml,
    /// etcdutl's and etcdctl's `-w simple` (`status`, `get`, `hashkv`).
    Simple,
    /// etcdutl's and etcdctl's `-w fields`: `"Name" : value` lines (`status`, `get`, `hashkv`).
    Fields,
}

/// etcdutl's and etcdctl's plain-text layouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EtcdutlLayout {
    /// `-w simple`.
    Simple,
    /// `-w fields`.
    Fields,
}

impl Output {
    fn split(self) -> (Format, Option<EtcdutlLayout>) {
        match self {
            Output::Table => (Format::Table, None),
            Output::Json => (Format::Json, None),
            Output::Lines => (Format::Lines, None),
            Output::Yaml => (Format::Yaml, None),
            Output::Simple => (Format::Table, Some(EtcdutlLayout::Simple)),
            Output::Fields => (Format::Table, Some(EtcdutlLayout::Fields)),
        }
    }
}

const EXAMPLES: &str = "\
Examples:
  etcd-rescue status backup.db                 what a snapshot or db holds (like etcdutl snapshot status)
  etcd-rescue check backup.db                  is this backup good? every problem, with page and offset
  etcd-rescue check -o json /backups/*.db      the same for scripts
  etcd-rescue inspect /var/lib/etcd            will etcd start on this data dir, and what will it lose?
  etcd-rescue inspect m1 m2 m3                 copied member dirs side by side: which one to trust
  etcd-rescue wal /var/lib/etcd --type put     the WAL decoded, entry by entry
  etcd-rescue k8s ls backup.db                 the Kubernetes objects in a dead cluster's snapshot
  etcd-rescue k8s get backup.db deploy web -n prod -o yaml
  etcd-rescue k8s dump backup.db --out manifests/ --for-apply
  etcd-rescue compact m1 m2 m3 --rev head --disarm --in-place
                                               database space exceeded: compact, defrag, disarm offline

Exit codes: 0 clean, 1 problems found, 2 could not run.";

/// Offline forensics and recovery for etcd: read snapshots and data
/// directories directly, with no etcd running. Inputs are never modified.
#[derive(Debug, Parser)]
#[command(name = "etcd-rescue", version, after_help = EXAMPLES)]
pub struct Cli {
    /// Output format.
    #[arg(
        short = 'o',
        long = "output",
        visible_short_alias = 'w',
        visible_alias = "write-out",
        value_enum,
        default_value_t,
        global = true
    )]
    pub output: Output,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what a snapshot file or db holds: etcdutl's snapshot status (same
    /// hash, revision, totalKey, totalSize) plus compaction, raft index,
    /// members, page usage and the sha256 trailer.
    #[command(
        after_help = "Example:\n  etcd-rescue status /var/lib/etcd/member/snap/db\n  etcd-rescue status -o json snapshot.db | jq .revision\n\nExit codes: 0 read cleanly, 1 the file is damaged (values shown may be partial), 2 could not read it."
    )]
    Status(status::StatusArgs),
    /// Check db and snapshot files thoroughly and report every problem: meta
    /// pages, every page of the tree, key order, the freelist, etcd's schema
    /// (revision keys, KeyValue records, key histories, members, leases) and
    /// the sha256 trailer. A data dir gets all of that for its db, plus every
    /// WAL record and payload, the snap files and the cross-checks of
    /// `inspect`.
    #[command(
        after_help = "Example:\n  etcd-rescue check snapshot.db\n  etcd-rescue check -o json backups/*.db\n  etcd-rescue check /var/lib/etcd\n\nExit codes: 0 no problems, 1 problems found (warnings or errors, or etcd would not start on a data dir), 2 a file could not be read."
    )]
    Check(check::CheckArgs),
    /// Read keys as `etcdctl get` does, offline: at the head or at any
    /// revision not older than the compact revision. `-o json` has the shape
    /// of `etcdctl get -w json`.
    #[command(
        after_help = "Example:\n  etcd-rescue get snapshot.db /registry/deployments/default/web\n  etcd-rescue get snapshot.db /registry/pods/ --prefix --keys-only --rev 1200\n  etcd-rescue get -o json /var/lib/etcd /registry/ --prefix --count-only\n\nExit codes: 0 done, 1 the db is damaged, 2 could not run (bad revision, missing file)."
    )]
    Get(get::GetArgs),
    /// Every stored revision of a key, oldest first: revision, create and mod
    /// revision, version, lease, value size, and deletions.
    #[command(
        after_help = "Example:\n  etcd-rescue history snapshot.db /registry/deployments/default/web\n  etcd-rescue history --values snapshot.db /demo/counter\n\nExit codes: 0 done, 1 the db is damaged, 2 could not run."
    )]
    History(history::HistoryArgs),
    /// Keys added, removed and changed between two snapshots, dbs or data
    /// dirs, or between two revisions of one (`--rev-a`, `--rev-b`).
    #[command(
        after_help = "Example:\n  etcd-rescue diff monday.db tuesday.db --prefix /registry/deployments/\n  etcd-rescue diff snapshot.db --rev-a 1200 --rev-b 1300\n\nExit codes: 0 no differences, 1 differences found (like diff(1)), 2 could not run."
    )]
    Diff(diff::DiffArgs),
    /// etcd's HashKV for the same data and revision, as `etcdctl endpoint
    /// hashkv` reports it on a live member: compare members and backups offline.
    #[command(
        after_help = "Example:\n  etcd-rescue hashkv member1/ --rev 5000\n  etcd-rescue hashkv -o json snapshot.db\n\nExit codes: 0 done, 1 the db is damaged, 2 could not run (compacted or future revision)."
    )]
    Hashkv(hashkv::HashKvArgs),
    /// Where the space goes: keys and bytes per prefix (Kubernetes-aware),
    /// revisions per key, the largest keys and values, leases, free pages,
    /// and what a compaction plus defragmentation would reclaim.
    #[command(
        after_help = "Example:\n  etcd-rescue stats snapshot.db\n  etcd-rescue stats --depth 3 --top 20 -o json /var/lib/etcd\n\nExit codes: 0 done, 1 the db is damaged, 2 could not run."
    )]
    Stats(stats::StatsArgs),
    /// Verify whole backup stores: every snapshot, db and data dir under the
    /// paths (also inside gzip, zstd, zip and tar files), fully checked in
    /// parallel, remembered in a catalog, with policies for cron.
    #[command(
        after_help = "Example:\n  etcd-rescue verify /backups/etcd/\n  etcd-rescue verify --max-age 26h --expect-growth --require-hash '/backups/*/etcd-snapshot-*.zip'\n  etcd-rescue verify --history\n\nExit codes: 0 every backup passes, 1 a backup is damaged or unreadable or a policy fails, 2 could not run (missing path, bad catalog)."
    )]
    Verify(verify::VerifyArgs),
    /// Recover every record that can still be read from a damaged db (or a
    /// member's data dir: its db with its WAL) and write a fresh db that
    /// `check` and `restore` accept, with a report of what was repaired and,
    /// on evidence, what was lost.
    #[command(
        after_help = "Example:\n  etcd-rescue salvage member/snap/db --out rescued.db\n  etcd-rescue check rescued.db && etcd-rescue restore rescued.db --skip-hash-check --data-dir /var/lib/etcd-new ...\n\nExit codes: 0 written from an undamaged db, 1 written, but the input was damaged and data may be lost (see the report), 2 could not run."
    )]
    Salvage(salvage::SalvageArgs),
    /// Compact a snapshot, a db or a stopped member's data dir offline, as
    /// `etcdctl compact REV --physical` and `etcdctl defrag` would online:
    /// history at or below REV is dropped as etcd drops it, the file is
    /// rewritten densely, and `--disarm` clears a NOSPACE alarm. Several
    /// member dirs of one cluster get the identical compaction.
    #[command(
        after_help = "Example:\n  etcd-rescue compact /var/lib/etcd --rev head --disarm --in-place\n  etcd-rescue compact snapshot.db --keep-revisions 10000 --out compacted.db\n  etcd-rescue compact m1 m2 m3 --rev 123456 --in-place\n\nExit codes: 0 written, 1 a source is damaged or the members disagree (nothing written), 2 could not run (bad revision, etcd running, output exists)."
    )]
    Compact(compact::CompactArgs),
    /// Defragment a snapshot, a db or a stopped member's data dir offline
    /// (flag-compatible with `etcdutl defrag --data-dir`, with --in-place):
    /// the same rewrite as `compact` without dropping history.
    #[command(
        after_help = "Example:\n  etcd-rescue defrag --data-dir /var/lib/etcd --in-place\n  etcd-rescue defrag snapshot.db --out defragmented.db --disarm\n\nExit codes: 0 written, 1 a source is damaged (nothing written), 2 could not run."
    )]
    Defrag(compact::DefragArgs),
    /// Write restore-ready data dirs offline, flag-compatible with `etcdutl
    /// snapshot restore`: from a snapshot (verified first: structure, sha256
    /// trailer, etcd's rules) or from a copied member dir (its db plus the
    /// committed WAL entries the db lacks); one member, or every member with
    /// --all-members. Same member and cluster IDs as etcdutl for the same flags.
    #[command(
        after_help = "Example:\n  etcd-rescue restore snapshot.db --data-dir /var/lib/etcd-new --name m1 \\\n      --initial-cluster m1=https://10.0.0.1:2380,m2=https://10.0.0.2:2380,m3=https://10.0.0.3:2380 \\\n      --initial-cluster-token prod-restore --initial-advertise-peer-urls https://10.0.0.1:2380\n  etcd-rescue restore snapshot.db --all-members restored/ --initial-cluster ... --bump-revision 1000000 --mark-compacted\n  etcd-rescue restore /copied/from/m2/etcd --data-dir /var/lib/etcd-new --name m2 --initial-cluster m2=https://10.0.0.2:2380 --initial-advertise-peer-urls https://10.0.0.2:2380\n\nExit codes: 0 written, 1 the source is damaged or its trailer is missing or wrong (nothing written), 2 could not run."
    )]
    Restore(restore::RestoreArgs),
    /// The offline equivalent of starting etcd with --force-new-cluster (and
    /// of the removed `etcdutl backup`): a lone survivor's data dir, with its
    /// data and history, rewritten to a one-member cluster with new IDs; the
    /// other members rejoin with `etcdctl member add`.
    #[command(
        after_help = "Example:\n  etcd-rescue force-new-cluster /copied/from/m1/etcd --out /var/lib/etcd-new\n\nExit codes: 0 written, 1 the source is damaged (nothing written), 2 could not run."
    )]
    ForceNewCluster(restore::ForceNewClusterArgs),
    /// Judge a member's data dir as a whole: the db, the WAL and the snap
    /// files, checked against each other, and a verdict in plain words:
    /// will etcd start on this, and what will it lose? Several dirs are
    /// shown side by side, with the one holding the most recent committed data.
    #[command(
        after_help = "Example:\n  etcd-rescue inspect /var/lib/etcd\n  etcd-rescue inspect host1/member host2/member host3/member\n  etcd-rescue inspect --wal-dir /ssd/etcd-wal /var/lib/etcd\n  etcd-rescue inspect -o json /var/lib/etcd | jq .members[0].verdict\n\nExit codes: 0 etcd starts on every dir and no problems were found, 1 problems found or etcd would not (safely) start, 2 a path is not a readable data dir."
    )]
    Inspect(inspect::InspectArgs),
    /// Decode a WAL: member and cluster IDs, HardState, snapshot records,
    /// then every entry with its term, index, type and request (keys,
    /// values, leases, txn compares and branches, member changes). Keys and
    /// values are text when UTF-8, base64 otherwise.
    #[command(
        after_help = "Example:\n  etcd-rescue wal /var/lib/etcd\n  etcd-rescue wal /var/lib/etcd --type put,txn --prefix /registry/pods/\n  etcd-rescue wal member/wal --start-index 1000 --end-index 1100\n  etcd-rescue wal -o json /var/lib/etcd > entries.jsonl\n  etcd-rescue wal --salvage broken-copy/member\n\nExit codes: 0 the WAL reads cleanly, 1 problems found (a torn tail, corruption), 2 could not read it."
    )]
    Wal(wal::WalArgs),
    /// Kubernetes objects from a dead cluster's files: list them, print them
    /// as kubectl would, or dump the whole cluster as manifests (decrypting
    /// values encrypted at rest with the apiserver's EncryptionConfiguration).
    #[command(
        subcommand,
        after_help = "Example:\n  etcd-rescue k8s ls backup.db\n  etcd-rescue k8s get backup.db deployment web -n prod -o yaml\n  etcd-rescue k8s dump /var/lib/etcd --out restored/ --for-apply\n\nExit codes: 0 every object decoded, 1 some could not be (each is reported), 2 could not run."
    )]
    K8s(k8s::K8sCommand),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    #[command(
        after_help = "Install:\n  bash:  etcd-rescue completion bash > /etc/bash_completion.d/etcd-rescue   (or ~/.local/share/bash-completion/completions/etcd-rescue)\n  zsh:   etcd-rescue completion zsh > \"${fpath[1]}/_etcd-rescue\"\n  fish:  etcd-rescue completion fish > ~/.config/fish/completions/etcd-rescue.fish\n  once:  source <(etcd-rescue completion bash)\n\nExit codes: 0 printed, 2 unknown shell."
    )]
    Completion(about::CompletionArgs),
    /// Print the man page, or write one per command with --out DIR.
    #[command(
        after_help = "Install:\n  etcd-rescue man --out /usr/local/share/man/man1 && mandb -q\n  man etcd-rescue-k8s-dump\n\nExit codes: 0 done, 2 could not write."
    )]
    Man(about::ManArgs),
    /// Print the version, git commit and build date (-o json for scripts).
    #[command(
        after_help = "Example:\n  etcd-rescue version\n  etcd-rescue version -o json | jq -r .gitCommit\n\nExit codes: 0."
    )]
    Version,
}

/// Whether to colour what goes to a stream: `CLICOLOR_FORCE` (not `0`)
/// forces it, `NO_COLOR` (not empty) turns it off, else only on a terminal.
fn colour(tty: bool) -> bool {
    let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty() && v != "0");
    if set("CLICOLOR_FORCE") {
        true
    } else if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
        false
    } else {
        tty
    }
}

/// Parses `args` and runs the command, writing to `out` and `err`.
/// Returns the process exit code.
pub fn run<I, T>(args: I, out: &mut dyn Write, err: &mut dyn Write) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let mut cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_ERROR } else { EXIT_OK };
            let tty = if e.use_stderr() {
                std::io::stderr().is_terminal()
            } else {
                std::io::stdout().is_terminal()
            };
            let styled = e.render();
            let text = if colour(tty) {
                styled.ansi().to_string()
            } else {
                styled.to_string()
            };
            let _ = if e.use_stderr() {
                err.write_all(text.as_bytes())
            } else {
                out.write_all(text.as_bytes())
            };
            return code;
        }
    };
    let (output, layout) = cli.output.split();
    if output == Format::Yaml && !matches!(cli.command, Command::K8s(_)) {
        let _ = writeln!(
            err,
            "etcd-rescue: -o yaml is only for `k8s` commands; use -o json"
        );
        return EXIT_ERROR;
    }
    if layout.is_some()
        && !matches!(
            cli.command,
            Command::Status(_) | Command::Get(_) | Command::Hashkv(_)
        )
    {
        let _ = writeln!(
            err,
            "etcd-rescue: -w simple and -w fields are etcdctl's and etcdutl's layouts: only `status`, `get` and `hashkv` have them; use -o table or -o json"
        );
        return EXIT_ERROR;
    }
    let mut out = Counted { inner: out, bytes: 0 };
    let mut err = Recorded {
        inner: err,
        tail: Vec::new(),
    };
    // verify and k8s dump draw bars of their own (files, objects).
    let long = !matches!(
        cli.command,
        Command::Verify(_) | Command::Completion(_) | Command::Man(_) | Command::Version
    ) && !matches!(&cli.command, Command::K8s(k) if k.draws_progress());
    let ticker = long.then(progress::Ticker::start);
    // Object store URLs are read from downloaded copies, kept until exit.
    let _spills = match fetch_inputs(&mut cli.command, &mut err) {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(err, "etcd-rescue: error: {e}");
            if matches!(output, Format::Json | Format::Lines) {
                let doc = serde_json::json!({ "error": err.last_error(), "exitCode": EXIT_ERROR });
                let _ = writeln!(out.inner, "{doc}");
            }
            drop(ticker);
            return EXIT_ERROR;
        }
    };
    let mut code = dispatch(&cli, output, layout, &mut out, &mut err);
    drop(ticker);
    // An input cut short while it was read (and not already reported by a
    // judgment): what was printed is not a reading of it.
    for cut in crate::source::take_cuts(None) {
        let _ = writeln!(err, "etcd-rescue: error: {cut}");
        code = code.max(EXIT_ERROR);
    }
    // A command that failed says why in one JSON document on stdout too,
    // when scripts asked for JSON and it wrote nothing else (exit 2: it
    // could not run; exit 1: its input is damaged past answering, or the
    // object asked for is not there).
    if code != EXIT_OK && matches!(output, Format::Json | Format::Lines) && out.bytes == 0 {
        let doc = serde_json::json!({ "error": err.last_error(), "exitCode": code });
        let _ = writeln!(out.inner, "{doc}");
    }
    code
}

impl Command {
    /// The inputs of the commands that read snapshots one by one: where an
    /// object store URL may stand for a file.
    fn inputs_mut(&mut self) -> Vec<&mut std::path::PathBuf> {
        match self {
            Command::Status(a) => vec![&mut a.file],
            Command::Check(a) => a.files.iter_mut().collect(),
            Command::Get(a) => vec![&mut a.source],
            Command::History(a) => vec![&mut a.source],
            Command::Diff(a) => std::iter::once(&mut a.a).chain(a.b.as_mut()).collect(),
            Command::Hashkv(a) => a.sources.iter_mut().collect(),
            Command::Stats(a) => vec![&mut a.source],
            Command::Restore(a) => vec![&mut a.source],
            Command::Inspect(a) => a.dirs.iter_mut().collect(),
            Command::K8s(c) => c.inputs_mut(),
            _ => Vec::new(),
        }
    }
}

/// `diff` and `k8s diff` with one source and no revision would compare
/// its head with itself.
fn refuse_self_diff(second_source: bool, any_rev: bool) -> anyhow::Result<()> {
    if !second_source && !any_rev {
        anyhow::bail!(
            "one source and no revision compares its head with itself: give a second source, or two revisions (--rev N --rev-b M)"
        );
    }
    Ok(())
}

/// Downloads every input that is an object store URL and points the
/// argument at the copy; the copies live as long as what is returned.
fn fetch_inputs(cmd: &mut Command, err: &mut dyn Write) -> anyhow::Result<Vec<crate::remote::Spill>> {
    let mut spills = Vec::new();
    for p in cmd.inputs_mut() {
        let s = p.to_string_lossy().into_owned();
        if !crate::remote::is_url(&s) {
            continue;
        }
        let (obj, spill) = crate::remote::fetch_one(&s, &crate::remote::RemoteOptions::default())?;
        writeln!(
            err,
            "etcd-rescue: {}: read from a downloaded copy, {} in {} (deleted at exit)",
            obj.url,
            render::human_bytes(obj.size),
            spill.path.display()
        )?;
        *p = spill.path.clone();
        spills.push(spill);
    }
    Ok(spills)
}

/// Runs the parsed command; its exit code.
fn dispatch(
    cli: &Cli,
    output: Format,
    layout: Option<EtcdutlLayout>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let result = match &cli.command {
        Command::Status(_) | Command::Check(_) if output == Format::Yaml => Err(anyhow::anyhow!(
            "-o yaml is only for `k8s get`; use -o table or -o json"
        )),
        Command::Status(a) => status::run(a, output, layout, out, err),
        Command::Check(a) => check::run(a, output, out, err),
        Command::Get(a) => get::run(a, output, layout, out, err),
        Command::History(a) => history::run(a, output, out, err),
        Command::Diff(a) => diff::run(a, output, out, err),
        Command::Hashkv(a) => hashkv::run(a, output, layout, out, err),
        Command::Stats(a) => stats::run(a, output, out, err),
        Command::Verify(a) => verify::run(a, output, out, err),
        Command::Salvage(a) => salvage::run(a, output, out, err),
        Command::Compact(a) => compact::run_compact(a, output, out, err),
        Command::Defrag(a) => compact::run_defrag(a, output, out, err),
        Command::Restore(a) => restore::run(a, output, out, err),
        Command::ForceNewCluster(a) => restore::run_force_new_cluster(a, output, out, err),
        Command::Inspect(a) => inspect::run(a, output, out, err),
        Command::Wal(a) => wal::run(a, output, out, err),
        Command::K8s(c) => k8s::run(c, output, out, err),
        Command::Completion(a) => about::completion(a, out),
        Command::Man(a) => about::man(a, out, err),
        Command::Version => about::version(output, out),
    };
    match result {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => EXIT_OK,
        Err(e) => {
            let _ = writeln!(err, "etcd-rescue: error: {e:#}");
            EXIT_ERROR
        }
    }
}

/// Stdout, counting what is written to it.
struct Counted<'a> {
    inner: &'a mut dyn Write,
    bytes: u64,
}

impl Write for Counted<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Stderr, keeping its last few kilobytes for the JSON error document.
struct Recorded<'a> {
    inner: &'a mut dyn Write,
    tail: Vec<u8>,
}

impl Recorded<'_> {
    /// The last message that is not a note or a warning, without the
    /// `etcd-rescue: ` and `error: ` prefixes.
    fn last_error(&self) -> String {
        let text = String::from_utf8_lossy(&self.tail);
        let strip = |l: &str| -> String {
            let l = l.trim();
            let l = l.strip_prefix("etcd-rescue: ").unwrap_or(l);
            l.strip_prefix("error: ").unwrap_or(l).to_string()
        };
        text.lines()
            .rev()
            .map(strip)
            .find(|l| !l.is_empty() && !l.starts_with("note:") && !l.starts_with("warning:"))
            .unwrap_or_else(|| "the command could not run".into())
    }
}

impl Write for Recorded<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.tail.extend_from_slice(&buf[..n]);
        if self.tail.len() > 8192 {
            self.tail.drain(..self.tail.len() - 4096);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The `header` of etcdctl's JSON answers (snake_case, zero fields left
/// out, as etcdctl prints them).
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub(crate) struct EtcdctlHeader {
    #[serde(skip_serializing_if = "is_zero")]
    cluster_id: u64,
    #[serde(skip_serializing_if = "is_zero")]
    member_id: u64,
    revision: i64,
    #[serde(skip_serializing_if = "is_zero")]
    raft_term: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl EtcdctlHeader {
    /// The header as etcdctl's `-w fields` prints it.
    pub(crate) fn fields(&self, out: &mut dyn Write) -> std::io::Result<()> {
        writeln!(out, "\"ClusterID\" : {}", self.cluster_id)?;
        writeln!(out, "\"MemberID\" : {}", self.member_id)?;
        writeln!(out, "\"Revision\" : {}", self.revision)?;
        writeln!(out, "\"RaftTerm\" : {}", self.raft_term)
    }
}

/// A query source opened read-only: what etcd would serve from a snapshot
/// file, a db file or a data dir (see [`crate::judge::source`]).
pub(crate) struct SourceDb {
    src: ReadSource,
}

impl SourceDb {
    /// Opens and judges the source; tells on stderr what is read and
    /// whether it is damaged.
    pub(crate) fn open(
        path: &std::path::Path,
        db_only: bool,
        err: &mut dyn Write,
    ) -> anyhow::Result<SourceDb> {
        let src = ReadSource::open(path, db_only).context("cannot open the source")?;
        for w in src.warnings() {
            writeln!(err, "etcd-rescue: {w}")?;
        }
        Ok(SourceDb { src })
    }

    /// etcdctl's response header for an answer at head `revision`:
    /// `cluster_id` and `member_id` from a member dir's WAL (left out, as
    /// etcdctl leaves out zero fields, for a snapshot, which does not record
    /// them), and the last raft term on disk.
    pub(crate) fn header(&self, revision: i64, term: Option<u64>) -> EtcdctlHeader {
        let (cluster_id, member_id) = self.src.member_ids().unwrap_or((0, 0));
        EtcdctlHeader {
            cluster_id,
            member_id,
            revision,
            raft_term: term.unwrap_or(0),
        }
    }

    /// The keyspace to answer from.
    pub(crate) fn keyspace(&self) -> Result<Keyspace<'_>, crate::bolt::Error> {
        self.src.keyspace()
    }

    /// The whole file (with a snapshot's trailer).
    pub(crate) fn bytes(&self) -> &[u8] {
        self.src.bytes()
    }

    /// The exit code after answering: 1 when the source is damaged.
    pub(crate) fn exit_code(&self) -> i32 {
        if self.src.damaged() {
            EXIT_PROBLEMS
        } else {
            EXIT_OK
        }
    }

    /// Reports that the db cannot be read; exit 1.
    pub(crate) fn damaged(&self, err: &mut dyn Write, e: crate::bolt::Error) -> anyhow::Result<i32> {
        let name = &self.src.name;
        writeln!(err, "etcd-rescue: {name}: cannot read the db: {e}")?;
        writeln!(err, "hint: `etcd-rescue check {name}` lists every problem")?;
        Ok(EXIT_PROBLEMS)
    }

    /// Reports a keyspace error: a bad revision is a usage error (exit 2),
    /// anything else means the db is damaged (exit 1).
    pub(crate) fn kv_error(&self, err: &mut dyn Write, e: &KvError) -> anyhow::Result<i32> {
        let name = &self.src.name;
        match e {
            KvError::Compacted { .. } | KvError::Future { .. } => {
                writeln!(err, "etcd-rescue: {name}: {e}")?;
                Ok(EXIT_ERROR)
            }
            _ => {
                writeln!(err, "etcd-rescue: {name}: cannot read the keyspace: {e}")?;
                writeln!(err, "hint: `etcd-rescue check {name}` lists every problem")?;
                Ok(EXIT_PROBLEMS)
            }
        }
    }
}

/// Says on stderr which temporary dirs of earlier killed runs a writer
/// removed.
pub(crate) fn report_cleaned(err: &mut dyn Write) -> std::io::Result<()> {
    for p in crate::atomic::take_cleaned() {
        writeln!(
            err,
            "etcd-rescue: removed {}, left by an earlier run that was killed while writing",
            p.display()
        )?;
    }
    Ok(())
}

/// Whether the error is a closed stdout (`... | head`): an I/O error, or
/// one serde_json wraps (its `source` skips the I/O error itself).
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .is_some_and(|j| j.io_error_kind() == Some(io::ErrorKind::BrokenPipe))
    })
}

/// A path argument as shown in messages.
pub(crate) fn show_path(p: &std::path::Path) -> String {
    p.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stdout whose reader has gone.
    struct Closed;

    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_pipe_is_told_apart_whoever_wrote() {
        let json = render::json(&mut Closed, &serde_json::json!({"a": 1})).unwrap_err();
        assert!(is_broken_pipe(&json), "{json:#}");
        let plain = anyhow::Error::from(writeln!(Closed, "x").unwrap_err());
        assert!(is_broken_pipe(&plain));
        let other = anyhow::Error::from(io::Error::from(io::ErrorKind::NotFound));
        assert!(!is_broken_pipe(&other));
    }
}
