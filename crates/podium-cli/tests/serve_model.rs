//! `podium serve-model` on the real SmolLM2 GGUF: a streamed chat completion,
//! a log-probs completion, and a malformed request. Runs when
//! `PODIUM_MODEL_DIR` holds the test models (scripts/test sets it).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Option<Server> {
    let Some(dir) = std::env::var_os("PODIUM_MODEL_DIR") else {
        eprintln!("skipped: set PODIUM_MODEL_DIR to the folder of the test GGUF models");
        return None;
    };
    let model = std::path::Path::new(&dir).join("SmolLM2-135M-Instruct.Q4_1.gguf");
    let mut child = Command::new(env!("CARGO_BIN_EXE_podium"))
        .arg("serve-model")
        .arg(format!("gguf:{}", model.display()))
        .args(["--addr", "127.0.0.1:0", "--threads", "1"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("podium starts");
    let stderr = child.stderr.take().expect("piped stderr");
    let mut line = String::new();
    BufReader::new(stderr)
        .read_line(&mut line)
        .expect("a startup line");
    // "serving `NAME` on http://127.0.0.1:PORT/v1 (Ctrl-C to stop)"
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    Some(Server { child, addr })
}

/// A minimal HTTP/1.1 POST; returns (status, body).
fn post(addr: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    let status: u16 = response[9..12].parse().expect("status code");
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

#[test]
fn serves_streamed_chat_logprobs_and_rejects_bad_json() {
    let Some(server) = start() else { return };

    let chat = r#"{"messages":[{"role":"user","content":"Say hello."}],"max_tokens":8,"temperature":0,"stream":true,"stream_options":{"include_usage":true}}"#;
    let (status, body) = post(&server.addr, "/v1/chat/completions", chat);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("chat.completion.chunk"), "{body}");
    assert!(body.contains(r#""role":"assistant""#), "{body}");
    assert!(
        body.contains(r#""completion_tokens":"#),
        "usage chunk missing: {body}"
    );
    assert!(
        body.trim_end().ends_with("[DONE]") || body.contains("data: [DONE]"),
        "{body}"
    );

    let completion = r#"{"prompt":"The capital of France is","max_tokens":1,"echo":true,"logprobs":1,"temperature":0}"#;
    let (status, body) = post(&server.addr, "/v1/completions", completion);
    assert_eq!(status, 200, "{body}");
    // Chunked transfer may wrap the JSON; find the object.
    let start = body.find('{').unwrap();
    let end = body.rfind('}').unwrap();
    let json: serde_json::Value = serde_json::from_str(&body[start..=end]).unwrap();
    let logprobs = &json["choices"][0]["logprobs"];
    let tokens = logprobs["tokens"].as_array().unwrap();
    let token_logprobs = logprobs["token_logprobs"].as_array().unwrap();
    assert_eq!(tokens.len(), token_logprobs.len());
    assert!(token_logprobs[0].is_null());
    // Every scored prompt token has a finite log-prob no larger than its top-1's.
    for (lp, top) in token_logprobs
        .iter()
        .zip(logprobs["top_logprobs"].as_array().unwrap())
        .skip(1)
    {
        let lp = lp.as_f64().unwrap();
        let best = top
            .as_object()
            .unwrap()
            .values()
            .next()
            .unwrap()
            .as_f64()
            .unwrap();
        assert!(
            lp.is_finite() && lp <= 0.0 && lp <= best + 1e-9,
            "{lp} vs {best}"
        );
    }
    assert!(
        json["choices"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("The capital of France is")
    );

    let (status, body) = post(&server.addr, "/v1/completions", "{not json");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("invalid JSON body"), "{body}");
}
