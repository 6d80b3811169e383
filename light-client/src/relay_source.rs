//! [`ChainSource`] over a libp2p [`RelayConnection`]: maps the wire answers to the calls the
//! verifier makes. A wrong answer kind or an oversized/undecodable frame is `Misbehaved`
//! (the relay broke the protocol); timeouts and outages are `Unreachable`.

use crate::net::{NetError, RelayConnection};
use crate::source::{ChainSource, SourceError};
use ledger::crypto::Hash;
use ledger::header::Height;
use ledger::state::StateProof;
use ledger::ValidatorSet;
use protocol::headers::{HeadersRequest, HeadersResponse, TxInclusion};
use protocol::proofs::{ProofRequest, ProofResponse};
use protocol::txs::{SubmitTx, SubmitTxResponse};
use protocol::{ServiceError, SignedHeader};

fn net_error(error: NetError) -> SourceError {
    match error {
        NetError::TooLarge { .. } | NetError::Protocol { .. } | NetError::Unsupported { .. } => {
            SourceError::Misbehaved(error.to_string())
        }
        other => SourceError::Unreachable(other.to_string()),
    }
}

fn service_error(error: ServiceError) -> SourceError {
    match error {
        ServiceError::NotFound { .. } | ServiceError::UnknownTx { .. } => {
            SourceError::NotFound(error.to_string())
        }
        ServiceError::Unavailable { .. } => SourceError::Unreachable(error.to_string()),
        // We never send bad requests; a relay claiming we did is not telling the truth.
        other => SourceError::Misbehaved(other.to_string()),
    }
}

fn unexpected(what: &str) -> SourceError {
    SourceError::Misbehaved(format!("answered a {what} request with another kind of answer"))
}

impl RelayConnection {
    async fn signed_header_for(&self, request: HeadersRequest) -> Result<SignedHeader, SourceError> {
        match self.headers(request).await.map_err(net_error)? {
            HeadersResponse::Header(signed) => Ok(*signed),
            HeadersResponse::Failed(error) => Err(service_error(error)),
            _ => Err(unexpected("header")),
        }
    }
}

impl ChainSource for RelayConnection {
    fn label(&self) -> String {
        self.remote_addr()
            .map_or_else(|| self.peer_id().to_string(), |a| a.to_string())
    }

    async fn latest(&self) -> Result<SignedHeader, SourceError> {
        self.signed_header_for(HeadersRequest::Latest).await
    }

    async fn signed_header(&self, height: Height) -> Result<SignedHeader, SourceError> {
        self.signed_header_for(HeadersRequest::At { height }).await
    }

    async fn validator_set(&self, height: Height) -> Result<ValidatorSet, SourceError> {
        match self
            .headers(HeadersRequest::ValidatorSet { height })
            .await
            .map_err(net_error)?
        {
            HeadersResponse::ValidatorSet {
                height: got,
                validators,
            } if got == height => Ok(validators),
            HeadersResponse::ValidatorSet { height: got, .. } => Err(SourceError::Misbehaved(format!(
                "asked for the set at {height}, got {got}"
            ))),
            HeadersResponse::Failed(error) => Err(service_error(error)),
            _ => Err(unexpected("validator set")),
        }
    }

    async fn state_value(
        &self,
        key: &[u8],
        height: Height,
    ) -> Result<(Option<Vec<u8>>, StateProof), SourceError> {
        let request = ProofRequest {
            key: key.to_vec(),
            height,
        };
        match self.proof(request).await.map_err(net_error)? {
            ProofResponse::Value {
                height: got,
                value,
                proof,
            } if got == height => Ok((value, proof)),
            ProofResponse::Value { height: got, .. } => Err(SourceError::Misbehaved(format!(
                "asked for a proof at {height}, got {got}"
            ))),
            ProofResponse::Failed(error) => Err(service_error(error)),
        }
    }

    async fn tx_inclusion(&self, hash: Hash) -> Result<Option<TxInclusion>, SourceError> {
        match self
            .headers(HeadersRequest::TxInclusion { hash })
            .await
            .map_err(net_error)?
        {
            HeadersResponse::TxInclusion(found) => Ok(Some(*found)),
            HeadersResponse::Failed(ServiceError::UnknownTx { .. }) => Ok(None),
            HeadersResponse::Failed(error) => Err(service_error(error)),
            _ => Err(unexpected("tx inclusion")),
        }
    }

    async fn submit_tx(&self, tx: Vec<u8>) -> Result<Result<Hash, String>, SourceError> {
        let expected = ledger::crypto::sha256(&tx);
        match self.submit_tx(SubmitTx { tx }).await.map_err(net_error)? {
            SubmitTxResponse::Accepted { hash } if hash == expected => Ok(Ok(hash)),
            SubmitTxResponse::Accepted { hash } => Err(SourceError::Misbehaved(format!(
                "accepted our tx {expected} as {hash}"
            ))),
            SubmitTxResponse::Rejected { reason } => Ok(Err(reason)),
        }
    }
}
