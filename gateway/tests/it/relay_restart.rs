//! The whole gateway against a real dev relay that is stopped and restarted in the middle:
//! every reading the simulator produced ends up committed exactly once, the patient can read
//! and decrypt a batch through the relay's consent-checked blob API and check it against its
//! commitment, and the hypoglycaemia episode raised an on-chain alert.

use crate::support::{free_port, relay_binary, wait_until, DevRelay};
use gateway::batch::window_start;
use gateway::chain::{ChainError, RelayClient};
use gateway::envelope::{open_batch_verified, Envelope};
use gateway::fhir;
use gateway::patient::{Stats, WorkerConfig};
use gateway::run::{wall_now, Gateway, RunConfig};
use gateway::sim::{DeviceKind, PatientSim};
use ledger::crypto::AccountKeys;
use ledger::state::keys::{self, ListKind};
use ledger::state::records::{Alert, DataCommitment};
use ledger::tx::{AccessRequest, Action, CareRole, Grantee, Tx};
use ledger::types::{LoincCode, Purpose, RecordId};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

const HOUR: u64 = 3_600_000;
const WINDOW: u64 = HOUR / 2;

/// Every demo account's keys from the relay's `dev-keys.json`, by name.
fn dev_accounts(path: &Path) -> BTreeMap<String, AccountKeys> {
    let file: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    file["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let seed: [u8; 32] = hex::decode(a["master_seed"].as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap();
            (
                a["name"].as_str().unwrap().to_owned(),
                AccountKeys::from_master_seed(seed),
            )
        })
        .collect()
}

/// `reader` asks the relay for a commitment's blob with a signed request.
async fn read_blob(
    client: &RelayClient,
    reader: &AccountKeys,
    id: RecordId,
    commitment: &DataCommitment,
    purpose: Purpose,
) -> Result<Vec<u8>, ChainError> {
    let request = AccessRequest {
        chain_id: client.chain_id().to_owned(),
        reader: reader.address(),
        commitment: id,
        cid: commitment.cid,
        purpose,
        time: wall_now(),
        nonce: rand::random(),
    }
    .sign(&reader.signing);
    client.get_blob(&request).await
}

/// patient-1 consents: the clinician sees everything (primary provider), the caregiver only
/// CGM glucose (temporary caregiver, one code).
async fn grant_consents(client: &RelayClient, dev: &BTreeMap<String, AccountKeys>) {
    let patient = &dev["patient-1"];
    let snap = client.snapshot().await.unwrap();
    let nonce = client.nonce(&snap, &patient.address()).await.unwrap();
    let now = wall_now();
    let glucose = LoincCode::new("99504-3").unwrap();
    let grants = [
        CareRole::PrimaryProvider.terms(Grantee::Account(dev["clinician"].address()), now, vec![]),
        CareRole::TemporaryCaregiver.terms(Grantee::Account(dev["caregiver"].address()), now, vec![glucose]),
    ];
    let mut last = None;
    for (i, terms) in grants.into_iter().enumerate() {
        let tx = Tx::new(
            patient,
            client.chain_id(),
            nonce + i as u64,
            Action::GrantConsent(terms),
        );
        last = Some(client.submit(&tx).await.unwrap().hash);
    }
    let last = last.unwrap();
    for _ in 0..200 {
        if client.tx_height(&last).await.unwrap().is_some() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("consents not committed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_survive_a_relay_restart() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("gateway=info")
        .with_test_writer()
        .try_init();
    let binary = relay_binary();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let port = free_port();
    let mut relay = DevRelay::start(&binary, &data, port).await;
    let dev = dev_accounts(&data.join("dev-keys.json"));
    grant_consents(&RelayClient::connect(&relay.url()).await.unwrap(), &dev).await;

    // Four simulated hours, 30-minute windows, at 600x: about 24 s of sealing, so the relay
    // goes down while there is still data to come.
    let backfill = 4 * HOUR;
    let start = window_start(wall_now() - backfill, WINDOW);
    let end = start + 4 * HOUR;
    let config = RunConfig {
        relay: relay.url(),
        patients: 4,
        speed: 600.0,
        spool: dir.path().join("spool"),
        keys: Some(data.join("dev-keys.json")),
        backfill_ms: backfill,
        sim_end: Some(end),
        tick: Duration::from_millis(200),
        worker: WorkerConfig {
            window_ms: WINDOW,
            resubmit_after: Duration::from_secs(5),
            ..WorkerConfig::default()
        },
    };
    let gw = Gateway::start(config).await.unwrap();
    assert_eq!(gw.patients[0].name, "patient-1", "dev patients come first");
    assert!(
        !gw.patients[3].preregistered,
        "the fourth patient registers itself"
    );

    let stats = gw.stats.clone();
    wait_until("the first commitments", Duration::from_secs(90), || {
        Stats::get(&stats.batches_committed) >= 1
    })
    .await;

    relay.stop();
    let (sealed_at_stop, sim_at_stop) = (Stats::get(&stats.batches_sealed), gw.clock.now());
    tokio::time::sleep(Duration::from_secs(4)).await;
    // 4 s at 600x is 40 simulated minutes: at least one more window, unless a very slow start
    // let the simulation reach its end before the relay went down.
    if sim_at_stop + 2 * WINDOW <= end {
        assert!(
            Stats::get(&stats.batches_sealed) > sealed_at_stop,
            "sealing goes on while the relay is down"
        );
        assert!(gw.spool.pending_count() > 0, "unsent batches wait in the spool");
    } else {
        println!("note: the simulation ended before the relay stopped; restart still tested");
    }

    let relay = DevRelay::start(&binary, &data, port).await;
    wait_until(
        "every window sealed and the spool empty",
        Duration::from_secs(180),
        || gw.drained_until(end),
    )
    .await;
    println!("{}", gw.progress_line());
    let patients = gw.patients.clone();
    let spool = gw.spool.clone();
    assert_eq!(Stats::get(&stats.batches_failed), 0);
    gw.stop().await;

    let client = RelayClient::connect(&relay.url()).await.unwrap();
    let snap = client.snapshot().await.unwrap();
    for patient in &patients {
        let me = patient.keys.address();
        let state = spool.load_state(&me).unwrap().unwrap();
        let sim = PatientSim::new(patient.sim_seed()).with_hypo_at(state.extra_hypo.unwrap());
        let mut commitments = Vec::new();
        for id in client
            .list(&snap, ListKind::PatientCommitments, &me.0)
            .await
            .unwrap()
        {
            let c: DataCommitment = client.read(&snap, &keys::commitment(&id)).await.unwrap().unwrap();
            commitments.push((id, c));
        }
        for kind in DeviceKind::ALL {
            let device = gateway::keys::device_key(&patient.master_seed, kind).public_key();
            let mut mine: Vec<&(ledger::Hash, DataCommitment)> = commitments
                .iter()
                .filter(|(_, c)| c.device == Some(device))
                .collect();
            mine.sort_by_key(|(_, c)| c.time_range.start);
            // Every reading exactly once: counts add up and no two batches overlap.
            let expected = sim.readings(kind, start, end).len() as u32;
            let committed: u32 = mine.iter().map(|(_, c)| c.reading_count).sum();
            assert_eq!(committed, expected, "{} {kind:?}", patient.name);
            assert_eq!(
                mine.len() as u64,
                (end - start) / WINDOW,
                "{} {kind:?}: one batch per window",
                patient.name
            );
            for pair in mine.windows(2) {
                assert!(pair[0].1.time_range.end < pair[1].1.time_range.start);
            }
        }

        // The patient reads a CGM batch back through the relay and checks it against the chain.
        let cgm = gateway::keys::device_key(&patient.master_seed, DeviceKind::Cgm).public_key();
        let (id, commitment) = commitments.iter().find(|(_, c)| c.device == Some(cgm)).unwrap();
        let request = AccessRequest {
            chain_id: client.chain_id().to_owned(),
            reader: me,
            commitment: *id,
            cid: commitment.cid,
            purpose: Purpose::Treatment,
            time: wall_now(),
            nonce: rand::random(),
        }
        .sign(&patient.keys.signing);
        let blob = client.get_blob(&request).await.unwrap();
        let opened = open_batch_verified(&patient.keys, &blob, commitment).unwrap();
        let from = window_start(commitment.time_range.start, WINDOW);
        let expected: Vec<f64> = sim
            .readings(DeviceKind::Cgm, from, from + WINDOW)
            .iter()
            .map(|r| match r.value {
                gateway::sim::Measurement::Glucose(g) => g,
                _ => unreachable!(),
            })
            .collect();
        let got: Vec<f64> = opened.observations.iter().map(|o| fhir::values(o)[0].1).collect();
        assert_eq!(got, expected);

        // The extra hypoglycaemia episode (90 minutes in) raised an alert on its CGM batch.
        let alerts = client.list(&snap, ListKind::PatientAlerts, &me.0).await.unwrap();
        assert!(!alerts.is_empty(), "{}: no alert", patient.name);
        let alert: Alert = client
            .read(&snap, &keys::alert(&alerts[0]))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(alert.raised_by, cgm);
        let (_, alerted) = commitments
            .iter()
            .find(|(id, _)| *id == alert.commitment)
            .unwrap();
        assert!(alerted.time_range.start <= state.extra_hypo.unwrap() + HOUR);
    }

    // patient-1's consents: each grantee got the data key of exactly the batches its
    // consent covers, and the relay serves it only those.
    let patient = &patients[0];
    let me = patient.keys.address();
    let mut by_device: BTreeMap<ledger::PublicKey, (RecordId, DataCommitment)> = BTreeMap::new();
    for id in client
        .list(&snap, ListKind::PatientCommitments, &me.0)
        .await
        .unwrap()
    {
        let c: DataCommitment = client.read(&snap, &keys::commitment(&id)).await.unwrap().unwrap();
        by_device.entry(c.device.unwrap()).or_insert((id, c));
    }
    let device = |kind| gateway::keys::device_key(&patient.master_seed, kind).public_key();
    let (cgm_id, cgm) = &by_device[&device(DeviceKind::Cgm)];
    let (bp_id, bp) = &by_device[&device(DeviceKind::BpCuff)];
    let (clinician, caregiver) = (&dev["clinician"], &dev["caregiver"]);

    let blob = read_blob(&client, clinician, *bp_id, bp, Purpose::Treatment)
        .await
        .unwrap();
    let opened = open_batch_verified(clinician, &blob, bp).unwrap();
    assert_eq!(
        fhir::values(&opened.observations[0]).len(),
        2,
        "systolic and diastolic"
    );
    let blob = read_blob(&client, caregiver, *cgm_id, cgm, Purpose::Caregiving)
        .await
        .unwrap();
    open_batch_verified(caregiver, &blob, cgm).unwrap();

    let refused = read_blob(&client, caregiver, *bp_id, bp, Purpose::Caregiving).await;
    assert!(
        matches!(refused, Err(ChainError::Status { status: 403, .. })),
        "{refused:?}"
    );
    let bp_blob = read_blob(&client, &patient.keys, *bp_id, bp, Purpose::Treatment)
        .await
        .unwrap();
    let readers: Vec<_> = Envelope::from_bytes(&bp_blob)
        .unwrap()
        .recipients
        .iter()
        .map(|w| w.recipient)
        .collect();
    assert!(
        readers.contains(&clinician.encryption_key()) && readers.contains(&patient.keys.encryption_key())
    );
    assert!(
        !readers.contains(&caregiver.encryption_key()),
        "the caregiver's consent does not cover blood pressure"
    );
    drop(relay);
}
