//! Whole-image copy: one manifest, or an index with every platform, from one repository to
//! another. First a plan: the manifests the target lacks (children before parents) and
//! the blobs they need, each once. Then the blobs in parallel (bounded per registry), the
//! manifests in order, the tag last. Whatever the target already has costs one HEAD.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::StreamExt;
use futures_util::future::try_join_all;
use hoist_domain::{Digest, ImageRef};

use crate::blob::BlobOutcome;
use crate::client::{Client, Repository};
use crate::manifest::{BlobRef, Contents, Manifest};
use crate::{Error, Result};

/// What a copy did, for logs and for tests that check nothing moved twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyReport {
    /// The digest of the copied manifest or index (the same on both sides).
    pub digest: Digest,
    pub media_type: String,
    /// The tag written on the target, if any.
    pub tag: Option<String>,
    pub manifests_written: u64,
    pub manifests_present: u64,
    pub blobs_present: u64,
    pub blobs_mounted: u64,
    pub blobs_uploaded: u64,
    pub bytes_uploaded: u64,
}

#[derive(Debug, Default)]
struct Counters {
    manifests_written: AtomicU64,
    manifests_present: AtomicU64,
    blobs_present: AtomicU64,
    blobs_mounted: AtomicU64,
    blobs_uploaded: AtomicU64,
    bytes_uploaded: AtomicU64,
}

impl Counters {
    fn blob(&self, outcome: BlobOutcome) {
        match outcome {
            BlobOutcome::Present => self.blobs_present.fetch_add(1, Ordering::Relaxed),
            BlobOutcome::Mounted => self.blobs_mounted.fetch_add(1, Ordering::Relaxed),
            BlobOutcome::Uploaded(bytes) => {
                self.bytes_uploaded.fetch_add(bytes, Ordering::Relaxed);
                self.blobs_uploaded.fetch_add(1, Ordering::Relaxed)
            }
        };
    }
}

/// What a copy has to write, decided before anything is written.
#[derive(Debug, Default)]
struct Plan {
    manifests: Vec<Manifest>,
    blobs: Vec<BlobRef>,
    manifest_bytes: usize,
    /// Every manifest digest met so far, fetched or about to be: none is fetched twice.
    seen: HashSet<Digest>,
    blobs_seen: HashSet<Digest>,
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl Client {
    /// Copies `source` (a tag or digest; an index with all its platforms) to `target`, like
    /// `skopeo copy --all`. The target's tag is written last; a target without tag or
    /// digest gets the source's tag; a target digest must be the source's.
    pub async fn copy_image(&self, source: &ImageRef, target: &ImageRef) -> Result<CopyReport> {
        let reference = match (source.digest(), source.tag()) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.to_owned(),
            (None, None) => {
                return Err(Error::Unsupported(format!(
                    "{source} names neither a tag nor a digest"
                )));
            }
        };
        let from = Repository::of(source);
        let to = Repository::of(target);
        let root = self.manifest(&from, &reference).await?;
        if let Some(wanted) = target.digest()
            && wanted != &root.digest
        {
            return Err(Error::Unsupported(format!(
                "{target} asks for digest {wanted}, but {source} is {}",
                root.digest
            )));
        }
        let counters = Counters::default();
        let mut plan = Plan::default();
        self.plan(&from, &to, root.clone(), &mut plan, &counters, 0)
            .await?;
        let copies = plan.blobs.iter().map(|blob| async {
            let outcome = self.copy_blob(&from, &to, &blob.digest, blob.size).await?;
            counters.blob(outcome);
            Ok::<_, Error>(())
        });
        try_join_all(copies).await?;
        // Children were planned before their parents: each PUT finds what it refers to.
        for manifest in &plan.manifests {
            self.put_manifest(&to, manifest.digest.as_str(), manifest)
                .await?;
            counters.manifests_written.fetch_add(1, Ordering::Relaxed);
        }
        let tag = match (target.tag(), target.digest()) {
            (Some(tag), _) => Some(tag.to_owned()),
            (None, None) => source.tag().map(str::to_owned),
            (None, Some(_)) => None,
        };
        if let Some(tag) = &tag {
            let current = self.manifest_head(&to, tag).await?;
            if current.and_then(|head| head.digest).as_ref() != Some(&root.digest) {
                self.put_manifest(&to, tag, &root).await?;
            }
        }
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Ok(CopyReport {
            digest: root.digest.clone(),
            media_type: root.media_type.clone(),
            tag,
            manifests_written: load(&counters.manifests_written),
            manifests_present: load(&counters.manifests_present),
            blobs_present: load(&counters.blobs_present),
            blobs_mounted: load(&counters.blobs_mounted),
            blobs_uploaded: load(&counters.blobs_uploaded),
            bytes_uploaded: load(&counters.bytes_uploaded),
        })
    }

    /// Walks the manifest tree and lists what the target lacks: manifests in the order to
    /// write them (children first) and the blobs they need, each once however many
    /// platforms share it. A manifest the target already has is complete there (registries
    /// refuse a manifest whose references are missing), so its subtree is skipped.
    fn plan<'a>(
        &'a self,
        from: &'a Repository,
        to: &'a Repository,
        manifest: Manifest,
        plan: &'a mut Plan,
        counters: &'a Counters,
        depth: usize,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            if !plan.seen.insert(manifest.digest.clone()) {
                return Ok(());
            }
            if plan.seen.len() > MAX_PLANNED_MANIFESTS {
                return Err(Error::Unsupported(format!(
                    "the copy names more than {MAX_PLANNED_MANIFESTS} manifests; hoist copies \
                     smaller trees"
                )));
            }
            if self
                .manifest_head(to, manifest.digest.as_str())
                .await?
                .is_some()
            {
                counters.manifests_present.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            match manifest.contents()? {
                Contents::Image { blobs } => {
                    for blob in blobs {
                        if plan.blobs_seen.insert(blob.digest.clone()) {
                            plan.blobs.push(blob);
                        }
                    }
                }
                Contents::Index { children } => {
                    let mut children = planned_children(&manifest, children, depth)?;
                    // Met under another index already: fetched once only.
                    children.retain(|c| !plan.seen.contains(&c.digest));
                    // A few at a time, in order: a hostile index cannot make hoist hold
                    // every child at once.
                    let mut fetched = futures_util::stream::iter(children)
                        .map(
                            |child| async move { self.manifest(from, child.digest.as_str()).await },
                        )
                        .buffered(CHILD_FETCHES);
                    while let Some(child) = fetched.next().await {
                        self.plan(from, to, child?, plan, counters, depth + 1)
                            .await?;
                    }
                }
            }
            plan.manifest_bytes += manifest.bytes.len();
            if plan.manifest_bytes > MAX_PLANNED_MANIFEST_BYTES {
                return Err(Error::Unsupported(format!(
                    "{} needs more than {MAX_PLANNED_MANIFEST_BYTES} bytes of manifests; \
                     hoist copies smaller trees",
                    manifest.digest
                )));
            }
            plan.manifests.push(manifest);
            Ok(())
        })
    }
}

/// Index children fetched at once.
const CHILD_FETCHES: usize = 8;
/// The most children one index may list.
pub const MAX_INDEX_CHILDREN: usize = 1024;
/// Indexes nested in indexes, at most.
const MAX_DEPTH: usize = 2;
/// The most manifests one copy visits, across all its indexes.
const MAX_PLANNED_MANIFESTS: usize = 4096;
/// The most manifest bytes one copy holds before writing them.
const MAX_PLANNED_MANIFEST_BYTES: usize = 64 << 20;

/// An index's children to fetch: each digest once, refused when there are too many, when
/// one says it is larger than a manifest may be, or when indexes nest too deep.
fn planned_children(
    index: &Manifest,
    children: Vec<crate::manifest::ChildRef>,
    depth: usize,
) -> Result<Vec<crate::manifest::ChildRef>> {
    if depth >= MAX_DEPTH {
        return Err(Error::Unsupported(format!(
            "index {} is nested {} deep in indexes; hoist copies at most {MAX_DEPTH} levels",
            index.digest,
            depth + 1
        )));
    }
    let mut digests = HashSet::new();
    let mut unique: Vec<crate::manifest::ChildRef> = Vec::new();
    for child in children {
        if digests.insert(child.digest.clone()) {
            unique.push(child);
            if unique.len() > MAX_INDEX_CHILDREN {
                return Err(Error::Unsupported(format!(
                    "index {} lists more than {MAX_INDEX_CHILDREN} distinct manifests; hoist \
                     copies at most {MAX_INDEX_CHILDREN}",
                    index.digest
                )));
            }
        }
    }
    if let Some(big) = unique
        .iter()
        .find(|c| c.size > crate::manifest::MAX_MANIFEST_BYTES as u64)
    {
        return Err(Error::Unsupported(format!(
            "index {} lists manifest {} of {} bytes, over the {} byte (4 MiB) manifest limit",
            index.digest,
            big.digest,
            big.size,
            crate::manifest::MAX_MANIFEST_BYTES
        )));
    }
    Ok(unique)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::manifest::{ChildRef, MAX_MANIFEST_BYTES, OCI_INDEX, OCI_MANIFEST};

    fn child(n: usize, size: u64) -> ChildRef {
        ChildRef {
            media_type: OCI_MANIFEST.to_owned(),
            digest: format!("sha256:{n:064x}").parse().expect("a digest"),
            size,
            platform: None,
            annotations: Default::default(),
            descriptor: serde_json::Value::Null,
        }
    }

    fn index() -> Manifest {
        Manifest::from_bytes(OCI_INDEX, Bytes::from_static(b"{}"))
    }

    #[test]
    fn children_are_fetched_once_each_and_bounded() {
        let repeated: Vec<_> = (0..5000).map(|i| child(i % 3, 500)).collect();
        let unique = planned_children(&index(), repeated, 0).expect("three children");
        assert_eq!(unique.len(), 3);

        let many: Vec<_> = (0..=MAX_INDEX_CHILDREN).map(|i| child(i, 500)).collect();
        let error = planned_children(&index(), many, 0).unwrap_err().to_string();
        assert!(
            error.contains("lists more than 1024 distinct manifests"),
            "{error}"
        );

        let big = vec![child(1, MAX_MANIFEST_BYTES as u64 + 1)];
        let error = planned_children(&index(), big, 0).unwrap_err().to_string();
        assert!(error.contains("4 MiB"), "{error}");

        let error = planned_children(&index(), vec![child(1, 10)], MAX_DEPTH)
            .unwrap_err()
            .to_string();
        assert!(error.contains("nested"), "{error}");
    }
}
