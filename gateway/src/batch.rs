//! Batching (DESIGN §3 "Batched: one commitment covers many readings"): one batch per device
//! per window of simulated time (an hour by default), so chain load grows with patients and
//! devices, not with samples. Pure: the readings come from [`crate::sim`], the keys from the
//! caller.

use crate::envelope::{
    observation_lines, ContentType, EnvelopeError, EnvelopeHeader, SealedBatch, ENVELOPE_VERSION,
};
use crate::fhir::{self, FhirError};
use crate::sim::{DeviceKind, PatientSim};
use fhir_model::r4b::resources::Observation;
use ledger::access::scope_covers;
use ledger::crypto::{Address, EncryptionKey, Hash, PublicKey};
use ledger::state::records::{Consent, DataCommitment};
use ledger::tx::DataCommitmentBody;
use ledger::types::{Cid, DataCategory, LoincCode, TimeMs, TimeRange, ValueError};

/// A window's readings from one device, as FHIR, before encryption.
#[derive(Clone, Debug, PartialEq)]
pub struct PlainBatch {
    pub device_kind: DeviceKind,
    pub header: EnvelopeHeader,
    pub observations: Vec<Observation>,
    /// Each Observation's JSON: the payload lines and the readings' Merkle leaves.
    pub lines: Vec<Vec<u8>>,
    /// The device's registered codes, sorted: what the commitment lists.
    pub loinc_codes: Vec<LoincCode>,
}

/// Why a batch could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error(transparent)]
    Fhir(#[from] FhirError),
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error(transparent)]
    Value(#[from] ValueError),
}

/// The start of the window holding `t` (windows are aligned to multiples of `window_ms`).
pub fn window_start(t: TimeMs, window_ms: u64) -> TimeMs {
    t - t % window_ms
}

/// The readings `device` took in `[from, to)` as a batch; `None` if it took none.
pub fn build(
    sim: &PatientSim,
    patient: Address,
    device_kind: DeviceKind,
    device: PublicKey,
    from: TimeMs,
    to: TimeMs,
) -> Result<Option<PlainBatch>, BatchError> {
    let readings = sim.readings(device_kind, from, to);
    let (Some(first), Some(last)) = (readings.first(), readings.last()) else {
        return Ok(None);
    };
    // The commitment's range is public: the window's bounds, never the first and last
    // reading's times (a one-reading batch would put its exact time on chain).
    debug_assert!(first.time >= from && last.time < to);
    let time_range = TimeRange::new(from, to.saturating_sub(1))?;
    let observations = readings
        .iter()
        .map(|r| fhir::observation(r, &patient, &device))
        .collect::<Result<Vec<_>, _>>()?;
    let lines = observation_lines(&observations)?;
    // The device's registered codes, not only those present: a blood-pressure batch lists the
    // panel and both components, and the on-chain device holds exactly these.
    let mut loinc_codes = device_kind
        .loinc_codes()
        .iter()
        .map(|c| LoincCode::new(c))
        .collect::<Result<Vec<_>, _>>()?;
    loinc_codes.sort();
    Ok(Some(PlainBatch {
        device_kind,
        header: EnvelopeHeader {
            version: ENVELOPE_VERSION,
            content_type: ContentType::FhirNdjson,
            patient,
            device: Some(device),
            time_range,
        },
        observations,
        lines,
        loinc_codes,
    }))
}

impl PlainBatch {
    /// The `CommitData` body for this batch once sealed.
    pub fn commitment(&self, sealed: &SealedBatch) -> DataCommitmentBody {
        DataCommitmentBody {
            patient: self.header.patient,
            device: self.header.device,
            cid: sealed.cid,
            readings_root: sealed.readings_root,
            loinc_codes: self.loinc_codes.clone(),
            time_range: self.header.time_range,
            size: sealed.blob.len() as u64,
            reading_count: sealed.reading_count,
        }
    }
}

/// A grantee whose consent may cover a batch, with the X25519 key to wrap for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reader {
    pub consent: Consent,
    pub key: EncryptionKey,
}

/// Who gets the batch's data key (DESIGN §4): the patient, and every reader whose consent is
/// in force at `now` and whose scope covers the batch as a whole. Coverage is the ledger's own
/// rule (`ledger::access::scope_covers`, the one the relay applies to reads), so a grantee gets
/// a key exactly when the relay would serve them the blob.
pub fn recipients(
    plain: &PlainBatch,
    patient: EncryptionKey,
    readers: &[Reader],
    now: TimeMs,
) -> Vec<EncryptionKey> {
    let as_commitment = DataCommitment {
        patient: plain.header.patient,
        category: DataCategory::DeviceReadings,
        device: plain.header.device,
        author: None,
        // Not known before sealing, and not part of any scope.
        cid: Cid { digest: Hash::ZERO },
        readings_root: Hash::ZERO,
        loinc_codes: plain.loinc_codes.clone(),
        time_range: plain.header.time_range,
        size: 0,
        reading_count: 0,
        committed_at: 0,
        erased_at: None,
    };
    let mut out = vec![patient];
    out.extend(
        readers
            .iter()
            .filter(|r| r.consent.is_active_at(now) && scope_covers(&r.consent.terms.scope, &as_commitment))
            .map(|r| r.key),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{open_batch, seal_lines};
    use ledger::crypto::AccountKeys;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    const T0: u64 = 1_767_225_600_000;
    const HOUR: u64 = 3_600_000;

    #[test]
    fn each_device_batch_lists_its_codes_and_covers_its_readings() {
        let patient = AccountKeys::from_master_seed([4; 32]);
        let sim = PatientSim::new(4);
        for (kind, count, codes) in [
            (DeviceKind::Cgm, 12, vec!["99504-3"]),
            (DeviceKind::PulseOximeter, 24, vec!["2708-6", "8867-4"]),
            (DeviceKind::BpCuff, 2, vec!["8462-4", "8480-6", "85354-9"]),
            (DeviceKind::Thermometer, 4, vec!["8310-5"]),
        ] {
            let batch = build(&sim, patient.address(), kind, PublicKey([7; 32]), T0, T0 + HOUR)
                .unwrap()
                .unwrap();
            assert_eq!(batch.observations.len(), count, "{kind:?}");
            let codes: Vec<String> = codes.into_iter().map(String::from).collect();
            assert_eq!(
                batch
                    .loinc_codes
                    .iter()
                    .map(|c| c.as_str().to_owned())
                    .collect::<Vec<_>>(),
                codes
            );
            let range = batch.header.time_range;
            assert!(T0 <= range.start && range.end < T0 + HOUR);

            let mut rng = StdRng::seed_from_u64(5);
            let sealed = seal_lines(
                batch.header.clone(),
                &batch.lines,
                &[patient.encryption_key()],
                &mut rng,
            )
            .unwrap();
            let body = batch.commitment(&sealed);
            assert_eq!(body.reading_count as usize, count);
            assert_eq!(body.size, sealed.blob.len() as u64);
            assert_eq!(
                open_batch(&patient, &sealed.blob).unwrap().observations,
                batch.observations
            );
        }
    }

    #[test]
    fn grantees_get_the_key_of_exactly_the_batches_their_consent_covers() {
        use ledger::tx::{CareRole, ConsentScope, Grantee};
        let patient = AccountKeys::from_master_seed([4; 32]);
        let device = PublicKey([7; 32]);
        let sim = PatientSim::new(4);
        let cgm = build(&sim, patient.address(), DeviceKind::Cgm, device, T0, T0 + HOUR)
            .unwrap()
            .unwrap();
        let now = T0 + 2 * HOUR;
        let code = |c: &str| LoincCode::new(c).unwrap();
        let consent = |scope: ConsentScope, from: TimeMs, until: Option<TimeMs>, revoked: Option<TimeMs>| {
            let mut terms =
                CareRole::PrimaryProvider.terms(Grantee::Account(PublicKey([9; 32])), from, vec![]);
            terms.scope = scope;
            terms.valid_until = until;
            Consent {
                patient: patient.address(),
                terms,
                granted_at: from,
                revoked_at: revoked,
            }
        };
        let everything = ConsentScope::default();
        let scoped =
            |codes: Vec<LoincCode>, devices: Vec<PublicKey>, data_range: Option<TimeRange>| ConsentScope {
                categories: vec![DataCategory::DeviceReadings],
                loinc_codes: codes,
                devices,
                data_range,
            };
        // (consent, gets the key)
        let cases = [
            (consent(everything.clone(), T0, None, None), true),
            (consent(everything.clone(), now + 1, None, None), false),
            (consent(everything.clone(), T0, Some(now), None), false),
            (consent(everything.clone(), T0, None, Some(now - 1)), false),
            (
                consent(scoped(vec![code("99504-3")], vec![], None), T0, None, None),
                true,
            ),
            (
                consent(scoped(vec![code("8867-4")], vec![], None), T0, None, None),
                false,
            ),
            (consent(scoped(vec![], vec![device], None), T0, None, None), true),
            (
                consent(scoped(vec![], vec![PublicKey([8; 32])], None), T0, None, None),
                false,
            ),
            (
                consent(
                    scoped(
                        vec![],
                        vec![],
                        Some(TimeRange {
                            start: T0,
                            end: T0 + HOUR,
                        }),
                    ),
                    T0,
                    None,
                    None,
                ),
                true,
            ),
            (
                consent(
                    scoped(
                        vec![],
                        vec![],
                        Some(TimeRange {
                            start: T0 + 600_000,
                            end: T0 + HOUR,
                        }),
                    ),
                    T0,
                    None,
                    None,
                ),
                false,
            ),
            (
                consent(
                    ConsentScope {
                        categories: vec![DataCategory::ClinicianNotes],
                        ..ConsentScope::default()
                    },
                    T0,
                    None,
                    None,
                ),
                false,
            ),
        ];
        for (i, (consent, expected)) in cases.into_iter().enumerate() {
            let reader = Reader {
                consent,
                key: EncryptionKey([i as u8 + 1; 32]),
            };
            let got = recipients(&cgm, patient.encryption_key(), std::slice::from_ref(&reader), now);
            assert_eq!(
                got[0],
                patient.encryption_key(),
                "the patient always reads their data"
            );
            assert_eq!(
                got.contains(&reader.key),
                expected,
                "case {i}: {:?}",
                reader.consent.terms.scope
            );
        }
    }

    #[test]
    fn an_empty_window_is_no_batch() {
        let sim = PatientSim::new(4);
        let first = sim.readings(DeviceKind::BpCuff, T0, T0 + HOUR)[0].time;
        let between = (first + 1000, first + 60_000);
        assert!(build(
            &sim,
            PublicKey([1; 32]),
            DeviceKind::BpCuff,
            PublicKey([2; 32]),
            between.0,
            between.1
        )
        .unwrap()
        .is_none());
        assert_eq!(window_start(T0 + HOUR + 5, HOUR), T0 + HOUR);
    }
}
