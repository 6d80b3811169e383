//! Where the trust snapshot lives between runs: a file natively, IndexedDB in the browser
//! (see [`crate::wasm`]), memory in tests. Stores only move bytes; [`TrustSnapshot`] decodes
//! them and [`crate::LightClient::restore`] re-verifies every stored commit.
//!
//! [`TrustSnapshot`]: crate::trust::TrustSnapshot

use crate::LightClientError;
use std::cell::RefCell;

#[allow(async_fn_in_trait)]
pub trait TrustStore {
    async fn load(&self) -> Result<Option<Vec<u8>>, LightClientError>;
    async fn save(&self, bytes: &[u8]) -> Result<(), LightClientError>;
}

/// Keeps the snapshot in memory (tests, and pages that opt out of persistence).
#[derive(Debug, Default)]
pub struct MemoryStore(RefCell<Option<Vec<u8>>>);

impl TrustStore for MemoryStore {
    async fn load(&self) -> Result<Option<Vec<u8>>, LightClientError> {
        Ok(self.0.borrow().clone())
    }

    async fn save(&self, bytes: &[u8]) -> Result<(), LightClientError> {
        *self.0.borrow_mut() = Some(bytes.to_vec());
        Ok(())
    }
}

/// A snapshot file, replaced atomically (write a sibling, then rename) so a crash mid-save
/// leaves the previous snapshot intact.
#[cfg(not(target_arch = "wasm32"))]
#[derive(Debug, Clone)]
pub struct FileStore {
    path: std::path::PathBuf,
}

#[cfg(not(target_arch = "wasm32"))]
impl FileStore {
    pub fn new(path: impl Into<std::path::PathBuf>) -> Self {
        FileStore { path: path.into() }
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl TrustStore for FileStore {
    async fn load(&self) -> Result<Option<Vec<u8>>, LightClientError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(LightClientError::Store(format!(
                "reading {}: {e}",
                self.path.display()
            ))),
        }
    }

    async fn save(&self, bytes: &[u8]) -> Result<(), LightClientError> {
        use std::io::Write;
        let error =
            |e: std::io::Error| LightClientError::Store(format!("writing {}: {e}", self.path.display()));
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(error)?;
        }
        let tmp = self.path.with_extension("tmp");
        let mut file = std::fs::File::create(&tmp).map_err(error)?;
        file.write_all(bytes).map_err(error)?;
        file.sync_all().map_err(error)?;
        std::fs::rename(&tmp, &self.path).map_err(error)
    }
}
