//! Time to build and validate a FHIR export of one year of CGM data (issue 8 benchmark):
//! 105,120 readings (every 5 minutes for 365 days) of one patient from the simulator, no
//! network. Build = readings → Observations (fhir-model builders) → Bundle (with the Patient,
//! the Device and two Consents) → JSON. Validate = our own parse-back of every resource
//! ([`check_export`]). Then, once, the third-party validator (PyPI `fhir.resources`, R4B
//! models) on the same file, if python3 has it.
//!
//! Run: `cargo xtask bench --only fhir` (release build), or
//! `cargo bench -p medledger-gateway --no-default-features --bench fhir_export`.

use gateway::fhir;
use gateway::portability::export::{bundle, check_export, to_json, PatientRecord};
use gateway::sim::{DeviceKind, PatientSim};
use ledger::crypto::PublicKey;
use ledger::state::records::{Consent, Device};
use ledger::tx::{CareRole, Grantee};
use ledger::types::LoincCode;
use std::time::{Duration, Instant};

const T0: u64 = 1_735_689_600_000; // 2025-01-01T00:00:00Z
const YEAR_MS: u64 = 365 * 86_400_000;
const RUNS: usize = 3;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let patient = PublicKey([1; 32]);
    let device = PublicKey([2; 32]);
    let readings = PatientSim::new(42).readings(DeviceKind::Cgm, T0, T0 + YEAR_MS);
    assert_eq!(readings.len(), 105_120, "one year of 5-minute CGM readings");
    let device_record = Device {
        owner: patient,
        loinc_codes: vec![LoincCode::new("99504-3").expect("a valid LOINC code")],
        registered_at: T0,
        revoked_at: None,
    };
    let consents = vec![
        (
            ledger::Hash([3; 32]),
            Consent {
                patient,
                terms: CareRole::PrimaryProvider.terms(Grantee::Account(PublicKey([4; 32])), T0, vec![]),
                granted_at: T0,
                revoked_at: None,
            },
        ),
        (
            ledger::Hash([5; 32]),
            Consent {
                patient,
                terms: CareRole::TemporaryCaregiver.terms(Grantee::Account(PublicKey([6; 32])), T0, vec![]),
                granted_at: T0,
                revoked_at: Some(T0 + 86_400_000),
            },
        ),
    ];

    let mut rows: Vec<[Duration; 4]> = Vec::new();
    let mut json = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let observations = readings
            .iter()
            .map(|r| fhir::observation(r, &patient, &device))
            .collect::<Result<Vec<_>, _>>()
            .expect("observations build");
        let t_obs = t.elapsed();
        let t = Instant::now();
        let record = PatientRecord {
            patient,
            devices: vec![(device, device_record.clone())],
            observations,
            consents: consents.clone(),
        };
        let b = bundle(record, T0 + YEAR_MS).expect("bundle builds");
        let t_bundle = t.elapsed();
        let t = Instant::now();
        json = to_json(&b).expect("bundle serialises");
        let t_json = t.elapsed();
        drop(b);
        let t = Instant::now();
        let summary = check_export(&json).expect("the export checks");
        let t_check = t.elapsed();
        assert_eq!(summary.count("Observation"), 105_120);
        rows.push([t_obs, t_bundle, t_json, t_check]);
    }
    let best = |i: usize| rows.iter().map(|r| r[i]).min().unwrap_or_default();
    let n = readings.len() as f64;
    println!(
        "\nFHIR export of one year of CGM data: {} readings, bundle {:.1} MB (best of {RUNS} runs, release)",
        readings.len(),
        json.len() as f64 / 1e6
    );
    println!("| step | time (ms) | µs / reading |");
    println!("| --- | ---: | ---: |");
    let build = best(0) + best(1) + best(2);
    for (name, d) in [
        ("build Observations (fhir-model builders)", best(0)),
        ("assemble Bundle (+ Patient, Device, 2 Consents)", best(1)),
        ("serialise to JSON", best(2)),
        ("**build total**", build),
        ("validate: our parse-back + checks of every resource", best(3)),
        ("**build + validate**", build + best(3)),
    ] {
        println!("| {name} | {:.0} | {:.2} |", ms(d), ms(d) * 1000.0 / n);
    }

    // The third-party validator, once: the same file through PyPI fhir.resources.
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/validate_fhir.py");
    let path = std::env::temp_dir().join(format!("medledger-fhir-bench-{}.json", std::process::id()));
    if std::fs::write(&path, &json).is_err() {
        println!("(could not write {}; fhir.resources not run)", path.display());
        return;
    }
    let t = Instant::now();
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg(&path)
        .output();
    let wall = t.elapsed();
    let _ = std::fs::remove_file(&path);
    match out {
        Ok(out) if out.status.success() => {
            let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            let secs = |k: &str| report[k].as_f64().unwrap_or(f64::NAN) * 1000.0;
            println!(
                "| fhir.resources (R4B): parse + validate the Bundle | {:.0} | {:.2} |",
                secs("bundle_seconds"),
                secs("bundle_seconds") * 1000.0 / n
            );
            println!(
                "| fhir.resources (R4B): each entry resource again | {:.0} | {:.2} |",
                secs("each_seconds"),
                secs("each_seconds") * 1000.0 / n
            );
            println!(
                "| fhir.resources: whole python3 run (start-up, file read) | {:.0} | |",
                ms(wall)
            );
        }
        Ok(out) => println!(
            "fhir.resources validation FAILED or missing: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .take(5)
                .collect::<Vec<_>>()
                .join(" / ")
        ),
        Err(e) => println!("(python3 not runnable: {e}; fhir.resources not run)"),
    }
}
