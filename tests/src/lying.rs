//! What the `lying_relay` binary lies about (issue 7: "a fork or lying relay shows a warning").
//!
//! The liar forwards every request to an honest relay and answers honestly, except the
//! chain head: after `honest_latest` honest answers to one client's `Latest` request, it
//! starts lying to that client:
//! - [`Lie::Signature`]: the latest header with one byte of its commit signature flipped. A
//!   light client must refuse the header and stop trusting the relay (its status names the
//!   relay "not trusted" with the reason); the head it already verified stays.
//! - [`Lie::Fork`]: a conflicting header at the height of the last honest head this client got
//!   (state root changed), signed with the dev validator's own key, so its commit carries all
//!   the voting power. That is a real fork (an equivocating validator): both headers verify,
//!   and a light client that already trusts the honest one must keep the evidence and stop
//!   trusting new headers (the dashboard's fork banner).
//!
//! Lying per client and only after an honest start matters: a client that never got an honest
//! head has nothing to compare with (a single-relay client would just refuse the first head and
//! show no verified head at all), and a fork at a height the client does not trust yet is
//! not a fork to it, just an invalid or different chain.
//!
//! The decisions are pure ([`Liar`]); the binary does the networking.

use ledger::crypto::SigningKey;
use ledger::header::{precommit_sign_bytes, Commit, CommitSignature, Height};
use protocol::SignedHeader;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

/// What the relay lies about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lie {
    /// A commit signature with one flipped byte on each new latest header.
    Signature,
    /// A second, validly signed header at a height the client already trusts.
    Fork,
}

/// How to answer one `Latest` request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LatestAnswer {
    /// Forward the honest relay's answer (and [`Liar::served_honest`] its height).
    Honest,
    /// The honest latest header with a flipped signature byte ([`flip_signature`]).
    TamperedSignature,
    /// A forked header at this height ([`fork`]): the last honest head this client got.
    ForkAt(Height),
}

/// What the liar remembers of one client.
#[derive(Clone, Copy, Debug, Default)]
struct ClientView {
    latest_answers: u32,
    last_honest_height: Option<Height>,
}

/// The lying policy, per client (`K`: the client's peer id).
#[derive(Debug)]
pub struct Liar<K> {
    lie: Lie,
    honest_latest: u32,
    clients: Mutex<HashMap<K, ClientView>>,
}

impl<K: Hash + Eq + Clone> Liar<K> {
    /// Lies with `lie` after `honest_latest` honest `Latest` answers to each client (at least
    /// one: see the module docs).
    pub fn new(lie: Lie, honest_latest: u32) -> Self {
        Liar {
            lie,
            honest_latest: honest_latest.max(1),
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// Decides how to answer `client`'s next `Latest` request.
    pub fn latest(&self, client: &K) -> LatestAnswer {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        let view = clients.entry(client.clone()).or_default();
        view.latest_answers = view.latest_answers.saturating_add(1);
        if view.latest_answers <= self.honest_latest {
            return LatestAnswer::Honest;
        }
        match (self.lie, view.last_honest_height) {
            (Lie::Signature, _) => LatestAnswer::TamperedSignature,
            (Lie::Fork, Some(height)) => LatestAnswer::ForkAt(height),
            // Never answered honestly (the upstream failed): nothing to fork from yet.
            (Lie::Fork, None) => LatestAnswer::Honest,
        }
    }

    /// Records that `client` got the honest head at `height`.
    pub fn served_honest(&self, client: &K, height: Height) {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients.entry(client.clone()).or_default().last_honest_height = Some(height);
    }
}

/// `signed` with one byte of its first commit signature flipped: the header is unchanged, the
/// commit no longer verifies.
pub fn flip_signature(signed: &mut SignedHeader) {
    if let Some(first) = signed.commit.signatures.first_mut() {
        first.signature.0[10] ^= 0x01;
    }
}

/// A header conflicting with `honest` (same height, chain, validators and time, another state
/// root) whose commit `validator` signs in the honest commit's round: valid for every client
/// whose trusted validator set gives `validator` enough power (the dev chain's only one).
pub fn fork(honest: &SignedHeader, validator: &SigningKey) -> SignedHeader {
    let mut header = honest.header.clone();
    header.state_root.0[0] ^= 0xff;
    let block_id = header.id();
    let round = honest.commit.round;
    let sign_bytes = precommit_sign_bytes(&header.chain_id, header.height, round, &block_id);
    let commit = Commit {
        height: header.height,
        round,
        block_id,
        signatures: vec![CommitSignature {
            validator: validator.public_key(),
            signature: validator.sign(&sign_bytes),
        }],
    };
    SignedHeader { header, commit }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger::crypto::Hash;
    use ledger::header::Header;
    use ledger::verify::verify_commit;
    use ledger::{Validator, ValidatorSet};

    fn honest(validator: &SigningKey, set: &ValidatorSet) -> SignedHeader {
        let header = Header {
            chain_id: "medledger-dev".into(),
            height: 7,
            time: 1_700_000_000_000,
            last_block_id: Hash([1; 32]),
            tx_root: Hash([2; 32]),
            state_root: Hash([3; 32]),
            validators_hash: set.hash(),
            next_validators_hash: set.hash(),
            proposer: validator.public_key(),
        };
        let block_id = header.id();
        let signature = validator.sign(&precommit_sign_bytes(&header.chain_id, 7, 0, &block_id));
        SignedHeader {
            header,
            commit: Commit {
                height: 7,
                round: 0,
                block_id,
                signatures: vec![CommitSignature {
                    validator: validator.public_key(),
                    signature,
                }],
            },
        }
    }

    #[test]
    fn a_fork_verifies_and_conflicts_and_a_flipped_signature_does_not_verify() {
        let validator = SigningKey::from_seed([9; 32]);
        let set = ValidatorSet::new(vec![Validator {
            address: validator.public_key(),
            power: 10,
        }])
        .unwrap();
        let honest = honest(&validator, &set);
        verify_commit("medledger-dev", &honest.header, &honest.commit, &set).unwrap();

        let forked = fork(&honest, &validator);
        assert_eq!(forked.header.height, honest.header.height);
        assert_ne!(forked.header.id(), honest.header.id());
        verify_commit("medledger-dev", &forked.header, &forked.commit, &set).unwrap();

        let mut tampered = honest.clone();
        flip_signature(&mut tampered);
        assert_eq!(tampered.header.id(), honest.header.id());
        assert!(verify_commit("medledger-dev", &tampered.header, &tampered.commit, &set).is_err());
    }

    #[test]
    fn each_client_gets_an_honest_start_then_the_lie() {
        let liar = Liar::new(Lie::Fork, 1);
        assert_eq!(liar.latest(&"a"), LatestAnswer::Honest);
        liar.served_honest(&"a", 12);
        assert_eq!(liar.latest(&"a"), LatestAnswer::ForkAt(12));
        assert_eq!(liar.latest(&"b"), LatestAnswer::Honest);

        let liar = Liar::new(Lie::Signature, 2);
        assert_eq!(liar.latest(&"a"), LatestAnswer::Honest);
        assert_eq!(liar.latest(&"a"), LatestAnswer::Honest);
        assert_eq!(liar.latest(&"a"), LatestAnswer::TamperedSignature);
    }
}
