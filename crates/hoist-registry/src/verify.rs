//! A byte stream that hashes what passes through it and releases the last chunk only once
//! the whole stream matched its digest and size, so an upload fed by it can never be
//! finalized with the wrong bytes.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures_util::Stream;
use hoist_domain::Digest;
use sha2::{Digest as _, Sha256};

use crate::Error;

/// A boxed stream of blob bytes.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, Error>> + Send>>;

/// Where the stream leaves its verdict when it fails, for the uploader to report: the HTTP
/// client only sees "the body failed".
pub(crate) type Verdict = Arc<Mutex<Option<Error>>>;

pub(crate) struct Verifying {
    inner: ByteStream,
    from: String,
    expected: Digest,
    expected_size: u64,
    hasher: Sha256,
    seen: u64,
    held: Option<Bytes>,
    done: bool,
    verdict: Verdict,
}

impl Verifying {
    pub fn new(inner: ByteStream, from: String, expected: Digest, expected_size: u64) -> Self {
        Verifying {
            inner,
            from,
            expected,
            expected_size,
            hasher: Sha256::new(),
            seen: 0,
            held: None,
            done: false,
            verdict: Verdict::default(),
        }
    }

    pub fn verdict(&self) -> Verdict {
        self.verdict.clone()
    }

    fn fail(&mut self, error: Error) -> Poll<Option<Result<Bytes, Error>>> {
        self.done = true;
        self.held = None;
        let shown = error.to_string();
        *self.verdict.lock().unwrap_or_else(PoisonError::into_inner) = Some(error);
        Poll::Ready(Some(Err(Error::Unsupported(shown))))
    }

    fn mismatch(&mut self) -> Error {
        let hex: String = std::mem::take(&mut self.hasher)
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Error::DigestMismatch {
            from: self.from.clone(),
            expected: self.expected.clone(),
            actual: format!("sha256:{hex}"),
            expected_size: self.expected_size,
            received_size: self.seen,
        }
    }
}

impl Stream for Verifying {
    type Item = Result<Bytes, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        loop {
            match ready!(this.inner.as_mut().poll_next(cx)) {
                Some(Ok(chunk)) => {
                    if chunk.is_empty() {
                        continue;
                    }
                    this.hasher.update(&chunk);
                    this.seen += chunk.len() as u64;
                    if this.seen > this.expected_size {
                        let error = this.mismatch();
                        return this.fail(error);
                    }
                    if let Some(previous) = this.held.replace(chunk) {
                        return Poll::Ready(Some(Ok(previous)));
                    }
                }
                Some(Err(error)) => return this.fail(error),
                None => {
                    let actual: String = this
                        .hasher
                        .clone()
                        .finalize()
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect();
                    let matches = this.expected.algorithm() == "sha256"
                        && this.expected.hex() == actual
                        && this.seen == this.expected_size;
                    if !matches {
                        let error = this.mismatch();
                        return this.fail(error);
                    }
                    this.done = true;
                    return Poll::Ready(this.held.take().map(Ok));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;
    use crate::manifest::sha256_digest;

    fn source(chunks: &[&'static [u8]]) -> ByteStream {
        let items: Vec<Result<Bytes, Error>> =
            chunks.iter().map(|c| Ok(Bytes::from_static(c))).collect();
        Box::pin(futures_util::stream::iter(items))
    }

    #[tokio::test]
    async fn passes_matching_bytes_through() {
        let digest = sha256_digest(b"hello world");
        let out: Vec<_> =
            Verifying::new(source(&[b"hello", b" ", b"world"]), "s".into(), digest, 11)
                .collect()
                .await;
        let bytes: Vec<u8> = out.into_iter().flat_map(|c| c.unwrap().to_vec()).collect();
        assert_eq!(bytes, b"hello world");
    }

    #[tokio::test]
    async fn withholds_the_last_chunk_of_corrupted_bytes_and_names_both_digests() {
        let expected = sha256_digest(b"hello world");
        let verifying = Verifying::new(
            source(&[b"hello", b" ", b"w0rld"]),
            "src".into(),
            expected.clone(),
            11,
        );
        let verdict = verifying.verdict();
        let out: Vec<_> = verifying.collect().await;
        let passed: Vec<u8> = out
            .iter()
            .filter_map(|c| c.as_ref().ok())
            .flat_map(|c| c.to_vec())
            .collect();
        assert_eq!(passed, b"hello ", "the final chunk must not be released");
        assert!(out.last().unwrap().is_err());
        let error = verdict.lock().unwrap().take().unwrap().to_string();
        assert!(error.contains(expected.as_str()), "{error}");
        assert!(
            error.contains(sha256_digest(b"hello w0rld").as_str()),
            "{error}"
        );
    }

    #[tokio::test]
    async fn stops_at_the_first_byte_past_the_size() {
        let expected = sha256_digest(b"abc");
        let out: Vec<_> = Verifying::new(source(&[b"ab", b"cd"]), "s".into(), expected, 3)
            .collect()
            .await;
        assert_eq!(out.len(), 1);
        assert!(out[0].is_err());
    }
}
