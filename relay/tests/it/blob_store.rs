//! The blob store against both backends: the local filesystem and a real S3-compatible
//! server (moto), with one test body.

use crate::support::Moto;
use bytes::Bytes;
use ledger::types::Cid;
use relay::blobs::{BlobStore, Put};
use relay::config::S3Location;
use relay::{BlobError, BlobLocation};

const LIMIT: u64 = 1024;

async fn exercise(location: BlobLocation) {
    let store = BlobStore::open(&location, LIMIT).unwrap();
    let bytes = Bytes::from_static(b"opaque ciphertext of an hour of CGM readings");
    let cid = Cid::of(&bytes);

    assert!(!store.contains(&cid).await.unwrap());
    assert!(matches!(store.get(&cid).await, Err(BlobError::NotStored(c)) if c == cid));
    assert_eq!(store.put(&cid, bytes.clone()).await.unwrap(), Put::Stored);
    assert_eq!(store.put(&cid, bytes.clone()).await.unwrap(), Put::AlreadyStored);
    assert!(store.contains(&cid).await.unwrap());
    assert_eq!(store.get(&cid).await.unwrap(), bytes);

    let other = Bytes::from_static(b"second blob");
    store.put(&Cid::of(&other), other.clone()).await.unwrap();
    assert_eq!(
        store.total_bytes().await.unwrap(),
        (bytes.len() + other.len()) as u64
    );

    // Bytes that do not hash to the claimed CID are refused, naming both.
    match store.put(&cid, Bytes::from_static(b"something else")).await {
        Err(BlobError::CidMismatch { claimed, actual }) => {
            assert_eq!(claimed, cid);
            assert_eq!(actual, Cid::of(b"something else"));
        }
        other => panic!("expected CidMismatch, got {other:?}"),
    }
    // Oversize is refused before hashing or writing.
    let big = Bytes::from(vec![7u8; LIMIT as usize + 1]);
    match store.put(&Cid::of(&big), big.clone()).await {
        Err(BlobError::TooLarge { size, limit }) => assert_eq!((size, limit), (LIMIT + 1, LIMIT)),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert!(!store.contains(&Cid::of(&big)).await.unwrap());

    // Erasure removes the blob and reports what it freed; again, it frees nothing.
    assert_eq!(store.erase(&cid).await.unwrap(), bytes.len() as u64);
    assert!(!store.contains(&cid).await.unwrap());
    assert_eq!(store.erase(&cid).await.unwrap(), 0);
    assert_eq!(store.total_bytes().await.unwrap(), other.len() as u64);
}

#[tokio::test]
async fn filesystem_backend() {
    let dir = tempfile::tempdir().unwrap();
    exercise(BlobLocation::Dir(dir.path().join("blobs"))).await;
    // The layout is one folder per CID; erasure leaves no empty folders behind.
    let left: Vec<_> = std::fs::read_dir(dir.path().join("blobs")).unwrap().collect();
    assert_eq!(left.len(), 1);
}

#[tokio::test]
async fn s3_backend_on_a_real_s3_compatible_server() {
    let Some(moto) = Moto::start("medledger-blobs").await else {
        return;
    };
    // Parsed the way `--blobs` is, with credentials added in code instead of the environment.
    let url = format!(
        "s3://{}/relay-test?endpoint={}&allow_http=true",
        moto.bucket, moto.endpoint
    );
    let BlobLocation::S3(parsed) = url.parse::<BlobLocation>().unwrap() else {
        panic!("not an S3 location");
    };
    let mut options = parsed.options.clone();
    options.extend([
        ("access_key_id".into(), "test".into()),
        ("secret_access_key".into(), "test".into()),
        ("region".into(), "us-east-1".into()),
    ]);
    exercise(BlobLocation::S3(S3Location { options, ..parsed })).await;
}
