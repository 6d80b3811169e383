//! One borsh codec for everything the engine persists (WAL) or sends (consensus gossip,
//! value sync). The engine's own types carry borsh impls behind its `borsh` features; the
//! two that do not (`ValidatorProof`, and `sync::Response` through
//! `ExtendedCommitCertificate`) are encoded by hand here.
//!
//! Every decode is bounded ([`MAX_MESSAGE_BYTES`]) and strict (no trailing bytes): a peer
//! that sends garbage gets a typed error, never a panic.

use crate::context::{Addr, BlockHash, BlockHeight, MedCtx, ProposalPart};
use borsh::{BorshDeserialize, BorshSerialize};
use bytes::Bytes;
use ledger::crypto::Signature;
use malachitebft_app_channel::app::streaming::StreamMessage;
use malachitebft_app_channel::app::types::sync::{RawDecidedValue, Request, Response, Status};
use malachitebft_app_channel::app::types::{ProposedValue, SignedConsensusMsg};
use malachitebft_codec::{Codec, HasEncodedLen};
use malachitebft_core_consensus::LivenessMsg;
use malachitebft_core_types::{
    ExtendedCommitCertificate, ExtendedCommitSignature, PolkaCertificate, Round, ValidatorProof,
};
use malachitebft_sync::ValueResponse;

/// Largest message accepted from the network or the WAL (a full block plus overhead).
pub const MAX_MESSAGE_BYTES: usize = 12 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("message of {0} bytes exceeds the {MAX_MESSAGE_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("vote extensions are not used on this chain")]
    UnexpectedExtension,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct MedCodec;

fn encode<T: BorshSerialize>(value: &T) -> Result<Bytes, CodecError> {
    borsh::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| CodecError::Malformed(e.to_string()))
}

fn decode<T: BorshDeserialize>(bytes: &[u8]) -> Result<T, CodecError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(CodecError::TooLarge(bytes.len()));
    }
    borsh::from_slice(bytes).map_err(|e| CodecError::Malformed(e.to_string()))
}

macro_rules! borsh_codec {
    ($($t:ty),* $(,)?) => {$(
        impl Codec<$t> for MedCodec {
            type Error = CodecError;
            fn decode(&self, bytes: Bytes) -> Result<$t, CodecError> {
                decode(&bytes)
            }
            fn encode(&self, msg: &$t) -> Result<Bytes, CodecError> {
                encode(msg)
            }
        }
    )*};
}

borsh_codec!(
    ProposalPart,
    SignedConsensusMsg<MedCtx>,
    LivenessMsg<MedCtx>,
    StreamMessage<ProposalPart>,
    ProposedValue<MedCtx>,
    PolkaCertificate<MedCtx>,
    Status<MedCtx>,
    Request<MedCtx>,
);

#[derive(BorshSerialize, BorshDeserialize)]
struct ValidatorProofWire {
    public_key: Vec<u8>,
    peer_id: Vec<u8>,
    signature: Signature,
}

impl Codec<ValidatorProof<MedCtx>> for MedCodec {
    type Error = CodecError;
    fn decode(&self, bytes: Bytes) -> Result<ValidatorProof<MedCtx>, CodecError> {
        let w: ValidatorProofWire = decode(&bytes)?;
        Ok(ValidatorProof::new(w.public_key, w.peer_id, w.signature))
    }
    fn encode(&self, p: &ValidatorProof<MedCtx>) -> Result<Bytes, CodecError> {
        encode(&ValidatorProofWire {
            public_key: p.public_key.clone(),
            peer_id: p.peer_id.clone(),
            signature: p.signature,
        })
    }
}

/// A commit certificate on the wire: (height, round, value id, [(address, signature)]).
#[derive(BorshSerialize, BorshDeserialize)]
pub(crate) struct CertificateWire {
    pub height: BlockHeight,
    pub round: Round,
    pub value_id: BlockHash,
    pub signatures: Vec<(Addr, Signature)>,
}

impl CertificateWire {
    pub(crate) fn from_extended(c: &ExtendedCommitCertificate<MedCtx>) -> Result<Self, CodecError> {
        let mut signatures = Vec::with_capacity(c.commit_signatures.len());
        for s in &c.commit_signatures {
            if s.extension.is_some() {
                return Err(CodecError::UnexpectedExtension);
            }
            signatures.push((s.address, s.signature));
        }
        Ok(CertificateWire {
            height: c.height,
            round: c.round,
            value_id: c.value_id,
            signatures,
        })
    }

    pub(crate) fn into_extended(self) -> ExtendedCommitCertificate<MedCtx> {
        ExtendedCommitCertificate {
            height: self.height,
            round: self.round,
            value_id: self.value_id,
            commit_signatures: self
                .signatures
                .into_iter()
                .map(|(address, signature)| ExtendedCommitSignature::new(address, signature, None))
                .collect(),
        }
    }
}

#[derive(BorshSerialize, BorshDeserialize)]
struct ResponseWire {
    start_height: BlockHeight,
    values: Vec<(Vec<u8>, CertificateWire)>,
}

impl Codec<Response<MedCtx>> for MedCodec {
    type Error = CodecError;
    fn decode(&self, bytes: Bytes) -> Result<Response<MedCtx>, CodecError> {
        let w: ResponseWire = decode(&bytes)?;
        let values = w
            .values
            .into_iter()
            .map(|(value, cert)| RawDecidedValue::new(Bytes::from(value), cert.into_extended()))
            .collect();
        Ok(Response::ValueResponse(ValueResponse::new(
            w.start_height,
            values,
        )))
    }
    fn encode(&self, r: &Response<MedCtx>) -> Result<Bytes, CodecError> {
        let Response::ValueResponse(v) = r;
        let mut values = Vec::with_capacity(v.values.len());
        for raw in &v.values {
            values.push((
                raw.value_bytes.to_vec(),
                CertificateWire::from_extended(&raw.certificate)?,
            ));
        }
        encode(&ResponseWire {
            start_height: v.start_height,
            values,
        })
    }
}

impl HasEncodedLen<Response<MedCtx>> for MedCodec {
    fn encoded_len(&self, r: &Response<MedCtx>) -> Result<usize, CodecError> {
        Ok(self.encode(r)?.len())
    }
}
