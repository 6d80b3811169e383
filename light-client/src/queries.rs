//! Verified reads of the records the dashboard shows (DESIGN §3): each value is proven
//! against the trusted head's state root before it is decoded and returned. Lists are read
//! as their proven length and proven items, newest first.

use crate::client::{LightClient, Verified};
use crate::source::ChainSource;
use crate::LightClientError;
use borsh::BorshDeserialize;
use ledger::crypto::{Address, PublicKey};
use ledger::state::keys::{self, ListKind};
use ledger::state::records::{
    AccessRecord, Account, Alert, AlertRule, BreakGlass, Consent, DataCommitment, Device, Participation,
    Study,
};
use ledger::types::RecordId;

/// The most list items one call reads (each is a proof round trip).
pub const MAX_LIST_ITEMS: u64 = 200;

impl<S: ChainSource> LightClient<S> {
    /// A proven value decoded as `T`; a value that does not decode means the chain's state is
    /// not what this client version expects, reported rather than shown.
    pub async fn read<T: BorshDeserialize>(
        &mut self,
        key: &[u8],
    ) -> Result<Verified<Option<T>>, LightClientError> {
        let raw = self.value(key).await?;
        let value = match &raw.value {
            None => None,
            Some(bytes) => {
                Some(
                    ledger::codec::decode(bytes).map_err(|_| LightClientError::CorruptValue {
                        key: String::from_utf8_lossy(key).into_owned(),
                    })?,
                )
            }
        };
        Ok(raw.map(|_| value))
    }

    pub async fn account(
        &mut self,
        address: &Address,
    ) -> Result<Verified<Option<Account>>, LightClientError> {
        self.read(&keys::account(address)).await
    }

    /// The account's balance (0 for an unknown account, proven by non-inclusion).
    pub async fn balance(&mut self, address: &Address) -> Result<Verified<u64>, LightClientError> {
        Ok(self.account(address).await?.map(|a| a.map_or(0, |a| a.balance)))
    }

    pub async fn nonce(&mut self, signer: &PublicKey) -> Result<Verified<u64>, LightClientError> {
        Ok(self
            .read::<u64>(&keys::nonce(signer))
            .await?
            .map(Option::unwrap_or_default))
    }

    pub async fn device(&mut self, device: &PublicKey) -> Result<Verified<Option<Device>>, LightClientError> {
        self.read(&keys::device(device)).await
    }

    pub async fn commitment(
        &mut self,
        id: &RecordId,
    ) -> Result<Verified<Option<DataCommitment>>, LightClientError> {
        self.read(&keys::commitment(id)).await
    }

    pub async fn consent(&mut self, id: &RecordId) -> Result<Verified<Option<Consent>>, LightClientError> {
        self.read(&keys::consent(id)).await
    }

    pub async fn break_glass(
        &mut self,
        id: &RecordId,
    ) -> Result<Verified<Option<BreakGlass>>, LightClientError> {
        self.read(&keys::break_glass(id)).await
    }

    pub async fn access_record(
        &mut self,
        id: &RecordId,
    ) -> Result<Verified<Option<AccessRecord>>, LightClientError> {
        self.read(&keys::access_record(id)).await
    }

    pub async fn alert_rule(
        &mut self,
        id: &RecordId,
    ) -> Result<Verified<Option<AlertRule>>, LightClientError> {
        self.read(&keys::alert_rule(id)).await
    }

    pub async fn alert(&mut self, id: &RecordId) -> Result<Verified<Option<Alert>>, LightClientError> {
        self.read(&keys::alert(id)).await
    }

    pub async fn study(&mut self, id: &RecordId) -> Result<Verified<Option<Study>>, LightClientError> {
        self.read(&keys::study(id)).await
    }

    pub async fn participation(
        &mut self,
        study: &RecordId,
        patient: &PublicKey,
    ) -> Result<Verified<Option<Participation>>, LightClientError> {
        self.read(&keys::participation(study, patient)).await
    }

    /// The ids in one of an owner's lists, newest first, at most `limit` (≤ [`MAX_LIST_ITEMS`]).
    pub async fn list(
        &mut self,
        kind: ListKind,
        owner: &[u8; 32],
        limit: u64,
    ) -> Result<Verified<Vec<RecordId>>, LightClientError> {
        let len = self.read::<u64>(&keys::list_len(kind, owner)).await?;
        let count = len.value.unwrap_or(0);
        let mut ids = Vec::new();
        let mut proof_bytes = len.proof_bytes;
        for index in (0..count).rev().take(limit.min(MAX_LIST_ITEMS) as usize) {
            let item = self
                .read::<RecordId>(&keys::list_item(kind, owner, index))
                .await?;
            proof_bytes += item.proof_bytes;
            // The length is proven, so a missing item is a state this client cannot explain.
            let id = item.value.ok_or_else(|| LightClientError::CorruptValue {
                key: format!("{kind:?} item {index}"),
            })?;
            ids.push(id);
        }
        Ok(Verified {
            value: ids,
            height: len.height,
            state_root: len.state_root,
            proof_bytes,
        })
    }

    /// Records of a list, each proven; ids whose record is gone are skipped.
    async fn records<T: BorshDeserialize>(
        &mut self,
        kind: ListKind,
        owner: &[u8; 32],
        limit: u64,
        key: fn(&RecordId) -> Vec<u8>,
    ) -> Result<Verified<Vec<(RecordId, T)>>, LightClientError> {
        let ids = self.list(kind, owner, limit).await?;
        let mut out = Vec::with_capacity(ids.value.len());
        let mut proof_bytes = ids.proof_bytes;
        for id in &ids.value {
            let record = self.read::<T>(&key(id)).await?;
            proof_bytes += record.proof_bytes;
            if let Some(record) = record.value {
                out.push((*id, record));
            }
        }
        Ok(Verified {
            value: out,
            height: ids.height,
            state_root: ids.state_root,
            proof_bytes,
        })
    }

    pub async fn devices_of(
        &mut self,
        patient: &Address,
        limit: u64,
    ) -> Result<Verified<Vec<(PublicKey, Device)>>, LightClientError> {
        let ids = self.list(ListKind::PatientDevices, &patient.0, limit).await?;
        let mut out = Vec::new();
        let mut proof_bytes = ids.proof_bytes;
        for id in &ids.value {
            let key = PublicKey(*id.as_bytes());
            let device = self.device(&key).await?;
            proof_bytes += device.proof_bytes;
            if let Some(device) = device.value {
                out.push((key, device));
            }
        }
        Ok(Verified {
            value: out,
            height: ids.height,
            state_root: ids.state_root,
            proof_bytes,
        })
    }

    pub async fn commitments_of(
        &mut self,
        patient: &Address,
        limit: u64,
    ) -> Result<Verified<Vec<(RecordId, DataCommitment)>>, LightClientError> {
        self.records(ListKind::PatientCommitments, &patient.0, limit, keys::commitment)
            .await
    }

    pub async fn consents_of(
        &mut self,
        patient: &Address,
        limit: u64,
    ) -> Result<Verified<Vec<(RecordId, Consent)>>, LightClientError> {
        self.records(ListKind::PatientConsents, &patient.0, limit, keys::consent)
            .await
    }

    /// Consents naming `grantee` (an account, organisation or study id).
    pub async fn consents_granted_to(
        &mut self,
        grantee: &[u8; 32],
        limit: u64,
    ) -> Result<Verified<Vec<(RecordId, Consent)>>, LightClientError> {
        self.records(ListKind::GranteeConsents, grantee, limit, keys::consent)
            .await
    }

    pub async fn access_log_of(
        &mut self,
        patient: &Address,
        limit: u64,
    ) -> Result<Verified<Vec<(RecordId, AccessRecord)>>, LightClientError> {
        self.records(ListKind::PatientAccess, &patient.0, limit, keys::access_record)
            .await
    }

    pub async fn break_glass_of(
        &mut self,
        patient: &Address,
        limit: u64,
    ) -> Result<Verified<Vec<(RecordId, BreakGlass)>>, LightClientError> {
        self.records(ListKind::PatientBreakGlass, &patient.0, limit, keys::break_glass)
            .await
    }

    pub async fn alerts_of(
        &mut self,
        patient: &Address,
        limit: u64,
    ) -> Result<Verified<Vec<(RecordId, Alert)>>, LightClientError> {
        self.records(ListKind::PatientAlerts, &patient.0, limit, keys::alert)
            .await
    }

    pub async fn alert_rules_of(
        &mut self,
        patient: &Address,
        limit: u64,
    ) -> Result<Verified<Vec<(RecordId, AlertRule)>>, LightClientError> {
        self.records(ListKind::PatientAlertRules, &patient.0, limit, keys::alert_rule)
            .await
    }

    pub async fn studies(
        &mut self,
        limit: u64,
    ) -> Result<Verified<Vec<(RecordId, Study)>>, LightClientError> {
        self.records(ListKind::Studies, &[0; 32], limit, keys::study)
            .await
    }
}
