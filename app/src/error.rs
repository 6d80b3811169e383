//! One error type for the page, so a message can say *what* failed: the relay unreachable, a
//! proof that did not verify, a blob that does not match its commitment, the browser's storage.

use light_client::net::NetError;
use light_client::LightClientError;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AppError {
    /// An HTTP request to the relay failed before an answer arrived.
    #[error("relay unreachable over HTTP: {0}")]
    Http(String),
    /// The relay answered an HTTP request with an error.
    #[error("the relay refused ({kind}): {reason}")]
    Refused { kind: String, reason: String },
    #[error("the relay's discovery document is unusable: {0}")]
    Discovery(String),
    /// The genesis the relay serves is not the one its discovery document names.
    #[error("the relay's genesis hashes to {got}, but its discovery document says {expected}")]
    GenesisMismatch { expected: String, got: String },
    #[error("libp2p: {0}")]
    Net(#[from] NetError),
    /// The light client refused something (a header, a proof) or could not reach the relay.
    #[error("light client: {0}")]
    Verify(#[from] LightClientError),
    /// A blob that does not decrypt or does not match its on-chain commitment.
    #[error("blob: {0}")]
    Blob(String),
    #[error("browser storage: {0}")]
    Store(String),
    #[error("keys: {0}")]
    Keys(String),
    #[error("not connected to a relay yet")]
    NotConnected,
    #[error("no key selected: create or import one under Keys")]
    NoIdentity,
    /// Something the user typed that cannot be used.
    #[error("{0}")]
    Input(String),
    /// A browser API (the document, a download) did not do what was asked.
    #[error("browser: {0}")]
    Browser(String),
}

impl AppError {
    /// A JavaScript exception, as text.
    pub fn js(context: &str, value: wasm_bindgen::JsValue) -> String {
        let text = value
            .as_string()
            .or_else(|| js_sys::JSON::stringify(&value).ok().and_then(|s| s.as_string()))
            .unwrap_or_else(|| format!("{value:?}"));
        format!("{context}: {text}")
    }
}

pub type AppResult<T> = Result<T, AppError>;
