//! The engine's [`Signer`] and [`Verifier`]: Ed25519 signing with the validator key,
//! ZIP-215 verification through `ledger::crypto` (the same rule as commits and txs).

use crate::context::{extension_sign_bytes, proposal_sign_bytes, vote_sign_bytes, MedCtx, Proposal, Vote};
use async_trait::async_trait;
use ledger::crypto::{verify_signature, PublicKey, Signature, SigningKey};
use malachitebft_core_types::{SignedMessage, ValidatorProof, VoteExtensionScope};
use malachitebft_signing::{Error, Signer, VerificationResult, Verifier};

#[allow(missing_debug_implementations)] // holds the validator key: never printed
pub struct MedSigner {
    key: SigningKey,
    chain_id: String,
}

impl MedSigner {
    pub fn new(key: SigningKey, chain_id: &str) -> Self {
        MedSigner {
            key,
            chain_id: chain_id.to_owned(),
        }
    }
}

#[derive(Debug)]
pub struct MedVerifier {
    chain_id: String,
}

impl MedVerifier {
    pub fn new(chain_id: &str) -> Self {
        MedVerifier {
            chain_id: chain_id.to_owned(),
        }
    }
}

fn verdict(key: &PublicKey, message: &[u8], signature: &Signature) -> VerificationResult {
    VerificationResult::from_bool(verify_signature(key, message, signature).is_ok())
}

#[async_trait]
impl Signer<MedCtx> for MedSigner {
    async fn sign_vote(&self, vote: Vote) -> Result<SignedMessage<MedCtx, Vote>, Error> {
        let signature = self.key.sign(&vote_sign_bytes(&self.chain_id, &vote));
        Ok(SignedMessage::new(vote, signature))
    }

    async fn sign_proposal(&self, proposal: Proposal) -> Result<SignedMessage<MedCtx, Proposal>, Error> {
        let signature = self.key.sign(&proposal_sign_bytes(&self.chain_id, &proposal));
        Ok(SignedMessage::new(proposal, signature))
    }

    async fn sign_vote_extension(
        &self,
        scope: VoteExtensionScope<MedCtx>,
        extension: (),
    ) -> Result<SignedMessage<MedCtx, ()>, Error> {
        let bytes = extension_sign_bytes(
            &self.chain_id,
            scope.height,
            scope.round,
            &scope.value_id,
            &scope.validator_address,
        );
        Ok(SignedMessage::new(extension, self.key.sign(&bytes)))
    }

    async fn sign_validator_proof(
        &self,
        public_key: Vec<u8>,
        peer_id: Vec<u8>,
    ) -> Result<ValidatorProof<MedCtx>, Error> {
        let bytes = ValidatorProof::<MedCtx>::signing_bytes(&public_key, &peer_id);
        Ok(ValidatorProof::new(public_key, peer_id, self.key.sign(&bytes)))
    }
}

#[async_trait]
impl Verifier<MedCtx> for MedVerifier {
    async fn verify_signed_vote(
        &self,
        vote: &Vote,
        signature: &Signature,
        key: &PublicKey,
    ) -> Result<VerificationResult, Error> {
        Ok(verdict(key, &vote_sign_bytes(&self.chain_id, vote), signature))
    }

    async fn verify_signed_proposal(
        &self,
        proposal: &Proposal,
        signature: &Signature,
        key: &PublicKey,
    ) -> Result<VerificationResult, Error> {
        Ok(verdict(
            key,
            &proposal_sign_bytes(&self.chain_id, proposal),
            signature,
        ))
    }

    async fn verify_signed_vote_extension(
        &self,
        scope: &VoteExtensionScope<MedCtx>,
        _extension: &(),
        signature: &Signature,
        key: &PublicKey,
    ) -> Result<VerificationResult, Error> {
        let bytes = extension_sign_bytes(
            &self.chain_id,
            scope.height,
            scope.round,
            &scope.value_id,
            &scope.validator_address,
        );
        Ok(verdict(key, &bytes, signature))
    }

    async fn verify_validator_proof(
        &self,
        proof: &ValidatorProof<MedCtx>,
    ) -> Result<VerificationResult, Error> {
        let Ok(key) = <[u8; 32]>::try_from(proof.public_key.as_slice()) else {
            return Ok(VerificationResult::Invalid);
        };
        let bytes = ValidatorProof::<MedCtx>::signing_bytes(&proof.public_key, &proof.peer_id);
        Ok(verdict(&PublicKey(key), &bytes, &proof.signature))
    }
}
