//! What can go wrong reading an object store, named for the person who
//! has to fix it: the object, and whether it is missing, forbidden,
//! throttled, unreachable or changed. No message carries a credential or a
//! signed URL's query.

use super::redact;

/// Errors reading an object store.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The URL cannot be read as one.
    #[error("{url}: not a usable object store URL: {why}")]
    BadUrl {
        /// The URL.
        url: String,
        /// Why.
        why: String,
    },
    /// No such bucket, container or object, or nothing under the prefix.
    #[error("{url}: not found: no such bucket, container or object, or nothing matches")]
    NotFound {
        /// The URL.
        url: String,
    },
    /// The credentials in use may not read it.
    #[error("{url}: access denied: the credentials in use may not read it ({detail})")]
    Denied {
        /// The URL.
        url: String,
        /// The store's words.
        detail: String,
    },
    /// No usable credentials.
    #[error("{url}: not authenticated: no valid credentials were found or they were refused ({detail})")]
    Unauthenticated {
        /// The URL.
        url: String,
        /// The store's words.
        detail: String,
    },
    /// The store kept throttling (HTTP 429/503) until the retries ran out.
    #[error(
        "{url}: the store is throttling requests (HTTP 429/503) and the retries ran out: try again later or with fewer --download-jobs ({detail})"
    )]
    Throttled {
        /// The URL.
        url: String,
        /// The store's words.
        detail: String,
    },
    /// The store cannot be reached (refused, reset, timed out, DNS).
    #[error("{url}: cannot reach the store: {detail}")]
    Unreachable {
        /// The URL.
        url: String,
        /// What failed.
        detail: String,
    },
    /// The object was replaced while it was read.
    #[error("{url}: the object changed while it was read (its ETag moved): verify it again")]
    Changed {
        /// The URL.
        url: String,
    },
    /// The download ended short of the listed size.
    #[error("{url}: the download ended after {got} bytes of the {listed} listed")]
    Truncated {
        /// The URL.
        url: String,
        /// Bytes received.
        got: u64,
        /// Bytes listed.
        listed: u64,
    },
    /// Not enough free space for the spill file.
    #[error(
        "{url}: needs {need} bytes of scratch space to be read and {dir} has {free} free: set TMPDIR to a larger filesystem"
    )]
    NoRoom {
        /// The URL.
        url: String,
        /// The scratch filesystem's dir.
        dir: String,
        /// Bytes needed.
        need: u64,
        /// Bytes free.
        free: u64,
    },
    /// The spill file could not be written.
    #[error("{url}: cannot write the downloaded copy: {msg}")]
    Spill {
        /// The URL.
        url: String,
        /// What failed.
        msg: String,
    },
    /// A command that reads one snapshot was given a URL matching several.
    #[error("{url}: matches {count} objects ({}...): name one", first.join(", "))]
    Ambiguous {
        /// The URL.
        url: String,
        /// How many matched.
        count: usize,
        /// The first few.
        first: Vec<String>,
    },
    /// Anything else the store said.
    #[error("{url}: {detail}")]
    Other {
        /// The URL.
        url: String,
        /// The store's words.
        detail: String,
    },
}

/// The whole chain of an error, each URL in it without its query.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        cur = s.source();
    }
    store_words(&parts.join(": "))
        .split(' ')
        .map(|w| {
            if w.contains("://") {
                redact(w)
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A store's XML error body cut down to its code and message: AWS's
/// `SignatureDoesNotMatch` body also carries the access key ID, the string
/// signed and the signature, which have no place in a message.
fn store_words(text: &str) -> String {
    let Some(start) = text.find("<?xml").or_else(|| text.find("<Error>")) else {
        return text.to_string();
    };
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let from = text[start..].find(&open)? + start + open.len();
        let to = text[from..].find(&format!("</{name}>"))? + from;
        Some(text[from..to].to_string())
    };
    let words = match (tag("Code"), tag("Message")) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c,
        _ => "the store's error document".to_string(),
    };
    format!("{}{words}", &text[..start])
}

/// Names an object_store error for `url`.
pub(super) fn describe(url: &str, e: &object_store::Error) -> RemoteError {
    use object_store::Error as E;
    let url = redact(url);
    let detail = chain(e);
    let has = |words: &[&str]| words.iter().any(|w| detail.contains(w));
    match e {
        E::NotFound { .. } => RemoteError::NotFound { url },
        E::Precondition { .. } => RemoteError::Changed { url },
        E::PermissionDenied { .. } => RemoteError::Denied { url, detail },
        E::Unauthenticated { .. } => RemoteError::Unauthenticated { url, detail },
        _ if has(&[
            "NoSuchBucket",
            "ContainerNotFound",
            "NoSuchKey",
            "BlobNotFound",
            "404 Not Found",
        ]) =>
        {
            RemoteError::NotFound { url }
        }
        // A wrong key is refused with 403 too: say so before "denied".
        _ if has(&[
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "AuthenticationFailed",
            "401 Unauthorized",
        ]) =>
        {
            RemoteError::Unauthenticated { url, detail }
        }
        _ if has(&[
            "AccessDenied",
            "403 Forbidden",
            "AuthorizationFailure",
            "AuthorizationPermissionMismatch",
        ]) =>
        {
            RemoteError::Denied { url, detail }
        }
        _ if has(&[
            "SlowDown",
            "429 Too Many Requests",
            "503 Service Unavailable",
            "ServerBusy",
            "Throttl",
            "TooManyRequests",
        ]) =>
        {
            RemoteError::Throttled { url, detail }
        }
        _ if has(&[
            "Connection refused",
            "connection refused",
            "error sending request",
            "dns error",
            "timed out",
            "connection reset",
            "Connection reset",
            "error trying to connect",
        ]) =>
        {
            RemoteError::Unreachable { url, detail }
        }
        _ => RemoteError::Other { url, detail },
    }
}

#[cfg(test)]
mod tests {
    use super::store_words;

    #[test]
    fn store_error_bodies_keep_code_and_message_only() {
        let body = "403 Forbidden: <?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match</Message><AWSAccessKeyId>AKIAXXXX</AWSAccessKeyId><StringToSign>AWS4</StringToSign></Error>";
        let w = store_words(body);
        assert_eq!(
            w,
            "403 Forbidden: SignatureDoesNotMatch: The request signature we calculated does not match"
        );
        assert!(!w.contains("AKIA"));
        assert_eq!(store_words("plain words"), "plain words");
    }
}
