//! The one error type of the registry client, and which of its cases are worth a retry.

use std::time::Duration;

use hoist_domain::Digest;

/// What went wrong talking to a registry. `is_retryable` tells a caller whether trying the
/// same operation again later may succeed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The registry answered with a status the operation does not accept.
    #[error("{method} {url}: {status}{}", describe(code.as_deref(), message))]
    Status {
        method: String,
        url: String,
        status: u16,
        /// The first `errors[].code` of the registry's JSON error body, if any.
        code: Option<String>,
        message: String,
        /// How long the registry asked us to wait (`Retry-After` or GHCR's message text).
        retry_after: Option<Duration>,
    },
    /// The request did not get an answer: connection refused or reset, timeout, TLS.
    #[error("{what}: {source}")]
    Transport {
        what: String,
        #[source]
        source: reqwest::Error,
    },
    /// The registry refused the credentials, or asked for credentials none were given for.
    #[error("authentication to {host} failed: {message}")]
    Auth { host: String, message: String },
    /// An upload's session token expired mid-way; a new session will get a fresh one.
    #[error("{host} refused a request with a token it had issued (expired?)")]
    TokenExpired { host: String },
    /// The bytes read from the source do not hash to the digest they were asked for by.
    #[error(
        "blob {expected} read from {from}: the bytes received ({received_size} of {expected_size}) \
         have digest {actual}; the upload was not finalized"
    )]
    DigestMismatch {
        from: String,
        expected: Digest,
        actual: String,
        expected_size: u64,
        received_size: u64,
    },
    /// A manifest fetched by digest does not hash to that digest.
    #[error("manifest {reference} of {repository} has digest {actual} instead")]
    ManifestDigestMismatch {
        repository: String,
        reference: String,
        actual: Digest,
    },
    /// Something the client cannot work with: an unknown media type, malformed JSON.
    #[error("{0}")]
    Unsupported(String),
    /// The registry broke the protocol: no `Location` on an upload, a garbled token answer.
    #[error("{host}: {message}")]
    Protocol { host: String, message: String },
}

fn describe(code: Option<&str>, message: &str) -> String {
    match (code, message.is_empty()) {
        (Some(code), false) => format!(" {code}: {message}"),
        (Some(code), true) => format!(" {code}"),
        (None, false) => format!(": {message}"),
        (None, true) => String::new(),
    }
}

impl Error {
    /// A transport failure, without the URL reqwest puts in its message: a redirect target
    /// (presigned blob storage) carries its credentials in the query string.
    pub(crate) fn transport(what: impl Into<String>, source: reqwest::Error) -> Error {
        Error::Transport {
            what: what.into(),
            source: source.without_url(),
        }
    }

    /// Whether the same operation may succeed if tried again after a wait: rate limits,
    /// server errors, dropped connections and timeouts, an expired upload token, and bytes
    /// corrupted in transit. Refusals (4xx), bad credentials and bad input are final.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Status { status, .. } => matches!(status, 408 | 429 | 500 | 502 | 503 | 504),
            Error::Transport { source, .. } => {
                source.is_timeout()
                    || source.is_connect()
                    || source.is_request()
                    || source.is_body()
                    || source.is_decode()
            }
            Error::TokenExpired { .. } | Error::DigestMismatch { .. } => true,
            Error::Auth { .. }
            | Error::ManifestDigestMismatch { .. }
            | Error::Unsupported(_)
            | Error::Protocol { .. } => false,
        }
    }

    /// The wait the registry asked for, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The HTTP status, when the registry answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
