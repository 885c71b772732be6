//! The HTTP pieces of the tests' fault-injecting L1 proxies, which put faults between ferry
//! and Anvil and so must read and write requests themselves.

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Reads one HTTP/1.1 request from `reader` and returns its body; `None` when the peer closed
/// the connection or the request was cut short. For the tests' L1 proxies, which put faults
/// between ferry and Anvil and so must read requests themselves.
pub async fn read_http_request<R: AsyncBufRead + Unpin>(reader: &mut R) -> Option<Vec<u8>> {
    let mut content_length = 0;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        if line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            content_length = value.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; content_length];
    reader.read_exact(&mut body).await.ok()?;
    Some(body)
}

/// Sends one JSON-RPC request body to `upstream`, as the tests' L1 proxies forward what ferry
/// sent: the answer's status and body; `None` when the upstream cannot be reached.
pub async fn forward_json(
    client: &alloy::transports::http::reqwest::Client,
    upstream: &str,
    body: Vec<u8>,
) -> Option<(u16, Vec<u8>)> {
    let response = client
        .post(upstream)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    Some((status, response.bytes().await.ok()?.to_vec()))
}

/// Writes one HTTP/1.1 response with `status` and a JSON `body`, as far as `socket` takes it:
/// `false` when the peer has gone.
pub async fn write_json_response<W: AsyncWrite + Unpin>(
    socket: &mut W,
    status: u16,
    body: &[u8],
) -> bool {
    let head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    socket.write_all(head.as_bytes()).await.is_ok() && socket.write_all(body).await.is_ok()
}
