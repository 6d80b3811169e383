//! The whole gateway against a real dev relay that is stopped and restarted in the middle:
//! every reading the simulator produced ends up committed exactly once, the patient can read
//! and decrypt a batch through the relay's consent-checked blob API and check it against its
//! commitment, and the hypoglycaemia episode raised an on-chain alert.

use crate::support::{free_port, relay_binary, wait_until, DevRelay};
use gateway::batch::window_start;
use gateway::chain::RelayClient;
use gateway::envelope::open_batch_verified;
use gateway::fhir;
use gateway::patient::{Stats, WorkerConfig};
use gateway::run::{wall_now, Gateway, RunConfig};
use gateway::sim::{DeviceKind, PatientSim};
use ledger::state::keys::{self, ListKind};
use ledger::state::records::{Alert, DataCommitment};
use ledger::tx::AccessRequest;
use ledger::types::Purpose;
use std::time::Duration;

const HOUR: u64 = 3_600_000;
const WINDOW: u64 = HOUR / 2;

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

    // Four simulated hours, 30-minute windows, at 1200x: about 12 s of sealing.
    let backfill = 4 * HOUR;
    let start = window_start(wall_now() - backfill, WINDOW);
    let end = start + 4 * HOUR;
    let config = RunConfig {
        relay: relay.url(),
        patients: 4,
        speed: 1200.0,
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
        Stats::get(&stats.batches_committed) >= 4
    })
    .await;

    relay.stop();
    let sealed_at_stop = Stats::get(&stats.batches_sealed);
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        Stats::get(&stats.batches_sealed) > sealed_at_stop,
        "sealing goes on while the relay is down"
    );
    assert!(gw.spool.pending_count() > 0, "unsent batches wait in the spool");

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
    drop(relay);
}
