//! Object stores: backups read where they live, in `s3://`, `gs://`,
//! `az://` (`azure://`) and `http(s)://` URLs.
//!
//! A URL names one object, a prefix (every object under it) or a glob over
//! keys (`s3://b/etcd/*/etcd-snapshot-*`). Objects are listed with their
//! size, ETag and version, and read by streaming them to a spill file in a
//! scratch dir: every reader here needs random access, and a multi-GB
//! snapshot is never held in memory. The spill file is deleted as soon as it
//! has been read; [`Store::download`] checks the free space first.
//!
//! Credentials are each cloud's own, as its users already set them:
//! - S3: `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`,
//!   `AWS_PROFILE` and the shared credentials and config files, web
//!   identity (EKS), container credentials (ECS) and instance metadata;
//!   `AWS_ENDPOINT_URL` for S3-compatible stores (MinIO, Ceph RGW), which
//!   are addressed path-style unless `AWS_VIRTUAL_HOSTED_STYLE_REQUEST=true`;
//! - GCS: `GOOGLE_SERVICE_ACCOUNT` (a key file), `GOOGLE_APPLICATION_CREDENTIALS`,
//!   gcloud's application default credentials, the GCE metadata server;
//! - Azure: `AZURE_STORAGE_ACCOUNT_NAME` with `AZURE_STORAGE_ACCOUNT_KEY`,
//!   a SAS (`AZURE_STORAGE_SAS_KEY`), a service principal or managed
//!   identity; `AZURE_STORAGE_USE_EMULATOR=true` for Azurite;
//! - HTTP: none (a plain GET; listing needs WebDAV).
//!
//! Requests are retried with exponential backoff on throttling (HTTP 429,
//! 503), server errors and dropped connections ([`RemoteOptions::retries`]).

mod error;
mod layout;
mod profile;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

use futures_util::StreamExt;
use object_store::path::Path as Key;
use object_store::{ClientOptions, GetOptions, ObjectStore, ObjectStoreExt, RetryConfig};

pub use error::RemoteError;

use crate::atomic::Scratch;

/// The URL schemes read.
pub const SCHEMES: [&str; 8] = [
    "s3://", "s3a://", "gs://", "gcs://", "az://", "azure://", "http://", "https://",
];

/// Whether `s` is an object store URL rather than a local path.
pub fn is_url(s: &str) -> bool {
    SCHEMES
        .iter()
        .any(|p| s.len() > p.len() && s.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes()))
}

/// Which service a URL is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// Amazon S3 and S3-compatible stores.
    S3,
    /// Google Cloud Storage.
    Gcs,
    /// Azure Blob Storage.
    Azure,
    /// A plain HTTP(S) server.
    Http,
}

/// A parsed URL: the store (bucket or container, or an HTTP origin) and
/// what to read in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreTarget {
    /// The URL as given.
    pub url: String,
    /// The service.
    pub service: Service,
    /// `scheme://bucket` (or the HTTP origin): object URLs are this plus `/key`.
    pub base: String,
    /// The key, or the key prefix, after the bucket (no leading `/`).
    pub key: String,
    /// The glob the keys must match, when the URL holds `*`, `?` or `[`.
    pub glob: Option<String>,
}

impl StoreTarget {
    /// Parses an object store URL.
    pub fn parse(url: &str) -> Result<StoreTarget, RemoteError> {
        let bad = |why: &str| RemoteError::BadUrl {
            url: redact(url),
            why: why.to_string(),
        };
        let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("no scheme"))?;
        let service = match scheme.to_ascii_lowercase().as_str() {
            "s3" | "s3a" => Service::S3,
            "gs" | "gcs" => Service::Gcs,
            "az" | "azure" => Service::Azure,
            "http" | "https" => Service::Http,
            _ => return Err(bad("not an s3://, gs://, az://, azure:// or http(s):// URL")),
        };
        if rest.contains('?') {
            return Err(bad(
                "URLs with a query (a presigned URL, a SAS token) are not read: download the object with curl and give the file, or give the bucket's credentials",
            ));
        }
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        if host.is_empty() {
            return Err(bad(match service {
                Service::Azure => "no container named",
                Service::Http => "no host named",
                _ => "no bucket named",
            }));
        }
        let scheme = scheme.to_ascii_lowercase();
        let key = path.trim_start_matches('/').to_string();
        let glob = key.contains(['*', '?', '[']).then(|| key.clone());
        if let Some(g) = &glob {
            glob::Pattern::new(g).map_err(|e| bad(&format!("bad pattern: {e}")))?;
        }
        Ok(StoreTarget {
            url: url.to_string(),
            service,
            base: format!("{scheme}://{host}"),
            key,
            glob,
        })
    }

    /// The key prefix a listing starts from: the key, or the directories
    /// before the glob's first wildcard.
    fn list_prefix(&self) -> &str {
        match &self.glob {
            Some(g) => {
                let first = g.find(['*', '?', '[']).unwrap_or(g.len());
                g[..first].rfind('/').map_or("", |i| &g[..i])
            }
            None => self.key.trim_end_matches('/'),
        }
    }
}

/// One object.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct StoreObject {
    /// Its URL.
    pub url: String,
    /// Its key in the bucket.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its ETag, where the store gives one.
    pub etag: Option<String>,
    /// Its version, where the bucket is versioned.
    pub version: Option<String>,
    /// When it was last written (Unix seconds).
    pub modified: i64,
}

impl StoreObject {
    /// Its file name (the key's last component).
    pub fn name(&self) -> &str {
        self.key.rsplit('/').next().unwrap_or(&self.key)
    }
}

/// How to talk to stores.
#[derive(Clone, Copy, Debug)]
pub struct RemoteOptions {
    /// Retries of one request (throttling, server errors, dropped
    /// connections), with exponential backoff.
    pub retries: usize,
    /// Give up retrying one request after this long.
    pub retry_timeout: Duration,
    /// Downloads at once.
    pub downloads: usize,
    /// Give up on a connection that sends nothing for this long (the
    /// request is retried).
    pub read_timeout: Duration,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        RemoteOptions {
            retries: 8,
            retry_timeout: Duration::from_secs(180),
            downloads: 4,
            read_timeout: Duration::from_secs(60),
        }
    }
}

/// What a listing found.
#[derive(Debug, Default)]
pub struct Listing {
    /// The objects to read, in key order.
    pub objects: Vec<StoreObject>,
    /// Keys left out, with why (k3s metadata sidecars, gardener's chunk
    /// parts, empty objects).
    pub left_out: Vec<(String, &'static str)>,
}

/// A connection to one bucket, container or HTTP origin.
pub struct Store {
    target: StoreTarget,
    store: Arc<dyn ObjectStore>,
    gate: Arc<Gate>,
}

/// The tokio runtime every store shares: two threads drive the network
/// while the callers' threads wait.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        // rustls's ring provider, installed once for the whole process
        // (deprecated only for lacking post-quantum key exchange, which
        // object stores do not require).
        #[allow(deprecated)]
        let _ = rustls::crypto::ring::default_provider().install_default();
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("etcd-rescue-net")
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

impl Store {
    /// Connects (lazily: nothing is sent until the first request) to the
    /// store of `target`, with the credentials of the environment.
    pub fn connect(target: &StoreTarget, opts: &RemoteOptions) -> Result<Store, RemoteError> {
        let client = ClientOptions::new()
            .with_allow_http(true)
            .with_connect_timeout(Duration::from_secs(10))
            // A multi-GB GET takes longer than any fixed request timeout:
            // a stalled one is cut by the read timeout instead (and retried).
            .with_timeout_disabled()
            .with_read_timeout(opts.read_timeout)
            .with_pool_idle_timeout(Duration::from_secs(30));
        let retry = RetryConfig {
            max_retries: opts.retries,
            retry_timeout: opts.retry_timeout,
            ..RetryConfig::default()
        };
        let _guard = runtime().enter();
        // Each service's builder, with the same client and retry settings.
        macro_rules! build {
            ($builder:expr, $url:expr) => {
                $builder
                    .with_url($url)
                    .with_client_options(client)
                    .with_retry(retry)
                    .build()
                    .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
            };
        }
        use object_store::{azure, gcp, http};
        let built: object_store::Result<Arc<dyn ObjectStore>> = match target.service {
            Service::S3 => build!(profile::s3_builder(), &target.base),
            Service::Gcs => build!(gcp::GoogleCloudStorageBuilder::from_env(), &target.base),
            Service::Azure => build!(azure::MicrosoftAzureBuilder::from_env(), azure_url(&target.base)),
            Service::Http => build!(http::HttpBuilder::new(), &target.base),
        };
        let store = built.map_err(|e| error::describe(&target.base, &e))?;
        Ok(Store {
            target: target.clone(),
            store,
            gate: Arc::new(Gate::new(opts.downloads.max(1))),
        })
    }

    /// The objects the URL names: the one object its key names, or every
    /// object under it as a prefix, or every key its glob matches.
    pub fn list(&self) -> Result<Listing, RemoteError> {
        let t = &self.target;
        let rt = runtime();
        // The one object the key names, else what is under it as a prefix
        // (some stores answer a HEAD of a "directory" with an error).
        let mut head_error = None;
        if t.glob.is_none() && !t.key.is_empty() && !t.key.ends_with('/') {
            match rt.block_on(self.store.head(&key_of(&t.key))) {
                Ok(meta) => {
                    return Ok(Listing {
                        objects: vec![self.object(meta)],
                        left_out: Vec::new(),
                    });
                }
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => head_error = Some(error::describe(&t.url, &e)),
            }
            // HTTP servers without WebDAV cannot list: the one object or nothing.
            if t.service == Service::Http {
                return Err(head_error.unwrap_or(RemoteError::NotFound { url: redact(&t.url) }));
            }
            if let Some(e @ (RemoteError::Denied { .. } | RemoteError::Unauthenticated { .. })) = head_error {
                return Err(e);
            }
        }
        let prefix = t.list_prefix();
        let prefix_key = (!prefix.is_empty()).then(|| key_of(prefix));
        let metas: Vec<object_store::ObjectMeta> = rt
            .block_on(async {
                let mut s = self.store.list(prefix_key.as_ref());
                let mut v = Vec::new();
                while let Some(m) = s.next().await {
                    v.push(m?);
                }
                Ok::<_, object_store::Error>(v)
            })
            .map_err(|e| error::describe(&t.url, &e))?;
        let pattern = t.glob.as_deref().and_then(|g| glob::Pattern::new(g).ok());
        let mut listing = Listing::default();
        for m in metas {
            let key = m.location.to_string();
            if let Some(p) = &pattern
                && !p.matches_with(
                    &key,
                    glob::MatchOptions {
                        require_literal_separator: true,
                        ..Default::default()
                    },
                )
            {
                continue;
            }
            match layout::left_out(&key, m.size) {
                Some(why) => listing.left_out.push((format!("{}/{key}", t.base), why)),
                None => listing.objects.push(self.object(m)),
            }
        }
        listing.objects.sort();
        if listing.objects.is_empty() && listing.left_out.is_empty() {
            return Err(head_error.unwrap_or(RemoteError::NotFound { url: redact(&t.url) }));
        }
        Ok(listing)
    }

    fn object(&self, m: object_store::ObjectMeta) -> StoreObject {
        let key = m.location.to_string();
        StoreObject {
            url: format!("{}/{key}", self.target.base),
            key,
            size: m.size,
            etag: m.e_tag,
            version: m.version,
            modified: m.last_modified.timestamp(),
        }
    }

    /// Streams `obj` into a new spill file in a scratch dir (named as the
    /// object is, so that names still say what a file is), after checking
    /// that the scratch filesystem has room. The read is pinned to the
    /// ETag listed: an object replaced meanwhile is an error, not a mix.
    pub fn download(&self, obj: &StoreObject) -> Result<Spill, RemoteError> {
        let _slot = self.gate.enter();
        crate::progress::begin("downloading", obj.size);
        let scratch = Scratch::new().map_err(|e| RemoteError::Spill {
            url: obj.url.clone(),
            msg: format!("cannot create a scratch dir: {e}"),
        })?;
        room_for(scratch.path(), obj)?;
        let path = scratch.path().join(safe_name(obj.name()));
        let spill = |msg: String| RemoteError::Spill {
            url: obj.url.clone(),
            msg,
        };
        let mut file = std::fs::File::create(&path).map_err(|e| spill(format!("{}: {e}", path.display())))?;
        let opts = GetOptions {
            if_match: obj.etag.clone(),
            version: obj.version.clone(),
            ..GetOptions::default()
        };
        let key = key_of(&obj.key);
        let written = runtime().block_on(async {
            let got = self.store.get_opts(&key, opts).await?;
            let mut stream = got.into_stream();
            let mut n = 0u64;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk?;
                file.write_all(&chunk).map_err(|e| object_store::Error::Generic {
                    store: "spill",
                    source: Box::new(e),
                })?;
                n += chunk.len() as u64;
                crate::progress::advance(chunk.len() as u64);
            }
            Ok::<_, object_store::Error>(n)
        });
        let n = written.map_err(|e| match e {
            object_store::Error::Generic {
                store: "spill",
                source,
            } => spill(format!("{}: {source}", path.display())),
            e => error::describe(&obj.url, &e),
        })?;
        if n != obj.size {
            return Err(RemoteError::Truncated {
                url: obj.url.clone(),
                got: n,
                listed: obj.size,
            });
        }
        Ok(Spill {
            path,
            url: obj.url.clone(),
            _scratch: scratch,
        })
    }
}

/// A downloaded object: a file in a private scratch dir, removed when dropped.
#[derive(Debug)]
pub struct Spill {
    /// The file.
    pub path: PathBuf,
    /// The object's URL.
    pub url: String,
    _scratch: Scratch,
}

impl Spill {
    /// Says `text` with the spill file's path turned back into the URL.
    pub fn rename(&self, text: &str) -> String {
        text.replace(&self.path.display().to_string(), &self.url)
    }
}

/// Downloads at once, across the threads of one run.
struct Gate {
    free: Mutex<usize>,
    cv: Condvar,
}

struct Slot<'g>(&'g Gate);

impl Gate {
    fn new(n: usize) -> Gate {
        Gate {
            free: Mutex::new(n),
            cv: Condvar::new(),
        }
    }

    fn enter(&self) -> Slot<'_> {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        while *free == 0 {
            free = self.cv.wait(free).unwrap_or_else(|p| p.into_inner());
        }
        *free -= 1;
        Slot(self)
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut free = self.0.free.lock().unwrap_or_else(|p| p.into_inner());
        *free += 1;
        self.0.cv.notify_one();
    }
}

/// A key as the store names it (a listed key is taken as it is; one typed
/// by a user is encoded where object_store's rules require it).
fn key_of(k: &str) -> Key {
    Key::parse(k).unwrap_or_else(|_| Key::from(k))
}

/// A file name safe to create: the object's name without path separators.
fn safe_name(name: &str) -> String {
    let n: String = name
        .chars()
        .map(|c| if c == '/' || c == '\0' { '_' } else { c })
        .collect();
    if n.is_empty() || n == "." || n == ".." {
        "object".into()
    } else {
        n
    }
}

/// Refuses a download the scratch filesystem has no room for.
fn room_for(dir: &Path, obj: &StoreObject) -> Result<(), RemoteError> {
    let free = crate::source::free_space(dir).unwrap_or(u64::MAX);
    if obj.size > free {
        return Err(RemoteError::NoRoom {
            url: obj.url.clone(),
            dir: dir.parent().unwrap_or(dir).display().to_string(),
            need: obj.size,
            free,
        });
    }
    Ok(())
}

/// The URL object_store's Azure builder reads: `az://container` (the account
/// comes from the environment).
fn azure_url(base: &str) -> String {
    match base.split_once("://") {
        Some((_, rest)) => format!("az://{rest}"),
        None => base.to_string(),
    }
}

/// A URL with its query (a SAS token, a signature) cut off, for messages.
pub fn redact(url: &str) -> String {
    match url.split_once('?') {
        Some((u, _)) => format!("{u}?…"),
        None => url.to_string(),
    }
}

/// Lists `url` and downloads the one object it names, for the commands
/// that read one snapshot: a URL that matches several objects is refused
/// with their names.
pub fn fetch_one(url: &str, opts: &RemoteOptions) -> Result<(StoreObject, Spill), RemoteError> {
    let target = StoreTarget::parse(url)?;
    let store = Store::connect(&target, opts)?;
    let listing = store.list()?;
    match listing.objects.as_slice() {
        [one] => {
            let spill = store.download(one)?;
            Ok((one.clone(), spill))
        }
        [] => Err(RemoteError::NotFound { url: redact(url) }),
        many => Err(RemoteError::Ambiguous {
            url: redact(url),
            count: many.len(),
            first: many.iter().take(3).map(|o| o.url.clone()).collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_into_store_and_key() {
        let t = StoreTarget::parse("s3://backups/etcd/prod/").unwrap();
        assert_eq!(
            (t.service, t.base.as_str(), t.key.as_str()),
            (Service::S3, "s3://backups", "etcd/prod/")
        );
        assert_eq!(t.list_prefix(), "etcd/prod");
        let t = StoreTarget::parse("az://c/a/*/etcd-snapshot-*").unwrap();
        assert_eq!(t.service, Service::Azure);
        assert_eq!(t.list_prefix(), "a");
        assert_eq!(t.glob.as_deref(), Some("a/*/etcd-snapshot-*"));
        let t = StoreTarget::parse("https://example.com:8443/b/snap.db").unwrap();
        assert_eq!(
            (t.base.as_str(), t.key.as_str()),
            ("https://example.com:8443", "b/snap.db")
        );
        assert!(StoreTarget::parse("s3:///x").is_err());
        assert!(StoreTarget::parse("ftp://h/x").is_err());
        assert!(StoreTarget::parse("gs://b/[x").is_err());
        let e = StoreTarget::parse("https://b.s3.amazonaws.com/k?X-Amz-Signature=SECRET")
            .unwrap_err()
            .to_string();
        assert!(e.contains("presigned") && !e.contains("SECRET"), "{e}");
        assert!(is_url("S3://b") && is_url("azure://c/x") && !is_url("./s3:/x") && !is_url("s3://"));
    }

    #[test]
    fn secrets_in_queries_are_not_shown() {
        assert_eq!(
            redact("https://a.blob.core.windows.net/c/x?sv=1&sig=SECRET"),
            "https://a.blob.core.windows.net/c/x?…"
        );
    }

    #[test]
    fn names_are_safe_file_names() {
        assert_eq!(safe_name(".."), "object");
        assert_eq!(
            safe_name("etcd-snapshot-n1-1700000000.zip"),
            "etcd-snapshot-n1-1700000000.zip"
        );
    }
}
