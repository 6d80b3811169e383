//! Alert-rule evaluation (DESIGN §3 "Alert rules and alerts", issue 7 item 3): pure.
//!
//! Rules live on chain (`SetAlertRule`: a LOINC code and a threshold in thousandths of the
//! code's UCUM unit, [`ledger::tx::AlertCondition`]). The gateway evaluates every reading of
//! a batch against them and raises one alert per rule per *episode*: a rule fires when a
//! reading meets its condition after one that did not (or after none). A glucose level that
//! stays below 70 mg/dL for an hour is one alert, not twelve; the chain's alert list shows
//! events, which is what a caregiver wants to be woken for.
//!
//! [`AlertTracker`] keeps whether each rule is currently firing, across batches.

use crate::fhir;
use fhir_model::r4b::resources::Observation;
use ledger::tx::AlertCondition;
use ledger::types::{RecordId, TimeMs};
use std::collections::BTreeMap;

/// A rule as the gateway evaluates it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub id: RecordId,
    pub loinc: String,
    pub condition: AlertCondition,
}

/// A rule that fired on a reading.
#[derive(Clone, Debug, PartialEq)]
pub struct Firing {
    pub rule: RecordId,
    pub loinc: String,
    pub time: TimeMs,
    pub value: f64,
}

/// A value in thousandths of its unit, as rule thresholds are stored; rounds to nearest.
pub fn to_milli(value: f64) -> i64 {
    (value * 1000.0).round() as i64
}

/// Whether each rule is firing at the end of the readings seen so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AlertTracker {
    firing: BTreeMap<RecordId, bool>,
}

impl AlertTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Evaluates `observations` (oldest first) against `rules`; returns the episodes that
    /// started, at most one per rule per start. Readings without the rule's code leave its
    /// state alone; rules no longer given are forgotten.
    pub fn evaluate(&mut self, rules: &[Rule], observations: &[Observation]) -> Vec<Firing> {
        self.firing.retain(|id, _| rules.iter().any(|r| r.id == *id));
        let mut out = Vec::new();
        for obs in observations {
            let Some(time) = fhir::effective_ms(obs) else {
                continue;
            };
            for (code, value) in fhir::values(obs) {
                for rule in rules.iter().filter(|r| r.loinc == code) {
                    let fires = rule.condition.fires(to_milli(value));
                    let was = self.firing.insert(rule.id, fires).unwrap_or(false);
                    if fires && !was {
                        out.push(Firing {
                            rule: rule.id,
                            loinc: code.clone(),
                            time,
                            value,
                        });
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{DeviceKind, Measurement, Reading};
    use ledger::crypto::{Hash, PublicKey};

    fn obs(time: TimeMs, value: Measurement) -> Observation {
        let reading = Reading {
            time,
            device: DeviceKind::Cgm,
            value,
        };
        fhir::observation(&reading, &PublicKey([1; 32]), &PublicKey([2; 32])).unwrap()
    }

    fn glucose_series(values: &[f64]) -> Vec<Observation> {
        values
            .iter()
            .enumerate()
            .map(|(i, g)| obs(1_767_225_600_000 + i as u64 * 300_000, Measurement::Glucose(*g)))
            .collect()
    }

    fn below_70() -> Rule {
        Rule {
            id: Hash([1; 32]),
            loinc: "99504-3".into(),
            condition: AlertCondition::Below { milli: 70_000 },
        }
    }

    #[test]
    fn one_alert_per_episode_table() {
        // (glucose series, how many alerts)
        let cases: &[(&[f64], usize)] = &[
            (&[100.0, 90.0, 80.0], 0),
            (&[100.0, 69.0, 60.0, 58.0], 1),
            (&[70.0, 70.0], 0),
            (&[69.9, 71.0, 65.0], 2),
            (&[55.0], 1),
        ];
        for (series, expected) in cases {
            let mut tracker = AlertTracker::new();
            let firings = tracker.evaluate(&[below_70()], &glucose_series(series));
            assert_eq!(firings.len(), *expected, "{series:?}");
        }
    }

    #[test]
    fn an_episode_spanning_two_batches_fires_once() {
        let mut tracker = AlertTracker::new();
        let first = tracker.evaluate(&[below_70()], &glucose_series(&[90.0, 64.0]));
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].value, 64.0);
        assert!(tracker
            .evaluate(&[below_70()], &glucose_series(&[60.0, 62.0]))
            .is_empty());
        assert!(tracker
            .evaluate(&[below_70()], &glucose_series(&[80.0]))
            .is_empty());
        assert_eq!(tracker.evaluate(&[below_70()], &glucose_series(&[61.0])).len(), 1);
    }

    #[test]
    fn rules_match_blood_pressure_components_and_ignore_other_codes() {
        let high_systolic = Rule {
            id: Hash([2; 32]),
            loinc: "8480-6".into(),
            condition: AlertCondition::Above { milli: 140_000 },
        };
        let mut tracker = AlertTracker::new();
        let readings = vec![
            obs(
                1,
                Measurement::BloodPressure {
                    systolic: 150.0,
                    diastolic: 90.0,
                },
            ),
            obs(2, Measurement::HeartRate(150.0)),
        ];
        let firings = tracker.evaluate(&[high_systolic.clone(), below_70()], &readings);
        assert_eq!(firings.len(), 1);
        assert_eq!(firings[0].rule, high_systolic.id);
        assert_eq!(firings[0].value, 150.0);
    }

    #[test]
    fn thresholds_compare_in_thousandths() {
        assert_eq!(to_milli(69.9996), 70_000);
        assert_eq!(to_milli(36.85), 36_850);
        assert!(AlertCondition::Below { milli: 70_000 }.fires(to_milli(69.99)));
    }
}
