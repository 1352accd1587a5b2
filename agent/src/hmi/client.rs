//! A small client for the HMI API: what `rapport-agent prompts` uses to list prompts, act on
//! one and follow the event stream.
//!
//! Owns: the HTTP exchange, reading error bodies back into [`HmiError::Api`], and parsing the
//! server-sent-event stream ([`SseParser`], sans-IO). Does not own: formatting for people
//! (`cli`).
//!
//! It is built on hyper's low-level HTTP/1 client over a tokio `TcpStream`, one connection per
//! request, rather than on reqwest: the agent binary ships on a head unit where flash is
//! scarce, hyper is already linked in for the server, and reqwest would add its connection
//! pool, TLS stack and proxy support for no use — the API is plain HTTP on loopback only, which
//! [`Client::new`] enforces.

use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::task::JoinHandle;

use super::HmiError;
use super::views::{DriverAction, HmiEvent, PromptView};

/// Largest answer body read (a list of prompts is a few KiB).
const MAX_ANSWER: usize = 1024 * 1024;

/// Longest SSE line kept before the stream is refused.
const MAX_SSE_LINE: usize = 64 * 1024;

/// How long a plain request may take (not the event stream).
const TIMEOUT: Duration = Duration::from_secs(10);

/// A client of one agent's HMI API.
#[derive(Debug, Clone)]
pub struct Client {
    addr: SocketAddr,
}

impl Client {
    /// A client of the API at `addr`.
    ///
    /// # Errors
    /// [`HmiError::NotLoopback`] unless `addr` is a loopback address: the API has neither TLS
    /// nor authentication.
    pub fn new(addr: SocketAddr) -> Result<Self, HmiError> {
        if addr.ip().is_loopback() {
            Ok(Self { addr })
        } else {
            Err(HmiError::NotLoopback(addr))
        }
    }

    /// `GET /v1/prompts`: what may be on screen now.
    ///
    /// # Errors
    /// Connection, HTTP, timeout, [`HmiError::Api`] refusals, or an answer that does not parse.
    pub async fn prompts(&self) -> Result<Vec<PromptView>, HmiError> {
        self.call(Method::GET, "/v1/prompts".to_owned(), None).await
    }

    /// `POST /v1/prompts/{id}/action`; the prompt as it stands after the action.
    ///
    /// # Errors
    /// As [`Client::prompts`]; an unknown id is `Api { status: 404, code: "not_found" }`, a
    /// closed prompt `Api { status: 409, code: "conflict" }`.
    pub async fn act(&self, id: &str, action: DriverAction) -> Result<PromptView, HmiError> {
        let body = serde_json::to_vec(&action).map_err(|e| HmiError::Decode {
            what: "action body".to_owned(),
            message: e.to_string(),
        })?;
        let path = format!("/v1/prompts/{}/action", encode_segment(id));
        self.call(Method::POST, path, Some(body)).await
    }

    /// `GET /v1/prompts/stream`: the live event stream (first the visible prompts).
    ///
    /// # Errors
    /// Connection, HTTP, timeout until the answer's head arrives, or a refusal.
    pub async fn watch(&self) -> Result<Watch, HmiError> {
        let what = "GET /v1/prompts/stream";
        let (status, body, conn) = self
            .timed(self.send(Method::GET, "/v1/prompts/stream", None))
            .await?;
        if status != StatusCode::OK {
            let bytes = read_limited(body, self.addr).await;
            conn.abort();
            return Err(api_error(status, &bytes?));
        }
        tracing::debug!(what, "event stream open");
        Ok(Watch {
            body,
            conn,
            parser: SseParser::default(),
            addr: self.addr,
        })
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: String,
        body: Option<Vec<u8>>,
    ) -> Result<T, HmiError> {
        let what = format!("{method} {path}");
        let (status, bytes) = self
            .timed(async {
                let (status, body, conn) = self.send(method, &path, body).await?;
                let bytes = read_limited(body, self.addr).await;
                conn.abort();
                Ok((status, bytes?))
            })
            .await?;
        if !status.is_success() {
            return Err(api_error(status, &bytes));
        }
        serde_json::from_slice(&bytes).map_err(|e| HmiError::Decode {
            what,
            message: e.to_string(),
        })
    }

    async fn timed<T>(&self, f: impl Future<Output = Result<T, HmiError>>) -> Result<T, HmiError> {
        tokio::time::timeout(TIMEOUT, f)
            .await
            .map_err(|_| HmiError::Timeout {
                addr: self.addr,
                secs: TIMEOUT.as_secs(),
            })?
    }

    /// Opens a connection, sends one request and returns the answer's head, its body and the
    /// task driving the connection (abort it when done with the body).
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Incoming, JoinHandle<()>), HmiError> {
        let addr = self.addr;
        let http = |source| HmiError::Http { addr, source };
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|source| HmiError::Connect { addr, source })?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(http)?;
        let conn = tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(cause = %e, "HMI client connection ended");
            }
        });
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, addr.to_string())
            .header(header::ACCEPT, "application/json, text/event-stream");
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| HmiError::Decode {
                what: format!("request {path}"),
                message: e.to_string(),
            })?;
        let resp = sender.send_request(req).await.map_err(http)?;
        let status = resp.status();
        Ok((status, resp.into_body(), conn))
    }
}

async fn read_limited(mut body: Incoming, addr: SocketAddr) -> Result<Vec<u8>, HmiError> {
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|source| HmiError::Http { addr, source })?;
        if let Some(data) = frame.data_ref() {
            if out.len() + data.len() > MAX_ANSWER {
                return Err(HmiError::Decode {
                    what: "answer".to_owned(),
                    message: format!("over {MAX_ANSWER} bytes"),
                });
            }
            out.extend_from_slice(data);
        }
    }
    Ok(out)
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
}

fn api_error(status: StatusCode, body: &[u8]) -> HmiError {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(b) => HmiError::Api {
            status: status.as_u16(),
            code: b.error.code,
            message: b.error.message,
        },
        Err(_) => HmiError::Api {
            status: status.as_u16(),
            code: "unknown".to_owned(),
            message: String::from_utf8_lossy(body).chars().take(200).collect(),
        },
    }
}

/// Percent-encodes one path segment: ids are made of item names, codes and campaign ids
/// (which come from the cloud), so anything outside RFC 3986 `pchar` is escaped.
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:@!$&'()*+,;=".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An open event stream. Dropping it closes the connection.
#[derive(Debug)]
pub struct Watch {
    body: Incoming,
    conn: JoinHandle<()>,
    parser: SseParser,
    addr: SocketAddr,
}

impl Watch {
    /// The next event; `Ok(None)` when the server ended the stream. Events this build does
    /// not know are skipped.
    ///
    /// # Errors
    /// The connection failed, a line was over 64 KiB, or an event's data did not parse.
    pub async fn next(&mut self) -> Result<Option<HmiEvent>, HmiError> {
        loop {
            while let Some((name, data)) = self.parser.next_event()? {
                match HmiEvent::from_sse(&name, &data) {
                    Ok(Some(ev)) => return Ok(Some(ev)),
                    Ok(None) => tracing::debug!(event = %name, "unknown HMI event skipped"),
                    Err(e) => {
                        return Err(HmiError::Decode {
                            what: format!("event {name}"),
                            message: e.to_string(),
                        });
                    }
                }
            }
            match self.body.frame().await {
                None => return Ok(None),
                Some(Err(source)) => {
                    return Err(HmiError::Http {
                        addr: self.addr,
                        source,
                    });
                }
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        self.parser.push(data);
                    }
                }
            }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.conn.abort();
    }
}

/// Splits a server-sent-event byte stream into `(event name, data)` pairs (sans-IO).
///
/// Handles what the HTML living standard's parser does except `id` and `retry` (unused here)
/// and lone-CR line ends (our server writes LF): comments are skipped, several `data` lines
/// join with `\n`, an event without data is not dispatched, the name defaults to `message`.
#[derive(Debug, Default)]
pub(crate) struct SseParser {
    buf: Vec<u8>,
    event: String,
    data: Option<String>,
}

impl SseParser {
    /// Appends received bytes.
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete event, if the bytes so far hold one.
    ///
    /// # Errors
    /// A line over 64 KiB (the stream is then unusable), or a line that is not UTF-8.
    pub(crate) fn next_event(&mut self) -> Result<Option<(String, String)>, HmiError> {
        let bad = |message: String| HmiError::Decode {
            what: "event stream".to_owned(),
            message,
        };
        loop {
            let Some(end) = self.buf.iter().position(|&b| b == b'\n') else {
                if self.buf.len() > MAX_SSE_LINE {
                    return Err(bad(format!("a line over {MAX_SSE_LINE} bytes")));
                }
                return Ok(None);
            };
            let mut line: Vec<u8> = self.buf.drain(..=end).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let line =
                String::from_utf8(line).map_err(|e| bad(format!("a line not in UTF-8: {e}")))?;
            if line.is_empty() {
                let name = std::mem::take(&mut self.event);
                if let Some(data) = self.data.take() {
                    let name = if name.is_empty() {
                        "message".to_owned()
                    } else {
                        name
                    };
                    return Ok(Some((name, data)));
                }
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line.as_str(), ""),
            };
            match field {
                "event" => value.clone_into(&mut self.event),
                "data" => match &mut self.data {
                    Some(d) => {
                        d.push('\n');
                        d.push_str(value);
                    }
                    None => self.data = Some(value.to_owned()),
                },
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn events(chunks: &[&[u8]]) -> Vec<(String, String)> {
        let mut p = SseParser::default();
        let mut out = Vec::new();
        for c in chunks {
            p.push(c);
            while let Some(ev) = p.next_event().unwrap() {
                out.push(ev);
            }
        }
        out
    }

    #[test]
    fn sse_events_split_across_chunks_with_comments_and_multiline_data() {
        let got = events(&[
            b": keep-alive\n\nevent: prom",
            b"pt\ndata: {\"a\":1}\n\r\n",
            b"data:x\ndata: y\n\n",
            b"event: resync\n\n", // no data: not dispatched
            b"event: hidden\ndata: {}\n",
        ]);
        assert_eq!(
            got,
            [
                ("prompt".to_owned(), "{\"a\":1}".to_owned()),
                ("message".to_owned(), "x\ny".to_owned()),
            ]
        );
    }

    #[test]
    fn sse_refuses_an_endless_line() {
        let mut p = SseParser::default();
        p.push(&vec![b'a'; MAX_SSE_LINE + 1]);
        assert!(p.next_event().is_err());
    }

    #[test]
    fn path_segments_are_escaped_outside_pchar() {
        assert_eq!(
            encode_segment("maintenance:oil:2:due"),
            "maintenance:oil:2:due"
        );
        assert_eq!(
            encode_segment("campaign:a/b c?%é"),
            "campaign:a%2Fb%20c%3F%25%C3%A9"
        );
    }

    #[test]
    fn only_loopback_addresses_are_accepted() {
        assert!(Client::new("127.0.0.1:8686".parse().unwrap()).is_ok());
        assert!(Client::new("[::1]:8686".parse().unwrap()).is_ok());
        assert!(matches!(
            Client::new("192.168.1.10:8686".parse().unwrap()),
            Err(HmiError::NotLoopback(_))
        ));
    }
}
