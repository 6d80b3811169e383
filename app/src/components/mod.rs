//! Widgets shared by the views.

pub mod chart;
pub mod proof;
pub mod status_bar;

pub use chart::Chart;
pub use proof::VerifiedMark;
pub use status_bar::StatusBar;

use crate::error::AppError;
use leptos::prelude::*;

/// A readable error message (never a blank page).
#[component]
pub fn ErrorBox(error: AppError) -> impl IntoView {
    view! { <div class="error" data-testid="error">"⚠ " {error.to_string()}</div> }
}

/// A result rendered as its value or as an [`ErrorBox`]; `None` while loading.
pub fn render<T: 'static, V: IntoView + 'static>(
    value: Option<Result<T, AppError>>,
    ok: impl FnOnce(T) -> V,
) -> AnyView {
    match value {
        None => view! { <p class="muted">"loading…"</p> }.into_any(),
        Some(Err(e)) => view! { <ErrorBox error=e /> }.into_any(),
        Some(Ok(v)) => ok(v).into_any(),
    }
}
