//! Privacy audit of the chain (issue 8 item 5, DESIGN §3 "Nothing personal is on chain in
//! plaintext").
//!
//! Runs `medledger-relay --dev` and `medledger-gateway run` for the three demo patients (two
//! simulated hours at 240x: device registrations, consents for the clinician, batch
//! commitments, a hypoglycaemia alert), and drives what the gateway does not do: the clinician
//! writes a note (sealed blob + `AddClinicianNote`) and reads a patient's batch through the
//! relay (which commits a `RecordAccess`). Then it scans every header, commit and tx of every
//! block (served by the relay's `/node` API), the genesis, every state value the node ever
//! wrote (its redb store, read after the relay stopped: the latest values and every version in
//! the Jellyfish value table) and the store file itself for the patients' names, every
//! simulated reading value and reading time of the run (regenerated with the gateway's `sim`
//! from the same keys and the spool's schedule), the note's free text and FHIR/JSON fragments.
//! Any hit fails the test, listed with where it is. The scanner must be able to fail: the test
//! plants values in a copy of a real commitment tx and checks each is found
//! (`e2e::privacy` explains the encodings and what is left out).

use anyhow::{anyhow, bail, Context};
use e2e::privacy::{time_needles, value_needles, Encoding, Hit, Needle, Scanner};
use e2e::relay::{RelayMode, RelayProcess};
use gateway::envelope::{seal_lines, ContentType, EnvelopeHeader, ENVELOPE_VERSION};
use gateway::keys::load_dev_patients;
use gateway::sim::{DeviceKind, Measurement, PatientSim};
use gateway::spool::Spool;
use ledger::crypto::{AccountKeys, Address};
use ledger::header::Block;
use ledger::tx::{commitment_id, AccessRequest, Action, AlertCondition, Grantee, Tx};
use ledger::types::{Purpose, TimeMs, TimeRange};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The note the clinician writes: free text that must never reach the chain.
const NOTE: &str = "Nocturnal hypoglycaemia twice this week; reduce basal insulin by ten percent, \
    review the sensor trace with Dr. Okonkwo-Lindqvist on Thursday.";
/// Distinctive words of [`NOTE`], searched on their own (a leak may be a fragment).
const NOTE_WORDS: &[&str] = &[
    "Nocturnal",
    "hypoglycaemia",
    "insulin",
    "Okonkwo-Lindqvist",
    "Thursday",
];
/// FHIR/JSON fragments of the readings' and the note's blobs.
const FHIR_FRAGMENTS: &[&str] = &[
    "Observation",
    "resourceType",
    "valueQuantity",
    "valueString",
    "effectiveDateTime",
    "vital-signs",
    "Vital Signs",
    "http://loinc.org",
    "unitsofmeasure",
    "mg/dL",
    "mm[Hg]",
    "Progress note",
    "\"value\":",
    "Patient/",
    "Device/",
];
/// How long the run may take to produce every kind of tx the audit needs.
const RUN_LIMIT: Duration = Duration::from_secs(150);

/// The tx kinds the audit waits for, by `Action` variant name.
const NEEDED: &[&str] = &[
    "RegisterDevice",
    "GrantConsent",
    "SetAlertRule",
    "CommitData",
    "RaiseAlert",
    "AddClinicianNote",
    "RecordAccess",
];

fn action_name(action: &Action) -> &'static str {
    match action {
        Action::RegisterAccount { .. } => "RegisterAccount",
        Action::AdmitOrganisation { .. } => "AdmitOrganisation",
        Action::UpdateValidator { .. } => "UpdateValidator",
        Action::AttestClinician { .. } => "AttestClinician",
        Action::RegisterDevice { .. } => "RegisterDevice",
        Action::RevokeDevice { .. } => "RevokeDevice",
        Action::CommitData(_) => "CommitData",
        Action::GrantConsent(_) => "GrantConsent",
        Action::RevokeConsent { .. } => "RevokeConsent",
        Action::OpenBreakGlass { .. } => "OpenBreakGlass",
        Action::RecordAccess { .. } => "RecordAccess",
        Action::AddClinicianNote { .. } => "AddClinicianNote",
        Action::SetAlertRule { .. } => "SetAlertRule",
        Action::RemoveAlertRule { .. } => "RemoveAlertRule",
        Action::RaiseAlert { .. } => "RaiseAlert",
        Action::Transfer { .. } => "Transfer",
        Action::OpenStudy(_) => "OpenStudy",
        Action::JoinStudy { .. } => "JoinStudy",
        Action::DeliverStudyData { .. } => "DeliverStudyData",
        Action::CloseStudy { .. } => "CloseStudy",
        Action::EraseData { .. } => "EraseData",
    }
}

/// A demo account from dev-keys.json.
struct DevAccount {
    name: String,
    keys: AccountKeys,
}

fn dev_accounts(path: &Path) -> anyhow::Result<Vec<DevAccount>> {
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(path)?)?;
    let accounts = doc["accounts"].as_array().ok_or_else(|| anyhow!("no accounts"))?;
    accounts
        .iter()
        .map(|a| {
            let name = a["name"].as_str().ok_or_else(|| anyhow!("no name"))?;
            let seed: [u8; 32] = hex::decode(a["master_seed"].as_str().unwrap_or_default())?
                .try_into()
                .map_err(|_| anyhow!("{name}: master_seed is not 32 bytes"))?;
            Ok(DevAccount {
                name: name.to_owned(),
                keys: AccountKeys::from_master_seed(seed),
            })
        })
        .collect()
}

/// One part of the chain to scan: where it is and its bytes.
struct Part {
    source: String,
    bytes: Vec<u8>,
}

/// What the audit learns from the blocks while they come in.
#[derive(Default)]
struct ChainView {
    parts: Vec<Part>,
    seen: BTreeMap<&'static str, usize>,
    /// Commitment range bounds on whole minutes: coarse window edges (see `add_block`).
    range_bounds: HashSet<TimeMs>,
    /// Alert thresholds (milli): on chain by design.
    thresholds: HashSet<i64>,
    /// A committed batch per patient: (record id, cid).
    batches: BTreeMap<Address, (ledger::types::RecordId, ledger::types::Cid)>,
    /// Patients who granted the clinician a consent.
    consented: BTreeSet<Address>,
    /// A real CommitData tx (for the scanner's self-check).
    sample_commit_tx: Option<Vec<u8>>,
    next_height: u64,
}

impl ChainView {
    fn add_block(
        &mut self,
        height: u64,
        block: &Block,
        commit: Vec<u8>,
        clinician: &Address,
    ) -> anyhow::Result<()> {
        self.parts.push(Part {
            source: format!("block {height} header"),
            bytes: ledger::codec::encode(&block.header),
        });
        self.parts.push(Part {
            source: format!("block {height} commit"),
            bytes: commit,
        });
        for (i, bytes) in block.txs.iter().enumerate() {
            let tx = Tx::from_bytes(bytes).map_err(|e| anyhow!("block {height} tx {i}: {e}"))?;
            let name = action_name(&tx.body.action);
            *self.seen.entry(name).or_default() += 1;
            match &tx.body.action {
                Action::CommitData(body) => {
                    // A coarse bound (a window edge on a whole minute) may equal a reading's
                    // time by chance; a bound at a reading's exact second is that reading's
                    // time on chain, and stays a hit.
                    for bound in [body.time_range.start, body.time_range.end] {
                        if bound % 60_000 == 0 {
                            self.range_bounds.insert(bound);
                        }
                    }
                    let id = commitment_id(&body.cid);
                    self.batches.entry(body.patient).or_insert((id, body.cid));
                    self.sample_commit_tx.get_or_insert_with(|| bytes.clone());
                }
                Action::SetAlertRule { condition, .. } => {
                    let (AlertCondition::Below { milli } | AlertCondition::Above { milli }) = condition;
                    self.thresholds.insert(*milli);
                }
                Action::GrantConsent(terms) if terms.grantee == Grantee::Account(*clinician) => {
                    self.consented.insert(tx.body.signer);
                }
                _ => {}
            }
            self.parts.push(Part {
                source: format!("block {height} tx {i} ({name})"),
                bytes: bytes.clone(),
            });
        }
        Ok(())
    }

    fn missing(&self) -> Vec<&'static str> {
        NEEDED
            .iter()
            .copied()
            .filter(|n| !self.seen.contains_key(n))
            .collect()
    }
}

/// The relay's HTTP API as the audit uses it.
struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn height(&self) -> anyhow::Result<u64> {
        let status: serde_json::Value = self
            .http
            .get(format!("{}/node/status", self.base))
            .send()
            .await?
            .json()
            .await?;
        status["height"]
            .as_u64()
            .ok_or_else(|| anyhow!("no height in {status}"))
    }

    async fn bytes(&self, path: &str) -> anyhow::Result<Vec<u8>> {
        let response = self.http.get(format!("{}{path}", self.base)).send().await?;
        Ok(response.error_for_status()?.bytes().await?.to_vec())
    }

    /// Reads every block up to the relay's height into `view`.
    async fn catch_up(&self, view: &mut ChainView, clinician: &Address) -> anyhow::Result<()> {
        let height = self.height().await?;
        // Blocks start at height 1.
        view.next_height = view.next_height.max(1);
        while view.next_height <= height {
            let h = view.next_height;
            let raw = self.bytes(&format!("/node/block/{h}")).await?;
            let block: Block = ledger::codec::decode(&raw).map_err(|e| anyhow!("block {h}: {e}"))?;
            let commit = self.bytes(&format!("/node/commit/{h}")).await?;
            view.add_block(h, &block, commit, clinician)?;
            view.next_height += 1;
        }
        Ok(())
    }

    async fn submit(&self, tx: &Tx) -> anyhow::Result<()> {
        let response = self
            .http
            .post(format!("{}/node/tx", self.base))
            .body(tx.to_bytes())
            .send()
            .await?;
        let ok = response.status().is_success();
        let body = response.text().await?;
        if !ok {
            bail!("tx refused: {body}");
        }
        Ok(())
    }
}

/// The clinician's note for `patient`: a FHIR Observation with the free text, sealed for the
/// patient and the clinician, stored on the relay, and committed on chain.
async fn write_note(
    api: &Api,
    chain_id: &str,
    clinician: &AccountKeys,
    patient: &AccountKeys,
) -> anyhow::Result<()> {
    let now = now_ms();
    let line = serde_json::to_vec(&serde_json::json!({
        "resourceType": "Observation",
        "status": "final",
        "code": { "coding": [{ "system": "http://loinc.org", "code": "11506-3", "display": "Progress note" }] },
        "subject": { "reference": format!("Patient/{}", patient.address().to_hex()) },
        "effectiveDateTime": e2e::privacy::iso8601_seconds(now) + "Z",
        "valueString": NOTE,
    }))?;
    let time_range = TimeRange { start: now, end: now };
    let header = EnvelopeHeader {
        version: ENVELOPE_VERSION,
        content_type: ContentType::FhirNdjson,
        patient: patient.address(),
        device: None,
        time_range,
    };
    let sealed = seal_lines(
        header,
        &[line],
        &[patient.encryption_key(), clinician.encryption_key()],
        &mut rand::thread_rng(),
    )?;
    api.http
        .put(format!("{}/blobs/{}", api.base, sealed.cid.to_text()))
        .body(sealed.blob.clone())
        .send()
        .await?
        .error_for_status()
        .context("storing the note blob")?;
    // The clinician's first tx: nonce 0.
    let tx = Tx::new(
        clinician,
        chain_id,
        0,
        Action::AddClinicianNote {
            patient: patient.address(),
            cid: sealed.cid,
            size: sealed.blob.len() as u64,
            time_range,
        },
    );
    api.submit(&tx).await.context("AddClinicianNote")
}

/// The clinician reads one of the patient's batches; the relay serves it and commits the
/// access record.
async fn read_batch(
    api: &Api,
    chain_id: &str,
    clinician: &AccountKeys,
    batch: (ledger::types::RecordId, ledger::types::Cid),
) -> anyhow::Result<()> {
    let request = AccessRequest {
        chain_id: chain_id.to_owned(),
        reader: clinician.address(),
        commitment: batch.0,
        cid: batch.1,
        purpose: Purpose::Treatment,
        time: now_ms(),
        nonce: rand::random(),
    }
    .sign(&clinician.signing);
    let response = api
        .http
        .post(format!("{}/blobs/get", api.base))
        .body(ledger::codec::encode(&request))
        .send()
        .await?;
    let status = response.status();
    let body = response.bytes().await?;
    if !status.is_success() {
        bail!("blob read refused ({status}): {}", String::from_utf8_lossy(&body));
    }
    anyhow::ensure!(
        batch.1.matches(&body),
        "the relay served other bytes than the CID"
    );
    Ok(())
}

fn now_ms() -> TimeMs {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as TimeMs)
        .unwrap_or(0)
}

fn start_gateway(relay: &RelayProcess, keys: &Path, spool: &Path, log: &Path) -> anyhow::Result<Child> {
    let binary = e2e::workspace_binary("medledger-gateway", "MEDLEDGER_GATEWAY_BIN");
    Command::new(binary)
        .args(["run", "--relay", &relay.http_url()])
        .arg("--keys")
        .arg(keys)
        // Two simulated hours at 240x: the extra hypoglycaemia episode (90 minutes in) fires
        // the default glucose alert about 25 s after the start. 10-minute windows keep each
        // blob to a handful of readings (a few KiB: see `e2e::privacy` on i64 milli values).
        .args(["--patients", "3", "--speed", "240", "--window-minutes", "10"])
        .args(["--backfill-hours", "2", "--consent-to", "clinician"])
        .arg("--spool")
        .arg(spool)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log)?)
        .spawn()
        .context("starting medledger-gateway")
}

/// Every reading the gateway simulated for the demo patients (and their names), as needles.
/// The simulation is a pure function of the patient's key and the schedule in the spool, so
/// the same readings come out here.
fn reading_needles(
    keys: &Path,
    spool: &Path,
    range_bounds: &HashSet<TimeMs>,
    thresholds: &HashSet<i64>,
) -> anyhow::Result<(Vec<Needle>, usize)> {
    let (_, patients) = load_dev_patients(keys)?;
    let spool = Spool::open(spool)?;
    let mut needles = Vec::new();
    let mut values = BTreeSet::new();
    let mut times = BTreeSet::new();
    let mut readings = 0;
    for patient in &patients {
        let state = spool
            .load_state(&patient.keys.address())?
            .ok_or_else(|| anyhow!("{}: the gateway never started", patient.name))?;
        let extra_hypo = state
            .extra_hypo
            .ok_or_else(|| anyhow!("{}: no extra hypo", patient.name))?;
        // The gateway schedules the extra episode 90 minutes after its first window.
        let first_window = extra_hypo - 90 * 60_000;
        let sim = PatientSim::new(patient.sim_seed()).with_hypo_at(extra_hypo);
        for kind in DeviceKind::ALL {
            for reading in sim.readings(kind, first_window, state.next_window) {
                readings += 1;
                times.insert((reading.time, patient.name.clone()));
                let named = |what: &str, v: f64| (format!("{what} {v} of {}", patient.name), v.to_bits());
                match reading.value {
                    Measurement::Glucose(v) => values.insert(named("glucose", v)),
                    Measurement::HeartRate(v) => values.insert(named("heart rate", v)),
                    Measurement::SpO2(v) => values.insert(named("SpO2", v)),
                    Measurement::BodyTemperature(v) => values.insert(named("temperature", v)),
                    Measurement::BloodPressure { systolic, diastolic } => {
                        values.insert(named("systolic", systolic));
                        values.insert(named("diastolic", diastolic))
                    }
                };
            }
        }
        needles.push(Needle::text(format!("name of {}", patient.name), &patient.name));
    }
    for (what, bits) in values {
        let value = f64::from_bits(bits);
        needles.extend(value_needles(&what, value).into_iter().filter(|n| {
            // An alert threshold is public by design; a reading equal to it is no leak.
            !(n.encoding == Encoding::MilliI64Le
                && thresholds.contains(&i64::from_le_bytes(n.bytes[..8].try_into().unwrap_or_default())))
        }));
    }
    for (time, name) in times {
        // A reading exactly on a coarse window edge tells nothing the commitment does not.
        if range_bounds.contains(&time) {
            continue;
        }
        needles.extend(time_needles(&format!("reading time {time} of {name}"), time));
    }
    Ok((needles, readings))
}

/// Every state value the node wrote: the latest values (the written-behind table and the
/// per-block diffs not yet flushed into it) and every version the Jellyfish tree keeps. The
/// node keeps its table definitions private; names and key/value types here are its schema
/// version 3 (node/src/store.rs).
fn state_parts(store: &Path) -> anyhow::Result<Vec<Part>> {
    use redb::{ReadableDatabase, ReadableTable, TableDefinition};
    const STATE_LATEST: TableDefinition<&[u8], &[u8]> = TableDefinition::new("state_latest");
    const STATE_DIFFS: TableDefinition<u64, &[u8]> = TableDefinition::new("state_diffs");
    const JMT_VALUES: TableDefinition<&[u8; 40], &[u8]> = TableDefinition::new("jmt_values");
    let db = redb::Database::open(store).with_context(|| format!("opening {}", store.display()))?;
    let txn = db.begin_read()?;
    let mut parts = Vec::new();
    for entry in txn.open_table(STATE_LATEST)?.iter()? {
        let (key, value) = entry?;
        parts.extend(state_entry_parts(key.value(), Some(value.value())));
    }
    for entry in txn.open_table(STATE_DIFFS)?.iter()? {
        let (height, diff) = entry?;
        let diff: ledger::state::StateDiff = ledger::codec::decode(diff.value())
            .with_context(|| format!("state diff of height {}", height.value()))?;
        for (key, value) in &diff {
            parts.extend(state_entry_parts(key, value.as_deref()));
        }
    }
    for entry in txn.open_table(JMT_VALUES)?.iter()? {
        let (key, value) = entry?;
        parts.push(Part {
            source: format!("state history {}", hex::encode(key.value())),
            bytes: value.value().to_vec(),
        });
    }
    Ok(parts)
}

/// One state entry as two parts: the key's id and the value.
///
/// The namespace is fixed ASCII ("commitment/"), so glued to the raw id that follows it, an
/// id starting with a few printable bytes formed a "text run" in which a reading like "99"
/// matched by chance (a CI run hit exactly that). The id and the value are scanned as parts
/// of their own; the namespace carries no personal data.
fn state_entry_parts(key: &[u8], value: Option<&[u8]>) -> Vec<Part> {
    let namespace_len = key.iter().take_while(|&&b| b != b'/').count();
    let namespace = String::from_utf8_lossy(&key[..namespace_len]);
    let id = &key[namespace_len..];
    let source = format!("state {namespace}{}", hex::encode(id));
    let id = id.strip_prefix(b"/").unwrap_or(id);
    let mut parts = vec![Part {
        source: format!("{source} key"),
        bytes: id.to_vec(),
    }];
    if let Some(value) = value {
        parts.push(Part {
            source,
            bytes: value.to_vec(),
        });
    }
    parts
}

/// Plants personal data into a copy of a real tx and checks the scanner reports each: the
/// audit would fail if any of them reached the chain.
fn scanner_finds_planted_values(scanner: &Scanner, tx: &[u8]) {
    let pick = |encoding: Encoding| {
        scanner
            .needles()
            .iter()
            .find(|n| n.encoding == encoding)
            .unwrap_or_else(|| panic!("no {encoding:?} needle"))
            .clone()
    };
    let decimal = pick(Encoding::DecimalInText);
    let json = format!(
        "{{\"valueQuantity\":{{\"value\":{}}}}}",
        String::from_utf8_lossy(&decimal.bytes)
    );
    let plants = [
        (Needle::text("note", NOTE), NOTE.as_bytes().to_vec()),
        (decimal.clone(), json.into_bytes()),
        (pick(Encoding::F64Le), pick(Encoding::F64Le).bytes),
        (pick(Encoding::MilliI64Le), pick(Encoding::MilliI64Le).bytes),
        (pick(Encoding::TimeU64Le), pick(Encoding::TimeU64Le).bytes),
        (pick(Encoding::BorshString), pick(Encoding::BorshString).bytes),
    ];
    for (needle, plant) in plants {
        let mut copy = tx.to_vec();
        let at = copy.len() / 2;
        copy.splice(at..at, plant);
        let hits = scanner.scan("planted copy", &copy);
        assert!(
            hits.iter()
                .any(|h| h.offset >= at && h.encoding == needle.encoding),
            "the scanner missed a planted {:?} ({}): {hits:?}",
            needle.encoding,
            needle.what
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_plaintext_personal_data_reaches_the_chain() {
    let _network = e2e::one_network_at_a_time().await;
    let dir = e2e::workspace_root()
        .join("target")
        .join("e2e")
        .join(format!("privacy-audit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // Build both binaries before anything starts, so the run's clock is the run's.
    e2e::workspace_binary("medledger-gateway", "MEDLEDGER_GATEWAY_BIN");
    let data = dir.join("relay");
    let (mut relay, discovery) = RelayProcess::start(RelayMode::Dev, &data).await.unwrap();
    let keys_file = data.join("dev-keys.json");
    let spool = dir.join("spool");
    let gateway_log = dir.join("gateway.log");
    let mut gateway = start_gateway(&relay, &keys_file, &spool, &gateway_log).unwrap();
    let accounts = dev_accounts(&keys_file).unwrap();
    let account = |name: &str| {
        &accounts
            .iter()
            .find(|a| a.name == name)
            .unwrap_or_else(|| panic!("no {name} in dev-keys.json"))
            .keys
    };
    let clinician = account("clinician");
    let chain_id = discovery.chain_id.clone();
    let api = Api {
        base: relay.http_url(),
        http: reqwest::Client::new(),
    };

    let started = Instant::now();
    let mut view = ChainView::default();
    let (mut noted, mut read) = (false, false);
    while !view.missing().is_empty() {
        assert!(
            started.elapsed() < RUN_LIMIT,
            "after {RUN_LIMIT:?} the chain still lacks {:?} (seen {:?}; gateway log {}, relay {})",
            view.missing(),
            view.seen,
            gateway_log.display(),
            data.display()
        );
        if let Ok(Some(status)) = gateway.try_wait() {
            panic!("the gateway exited ({status}); see {}", gateway_log.display());
        }
        api.catch_up(&mut view, &clinician.address()).await.unwrap();
        // The clinician acts once a patient consented and has a batch on chain.
        let ready = view
            .batches
            .iter()
            .find(|(patient, _)| view.consented.contains(*patient))
            .map(|(patient, batch)| (*patient, *batch));
        if let Some((patient, batch)) = ready {
            let patient_keys = accounts
                .iter()
                .map(|a| &a.keys)
                .find(|k| k.address() == patient)
                .expect("a consenting patient is a demo account");
            if !noted {
                write_note(&api, &chain_id, clinician, patient_keys)
                    .await
                    .unwrap();
                noted = true;
            }
            if !read {
                read_batch(&api, &chain_id, clinician, batch).await.unwrap();
                read = true;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let _ = gateway.kill();
    let _ = gateway.wait();
    api.catch_up(&mut view, &clinician.address()).await.unwrap();
    let genesis = api.bytes("/genesis").await.unwrap();
    relay.kill();
    let run_secs = started.elapsed().as_secs_f32();

    let (mut needles, readings) =
        reading_needles(&keys_file, &spool, &view.range_bounds, &view.thresholds).unwrap();
    for a in &accounts {
        needles.push(Needle::text(format!("account name {}", a.name), &a.name));
    }
    needles.push(Needle::text("the note", NOTE));
    for word in NOTE_WORDS {
        needles.push(Needle::text(format!("note word {word:?}"), word));
    }
    for fragment in FHIR_FRAGMENTS {
        needles.push(Needle::text(format!("FHIR/JSON {fragment:?}"), fragment));
    }
    for code in ["99504-3", "8867-4", "2708-6", "8480-6", "8462-4", "8310-5"] {
        // LOINC codes are on chain by design; their display names are not.
        if let Some((display, _)) = gateway::fhir::describe(code) {
            needles.push(Needle::text(format!("LOINC display of {code}"), display));
        }
    }
    let scanner = Scanner::new(needles);

    let store = data.join("node").join("data").join("store.redb");
    let mut parts = std::mem::take(&mut view.parts);
    parts.push(Part {
        source: "genesis".into(),
        bytes: genesis,
    });
    parts.extend(state_parts(&store).unwrap());
    let state_values = parts
        .iter()
        .filter(|p| p.source.starts_with("state") && !p.source.ends_with(" key"))
        .count();
    parts.push(Part {
        source: "store file".into(),
        bytes: std::fs::read(&store).unwrap(),
    });
    let scanned: usize = parts.iter().map(|p| p.bytes.len()).sum();
    let hits: Vec<Hit> = parts
        .iter()
        .flat_map(|p| scanner.scan(&p.source, &p.bytes))
        // The raw store file is the backstop for text that escaped the decoded views, so only
        // text needles count there. Its pages are full of short binary structures that match
        // binary needles by accident (runs found 128,000 = a systolic 128 in milli units as an
        // i64 in redb's header, and `02 00 00 00 35 35` = "55" as a borsh string in a node
        // page), and every value a binary encoding could hide in is already scanned above,
        // decoded, as a tx or a state value.
        .filter(|hit| hit.source != "store file" || hit.encoding == Encoding::Text)
        .collect();
    println!(
        "privacy audit: {} blocks, txs {:?}, {state_values} state entries, {readings} readings \
         regenerated, {} needles, {scanned} bytes scanned, run {run_secs:.0} s",
        view.next_height.saturating_sub(1),
        view.seen,
        scanner.needles().len()
    );

    let sample = view.sample_commit_tx.clone().expect("a CommitData tx");
    scanner_finds_planted_values(&scanner, &sample);

    if !hits.is_empty() {
        let shown: Vec<String> = hits.iter().take(50).map(ToString::to_string).collect();
        panic!(
            "{} plaintext hits on chain (first {}):\n{}",
            hits.len(),
            shown.len(),
            shown.join("\n")
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
