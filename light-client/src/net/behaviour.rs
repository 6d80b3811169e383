//! The client's libp2p behaviour: the heads topic and one outbound request-response
//! behaviour per relay protocol, and [`Route`], which ties each protocol to its behaviour,
//! its command and its table of requests awaiting answers.

use super::event_loop::{Command, Outgoing, Responder};
use super::NetConfig;
use libp2p::identity::Keypair;
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport};
use libp2p::swarm::NetworkBehaviour;
use libp2p::{gossipsub, StreamProtocol};
use protocol::codec::{Blobs, Codec, Headers, Proofs, Protocol, Txs};
use protocol::heads;
use std::collections::HashMap;
use std::error::Error;

#[derive(NetworkBehaviour)]
pub(super) struct Behaviour {
    pub(super) gossipsub: gossipsub::Behaviour,
    pub(super) headers: request_response::Behaviour<Codec<Headers>>,
    pub(super) proofs: request_response::Behaviour<Codec<Proofs>>,
    pub(super) txs: request_response::Behaviour<Codec<Txs>>,
    pub(super) blobs: request_response::Behaviour<Codec<Blobs>>,
}

impl Behaviour {
    /// The error type is what `SwarmBuilder::with_behaviour` takes.
    pub(super) fn new(keypair: &Keypair, config: &NetConfig) -> Result<Self, Box<dyn Error + Send + Sync>> {
        let mut gossipsub = heads_gossipsub(keypair)?;
        // Subscribed for the connection's life: gossipsub tells each new connection (every
        // reconnect included) about it, so heads resume without a resubscribe step.
        gossipsub
            .subscribe(&heads_topic())
            .map_err(|e| format!("subscribing to {}: {e}", heads::TOPIC))?;
        Ok(Behaviour {
            gossipsub,
            headers: request_response_behaviour::<Headers>(config),
            proofs: request_response_behaviour::<Proofs>(config),
            txs: request_response_behaviour::<Txs>(config),
            blobs: request_response_behaviour::<Blobs>(config),
        })
    }
}

/// Gossipsub as the relay configures it (relay/src/network/mod.rs `gossipsub_with`): the
/// relay signs its heads and validates strictly, and a frame must fit one signed header.
/// A mismatch here (say a smaller `max_transmit_size`) would silently drop every head.
fn heads_gossipsub(keypair: &Keypair) -> Result<gossipsub::Behaviour, String> {
    let config = gossipsub::ConfigBuilder::default()
        .max_transmit_size(heads::MESSAGE_SIZE_LIMIT + 1024)
        .validation_mode(gossipsub::ValidationMode::Strict)
        .build()
        .map_err(|e| e.to_string())?;
    gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Signed(keypair.clone()), config)
        .map_err(ToString::to_string)
}

pub(super) fn heads_topic() -> gossipsub::IdentTopic {
    gossipsub::IdentTopic::new(heads::TOPIC)
}

/// Outbound only: the client answers nothing.
fn request_response_behaviour<P: Protocol>(config: &NetConfig) -> request_response::Behaviour<Codec<P>> {
    request_response::Behaviour::new(
        [(StreamProtocol::new(P::NAME), ProtocolSupport::Outbound)],
        request_response::Config::default()
            .with_request_timeout(config.request_timeout.unwrap_or(P::TIME_LIMIT)),
    )
}

/// Requests in flight, per protocol: request ids are only unique within one behaviour.
#[derive(Default)]
pub(super) struct InFlight {
    headers: HashMap<OutboundRequestId, Responder<Headers>>,
    proofs: HashMap<OutboundRequestId, Responder<Proofs>>,
    txs: HashMap<OutboundRequestId, Responder<Txs>>,
    blobs: HashMap<OutboundRequestId, Responder<Blobs>>,
}

impl InFlight {
    pub(super) fn is_empty(&self) -> bool {
        self.headers.is_empty() && self.proofs.is_empty() && self.txs.is_empty() && self.blobs.is_empty()
    }
}

/// Where protocol `P` lives in the client: its behaviour, command and in-flight table.
pub(super) trait Route: Protocol {
    fn behaviour(behaviour: &mut Behaviour) -> &mut request_response::Behaviour<Codec<Self>>;
    fn in_flight(in_flight: &mut InFlight) -> &mut HashMap<OutboundRequestId, Responder<Self>>;
    fn command(outgoing: Outgoing<Self>) -> Command;
}

macro_rules! route {
    ($protocol:ty, $field:ident, $variant:ident) => {
        impl Route for $protocol {
            fn behaviour(behaviour: &mut Behaviour) -> &mut request_response::Behaviour<Codec<Self>> {
                &mut behaviour.$field
            }
            fn in_flight(in_flight: &mut InFlight) -> &mut HashMap<OutboundRequestId, Responder<Self>> {
                &mut in_flight.$field
            }
            fn command(outgoing: Outgoing<Self>) -> Command {
                Command::$variant(outgoing)
            }
        }
    };
}
route!(Headers, headers, Headers);
route!(Proofs, proofs, Proofs);
route!(Txs, txs, Txs);
route!(Blobs, blobs, Blobs);
