//! The relay's libp2p identity and WebRTC certificate, written once in the data folder and
//! reused, so its PeerId and its `/certhash` (hence the browser multiaddrs) survive restarts
//! (issue 5 item 3). Both files hold private keys and are readable by the owner only.

use libp2p::identity::Keypair;
use libp2p_webrtc::tokio::Certificate;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The libp2p key (protobuf encoding, ed25519) under the data folder.
pub const KEY_FILE: &str = "p2p-key";
/// The WebRTC certificate with its private key (PEM) under the data folder.
pub const CERT_FILE: &str = "webrtc-cert.pem";

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a libp2p key: {reason}")]
    BadKey { path: PathBuf, reason: String },
    #[error("{path}: not a WebRTC certificate: {reason}")]
    BadCertificate { path: PathBuf, reason: String },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> IdentityError + '_ {
    move |source| IdentityError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Writes `bytes` readable by the owner only, replacing `path` atomically.
fn write_secret(path: &Path, bytes: &[u8]) -> Result<(), IdentityError> {
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp).map_err(io_error(&tmp))?;
    file.write_all(bytes).map_err(io_error(&tmp))?;
    file.sync_all().map_err(io_error(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_error(path))
}

/// Loads the libp2p keypair in `data_dir`, creating an ed25519 one on first use.
pub fn load_or_create_keypair(data_dir: &Path) -> Result<Keypair, IdentityError> {
    let path = data_dir.join(KEY_FILE);
    let bad = |reason: String| IdentityError::BadKey {
        path: path.clone(),
        reason,
    };
    if !path.exists() {
        let keypair = Keypair::generate_ed25519();
        let bytes = keypair.to_protobuf_encoding().map_err(|e| bad(e.to_string()))?;
        write_secret(&path, &bytes)?;
    }
    let bytes = std::fs::read(&path).map_err(io_error(&path))?;
    Keypair::from_protobuf_encoding(&bytes).map_err(|e| bad(e.to_string()))
}

/// Loads the WebRTC certificate in `data_dir`, creating one on first use.
pub fn load_or_create_certificate(data_dir: &Path) -> Result<Certificate, IdentityError> {
    let path = data_dir.join(CERT_FILE);
    let bad = |reason: String| IdentityError::BadCertificate {
        path: path.clone(),
        reason,
    };
    if !path.exists() {
        // The rng argument is ignored by libp2p-webrtc 0.10 (rcgen draws its own randomness).
        let certificate = Certificate::generate(&mut rand_webrtc::rng()).map_err(|e| bad(e.to_string()))?;
        write_secret(&path, certificate.serialize_pem().as_bytes())?;
    }
    let pem = std::fs::read_to_string(&path).map_err(io_error(&path))?;
    Certificate::from_pem(&pem).map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_and_certificate_are_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let key = load_or_create_keypair(dir.path()).unwrap();
        let again = load_or_create_keypair(dir.path()).unwrap();
        assert_eq!(key.public().to_peer_id(), again.public().to_peer_id());
        let cert = load_or_create_certificate(dir.path()).unwrap();
        let again = load_or_create_certificate(dir.path()).unwrap();
        assert_eq!(cert.fingerprint(), again.fingerprint());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "key file mode {mode:o}");
        }
        std::fs::write(dir.path().join(KEY_FILE), b"junk").unwrap();
        assert!(matches!(
            load_or_create_keypair(dir.path()),
            Err(IdentityError::BadKey { .. })
        ));
    }
}
