//! Validator sets (DESIGN §2): who signs blocks and with how much voting power.

use crate::codec::encode;
use crate::crypto::{sha256, Address, Hash, PublicKey};
use borsh::{BorshDeserialize, BorshSerialize};

/// Voting power. Verification always sums power; it never counts signatures.
pub type VotingPower = u64;

/// Total power is capped so that sums and `3 * power` never overflow a u64.
pub const MAX_TOTAL_VOTING_POWER: VotingPower = u64::MAX / 8;

/// Maximum validators in one set (bounds commit size and verification time).
pub const MAX_VALIDATORS: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct Validator {
    pub address: Address,
    pub power: VotingPower,
}

/// Why a validator set is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidatorSetError {
    #[error("validator set is empty")]
    Empty,
    #[error("validator set has {0} members, at most {MAX_VALIDATORS} allowed")]
    TooLarge(usize),
    #[error("validators must be sorted by address without repeats")]
    NotSortedOrDuplicate,
    #[error("validator {0:?} has zero power")]
    ZeroPower(Address),
    #[error("total voting power exceeds {MAX_TOTAL_VOTING_POWER}")]
    PowerOverflow,
}

/// A validator set in canonical order (sorted by address), so its hash is well defined.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ValidatorSet {
    validators: Vec<Validator>,
}

impl ValidatorSet {
    /// Builds a set, sorting by address; fails on repeats, zero power or overflow.
    pub fn new(mut validators: Vec<Validator>) -> Result<Self, ValidatorSetError> {
        validators.sort_by_key(|v| v.address);
        let set = ValidatorSet { validators };
        set.validate()?;
        Ok(set)
    }

    /// Checks a decoded set (decoding bypasses [`ValidatorSet::new`]).
    pub fn validate(&self) -> Result<(), ValidatorSetError> {
        if self.validators.is_empty() {
            return Err(ValidatorSetError::Empty);
        }
        if self.validators.len() > MAX_VALIDATORS {
            return Err(ValidatorSetError::TooLarge(self.validators.len()));
        }
        if self.validators.windows(2).any(|w| w[0].address >= w[1].address) {
            return Err(ValidatorSetError::NotSortedOrDuplicate);
        }
        let mut total: VotingPower = 0;
        for v in &self.validators {
            if v.power == 0 {
                return Err(ValidatorSetError::ZeroPower(v.address));
            }
            total = total
                .checked_add(v.power)
                .ok_or(ValidatorSetError::PowerOverflow)?;
        }
        if total > MAX_TOTAL_VOTING_POWER {
            return Err(ValidatorSetError::PowerOverflow);
        }
        Ok(())
    }

    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }

    pub fn len(&self) -> usize {
        self.validators.len()
    }

    pub fn is_empty(&self) -> bool {
        self.validators.is_empty()
    }

    pub fn total_power(&self) -> VotingPower {
        self.validators.iter().map(|v| v.power).sum()
    }

    /// The member with this address (binary search: the set is sorted).
    pub fn get(&self, address: &PublicKey) -> Option<&Validator> {
        self.validators
            .binary_search_by(|v| v.address.cmp(address))
            .ok()
            .map(|i| &self.validators[i])
    }

    pub fn index_of(&self, address: &PublicKey) -> Option<usize> {
        self.validators.binary_search_by(|v| v.address.cmp(address)).ok()
    }

    /// The hash headers bind as `validators_hash` / `next_validators_hash`.
    pub fn hash(&self) -> Hash {
        sha256(&encode(self))
    }

    /// Applies one governance update: `power == 0` removes the validator.
    pub fn with_update(&self, update: Validator) -> Result<Self, ValidatorSetError> {
        let mut validators: Vec<Validator> = self
            .validators
            .iter()
            .copied()
            .filter(|v| v.address != update.address)
            .collect();
        if update.power > 0 {
            validators.push(update);
        }
        Self::new(validators)
    }

    /// Deterministic round-robin proposer weighted by power: the same on every node.
    pub fn proposer(&self, height: u64, round: u32) -> &Validator {
        let total = self.total_power().max(1);
        let seed = crate::crypto::sha256_concat(&[
            b"medledger/proposer",
            &height.to_be_bytes(),
            &round.to_be_bytes(),
        ]);
        let mut ticket = u64::from_be_bytes(seed.0[..8].try_into().unwrap_or([0; 8])) % total;
        for v in &self.validators {
            if ticket < v.power {
                return v;
            }
            ticket -= v.power;
        }
        &self.validators[0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(b: u8, power: u64) -> Validator {
        Validator {
            address: PublicKey([b; 32]),
            power,
        }
    }

    #[test]
    fn canonical_order_and_hash() {
        let a = ValidatorSet::new(vec![v(2, 1), v(1, 1)]).unwrap();
        let b = ValidatorSet::new(vec![v(1, 1), v(2, 1)]).unwrap();
        assert_eq!(a.hash(), b.hash());
        assert_eq!(a.validators()[0].address, PublicKey([1; 32]));
    }

    #[test]
    fn malformed_sets_are_refused() {
        assert_eq!(ValidatorSet::new(vec![]), Err(ValidatorSetError::Empty));
        assert_eq!(
            ValidatorSet::new(vec![v(1, 1), v(1, 2)]),
            Err(ValidatorSetError::NotSortedOrDuplicate)
        );
        assert_eq!(
            ValidatorSet::new(vec![v(1, 0)]),
            Err(ValidatorSetError::ZeroPower(PublicKey([1; 32])))
        );
        assert_eq!(
            ValidatorSet::new(vec![v(1, u64::MAX), v(2, 1)]),
            Err(ValidatorSetError::PowerOverflow)
        );
    }

    #[test]
    fn updates_add_change_and_remove() {
        let set = ValidatorSet::new(vec![v(1, 10), v(2, 10)]).unwrap();
        assert_eq!(set.with_update(v(3, 5)).unwrap().total_power(), 25);
        assert_eq!(set.with_update(v(1, 1)).unwrap().total_power(), 11);
        assert_eq!(set.with_update(v(1, 0)).unwrap().len(), 1);
        assert_eq!(
            set.with_update(v(1, 0)).unwrap().with_update(v(2, 0)),
            Err(ValidatorSetError::Empty)
        );
    }

    #[test]
    fn proposer_is_weighted_and_deterministic() {
        let set = ValidatorSet::new(vec![v(1, 1), v(2, 99)]).unwrap();
        let heavy = (0..1000)
            .filter(|h| set.proposer(*h, 0).address == PublicKey([2; 32]))
            .count();
        assert!(heavy > 900, "{heavy}");
        assert_eq!(set.proposer(5, 1), set.proposer(5, 1));
    }
}
