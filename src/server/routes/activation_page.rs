//! The landing page a partner sees when opening an activation link in a browser: who the link
//! is for, what it opens and until when, a button that downloads the profile (a form POST: the
//! only way a browser redeems the link), and how to read the shared tables. Opening the page,
//! a preview or a link scanner's visit never redeems anything.
//!
//! No script, no external resource: a strict Content-Security-Policy allows only the inline
//! style of this page and form posts to this origin.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::service::ActivationLanding;

/// `&`, `<`, `>`, `"` and `'` escaped for HTML text and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn when(ms: Option<i64>) -> String {
    match ms.and_then(chrono::DateTime::from_timestamp_millis) {
        Some(t) => t.format("%Y-%m-%d %H:%M UTC").to_string(),
        None => "never".to_owned(),
    }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;\
padding:0 1rem;line-height:1.5;color:#1b1b1b;background:#fff}h1{font-size:1.5rem}\
code,pre{background:#f2f2f2;border-radius:4px}pre{padding:.75rem;overflow-x:auto}\
button{font-size:1rem;padding:.6rem 1.2rem;background:#0b5cad;color:#fff;border:0;\
border-radius:4px;cursor:pointer}button:focus{outline:3px solid #f0b400}\
table{border-collapse:collapse}td,th{padding:.25rem .75rem .25rem 0;text-align:left}\
.note{color:#444}";

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\">\
         <title>{}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>\n",
        esc(title)
    );
    let mut r = (status, html).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// The page for a link that can still be redeemed.
pub(crate) fn landing(l: &ActivationLanding, endpoint: &str) -> Response {
    let shares = if l.shares.is_empty() {
        "<p>No share is granted yet; your provider can add shares later, and this profile \
         will see them.</p>"
            .to_owned()
    } else {
        let rows: String = l
            .shares
            .iter()
            .map(|(s, exp)| {
                format!(
                    "<tr><td><code>{}</code></td><td>{}</td></tr>",
                    esc(s),
                    match exp {
                        Some(_) => format!("until {}", when(*exp)),
                        None => "no end date".to_owned(),
                    }
                )
            })
            .collect();
        format!("<table><tr><th>Share</th><th>Access</th></tr>{rows}</table>")
    };
    let first = l
        .shares
        .first()
        .map_or("SHARE", |(s, _)| s.as_str())
        .to_owned();
    let body = format!(
        "<h1>Delta Sharing access for {recipient}</h1>\
         <p>Your data provider shares Delta tables with <strong>{recipient}</strong> from \
         <code>{endpoint}</code>.</p>{shares}\
         <p>This link works once, until <strong>{link}</strong>. The credential it gives \
         expires: <strong>{token}</strong>.</p>\
         <form method=\"post\"><button type=\"submit\">Download the profile file</button></form>\
         <p class=\"note\">The profile file holds a secret: keep it like a password. This page \
         shows it only once; afterwards this link answers that it was used.</p>\
         <h2>Read the tables</h2>\
         <p>With pandas (<code>pip install delta-sharing</code> in a virtual environment):</p>\
         <pre>import delta_sharing\nprofile = \"{recipient}.share\"\n\
         print(delta_sharing.SharingClient(profile).list_all_tables())\n\
         df = delta_sharing.load_as_pandas(profile + \"#{first}.SCHEMA.TABLE\")</pre>\
         <p>With Spark (the <code>io.delta:delta-sharing-spark</code> package):</p>\
         <pre>df = spark.read.format(\"deltaSharing\").load(\"{recipient}.share#{first}.SCHEMA.TABLE\")</pre>",
        recipient = esc(&l.recipient),
        endpoint = esc(endpoint),
        link = when(Some(l.link_expires_at_ms)),
        token = when(l.token_expires_at_ms),
        first = esc(&first),
    );
    page(
        StatusCode::OK,
        &format!("Delta Sharing access for {}", l.recipient),
        &body,
    )
}

/// The page for a link that was used, expired or never existed.
pub(crate) fn used() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "Activation link already used",
        "<h1>This activation link was already used or has expired</h1>\
         <p>Each link gives its profile once. If you did not download the profile, or lost it, \
         ask your data provider for a new link.</p>",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn recipient_text_is_escaped() {
        let r = landing(
            &ActivationLanding {
                recipient: "<script>x</script>".to_owned(),
                shares: vec![("s\"><b>".to_owned(), None)],
                link_expires_at_ms: 0,
                token_expires_at_ms: None,
            },
            "https://h/x",
        );
        assert_eq!(r.status(), StatusCode::OK);
        assert!(
            r.headers()[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap_or_default()
                .contains("default-src 'none'")
        );
        let body = axum::body::to_bytes(r.into_body(), 1 << 20)
            .await
            .unwrap_or_default();
        let html = String::from_utf8_lossy(&body);
        assert!(
            !html.contains("<script>") && html.contains("&lt;script&gt;"),
            "{html}"
        );
        assert!(!html.contains("s\"><b>"), "{html}");
        assert!(html.contains("<form method=\"post\">"));
    }

    #[test]
    fn esc_escapes_markup() {
        assert_eq!(
            esc("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
