//! Blobs: existence checks, streamed reads, and uploads — cross-repository mounts, one
//! streaming PUT, or PATCH chunks — that restart in a new session when they fail.

use bytes::{Bytes, BytesMut};
use futures_util::{StreamExt, TryStreamExt};
use hoist_domain::Digest;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION};

use crate::auth::Scope;
use crate::client::{Client, Repository, blob_deadline, expect};
use crate::verify::{ByteStream, Verifying};
use crate::{Error, Result};

/// What a blob copy or upload had to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobOutcome {
    /// The target already had it (a HEAD was all it took).
    Present,
    /// Mounted from another repository of the same registry: no bytes moved.
    Mounted,
    /// Uploaded; this many bytes were sent.
    Uploaded(u64),
}

/// How a new upload session started.
enum Session {
    Mounted,
    Open(String),
}

impl Client {
    /// The blob's size if the repository has it, `None` if not.
    pub async fn blob_size(&self, repository: &Repository, digest: &Digest) -> Result<Option<u64>> {
        let url = self.url(repository, &format!("blobs/{digest}"));
        let response = self
            .send(repository, &Scope::pull(&repository.path), "HEAD", |http| {
                http.head(&url)
            })
            .await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let response = expect(response, "HEAD", &[StatusCode::OK]).await?;
        Ok(response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok()))
    }

    /// The blob's bytes as a stream, as they arrive (nothing is buffered beyond a chunk).
    /// `size` is what its descriptor says; it sets the transfer's deadline.
    pub async fn blob_stream(
        &self,
        repository: &Repository,
        digest: &Digest,
        size: u64,
    ) -> Result<ByteStream> {
        let url = self.url(repository, &format!("blobs/{digest}"));
        let response = self
            .send(repository, &Scope::pull(&repository.path), "GET", |http| {
                http.get(&url).timeout(blob_deadline(size))
            })
            .await?;
        let response = expect(response, "GET", &[StatusCode::OK]).await?;
        let what = format!("reading blob {digest} from {repository}");
        Ok(Box::pin(response.bytes_stream().map_err(move |source| {
            Error::transport(what.clone(), source)
        })))
    }

    /// Reads a small blob (an image config) whole, refusing one larger than `limit`.
    pub async fn blob_bytes(
        &self,
        repository: &Repository,
        digest: &Digest,
        limit: usize,
    ) -> Result<Bytes> {
        let mut stream = self.blob_stream(repository, digest, limit as u64).await?;
        let mut buffer = BytesMut::new();
        while let Some(chunk) = stream.next().await {
            buffer.extend_from_slice(&chunk?);
            if buffer.len() > limit {
                return Err(Error::Unsupported(format!(
                    "blob {digest} of {repository} is larger than {limit} bytes"
                )));
            }
        }
        let bytes = buffer.freeze();
        let actual = crate::manifest::sha256_digest(&bytes);
        if &actual != digest {
            return Err(Error::DigestMismatch {
                from: repository.to_string(),
                expected: digest.clone(),
                actual: actual.to_string(),
                expected_size: bytes.len() as u64,
                received_size: bytes.len() as u64,
            });
        }
        Ok(bytes)
    }

    /// Copies a blob from one repository to another: nothing if the target has it, a mount
    /// when both are on one registry, else a streamed copy whose bytes are verified as they
    /// pass. Holds a transfer slot of each registry involved for the duration.
    pub async fn copy_blob(
        &self,
        source: &Repository,
        target: &Repository,
        digest: &Digest,
        size: u64,
    ) -> Result<BlobOutcome> {
        let _slots = self.transfer_slots(source, target).await;
        if self.blob_size(target, digest).await?.is_some() {
            return Ok(BlobOutcome::Present);
        }
        let mount_from = (source.host.eq_ignore_ascii_case(&target.host)
            && source.path != target.path)
            .then_some(source);
        self.upload(
            target,
            digest,
            size,
            mount_from,
            || self.blob_stream(source, digest, size),
            &source.to_string(),
        )
        .await
    }

    /// Pushes a small blob hoist made itself (a signature payload, a config). It is not
    /// asked for first: such a blob is almost always new, and uploading one the repository
    /// has is harmless. Returns its digest.
    pub async fn push_blob(&self, target: &Repository, bytes: Bytes) -> Result<Digest> {
        let digest = crate::manifest::sha256_digest(&bytes);
        let size = bytes.len() as u64;
        let open = || {
            let chunk = bytes.clone();
            async move {
                let stream: ByteStream =
                    Box::pin(futures_util::stream::once(async move { Ok(chunk) }));
                Ok(stream)
            }
        };
        self.upload(target, &digest, size, None, open, "hoist")
            .await?;
        Ok(digest)
    }

    /// One slot of each registry's transfer limit, taken in host order so two copies in
    /// opposite directions cannot wait on each other.
    async fn transfer_slots(
        &self,
        a: &Repository,
        b: &Repository,
    ) -> Vec<tokio::sync::OwnedSemaphorePermit> {
        let mut hosts = vec![a.host.to_ascii_lowercase(), b.host.to_ascii_lowercase()];
        hosts.sort();
        hosts.dedup();
        let mut permits = Vec::new();
        for host in hosts {
            let semaphore = self.host(&host).transfers.clone();
            if let Ok(permit) = semaphore.acquire_owned().await {
                permits.push(permit);
            }
        }
        permits
    }

    /// The upload loop: a new session per attempt, cancelled when an attempt fails.
    async fn upload<F, Fut>(
        &self,
        target: &Repository,
        digest: &Digest,
        size: u64,
        mount_from: Option<&Repository>,
        open: F,
        from: &str,
    ) -> Result<BlobOutcome>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<ByteStream>>,
    {
        let scope = match mount_from {
            Some(source) => Scope::mount(&target.path, &source.path),
            None => Scope::push(&target.path),
        };
        let mut failed = 0;
        loop {
            let location = match self
                .start_session(target, &scope, digest, mount_from)
                .await?
            {
                Session::Mounted => return Ok(BlobOutcome::Mounted),
                Session::Open(location) => location,
            };
            let attempt = async {
                let stream = open().await?;
                let verifying = Verifying::new(stream, from.to_owned(), digest.clone(), size);
                match self.host(&target.host).settings.chunk_size {
                    Some(chunk) => {
                        self.put_chunked(target, &scope, &location, digest, verifying, chunk)
                            .await
                    }
                    None => {
                        self.put_streaming(target, &scope, &location, digest, size, verifying)
                            .await
                    }
                }
            };
            match attempt.await {
                Ok(()) => return Ok(BlobOutcome::Uploaded(size)),
                Err(error) => {
                    self.cancel_session(target, &scope, &location).await;
                    failed += 1;
                    tracing::warn!(%digest, repository = %target, error = %error, "blob upload failed");
                    self.pause_or_fail(Err(error), failed).await?;
                }
            }
        }
    }

    /// POSTs a new upload session, asking for a mount when there is a source to mount from.
    async fn start_session(
        &self,
        target: &Repository,
        scope: &Scope,
        digest: &Digest,
        mount_from: Option<&Repository>,
    ) -> Result<Session> {
        let url = self.url(target, "blobs/uploads/");
        let response = self
            .send(target, scope, "POST", |http| {
                let request = http.post(&url).header(CONTENT_LENGTH, "0");
                match mount_from {
                    Some(source) => {
                        request.query(&[("mount", digest.as_str()), ("from", &source.path)])
                    }
                    None => request,
                }
            })
            .await?;
        let response = expect(
            response,
            "POST",
            &[StatusCode::CREATED, StatusCode::ACCEPTED],
        )
        .await?;
        if response.status() == StatusCode::CREATED {
            return Ok(Session::Mounted);
        }
        Ok(Session::Open(self.location(target, &response)?))
    }

    /// The absolute URL of the `Location` an upload answer points to.
    fn location(&self, target: &Repository, response: &reqwest::Response) -> Result<String> {
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Error::Protocol {
                host: target.host.clone(),
                message: "upload answer without a Location".to_owned(),
            })?;
        response
            .url()
            .join(location)
            .map(String::from)
            .map_err(|e| Error::Protocol {
                host: target.host.clone(),
                message: format!(
                    "upload Location {:?} is not a URL: {e}",
                    location.split('?').next().unwrap_or_default()
                ),
            })
    }

    async fn put_streaming(
        &self,
        target: &Repository,
        scope: &Scope,
        location: &str,
        digest: &Digest,
        size: u64,
        verifying: Verifying,
    ) -> Result<()> {
        let verdict = verifying.verdict();
        let request = self
            .http()
            .put(with_digest(location, digest))
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, size)
            .timeout(blob_deadline(size))
            .body(reqwest::Body::wrap_stream(verifying));
        let sent = self.send_once(target, scope, "PUT", request).await;
        // The stream's own verdict explains a failed body better than the HTTP error.
        if let Some(error) = verdict
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            return Err(error);
        }
        expect(sent?, "PUT", &[StatusCode::CREATED]).await?;
        Ok(())
    }

    async fn put_chunked(
        &self,
        target: &Repository,
        scope: &Scope,
        location: &str,
        digest: &Digest,
        mut verifying: Verifying,
        chunk_size: u64,
    ) -> Result<()> {
        let chunk_size = usize::try_from(chunk_size).unwrap_or(4 << 20).max(1);
        let mut location = location.to_owned();
        let mut offset = 0u64;
        let mut buffer = BytesMut::with_capacity(chunk_size);
        let mut finished = false;
        while !finished {
            while buffer.len() < chunk_size {
                match verifying.next().await {
                    Some(chunk) => buffer.extend_from_slice(&chunk?),
                    None => {
                        finished = true;
                        break;
                    }
                }
            }
            while buffer.len() >= chunk_size || (finished && !buffer.is_empty()) {
                let take = buffer.len().min(chunk_size);
                let part = buffer.split_to(take).freeze();
                location = self.patch(target, scope, &location, offset, part).await?;
                offset += take as u64;
            }
        }
        let request = self
            .http()
            .put(with_digest(&location, digest))
            .header(CONTENT_LENGTH, "0");
        let response = self.send_once(target, scope, "PUT", request).await?;
        expect(response, "PUT", &[StatusCode::CREATED]).await?;
        Ok(())
    }

    /// Sends one chunk; returns the Location for the next.
    async fn patch(
        &self,
        target: &Repository,
        scope: &Scope,
        location: &str,
        offset: u64,
        part: Bytes,
    ) -> Result<String> {
        let end = offset + part.len() as u64 - 1;
        let request = self
            .http()
            .patch(location)
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_RANGE, format!("{offset}-{end}"))
            .header(CONTENT_LENGTH, part.len())
            .timeout(blob_deadline(part.len() as u64))
            .body(part);
        let response = self.send_once(target, scope, "PATCH", request).await?;
        let response = expect(response, "PATCH", &[StatusCode::ACCEPTED]).await?;
        self.location(target, &response)
    }

    /// Best effort: tell the registry to drop a failed session's partial data.
    async fn cancel_session(&self, target: &Repository, scope: &Scope, location: &str) {
        let request = self.http().delete(location);
        if let Err(error) = self.send_once(target, scope, "DELETE", request).await {
            tracing::debug!(error = %error, "could not cancel an upload session");
        }
    }
}

fn with_digest(location: &str, digest: &Digest) -> String {
    let separator = if location.contains('?') { '&' } else { '?' };
    format!("{location}{separator}digest={digest}")
}
