//! A loopback HTTP server for unit tests: answers canned responses in order and records the requests it got.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::thread::JoinHandle;

/// One request as received: method, path, headers (names lowercased) and body.
#[derive(Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// Starts the server; its base URL, and a handle that yields the requests once every answer was sent.
pub fn serve(answers: Vec<(u16, &'static str)>) -> (String, JoinHandle<Vec<Recorded>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let url = format!("http://{}", listener.local_addr().expect("an address"));
    let handle = std::thread::spawn(move || {
        let mut recorded = Vec::new();
        for (status, body) in answers {
            let (mut stream, _) = listener.accept().expect("a connection");
            recorded.push(read_request(&mut stream));
            let answer = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(answer.as_bytes()).expect("the answer is sent");
        }
        recorded
    });
    (url, handle)
}

fn read_request(stream: &mut impl Read) -> Recorded {
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 4096];
    let head_end = loop {
        let read = stream.read(&mut buffer).expect("the request is read");
        assert!(read > 0, "the connection closed before the request ended");
        bytes.extend_from_slice(&buffer[..read]);
        if let Some(end) = bytes.windows(4).position(|window| window == b"\r\n\r\n") {
            break end;
        }
    };
    let head = String::from_utf8_lossy(&bytes[..head_end]).into_owned();
    let mut lines = head.lines();
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_string();
    let path = request_line.next().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0);
    let mut body = bytes[head_end + 4..].to_vec();
    while body.len() < length {
        let read = stream.read(&mut buffer).expect("the body is read");
        assert!(read > 0, "the connection closed before the body ended");
        body.extend_from_slice(&buffer[..read]);
    }
    Recorded { method, path, headers, body }
}
