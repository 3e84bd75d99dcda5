//! `etcd-rescue k8s ls|get|dump`: Kubernetes objects from a snapshot or db
//! file, with no etcd and no apiserver.

mod diff;

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use base64::Engine;
use serde::Serialize;
use serde_json::Value;

use super::render::{self, human_bytes};
use super::{EXIT_OK, EXIT_PROBLEMS, Format, SourceDb, show_path};
use crate::k8s::dump::{self, DumpOptions};
use crate::k8s::encryption::Keyring;
use crate::k8s::filter::{Filter, GetQuery, NamespaceMapping, Selector};
use crate::k8s::keys::{self, DEFAULT_PREFIX};
use crate::k8s::object::{Context, Object};
use crate::k8s::{list, yaml};
use crate::mvcc::keyspace::Keyspace;

/// The `k8s` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum K8sCommand {
    /// List objects like `kubectl get`: resource, namespace, name,
    /// apiVersion, kind, revision, size and encoding (protobuf, json, cbor,
    /// or the encryption provider and key). Lists every namespace unless
    /// -n is given.
    #[command(
        after_help = "Examples:\n  etcd-rescue k8s ls backup.db\n  etcd-rescue k8s ls backup.db secrets -n prod\n  etcd-rescue k8s ls backup.db deploy --rev 1200 --include-deleted\n  etcd-rescue k8s ls backup.db -o json | jq '.[] | select(.kind==\"Secret\")'\n\nExit codes: 0 every object decoded, 1 some did not (listed with the reason), 2 could not run."
    )]
    Ls(LsArgs),
    /// Print objects as `kubectl get -o yaml|json` shows them (default: a
    /// table). Namespaced objects come from the `default` namespace unless
    /// -n or -A is given.
    #[command(
        after_help = "Examples:\n  etcd-rescue k8s get backup.db deployment web -n prod -o yaml\n  etcd-rescue k8s get backup.db secrets -n prod -o json --encryption-config enc.yaml\n  etcd-rescue k8s get backup.db cm -A --rev 5000\n\nExit codes: 0 found and decoded, 1 nothing found or an object did not decode, 2 could not run."
    )]
    Get(K8sGetArgs),
    /// Write every object as YAML under DIR/<namespace>/<resource>/<name>.yaml
    /// (cluster-scoped objects under DIR/_cluster/), one multi-document file
    /// per namespace (--format multi-doc), or a tar stream (--out -), with a
    /// progress bar and a summary. --for-apply readies it for a new cluster
    /// after Velero's restore rules, in phases that DIR/apply.sh applies in
    /// order.
    #[command(
        after_help = "Examples:\n  etcd-rescue k8s dump backup.db --out restored/\n  etcd-rescue k8s dump backup.db --out apply/ --for-apply -n prod --namespace-mapping prod:prod-restored\n  sh apply/apply.sh\n  etcd-rescue k8s dump backup.db --out - --format multi-doc -l app=web > web.yaml\n\nExit codes: 0 every object written, 1 some objects could not be decoded (listed), 2 could not run."
    )]
    Dump(DumpArgs),
    /// The object-level difference between two backups (SRC_A and SRC_B),
    /// or between two revisions of one (--rev N for A, --rev-b M for B; B
    /// defaults to A's source at its newest revision): objects added,
    /// deleted, and changed with each changed field (`path: old -> new`).
    /// metadata.resourceVersion, metadata.managedFields and status are not
    /// compared (--include-status compares status); Secret values are
    /// redacted unless --show-secrets.
    #[command(
        after_help = "Examples:\n  etcd-rescue k8s diff monday.db tuesday.db\n  etcd-rescue k8s diff backup.db --rev 1200 --rev-b 1300 -n prod\n  etcd-rescue k8s diff monday.db tuesday.db --exclude-kind events,leases -o json\n  etcd-rescue k8s diff before.db after.db --kind deploy,cm -l app=web\n\nExit codes: 0 no differences, 1 differences found (like diff(1)), or objects that could not be decoded (listed), 2 could not run."
    )]
    Diff(diff::K8sDiffArgs),
}

impl K8sCommand {
    /// Whether the command draws its own progress bar (`dump` counts objects).
    pub(super) fn draws_progress(&self) -> bool {
        matches!(self, K8sCommand::Dump(_))
    }

    /// Its input paths.
    pub(super) fn inputs_mut(&mut self) -> Vec<&mut PathBuf> {
        match self {
            K8sCommand::Ls(a) => vec![&mut a.common.source],
            K8sCommand::Get(a) => vec![&mut a.common.source],
            K8sCommand::Dump(a) => vec![&mut a.common.source],
            K8sCommand::Diff(a) => a.inputs_mut(),
        }
    }
}

/// Options every k8s command takes.
#[derive(Debug, clap::Args)]
pub struct Common {
    /// A snapshot file, a db file (member/snap/db), or an etcd data directory
    /// (its db plus the committed WAL entries etcd would apply at start).
    pub source: PathBuf,
    /// Read the keyspace at this revision instead of the newest.
    #[arg(long, value_name = "N")]
    pub rev: Option<i64>,
    /// The apiserver's EncryptionConfiguration file, to decrypt aescbc,
    /// aesgcm and secretbox values (keys are never printed).
    #[arg(long, value_name = "FILE")]
    pub encryption_config: Option<PathBuf>,
    /// The apiserver's --etcd-prefix (`--prefix` is an old spelling).
    #[arg(long = "etcd-prefix", alias = "prefix", default_value = DEFAULT_PREFIX, value_name = "PREFIX")]
    pub prefix: String,
    /// For a data dir: read its db alone, without the committed WAL entries
    /// etcd would apply on top of it at start.
    #[arg(long)]
    pub db_only: bool,
}

/// Which objects: the same flags on `k8s dump` and `k8s diff`.
#[derive(Debug, clap::Args)]
pub struct FilterArgs {
    /// Only these namespaces (repeat or comma-separate); cluster-scoped
    /// objects are then left out, except these namespaces' own objects.
    #[arg(short = 'n', long, value_delimiter = ',', value_name = "NS")]
    pub namespace: Vec<String>,
    /// Every namespace (the default; for kubectl's habit).
    #[arg(short = 'A', long, conflicts_with = "namespace")]
    pub all_namespaces: bool,
    /// Only objects whose labels match, as `kubectl -l` takes it
    /// (`app=web,tier!=db,env in (a,b),!legacy`).
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    pub selector: Option<String>,
    /// Only these resources (plural, singular, kind or short name; repeat
    /// or comma-separate).
    #[arg(long, alias = "resource", value_delimiter = ',', value_name = "KIND")]
    pub kind: Vec<String>,
    /// Never these resources.
    #[arg(long, value_delimiter = ',', value_name = "KIND")]
    pub exclude_kind: Vec<String>,
}

impl FilterArgs {
    /// The library's filter.
    pub fn filter(&self) -> anyhow::Result<Filter> {
        Ok(Filter {
            namespaces: self.namespace.clone(),
            selector: self.selector.as_deref().map(Selector::parse).transpose()?,
            kinds: self.kind.clone(),
            exclude_kinds: self.exclude_kind.clone(),
        })
    }
}

/// Arguments of `k8s ls`.
#[derive(Debug, clap::Args)]
pub struct LsArgs {
    #[command(flatten)]
    common: Common,
    /// Only this resource (plural, singular, kind or short name: deploy, cm, svc...).
    resource: Option<String>,
    #[command(flatten)]
    filter: FilterArgs,
    /// Also list objects whose newest change is a deletion, with their last
    /// live version and the revision of the delete.
    #[arg(long)]
    include_deleted: bool,
}

/// Arguments of `k8s get`.
#[derive(Debug, clap::Args)]
pub struct K8sGetArgs {
    #[command(flatten)]
    common: Common,
    /// Resource (plural, singular, kind or short name).
    resource: String,
    /// Object name.
    name: Option<String>,
    /// Namespace (default: default).
    #[arg(short = 'n', long)]
    namespace: Option<String>,
    /// All namespaces.
    #[arg(short = 'A', long, conflicts_with = "namespace")]
    all_namespaces: bool,
    /// Only objects whose labels match, as `kubectl get -l` takes it.
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    selector: Option<String>,
    /// Also show deleted objects (their last live version).
    #[arg(long)]
    include_deleted: bool,
    /// Show Secret data in tables (YAML and JSON always carry it).
    #[arg(long)]
    show_secrets: bool,
}

/// Arguments of `k8s dump`.
#[derive(Debug, clap::Args)]
pub struct DumpArgs {
    #[command(flatten)]
    common: Common,
    /// Output directory (created if missing; must be empty unless
    /// --merge), or `-` for a tar stream on stdout (a YAML stream with
    /// --format multi-doc).
    #[arg(long, value_name = "DIR|-")]
    out: PathBuf,
    /// `files`: one file per object; `multi-doc`: one multi-document YAML
    /// per namespace (much faster for large clusters).
    #[arg(long, value_enum, default_value = "files")]
    format: DumpFormat,
    /// Write into an existing non-empty DIR: files there are replaced, and
    /// symlinks in it are never followed.
    #[arg(long)]
    merge: bool,
    /// Ready for a new cluster, after Velero's restore rules: strip what
    /// belonged to the old cluster (server-set metadata, status, pods'
    /// nodeName and token volumes, Services' cluster IPs and node ports,
    /// Jobs' controller-uid, ...), leave out what the new cluster makes
    /// itself (nodes, events, leases, token Secrets, controller-kept
    /// endpoints, automanaged APIServices, default RBAC, objects a dumped
    /// controller owns, ...), and lay the dump out in phases with
    /// DIR/apply.sh to apply them in order. DIR/etcd-rescue-report.jsonl
    /// says per object what was changed or left out, and why.
    #[arg(long)]
    for_apply: bool,
    #[command(flatten)]
    filter: FilterArgs,
    /// With --for-apply: keep objects whose controller is dumped too
    /// (Velero's behaviour; the controller adopts them).
    #[arg(long, requires = "for_apply")]
    include_owned: bool,
    /// With --for-apply: keep Services' node ports (Velero's
    /// --preserve-nodeports).
    #[arg(long, requires = "for_apply")]
    preserve_nodeports: bool,
    /// With --for-apply: move namespaces (`old:new`, repeat or
    /// comma-separate), as Velero's --namespace-mappings: objects, the
    /// Namespace itself, role binding subjects and PV claims.
    #[arg(long, requires = "for_apply", value_name = "OLD:NEW")]
    namespace_mapping: Vec<String>,
    /// Worker threads (default: one per core, at most 8).
    #[arg(short = 'j', long, default_value_t = 0, value_name = "N")]
    jobs: usize,
}

/// `k8s dump --format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DumpFormat {
    /// One file per object.
    Files,
    /// One multi-document YAML per namespace.
    MultiDoc,
}

/// An opened source: what etcd would serve from it, and the keyring.
pub(super) struct Source {
    pub(super) db: SourceDb,
    keyring: Option<Keyring>,
}

impl Source {
    pub(super) fn open(c: &Common, err: &mut dyn Write) -> anyhow::Result<Source> {
        let db = SourceDb::open(&c.source, c.db_only, err)?;
        let keyring = match &c.encryption_config {
            None => None,
            Some(p) => {
                let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", show_path(p)))?;
                Some(Keyring::parse(&text).with_context(|| show_path(p))?)
            }
        };
        Ok(Source { db, keyring })
    }

    pub(super) fn keyspace(&self, err: &mut dyn Write) -> anyhow::Result<Result<Keyspace<'_>, i32>> {
        match self.db.keyspace() {
            Ok(ks) => Ok(Ok(ks)),
            Err(e) => self.db.damaged(err, e).map(Err),
        }
    }

    pub(super) fn cx<'a>(&'a self, c: &'a Common) -> Context<'a> {
        Context {
            keyring: self.keyring.as_ref(),
            prefix: c.prefix.trim_end_matches('/'),
        }
    }

    /// The exit code, given the command's own: at least 1 for a damaged source.
    pub(super) fn exit(&self, code: i32) -> i32 {
        code.max(self.db.exit_code())
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Row<'a> {
    resource: &'a str,
    namespace: &'a str,
    name: &'a str,
    api_version: &'a str,
    kind: &'a str,
    revision: i64,
    create_revision: i64,
    version: i64,
    size: usize,
    encoding: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    deleted_at: Option<i64>,
    key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<&'a str>,
    /// Protobuf fields newer than the schema (skipped, as an older apiserver would).
    #[serde(skip_serializing_if = "is_zero")]
    unknown_fields: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn row(o: &Object) -> Row<'_> {
    Row {
        resource: &o.location.resource,
        namespace: &o.location.namespace,
        name: &o.location.name,
        api_version: &o.api_version,
        kind: &o.kind,
        revision: o.mod_revision,
        create_revision: o.create_revision,
        version: o.version,
        size: o.size,
        encoding: o.encoding_label(),
        deleted_at: o.deleted_at,
        key: &o.key,
        problem: o.problem.as_deref(),
        unknown_fields: o.unknown_fields,
    }
}

fn state(o: &Object) -> String {
    match o.deleted_at {
        None => "live".into(),
        Some(r) => {
            let when = o
                .deletion_timestamp
                .as_deref()
                .map(|t| format!(", deletion requested {t}"))
                .unwrap_or_default();
            format!("deleted at rev {r}{when}")
        }
    }
}

/// Reports objects that did not decode on stderr: each one while there are
/// few, then counts by reason. Returns whether there were any.
fn problems_footer(objs: &[Object], err: &mut dyn Write) -> anyhow::Result<bool> {
    const SHOWN: usize = 10;
    let bad: Vec<&Object> = objs.iter().filter(|o| o.problem.is_some()).collect();
    for o in bad.iter().take(SHOWN) {
        writeln!(
            err,
            "etcd-rescue: {}: {}",
            o.key,
            o.problem.as_deref().unwrap_or("")
        )?;
    }
    if bad.len() > SHOWN {
        let mut by: BTreeMap<&str, usize> = BTreeMap::new();
        for o in &bad {
            *by.entry(o.problem.as_deref().unwrap_or("")).or_default() += 1;
        }
        writeln!(
            err,
            "etcd-rescue: {} objects did not decode (-o json lists each one):",
            bad.len()
        )?;
        let mut by: Vec<(&str, usize)> = by.into_iter().collect();
        by.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        for (why, n) in by.iter().take(SHOWN) {
            writeln!(err, "  {n:>8}  {why}")?;
        }
        if by.len() > SHOWN {
            writeln!(err, "  ... and {} other reasons", by.len() - SHOWN)?;
        }
    }
    Ok(!bad.is_empty())
}

/// Runs a `k8s` subcommand.
pub fn run(cmd: &K8sCommand, fmt: Format, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<i32> {
    match cmd {
        K8sCommand::Ls(a) => ls(a, fmt, out, err),
        K8sCommand::Get(a) => get(a, fmt, out, err),
        K8sCommand::Dump(a) => dump_cmd(a, fmt, out, err),
        K8sCommand::Diff(a) => diff::run(a, fmt, out, err),
    }
}

fn ls(a: &LsArgs, fmt: Format, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<i32> {
    if fmt == Format::Yaml {
        bail!("ls prints a table or JSON (-o table|json); use `k8s get -o yaml` for manifests");
    }
    let src = Source::open(&a.common, err)?;
    let ks = match src.keyspace(err)? {
        Ok(ks) => ks,
        Err(code) => return Ok(code),
    };
    let cx = src.cx(&a.common);
    let filter = a.filter.filter()?;
    let keep = |o: &Object| {
        filter.matches(&o.location, &o.kind, o.body.as_ref())
            && a.resource
                .as_deref()
                .is_none_or(|r| keys::matches(r, &o.location.resource, &o.kind))
    };
    let (rev, objs) = match list::objects(
        &ks,
        a.common.rev,
        cx,
        a.include_deleted,
        a.resource.as_deref(),
        &keep,
        false,
    ) {
        Ok(x) => x,
        Err(e) => return src.db.kv_error(err, &e),
    };
    if fmt == Format::Json {
        let rows: Vec<Row<'_>> = objs.iter().map(row).collect();
        render::json(out, &rows)?;
    } else {
        let mut header = vec![
            "RESOURCE",
            "NAMESPACE",
            "NAME",
            "APIVERSION",
            "KIND",
            "REVISION",
            "SIZE",
            "ENCODING",
        ];
        if a.include_deleted {
            header.push("STATE");
        }
        let mut t = render::table(&header);
        for o in &objs {
            let mut r = vec![
                o.location.resource.clone(),
                o.location.namespace.clone(),
                o.location.name.clone(),
                o.api_version.clone(),
                o.kind.clone(),
                o.mod_revision.to_string(),
                human_bytes(o.size as u64),
                o.encoding_label(),
            ];
            if a.include_deleted {
                r.push(state(o));
            }
            t.add_row(r);
        }
        if !objs.is_empty() {
            writeln!(out, "{t}")?;
        }
        writeln!(err, "{} objects at revision {rev}", objs.len())?;
    }
    Ok(src.exit(if problems_footer(&objs, err)? {
        EXIT_PROBLEMS
    } else {
        EXIT_OK
    }))
}

fn redacted_data(o: &Object, show: bool) -> String {
    let Some(Value::Object(data)) = o.body.as_ref().and_then(|b| b.get("data")) else {
        return String::new();
    };
    data.iter()
        .map(|(k, v)| {
            let raw = v
                .as_str()
                .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
                .unwrap_or_default();
            if show {
                format!("{k}={}", String::from_utf8_lossy(&raw))
            } else {
                format!("{k}=<redacted, {} bytes>", raw.len())
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn get(a: &K8sGetArgs, fmt: Format, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<i32> {
    let src = Source::open(&a.common, err)?;
    let ks = match src.keyspace(err)? {
        Ok(ks) => ks,
        Err(code) => return Ok(code),
    };
    let cx = src.cx(&a.common);
    let query = GetQuery {
        resource: a.resource.clone(),
        name: a.name.clone(),
        namespace: (!a.all_namespaces).then(|| a.namespace.clone().unwrap_or_else(|| "default".into())),
        selector: a.selector.as_deref().map(Selector::parse).transpose()?,
    };
    let keep = |o: &Object| query.matches(&o.location, &o.kind, o.body.as_ref());
    let (rev, objs) = match list::objects(
        &ks,
        a.common.rev,
        cx,
        a.include_deleted,
        Some(&a.resource),
        &keep,
        true,
    ) {
        Ok(x) => x,
        Err(e) => return src.db.kv_error(err, &e),
    };
    if objs.is_empty()
        && let Some(code) = nothing_found(&query, &ks, a, cx, rev, fmt, err)?
    {
        return Ok(src.exit(code));
    }
    for o in objs.iter().filter(|o| o.deleted_at.is_some()) {
        writeln!(
            err,
            "etcd-rescue: note: {}/{} was deleted at revision {}; shown is its last live version (revision {})",
            o.location.resource,
            o.location.name,
            o.deleted_at.unwrap_or(0),
            o.mod_revision
        )?;
    }
    write_objects(out, fmt, a, &objs)?;
    Ok(src.exit(if problems_footer(&objs, err)? {
        EXIT_PROBLEMS
    } else {
        EXIT_OK
    }))
}

/// Nothing matched: what kubectl says. A name not found is exit 1; an
/// empty list of a resource the cluster has is an answer (an empty List
/// in JSON and YAML, exit 0 with a table); one it has nowhere is a mistake
/// (a typo, or not this cluster's data: exit 1). `None`: go on and print
/// the empty list.
fn nothing_found(
    query: &GetQuery,
    ks: &Keyspace<'_>,
    a: &K8sGetArgs,
    cx: Context<'_>,
    rev: i64,
    fmt: Format,
    err: &mut dyn Write,
) -> anyhow::Result<Option<i32>> {
    let where_ = query
        .namespace
        .as_ref()
        .map(|n| format!(" in namespace {n}"))
        .unwrap_or_default();
    if let Some(n) = &a.name {
        writeln!(
            err,
            "etcd-rescue: {} \"{n}\" not found{where_} at revision {rev}",
            a.resource
        )?;
        return Ok(Some(EXIT_PROBLEMS));
    }
    writeln!(
        err,
        "etcd-rescue: no {} found{where_} at revision {rev}",
        a.resource
    )?;
    let anywhere = |o: &Object| query.resource_matches(&o.location, &o.kind);
    let has = list::objects(ks, a.common.rev, cx, false, Some(&a.resource), &anywhere, false)
        .is_ok_and(|(_, all)| !all.is_empty());
    if !has {
        writeln!(
            err,
            "etcd-rescue: this cluster's data holds no {} at all",
            a.resource
        )?;
        return Ok(Some(EXIT_PROBLEMS));
    }
    Ok((fmt == Format::Table).then_some(EXIT_OK))
}

/// The objects as a table, JSON lines, or one object or a List (JSON or
/// YAML, as kubectl prints them).
fn write_objects(out: &mut dyn Write, fmt: Format, a: &K8sGetArgs, objs: &[Object]) -> anyhow::Result<()> {
    match fmt {
        Format::Table => {
            let secrets = objs.iter().any(Object::is_secret);
            let mut header = vec!["NAMESPACE", "NAME", "KIND", "REVISION", "ENCODING", "STATE"];
            if secrets {
                header.push("DATA");
            }
            let mut t = render::table(&header);
            for o in objs {
                let mut r = vec![
                    o.location.namespace.clone(),
                    o.location.name.clone(),
                    o.kind.clone(),
                    o.mod_revision.to_string(),
                    o.encoding_label(),
                    state(o),
                ];
                if secrets {
                    r.push(if o.is_secret() {
                        redacted_data(o, a.show_secrets)
                    } else {
                        String::new()
                    });
                }
                t.add_row(r);
            }
            writeln!(out, "{t}")?;
        }
        Format::Lines => {
            for o in objs {
                render::json_line(out, o.body.as_ref().unwrap_or(&Value::Null))?;
            }
        }
        Format::Json | Format::Yaml => {
            let bodies: Vec<Value> = objs
                .iter()
                .map(|o| o.body.clone().unwrap_or(Value::Null))
                .collect();
            let doc = if a.name.is_some() && bodies.len() == 1 {
                bodies.into_iter().next().unwrap_or(Value::Null)
            } else {
                serde_json::json!({
                    "apiVersion": "v1",
                    "items": bodies,
                    "kind": "List",
                    "metadata": {"resourceVersion": ""}
                })
            };
            if fmt == Format::Json {
                out.write_all(yaml::kubectl_json(&doc).as_bytes())?;
            } else {
                out.write_all(yaml::to_string(&doc).as_bytes())?;
            }
        }
    }
    Ok(())
}

/// A progress bar on stderr when it is a terminal.
struct Progress<'a> {
    err: &'a mut dyn Write,
    tty: bool,
    last: Instant,
    start: Instant,
}

impl Progress<'_> {
    fn tick(&mut self, done: usize, total: usize) {
        if !self.tty || (done != total && self.last.elapsed() < Duration::from_millis(200)) {
            return;
        }
        self.last = Instant::now();
        let pct = (done * 100).checked_div(total).unwrap_or(100);
        let bar: String = (0..30)
            .map(|i| if i * 100 < pct * 30 { '#' } else { '-' })
            .collect();
        let rate = done as f64 / self.start.elapsed().as_secs_f64().max(0.001);
        let _ = write!(
            self.err,
            "\r[{bar}] {pct:3}% {done}/{total} objects, {rate:.0}/s "
        );
        if done == total {
            let _ = writeln!(self.err);
        }
    }
}

fn dump_cmd(a: &DumpArgs, fmt: Format, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<i32> {
    if fmt == Format::Yaml {
        bail!("dump writes YAML files; its summary is a table or JSON (-o table|json)");
    }
    let to_stdout = a.out.as_os_str() == "-";
    let mapping = NamespaceMapping::parse(&a.namespace_mapping)?;
    let filter = a.filter.filter()?;
    let src = Source::open(&a.common, err)?;
    let ks = match src.keyspace(err)? {
        Ok(ks) => ks,
        Err(code) => return Ok(code),
    };
    let opts = DumpOptions {
        target: if to_stdout {
            // Its own handle on fd 1: the workers write the stream while this
            // thread holds the locked stdout.
            let fd = std::os::fd::AsFd::as_fd(&std::io::stdout())
                .try_clone_to_owned()
                .context("stdout")?;
            dump::DumpTarget::Stream(Box::new(std::io::BufWriter::with_capacity(
                1 << 20,
                std::fs::File::from(fd),
            )))
        } else {
            dump::DumpTarget::Dir(a.out.clone())
        },
        layout: match a.format {
            DumpFormat::Files => dump::DumpLayout::Files,
            DumpFormat::MultiDoc => dump::DumpLayout::MultiDoc,
        },
        for_apply: a.for_apply.then_some(dump::ApplyOptions {
            keep_owned: a.include_owned,
            preserve_nodeports: a.preserve_nodeports,
            mapping,
        }),
        filter,
        rev: a.common.rev,
        cx: src.cx(&a.common),
        jobs: a.jobs,
        merge: a.merge,
    };
    // The manifests own stdout: the summary goes to stderr, after them.
    let mut summary = Vec::new();
    let out: &mut dyn Write = if to_stdout { &mut summary } else { out };
    let start = Instant::now();
    let tty = std::io::stderr().is_terminal() && fmt == Format::Table;
    let s = {
        let mut p = Progress {
            err: &mut *err,
            tty,
            last: Instant::now() - Duration::from_secs(1),
            start,
        };
        match dump::dump(&ks, opts, &mut |d, t| p.tick(d, t)) {
            Ok(s) => s,
            Err(dump::DumpError::Kv(e)) => return src.db.kv_error(err, &e),
            Err(e) => return Err(e.into()),
        }
    };
    let secs = start.elapsed().as_secs_f64();
    if fmt == Format::Json {
        render::json(out, &s)?;
    } else {
        write_dump_summary(out, a, &s, secs, to_stdout)?;
    }
    if to_stdout {
        err.write_all(&summary)?;
    }
    Ok(src.exit(if s.failures.is_empty() {
        EXIT_OK
    } else {
        EXIT_PROBLEMS
    }))
}

/// The table of what `k8s dump` wrote, skipped and failed.
fn write_dump_summary(
    out: &mut dyn Write,
    a: &DumpArgs,
    s: &dump::DumpSummary,
    secs: f64,
    to_stdout: bool,
) -> anyhow::Result<()> {
    let mut t = render::table(&["RESOURCE", "WRITTEN", "SKIPPED", "FAILED"]);
    let mut by: BTreeMap<&str, &dump::ResourceCount> = BTreeMap::new();
    for (r, c) in &s.resources {
        by.insert(r, c);
    }
    for (r, c) in by {
        t.add_row(vec![
            r.to_string(),
            c.written.to_string(),
            c.skipped.to_string(),
            c.failed.to_string(),
        ]);
    }
    writeln!(out, "{t}")?;
    for (why, n) in &s.skipped {
        writeln!(out, "skipped {n}: {why}")?;
    }
    for (rule, n) in &s.changed {
        writeln!(out, "changed {n}: {rule}")?;
    }
    for f in &s.failures {
        writeln!(out, "FAILED {}: {}", f.key, f.problem)?;
    }
    if s.with_unknown_fields > 0 {
        writeln!(
            out,
            "{} objects had protobuf fields newer than etcd-rescue's schema (skipped, as an older apiserver would)",
            s.with_unknown_fields
        )?;
    }
    writeln!(
        out,
        "{} objects at revision {}: {} written, {} skipped, {} failed, in {:.1} s ({:.0} objects/s) -> {}",
        s.objects,
        s.revision,
        s.written,
        s.skipped.values().sum::<usize>(),
        s.failures.len(),
        secs,
        s.objects as f64 / secs.max(0.001),
        show_path(&a.out)
    )?;
    if a.for_apply && !to_stdout {
        writeln!(
            out,
            "phases: {}; per object: {}\nnext: sh {}",
            s.phases.join(", "),
            show_path(&a.out.join(dump::REPORT)),
            show_path(&a.out.join("apply.sh"))
        )?;
    }
    Ok(())
}
