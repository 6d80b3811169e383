//! Medledger's [`Context`] for Malachite (DESIGN §2): the types the engine drives, and the
//! bytes each consensus message signs.
//!
//! Value id = block id (SHA-256 of the header); the consensus value is just that id, and the
//! block itself travels as one signed proposal part. Address = the validator's Ed25519 key.
//! A precommit for a block signs exactly [`ledger::header::precommit_sign_bytes`], so the
//! engine's commit certificate is a `ledger::Commit` the light client checks without the
//! engine. Signed bytes depend only on (type, height, round, value id) and the chain id, as
//! the engine requires when it rebuilds votes to check certificates.

use borsh::{BorshDeserialize, BorshSerialize};
use ledger::crypto::{Hash, PublicKey, Signature, SigningKey};
use ledger::header::precommit_sign_bytes;
use malachitebft_core_types as mc;
use mc::{NilOrVal, Round, SignedExtension, VoteType};
use std::fmt;
use std::sync::Arc;

/// The Medledger consensus context; carries the chain id every signature is bound to.
#[derive(Clone, Debug)]
pub struct MedCtx {
    chain_id: Arc<str>,
}

impl MedCtx {
    pub fn new(chain_id: &str) -> Self {
        MedCtx {
            chain_id: chain_id.into(),
        }
    }

    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct Addr(pub PublicKey);

impl fmt::Debug for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}
impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", &self.0.to_hex()[..12])
    }
}
impl mc::Address for Addr {}

#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct BlockHeight(pub u64);

impl fmt::Debug for BlockHeight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
impl fmt::Display for BlockHeight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
impl mc::Height for BlockHeight {
    const ZERO: Self = BlockHeight(0);
    const INITIAL: Self = BlockHeight(1);

    fn increment_by(&self, n: u64) -> Self {
        BlockHeight(self.0.saturating_add(n))
    }
    fn decrement_by(&self, n: u64) -> Option<Self> {
        self.0.checked_sub(n).map(BlockHeight)
    }
    fn as_u64(&self) -> u64 {
        self.0
    }
}

/// The consensus value: a block id. The block travels in a [`ProposalPart`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct BlockHash(pub Hash);

impl fmt::Debug for BlockHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}
impl fmt::Display for BlockHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}
impl mc::Value for BlockHash {
    type Id = BlockHash;
    fn id(&self) -> BlockHash {
        *self
    }
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Proposal {
    pub height: BlockHeight,
    pub round: Round,
    pub value: BlockHash,
    pub pol_round: Round,
    pub proposer: Addr,
}

impl mc::Proposal<MedCtx> for Proposal {
    fn height(&self) -> BlockHeight {
        self.height
    }
    fn round(&self) -> Round {
        self.round
    }
    fn value(&self) -> &BlockHash {
        &self.value
    }
    fn take_value(self) -> BlockHash {
        self.value
    }
    fn pol_round(&self) -> Round {
        self.pol_round
    }
    fn validator_address(&self) -> &Addr {
        &self.proposer
    }
}

/// A block travels from its proposer in two parts, each signed so peers can tell it came from
/// the proposer (the engine does not authenticate proposal parts itself):
///
/// 1. [`ProposalTxs`], as soon as the proposer has chosen and executed the txs;
/// 2. [`ProposalHeader`], once it has computed the state root over their writes.
///
/// Computing that root is most of a proposer's work; peers re-execute the txs and compute
/// the same root meanwhile instead of after it, so a height's proposal → prevote step no
/// longer waits for both one after the other.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum ProposalPart {
    Txs(ProposalTxs),
    Header(ProposalHeader),
}

/// The txs of a proposal and the block time they execute at.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ProposalTxs {
    pub height: BlockHeight,
    pub round: Round,
    pub proposer: Addr,
    /// The block time (ms) the header will carry; execution depends on it.
    pub time: u64,
    /// Canonical tx bytes, in block order.
    pub txs: Vec<Vec<u8>>,
    /// Proposer's signature over [`proposal_txs_sign_bytes`].
    pub signature: Signature,
}

/// The header of a proposal whose txs came in a [`ProposalTxs`] of the same round.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ProposalHeader {
    pub height: BlockHeight,
    pub round: Round,
    pub proposer: Addr,
    pub header: ledger::Header,
    /// Proposer's signature over [`proposal_part_sign_bytes`] of the header's block id.
    pub signature: Signature,
}

impl ProposalPart {
    pub fn height(&self) -> BlockHeight {
        match self {
            ProposalPart::Txs(p) => p.height,
            ProposalPart::Header(p) => p.height,
        }
    }

    pub fn round(&self) -> Round {
        match self {
            ProposalPart::Txs(p) => p.round,
            ProposalPart::Header(p) => p.round,
        }
    }
}

impl mc::ProposalPart<MedCtx> for ProposalPart {
    fn is_first(&self) -> bool {
        matches!(self, ProposalPart::Txs(_))
    }
    fn is_last(&self) -> bool {
        matches!(self, ProposalPart::Header(_))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vote {
    pub vote_type: VoteType,
    pub height: BlockHeight,
    pub round: Round,
    pub value: NilOrVal<BlockHash>,
    pub validator: Addr,
}

impl BorshSerialize for Vote {
    fn serialize<W: borsh::io::Write>(&self, w: &mut W) -> borsh::io::Result<()> {
        let kind: u8 = match self.vote_type {
            VoteType::Prevote => 0,
            VoteType::Precommit => 1,
        };
        kind.serialize(w)?;
        self.height.serialize(w)?;
        self.round.serialize(w)?;
        let value = match &self.value {
            NilOrVal::Nil => None,
            NilOrVal::Val(v) => Some(*v),
        };
        value.serialize(w)?;
        self.validator.serialize(w)
    }
}

impl BorshDeserialize for Vote {
    fn deserialize_reader<R: borsh::io::Read>(r: &mut R) -> borsh::io::Result<Self> {
        let vote_type = match u8::deserialize_reader(r)? {
            0 => VoteType::Prevote,
            1 => VoteType::Precommit,
            _ => {
                return Err(borsh::io::Error::new(
                    borsh::io::ErrorKind::InvalidData,
                    "vote type",
                ))
            }
        };
        let height = BlockHeight::deserialize_reader(r)?;
        let round = Round::deserialize_reader(r)?;
        let value = match Option::<BlockHash>::deserialize_reader(r)? {
            None => NilOrVal::Nil,
            Some(v) => NilOrVal::Val(v),
        };
        let validator = Addr::deserialize_reader(r)?;
        Ok(Vote {
            vote_type,
            height,
            round,
            value,
            validator,
        })
    }
}

impl mc::Vote<MedCtx> for Vote {
    fn height(&self) -> BlockHeight {
        self.height
    }
    fn round(&self) -> Round {
        self.round
    }
    fn value(&self) -> &NilOrVal<BlockHash> {
        &self.value
    }
    fn take_value(self) -> NilOrVal<BlockHash> {
        self.value
    }
    fn vote_type(&self) -> VoteType {
        self.vote_type
    }
    fn validator_address(&self) -> &Addr {
        &self.validator
    }
    // No vote extensions in Medledger.
    fn extension(&self) -> Option<&SignedExtension<MedCtx>> {
        None
    }
    fn take_extension(&mut self) -> Option<SignedExtension<MedCtx>> {
        None
    }
    fn extend(self, _extension: SignedExtension<MedCtx>) -> Self {
        self
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validator {
    pub address: Addr,
    pub power: u64,
}

impl mc::Validator<MedCtx> for Validator {
    fn address(&self) -> &Addr {
        &self.address
    }
    fn public_key(&self) -> &PublicKey {
        &self.address.0
    }
    fn voting_power(&self) -> u64 {
        self.power
    }
}

/// The engine's view of a ledger validator set (same order: sorted by address).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorSet {
    validators: Vec<Validator>,
    ledger_set: ledger::ValidatorSet,
}

impl From<&ledger::ValidatorSet> for ValidatorSet {
    fn from(set: &ledger::ValidatorSet) -> Self {
        let validators = set
            .validators()
            .iter()
            .map(|v| Validator {
                address: Addr(v.address),
                power: v.power,
            })
            .collect();
        ValidatorSet {
            validators,
            ledger_set: set.clone(),
        }
    }
}

impl ValidatorSet {
    pub fn ledger(&self) -> &ledger::ValidatorSet {
        &self.ledger_set
    }
}

impl mc::ValidatorSet<MedCtx> for ValidatorSet {
    fn count(&self) -> usize {
        self.validators.len()
    }
    fn total_voting_power(&self) -> u64 {
        self.ledger_set.total_power()
    }
    fn get_by_address(&self, address: &Addr) -> Option<&Validator> {
        self.ledger_set.index_of(&address.0).map(|i| &self.validators[i])
    }
    fn get_by_index(&self, index: usize) -> Option<&Validator> {
        self.validators.get(index)
    }
}

/// Ed25519 with ZIP-215 verification (DESIGN §2), over ledger key and signature types.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ed25519Scheme;

#[derive(Debug)]
pub struct KeyLengthError(usize);
impl fmt::Display for KeyLengthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "wrong length {}", self.0)
    }
}

impl mc::SigningScheme for Ed25519Scheme {
    type DecodingError = KeyLengthError;
    type Signature = Signature;
    type PublicKey = PublicKey;
    type PrivateKey = SigningKey;

    fn decode_signature(bytes: &[u8]) -> Result<Signature, KeyLengthError> {
        bytes
            .try_into()
            .map(Signature)
            .map_err(|_| KeyLengthError(bytes.len()))
    }
    fn encode_signature(signature: &Signature) -> Vec<u8> {
        signature.0.to_vec()
    }
    fn decode_public_key(bytes: &[u8]) -> Result<PublicKey, KeyLengthError> {
        bytes
            .try_into()
            .map(PublicKey)
            .map_err(|_| KeyLengthError(bytes.len()))
    }
    fn encode_public_key(public_key: &PublicKey) -> Vec<u8> {
        public_key.0.to_vec()
    }
}

impl mc::Context for MedCtx {
    type Address = Addr;
    type Height = BlockHeight;
    type ProposalPart = ProposalPart;
    type Proposal = Proposal;
    type Validator = Validator;
    type ValidatorSet = ValidatorSet;
    type Timeouts = mc::LinearTimeouts;
    type Value = BlockHash;
    type Vote = Vote;
    type Extension = ();
    type SigningScheme = Ed25519Scheme;

    fn select_proposer<'a>(&self, set: &'a ValidatorSet, height: BlockHeight, round: Round) -> &'a Validator {
        let round = round.as_u32().unwrap_or(0);
        let chosen = set.ledger_set.proposer(height.0, round).address;
        let index = set.ledger_set.index_of(&chosen).unwrap_or(0);
        &set.validators[index]
    }

    fn new_proposal(
        &self,
        height: BlockHeight,
        round: Round,
        value: BlockHash,
        pol_round: Round,
        address: Addr,
    ) -> Proposal {
        Proposal {
            height,
            round,
            value,
            pol_round,
            proposer: address,
        }
    }

    fn new_prevote(
        &self,
        height: BlockHeight,
        round: Round,
        value: NilOrVal<BlockHash>,
        address: Addr,
    ) -> Vote {
        Vote {
            vote_type: VoteType::Prevote,
            height,
            round,
            value,
            validator: address,
        }
    }

    fn new_precommit(
        &self,
        height: BlockHeight,
        round: Round,
        value: NilOrVal<BlockHash>,
        address: Addr,
    ) -> Vote {
        Vote {
            vote_type: VoteType::Precommit,
            height,
            round,
            value,
            validator: address,
        }
    }
}

fn round_u32(round: Round) -> u32 {
    // Signed messages only ever carry defined rounds; nil maps to u32::MAX so it can never
    // collide with a real round.
    round.as_u32().unwrap_or(u32::MAX)
}

fn tagged(domain: &[u8], chain_id: &str, height: u64, round: Round, rest: &[&[u8]]) -> Vec<u8> {
    let mut out = domain.to_vec();
    let chain = chain_id.as_bytes();
    out.push(chain.len().min(255) as u8);
    out.extend_from_slice(&chain[..chain.len().min(255)]);
    out.extend_from_slice(&height.to_be_bytes());
    out.extend_from_slice(&round_u32(round).to_be_bytes());
    for part in rest {
        out.extend_from_slice(part);
    }
    out
}

/// The bytes a vote signs. A precommit for a block is the ledger's fixed layout.
pub fn vote_sign_bytes(chain_id: &str, vote: &Vote) -> Vec<u8> {
    match (vote.vote_type, &vote.value) {
        (VoteType::Precommit, NilOrVal::Val(id)) => {
            precommit_sign_bytes(chain_id, vote.height.0, round_u32(vote.round), &id.0)
        }
        (VoteType::Precommit, NilOrVal::Nil) => tagged(
            b"medledger/precommit-nil/v1",
            chain_id,
            vote.height.0,
            vote.round,
            &[],
        ),
        (VoteType::Prevote, NilOrVal::Val(id)) => tagged(
            b"medledger/prevote/v1",
            chain_id,
            vote.height.0,
            vote.round,
            &[&id.0 .0],
        ),
        (VoteType::Prevote, NilOrVal::Nil) => tagged(
            b"medledger/prevote-nil/v1",
            chain_id,
            vote.height.0,
            vote.round,
            &[],
        ),
    }
}

pub fn proposal_sign_bytes(chain_id: &str, p: &Proposal) -> Vec<u8> {
    let pol = p.pol_round.as_i64().to_be_bytes();
    tagged(
        b"medledger/proposal/v1",
        chain_id,
        p.height.0,
        p.round,
        &[&p.value.0 .0, &pol],
    )
}

pub fn proposal_part_sign_bytes(
    chain_id: &str,
    height: BlockHeight,
    round: Round,
    block_id: &Hash,
) -> Vec<u8> {
    tagged(
        b"medledger/proposal-part/v1",
        chain_id,
        height.0,
        round,
        &[&block_id.0],
    )
}

/// What a proposer signs for the txs part: the block time and the txs' root (the header's
/// `tx_root`, which commits to their order and count).
pub fn proposal_txs_sign_bytes(
    chain_id: &str,
    height: BlockHeight,
    round: Round,
    time: u64,
    tx_root: &Hash,
) -> Vec<u8> {
    tagged(
        b"medledger/proposal-txs/v1",
        chain_id,
        height.0,
        round,
        &[&time.to_be_bytes(), &tx_root.0],
    )
}

pub fn extension_sign_bytes(
    chain_id: &str,
    height: BlockHeight,
    round: Round,
    value: &BlockHash,
    validator: &Addr,
) -> Vec<u8> {
    tagged(
        b"medledger/vote-extension/v1",
        chain_id,
        height.0,
        round,
        &[&value.0 .0, &validator.0 .0],
    )
}
