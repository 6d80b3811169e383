//! The genesis document: chain id, first validators, governance key, initial accounts.

use crate::codec::encode;
use crate::crypto::{sha256, Address, EncryptionKey, Hash, PublicKey};
use crate::header::MAX_CHAIN_ID_LEN;
use crate::state::keys::{self, ValidatorSlot};
use crate::state::records::Account;
use crate::state::StateDiff;
use crate::types::{Amount, Role, TimeMs};
use crate::validators::{Validator, ValidatorSet, ValidatorSetError};
use borsh::{BorshDeserialize, BorshSerialize};

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct GenesisAccount {
    pub address: Address,
    pub role: Role,
    pub encryption_key: EncryptionKey,
    pub balance: Amount,
    /// Organisations admitted from the start.
    pub admitted: bool,
    /// Clinicians attested from the start (by an admitted genesis organisation).
    pub attested_by: Option<Address>,
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Genesis {
    pub chain_id: String,
    pub genesis_time: TimeMs,
    pub validators: Vec<Validator>,
    /// Signs organisation admissions and validator-set changes.
    pub governance: PublicKey,
    pub accounts: Vec<GenesisAccount>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenesisError {
    #[error("chain id must be 1..={MAX_CHAIN_ID_LEN} printable ASCII characters")]
    BadChainId,
    #[error("genesis validators: {0}")]
    Validators(#[from] ValidatorSetError),
    #[error("account {0:?} appears twice")]
    DuplicateAccount(Address),
    #[error("account {0:?} is attested by an organisation that is not an admitted genesis account")]
    BadAttestation(Address),
}

impl Genesis {
    /// Identifies the chain's genesis (shown to users, pinned by light clients).
    pub fn hash(&self) -> Hash {
        sha256(&encode(self))
    }

    pub fn validator_set(&self) -> Result<ValidatorSet, GenesisError> {
        Ok(ValidatorSet::new(self.validators.clone())?)
    }

    /// The writes that make the state at height 0.
    pub fn state_diff(&self) -> Result<StateDiff, GenesisError> {
        let id = self.chain_id.as_bytes();
        if id.is_empty() || id.len() > MAX_CHAIN_ID_LEN || !id.iter().all(|b| b.is_ascii_graphic()) {
            return Err(GenesisError::BadChainId);
        }
        let set = self.validator_set()?;
        let mut diff = StateDiff::new();
        let mut put = |key: Vec<u8>, value: Vec<u8>| diff.insert(key, Some(value));
        put(keys::chain_id(), encode(&self.chain_id));
        put(keys::governance(), encode(&self.governance));
        for slot in [
            ValidatorSlot::Current,
            ValidatorSlot::Next,
            ValidatorSlot::Pending,
        ] {
            put(keys::validators(slot), encode(&set));
        }
        let mut seen = std::collections::BTreeSet::new();
        for a in &self.accounts {
            if !seen.insert(a.address) {
                return Err(GenesisError::DuplicateAccount(a.address));
            }
            if let Some(org) = a.attested_by {
                let ok = self
                    .accounts
                    .iter()
                    .any(|o| o.address == org && o.role == Role::Organisation && o.admitted);
                if !ok {
                    return Err(GenesisError::BadAttestation(a.address));
                }
            }
            let account = Account {
                role: a.role,
                encryption_key: a.encryption_key,
                balance: a.balance,
                admitted: a.admitted && a.role == Role::Organisation,
                attested_by: a.attested_by,
            };
            put(keys::account(&a.address), encode(&account));
        }
        Ok(diff)
    }
}
