//! Zeek's JSON conn.log lines from a `flows` batch, for log shippers and
//! tools that read Zeek logs (`--flows-format zeek-json`).
//!
//! Field names and encodings are Zeek's (`LogAscii::use_json=T`): `ts` as
//! epoch seconds with microseconds, the connection id flattened as
//! `id.orig_h` … `id.resp_p`, counts as numbers, and a field Zeek leaves
//! unset left out. Where scanwatch's flow differs from Zeek's conn record:
//! - `duration`, `orig_bytes` and `resp_bytes` are left out of a flow of a
//!   single packet, as Zeek leaves them unset for it;
//! - `orig_bytes`/`resp_bytes` are payload bytes as seen, where Zeek uses
//!   TCP sequence numbers (the two differ only for retransmitted or missing
//!   data: `missed_bytes` is always 0 here);
//! - `orig_ip_bytes`/`resp_ip_bytes` are not written: the flows table does
//!   not keep IP-level byte counts;
//! - `community_id` (Zeek's community-id package's field) and `vlan` are
//!   written when known, and `flow_id` is scanwatch's own, to join alerts.

use crate::{append_whole, SinkError};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, TimestampMicrosecondType, UInt16Type, UInt64Type};
use arrow_array::{Array, RecordBatch};
use arrow_schema::ArrowError;
use std::fmt::Write as _;
use std::fs::File;
use std::path::PathBuf;

/// `conn.log` as Zeek's JSON lines: appended whole lines only (cut back
/// after a failed write, like the alerts), reopened on SIGHUP.
pub struct ConnLog {
    path: PathBuf,
    file: File,
    text: String,
    /// Lines that could not be written (a full disk).
    pub dropped: u64,
}

impl ConnLog {
    pub fn open(path: PathBuf) -> Result<ConnLog, SinkError> {
        let file = Self::open_file(&path)?;
        Ok(ConnLog {
            path,
            file,
            text: String::new(),
            dropped: 0,
        })
    }

    fn open_file(path: &std::path::Path) -> Result<File, SinkError> {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(crate::io_err(path))
    }

    /// Appends the lines of a flows batch; on a failure none of them
    /// stays, and they are counted in `dropped`.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), SinkError> {
        self.text.clear();
        conn_lines(batch, &mut self.text).map_err(|source| SinkError::Arrow {
            path: self.path.clone(),
            source,
        })?;
        append_whole(&mut self.file, self.text.as_bytes()).map_err(|e| {
            self.dropped += batch.num_rows() as u64;
            crate::io_err(&self.path)(e)
        })
    }

    /// Syncs, closes and opens the path again (as `logrotate` expects).
    pub fn reopen(&mut self) -> Result<(), SinkError> {
        self.sync();
        self.file = Self::open_file(&self.path)?;
        Ok(())
    }

    /// Makes what was written durable (best effort: a failure here leaves
    /// the lines written, only not yet synced).
    pub fn sync(&mut self) {
        let _ = self.file.sync_data();
    }
}

fn col<'a>(b: &'a RecordBatch, name: &str) -> Result<&'a dyn Array, ArrowError> {
    b.column_by_name(name)
        .map(|c| c.as_ref())
        .ok_or_else(|| ArrowError::SchemaError(format!("flows batch has no column {name}")))
}

/// Appends one JSON line per row of a `flows` batch to `out`.
pub fn conn_lines(b: &RecordBatch, out: &mut String) -> Result<(), ArrowError> {
    let ts = col(b, "ts")?.as_primitive::<TimestampMicrosecondType>();
    let uid = col(b, "uid")?.as_string::<i32>();
    let id = col(b, "id")?.as_struct();
    let orig_h = id.column(0).as_string::<i32>();
    let orig_p = id.column(1).as_primitive::<UInt16Type>();
    let resp_h = id.column(2).as_string::<i32>();
    let resp_p = id.column(3).as_primitive::<UInt16Type>();
    let proto = col(b, "proto")?.as_string::<i32>();
    let duration = col(b, "duration")?.as_primitive::<Float64Type>();
    let u64s = |n| -> Result<_, ArrowError> { Ok(col(b, n)?.as_primitive::<UInt64Type>()) };
    let (orig_pkts, orig_bytes) = (u64s("orig_pkts")?, u64s("orig_bytes")?);
    let (resp_pkts, resp_bytes) = (u64s("resp_pkts")?, u64s("resp_bytes")?);
    let state = col(b, "conn_state")?.as_string::<i32>();
    let history = col(b, "history")?.as_string::<i32>();
    let cid = col(b, "community_id")?.as_string::<i32>();
    let vlan = col(b, "vlan")?.as_primitive::<UInt16Type>();
    let flow_id = u64s("flow_id")?;
    for i in 0..b.num_rows() {
        let t = ts.value(i);
        // Strings below are addresses, fixed codes and base-62/64 text:
        // none needs JSON escaping.
        let _ = write!(
            out,
            "{{\"ts\":{}.{:06},\"uid\":\"{}\",\"id.orig_h\":\"{}\",\"id.orig_p\":{},\"id.resp_h\":\"{}\",\"id.resp_p\":{},\"proto\":\"{}\"",
            t.div_euclid(1_000_000),
            t.rem_euclid(1_000_000),
            uid.value(i),
            orig_h.value(i),
            orig_p.value(i),
            resp_h.value(i),
            resp_p.value(i),
            proto.value(i),
        );
        let pkts = orig_pkts.value(i) + resp_pkts.value(i);
        if pkts > 1 {
            let _ = write!(
                out,
                ",\"duration\":{:.6},\"orig_bytes\":{},\"resp_bytes\":{}",
                duration.value(i),
                orig_bytes.value(i),
                resp_bytes.value(i)
            );
        }
        let _ = write!(
            out,
            ",\"conn_state\":\"{}\",\"missed_bytes\":0",
            state.value(i)
        );
        if !history.value(i).is_empty() {
            let _ = write!(out, ",\"history\":\"{}\"", history.value(i));
        }
        let _ = write!(
            out,
            ",\"orig_pkts\":{},\"resp_pkts\":{},\"community_id\":\"{}\"",
            orig_pkts.value(i),
            resp_pkts.value(i),
            cid.value(i),
        );
        if vlan.is_valid(i) {
            let _ = write!(out, ",\"vlan\":{}", vlan.value(i));
        }
        let _ = writeln!(out, ",\"flow_id\":{}}}", flow_id.value(i));
    }
    Ok(())
}
