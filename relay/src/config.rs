//! What a relay is started with: where its chain comes from, where it keeps its data and
//! blobs, and where it listens. `medledger-relay`'s flags map one to one onto [`RelayConfig`].

use crate::network::NetworkConfig;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Default data folder, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "medledger-data";
/// Default HTTP listen address (dashboard, discovery, metrics, blob routes).
pub const DEFAULT_HTTP: &str = "127.0.0.1:8080";

#[derive(Clone, Debug)]
pub struct RelayConfig {
    pub chain: ChainSource,
    /// Everything the relay keeps: the dev chain, keys, blobs (by default), the follower cursor.
    pub data_dir: PathBuf,
    pub http_listen: SocketAddr,
    /// Blob storage; `None` means `<data_dir>/blobs`.
    pub blobs: Option<BlobLocation>,
    /// The dashboard build (trunk's `dist/`); `None` serves a placeholder page.
    pub dist: Option<PathBuf>,
    /// Largest blob accepted, at most `ledger::tx::MAX_BLOB_BYTES`.
    pub max_blob_bytes: u64,
    /// Key file of the relay's storage-node account when following a network (created if
    /// missing); `None` means `<data_dir>/relay-key.json`. The dev chain uses its own account.
    pub relay_key: Option<PathBuf>,
    /// libp2p listeners (TCP, WebSocket, WebRTC-direct) and per-peer limits.
    pub network: NetworkConfig,
}

impl RelayConfig {
    /// A dev relay on `data_dir` with the defaults of `medledger-relay --dev`, except that
    /// libp2p listens on any free loopback ports.
    pub fn dev(data_dir: impl Into<PathBuf>, http_listen: SocketAddr) -> Self {
        RelayConfig {
            chain: ChainSource::Dev(DevOptions::default()),
            data_dir: data_dir.into(),
            http_listen,
            blobs: None,
            dist: None,
            max_blob_bytes: ledger::tx::MAX_BLOB_BYTES,
            relay_key: None,
            network: NetworkConfig::default(),
        }
    }

    pub fn blob_location(&self) -> BlobLocation {
        self.blobs
            .clone()
            .unwrap_or_else(|| BlobLocation::Dir(self.data_dir.join("blobs")))
    }

    pub fn relay_key_path(&self) -> PathBuf {
        self.relay_key
            .clone()
            .unwrap_or_else(|| self.data_dir.join("relay-key.json"))
    }
}

/// Where the relay's chain comes from.
#[derive(Clone, Debug)]
pub enum ChainSource {
    /// An embedded single validator on a dev genesis kept in the data folder.
    Dev(DevOptions),
    /// Follow an existing network as a non-validator, from a node home directory
    /// (`config.toml`, `genesis.json`, `data/`), e.g. made by `medledger-node localnet --extra 1`.
    Follow { home: PathBuf },
}

/// Block timing of the embedded dev validator (applied at every start, not stored).
#[derive(Clone, Copy, Debug)]
pub struct DevOptions {
    /// Minimum time between blocks (0: as fast as consensus goes).
    pub target_block_time_ms: u64,
    /// First-round propose timeout.
    pub propose_timeout_ms: u64,
}

impl Default for DevOptions {
    fn default() -> Self {
        DevOptions {
            target_block_time_ms: 1_000,
            propose_timeout_ms: 1_000,
        }
    }
}

/// Where blobs live: a local folder, or an S3-compatible bucket (DESIGN §4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlobLocation {
    Dir(PathBuf),
    S3(S3Location),
}

/// An S3-compatible bucket. Credentials come from the environment (`AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, ...) or, when built in code, from `options`.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    /// Key prefix inside the bucket ("" for the bucket root).
    pub prefix: String,
    /// `object_store` S3 options by name (`endpoint`, `allow_http`, `region`, ...).
    pub options: Vec<(String, String)>,
}

/// Option names that carry secrets: refused in a URL (it ends up in shell history and logs).
const SECRET_OPTIONS: &[&str] = &[
    "access_key_id",
    "aws_access_key_id",
    "secret_access_key",
    "aws_secret_access_key",
    "token",
    "session_token",
    "aws_token",
    "aws_session_token",
];

impl fmt::Debug for S3Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Options set in code may hold credentials: print their names only.
        let names: Vec<&str> = self.options.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("S3Location")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("options", &names)
            .finish()
    }
}

/// A `--blobs` value that is neither a folder nor a supported URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocationError {
    #[error("{0:?} is not a valid URL: {1}")]
    BadUrl(String, String),
    #[error("unsupported blob store scheme {0:?} (use a folder path or s3://bucket[/prefix]?endpoint=...)")]
    UnsupportedScheme(String),
    #[error("s3 URL {0:?} names no bucket")]
    NoBucket(String),
    #[error("option {0:?} carries a secret: set it in the environment (AWS_*), not in the URL")]
    SecretInUrl(String),
}

impl FromStr for BlobLocation {
    type Err = LocationError;

    /// A folder path, or `s3://bucket[/prefix][?option=value&...]`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if !s.contains("://") {
            return Ok(BlobLocation::Dir(PathBuf::from(s)));
        }
        let url = url::Url::parse(s).map_err(|e| LocationError::BadUrl(s.into(), e.to_string()))?;
        if url.scheme() != "s3" {
            return Err(LocationError::UnsupportedScheme(url.scheme().into()));
        }
        let bucket = url
            .host_str()
            .filter(|b| !b.is_empty())
            .ok_or_else(|| LocationError::NoBucket(s.into()))?
            .to_owned();
        let mut options = Vec::new();
        for (key, value) in url.query_pairs() {
            if SECRET_OPTIONS.contains(&key.to_ascii_lowercase().as_str()) {
                return Err(LocationError::SecretInUrl(key.into_owned()));
            }
            options.push((key.into_owned(), value.into_owned()));
        }
        Ok(BlobLocation::S3(S3Location {
            bucket,
            prefix: url.path().trim_matches('/').to_owned(),
            options,
        }))
    }
}

impl fmt::Display for BlobLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlobLocation::Dir(dir) => write!(f, "{}", dir.display()),
            BlobLocation::S3(s3) => {
                write!(f, "s3://{}/{}", s3.bucket, s3.prefix)?;
                // Only the endpoint helps an operator reading logs; options may hold secrets.
                if let Some((_, endpoint)) = s3.options.iter().find(|(k, _)| k.ends_with("endpoint")) {
                    write!(f, " at {endpoint}")?;
                }
                Ok(())
            }
        }
    }
}

/// The dashboard build to serve by default: `<repo>/dist` if it was built.
pub fn default_dist() -> Option<PathBuf> {
    let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("dist");
    dist.join("index.html").is_file().then_some(dist)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_and_s3_urls_parse() {
        assert_eq!(
            "./blobs".parse::<BlobLocation>().unwrap(),
            BlobLocation::Dir("./blobs".into())
        );
        let s3 = "s3://bucket/a/b?endpoint=http://127.0.0.1:5000&allow_http=true"
            .parse::<BlobLocation>()
            .unwrap();
        assert_eq!(
            s3,
            BlobLocation::S3(S3Location {
                bucket: "bucket".into(),
                prefix: "a/b".into(),
                options: vec![
                    ("endpoint".into(), "http://127.0.0.1:5000".into()),
                    ("allow_http".into(), "true".into()),
                ],
            })
        );
        assert_eq!(s3.to_string(), "s3://bucket/a/b at http://127.0.0.1:5000");
    }

    #[test]
    fn bad_locations_say_why() {
        assert!(matches!(
            "gs://bucket".parse::<BlobLocation>(),
            Err(LocationError::UnsupportedScheme(s)) if s == "gs"
        ));
        assert!(matches!(
            "s3://b?secret_access_key=x".parse::<BlobLocation>(),
            Err(LocationError::SecretInUrl(k)) if k == "secret_access_key"
        ));
        assert!(matches!(
            "s3:///x".parse::<BlobLocation>(),
            Err(LocationError::NoBucket(_))
        ));
    }
}
