//! Per-peer limits (issue 5 item 7), pure bookkeeping with `now` passed in: a token bucket
//! on requests, a cap on requests in flight, strikes for faults and a temporary ban list.
//! The event loop asks [`PeerLimits::admit`] before serving, reports [`PeerLimits::finished`]
//! after, and [`PeerLimits::strike`]s a peer for a malformed or oversized request, a
//! peer-fault answer (`is_peer_fault()`), or a request over its limits. At
//! [`LimitsConfig::max_strikes`] the peer is banned for [`LimitsConfig::ban_duration`]: the
//! loop blocks it (closing its connections and refusing new ones) and unblocks it when
//! [`PeerLimits::expire_bans`] says so. One greedy peer spends only its own budget.

use libp2p::PeerId;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The relay's per-peer and connection limits.
#[derive(Clone, Debug, PartialEq)]
pub struct LimitsConfig {
    /// Requests a peer may send in a burst (the bucket's size).
    pub request_burst: u32,
    /// Sustained requests per second (the bucket's refill rate).
    pub requests_per_second: f64,
    /// Requests of one peer being served at once (over all its connections and protocols).
    pub max_in_flight_per_peer: usize,
    /// Faults and over-limit requests before a ban.
    pub max_strikes: u32,
    pub ban_duration: Duration,
    /// Established connections in total, and per peer.
    pub max_connections: u32,
    pub max_connections_per_peer: u32,
    /// Connections being set up (handshakes) at once.
    pub max_pending_connections: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            request_burst: 64,
            requests_per_second: 32.0,
            max_in_flight_per_peer: 16,
            max_strikes: 8,
            ban_duration: Duration::from_secs(600),
            max_connections: 4_096,
            max_connections_per_peer: 4,
            max_pending_connections: 256,
        }
    }
}

/// Why a request was not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LimitExceeded {
    #[error("peer is banned")]
    Banned,
    #[error("request rate exceeded")]
    Rate,
    #[error("{in_flight} requests already in flight (max {max})")]
    InFlight { in_flight: usize, max: usize },
}

/// What a strike did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strike {
    /// Counted; `strikes` so far.
    Counted { strikes: u32 },
    /// This strike banned the peer until the given time.
    Banned { until: Instant },
    /// The peer was already banned.
    AlreadyBanned,
}

#[derive(Debug)]
struct PeerState {
    tokens: f64,
    refilled_at: Instant,
    in_flight: usize,
    strikes: u32,
}

/// Per-peer request accounting and bans.
#[derive(Debug)]
pub struct PeerLimits {
    config: LimitsConfig,
    peers: HashMap<PeerId, PeerState>,
    banned: HashMap<PeerId, Instant>,
}

impl PeerLimits {
    pub fn new(config: LimitsConfig) -> Self {
        PeerLimits {
            config,
            peers: HashMap::new(),
            banned: HashMap::new(),
        }
    }

    pub fn config(&self) -> &LimitsConfig {
        &self.config
    }

    fn state(&mut self, peer: PeerId, now: Instant) -> &mut PeerState {
        let burst = f64::from(self.config.request_burst);
        self.peers.entry(peer).or_insert(PeerState {
            tokens: burst,
            refilled_at: now,
            in_flight: 0,
            strikes: 0,
        })
    }

    pub fn is_banned(&self, peer: &PeerId, now: Instant) -> bool {
        self.banned.get(peer).is_some_and(|until| *until > now)
    }

    /// Takes a token and an in-flight slot for one request of `peer`, or says why not.
    pub fn admit(&mut self, peer: PeerId, now: Instant) -> Result<(), LimitExceeded> {
        if self.is_banned(&peer, now) {
            return Err(LimitExceeded::Banned);
        }
        let (burst, rate, max) = (
            f64::from(self.config.request_burst),
            self.config.requests_per_second,
            self.config.max_in_flight_per_peer,
        );
        let state = self.state(peer, now);
        let elapsed = now.saturating_duration_since(state.refilled_at).as_secs_f64();
        state.tokens = (state.tokens + elapsed * rate).min(burst);
        state.refilled_at = now;
        if state.in_flight >= max {
            return Err(LimitExceeded::InFlight {
                in_flight: state.in_flight,
                max,
            });
        }
        if state.tokens < 1.0 {
            return Err(LimitExceeded::Rate);
        }
        state.tokens -= 1.0;
        state.in_flight += 1;
        Ok(())
    }

    /// Releases the in-flight slot of an admitted request.
    pub fn finished(&mut self, peer: &PeerId) {
        if let Some(state) = self.peers.get_mut(peer) {
            state.in_flight = state.in_flight.saturating_sub(1);
        }
    }

    /// Counts a fault of `peer`; bans it at [`LimitsConfig::max_strikes`].
    pub fn strike(&mut self, peer: PeerId, now: Instant) -> Strike {
        if self.is_banned(&peer, now) {
            return Strike::AlreadyBanned;
        }
        let max = self.config.max_strikes;
        let state = self.state(peer, now);
        state.strikes += 1;
        if state.strikes < max {
            return Strike::Counted {
                strikes: state.strikes,
            };
        }
        self.ban(peer, now)
    }

    /// Bans `peer` now, forgetting its counters.
    pub fn ban(&mut self, peer: PeerId, now: Instant) -> Strike {
        let until = now + self.config.ban_duration;
        self.peers.remove(&peer);
        self.banned.insert(peer, until);
        Strike::Banned { until }
    }

    /// Forgets a disconnected peer's counters (bans and strikes outlive connections).
    pub fn disconnected(&mut self, peer: &PeerId) {
        if self
            .peers
            .get(peer)
            .is_some_and(|s| s.in_flight == 0 && s.strikes == 0)
        {
            self.peers.remove(peer);
        }
    }

    /// Removes the bans that have run out and returns those peers (to unblock).
    pub fn expire_bans(&mut self, now: Instant) -> Vec<PeerId> {
        let expired: Vec<PeerId> = self
            .banned
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(peer, _)| *peer)
            .collect();
        for peer in &expired {
            self.banned.remove(peer);
        }
        expired
    }

    /// The peers banned at `now`.
    pub fn banned(&self, now: Instant) -> Vec<PeerId> {
        self.banned
            .iter()
            .filter(|(_, until)| **until > now)
            .map(|(peer, _)| *peer)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> LimitsConfig {
        LimitsConfig {
            request_burst: 3,
            requests_per_second: 2.0,
            max_in_flight_per_peer: 2,
            max_strikes: 2,
            ban_duration: Duration::from_secs(10),
            ..LimitsConfig::default()
        }
    }

    #[test]
    fn the_bucket_allows_a_burst_then_refills_at_the_rate() {
        let mut limits = PeerLimits::new(LimitsConfig {
            max_in_flight_per_peer: 100,
            ..config()
        });
        let (peer, t0) = (PeerId::random(), Instant::now());
        for _ in 0..3 {
            limits.admit(peer, t0).unwrap();
        }
        assert_eq!(limits.admit(peer, t0), Err(LimitExceeded::Rate));
        // Half a second refills one token at 2/s.
        limits.admit(peer, t0 + Duration::from_millis(500)).unwrap();
        assert_eq!(
            limits.admit(peer, t0 + Duration::from_millis(500)),
            Err(LimitExceeded::Rate)
        );
        // Another peer has its own bucket.
        limits.admit(PeerId::random(), t0).unwrap();
    }

    #[test]
    fn in_flight_requests_are_capped_until_finished() {
        let mut limits = PeerLimits::new(config());
        let (peer, now) = (PeerId::random(), Instant::now());
        limits.admit(peer, now).unwrap();
        limits.admit(peer, now).unwrap();
        assert_eq!(
            limits.admit(peer, now),
            Err(LimitExceeded::InFlight { in_flight: 2, max: 2 })
        );
        limits.finished(&peer);
        limits.admit(peer, now).unwrap();
    }

    #[test]
    fn strikes_ban_a_peer_until_the_ban_expires() {
        let mut limits = PeerLimits::new(config());
        let (peer, now) = (PeerId::random(), Instant::now());
        assert_eq!(limits.strike(peer, now), Strike::Counted { strikes: 1 });
        let until = now + Duration::from_secs(10);
        assert_eq!(limits.strike(peer, now), Strike::Banned { until });
        assert_eq!(limits.strike(peer, now), Strike::AlreadyBanned);
        assert!(limits.is_banned(&peer, now));
        assert_eq!(limits.admit(peer, now), Err(LimitExceeded::Banned));
        assert!(limits.expire_bans(now).is_empty());
        assert_eq!(limits.expire_bans(until), vec![peer]);
        assert!(!limits.is_banned(&peer, until));
        // A ban wipes the slate: strikes start again from zero.
        assert_eq!(limits.strike(peer, until), Strike::Counted { strikes: 1 });
    }
}
