//! The server on a real socket: bind port 0, fetch `/` over plain HTTP, shut
//! down gracefully.

mod common;

use std::io::{Read, Write};

use podium_web::{bind, serve_listener};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_the_board_over_a_real_socket_and_shuts_down() {
    let (state, _) = common::state();
    let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_listener(listener, state, async {
        stopped.await.ok();
    }));
    let response = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    })
    .await
    .unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(
        response
            .to_ascii_lowercase()
            .contains("content-security-policy: default-src 'none'")
    );
    assert!(response.contains("Beta Closed"));
    stop.send(()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), server)
        .await
        .expect("the server stops on shutdown")
        .unwrap()
        .unwrap();
}
