//! The consensus loop: one short arm per [`AppMsg`], each calling one [`NodeState`] method.
//! An error while handling one message is logged and the loop goes on; every message that
//! wants a reply gets one (the engine stalls otherwise).

use crate::context::{BlockHeight, MedCtx, ProposalPart};
use crate::state::{NodeState, Proposing};
use bytes::Bytes;
use malachitebft_app_channel::app::streaming::{StreamContent, StreamId, StreamMessage};
use malachitebft_app_channel::app::types::LocallyProposedValue;
use malachitebft_app_channel::{AppMsg, Channels, NetworkMsg};
use malachitebft_engine::host::{Next, SyncedValueOutcome};
use tracing::{error, warn};

fn stream_id(height: BlockHeight, round: i64) -> StreamId {
    let mut bytes = height.0.to_be_bytes().to_vec();
    bytes.extend_from_slice(&round.to_be_bytes());
    StreamId::new(Bytes::from(bytes))
}

/// Sends `parts` as the stream messages `first_sequence..` of their (height, round), then the
/// stream's end when `last`.
async fn publish(channels: &Channels<MedCtx>, parts: Vec<ProposalPart>, first_sequence: u64, last: bool) {
    let Some(first) = parts.first() else {
        return;
    };
    let id = stream_id(first.height(), first.round().as_i64());
    let count = parts.len() as u64;
    let mut messages: Vec<_> = parts
        .into_iter()
        .zip(first_sequence..)
        .map(|(part, sequence)| StreamMessage::new(id.clone(), sequence, StreamContent::Data(part)))
        .collect();
    if last {
        messages.push(StreamMessage::new(id, first_sequence + count, StreamContent::Fin));
    }
    for message in messages {
        if let Err(e) = channels
            .network
            .send(NetworkMsg::PublishProposalPart(message))
            .await
        {
            error!(error = %e, "network channel closed");
        }
    }
}

pub async fn run(mut state: NodeState, mut channels: Channels<MedCtx>) -> anyhow::Result<()> {
    while let Some(msg) = channels.consensus.recv().await {
        match msg {
            AppMsg::ConsensusReady { reply } => {
                let height = state.next_height()?;
                let params = state.height_params(height)?;
                tracing::info!(height = height.0, "consensus ready");
                let _ = reply.send((height, params));
            }
            AppMsg::StartedRound {
                height,
                round,
                reply_value,
                ..
            } => {
                let values = state.known_values(height, round).unwrap_or_else(|e| {
                    warn!(height = height.0, error = %e, "cannot restore values for round");
                    vec![]
                });
                let _ = reply_value.send(values);
            }
            AppMsg::GetValue {
                height, round, reply, ..
            } => match state.propose(height, round) {
                Ok(Proposing::Built(id, parts)) => {
                    let _ = reply.send(LocallyProposedValue::new(height, round, id));
                    publish(&channels, parts, 0, true).await;
                }
                Ok(Proposing::Txs(txs, building)) => {
                    // The txs go out first: peers re-execute them while this node computes
                    // the state root for the header.
                    publish(&channels, vec![txs], 0, false).await;
                    tokio::task::yield_now().await;
                    match state.finish_proposal(building) {
                        Ok((id, header)) => {
                            let _ = reply.send(LocallyProposedValue::new(height, round, id));
                            publish(&channels, vec![header], 1, true).await;
                        }
                        Err(e) => error!(height = height.0, error = %e, "cannot finish a proposal"),
                    }
                }
                // No reply: the engine's propose timeout moves the round on.
                Err(e) => error!(height = height.0, error = %e, "cannot build a proposal"),
            },
            AppMsg::ExtendVote { reply, .. } => {
                let _ = reply.send(None);
            }
            AppMsg::VerifyVoteExtensions {
                extensions, reply, ..
            } => {
                let _ = reply.send(extensions.into_iter().map(|(a, _)| (a, Ok(()))).collect());
            }
            AppMsg::RestreamProposal {
                height,
                round,
                value_id,
                ..
            } => {
                // Re-signed for the new round: the part signature binds (height, round, block).
                match state.restream_parts(height, round, &value_id) {
                    Ok(Some(parts)) => publish(&channels, parts, 0, true).await,
                    Ok(None) => warn!(height = height.0, "asked to restream a block we do not hold"),
                    Err(e) => error!(error = %e, "restream failed"),
                }
            }
            AppMsg::GetHistoryMinHeight { reply } => {
                let _ = reply.send(BlockHeight(1));
            }
            AppMsg::ReceivedProposalPart { part, reply, .. } => {
                let value = match part.content {
                    StreamContent::Data(part) => {
                        let height = part.height();
                        match state.receive_part(part) {
                            Ok(value) => value,
                            Err(e) => {
                                warn!(height = height.0, error = %e, "dropped proposal part");
                                None
                            }
                        }
                    }
                    StreamContent::Fin => None,
                };
                let _ = reply.send(value);
            }
            AppMsg::Decided {
                certificate, reply, ..
            } => {
                if let Err(e) = state.commit_decided(&certificate) {
                    // Without the block we cannot go on safely; stop so an operator looks.
                    error!(height = certificate.height.0, error = %e, "cannot commit decided block");
                    return Err(e.into());
                }
                let _ = reply.send(());
            }
            AppMsg::Finalized {
                certificate, reply, ..
            } => {
                if let Err(e) = state.upgrade_commit(&certificate) {
                    warn!(error = %e, "could not store the fuller commit");
                }
                let next = BlockHeight(certificate.height.0 + 1);
                let params = state.height_params(next)?;
                let _ = reply.send(Next::Start(next, params));
            }
            AppMsg::GetDecidedValues { range, reply } => {
                let values = state
                    .decided_values(*range.start(), *range.end())
                    .unwrap_or_else(|e| {
                        error!(error = %e, "cannot read decided values");
                        vec![]
                    });
                let _ = reply.send(values);
            }
            AppMsg::ProcessSyncedValue {
                height,
                round,
                proposer,
                value_bytes,
                reply,
            } => {
                let outcome = match state.synced_value(height, round, proposer, &value_bytes) {
                    Ok(value) => SyncedValueOutcome::Verdict(value),
                    Err(crate::state::ProposalError::Store(e)) => {
                        error!(error = %e, "store failure while syncing");
                        SyncedValueOutcome::LocalTransientError
                    }
                    Err(e) => {
                        warn!(height = height.0, error = %e, "peer sent an invalid synced block");
                        SyncedValueOutcome::PeerFault
                    }
                };
                let _ = reply.send(outcome);
            }
        }
    }
    Ok(())
}
