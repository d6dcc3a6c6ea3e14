//! The X-Ray daemon, for one machine: a UDP socket on 127.0.0.1 that
//! collects the segment documents a function sends to
//! `AWS_XRAY_DAEMON_ADDRESS`, checking the daemon's header line on each.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::net::UdpSocket;

use crate::Error;

/// A listening daemon stand-in.
pub struct Daemon(UdpSocket);

impl Daemon {
    /// Binds a free loopback port.
    pub async fn start() -> Result<Self, Error> {
        Ok(Self(UdpSocket::bind("127.0.0.1:0").await?))
    }

    /// The value for `AWS_XRAY_DAEMON_ADDRESS`.
    pub fn address(&self) -> Result<String, Error> {
        Ok(self.0.local_addr()?.to_string())
    }

    /// Every segment document received until `quiet` passes with none. Each
    /// datagram must be the daemon's header line (`{"format": "json",
    /// "version": 1}`), a newline, then one JSON document.
    pub async fn documents(&self, quiet: Duration) -> Result<Vec<Value>, Error> {
        let mut out = Vec::new();
        let mut buffer = vec![0_u8; 65_536];
        while let Ok(received) = tokio::time::timeout(quiet, self.0.recv(&mut buffer)).await {
            let datagram = String::from_utf8_lossy(&buffer[..received?]).into_owned();
            let bad = |what: &str| Error::Process(format!("x-ray datagram {what}: {datagram}"));
            let (header, body) = datagram.split_once('\n').ok_or_else(|| bad("without a header line"))?;
            let header: Value = serde_json::from_str(header).map_err(|_| bad("with a header that is not JSON"))?;
            if header != json!({"format": "json", "version": 1}) {
                return Err(bad("with the wrong header"));
            }
            out.push(serde_json::from_str(body).map_err(|_| bad("whose document is not JSON"))?);
        }
        Ok(out)
    }
}

/// Whether `doc` descends from the (sub)segment with id `ancestor` within `docs`.
pub fn descends(docs: &[Value], doc: &Value, ancestor: &str) -> bool {
    let by_id: HashMap<&str, &Value> = docs.iter().filter_map(|d| Some((d["id"].as_str()?, d))).collect();
    let mut parent = doc["parent_id"].as_str();
    while let Some(id) = parent {
        if id == ancestor {
            return true;
        }
        parent = by_id.get(id).and_then(|d| d["parent_id"].as_str());
    }
    false
}

/// A trace header as Lambda hands it to a function with active tracing: a
/// fresh root, `parent` (e.g. the facade segment's id), sampled. Returns
/// (root, header).
pub fn trace_header(parent: &str) -> (String, String) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let random = uuid::Uuid::new_v4().simple().to_string();
    let root = format!("1-{now:08x}-{}", &random[..24]);
    let header = format!("Root={root};Parent={parent};Sampled=1");
    (root, header)
}

/// A fresh 16-hex-digit segment id.
pub fn segment_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..16].to_owned()
}
