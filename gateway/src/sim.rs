//! The device simulator (issue 7 item 1): realistic vital-sign streams for one patient, as a
//! pure function of a seed and a time.
//!
//! No I/O, no clock, no state: [`PatientSim::readings`] returns the same readings for the same
//! `(seed, device, window)` whenever and in whatever order it is asked. That is what lets the
//! gateway resume after a crash from nothing but the end of its last sealed batch, and lets
//! tests ask about any hour without simulating the ones before it. Randomness is a hash of
//! `(seed, stream, index)` ([`unit()`]), smooth drift is value noise over coarse knots
//! ([`smooth`]).
//!
//! The model, per patient (parameters drawn from the seed, see [`Profile`]):
//! - **CGM glucose** every 5 min: a fasting baseline with slow drift and a dawn rise, three
//!   meals a day whose rises peak about 45 minutes after eating and fade over 3–4 hours, sensor
//!   noise, and one hypoglycaemia episode a day (plus, if asked, one at a chosen time) that
//!   takes glucose down to 48–60 mg/dL for about half an hour.
//! - **Heart rate** and **SpO2** (a wearable pulse oximeter) every 5 min: circadian rhythm,
//!   a small rise after meals and a sympathetic response (tachycardia) during hypoglycaemia.
//! - **Blood pressure** (an ambulatory cuff) every 30 min with nocturnal dipping.
//! - **Body temperature** (a skin patch) every 15 min with its evening peak.
//!
//! Times are milliseconds since the Unix epoch; the simulated day is UTC. Readings sit on a
//! per-device grid (a multiple of the device's interval plus a per-patient phase), so a window
//! `[from, to)` holds exactly the grid points inside it.

use ledger::types::{loinc, TimeMs, DAY_MS, HOUR_MS};
use std::f64::consts::PI;

const MINUTE_MS: u64 = 60_000;

/// The kinds of device every simulated patient wears.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DeviceKind {
    /// Continuous glucose monitor.
    Cgm,
    /// Wearable pulse oximeter: heart rate and SpO2.
    PulseOximeter,
    /// Ambulatory blood-pressure cuff.
    BpCuff,
    /// Skin temperature patch.
    Thermometer,
}

impl DeviceKind {
    pub const ALL: [DeviceKind; 4] = [
        DeviceKind::Cgm,
        DeviceKind::PulseOximeter,
        DeviceKind::BpCuff,
        DeviceKind::Thermometer,
    ];

    /// Time between two readings.
    pub fn interval_ms(self) -> u64 {
        match self {
            DeviceKind::Cgm | DeviceKind::PulseOximeter => 5 * MINUTE_MS,
            DeviceKind::BpCuff => 30 * MINUTE_MS,
            DeviceKind::Thermometer => 15 * MINUTE_MS,
        }
    }

    /// The LOINC codes the device produces: what it is registered with on chain and what its
    /// commitments list (DESIGN §3 "Devices").
    pub fn loinc_codes(self) -> &'static [&'static str] {
        match self {
            DeviceKind::Cgm => &[loinc::GLUCOSE_CGM],
            DeviceKind::PulseOximeter => &[loinc::HEART_RATE, loinc::SPO2],
            DeviceKind::BpCuff => &[
                loinc::BLOOD_PRESSURE_PANEL,
                loinc::SYSTOLIC_BP,
                loinc::DIASTOLIC_BP,
            ],
            DeviceKind::Thermometer => &[loinc::BODY_TEMPERATURE],
        }
    }

    /// A short name for logs, file names and FHIR Device references.
    pub fn name(self) -> &'static str {
        match self {
            DeviceKind::Cgm => "cgm",
            DeviceKind::PulseOximeter => "pulse-oximeter",
            DeviceKind::BpCuff => "bp-cuff",
            DeviceKind::Thermometer => "thermometer",
        }
    }

    /// Index used to derive the device's key and noise streams; stable forever.
    pub fn index(self) -> u8 {
        match self {
            DeviceKind::Cgm => 0,
            DeviceKind::PulseOximeter => 1,
            DeviceKind::BpCuff => 2,
            DeviceKind::Thermometer => 3,
        }
    }
}

/// One measured value, in the UCUM unit the FHIR mapping names ([`crate::fhir`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Measurement {
    /// mg/dL.
    Glucose(f64),
    /// beats per minute (`/min`).
    HeartRate(f64),
    /// percent.
    SpO2(f64),
    /// `mm[Hg]`.
    BloodPressure { systolic: f64, diastolic: f64 },
    /// degrees Celsius (`Cel`).
    BodyTemperature(f64),
}

/// One reading of one device.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reading {
    pub time: TimeMs,
    pub device: DeviceKind,
    pub value: Measurement,
}

/// A patient's physiology, drawn from the seed.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    pub seed: u64,
    /// Fasting glucose, mg/dL.
    pub glucose_base: f64,
    /// Rise at the peak of a typical meal, mg/dL.
    pub meal_rise: f64,
    /// Resting heart rate, /min.
    pub heart_rate_base: f64,
    pub spo2_base: f64,
    pub systolic_base: f64,
    pub diastolic_base: f64,
    /// Mean core temperature, °C.
    pub temperature_base: f64,
    /// Time of day of the daily hypoglycaemia episode's lowest point.
    pub hypo_time_of_day: u64,
    /// Lowest glucose of an episode, mg/dL (always below 70).
    pub hypo_nadir: f64,
}

impl Profile {
    pub fn from_seed(seed: u64) -> Self {
        let draw = |k: u64, lo: f64, hi: f64| lo + (hi - lo) * unit(seed, 1, k);
        Profile {
            seed,
            glucose_base: draw(0, 85.0, 115.0),
            meal_rise: draw(1, 45.0, 90.0),
            heart_rate_base: draw(2, 58.0, 80.0),
            spo2_base: draw(3, 95.5, 98.5),
            systolic_base: draw(4, 108.0, 138.0),
            diastolic_base: draw(5, 68.0, 86.0),
            temperature_base: draw(6, 36.5, 36.9),
            hypo_time_of_day: (draw(7, 0.0, 24.0) * HOUR_MS as f64) as u64,
            hypo_nadir: draw(8, 48.0, 60.0),
        }
    }
}

/// Half-width of a hypoglycaemia episode (glucose is below 70 mg/dL for roughly this long).
pub const HYPO_HALF_WIDTH_MS: u64 = 40 * MINUTE_MS;

/// One simulated patient.
#[derive(Clone, Debug, PartialEq)]
pub struct PatientSim {
    pub profile: Profile,
    /// An extra episode at this time (the centre), so a demo sees one soon after it starts.
    pub extra_hypo: Option<TimeMs>,
}

impl PatientSim {
    pub fn new(seed: u64) -> Self {
        PatientSim {
            profile: Profile::from_seed(seed),
            extra_hypo: None,
        }
    }

    /// Adds a hypoglycaemia episode centred at `at`.
    pub fn with_hypo_at(mut self, at: TimeMs) -> Self {
        self.extra_hypo = Some(at);
        self
    }

    fn seed(&self) -> u64 {
        self.profile.seed
    }

    /// The first grid time of `device` at or after `t`.
    fn first_grid_at_or_after(&self, device: DeviceKind, t: TimeMs) -> TimeMs {
        let interval = device.interval_ms();
        // Whole seconds, so FHIR times print without fractions.
        let phase =
            (unit(self.seed(), 2, u64::from(device.index())) * (interval / 1000) as f64) as u64 * 1000;
        let k = t.saturating_sub(phase).div_ceil(interval);
        k * interval + phase
    }

    /// Every reading `device` takes in `[from, to)`, oldest first.
    pub fn readings(&self, device: DeviceKind, from: TimeMs, to: TimeMs) -> Vec<Reading> {
        let mut out = Vec::new();
        let mut t = self.first_grid_at_or_after(device, from);
        while t < to {
            if t >= from {
                out.extend(self.readings_at(device, t));
            }
            t += device.interval_ms();
        }
        out
    }

    /// What `device` reads at grid time `t` (one reading; two for the pulse oximeter).
    fn readings_at(&self, device: DeviceKind, t: TimeMs) -> Vec<Reading> {
        let reading = |value| Reading {
            time: t,
            device,
            value,
        };
        match device {
            DeviceKind::Cgm => vec![reading(Measurement::Glucose(self.glucose_at(t)))],
            DeviceKind::PulseOximeter => vec![
                reading(Measurement::HeartRate(self.heart_rate_at(t))),
                reading(Measurement::SpO2(self.spo2_at(t))),
            ],
            DeviceKind::BpCuff => {
                let (systolic, diastolic) = self.blood_pressure_at(t);
                vec![reading(Measurement::BloodPressure { systolic, diastolic })]
            }
            DeviceKind::Thermometer => vec![reading(Measurement::BodyTemperature(self.temperature_at(t)))],
        }
    }

    /// Meal times (ms) and sizes (relative) of day `day` (days since the epoch).
    fn meals_of_day(&self, day: u64) -> [(TimeMs, f64); 3] {
        let s = self.seed();
        let start = day * DAY_MS;
        let jitter = |k: u64, spread_min: f64| ((unit(s, 3, day * 8 + k) - 0.5) * 2.0 * spread_min) as i64;
        let at = |hours: f64, j: i64| {
            (start as i64 + (hours * HOUR_MS as f64) as i64 + j * MINUTE_MS as i64) as u64
        };
        let size = |k: u64| 0.6 + 0.8 * unit(s, 4, day * 8 + k);
        [
            (at(7.25, jitter(0, 45.0)), size(0)),
            (at(12.5, jitter(1, 45.0)), size(1)),
            (at(19.0, jitter(2, 60.0)), size(2)),
        ]
    }

    /// Sum of meal responses at `t`: each a gamma-like curve peaking 45 min after the meal.
    fn meal_effect(&self, t: TimeMs) -> f64 {
        let day = t / DAY_MS;
        let mut total = 0.0;
        for d in day.saturating_sub(1)..=day {
            for (meal, size) in self.meals_of_day(d) {
                if t >= meal {
                    let hours = (t - meal) as f64 / HOUR_MS as f64;
                    let peak = 0.75;
                    if hours < 5.0 {
                        total += size * self.profile.meal_rise * (hours / peak) * (1.0 - hours / peak).exp();
                    }
                }
            }
        }
        total
    }

    /// How deep into a hypoglycaemia episode `t` is: 0 outside, 1 at the nadir.
    pub fn hypo_depth(&self, t: TimeMs) -> f64 {
        let bump = |centre: TimeMs| {
            let x = (t as f64 - centre as f64) / HYPO_HALF_WIDTH_MS as f64;
            if x.abs() < 1.0 {
                (PI * x / 2.0).cos().powi(2)
            } else {
                0.0
            }
        };
        let day = t / DAY_MS;
        let daily = (day.saturating_sub(1)..=day + 1)
            .map(|d| bump(d * DAY_MS + self.profile.hypo_time_of_day))
            .fold(0.0, f64::max);
        let extra = self.extra_hypo.map_or(0.0, bump);
        daily.max(extra)
    }

    /// Hours since midnight (UTC), as a fraction of a day's circle.
    fn day_phase(t: TimeMs) -> f64 {
        (t % DAY_MS) as f64 / DAY_MS as f64 * 2.0 * PI
    }

    /// CGM glucose, mg/dL, rounded as CGMs report it.
    pub fn glucose_at(&self, t: TimeMs) -> f64 {
        let p = &self.profile;
        let hour = (t % DAY_MS) as f64 / HOUR_MS as f64;
        // Dawn phenomenon: counter-regulatory hormones lift glucose between 4 and 8 am.
        let dawn = if (4.0..8.0).contains(&hour) {
            8.0 * (PI * (hour - 4.0) / 4.0).sin()
        } else {
            0.0
        };
        let drift = 8.0 * smooth(p.seed, 10, t, 3 * HOUR_MS);
        let sensor = 5.0 * (unit(p.seed, 11, t / MINUTE_MS) - 0.5);
        let normal = p.glucose_base + dawn + drift + self.meal_effect(t) + sensor;
        let b = self.hypo_depth(t);
        let glucose = normal * (1.0 - b) + p.hypo_nadir * b;
        glucose.clamp(40.0, 400.0).round()
    }

    /// Heart rate, /min.
    pub fn heart_rate_at(&self, t: TimeMs) -> f64 {
        let p = &self.profile;
        // Lowest around 03:00, highest in the afternoon.
        let circadian = -7.0 * (Self::day_phase(t) - 3.0 / 24.0 * 2.0 * PI).cos();
        let meals = 0.08 * self.meal_effect(t);
        let hypo = 22.0 * self.hypo_depth(t);
        let drift = 5.0 * smooth(p.seed, 20, t, 2 * HOUR_MS);
        let noise = 3.0 * (unit(p.seed, 21, t / MINUTE_MS) - 0.5);
        (p.heart_rate_base + circadian + meals + hypo + drift + noise)
            .clamp(40.0, 180.0)
            .round()
    }

    /// SpO2, %, as pulse oximeters report it (whole percent).
    pub fn spo2_at(&self, t: TimeMs) -> f64 {
        let p = &self.profile;
        let drift = 0.8 * smooth(p.seed, 30, t, HOUR_MS);
        // Brief nocturnal desaturations, as in mild sleep apnoea.
        let hour = (t % DAY_MS) as f64 / HOUR_MS as f64;
        let night_dip = if !(6.0..23.0).contains(&hour) {
            3.0 * smooth(p.seed, 31, t, 20 * MINUTE_MS).max(0.0)
        } else {
            0.0
        };
        let noise = 1.2 * (unit(p.seed, 32, t / MINUTE_MS) - 0.5);
        (p.spo2_base + drift - night_dip + noise)
            .clamp(85.0, 100.0)
            .round()
    }

    /// Systolic and diastolic blood pressure, `mm[Hg]`.
    pub fn blood_pressure_at(&self, t: TimeMs) -> (f64, f64) {
        let p = &self.profile;
        // Nocturnal dipping: about 10% lower at night, peak mid-morning.
        let circadian = -(Self::day_phase(t) - 3.0 / 24.0 * 2.0 * PI).cos();
        let drift = smooth(p.seed, 40, t, 4 * HOUR_MS);
        let hypo = self.hypo_depth(t);
        let noise = |stream| unit(p.seed, stream, t / MINUTE_MS) - 0.5;
        let systolic = p.systolic_base + 9.0 * circadian + 6.0 * drift + 8.0 * hypo + 6.0 * noise(41);
        let diastolic = p.diastolic_base + 6.0 * circadian + 4.0 * drift + 3.0 * hypo + 4.0 * noise(42);
        let systolic = systolic.clamp(80.0, 200.0).round();
        let diastolic = diastolic.clamp(45.0, systolic - 25.0).round();
        (systolic, diastolic)
    }

    /// Body temperature, °C, to one decimal.
    pub fn temperature_at(&self, t: TimeMs) -> f64 {
        let p = &self.profile;
        // Lowest in the early morning, highest around 18:00.
        let circadian = -0.3 * (Self::day_phase(t) - 6.0 / 24.0 * 2.0 * PI).sin();
        let drift = 0.12 * smooth(p.seed, 50, t, 3 * HOUR_MS);
        let noise = 0.1 * (unit(p.seed, 51, t / MINUTE_MS) - 0.5);
        let celsius = (p.temperature_base + circadian + drift + noise).clamp(35.0, 41.0);
        (celsius * 10.0).round() / 10.0
    }
}

/// SplitMix64's finaliser: a good 64-bit mix, cheap and the same on every target.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform number in `[0, 1)` for `(seed, stream, index)`.
pub fn unit(seed: u64, stream: u64, index: u64) -> f64 {
    let z = mix(mix(seed ^ stream.wrapping_mul(0xA24B_AED4_963E_E407)) ^ index);
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// Smooth noise in `[-1, 1]`: values at knots `period` apart, cosine-interpolated between them.
pub fn smooth(seed: u64, stream: u64, t: TimeMs, period: u64) -> f64 {
    let k = t / period;
    let frac = (t % period) as f64 / period as f64;
    let a = 2.0 * unit(seed, stream, k) - 1.0;
    let b = 2.0 * unit(seed, stream, k + 1) - 1.0;
    let w = (1.0 - (PI * frac).cos()) / 2.0;
    a * (1.0 - w) + b * w
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// 2026-01-01T00:00:00Z: tests start on a day boundary so the meal clock is known.
    const DAY0: TimeMs = 1_767_225_600_000;

    fn glucose(r: &Reading) -> f64 {
        match r.value {
            Measurement::Glucose(g) => g,
            other => panic!("not glucose: {other:?}"),
        }
    }

    #[test]
    fn a_cgm_reads_every_five_minutes_on_a_fixed_grid() {
        let sim = PatientSim::new(7);
        let hour = sim.readings(DeviceKind::Cgm, DAY0, DAY0 + HOUR_MS);
        assert_eq!(hour.len(), 12);
        for pair in hour.windows(2) {
            assert_eq!(pair[1].time - pair[0].time, 5 * MINUTE_MS);
        }
        // Two half-hour windows hold exactly the readings of the hour.
        let first = sim.readings(DeviceKind::Cgm, DAY0, DAY0 + HOUR_MS / 2);
        let second = sim.readings(DeviceKind::Cgm, DAY0 + HOUR_MS / 2, DAY0 + HOUR_MS);
        assert_eq!([first, second].concat(), hour);
    }

    #[test]
    fn every_device_yields_its_expected_count_per_hour() {
        let sim = PatientSim::new(3);
        for (device, per_hour) in [
            (DeviceKind::Cgm, 12),
            (DeviceKind::PulseOximeter, 24),
            (DeviceKind::BpCuff, 2),
            (DeviceKind::Thermometer, 4),
        ] {
            assert_eq!(
                sim.readings(device, DAY0 + 5 * HOUR_MS, DAY0 + 6 * HOUR_MS).len(),
                per_hour,
                "{device:?}"
            );
        }
    }

    #[test]
    fn a_day_has_meals_and_a_hypoglycaemia_episode() {
        for seed in 0..20 {
            let sim = PatientSim::new(seed);
            let day = sim.readings(DeviceKind::Cgm, DAY0, DAY0 + DAY_MS);
            let values: Vec<f64> = day.iter().map(glucose).collect();
            let min = values.iter().cloned().fold(f64::MAX, f64::min);
            let max = values.iter().cloned().fold(f64::MIN, f64::max);
            assert!(min < 70.0, "seed {seed}: no hypo, min {min}");
            assert!(max > 140.0, "seed {seed}: no meal peak, max {max}");
            // Glucose is below 70 for a real episode (several readings), not one blip.
            let low = values.iter().filter(|g| **g < 70.0).count();
            assert!((3..=24).contains(&low), "seed {seed}: {low} low readings");
        }
    }

    #[test]
    fn an_extra_episode_happens_when_asked() {
        let at = DAY0 + 10 * HOUR_MS + 17 * MINUTE_MS;
        let sim = PatientSim::new(11).with_hypo_at(at);
        assert!(sim.glucose_at(at) < 62.0);
        assert_eq!(
            sim.hypo_depth(at + HYPO_HALF_WIDTH_MS + 1),
            PatientSim::new(11).hypo_depth(at + HYPO_HALF_WIDTH_MS + 1)
        );
    }

    #[test]
    fn hypoglycaemia_raises_the_heart_rate() {
        let sim = PatientSim::new(5);
        let nadir = DAY0 + sim.profile.hypo_time_of_day;
        let during = sim.heart_rate_at(nadir);
        let before = sim.heart_rate_at(nadir - 3 * HOUR_MS);
        assert!(during > before + 8.0, "during {during}, before {before}");
    }

    proptest! {
        #[test]
        fn readings_are_deterministic_ordered_and_plausible(seed: u64, offset in 0u64..(400 * DAY_MS), len in 1u64..(6 * HOUR_MS)) {
            let from = DAY0 + offset;
            let sim = PatientSim::new(seed);
            for device in DeviceKind::ALL {
                let readings = sim.readings(device, from, from + len);
                prop_assert_eq!(&readings, &PatientSim::new(seed).readings(device, from, from + len));
                for pair in readings.windows(2) {
                    prop_assert!(pair[0].time <= pair[1].time);
                }
                for r in &readings {
                    prop_assert!(r.time >= from && r.time < from + len);
                    prop_assert_eq!(r.time % 1000, 0);
                    match r.value {
                        Measurement::Glucose(g) => prop_assert!((40.0..=400.0).contains(&g)),
                        Measurement::HeartRate(h) => prop_assert!((40.0..=180.0).contains(&h)),
                        Measurement::SpO2(s) => prop_assert!((85.0..=100.0).contains(&s)),
                        Measurement::BloodPressure { systolic, diastolic } => {
                            prop_assert!((80.0..=200.0).contains(&systolic));
                            prop_assert!(systolic - diastolic >= 25.0);
                        }
                        Measurement::BodyTemperature(c) => prop_assert!((35.0..=41.0).contains(&c)),
                    }
                }
            }
        }

        #[test]
        fn splitting_a_window_never_loses_or_repeats_a_reading(seed: u64, offset in 0u64..(30 * DAY_MS), cut in 0u64..(2 * HOUR_MS)) {
            let sim = PatientSim::new(seed);
            let (from, to) = (DAY0 + offset, DAY0 + offset + 2 * HOUR_MS);
            for device in DeviceKind::ALL {
                let whole = sim.readings(device, from, to);
                let parts = [sim.readings(device, from, from + cut), sim.readings(device, from + cut, to)].concat();
                prop_assert_eq!(whole, parts);
            }
        }
    }
}
