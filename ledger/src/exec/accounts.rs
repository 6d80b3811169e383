//! Accounts, organisations, clinician attestation, validator governance and transfers.

use super::TxError;
use crate::crypto::{Address, EncryptionKey, PublicKey};
use crate::state::keys::{self, ValidatorSlot};
use crate::state::records::Account;
use crate::state::Overlay;
use crate::types::{Amount, Role};
use crate::validators::{Validator, ValidatorSet};

pub(super) fn load(o: &Overlay<'_>, address: &Address) -> Result<Account, TxError> {
    o.read::<Account>(&keys::account(address))?
        .ok_or(TxError::UnknownAccount(*address))
}

/// The account at `address`, which must have `role`.
pub(super) fn load_with_role(o: &Overlay<'_>, address: &Address, role: Role) -> Result<Account, TxError> {
    let account = load(o, address)?;
    if account.role != role {
        return Err(TxError::WrongRole {
            account: *address,
            expected: role,
            got: account.role,
        });
    }
    Ok(account)
}

/// A clinician attested by an organisation that is still admitted.
pub(super) fn attested_clinician(o: &Overlay<'_>, clinician: &Address) -> Result<Account, TxError> {
    let account = load_with_role(o, clinician, Role::Clinician)?;
    let org = account.attested_by.ok_or(TxError::NotAttested(*clinician))?;
    match o.read::<Account>(&keys::account(&org))? {
        Some(org_account) if org_account.admitted => Ok(account),
        _ => Err(TxError::NotAttested(*clinician)),
    }
}

fn require_governance(o: &Overlay<'_>, signer: PublicKey) -> Result<(), TxError> {
    match o.read::<PublicKey>(&keys::governance())? {
        Some(governance) if governance == signer => Ok(()),
        _ => Err(TxError::NotGovernance(signer)),
    }
}

pub(super) fn register(
    o: &mut Overlay<'_>,
    signer: Address,
    role: Role,
    encryption_key: EncryptionKey,
) -> Result<(), TxError> {
    if o.contains(&keys::account(&signer)) {
        return Err(TxError::AlreadyRegistered(signer));
    }
    if o.contains(&keys::device(&signer)) {
        // A device key is not an account: keeps "who signed" unambiguous.
        return Err(TxError::DeviceAlreadyRegistered(signer));
    }
    let account = Account {
        role,
        encryption_key,
        balance: 0,
        admitted: false,
        attested_by: None,
    };
    o.write(keys::account(&signer), &account);
    Ok(())
}

pub(super) fn admit_organisation(
    o: &mut Overlay<'_>,
    signer: PublicKey,
    organisation: &Address,
) -> Result<(), TxError> {
    require_governance(o, signer)?;
    let mut account = load_with_role(o, organisation, Role::Organisation)?;
    if account.admitted {
        return Err(TxError::AlreadyAdmitted(*organisation));
    }
    account.admitted = true;
    o.write(keys::account(organisation), &account);
    Ok(())
}

pub(super) fn update_validator(
    o: &mut Overlay<'_>,
    signer: PublicKey,
    update: Validator,
) -> Result<(), TxError> {
    require_governance(o, signer)?;
    let key = keys::validators(ValidatorSlot::Pending);
    let pending: ValidatorSet = o.read(&key)?.ok_or(TxError::UnknownAccount(signer))?;
    o.write(key, &pending.with_update(update)?);
    Ok(())
}

pub(super) fn attest_clinician(
    o: &mut Overlay<'_>,
    signer: Address,
    clinician: &Address,
) -> Result<(), TxError> {
    let org = load_with_role(o, &signer, Role::Organisation)?;
    if !org.admitted {
        return Err(TxError::OrganisationNotAdmitted(signer));
    }
    let mut account = load_with_role(o, clinician, Role::Clinician)?;
    account.attested_by = Some(signer);
    o.write(keys::account(clinician), &account);
    Ok(())
}

pub(super) fn transfer(
    o: &mut Overlay<'_>,
    signer: Address,
    to: &Address,
    amount: Amount,
) -> Result<(), TxError> {
    if amount == 0 {
        return Err(TxError::ZeroAmount);
    }
    debit(o, &signer, amount)?;
    credit(o, to, amount)
}

pub(super) fn debit(o: &mut Overlay<'_>, address: &Address, amount: Amount) -> Result<(), TxError> {
    let mut account = load(o, address)?;
    account.balance = account
        .balance
        .checked_sub(amount)
        .ok_or(TxError::InsufficientBalance {
            account: *address,
            balance: account.balance,
            needed: amount,
        })?;
    o.write(keys::account(address), &account);
    Ok(())
}

pub(super) fn credit(o: &mut Overlay<'_>, address: &Address, amount: Amount) -> Result<(), TxError> {
    let mut account = load(o, address)?;
    account.balance = account.balance.checked_add(amount).ok_or(TxError::Overflow)?;
    o.write(keys::account(address), &account);
    Ok(())
}
