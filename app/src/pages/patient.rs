//! The patient's view: account, devices, live readings, consents, access log (emergency
//! access first), alerts and alert rules, clinician notes. Every chain value is read through
//! the light client with a proof against the verified head.

use crate::api;
use crate::components::{render, ErrorBox, VerifiedMark};
use crate::error::AppError;
use crate::format;
use crate::keys::Identity;
use crate::lists;
use crate::pages::common::{name_of, parse_address, send, TxMessage, TxOutcome};
use crate::pages::erasure::Erasure;
use crate::pages::readings::ReadingsPanel;
use crate::pages::studies::PatientStudies;
use crate::readings::Reader;
use crate::state::use_state;
use gateway::sim::DeviceKind;
use ledger::crypto::SigningKey;
use ledger::state::keys::{self, ListKind};
use ledger::state::records::{
    AccessBasis, AccessRecord, Alert, AlertRule, BreakGlass, Consent, DataCommitment,
};
use ledger::tx::{Action, AlertCondition, CareRole, Grantee};
use ledger::types::{loinc, DataCategory, LoincCode, Purpose, Role, DAY_MS};
use leptos::prelude::*;

#[component]
pub fn PatientPage() -> impl IntoView {
    let state = use_state();
    move || match state.identity() {
        None => view! { <ErrorBox error=AppError::NoIdentity /> }.into_any(),
        Some(me) => view! { <PatientView me=me /> }.into_any(),
    }
}

#[component]
fn PatientView(me: Identity) -> impl IntoView {
    let reader = Reader {
        keys: me.keys.clone(),
        patient: me.keys.address(),
        purpose: Purpose::Treatment,
        scope: None,
        not_before: None,
    };
    view! {
        <div class="page patient" data-testid="patient-view">
            <AccountCard me=me.clone() />
            <section>
                <h2>"Live readings"</h2>
                <p class="muted">"Decrypted in this browser; each batch is checked against its on-chain commitment. Reading your own data is recorded in your access log too."</p>
                <ReadingsPanel reader=reader />
            </section>
            <Devices me=me.clone() />
            <Consents me=me.clone() />
            <AccessLog me=me.clone() />
            <Alerts me=me.clone() />
            <Notes me=me.clone() />
            <PatientStudies me=me.clone() />
            <Erasure me=me />
        </div>
    }
}

#[component]
pub fn AccountCard(me: Identity) -> impl IntoView {
    let state = use_state();
    let address = me.keys.address();
    let account = LocalResource::new(move || {
        state.refresh.track();
        async move { api::query(async |c| c.account(&address).await).await }
    });
    let out: TxOutcome = RwSignal::new(None);
    let keys = me.keys.clone();
    let register = move |role: Role| {
        let action = Action::RegisterAccount {
            role,
            encryption_key: keys.encryption_key(),
        };
        send(state, keys.clone(), action, "register account", out);
    };
    view! {
        <section class="account">
            <h2>"Account " <span class="muted">{me.name.clone()}</span></h2>
            <p>"address " <code data-testid="address">{address.to_hex()}</code></p>
            {move || render(account.get(), |v| {
                let proof = api::Proof::from(&v);
                match v.value {
                    Some(a) => view! {
                        <p data-testid="account">
                            "role " <b data-testid="role">{format!("{:?}", a.role)}</b>
                            " · balance " <span data-testid="balance">{a.balance}</span>
                            {a.attested_by.map(|o| format!(" · attested by {}", format::short(&o.to_hex())))}
                            " " <VerifiedMark proof=proof />
                        </p>
                    }.into_any(),
                    None => {
                        let register = register.clone();
                        view! {
                            <p>"This key has no account on chain (proven absent) " <VerifiedMark proof=proof /></p>
                            <button data-testid="register-patient" on:click=move |_| register(Role::Patient)>"Register as patient"</button>
                        }.into_any()
                    }
                }
            })}
            <TxMessage out=out />
        </section>
    }
}

#[component]
fn Devices(me: Identity) -> impl IntoView {
    let state = use_state();
    let address = me.keys.address();
    let devices = LocalResource::new(move || {
        state.refresh.track();
        async move { crate::lists::devices(&address, 20).await }
    });
    let out: TxOutcome = RwSignal::new(None);
    let keys = me.keys.clone();
    let kind = RwSignal::new(0usize);
    let new_device_secret = RwSignal::new(None::<String>);
    let register = {
        let keys = keys.clone();
        move |_| {
            let Some(kind) = DeviceKind::ALL.get(kind.get_untracked()).copied() else {
                return;
            };
            let mut seed = [0u8; 32];
            if getrandom02::getrandom(&mut seed).is_err() {
                out.set(Some(Err("no randomness in this browser".into())));
                return;
            }
            let device = SigningKey::from_seed(seed);
            let loinc_codes = kind
                .loinc_codes()
                .iter()
                .filter_map(|c| LoincCode::new(c).ok())
                .collect();
            new_device_secret.set(Some(format!(
                "new {} device {} — its secret key (give it to the device): {}",
                kind.name(),
                device.public_key().to_hex(),
                hex::encode(seed)
            )));
            send(
                state,
                keys.clone(),
                Action::RegisterDevice {
                    device: device.public_key(),
                    loinc_codes,
                },
                "register device",
                out,
            );
        }
    };
    view! {
        <section data-testid="devices">
            <h2>"Devices"</h2>
            {move || render(devices.get(), |(proof, list)| {
                let keys = keys.clone();
                let rows = list.into_iter().map(|(pk, d)| {
                    let keys = keys.clone();
                    let revoked = d.revoked_at.is_some();
                    let codes: Vec<String> = d.loinc_codes.iter().map(|c| format::loinc_name(c.as_str())).collect();
                    view! {
                        <tr class:revoked=revoked data-testid="device-row">
                            <td><code title=pk.to_hex()>{format::short(&pk.to_hex())}</code></td>
                            <td>{codes.join(", ")}</td>
                            <td>{format::time(d.registered_at)}</td>
                            <td>{match d.revoked_at {
                                Some(t) => format!("revoked {}", format::time(t)).into_any(),
                                None => view! {
                                    <button on:click=move |_| send(state, keys.clone(), Action::RevokeDevice { device: pk }, "revoke device", out)>
                                        "Revoke"
                                    </button>
                                }.into_any(),
                            }}</td>
                        </tr>
                    }
                }).collect_view();
                view! {
                    <p class="muted">"Devices registered on chain " <VerifiedMark proof=proof /></p>
                    <table><thead><tr><th>"device key"</th><th>"measures"</th><th>"registered"</th><th></th></tr></thead>
                    <tbody>{rows}</tbody></table>
                }
            })}
            <div class="form">
                <select on:change:target=move |ev| kind.set(ev.target().value().parse().unwrap_or(0))>
                    {DeviceKind::ALL.iter().enumerate().map(|(i, k)| view! { <option value=i.to_string()>{k.name()}</option> }).collect_view()}
                </select>
                <button on:click=register>"Register a new device"</button>
            </div>
            {move || new_device_secret.get().map(|s| view! { <p class="muted small">{s}</p> })}
            <TxMessage out=out />
        </section>
    }
}

const TEMPLATES: [(CareRole, &str); 4] = [
    (CareRole::PrimaryProvider, "primary provider"),
    (CareRole::SecondaryProvider, "secondary provider"),
    (CareRole::TemporaryCaregiver, "temporary caregiver"),
    (CareRole::PersonUnderCare, "person under care"),
];

pub const SCOPE_CODES: [(&str, &str); 5] = [
    (loinc::GLUCOSE_CGM, "glucose"),
    (loinc::HEART_RATE, "heart rate"),
    (loinc::SPO2, "SpO₂"),
    (loinc::BLOOD_PRESSURE_PANEL, "blood pressure"),
    (loinc::BODY_TEMPERATURE, "temperature"),
];

fn template_name(t: Option<CareRole>) -> &'static str {
    TEMPLATES
        .iter()
        .find(|(r, _)| Some(*r) == t)
        .map_or("custom", |(_, n)| n)
}

fn grantee_text(state: crate::state::AppState, g: &Grantee) -> String {
    match g {
        Grantee::Account(a) => name_of(state, a),
        Grantee::Organisation(a) => format!("organisation {}", name_of(state, a)),
        Grantee::Study(id) => format!("study {}", format::short_hash(id)),
    }
}

#[component]
fn Consents(me: Identity) -> impl IntoView {
    let state = use_state();
    let address = me.keys.address();
    let consents = LocalResource::new(move || {
        state.refresh.track();
        async move {
            lists::records::<Consent>(ListKind::PatientConsents, address.0, 20, keys::consent, false).await
        }
    });
    let out: TxOutcome = RwSignal::new(None);
    let keys = me.keys.clone();
    // The grant form.
    let grantee = RwSignal::new(String::new());
    let template = RwSignal::new(0usize);
    let purpose = RwSignal::new(String::from("template"));
    let days = RwSignal::new(String::new());
    let codes = RwSignal::new(Vec::<&'static str>::new());
    let others = move || {
        let me = address.to_hex();
        state.identities.with(|list| {
            list.iter()
                .filter(|i| i.address_hex() != me)
                .map(|i| (i.name.clone(), i.address_hex()))
                .collect::<Vec<_>>()
        })
    };
    let grant = {
        let keys = keys.clone();
        move |_| {
            let grantee_address = match parse_address(&grantee.get_untracked()) {
                Ok(a) => a,
                Err(e) => return out.set(Some(Err(format!("grant consent: {e}")))),
            };
            let (role, _) = TEMPLATES[template.get_untracked().min(TEMPLATES.len() - 1)];
            let loinc_codes: Vec<LoincCode> = codes
                .get_untracked()
                .iter()
                .filter_map(|c| LoincCode::new(c).ok())
                .collect();
            let now = api::now_ms();
            let mut terms = role.terms(Grantee::Account(grantee_address), now, loinc_codes);
            match purpose.get_untracked().as_str() {
                "treatment" => terms.purpose = Purpose::Treatment,
                "caregiving" => terms.purpose = Purpose::Caregiving,
                "research" => terms.purpose = Purpose::Research,
                _ => {}
            }
            let days_text = days.get_untracked();
            if !days_text.trim().is_empty() {
                match days_text.trim().parse::<f64>() {
                    Ok(d) if d > 0.0 => terms.valid_until = Some(now + (d * DAY_MS as f64) as u64),
                    _ => return out.set(Some(Err("grant consent: expiry must be a number of days".into()))),
                }
            }
            send(
                state,
                keys.clone(),
                Action::GrantConsent(terms),
                "grant consent",
                out,
            );
        }
    };
    view! {
        <section data-testid="consents">
            <h2>"Consents"</h2>
            {move || render(consents.get(), |(proof, list)| {
                let now = api::now_ms();
                let keys = keys.clone();
                let rows = list.into_iter().map(|(id, c)| {
                    let keys = keys.clone();
                    let active = c.is_active_at(now);
                    let status = if c.revoked_at.is_some() { "revoked" } else if active { "active" } else { "expired" };
                    let scope = if c.terms.scope.loinc_codes.is_empty() {
                        "all data".to_string()
                    } else {
                        c.terms.scope.loinc_codes.iter().map(|l| format::loinc_name(l.as_str())).collect::<Vec<_>>().join(", ")
                    };
                    view! {
                        <tr class:inactive=!active data-testid="consent-row">
                            <td>{grantee_text(state, &c.terms.grantee)}</td>
                            <td>{template_name(c.terms.template)}</td>
                            <td>{format!("{:?}", c.terms.purpose)} " · " {format!("{:?}", c.terms.access)}</td>
                            <td>{scope}</td>
                            <td>{c.terms.valid_until.map_or("no expiry".to_string(), format::time)}</td>
                            <td data-testid="consent-status">{status}</td>
                            <td>{active.then(|| view! {
                                <button data-testid="revoke-consent" on:click=move |_| send(state, keys.clone(), Action::RevokeConsent { consent: id }, "revoke consent", out)>"Revoke"</button>
                            })}</td>
                        </tr>
                    }
                }).collect_view();
                view! {
                    <p class="muted">"Who may read your data " <VerifiedMark proof=proof /></p>
                    <table><thead><tr><th>"grantee"</th><th>"template"</th><th>"purpose"</th><th>"scope"</th><th>"until"</th><th>"status"</th><th></th></tr></thead>
                    <tbody>{rows}</tbody></table>
                }
            })}
            <div class="form grant" data-testid="grant-form">
                <h3>"Grant consent"</h3>
                <label>"grantee "
                    <select data-testid="grantee-select" on:change:target=move |ev| grantee.set(ev.target().value())>
                        <option value="">"— choose —"</option>
                        {move || others().into_iter().map(|(n, a)| view! { <option value=a.clone()>{n} " (" {format::short(&a)} ")"</option> }).collect_view()}
                    </select>
                    " or address "
                    <input data-testid="grantee" size="40" prop:value=move || grantee.get() on:input:target=move |ev| grantee.set(ev.target().value()) />
                </label>
                <label>"care-role template "
                    <select data-testid="template" on:change:target=move |ev| template.set(ev.target().value().parse().unwrap_or(0))>
                        {TEMPLATES.iter().enumerate().map(|(i, (_, n))| view! { <option value=i.to_string()>{*n}</option> }).collect_view()}
                    </select>
                </label>
                <label>"purpose "
                    <select on:change:target=move |ev| purpose.set(ev.target().value())>
                        <option value="template">"as the template says"</option>
                        <option value="treatment">"treatment"</option>
                        <option value="caregiving">"caregiving"</option>
                        <option value="research">"research"</option>
                    </select>
                </label>
                <label>"expires in (days) " <input size="5" placeholder="template" prop:value=move || days.get() on:input:target=move |ev| days.set(ev.target().value()) /></label>
                <div>"scope (none ticked: all data) "
                    {SCOPE_CODES.iter().map(|&(code, name)| view! {
                        <label class="check"><input type="checkbox" on:change:target=move |ev| {
                            let on = ev.target().checked();
                            codes.update(|c| { c.retain(|x| *x != code); if on { c.push(code); if code == loinc::BLOOD_PRESSURE_PANEL { c.push(loinc::SYSTOLIC_BP); c.push(loinc::DIASTOLIC_BP); } } else if code == loinc::BLOOD_PRESSURE_PANEL { c.retain(|x| *x != loinc::SYSTOLIC_BP && *x != loinc::DIASTOLIC_BP); } });
                        } />{name}</label>
                    }).collect_view()}
                </div>
                <button data-testid="grant" on:click=grant>"Grant"</button>
            </div>
            <TxMessage out=out />
        </section>
    }
}

#[component]
fn AccessLog(me: Identity) -> impl IntoView {
    let state = use_state();
    let address = me.keys.address();
    let log = LocalResource::new(move || {
        state.refresh.track();
        async move {
            let glass = lists::records::<BreakGlass>(
                ListKind::PatientBreakGlass,
                address.0,
                10,
                keys::break_glass,
                true,
            )
            .await?;
            let reads = lists::records::<AccessRecord>(
                ListKind::PatientAccess,
                address.0,
                60,
                keys::access_record,
                true,
            )
            .await?;
            Ok::<_, AppError>((glass, reads))
        }
    });
    view! {
        <section data-testid="access-log">
            <h2>"Access log"</h2>
            {move || render(log.get(), |(glass, reads)| {
                let now = api::now_ms();
                let (glass_proof, glass) = glass;
                let (reads_proof, reads) = reads;
                let emergencies = glass.into_iter().map(|(_, b)| view! {
                    <div class="emergency" data-testid="break-glass">
                        "⚠ EMERGENCY ACCESS by " {name_of(state, &b.clinician)} " — " {format!("{:?}", b.reason)}
                        " — opened " {format::time(b.opened_at)} ", "
                        {if b.is_active_at(now) { format!("active until {}", format::time(b.expires_at)) } else { format!("ended {}", format::time(b.expires_at)) }}
                    </div>
                }).collect_view();
                // Emergency reads first, then reads by others, then your own; newest first.
                let mut rows = reads;
                let rank = |b: &AccessBasis| match b {
                    AccessBasis::BreakGlass(_) => 0,
                    AccessBasis::Consent(_) => 1,
                    AccessBasis::Owner => 2,
                };
                rows.sort_by_key(|(_, r)| (rank(&r.basis), std::cmp::Reverse(r.recorded_at)));
                let rows = rows.into_iter().take(50).map(|(_, r)| {
                    let emergency = matches!(r.basis, AccessBasis::BreakGlass(_));
                    let basis = match r.basis {
                        AccessBasis::Owner => "you (owner)".to_string(),
                        AccessBasis::Consent(id) => format!("consent {}", format::short_hash(&id)),
                        AccessBasis::BreakGlass(id) => format!("BREAK-GLASS {}", format::short_hash(&id)),
                    };
                    view! {
                        <tr class:emergency=emergency class:owner=matches!(r.basis, AccessBasis::Owner) data-testid="access-row">
                            <td>"#" {r.recorded_at}</td>
                            <td>{name_of(state, &r.reader())}</td>
                            <td>{format!("{:?}", r.purpose())}</td>
                            <td>{basis}</td>
                            <td><code>{format::short_hash(&r.request.request.commitment)}</code></td>
                            <td>{format::time(r.request.request.time)}</td>
                        </tr>
                    }
                }).collect_view();
                view! {
                    {emergencies}
                    <p class="muted">"Every read of your data, as recorded on chain " <VerifiedMark proof=reads_proof /> " break-glass records " <VerifiedMark proof=glass_proof /></p>
                    <table><thead><tr><th>"block"</th><th>"reader"</th><th>"purpose"</th><th>"under"</th><th>"batch"</th><th>"when"</th></tr></thead>
                    <tbody>{rows}</tbody></table>
                }
            })}
        </section>
    }
}

#[component]
fn Alerts(me: Identity) -> impl IntoView {
    let state = use_state();
    let address = me.keys.address();
    let data = LocalResource::new(move || {
        state.refresh.track();
        async move {
            let alerts =
                lists::records::<Alert>(ListKind::PatientAlerts, address.0, 20, keys::alert, true).await?;
            let rules = lists::records::<AlertRule>(
                ListKind::PatientAlertRules,
                address.0,
                20,
                keys::alert_rule,
                false,
            )
            .await?;
            Ok::<_, AppError>((alerts, rules))
        }
    });
    let out: TxOutcome = RwSignal::new(None);
    let keys = me.keys.clone();
    let code = RwSignal::new(loinc::GLUCOSE_CGM.to_string());
    let above = RwSignal::new(false);
    let threshold = RwSignal::new(String::from("70"));
    let add_rule = {
        let keys = keys.clone();
        move |_| {
            let Ok(value) = threshold.get_untracked().trim().parse::<f64>() else {
                return out.set(Some(Err("alert rule: the threshold must be a number".into())));
            };
            let Ok(loinc) = LoincCode::new(&code.get_untracked()) else {
                return out.set(Some(Err("alert rule: bad LOINC code".into())));
            };
            let milli = gateway::alerts::to_milli(value);
            let condition = if above.get_untracked() {
                AlertCondition::Above { milli }
            } else {
                AlertCondition::Below { milli }
            };
            send(
                state,
                keys.clone(),
                Action::SetAlertRule {
                    patient: address,
                    loinc,
                    condition,
                },
                "set alert rule",
                out,
            );
        }
    };
    view! {
        <section data-testid="alerts">
            <h2>"Alerts"</h2>
            {move || render(data.get(), |(alerts, rules)| {
                let keys = keys.clone();
                let (alerts_proof, alerts) = alerts;
                let (rules_proof, rules) = rules;
                let rule_of = |id| rules.iter().find(|(r, _)| *r == id).map(|(_, r)| r.clone());
                let alert_rows = alerts.iter().map(|(_, a)| {
                    let what = rule_of(a.rule).map_or("rule removed".to_string(), |r| {
                        format!("{} {}", format::loinc_name(r.loinc.as_str()), condition_text(&r.condition, r.loinc.as_str()))
                    });
                    view! {
                        <li class="alert" data-testid="alert">"⚠ " {what} " — block #" {a.raised_at} " · batch " <code>{format::short_hash(&a.commitment)}</code></li>
                    }
                }).collect_view();
                let rule_rows = rules.iter().filter(|(_, r)| !r.removed).map(|(id, r)| {
                    let keys = keys.clone();
                    let id = *id;
                    view! {
                        <li data-testid="alert-rule">{format::loinc_name(r.loinc.as_str())} " " {condition_text(&r.condition, r.loinc.as_str())}
                            " (set by " {name_of(state, &r.set_by)} ") "
                            <button on:click=move |_| send(state, keys.clone(), Action::RemoveAlertRule { rule: id }, "remove alert rule", out)>"Remove"</button>
                        </li>
                    }
                }).collect_view();
                view! {
                    <p class="muted">"Alerts raised on chain " <VerifiedMark proof=alerts_proof /></p>
                    <ul class="alerts">{alert_rows}</ul>
                    <h3>"Alert rules " <VerifiedMark proof=rules_proof /></h3>
                    <ul>{rule_rows}</ul>
                }
            })}
            <div class="form">
                <select on:change:target=move |ev| code.set(ev.target().value())>
                    {[loinc::GLUCOSE_CGM, loinc::HEART_RATE, loinc::SPO2, loinc::SYSTOLIC_BP, loinc::DIASTOLIC_BP, loinc::BODY_TEMPERATURE]
                        .iter().map(|c| view! { <option value=*c>{format::loinc_name(c)}</option> }).collect_view()}
                </select>
                <select on:change:target=move |ev| above.set(ev.target().value() == "above")>
                    <option value="below">"below"</option>
                    <option value="above">"above"</option>
                </select>
                <input size="6" prop:value=move || threshold.get() on:input:target=move |ev| threshold.set(ev.target().value()) />
                <button on:click=add_rule>"Add alert rule"</button>
            </div>
            <TxMessage out=out />
        </section>
    }
}

pub fn condition_text(c: &AlertCondition, code: &str) -> String {
    let unit = format::unit(code);
    match c {
        AlertCondition::Below { milli } => format!("below {} {unit}", *milli as f64 / 1000.0),
        AlertCondition::Above { milli } => format!("above {} {unit}", *milli as f64 / 1000.0),
    }
}

#[component]
fn Notes(me: Identity) -> impl IntoView {
    let state = use_state();
    let address = me.keys.address();
    let keys = me.keys.clone();
    let notes = LocalResource::new(move || {
        state.refresh.track();
        let keys = keys.clone();
        async move {
            let (proof, list) = lists::records::<DataCommitment>(
                ListKind::PatientCommitments,
                address.0,
                40,
                keys::commitment,
                true,
            )
            .await?;
            let mut out = Vec::new();
            for (id, c) in list
                .into_iter()
                .filter(|(_, c)| c.category == DataCategory::ClinicianNotes)
            {
                let text = crate::notes::read(&keys, id, &c).await;
                out.push((c, text));
            }
            Ok::<_, AppError>((proof, out))
        }
    });
    view! {
        <section data-testid="notes">
            <h2>"Clinician notes"</h2>
            {move || render(notes.get(), |(proof, list)| {
                let items = list.into_iter().map(|(c, text)| view! {
                    <li data-testid="note">
                        <b>{c.author.map(|a| name_of(state, &a)).unwrap_or_default()}</b> " · " {format::time(c.time_range.start)} ": "
                        {match text { Ok(t) => t, Err(e) => format!("⚠ {e}") }}
                    </li>
                }).collect_view();
                view! { <p class="muted">"Notes committed on chain " <VerifiedMark proof=proof /></p><ul>{items}</ul> }
            })}
        </section>
    }
}
