//! [`BlobStore`]: encrypted blobs by CID behind the `object_store` interface (DESIGN §4), on a
//! local folder (`LocalFileSystem`) or an S3-compatible bucket (`AmazonS3`). I/O only: it
//! checks what it can check about bytes (size, CID) and knows nothing about consent.
//!
//! Layout: everything stored for one blob lives under the folder `<prefix>/<cid>/`; the
//! ciphertext is `<cid>/data`. Erasure deletes the whole folder, so anything kept beside the
//! ciphertext later (e.g. wrapped data keys) is shredded with it (DESIGN §3 "Erasure").

use super::BlobError;
use crate::config::{BlobLocation, S3Location};
use bytes::Bytes;
use futures::StreamExt;
use ledger::types::Cid;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use std::sync::Arc;

const DATA: &str = "data";

/// What [`BlobStore::put`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Put {
    Stored,
    /// The same CID was already stored (content-addressed: same bytes); nothing written.
    AlreadyStored,
}

#[derive(Clone, Debug)]
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    max_blob_bytes: u64,
    location: String,
}

impl BlobStore {
    /// Opens the store at `location`, refusing blobs above `max_blob_bytes`.
    pub fn open(location: &BlobLocation, max_blob_bytes: u64) -> Result<Self, BlobError> {
        let (store, prefix): (Arc<dyn ObjectStore>, Path) = match location {
            BlobLocation::Dir(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| BlobError::Location(format!("{}: {e}", dir.display())))?;
                let fs = LocalFileSystem::new_with_prefix(dir)?.with_automatic_cleanup(true);
                (Arc::new(fs), Path::default())
            }
            BlobLocation::S3(s3) => (Arc::new(open_s3(s3)?), Path::from(s3.prefix.as_str())),
        };
        Ok(BlobStore {
            store,
            prefix,
            max_blob_bytes: max_blob_bytes.min(ledger::tx::MAX_BLOB_BYTES),
            location: location.to_string(),
        })
    }

    pub fn max_blob_bytes(&self) -> u64 {
        self.max_blob_bytes
    }

    /// Where the blobs live, for logs (no secrets).
    pub fn location(&self) -> &str {
        &self.location
    }

    fn folder(&self, cid: &Cid) -> Path {
        self.prefix.clone().join(cid.to_text())
    }

    fn data_path(&self, cid: &Cid) -> Path {
        self.folder(cid).join(DATA)
    }

    /// Checks that `bytes` may be stored as `claimed`: within the size limit and hashing to it.
    pub fn check(&self, claimed: &Cid, bytes: &[u8]) -> Result<(), BlobError> {
        let size = bytes.len() as u64;
        if size > self.max_blob_bytes {
            return Err(BlobError::TooLarge {
                size,
                limit: self.max_blob_bytes,
            });
        }
        let actual = Cid::of(bytes);
        if actual != *claimed {
            return Err(BlobError::CidMismatch {
                claimed: *claimed,
                actual,
            });
        }
        Ok(())
    }

    /// Stores `bytes` under `claimed` after [`BlobStore::check`].
    pub async fn put(&self, claimed: &Cid, bytes: Bytes) -> Result<Put, BlobError> {
        self.check(claimed, &bytes)?;
        if self.contains(claimed).await? {
            return Ok(Put::AlreadyStored);
        }
        self.store
            .put(&self.data_path(claimed), PutPayload::from(bytes))
            .await?;
        Ok(Put::Stored)
    }

    pub async fn contains(&self, cid: &Cid) -> Result<bool, BlobError> {
        match self.store.head(&self.data_path(cid)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// The ciphertext stored under `cid`, checked against it (storage is not trusted either).
    pub async fn get(&self, cid: &Cid) -> Result<Bytes, BlobError> {
        let bytes = match self.store.get(&self.data_path(cid)).await {
            Ok(result) => result.bytes().await?,
            Err(object_store::Error::NotFound { .. }) => return Err(BlobError::NotStored(*cid)),
            Err(e) => return Err(e.into()),
        };
        if !cid.matches(&bytes) {
            return Err(BlobError::Corrupt(*cid));
        }
        Ok(bytes)
    }

    /// Deletes everything stored for `cid`; returns the bytes freed (0 if nothing was there).
    pub async fn erase(&self, cid: &Cid) -> Result<u64, BlobError> {
        let mut listing = self.store.list(Some(&self.folder(cid)));
        let mut freed = 0;
        while let Some(meta) = listing.next().await {
            let meta = meta?;
            match self.store.delete(&meta.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => freed += meta.size,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(freed)
    }

    /// Total bytes of stored ciphertext (lists the whole store: for start-up and tests).
    pub async fn total_bytes(&self) -> Result<u64, BlobError> {
        let prefix = (!self.prefix.is_root()).then_some(&self.prefix);
        let mut listing = self.store.list(prefix);
        let mut total = 0;
        while let Some(meta) = listing.next().await {
            let meta = meta?;
            if meta.location.filename() == Some(DATA) {
                total += meta.size;
            }
        }
        Ok(total)
    }
}

/// An S3 client: settings from the `AWS_*` environment, then the location's options.
fn open_s3(s3: &S3Location) -> Result<object_store::aws::AmazonS3, BlobError> {
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(&s3.bucket);
    for (key, value) in &s3.options {
        let key: AmazonS3ConfigKey = key
            .parse()
            .map_err(|e| BlobError::Location(format!("s3 option {key:?}: {e}")))?;
        builder = builder.with_config(key, value);
    }
    Ok(builder.build()?)
}
