//! The page's shared reactive state (all `Copy` signal handles, provided as context).

use crate::keys::Identity;
use leptos::prelude::*;
use light_client::Status;

/// Where the connection to the relay stands.
#[derive(Clone, Debug, PartialEq)]
pub enum Conn {
    Connecting(String),
    Live,
    Failed(String),
}

/// Which view is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Page {
    Patient,
    Clinician,
    Researcher,
    Keys,
}

#[derive(Clone, Copy, Debug)]
pub struct AppState {
    pub conn: RwSignal<Conn>,
    /// The light client's status after the last verified head.
    pub status: RwSignal<Option<Status>>,
    /// The libp2p address of the live connection.
    pub transport: RwSignal<Option<String>>,
    /// The last problem while following the chain (cleared by the next verified head).
    pub sync_error: RwSignal<Option<String>>,
    /// Bumped every few seconds while heads arrive: views re-read their chain values.
    pub refresh: RwSignal<u64>,
    pub identities: RwSignal<Vec<Identity>>,
    /// Index into `identities`.
    pub active: RwSignal<Option<usize>>,
    pub page: RwSignal<Page>,
}

impl AppState {
    pub fn new() -> Self {
        AppState {
            conn: RwSignal::new(Conn::Connecting("starting".into())),
            status: RwSignal::new(None),
            transport: RwSignal::new(None),
            sync_error: RwSignal::new(None),
            refresh: RwSignal::new(0),
            identities: RwSignal::new(Vec::new()),
            active: RwSignal::new(None),
            page: RwSignal::new(Page::Patient),
        }
    }

    pub fn identity(&self) -> Option<Identity> {
        let active = self.active.get()?;
        self.identities.with(|list| list.get(active).cloned())
    }

    pub fn identity_untracked(&self) -> Option<Identity> {
        let active = self.active.get_untracked()?;
        self.identities.with_untracked(|list| list.get(active).cloned())
    }
}

impl Default for AppState {
    fn default() -> Self {
        Self::new()
    }
}

pub fn use_state() -> AppState {
    expect_context::<AppState>()
}
