//! The privacy audit's scanner (issue 8 item 5, DESIGN §3 "Nothing personal is on chain in
//! plaintext"): looks for known personal data in chain bytes (headers, txs, commits, state
//! values) and reports every hit with where it is.
//!
//! A [`Needle`] is one piece of personal data in one encoding. Which encodings, and why:
//! - [`Encoding::Text`]: names, free text, FHIR/JSON fragments, ISO-8601 times and ms times as
//!   decimal text. All are long enough (5+ bytes of letters or 10+ digits) that random or
//!   binary bytes do not contain them by chance, so they are searched everywhere.
//! - [`Encoding::DecimalInText`]: a reading value as decimal text ("93", "36.8"). Two to five
//!   characters occur by chance in any few KiB of hashes and keys, so these are searched only
//!   inside runs of at least [`MIN_TEXT_RUN`] printable ASCII bytes (JSON, FHIR, CSV, a note),
//!   and only where no digit or '.' touches them (so "93" does not match inside "1930").
//!   Borsh-encoded chain data has no such runs of its own (strings are short and
//!   length-prefixed), so anything found there is text someone put on chain.
//! - [`Encoding::BorshString`]: the same decimal text as a borsh `String` (u32 LE length ‖
//!   bytes): a value stored as a short string field, which the text-run rule would miss.
//! - [`Encoding::F64Le`] / [`Encoding::F64Be`]: the value as an IEEE double, how Rust, JSON
//!   parsers and CBOR hold measurements. 8 bytes whose exponent byte (0x40 for 2..1024) makes
//!   chance matches with counters, hashes or timestamps negligible.
//! - [`Encoding::MilliI64Le`]: the value in thousandths as i64 LE, how the ledger itself stores
//!   quantities (alert thresholds, `AlertCondition::Below { milli }`), so the most natural
//!   way for a reading to reach the chain. Values 30,000..400,000 could collide with a u64
//!   count or size field of that magnitude; the audit keeps blob sizes far below by batching
//!   few readings, and treats values equal to an on-chain alert threshold as that threshold
//!   (a rule is public by design; a reading equal to it is a coincidence, not a leak).
//! - [`Encoding::TimeU64Le`] / [`Encoding::TimeU64Be`]: reading times (ms and s) as u64: 8
//!   bytes of a ~1.7e12 or ~1.7e9 value, which only a timestamp field can hold.
//!
//! Not searched, on purpose: 4-byte encodings (f32, i32 milli) and single bytes or u16 of
//! integer readings (a heart rate of 72 is the byte 0x48): in several MiB of hashes such short
//! patterns match by chance hundreds of times, so a hit would mean nothing.

use aho_corasick::{AhoCorasick, MatchKind};
use std::fmt;

/// Shortest run of printable ASCII in which a reading's decimal text counts as a hit.
pub const MIN_TEXT_RUN: usize = 12;

/// How a [`Needle`]'s bytes encode its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Encoding {
    Text,
    DecimalInText,
    BorshString,
    F64Le,
    F64Be,
    MilliI64Le,
    TimeU64Le,
    TimeU64Be,
}

/// One piece of personal data in one encoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Needle {
    /// What it is, for the report ("glucose 93 of patient-1 at ...").
    pub what: String,
    pub encoding: Encoding,
    pub bytes: Vec<u8>,
}

impl Needle {
    pub fn text(what: impl Into<String>, text: &str) -> Needle {
        Needle {
            what: what.into(),
            encoding: Encoding::Text,
            bytes: text.as_bytes().to_vec(),
        }
    }
}

/// Every needle of one measured value (see the module docs for the choice of encodings).
pub fn value_needles(what: &str, value: f64) -> Vec<Needle> {
    let mut texts = vec![format!("{value}"), format!("{value:.1}")];
    texts.dedup();
    let mut out = Vec::new();
    for text in texts {
        let mut borsh = (text.len() as u32).to_le_bytes().to_vec();
        borsh.extend_from_slice(text.as_bytes());
        out.push(Needle {
            what: format!("{what} as borsh string {text:?}"),
            encoding: Encoding::BorshString,
            bytes: borsh,
        });
        out.push(Needle {
            what: format!("{what} as text {text:?}"),
            encoding: Encoding::DecimalInText,
            bytes: text.into_bytes(),
        });
    }
    let milli = (value * 1000.0).round() as i64;
    out.push(Needle {
        what: format!("{what} as f64 LE"),
        encoding: Encoding::F64Le,
        bytes: value.to_le_bytes().to_vec(),
    });
    out.push(Needle {
        what: format!("{what} as f64 BE"),
        encoding: Encoding::F64Be,
        bytes: value.to_be_bytes().to_vec(),
    });
    out.push(Needle {
        what: format!("{what} as i64 milli {milli}"),
        encoding: Encoding::MilliI64Le,
        bytes: milli.to_le_bytes().to_vec(),
    });
    out
}

/// Every needle of one reading time (ms since the epoch).
pub fn time_needles(what: &str, ms: u64) -> Vec<Needle> {
    let seconds = ms / 1000;
    vec![
        Needle::text(format!("{what} as ms text"), &ms.to_string()),
        Needle::text(format!("{what} as s text"), &seconds.to_string()),
        Needle::text(format!("{what} as ISO-8601"), &iso8601_seconds(ms)),
        Needle {
            what: format!("{what} as u64 ms LE"),
            encoding: Encoding::TimeU64Le,
            bytes: ms.to_le_bytes().to_vec(),
        },
        Needle {
            what: format!("{what} as u64 ms BE"),
            encoding: Encoding::TimeU64Be,
            bytes: ms.to_be_bytes().to_vec(),
        },
        Needle {
            what: format!("{what} as u64 s LE"),
            encoding: Encoding::TimeU64Le,
            bytes: seconds.to_le_bytes().to_vec(),
        },
        Needle {
            what: format!("{what} as u64 s BE"),
            encoding: Encoding::TimeU64Be,
            bytes: seconds.to_be_bytes().to_vec(),
        },
    ]
}

/// `YYYY-MM-DDTHH:MM:SS` (UTC) of `ms`: the prefix every FHIR `dateTime` of that second has,
/// whatever its fraction and zone suffix.
pub fn iso8601_seconds(ms: u64) -> String {
    let t = gateway::run::UtcTime::of(ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

/// One needle found in one source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    /// Where: "block 12 tx 3 (CommitData)", "state account/…", "store file".
    pub source: String,
    pub offset: usize,
    pub what: String,
    pub encoding: Encoding,
    /// The bytes around the hit, hex and printable.
    pub context: String,
}

impl fmt::Display for Hit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at byte {}: {} ({:?}) in {}",
            self.source, self.offset, self.what, self.encoding, self.context
        )
    }
}

/// Searches many needles at once (Aho-Corasick), the text-only ones inside text runs.
#[derive(Debug)]
pub struct Scanner {
    needles: Vec<Needle>,
    /// Patterns searched everywhere, and the needle index of each.
    anywhere: AhoCorasick,
    anywhere_index: Vec<usize>,
    in_text: AhoCorasick,
    in_text_index: Vec<usize>,
}

impl Scanner {
    pub fn new(needles: Vec<Needle>) -> Scanner {
        let (mut anywhere_index, mut in_text_index) = (Vec::new(), Vec::new());
        for (i, needle) in needles.iter().enumerate() {
            if needle.bytes.is_empty() {
                continue;
            }
            if needle.encoding == Encoding::DecimalInText {
                in_text_index.push(i);
            } else {
                anywhere_index.push(i);
            }
        }
        let build = |index: &[usize]| {
            AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                .build(index.iter().map(|&i| &needles[i].bytes))
                .expect("needles of a few hundred short patterns fit an automaton")
        };
        Scanner {
            anywhere: build(&anywhere_index),
            in_text: build(&in_text_index),
            anywhere_index,
            in_text_index,
            needles,
        }
    }

    pub fn needles(&self) -> &[Needle] {
        &self.needles
    }

    /// Every needle in `bytes`; `source` names them in the report.
    pub fn scan(&self, source: &str, bytes: &[u8]) -> Vec<Hit> {
        let mut hits = Vec::new();
        for m in self.anywhere.find_overlapping_iter(bytes) {
            let needle = &self.needles[self.anywhere_index[m.pattern().as_usize()]];
            hits.push(self.hit(source, bytes, m.start(), m.end(), needle));
        }
        for (run_start, run) in text_runs(bytes) {
            for m in self.in_text.find_overlapping_iter(run) {
                let touches_number = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_digit() || *b == b'.');
                let before = m.start().checked_sub(1).and_then(|i| run.get(i));
                if touches_number(before) || touches_number(run.get(m.end())) {
                    continue;
                }
                let needle = &self.needles[self.in_text_index[m.pattern().as_usize()]];
                hits.push(self.hit(source, bytes, run_start + m.start(), run_start + m.end(), needle));
            }
        }
        hits
    }

    fn hit(&self, source: &str, bytes: &[u8], start: usize, end: usize, needle: &Needle) -> Hit {
        let from = start.saturating_sub(12);
        let to = (end + 12).min(bytes.len());
        let around = &bytes[from..to];
        let printable: String = around
            .iter()
            .map(|&b| if (0x20..0x7f).contains(&b) { b as char } else { '.' })
            .collect();
        Hit {
            source: source.to_owned(),
            offset: start,
            what: needle.what.clone(),
            encoding: needle.encoding,
            context: format!("{} |{printable}|", hex::encode(around)),
        }
    }
}

/// Runs of at least [`MIN_TEXT_RUN`] printable ASCII bytes (with tab and newlines), with
/// their offsets.
fn text_runs(bytes: &[u8]) -> Vec<(usize, &[u8])> {
    let is_text = |b: u8| (0x20..0x7f).contains(&b) || matches!(b, b'\t' | b'\n' | b'\r');
    let mut runs = Vec::new();
    let mut start = None;
    for (i, &b) in bytes.iter().enumerate() {
        match (is_text(b), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                if i - s >= MIN_TEXT_RUN {
                    runs.push((s, &bytes[s..i]));
                }
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        if bytes.len() - s >= MIN_TEXT_RUN {
            runs.push((s, &bytes[s..]));
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scanner() -> Scanner {
        let mut needles = value_needles("glucose 93", 93.0);
        needles.extend(value_needles("temperature 36.8", 36.8));
        needles.extend(time_needles("reading", 1_764_670_500_000));
        needles.push(Needle::text("name", "patient-1"));
        Scanner::new(needles)
    }

    /// Bytes that look like chain data: hashes, small counters, a short string.
    fn chain_like() -> Vec<u8> {
        let mut bytes = Vec::new();
        for i in 0..200u64 {
            bytes.extend_from_slice(&ledger::crypto::sha256(&i.to_le_bytes()).0);
            bytes.extend_from_slice(&i.to_le_bytes());
            bytes.extend_from_slice(&13u32.to_le_bytes());
            bytes.extend_from_slice(b"medledger-dev");
        }
        bytes
    }

    #[test]
    fn planted_values_are_found_in_every_encoding_and_clean_bytes_pass() {
        let scanner = scanner();
        assert_eq!(scanner.scan("clean", &chain_like()), vec![]);
        let plants: Vec<(Vec<u8>, Encoding)> = vec![
            (93.0f64.to_le_bytes().to_vec(), Encoding::F64Le),
            (36.8f64.to_be_bytes().to_vec(), Encoding::F64Be),
            (93_000i64.to_le_bytes().to_vec(), Encoding::MilliI64Le),
            (1_764_670_500_000u64.to_le_bytes().to_vec(), Encoding::TimeU64Le),
            (
                br#"{"valueQuantity":{"value":36.8,"unit":"Cel"}}"#.to_vec(),
                Encoding::DecimalInText,
            ),
            (b"\x02\x00\x00\x0093".to_vec(), Encoding::BorshString),
            (b"2025-12-02T10:15:00Z".to_vec(), Encoding::Text),
            (b"patient-1".to_vec(), Encoding::Text),
        ];
        for (plant, encoding) in plants {
            let mut bytes = chain_like();
            bytes.splice(100..100, plant.iter().copied());
            let hits = scanner.scan("planted", &bytes);
            assert!(
                hits.iter().any(|h| h.encoding == encoding && h.offset >= 100),
                "{encoding:?} not found: {hits:?}"
            );
        }
    }

    #[test]
    fn decimal_text_counts_only_as_a_whole_number_inside_text() {
        let scanner = scanner();
        // "93" inside a longer number, or in a short printable run, is no hit.
        assert!(scanner
            .scan("t", b"\x00\x01 reading 1930 units \x00")
            .iter()
            .all(|h| h.encoding != Encoding::DecimalInText));
        assert!(scanner.scan("t", b"\x00\x0193\x00").is_empty());
        assert_eq!(
            scanner.scan("t", b"\x00glucose was 93 mg\x00").len(),
            1,
            "a whole number in text"
        );
    }

    #[test]
    fn iso_times_are_utc_civil_dates() {
        assert_eq!(iso8601_seconds(0), "1970-01-01T00:00:00");
        assert_eq!(iso8601_seconds(1_764_670_500_123), "2025-12-02T10:15:00");
        assert_eq!(iso8601_seconds(951_782_400_000), "2000-02-29T00:00:00");
    }
}
