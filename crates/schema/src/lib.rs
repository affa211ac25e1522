//! The two output tables as Arrow: their schemas (DESIGN §5, Zeek conn.log
//! names for flows) and one column-builder struct per table, in the manner of
//! arrow-rs's "custom builders": `append(&row)`, then `finish()` gives a
//! `RecordBatch` that owns its schema.
//!
//! Addresses are canonical text, times are `timestamp[us, UTC]`, and each
//! schema carries its name and version in its metadata
//! (`scanwatch.table`, `scanwatch.schema_version`).

use arrow_array::builder::{
    Float64Builder, ListBuilder, StringBuilder, TimestampMicrosecondBuilder, UInt16Builder,
    UInt64Builder,
};
use arrow_array::types::{
    ArrowPrimitiveType, Float64Type, TimestampMicrosecondType, UInt16Type, UInt64Type,
};
use arrow_array::{ArrayRef, PrimitiveArray, RecordBatch, StringArray, StructArray};
use arrow_buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{ArrowError, DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use scanwatch_model::{proto, Detection, FlowRecord};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// Bumped whenever a column is added, removed or changes meaning.
pub const SCHEMA_VERSION: &str = "3";

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn metadata(table: &str) -> HashMap<String, String> {
    HashMap::from([
        ("scanwatch.table".to_string(), table.to_string()),
        (
            "scanwatch.schema_version".to_string(),
            SCHEMA_VERSION.to_string(),
        ),
    ])
}

fn id_fields() -> Fields {
    Fields::from(vec![
        Field::new("orig_h", DataType::Utf8, false),
        Field::new("orig_p", DataType::UInt16, false),
        Field::new("resp_h", DataType::Utf8, false),
        Field::new("resp_p", DataType::UInt16, false),
    ])
}

/// The `flows` table.
pub fn flow_schema() -> SchemaRef {
    static S: OnceLock<SchemaRef> = OnceLock::new();
    S.get_or_init(|| {
        Arc::new(
            Schema::new(vec![
                Field::new("ts", ts_type(), false),
                Field::new("uid", DataType::Utf8, false),
                Field::new("id", DataType::Struct(id_fields()), false),
                Field::new("proto", DataType::Utf8, false),
                Field::new("duration", DataType::Float64, false),
                Field::new("orig_pkts", DataType::UInt64, false),
                Field::new("orig_bytes", DataType::UInt64, false),
                Field::new("resp_pkts", DataType::UInt64, false),
                Field::new("resp_bytes", DataType::UInt64, false),
                Field::new("conn_state", DataType::Utf8, false),
                Field::new("history", DataType::Utf8, false),
                Field::new("community_id", DataType::Utf8, false),
                Field::new("vlan", DataType::UInt16, true),
                // The EVE alerts' `flow_id` of a probe of this flow.
                Field::new("flow_id", DataType::UInt64, false),
            ])
            .with_metadata(metadata("flows")),
        )
    })
    .clone()
}

fn list_of(dt: DataType) -> DataType {
    DataType::List(Arc::new(Field::new("item", dt, false)))
}

/// The `detections` table.
pub fn detection_schema() -> SchemaRef {
    static S: OnceLock<SchemaRef> = OnceLock::new();
    S.get_or_init(|| {
        Arc::new(
            Schema::new(vec![
                Field::new("ts_first", ts_type(), false),
                Field::new("ts_last", ts_type(), false),
                Field::new("ts_detected", ts_type(), false),
                Field::new("scanner", DataType::Utf8, false),
                Field::new("kind", DataType::Utf8, false),
                Field::new("proto", DataType::Utf8, false),
                Field::new("detector", DataType::Utf8, false),
                Field::new("dst_count", DataType::UInt64, false),
                Field::new("port_count", DataType::UInt64, false),
                Field::new("probes", DataType::UInt64, false),
                Field::new("answered", DataType::UInt64, false),
                Field::new("rejected", DataType::UInt64, false),
                Field::new("unanswered", DataType::UInt64, false),
                Field::new("ports", list_of(DataType::UInt16), false),
                Field::new("targets", list_of(DataType::Utf8), false),
                Field::new("open", list_of(DataType::Utf8), false),
                Field::new("detection_id", DataType::Utf8, false),
                // inbound, outbound, internal or external (`--home-net`).
                Field::new("direction", DataType::Utf8, false),
                // How it probed, and what sent it (issue 16): syn, connect,
                // fin, …; nmap, masscan, zmap, hping3, mirai-like, unknown,
                // with the header facts that matched; probes per second;
                // sequential or random; all, nmap-top-N or custom; the
                // campaign it belongs to (null when alone).
                Field::new("technique", DataType::Utf8, false),
                Field::new("tool", DataType::Utf8, false),
                Field::new("tool_evidence", list_of(DataType::Utf8), false),
                Field::new("rate_pps", DataType::Float64, false),
                Field::new("order", DataType::Utf8, false),
                Field::new("port_set", DataType::Utf8, false),
                Field::new("campaign_id", DataType::Utf8, true),
                // A distributed scan's sources (text addresses, sorted);
                // empty for the other kinds.
                Field::new("sources", list_of(DataType::Utf8), false),
            ])
            .with_metadata(metadata("detections")),
        )
    })
    .clone()
}

/// A table's rows in the making.
pub trait TableBuilder {
    type Row;
    fn append(&mut self, row: &Self::Row);
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Takes the rows so far as a batch; the builder is empty afterwards.
    fn finish(&mut self) -> Result<RecordBatch, ArrowError>;
}

/// Column builders of the `flows` table.
pub struct FlowBatchBuilder {
    ts: Vec<i64>,
    uid: StrCol,
    orig_h: StrCol,
    orig_p: Vec<u16>,
    resp_h: StrCol,
    resp_p: Vec<u16>,
    proto: StrCol,
    duration: Vec<f64>,
    orig_pkts: Vec<u64>,
    orig_bytes: Vec<u64>,
    resp_pkts: Vec<u64>,
    resp_bytes: Vec<u64>,
    conn_state: StrCol,
    flow_id: Vec<u64>,
    history: StrCol,
    community_id: StrCol,
    vlan: UInt16Builder,
}

/// A Utf8 column with no nulls, built by pushing bytes and offsets straight
/// into two vectors: a quarter of the instructions of arrow's
/// `StringBuilder`, which also keeps a null buffer (flow records append
/// seven strings each, the hottest part of building a batch).
struct StrCol {
    offsets: Vec<i32>,
    values: Vec<u8>,
}

impl StrCol {
    fn with_capacity(rows: usize, bytes: usize) -> StrCol {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        StrCol {
            offsets,
            values: Vec::with_capacity(bytes),
        }
    }

    #[inline]
    fn push(&mut self, s: &str) {
        self.values.extend_from_slice(s.as_bytes());
        // A batch's strings stay far below 2 GiB (rows x at most 46 bytes).
        self.offsets.push(self.values.len() as i32);
    }

    /// The first `n` bytes of `b` (ASCII), copied as a whole `N`-byte block
    /// and cut back: a fixed-size copy is a few moves where a
    /// variable-length one is a call to `memmove`.
    #[inline]
    fn push_fixed<const N: usize>(&mut self, b: &[u8; N], n: usize) {
        let start = self.values.len();
        self.values.extend_from_slice(b);
        self.values.truncate(start + n.min(N));
        self.offsets.push(self.values.len() as i32);
    }

    /// The array, leaving the column empty with its capacity gone (the
    /// buffers move into the array without a copy).
    fn finish(&mut self) -> Result<StringArray, ArrowError> {
        // The offsets always start with the 0 of the first string.
        let offsets = std::mem::replace(&mut self.offsets, vec![0]);
        let values = std::mem::take(&mut self.values);
        // Checks the offsets and that the bytes are UTF-8, as a builder would.
        StringArray::try_new(
            OffsetBuffer::new(ScalarBuffer::from(offsets)),
            Buffer::from_vec(values),
            None,
        )
    }
}

/// An address's text: IPv4 (the hot case) from its 16-byte block.
#[inline]
fn push_addr(col: &mut StrCol, a: scanwatch_model::Addr) {
    match a.v4_text() {
        Some((text, n)) => col.push_fixed(&text, n),
        None => col.push(a.write_text(&mut [0u8; 46])),
    }
}

impl Default for FlowBatchBuilder {
    fn default() -> Self {
        FlowBatchBuilder::with_capacity(0)
    }
}

impl FlowBatchBuilder {
    /// Room for `rows` rows from the start, so that building a batch of
    /// that size never reallocates (string columns at their usual widths).
    pub fn with_capacity(rows: usize) -> Self {
        let s = |bytes: usize| StrCol::with_capacity(rows, rows * bytes);
        FlowBatchBuilder {
            ts: Vec::with_capacity(rows),
            uid: s(18),
            orig_h: s(15),
            orig_p: Vec::with_capacity(rows),
            resp_h: s(15),
            resp_p: Vec::with_capacity(rows),
            proto: s(4),
            duration: Vec::with_capacity(rows),
            orig_pkts: Vec::with_capacity(rows),
            orig_bytes: Vec::with_capacity(rows),
            resp_pkts: Vec::with_capacity(rows),
            resp_bytes: Vec::with_capacity(rows),
            conn_state: s(3),
            history: s(6),
            community_id: s(30),
            vlan: UInt16Builder::with_capacity(rows),
            flow_id: Vec::with_capacity(rows),
        }
    }
}

impl TableBuilder for FlowBatchBuilder {
    type Row = FlowRecord;

    fn append(&mut self, r: &FlowRecord) {
        self.ts.push(r.ts);
        self.uid.push_fixed(&r.uid_bytes(), 18);
        push_addr(&mut self.orig_h, r.orig_h());
        self.orig_p.push(r.orig_p());
        push_addr(&mut self.resp_h, r.resp_h());
        self.resp_p.push(r.resp_p());
        match r.proto() {
            proto::TCP => self.proto.push_fixed(b"tcp\0", 3),
            proto::UDP => self.proto.push_fixed(b"udp\0", 3),
            proto::ICMP | proto::ICMP6 => self.proto.push_fixed(b"icmp", 4),
            p => self.proto.push(zeek_proto(p)),
        }
        self.duration.push((r.last_ts - r.ts) as f64 / 1e6);
        self.orig_pkts.push(r.orig_pkts);
        self.orig_bytes.push(r.orig_bytes);
        self.resp_pkts.push(r.resp_pkts);
        self.resp_bytes.push(r.resp_bytes);
        let (state, n) = r.conn_state.padded();
        self.conn_state.push_fixed(state, n);
        let (hist, n) = r.history.padded();
        self.history.push_fixed(hist, n);
        self.community_id.push_fixed(&r.community_id_bytes(), 30);
        if r.vlan == 0 {
            self.vlan.append_null();
        } else {
            self.vlan.append_value(r.vlan);
        }
        self.flow_id.push(r.flow_id());
    }

    fn len(&self) -> usize {
        self.duration.len()
    }

    fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        fn prim<T: ArrowPrimitiveType>(v: &mut Vec<T::Native>) -> PrimitiveArray<T> {
            PrimitiveArray::new(ScalarBuffer::from(std::mem::take(v)), None)
        }
        let id = StructArray::try_new(
            id_fields(),
            vec![
                Arc::new(self.orig_h.finish()?) as ArrayRef,
                Arc::new(prim::<UInt16Type>(&mut self.orig_p)),
                Arc::new(self.resp_h.finish()?),
                Arc::new(prim::<UInt16Type>(&mut self.resp_p)),
            ],
            None,
        )?;
        let cols: Vec<ArrayRef> = vec![
            Arc::new(prim::<TimestampMicrosecondType>(&mut self.ts).with_timezone("UTC")),
            Arc::new(self.uid.finish()?),
            Arc::new(id),
            Arc::new(self.proto.finish()?),
            Arc::new(prim::<Float64Type>(&mut self.duration)),
            Arc::new(prim::<UInt64Type>(&mut self.orig_pkts)),
            Arc::new(prim::<UInt64Type>(&mut self.orig_bytes)),
            Arc::new(prim::<UInt64Type>(&mut self.resp_pkts)),
            Arc::new(prim::<UInt64Type>(&mut self.resp_bytes)),
            Arc::new(self.conn_state.finish()?),
            Arc::new(self.history.finish()?),
            Arc::new(self.community_id.finish()?),
            Arc::new(self.vlan.finish()),
            Arc::new(prim::<UInt64Type>(&mut self.flow_id)),
        ];
        RecordBatch::try_new(flow_schema(), cols)
    }
}

/// Zeek's `proto` column: transport protocol names, `unknown_transport`
/// for the rest.
pub fn zeek_proto(p: u8) -> &'static str {
    match p {
        proto::TCP => "tcp",
        proto::UDP => "udp",
        proto::ICMP | proto::ICMP6 => "icmp",
        _ => "unknown_transport",
    }
}

/// Column builders of the `detections` table.
pub struct DetectionBatchBuilder {
    ts_first: TimestampMicrosecondBuilder,
    ts_last: TimestampMicrosecondBuilder,
    ts_detected: TimestampMicrosecondBuilder,
    scanner: StringBuilder,
    kind: StringBuilder,
    proto: StringBuilder,
    detector: StringBuilder,
    counts: [UInt64Builder; 6],
    ports: ListBuilder<UInt16Builder>,
    targets: ListBuilder<StringBuilder>,
    open: ListBuilder<StringBuilder>,
    detection_id: StringBuilder,
    direction: StringBuilder,
    technique: StringBuilder,
    tool: StringBuilder,
    tool_evidence: ListBuilder<StringBuilder>,
    rate_pps: Float64Builder,
    order: StringBuilder,
    port_set: StringBuilder,
    campaign_id: StringBuilder,
    sources: ListBuilder<StringBuilder>,
    rows: usize,
}

fn item(dt: DataType) -> Arc<Field> {
    Arc::new(Field::new("item", dt, false))
}

impl Default for DetectionBatchBuilder {
    fn default() -> Self {
        DetectionBatchBuilder {
            ts_first: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            ts_last: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            ts_detected: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            scanner: StringBuilder::new(),
            kind: StringBuilder::new(),
            proto: StringBuilder::new(),
            detector: StringBuilder::new(),
            counts: Default::default(),
            ports: ListBuilder::new(UInt16Builder::new()).with_field(item(DataType::UInt16)),
            targets: ListBuilder::new(StringBuilder::new()).with_field(item(DataType::Utf8)),
            open: ListBuilder::new(StringBuilder::new()).with_field(item(DataType::Utf8)),
            detection_id: StringBuilder::new(),
            direction: StringBuilder::new(),
            technique: StringBuilder::new(),
            tool: StringBuilder::new(),
            tool_evidence: ListBuilder::new(StringBuilder::new()).with_field(item(DataType::Utf8)),
            rate_pps: Float64Builder::new(),
            order: StringBuilder::new(),
            port_set: StringBuilder::new(),
            campaign_id: StringBuilder::new(),
            sources: ListBuilder::new(StringBuilder::new()).with_field(item(DataType::Utf8)),
            rows: 0,
        }
    }
}

impl TableBuilder for DetectionBatchBuilder {
    type Row = Detection;

    fn append(&mut self, d: &Detection) {
        self.ts_first.append_value(d.ts_first);
        self.ts_last.append_value(d.ts_last);
        self.ts_detected.append_value(d.ts_detected);
        self.scanner.append_value(d.scanner.to_string());
        self.kind.append_value(d.kind.name());
        self.proto.append_value(proto::name(d.proto));
        self.detector.append_value(&d.detector);
        for (b, v) in self.counts.iter_mut().zip([
            d.dst_count,
            d.port_count,
            d.probes,
            d.answered,
            d.rejected,
            d.unanswered,
        ]) {
            b.append_value(v);
        }
        for p in &d.ports {
            self.ports.values().append_value(*p);
        }
        self.ports.append(true);
        for t in &d.targets {
            self.targets.values().append_value(t.to_string());
        }
        self.targets.append(true);
        for o in &d.open {
            self.open.values().append_value(o);
        }
        self.open.append(true);
        self.detection_id.append_value(&d.detection_id);
        self.direction.append_value(d.direction.name());
        self.technique.append_value(d.technique.name());
        self.tool.append_value(&d.tool);
        for e in &d.tool_evidence {
            self.tool_evidence.values().append_value(e);
        }
        self.tool_evidence.append(true);
        self.rate_pps.append_value(d.rate_pps);
        self.order.append_value(&d.order);
        self.port_set.append_value(&d.port_set);
        if d.campaign_id.is_empty() {
            self.campaign_id.append_null();
        } else {
            self.campaign_id.append_value(&d.campaign_id);
        }
        for a in &d.sources {
            self.sources.values().append_value(a.to_string());
        }
        self.sources.append(true);
        self.rows += 1;
    }

    fn len(&self) -> usize {
        self.rows
    }

    fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        self.rows = 0;
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(self.ts_first.finish()),
            Arc::new(self.ts_last.finish()),
            Arc::new(self.ts_detected.finish()),
            Arc::new(self.scanner.finish()),
            Arc::new(self.kind.finish()),
            Arc::new(self.proto.finish()),
            Arc::new(self.detector.finish()),
        ];
        for b in &mut self.counts {
            cols.push(Arc::new(b.finish()));
        }
        cols.push(Arc::new(self.ports.finish()));
        cols.push(Arc::new(self.targets.finish()));
        cols.push(Arc::new(self.open.finish()));
        cols.push(Arc::new(self.detection_id.finish()));
        cols.push(Arc::new(self.direction.finish()));
        cols.push(Arc::new(self.technique.finish()));
        cols.push(Arc::new(self.tool.finish()));
        cols.push(Arc::new(self.tool_evidence.finish()));
        cols.push(Arc::new(self.rate_pps.finish()));
        cols.push(Arc::new(self.order.finish()));
        cols.push(Arc::new(self.port_set.finish()));
        cols.push(Arc::new(self.campaign_id.finish()));
        cols.push(Arc::new(self.sources.finish()));
        RecordBatch::try_new(detection_schema(), cols)
    }
}

/// Version of the `campaigns` table (`scanwatch correlate`), kept apart
/// from [`SCHEMA_VERSION`] since the table is written by another command.
pub const CAMPAIGN_SCHEMA_VERSION: &str = "1";

fn per_sensor_fields() -> Fields {
    Fields::from(vec![
        Field::new("sensor", DataType::Utf8, false),
        Field::new("probes", DataType::Int64, false),
        Field::new("first_seen", ts_type(), false),
        Field::new("last_seen", ts_type(), false),
        Field::new("open", list_of(DataType::Utf8), false),
    ])
}

/// The `campaigns` table of `scanwatch correlate`: one row per scan record
/// the detector made over the flows of all sensors together. Counts are
/// signed 64-bit (Spark has no unsigned types), times `timestamp[us, UTC]`.
pub fn campaign_schema() -> SchemaRef {
    static S: OnceLock<SchemaRef> = OnceLock::new();
    S.get_or_init(|| {
        let per_sensor = Field::new("item", DataType::Struct(per_sensor_fields()), false);
        Arc::new(
            Schema::new(vec![
                Field::new("campaign", DataType::Utf8, false),
                Field::new("scanner", DataType::Utf8, false),
                Field::new("kind", DataType::Utf8, false),
                Field::new("proto", DataType::Utf8, false),
                Field::new("technique", DataType::Utf8, false),
                Field::new("detector", DataType::Utf8, false),
                Field::new("direction", DataType::Utf8, false),
                Field::new("first_seen", ts_type(), false),
                Field::new("last_seen", ts_type(), false),
                Field::new("detected", ts_type(), false),
                Field::new("dst_count", DataType::Int64, false),
                Field::new("port_count", DataType::Int64, false),
                Field::new("probes", DataType::Int64, false),
                Field::new("answered", DataType::Int64, false),
                Field::new("rejected", DataType::Int64, false),
                Field::new("unanswered", DataType::Int64, false),
                Field::new("ports", list_of(DataType::Int32), false),
                Field::new("open", list_of(DataType::Utf8), false),
                Field::new("sensors", list_of(DataType::Utf8), false),
                Field::new("per_sensor", DataType::List(Arc::new(per_sensor)), false),
                // Sensors whose own detections table names this scanner.
                Field::new("flagged_by", list_of(DataType::Utf8), false),
                // Null when the sensors' detections were not given (`--stdin`
                // without `--detections`).
                Field::new("below_threshold_everywhere", DataType::Boolean, true),
            ])
            .with_metadata(HashMap::from([
                ("scanwatch.table".to_string(), "campaigns".to_string()),
                (
                    "scanwatch.schema_version".to_string(),
                    CAMPAIGN_SCHEMA_VERSION.to_string(),
                ),
            ])),
        )
    })
    .clone()
}

/// What one sensor saw of a campaign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SensorPart {
    pub sensor: String,
    pub probes: u64,
    pub first_seen: i64,
    pub last_seen: i64,
    /// `address:port` (ICMP: the address) that answered, sorted.
    pub open: Vec<String>,
}

/// One row of the `campaigns` table.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignRow {
    /// The record over all sensors (its `detection_id` names the campaign).
    pub detection: Detection,
    /// By sensor name.
    pub per_sensor: Vec<SensorPart>,
    pub flagged_by: Vec<String>,
    pub below_threshold_everywhere: Option<bool>,
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Builds `campaigns` batches from [`CampaignRow`]s.
pub fn campaign_batch(rows: &[CampaignRow]) -> Result<RecordBatch, ArrowError> {
    use arrow_array::builder::{BooleanBuilder, Int32Builder, Int64Builder};
    use arrow_array::{Int64Array, ListArray, TimestampMicrosecondArray};
    let ts = |f: &dyn Fn(&CampaignRow) -> i64| -> ArrayRef {
        Arc::new(
            TimestampMicrosecondArray::from(rows.iter().map(f).collect::<Vec<_>>())
                .with_timezone("UTC"),
        )
    };
    let text = |f: &dyn Fn(&CampaignRow) -> String| -> ArrayRef {
        Arc::new(StringArray::from(rows.iter().map(f).collect::<Vec<_>>()))
    };
    let count = |f: &dyn Fn(&Detection) -> u64| -> ArrayRef {
        let mut b = Int64Builder::with_capacity(rows.len());
        for r in rows {
            b.append_value(i64_of(f(&r.detection)));
        }
        Arc::new(b.finish())
    };
    let strings = |f: &dyn Fn(&CampaignRow) -> Vec<String>| -> ArrayRef {
        let mut b = ListBuilder::new(StringBuilder::new()).with_field(item(DataType::Utf8));
        for r in rows {
            for s in f(r) {
                b.values().append_value(s);
            }
            b.append(true);
        }
        Arc::new(b.finish())
    };
    let mut ports = ListBuilder::new(Int32Builder::new()).with_field(item(DataType::Int32));
    for r in rows {
        for p in &r.detection.ports {
            ports.values().append_value(i32::from(*p));
        }
        ports.append(true);
    }
    // per_sensor: a list of structs, built from its flattened columns.
    let mut offsets = vec![0i32];
    let (mut names, mut probes, mut firsts, mut lasts) = (vec![], vec![], vec![], vec![]);
    let mut open = ListBuilder::new(StringBuilder::new()).with_field(item(DataType::Utf8));
    for r in rows {
        for p in &r.per_sensor {
            names.push(p.sensor.clone());
            probes.push(i64_of(p.probes));
            firsts.push(p.first_seen);
            lasts.push(p.last_seen);
            for o in &p.open {
                open.values().append_value(o);
            }
            open.append(true);
        }
        offsets.push(
            i32::try_from(names.len()).map_err(|_| {
                ArrowError::InvalidArgumentError("too many per-sensor entries".into())
            })?,
        );
    }
    let parts = StructArray::try_new(
        per_sensor_fields(),
        vec![
            Arc::new(StringArray::from(names)) as ArrayRef,
            Arc::new(Int64Array::from(probes)),
            Arc::new(TimestampMicrosecondArray::from(firsts).with_timezone("UTC")),
            Arc::new(TimestampMicrosecondArray::from(lasts).with_timezone("UTC")),
            Arc::new(open.finish()),
        ],
        None,
    )?;
    let per_sensor = ListArray::try_new(
        Arc::new(Field::new(
            "item",
            DataType::Struct(per_sensor_fields()),
            false,
        )),
        OffsetBuffer::new(ScalarBuffer::from(offsets)),
        Arc::new(parts),
        None,
    )?;
    let mut below = BooleanBuilder::with_capacity(rows.len());
    for r in rows {
        below.append_option(r.below_threshold_everywhere);
    }
    let cols: Vec<ArrayRef> = vec![
        text(&|r| r.detection.detection_id.clone()),
        text(&|r| r.detection.scanner.to_string()),
        text(&|r| r.detection.kind.name().to_string()),
        text(&|r| proto::name(r.detection.proto).to_string()),
        text(&|r| r.detection.technique.name().to_string()),
        text(&|r| r.detection.detector.clone()),
        text(&|r| r.detection.direction.name().to_string()),
        ts(&|r| r.detection.ts_first),
        ts(&|r| r.detection.ts_last),
        ts(&|r| r.detection.ts_detected),
        count(&|d| d.dst_count),
        count(&|d| d.port_count),
        count(&|d| d.probes),
        count(&|d| d.answered),
        count(&|d| d.rejected),
        count(&|d| d.unanswered),
        Arc::new(ports.finish()),
        strings(&|r| r.detection.open.clone()),
        strings(&|r| r.per_sensor.iter().map(|p| p.sensor.clone()).collect()),
        Arc::new(per_sensor),
        strings(&|r| r.flagged_by.clone()),
        Arc::new(below.finish()),
    ];
    RecordBatch::try_new(campaign_schema(), cols)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::types::UInt64Type;
    use scanwatch_model::Direction;
    use scanwatch_model::{Addr, ConnState, FlowKey, History, ScanKind};

    #[test]
    fn flow_batch_has_the_schema_and_values() {
        let mut h = History::default();
        h.add(b'S', true);
        h.add(b'R', false);
        let (key, orig_is_a) = FlowKey::new(
            "198.18.0.2".parse().unwrap(),
            40000,
            "2001:db8::1".parse().unwrap(),
            22,
            proto::TCP,
        );
        let r = FlowRecord {
            ts: 1_000_000,
            last_ts: 1_500_000,
            key,
            orig_is_a,
            orig_pkts: 1,
            orig_bytes: 0,
            resp_pkts: 1,
            resp_bytes: 0,
            conn_state: ConnState::REJ,
            history: h,
            vlan: 0,
        };
        let mut b = FlowBatchBuilder::default();
        b.append(&r);
        b.append(&FlowRecord { vlan: 7, ..r });
        let batch = b.finish().unwrap();
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.schema().metadata()["scanwatch.table"], "flows");
        let cs = batch
            .column_by_name("conn_state")
            .unwrap()
            .as_string::<i32>();
        assert_eq!(cs.value(0), "REJ");
        let id = batch.column_by_name("id").unwrap().as_struct();
        assert_eq!(id.column(2).as_string::<i32>().value(0), "2001:db8::1");
        assert_eq!(batch.column_by_name("vlan").unwrap().null_count(), 1);
        assert!(b.is_empty());
    }

    #[test]
    fn every_string_column_holds_its_text() {
        // Fixed-size copies cut back to length: check each column's text
        // for every state, protocol and address family, across one batch.
        let mut rows = Vec::new();
        for (i, state) in ConnState::ALL.into_iter().enumerate() {
            for (j, p) in [proto::TCP, proto::UDP, proto::ICMP, proto::ICMP6, 47]
                .into_iter()
                .enumerate()
            {
                let mut h = History::default();
                for (k, c) in b"SHADFRT".iter().enumerate().take(i % 8) {
                    h.add(*c, k % 2 == 0);
                }
                let (o, r) = if j % 2 == 0 {
                    (format!("10.{i}.{j}.255"), format!("192.168.{}.7", i * 19))
                } else {
                    (format!("2001:db8::{i}:{j}"), "fe80::1".to_string())
                };
                let (key, orig_is_a) = FlowKey::new(
                    o.parse().unwrap(),
                    1000 + i as u16,
                    r.parse().unwrap(),
                    80,
                    p,
                );
                rows.push(FlowRecord {
                    ts: 1_000_000 * i as i64,
                    last_ts: 1_000_000 * i as i64 + 5,
                    key,
                    orig_is_a,
                    orig_pkts: 1,
                    orig_bytes: 0,
                    resp_pkts: 0,
                    resp_bytes: 0,
                    conn_state: state,
                    history: h,
                    vlan: 0,
                });
            }
        }
        let mut b = FlowBatchBuilder::default();
        for r in &rows {
            b.append(r);
        }
        let batch = b.finish().unwrap();
        let col = |n: &str| batch.column_by_name(n).unwrap().as_string::<i32>().clone();
        let (uid, pr, cs, hist, cid) = (
            col("uid"),
            col("proto"),
            col("conn_state"),
            col("history"),
            col("community_id"),
        );
        let id = batch.column_by_name("id").unwrap().as_struct();
        let (oh, rh) = (
            id.column(0).as_string::<i32>(),
            id.column(2).as_string::<i32>(),
        );
        for (k, r) in rows.iter().enumerate() {
            assert_eq!(uid.value(k), r.uid());
            assert_eq!(oh.value(k), r.orig_h().to_string());
            assert_eq!(rh.value(k), r.resp_h().to_string());
            assert_eq!(pr.value(k), zeek_proto(r.proto()));
            assert_eq!(cs.value(k), r.conn_state.as_str());
            assert_eq!(hist.value(k), r.history.as_str());
            assert_eq!(cid.value(k), r.community_id());
        }
    }

    #[test]
    fn detection_batch_lists() {
        let d = Detection {
            detection_id: "x".into(),
            ts_first: 1,
            ts_last: 2,
            ts_detected: 2,
            scanner: Addr::from_v4([1, 2, 3, 4]),
            kind: ScanKind::Vertical,
            proto: proto::TCP,
            detector: "window:5m".into(),
            dst_count: 1,
            port_count: 3,
            probes: 3,
            answered: 1,
            rejected: 2,
            unanswered: 0,
            ports: vec![21, 22, 23],
            targets: vec![Addr::from_v4([5, 6, 7, 8])],
            open: vec!["5.6.7.8:22".into()],
            direction: Direction::Inbound,
            technique: scanwatch_model::Technique::Fin,
            tool: "nmap".into(),
            tool_evidence: vec!["window=1024".into()],
            rate_pps: 12.5,
            order: "random".into(),
            port_set: "custom".into(),
            campaign_id: String::new(),
            sources: vec![Addr::from_v4([9, 9, 9, 9]), Addr::from_v4([9, 9, 9, 10])],
        };
        let mut b = DetectionBatchBuilder::default();
        b.append(&d);
        let batch = b.finish().unwrap();
        assert_eq!(batch.num_rows(), 1);
        let probes = batch
            .column_by_name("probes")
            .unwrap()
            .as_primitive::<UInt64Type>();
        assert_eq!(probes.value(0), 3);
        let ports = batch.column_by_name("ports").unwrap().as_list::<i32>();
        assert_eq!(ports.value(0).len(), 3);
        let tech = batch
            .column_by_name("technique")
            .unwrap()
            .as_string::<i32>();
        assert_eq!(tech.value(0), "fin");
        let ev = batch
            .column_by_name("tool_evidence")
            .unwrap()
            .as_list::<i32>();
        assert_eq!(ev.value(0).len(), 1);
        assert!(batch.column_by_name("campaign_id").unwrap().is_null(0));
        let sources = batch.column_by_name("sources").unwrap().as_list::<i32>();
        let first = sources.value(0);
        assert_eq!(first.len(), 2);
        let first = first.as_string::<i32>();
        assert_eq!(first.value(0), "9.9.9.9");
        assert_eq!(first.value(1), "9.9.9.10");
    }
}
