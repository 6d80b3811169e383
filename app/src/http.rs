//! HTTP to the relay that served the page (discovery, genesis, blobs), with `fetch`.

use crate::error::{AppError, AppResult};
use js_sys::Uint8Array;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{RequestInit, Response};

/// One answer: status and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Answer {
    /// The body of a 2xx answer; the relay's JSON refusal (`{error, reason}`) otherwise.
    pub fn ok(self) -> AppResult<Vec<u8>> {
        if (200..300).contains(&self.status) {
            return Ok(self.body);
        }
        #[derive(serde::Deserialize)]
        struct Refusal {
            error: String,
            reason: String,
        }
        Err(match serde_json::from_slice::<Refusal>(&self.body) {
            Ok(r) => AppError::Refused {
                kind: r.error,
                reason: r.reason,
            },
            Err(_) => AppError::Refused {
                kind: format!("HTTP {}", self.status),
                // An HTML error page says nothing a person needs here.
                reason: match String::from_utf8_lossy(&self.body).trim() {
                    text if text.starts_with('<') => "no answer from a Medledger relay".to_string(),
                    text => text.chars().take(200).collect(),
                },
            },
        })
    }
}

pub async fn request(method: &str, url: &str, body: Option<&[u8]>) -> AppResult<Answer> {
    let window = web_sys::window().ok_or_else(|| AppError::Http("no window".into()))?;
    let init = RequestInit::new();
    init.set_method(method);
    if let Some(body) = body {
        init.set_body(&Uint8Array::from(body).into());
    }
    let response = JsFuture::from(window.fetch_with_str_and_init(url, &init))
        .await
        .map_err(|e| AppError::Http(AppError::js(url, e)))?;
    let response: Response = response
        .dyn_into()
        .map_err(|_| AppError::Http(format!("{url}: not a Response")))?;
    let buffer = response
        .array_buffer()
        .map_err(|e| AppError::Http(AppError::js(url, e)))?;
    let buffer = JsFuture::from(buffer)
        .await
        .map_err(|e| AppError::Http(AppError::js(url, e)))?;
    Ok(Answer {
        status: response.status(),
        body: Uint8Array::new(&buffer).to_vec(),
    })
}

pub async fn get(url: &str) -> AppResult<Vec<u8>> {
    request("GET", url, None).await?.ok()
}
