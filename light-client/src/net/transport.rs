//! The swarm, per target. Natively: TCP and WebSocket, each secured with noise and
//! multiplexed with yamux (what the relay's TCP and `/ws` listeners speak). In the browser:
//! WebRTC-direct (self-secured, its own muxer) or WebSocket + noise + yamux, one transport
//! that picks by address. Either way a fresh identity per connection: the relay only needs
//! a peer id to count limits against, and the light client keeps no p2p reputation.

use super::behaviour::Behaviour;
use super::{NetConfig, NetError};
use libp2p::{Swarm, SwarmBuilder};
use std::time::Duration;

/// A connection with nothing in flight stays open this long. Gossipsub keeps the relay's
/// connection busy while both are subscribed to the heads topic, so this only matters if the
/// relay drops the subscription.
const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(60);

fn transport_error(error: impl std::fmt::Display) -> NetError {
    NetError::Transport(error.to_string())
}

#[cfg(not(target_arch = "wasm32"))]
pub(super) async fn build_swarm(config: &NetConfig) -> Result<Swarm<Behaviour>, NetError> {
    use libp2p::{noise, tcp, yamux};
    let swarm = SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(transport_error)?
        .with_dns()
        .map_err(transport_error)?
        .with_websocket(noise::Config::new, yamux::Config::default)
        .await
        .map_err(transport_error)?
        .with_behaviour(|key| Behaviour::new(key, config))
        .map_err(transport_error)?
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT))
        .build();
    Ok(swarm)
}

#[cfg(target_arch = "wasm32")]
pub(super) async fn build_swarm(config: &NetConfig) -> Result<Swarm<Behaviour>, NetError> {
    use libp2p::core::upgrade::Version;
    use libp2p::core::Transport as _;
    use libp2p::{noise, yamux};
    use std::error::Error;
    // Two "other" transports: the builder joins them, and each refuses the other's addresses.
    let swarm = SwarmBuilder::with_new_identity()
        .with_wasm_bindgen()
        .with_other_transport(|key| {
            libp2p_webrtc_websys::Transport::new(libp2p_webrtc_websys::Config::new(key))
        })
        .map_err(|never| -> NetError { match never {} })?
        .with_other_transport(|key| -> Result<_, Box<dyn Error + Send + Sync>> {
            // V1Lazy saves a round trip on browser WebSockets (as lumina does).
            Ok(libp2p_websocket_websys::Transport::default()
                .upgrade(Version::V1Lazy)
                .authenticate(noise::Config::new(key)?)
                .multiplex(yamux::Config::default()))
        })
        .map_err(transport_error)?
        .with_behaviour(|key| Behaviour::new(key, config))
        .map_err(transport_error)?
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT))
        .build();
    Ok(swarm)
}
