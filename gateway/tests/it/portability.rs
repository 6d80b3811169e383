//! FHIR portability against a real dev relay (issue 8 items 2 and 3): the gateway simulates a
//! patient's devices for two hours, the `export` subcommand writes the patient's Bundle, and
//! a third-party validator (PyPI `fhir.resources`) must accept every resource in it; the
//! `import` subcommand commits the valid Observations of a mixed bundle and reports the
//! invalid ones with their reasons.

use crate::support::{free_port, relay_binary, wait_until, DevRelay};
use gateway::batch::window_start;
use gateway::chain::RelayClient;
use gateway::envelope::open_batch_verified;
use gateway::fhir;
use gateway::patient::WorkerConfig;
use gateway::run::{wall_now, Gateway, RunConfig};
use gateway::sim::Measurement;
use ledger::state::keys::{self, ListKind};
use ledger::state::records::DataCommitment;
use ledger::tx::AccessRequest;
use ledger::types::{Purpose, RecordId};
use serde_json::json;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const BINARY: &str = env!("CARGO_BIN_EXE_medledger-gateway");
const HOUR: u64 = 3_600_000;

fn validator() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/validate_fhir.py")
}

fn gateway_cli(args: &[&str]) -> std::process::Output {
    Command::new(BINARY)
        .args(args)
        .output()
        .expect("medledger-gateway runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_passes_fhir_resources_and_an_import_keeps_the_valid_rest() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let relay = DevRelay::start(&relay_binary(), &data, free_port()).await;
    let keys_file = data.join("dev-keys.json");
    let clinician = gateway::keys::dev_account_address(&keys_file, "clinician").unwrap();

    // Two simulated hours of patient-1's devices, with a consent for the clinician.
    let window = HOUR / 2;
    let start = window_start(wall_now() - 2 * HOUR, window);
    let end = start + 2 * HOUR;
    let gw = Gateway::start(RunConfig {
        relay: relay.url(),
        patients: 1,
        speed: 1200.0,
        spool: dir.path().join("spool"),
        keys: Some(keys_file.clone()),
        backfill_ms: 2 * HOUR,
        sim_end: Some(end),
        tick: Duration::from_millis(200),
        worker: WorkerConfig {
            window_ms: window,
            consent_to: Some(clinician),
            ..WorkerConfig::default()
        },
    })
    .await
    .unwrap();
    wait_until("two hours committed", Duration::from_secs(120), || {
        gw.drained_until(end)
    })
    .await;
    let patient = gw.patients[0].clone();
    let sealed = gateway::patient::Stats::get(&gw.stats.readings_sealed);
    gw.stop().await;

    // Export through the CLI, then the third-party validator.
    let out = dir.path().join("export.json");
    let keys_arg = keys_file.to_str().unwrap();
    let run = gateway_cli(&[
        "export",
        "--relay",
        &relay.url(),
        "--keys",
        keys_arg,
        "--patient",
        "patient-1",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "export failed: {}\n{stdout}",
        String::from_utf8_lossy(&run.stderr)
    );
    println!("{stdout}");
    let check = Command::new("python3")
        .arg(validator())
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "fhir.resources refused the export (exit {:?}; 2 = not installed, run `cargo xtask setup`):\n{}",
        check.status.code(),
        String::from_utf8_lossy(&check.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&check.stdout).unwrap();
    println!("{report}");
    assert_eq!(report["resources"]["Patient"], 1);
    assert_eq!(report["resources"]["Device"], 4);
    assert_eq!(
        report["resources"]["Observation"].as_u64().unwrap(),
        sealed,
        "every committed reading"
    );
    assert_eq!(report["resources"]["Consent"], 1);
    // The validator must be able to fail: a named Patient with a bad field is refused.
    let mut bad: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    bad["entry"][0]["resource"]["gender"] = json!(42);
    let bad_path = dir.path().join("bad.json");
    std::fs::write(&bad_path, serde_json::to_vec(&bad).unwrap()).unwrap();
    let refused = Command::new("python3")
        .arg(validator())
        .arg(&bad_path)
        .output()
        .unwrap();
    assert_eq!(
        refused.status.code(),
        Some(1),
        "a malformed export must fail validation"
    );

    // Import: three valid Observations and four invalid ones, as another system's Bundle.
    let me = patient.keys.address();
    // The imported readings sit half a second past whole minutes: the simulated devices read on
    // whole seconds with a phase drawn from the patient's (random) keys, so a whole minute
    // could be one of their own readings, already on chain (~1 run in 100 failed so).
    let at = |min: u64| start + min * 60_000 + 500;
    // FHIR dateTime text of `min` minutes after the start, as our own mapping writes it.
    let t = |min: u64| {
        let o = fhir::imported_observation(at(min), &Measurement::Glucose(1.0), &me, None).unwrap();
        serde_json::to_value(o).unwrap()["effectiveDateTime"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let obs = |id: &str, code: &str, unit: &str, value: f64, at: String| {
        json!({"resourceType": "Observation", "id": id, "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "subject": {"reference": "Patient/other-system-7"},
            "effectiveDateTime": at,
            "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}})
    };
    let mut preliminary = obs("p", "8867-4", "/min", 70.0, t(3));
    preliminary["status"] = json!("preliminary");
    let input = json!({"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": obs("g1", "99504-3", "mg/dL", 111.0, t(1))},
        {"resource": obs("bad-unit", "99504-3", "mmol/L", 6.1, t(2))},
        {"resource": obs("hr", "8867-4", "/min", 64.0, t(2))},
        {"resource": preliminary},
        {"resource": {"resourceType": "Patient", "id": "x"}},
        {"resource": obs("g2", "99504-3", "mg/dL", 118.0, t(4))},
        {"resource": obs("future", "99504-3", "mg/dL", 100.0, t(60 * 24 * 400))},
    ]});
    let input_path = dir.path().join("import.json");
    std::fs::write(&input_path, serde_json::to_vec(&input).unwrap()).unwrap();
    // Runs `medledger-gateway import` of the bundle as patient-1; its stdout, checked it passed.
    let import = || {
        let run = gateway_cli(&[
            "import",
            "--relay",
            &relay.url(),
            "--keys",
            keys_arg,
            "--patient",
            "patient-1",
            "--bundle",
            input_path.to_str().unwrap(),
        ]);
        let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
        println!("{stdout}");
        assert!(
            run.status.success(),
            "import failed: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        stdout
    };
    let stdout = import();
    for (entry, reason) in [
        (1, "expected \"mg/dL\""),
        (3, "status \"preliminary\""),
        (4, "not Observation"),
        (6, "is after now"),
    ] {
        let line = format!("rejected entry {entry}: ");
        let reported = stdout.lines().find(|l| l.starts_with(&line));
        assert!(
            reported.is_some_and(|l| l.contains(reason)),
            "entry {entry}: {reported:?}"
        );
    }
    assert!(
        stdout.contains("7 entries: 3 accepted in 2 batches, 4 rejected"),
        "{stdout}"
    );

    // On chain: device-less commitments holding exactly the valid readings.
    let client = RelayClient::connect(&relay.url()).await.unwrap();
    let snap = client.snapshot().await.unwrap();
    let mut imported = Vec::new();
    for id in client
        .list(&snap, ListKind::PatientCommitments, &me.0)
        .await
        .unwrap()
    {
        let c: DataCommitment = client.read(&snap, &keys::commitment(&id)).await.unwrap().unwrap();
        if c.device.is_none() {
            let request = AccessRequest {
                chain_id: client.chain_id().to_owned(),
                reader: me,
                commitment: id,
                cid: c.cid,
                purpose: Purpose::Treatment,
                time: wall_now(),
                nonce: rand::random(),
            }
            .sign(&patient.keys.signing);
            let blob = client.get_blob(&request).await.unwrap();
            for o in open_batch_verified(&patient.keys, &blob, &c)
                .unwrap()
                .observations
            {
                imported.push((fhir::effective_ms(&o).unwrap(), fhir::values(&o)));
            }
        }
    }
    imported.sort_by_key(|(at, _)| *at);
    assert_eq!(
        imported,
        vec![
            (at(1), vec![("99504-3".to_owned(), 111.0)]),
            (at(2), vec![("8867-4".to_owned(), 64.0)]),
            (at(4), vec![("99504-3".to_owned(), 118.0)]),
        ]
    );

    // The same file again: every valid reading is already on chain, nothing is committed.
    let stdout = import();
    assert!(
        stdout.contains("7 entries: 0 accepted in 0 batches, 7 rejected"),
        "{stdout}"
    );
    for entry in [0, 2, 5] {
        let line = format!("rejected entry {entry}: already on chain");
        assert!(
            stdout.lines().any(|l| l.starts_with(&line)),
            "entry {entry}: {stdout}"
        );
    }
    let snap = client.snapshot().await.unwrap();
    let device_less = |ids: Vec<RecordId>| async {
        let mut n = 0;
        for id in ids {
            let c: DataCommitment = client.read(&snap, &keys::commitment(&id)).await.unwrap().unwrap();
            n += usize::from(c.device.is_none());
        }
        n
    };
    let ids = client
        .list(&snap, ListKind::PatientCommitments, &me.0)
        .await
        .unwrap();
    assert_eq!(device_less(ids).await, 2, "the second import committed nothing");
    drop(relay);
}
