//! Serves the dashboard build (trunk's `dist/`) at `/`, or a placeholder page when it was not
//! built. Client-side routes (paths without a file extension) get `index.html`, as a
//! single-page app expects. Only plain path segments are accepted: no `..`, no hidden files,
//! no escapes, so nothing outside `dist/` is ever read.

use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use std::path::{Path, PathBuf};

const PLACEHOLDER: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Medledger relay</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">
<h1>Medledger relay</h1>
<p>The relay is running, but the dashboard has not been built, so there is nothing to show here yet.</p>
<p>Build it with <code>trunk build</code> at the repository root (it writes <code>dist/</code>), or start the
relay with <code>--dist DIR</code> pointing at a build.</p>
<ul>
<li><a href="/.well-known/medledger.json">/.well-known/medledger.json</a>: chain, head and how to reach this relay</li>
<li><a href="/metrics">/metrics</a>: Prometheus metrics</li>
</ul>
</body></html>
"#;

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        // Browsers compile wasm while streaming only with this type.
        "wasm" => "application/wasm",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// The file under `dist` that `uri_path` names, if the path is acceptable.
fn resolve(dist: &Path, uri_path: &str) -> Option<PathBuf> {
    let mut path = dist.to_path_buf();
    for part in uri_path.split('/').filter(|p| !p.is_empty()) {
        let plain = !part.starts_with('.') && !part.contains(['\\', '%', ':', '\0']);
        if !plain {
            return None;
        }
        path.push(part);
    }
    Some(path)
}

async fn read(path: &Path) -> Option<Response> {
    let bytes = tokio::fs::read(path).await.ok()?;
    Some(([(header::CONTENT_TYPE, content_type(path))], bytes).into_response())
}

/// Answers a GET for `uri` from `dist` (or the placeholder).
pub async fn serve(dist: Option<&Path>, method: &Method, uri: &Uri) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let Some(dist) = dist else {
        return Html(PLACEHOLDER).into_response();
    };
    let Some(path) = resolve(dist, uri.path()) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let file = if path.is_dir() {
        path.join("index.html")
    } else {
        path
    };
    if let Some(response) = read(&file).await {
        return response;
    }
    // A client-side route: let the app's router handle it.
    if file.extension().is_none() {
        if let Some(response) = read(&dist.join("index.html")).await {
            return response;
        }
    }
    StatusCode::NOT_FOUND.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_segments_resolve() {
        let dist = Path::new("/srv/dist");
        assert_eq!(resolve(dist, "/app.wasm"), Some(dist.join("app.wasm")));
        assert_eq!(resolve(dist, "/"), Some(dist.to_path_buf()));
        assert_eq!(resolve(dist, "/a//b"), Some(dist.join("a").join("b")));
        for bad in [
            "/../etc/passwd",
            "/a/../../x",
            "/.git/config",
            "/%2e%2e/x",
            "/a\\..\\b",
        ] {
            assert_eq!(resolve(dist, bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn files_spa_routes_and_the_placeholder() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), "<p>app</p>").unwrap();
        std::fs::write(dir.path().join("app.wasm"), [0, 97, 115, 109]).unwrap();
        let get = |path: &'static str| {
            let dist = dir.path().to_path_buf();
            async move { serve(Some(&dist), &Method::GET, &Uri::from_static(path)).await }
        };
        let wasm = get("/app.wasm").await;
        assert_eq!(wasm.headers()[header::CONTENT_TYPE], "application/wasm");
        assert_eq!(get("/").await.status(), StatusCode::OK);
        assert_eq!(get("/patient/consents").await.status(), StatusCode::OK);
        assert_eq!(get("/missing.js").await.status(), StatusCode::NOT_FOUND);
        let placeholder = serve(None, &Method::GET, &Uri::from_static("/")).await;
        assert_eq!(placeholder.status(), StatusCode::OK);
        let post = serve(None, &Method::POST, &Uri::from_static("/")).await;
        assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
    }
}
