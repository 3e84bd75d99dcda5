//! The command line: clap definitions, dispatch and exit codes. Commands
//! take their options and output streams and return an exit code; all format
//! logic lives in the library modules, all rendering in [`render`].
//!
//! Exit codes (all commands): 0 clean, 1 problems found in the input, 2 the
//! command could not run (bad usage, unreadable file).

use std::ffi::OsString;
use std::io::{self, Write};

use clap::{Parser, Subcommand, ValueEnum};

mod check;
mod k8s;
pub mod render;
mod status;

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
    /// YAML, as kubectl prints it (only `k8s get`).
    Yaml,
}

const EXAMPLES: &str = "\
Examples:
  etcd-rescue status backup.db                 what a snapshot or db holds (like etcdutl snapshot status)
  etcd-rescue check backup.db                  is this backup good? every problem, with page and offset
  etcd-rescue check -o json /backups/*.db      the same for scripts
  etcd-rescue k8s ls backup.db                 the Kubernetes objects in a dead cluster's snapshot
  etcd-rescue k8s get backup.db deploy web -n prod -o yaml
  etcd-rescue k8s dump backup.db --out manifests/ --for-apply

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
    pub output: Format,
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
    /// the sha256 trailer.
    #[command(
        after_help = "Example:\n  etcd-rescue check snapshot.db\n  etcd-rescue check -o json backups/*.db\n\nExit codes: 0 no problems, 1 problems found (warnings or errors), 2 a file could not be read."
    )]
    Check(check::CheckArgs),
    /// Kubernetes objects from a dead cluster's files: list them, print them
    /// as kubectl would, or dump the whole cluster as manifests (decrypting
    /// values encrypted at rest with the apiserver's EncryptionConfiguration).
    #[command(subcommand)]
    K8s(k8s::K8sCommand),
}

/// Parses `args` and runs the command, writing to `out` and `err`.
/// Returns the process exit code.
pub fn run<I, T>(args: I, out: &mut dyn Write, err: &mut dyn Write) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_ERROR } else { EXIT_OK };
            let text = e.render().ansi().to_string();
            let _ = if e.use_stderr() {
                err.write_all(text.as_bytes())
            } else {
                out.write_all(text.as_bytes())
            };
            return code;
        }
    };
    let result = match &cli.command {
        Command::Status(_) | Command::Check(_) if cli.output == Format::Yaml => Err(anyhow::anyhow!(
            "-o yaml is only for `k8s get`; use -o table or -o json"
        )),
        Command::Status(a) => status::run(a, cli.output, out, err),
        Command::Check(a) => check::run(a, cli.output, out, err),
        Command::K8s(c) => k8s::run(c, cli.output, out, err),
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

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<io::Error>())
        .any(|io| io.kind() == io::ErrorKind::BrokenPipe)
}

/// A path argument as shown in messages.
pub(crate) fn show_path(p: &std::path::Path) -> String {
    p.display().to_string()
}
